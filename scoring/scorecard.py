"""Scoring a balanced scorecard: KPI values in, KPI scores and roll-ups out.

- `kpi_values_from_metrics` picks each KPI's values from the derived `metric_values` and the
  manually supplied values (a manual value for a derived KPI overrides it: the pilot mode).
- `score_kpis` scores every KPI in every period present: performance, status, trend, DORA band.
- `roll_up` scores objectives from their KPIs, perspectives from their objectives and the
  scorecard from its perspectives, with the share of weight that had data (`coverage`).

Everything is vectorised over rows; the only loops walk the configuration's KPIs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring import bands
from scoring.config import ScorecardConfig
from scoring.metrics import METRIC_COLUMNS
from scoring.periods import period_start, shift_periods

KPI_SCORE_COLUMNS = [
    "scorecard", "perspective_id", "objective_id", "kpi_id", "kpi_name", "metric", "unit", "direction",
    "indicator", "period_start", "period_end", "value", "baseline", "threshold", "target", "stretch",
    "performance", "status", "previous_value", "change", "trend", "dora_band", "weight", "owner",
]  # fmt: skip
NODE_SCORE_COLUMNS = [
    "scorecard", "node_type", "node_id", "name", "parent_id", "period_start", "period_end", "score",
    "status", "coverage", "kpis_scored", "kpis_total", "weight", "rollup", "owner",
]  # fmt: skip
VALUE_COLUMNS = ["kpi_id", "period_start", "value"]

KPI_STATUSES = ("blue", "green", "amber", "red", "no_data")
NODE_STATUSES = ("green", "amber", "red", "no_data")
TRENDS = ("improving", "worsening", "flat")

_PERIOD_KEY = ["kpi_id", "period_start"]


# --- the configuration as tables ---------------------------------------------------------


def kpi_table(scorecard: ScorecardConfig) -> pd.DataFrame:
    """One row per KPI with everything scoring needs, in file order (`order`)."""
    rows = [
        {
            "perspective_id": perspective.id,
            "objective_id": objective.id,
            "kpi_id": kpi.id,
            "kpi_name": kpi.name,
            "metric": kpi.metric,
            "service": kpi.service,
            "is_manual": kpi.is_manual,
            "unit": kpi.unit,
            "direction": kpi.direction,
            "indicator": kpi.indicator,
            "baseline": kpi.baseline,
            "threshold": np.nan if kpi.threshold is None else kpi.threshold,
            "target": kpi.target,
            "stretch": np.nan if kpi.stretch is None else kpi.stretch,
            "weight": kpi.weight,
            "owner": kpi.owner or objective.owner,
            "clamp": scorecard.clamp if kpi.clamp is None else kpi.clamp,
        }
        for perspective, objective, kpi in scorecard.iter_kpis()
    ]
    table = pd.DataFrame(rows)
    table["order"] = np.arange(len(table))
    return table


def node_table(scorecard: ScorecardConfig) -> pd.DataFrame:
    """Objectives, perspectives and the scorecard itself as roll-up nodes, top-down."""
    rows = [_node("scorecard", scorecard.slug, scorecard.name, None, 1.0, "weighted_mean", scorecard.owner)]
    for perspective in scorecard.perspectives:
        rows.append(_node("perspective", perspective.id, perspective.name, scorecard.slug, perspective.weight,
                          perspective.rollup, perspective.owner))  # fmt: skip
    for perspective in scorecard.perspectives:
        for objective in perspective.objectives:
            rows.append(_node("objective", objective.id, objective.name, perspective.id, objective.weight,
                              objective.rollup, objective.owner))  # fmt: skip
    table = pd.DataFrame(rows)
    table["order"] = np.arange(len(table))
    return table


def _node(node_type: str, node_id: str, name: str, parent_id: str | None, weight: float, rollup: str,
          owner: str | None) -> dict[str, object]:  # fmt: skip
    return {"node_type": node_type, "node_id": node_id, "name": name, "parent_id": parent_id,
            "weight": weight, "rollup": rollup, "owner": owner}  # fmt: skip


# --- KPI values --------------------------------------------------------------------------


def kpi_values_from_metrics(
    scorecard: ScorecardConfig, metric_values: pd.DataFrame, manual_values: pd.DataFrame
) -> pd.DataFrame:
    """Each KPI's values per review period: [kpi_id, period_start, value].

    A derived KPI reads the `metric_values` rows of its metric at the review period's grain for
    its scope's service ("all" without a scope); a `manual:` KPI reads the `manual_values` rows
    with its kpi_id. A manual value (not blank) for a derived KPI replaces the derived one for
    that period. Manual rows for unknown KPI ids are ignored (see `unknown_kpi_ids`).
    """
    kpis = kpi_table(scorecard)
    metrics = _with_columns(metric_values, METRIC_COLUMNS)
    at_grain = metrics.loc[metrics["grain"] == scorecard.review_period, ["metric", "service", "period_start", "value"]]
    derived = kpis.loc[~kpis["is_manual"], ["kpi_id", "metric", "service"]].merge(at_grain, on=["metric", "service"])
    manual = _with_columns(manual_values, VALUE_COLUMNS)
    manual = manual[manual["kpi_id"].isin(kpis["kpi_id"])]
    candidates = pd.concat(
        [
            _normalise(derived[VALUE_COLUMNS], scorecard.review_period).assign(priority=1),
            _normalise(manual[VALUE_COLUMNS], scorecard.review_period).assign(priority=0),
        ],
        ignore_index=True,
    )
    # A blank manual cell gives no value: it must not hide a derived one.
    candidates.loc[candidates["value"].isna(), "priority"] = 2
    chosen = candidates.sort_values("priority", kind="stable").drop_duplicates(_PERIOD_KEY, keep="first")
    return chosen[VALUE_COLUMNS].sort_values(_PERIOD_KEY, kind="stable").reset_index(drop=True)


def unknown_kpi_ids(scorecard: ScorecardConfig, values: pd.DataFrame) -> list[str]:
    """KPI ids in `values` that the scorecard does not define (ignored by scoring)."""
    known = set(kpi_table(scorecard)["kpi_id"])
    return sorted({str(kpi_id) for kpi_id in _with_columns(values, VALUE_COLUMNS)["kpi_id"].dropna()} - known)


def _with_columns(frame: pd.DataFrame | None, columns: list[str]) -> pd.DataFrame:
    """`frame`, or an empty frame, with at least `columns` (missing ones all-NaN)."""
    frame = pd.DataFrame(columns=columns) if frame is None else frame
    return frame.reindex(columns=list(dict.fromkeys([*columns, *frame.columns])))


def _normalise(values: pd.DataFrame, grain: str) -> pd.DataFrame:
    """Values with period_start floored to the review period (UTC) and numeric values."""
    stamps = pd.to_datetime(values["period_start"], utc=True, format="mixed") if len(values) else values["period_start"]
    return pd.DataFrame(
        {
            "kpi_id": values["kpi_id"],
            "period_start": period_start(pd.Series(stamps, index=values.index), grain),
            "value": pd.to_numeric(values["value"], errors="coerce").astype(float),
        }
    ).dropna(subset=["period_start"])


# --- KPI scores --------------------------------------------------------------------------


def score_kpis(scorecard: ScorecardConfig, values: pd.DataFrame, complete: pd.DatetimeIndex | None = None
               ) -> pd.DataFrame:  # fmt: skip
    """kpi_scores: every KPI in every period present in `values` ([kpi_id, period_start, value]).

    Performance = (value - baseline) / (target - baseline), clamped to [0, 1] where the KPI (or
    the scorecard) says so. A KPI without a value in a period gets status `no_data`. With `complete` (the
    starts of the complete periods; None: every period is), the trend compares complete periods only: a
    running or partial period, and the period after one, has no change and no trend.
    """
    kpis = kpi_table(scorecard)
    values = _known_values(scorecard, values, kpis)
    if values.empty:
        return _empty(KPI_SCORE_COLUMNS)
    compared = values if complete is None else values[values["period_start"].isin(complete)]
    grid = kpis.merge(values[["period_start"]].drop_duplicates(), how="cross")
    grid = grid.merge(values, on=_PERIOD_KEY, how="left").merge(_previous(compared, scorecard.review_period),
                                                                 on=_PERIOD_KEY, how="left")  # fmt: skip
    grid["period_end"] = _next_period(grid["period_start"], scorecard.review_period)
    sign = np.where(grid["direction"] == "higher_is_better", 1.0, -1.0)
    # `+ 0.0` turns the -0.0 of a lower-is-better KPI at its baseline into 0.0 (shown as "-0.0" otherwise).
    raw_performance = (grid["value"] - grid["baseline"]) / (grid["target"] - grid["baseline"]) + 0.0
    grid["performance"] = raw_performance.where(~grid["clamp"], raw_performance.clip(0, 1))
    grid["status"] = _kpi_status(grid, sign, raw_performance, scorecard.amber_performance)
    grid["change"] = grid["value"] - grid["previous_value"]
    if complete is not None:
        grid["change"] = grid["change"].where(grid["period_start"].isin(complete))
    grid["trend"] = _trend(grid["change"], sign, scorecard.trend_tolerance)
    period_days = (grid["period_end"] - grid["period_start"]) / pd.Timedelta(days=1)
    grid["dora_band"] = bands.dora_bands(grid["metric"], grid["value"], period_days, scorecard.dora_report_year)
    grid["scorecard"] = scorecard.name
    grid = grid.sort_values(["period_start", "order"], kind="stable")
    return grid[KPI_SCORE_COLUMNS].reset_index(drop=True)


def _known_values(scorecard: ScorecardConfig, values: pd.DataFrame, kpis: pd.DataFrame) -> pd.DataFrame:
    """The values of defined KPIs, one per KPI and period (the last given wins)."""
    values = _with_columns(values, VALUE_COLUMNS)
    values = _normalise(values[values["kpi_id"].isin(kpis["kpi_id"])], scorecard.review_period)
    return values.drop_duplicates(_PERIOD_KEY, keep="last").reset_index(drop=True)


def _previous(values: pd.DataFrame, grain: str) -> pd.DataFrame:
    """Each value keyed by the period after its own: the next period's previous_value."""
    return pd.DataFrame(
        {
            "kpi_id": values["kpi_id"],
            "period_start": _next_period(values["period_start"], grain),
            "previous_value": values["value"],
        }
    )


def _next_period(starts: pd.Series, grain: str) -> pd.Series:
    return pd.Series(shift_periods(starts, grain, 1), index=starts.index).dt.tz_localize("UTC")


def _at_least(values: pd.Series | np.ndarray, limits: pd.Series | np.ndarray | float) -> np.ndarray:
    """values >= limits, forgiving float noise (99.89999999999999 reaches 99.9); NaN never does."""
    values, limits = np.asarray(values, dtype=float), np.asarray(limits, dtype=float)
    return (values >= limits) | np.isclose(values, limits, rtol=1e-9, atol=1e-12)


def _kpi_status(
    grid: pd.DataFrame, sign: np.ndarray, raw_performance: pd.Series, amber_performance: float
) -> np.ndarray:
    """blue / green / amber / red / no_data; "at or beyond" a limit follows the direction."""
    directed = sign * grid["value"]

    def reaches(limit: str) -> np.ndarray:
        return _at_least(directed, sign * grid[limit])

    amber = np.where(grid["threshold"].notna(), reaches("threshold"), _at_least(raw_performance, amber_performance))
    conditions = [grid["value"].isna().to_numpy(), reaches("stretch"), reaches("target"), amber]
    return np.select(conditions, ["no_data", "blue", "green", "amber"], default="red")


def _trend(change: pd.Series, sign: np.ndarray, tolerance: float) -> np.ndarray:
    """improving / worsening / flat against the previous period; None without one."""
    directed = sign * change.to_numpy(dtype=float)
    flat = _at_least(np.full_like(directed, tolerance), np.abs(directed))
    conditions = [np.isnan(directed), flat, directed > 0]
    return np.select(conditions, [None, "flat", "improving"], default="worsening")


# --- roll-ups ----------------------------------------------------------------------------


def roll_up(scorecard: ScorecardConfig, kpi_scores: pd.DataFrame) -> pd.DataFrame:
    """node_scores: objective, perspective and scorecard scores for every period in kpi_scores.

    Each node combines its children's scores with its `rollup` (weighted_mean by default;
    mean, min, max), leaving out children without data. `coverage` is the share of KPI weight with data,
    weighted through the tree: an objective's is the share of its KPIs' weight that had data, a parent's the
    weighted mean of its children's coverage (by count when all weigh 0), so 3 of 17 KPIs scored never reads
    as most of the scorecard.
    """
    scored = _with_columns(kpi_scores, ["kpi_id", "period_start", "performance"])
    if scored.empty:
        return _empty(NODE_SCORE_COLUMNS)
    nodes = node_table(scorecard)
    periods = scored[["period_start"]].drop_duplicates()
    kpis = kpi_table(scorecard).merge(periods, how="cross")
    kpis = kpis.merge(scored[["kpi_id", "period_start", "performance"]], on=_PERIOD_KEY, how="left")
    kpi_children = pd.DataFrame(
        {
            "parent_id": kpis["objective_id"],
            "period_start": kpis["period_start"],
            "score": kpis["performance"].astype(float),
            "weight": kpis["weight"],
            "coverage": kpis["performance"].notna().astype(float),
            "kpis_scored": kpis["performance"].notna().astype(int),
            "kpis_total": 1,
        }
    )
    objectives = _aggregate(kpi_children, nodes[nodes["node_type"] == "objective"])
    perspectives = _aggregate(objectives, nodes[nodes["node_type"] == "perspective"])
    top = _aggregate(perspectives, nodes[nodes["node_type"] == "scorecard"])
    result = pd.concat([top, perspectives, objectives], ignore_index=True)
    result["period_end"] = _next_period(result["period_start"], scorecard.review_period)
    result["status"] = _node_status(result["score"], scorecard.amber_performance)
    result["scorecard"] = scorecard.name
    result = result.sort_values(["period_start", "order"], kind="stable")
    return result[NODE_SCORE_COLUMNS].reset_index(drop=True)


def _aggregate(children: pd.DataFrame, parents: pd.DataFrame) -> pd.DataFrame:
    """Parent node rows (node columns + period_start, score, coverage, kpi counts) from child rows.

    `children` has parent_id, period_start, score (NaN: no data), weight, coverage, kpis_scored, kpis_total.
    """
    key = ["parent_id", "period_start"]
    has_data = children["score"].notna()
    total_weight = children.groupby(key)["weight"].transform("sum")
    weight = np.where(total_weight > 0, children["weight"], 1.0)  # all weigh 0: count them alike
    parts = pd.DataFrame(
        {
            "parent_id": children["parent_id"],
            "period_start": children["period_start"],
            "score": children["score"],
            "weight_all": weight,
            "weight_data": np.where(has_data, weight, 0.0),
            "weighted_score": np.where(has_data, weight * children["score"].fillna(0.0), 0.0),
            "weighted_coverage": weight * children["coverage"],
            "kpis_scored": children["kpis_scored"],
            "kpis_total": children["kpis_total"],
        }
    )
    sums = parts.groupby(key, sort=False).agg(
        weight_all=("weight_all", "sum"),
        weight_data=("weight_data", "sum"),
        weighted_score=("weighted_score", "sum"),
        weighted_coverage=("weighted_coverage", "sum"),
        mean=("score", "mean"),
        min=("score", "min"),
        max=("score", "max"),
        kpis_scored=("kpis_scored", "sum"),
        kpis_total=("kpis_total", "sum"),
    )
    sums = sums.reset_index().rename(columns={"parent_id": "node_id"}).merge(parents, on="node_id")
    weighted_mean = (sums["weighted_score"] / sums["weight_data"]).where(sums["weight_data"] > 0)
    rollup = sums["rollup"]
    sums["score"] = np.select(
        [rollup == "mean", rollup == "min", rollup == "max"], [sums["mean"], sums["min"], sums["max"]], weighted_mean
    )
    sums["coverage"] = sums["weighted_coverage"] / sums["weight_all"]
    return sums.drop(columns=["weight_all", "weight_data", "weighted_score", "weighted_coverage", "mean", "min",
                              "max"])  # fmt: skip


def _node_status(scores: pd.Series, amber_performance: float) -> np.ndarray:
    conditions = [scores.isna().to_numpy(), _at_least(scores, 1.0), _at_least(scores, amber_performance)]
    return np.select(conditions, ["no_data", "green", "amber"], default="red")


# --- both --------------------------------------------------------------------------------


def score(scorecard: ScorecardConfig, values: pd.DataFrame, complete: pd.DatetimeIndex | None = None
          ) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """(kpi_scores, node_scores) for KPI values [kpi_id, period_start, value]; `complete` as for score_kpis."""
    kpi_scores = score_kpis(scorecard, values, complete)
    return kpi_scores, roll_up(scorecard, kpi_scores)


def _empty(columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
    for column in ("period_start", "period_end"):
        frame[column] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame
