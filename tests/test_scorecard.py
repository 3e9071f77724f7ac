"""Scoring: KPI values, performance, status, trend, DORA band and roll-ups, on hand-computed figures.

Performance = (value - baseline) / (target - baseline) for both directions, not clamped unless
`clamp: true`. Status: red / amber (from threshold) / green (from target) / blue (at stretch),
"from" following the direction; without a threshold amber means performance >= amber_performance.
Roll-ups are weighted means of the children with data; coverage is the share of weight with data.
"""

from __future__ import annotations

import math
from functools import partial

import pandas as pd
import pytest

from pipelines.config import parse_config
from scoring.config import ScorecardConfig
from scoring.scorecard import (
    KPI_SCORE_COLUMNS,
    NODE_SCORE_COLUMNS,
    kpi_values_from_metrics,
    roll_up,
    score,
    score_kpis,
    unknown_kpi_ids,
)

approx = partial(pytest.approx, rel=1e-9, abs=1e-12)
SERVICES = {"checkout": {"github_repos": ["acme/checkout"]}, "search": {"github_repos": ["acme/search"]}}


def kpi(kpi_id: str, metric: str | None = None, **fields: object) -> dict[str, object]:
    """A KPI; a manual metric named after the id, higher_is_better, 0 -> 100, unless told otherwise."""
    metric = metric or f"manual:{kpi_id}"
    defaults: dict[str, object] = {"baseline": 0, "target": 100}
    if metric.startswith("manual:"):
        defaults["direction"] = "higher_is_better"
    return {"id": kpi_id, "name": kpi_id, "metric": metric, **defaults, **fields}


def objective(objective_id: str, *kpis: dict, **fields: object) -> dict[str, object]:
    return {"id": objective_id, "name": objective_id, "kpis": list(kpis), **fields}


def perspective(perspective_id: str, *objectives: dict, **fields: object) -> dict[str, object]:
    return {"id": perspective_id, "name": perspective_id, "objectives": list(objectives), **fields}


def card(*perspectives: dict, **settings: object) -> ScorecardConfig:
    scorecard = {"name": "Test Scorecard", "review_period": "month", **settings, "perspectives": list(perspectives)}
    return parse_config({"services": SERVICES, "scorecard": scorecard}).scorecard


def one_kpi_card(**kpi_fields: object) -> ScorecardConfig:
    settings = {key: kpi_fields.pop(key) for key in ("amber_performance", "trend_tolerance", "dora_report_year",
                                                      "review_period") if key in kpi_fields}  # fmt: skip
    scorecard_clamp = kpi_fields.pop("scorecard_clamp", None)
    if scorecard_clamp is not None:
        settings["clamp"] = scorecard_clamp
    return card(perspective("p", objective("o", kpi("k", **kpi_fields))), **settings)


def monthly(values: list[float | None], kpi_id: str = "k", start: str = "2026-01-01") -> pd.DataFrame:
    """One value per consecutive month from `start`."""
    starts = pd.date_range(start, periods=len(values), freq="MS", tz="UTC")
    return pd.DataFrame({"kpi_id": kpi_id, "period_start": starts, "value": values})


def scores_of(config: ScorecardConfig, values: list[float | None], kpi_id: str = "k") -> pd.DataFrame:
    scores = score_kpis(config, monthly(values, kpi_id))
    return scores[scores["kpi_id"] == kpi_id].reset_index(drop=True)


def metric_rows(*rows: tuple[str, str, str, str, float]) -> pd.DataFrame:
    """metric_values rows from (metric, service, grain, period_start, value)."""
    frame = pd.DataFrame(rows, columns=["metric", "service", "grain", "period_start", "value"])
    frame["period_end"] = None
    frame["unit"] = None
    frame["sample_size"] = 1
    return frame


def nodes_by_id(nodes: pd.DataFrame, period: str) -> dict[str, dict]:
    rows = nodes[nodes["period_start"] == pd.Timestamp(period, tz="UTC")]
    return {row["node_id"]: row for row in rows.to_dict("records")}


def kpis_by_id(kpis: pd.DataFrame, period: str) -> dict[str, dict]:
    rows = kpis[kpis["period_start"] == pd.Timestamp(period, tz="UTC")]
    return {row["kpi_id"]: row for row in rows.to_dict("records")}


def is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# --- KPI values from metrics and manual values --------------------------------------------------


VALUES_CARD = dict(
    perspectives=[
        perspective(
            "p",
            objective(
                "o",
                kpi("avail_all", "availability", baseline=99, target=99.9),
                kpi("avail_checkout", "availability", baseline=99, target=99.9, scope={"service": "checkout"}),
                kpi("deploys", "deployment_frequency", baseline=10, target=60),
                kpi("spend", direction="lower_is_better", baseline=110, target=100),
            ),
        )
    ]
)


def test_kpi_values_pick_the_metric_at_the_review_grain_for_the_scope_service():
    config = card(*VALUES_CARD["perspectives"])
    metrics = metric_rows(
        ("availability", "all", "month", "2026-10-01T00:00:00Z", 99.5),
        ("availability", "checkout", "month", "2026-10-01T00:00:00Z", 99.9),
        ("availability", "search", "month", "2026-10-01T00:00:00Z", 98.0),  # no KPI reads search
        ("availability", "all", "week", "2026-10-05T00:00:00Z", 97.0),  # wrong grain for a monthly review
        ("deployment_frequency", "all", "month", "2026-09-01T00:00:00Z", 30),
        ("deployment_frequency", "all", "month", "2026-10-01T00:00:00Z", 40),
        ("deployment_frequency", "checkout", "month", "2026-10-01T00:00:00Z", 25),  # deploys has no scope: all
        ("mttr", "all", "month", "2026-10-01T00:00:00Z", 3.0),  # no KPI uses mttr
    )
    values = kpi_values_from_metrics(config, metrics, None)
    assert list(values.columns) == ["kpi_id", "period_start", "value"]
    assert [(r.kpi_id, r.period_start.strftime("%Y-%m-%d"), r.value) for r in values.itertuples()] == [
        ("avail_all", "2026-10-01", 99.5),
        ("avail_checkout", "2026-10-01", 99.9),
        ("deploys", "2026-09-01", 30.0),
        ("deploys", "2026-10-01", 40.0),
    ]
    assert str(values["period_start"].dt.tz) == "UTC"


def test_review_grain_week_reads_week_rows():
    config = card(*VALUES_CARD["perspectives"], review_period="week")
    metrics = metric_rows(
        ("availability", "all", "month", "2026-10-01T00:00:00Z", 99.5),
        ("availability", "all", "week", "2026-10-05T00:00:00Z", 97.0),
    )
    values = kpi_values_from_metrics(config, metrics, None)
    assert values.to_dict("records") == [
        {"kpi_id": "avail_all", "period_start": pd.Timestamp("2026-10-05", tz="UTC"), "value": 97.0}
    ]


def test_manual_values_override_derived_but_a_blank_does_not_hide_it():
    """deploys: Sept derived 30, manual blank -> 30 stays; Oct derived 40, manual 55 -> 55.

    spend is manual only (101 in Oct, given as 2026-10-15: floored to the month). The Nov row's
    time 2026-10-31T23:30-02:00 is 2026-11-01T01:30Z: November in UTC. `ghost` is no KPI: ignored.
    """
    config = card(*VALUES_CARD["perspectives"])
    metrics = metric_rows(
        ("deployment_frequency", "all", "month", "2026-09-01T00:00:00Z", 30),
        ("deployment_frequency", "all", "month", "2026-10-01T00:00:00Z", 40),
    )
    manual = pd.DataFrame(
        {
            "kpi_id": ["deploys", "deploys", "spend", "spend", "ghost"],
            "period_start": ["2026-09-01", "2026-10-01", "2026-10-15", "2026-10-31T23:30:00-02:00", "2026-10-01"],
            "value": [None, "55", 101, 99.5, 7],
        }
    )
    values = kpi_values_from_metrics(config, metrics, manual)
    assert [(r.kpi_id, r.period_start.strftime("%Y-%m-%d"), r.value) for r in values.itertuples()] == [
        ("deploys", "2026-09-01", 30.0),
        ("deploys", "2026-10-01", 55.0),
        ("spend", "2026-10-01", 101.0),
        ("spend", "2026-11-01", 99.5),
    ]
    assert unknown_kpi_ids(config, manual) == ["ghost"]


def test_kpi_values_without_any_input_are_empty():
    config = card(*VALUES_CARD["perspectives"])
    values = kpi_values_from_metrics(config, None, None)
    assert values.empty and list(values.columns) == ["kpi_id", "period_start", "value"]


# --- performance -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "value", "performance"),
    [
        # higher_is_better, baseline 60, target 150: (v - 60) / 90
        ({"baseline": 60, "target": 150}, 105, 0.5),  # 45 / 90
        ({"baseline": 60, "target": 150}, 150, 1.0),
        ({"baseline": 60, "target": 150}, 195, 1.5),  # 135 / 90: beyond target scores over 100%
        ({"baseline": 60, "target": 150}, 42, -0.2),  # -18 / 90: below baseline is negative
        ({"baseline": 60, "target": 150}, 60, 0.0),
        # lower_is_better, baseline 120, target 48: (v - 120) / (48 - 120) = (v - 120) / -72
        ({"baseline": 120, "target": 48, "direction": "lower_is_better"}, 84, 0.5),  # -36 / -72
        ({"baseline": 120, "target": 48, "direction": "lower_is_better"}, 48, 1.0),
        ({"baseline": 120, "target": 48, "direction": "lower_is_better"}, 12, 1.5),  # -108 / -72
        ({"baseline": 120, "target": 48, "direction": "lower_is_better"}, 134.4, -0.2),  # 14.4 / -72
        ({"baseline": 120, "target": 48, "direction": "lower_is_better"}, 120, 0.0),
    ],
)
def test_performance_is_the_linear_interpolation_for_both_directions(fields, value, performance):
    (row,) = scores_of(one_kpi_card(**fields), [value]).to_dict("records")
    assert row["performance"] == approx(performance)
    assert (row["value"], row["baseline"], row["target"]) == (value, fields["baseline"], fields["target"])


def test_performance_at_baseline_is_plain_zero_for_lower_is_better():
    """(120 - 120) / (48 - 120) is -0.0 in floating point; shown as 0, never "-0.0"."""
    (row,) = scores_of(one_kpi_card(baseline=120, target=48, direction="lower_is_better"), [120]).to_dict("records")
    assert row["performance"] == 0.0 and math.copysign(1.0, row["performance"]) == 1.0


@pytest.mark.parametrize(
    ("clamps", "expected"),
    [
        ({}, [1.5, 0.5, -0.2]),
        ({"scorecard_clamp": True}, [1.0, 0.5, 0.0]),
        ({"clamp": True}, [1.0, 0.5, 0.0]),
        ({"scorecard_clamp": True, "clamp": False}, [1.5, 0.5, -0.2]),  # the KPI's own setting wins
    ],
    ids=["default", "scorecard", "kpi", "kpi-overrides-scorecard"],
)
def test_clamp_to_zero_one_scorecard_wide_and_per_kpi(clamps, expected):
    """baseline 60, target 150: 195 -> 1.5, 105 -> 0.5, 42 -> -0.2; clamped 1.0, 0.5, 0.0."""
    scores = scores_of(one_kpi_card(baseline=60, target=150, **clamps), [195, 105, 42])
    assert scores["performance"].tolist() == [approx(p) for p in expected]


def test_clamp_does_not_change_the_status():
    """195 beyond stretch 180 is blue whether or not its performance is clamped to 1."""
    scores = scores_of(one_kpi_card(baseline=60, target=150, stretch=180, clamp=True), [195])
    assert scores.loc[0, ["performance", "status"]].tolist() == [1.0, "blue"]


# --- status ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (-10, "red"),  # below baseline
        (0, "red"),
        (59.99, "red"),
        (60, "amber"),  # at threshold
        (79.99, "amber"),
        (80, "green"),  # at target
        (99.99, "green"),
        (100, "blue"),  # at stretch
        (120, "blue"),
        (None, "no_data"),
    ],
)
def test_status_higher_is_better(value, status):
    config = one_kpi_card(baseline=0, threshold=60, target=80, stretch=100)
    assert scores_of(config, [value]).loc[0, "status"] == status


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (30, "red"),  # worse than baseline
        (25, "red"),
        (15.01, "red"),
        (15, "amber"),  # at threshold
        (10.01, "amber"),
        (10, "green"),  # at target
        (5.01, "green"),
        (5, "blue"),  # at stretch
        (0, "blue"),
        (None, "no_data"),
    ],
)
def test_status_lower_is_better(value, status):
    config = one_kpi_card(metric="change_failure_rate", baseline=25, threshold=15, target=10, stretch=5)
    assert scores_of(config, [value]).loc[0, "status"] == status


def test_no_value_is_no_data_with_no_performance_never_zero():
    scores = scores_of(one_kpi_card(baseline=0, target=10), [None])
    row = scores.loc[0]
    assert row["status"] == "no_data"
    assert math.isnan(row["value"]) and math.isnan(row["performance"])


def test_without_stretch_beyond_target_stays_green():
    assert scores_of(one_kpi_card(baseline=0, threshold=5, target=10), [1000]).loc[0, "status"] == "green"


@pytest.mark.parametrize(
    ("fields", "value", "status"),
    [
        # higher, baseline 0, target 10: performance = v / 10; amber from 0.7 (default)
        ({}, 6.99, "red"),
        ({}, 7, "amber"),  # 7 / 10 = 0.7
        ({}, 9.99, "amber"),
        ({}, 10, "green"),
        ({}, -1, "red"),
        ({"amber_performance": 0.5}, 4.99, "red"),
        ({"amber_performance": 0.5}, 5, "amber"),  # 5 / 10 = 0.5
        # lower, baseline 20, target 10: (v - 20) / -10; 13 -> 0.7
        ({"direction": "lower_is_better", "baseline": 20}, 13.01, "red"),  # 0.699
        ({"direction": "lower_is_better", "baseline": 20}, 13, "amber"),
        ({"direction": "lower_is_better", "baseline": 20}, 10, "green"),
    ],
)
def test_status_without_threshold_uses_amber_performance(fields, value, status):
    config = one_kpi_card(**{"baseline": 0, "target": 10, **fields})
    assert scores_of(config, [value]).loc[0, "status"] == status


def test_status_forgives_float_noise():
    """99.8 + 0.1 is 99.89999999999999 in floating point: it still reaches target 99.9 (green).

    Without a threshold, 2.3 - 1.6 = 0.6999999999999997 against baseline 0, target 1 is still
    performance 0.7: amber. 15.000000000000002 still reaches the lower-is-better threshold 15.
    """
    value = 99.8 + 0.1
    assert value < 99.9
    higher = one_kpi_card(baseline=99, threshold=99.5, target=99.9, stretch=99.99)
    assert scores_of(higher, [value]).loc[0, "status"] == "green"
    no_threshold = one_kpi_card(baseline=0, target=1)
    assert scores_of(no_threshold, [2.3 - 1.6]).loc[0, "status"] == "amber"
    lower = one_kpi_card(metric="change_failure_rate", baseline=25, threshold=15, target=10)
    assert scores_of(lower, [15.000000000000002]).loc[0, "status"] == "amber"


# --- trend --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "values", "changes", "trends"),
    [
        ({}, [10, 12, 11, 11], [None, 2, -1, 0], [None, "improving", "worsening", "flat"]),
        ({"direction": "lower_is_better", "baseline": 100, "target": 0}, [10, 8, 9, 9], [None, -2, 1, 0],
         [None, "improving", "worsening", "flat"]),
        # tolerance 0.5: a change of at most 0.5 either way is flat
        ({"trend_tolerance": 0.5}, [10, 10.5, 9.75, 10.25, 11], [None, 0.5, -0.75, 0.5, 0.75],
         [None, "flat", "worsening", "flat", "improving"]),
        ({"trend_tolerance": 0.5, "direction": "lower_is_better", "baseline": 100, "target": 0},
         [10, 9.5, 8.75, 9.5], [None, -0.5, -0.75, 0.75], [None, "flat", "improving", "worsening"]),
    ],
    ids=["higher", "lower", "higher-tolerance", "lower-tolerance"],
)  # fmt: skip
def test_trend_respects_direction_and_tolerance(fields, values, changes, trends):
    scores = scores_of(one_kpi_card(**fields), values)
    assert [None if is_missing(c) else c for c in scores["change"]] == changes
    assert [None if is_missing(t) else t for t in scores["trend"]] == trends
    assert [None if is_missing(p) else p for p in scores["previous_value"]] == [None, *values[:-1]]


def test_trend_needs_a_value_in_the_previous_period():
    """Values in January and March only: March's previous period (February) has none."""
    values = monthly([10, 20, 30]).iloc[[0, 2]]
    scores = score_kpis(one_kpi_card(), values)
    assert scores["period_start"].dt.strftime("%m").tolist() == ["01", "03"]
    assert scores["trend"].map(is_missing).tolist() == [True, True]
    assert scores["previous_value"].map(is_missing).tolist() == [True, True]


def test_no_value_this_period_has_no_trend():
    scores = scores_of(one_kpi_card(), [10, None])
    assert is_missing(scores.loc[1, "trend"]) and is_missing(scores.loc[1, "change"])
    assert scores.loc[1, "previous_value"] == 10


# --- DORA band -----------------------------------------------------------------------------------------


def dora_card(year: int) -> ScorecardConfig:
    return card(
        perspective(
            "p",
            objective(
                "o",
                kpi("deploys", "deployment_frequency", baseline=0, target=30),
                kpi("cfr", "change_failure_rate", baseline=30, target=10),
                kpi("recovery", "failed_deployment_recovery_time", baseline=48, target=4),
                kpi("avail", "availability", baseline=99, target=99.9),
                kpi("survey", baseline=0, target=5),
            ),
        ),
        dora_report_year=year,
    )


def test_dora_band_per_report_year_and_count_per_month_per_day():
    """Months: Feb 2026 (28 days), Mar (31), Apr (30).

    deploys: 4 / 28 = 1/7 per day -> high; 31 / 31 = 1 -> elite; 1 / 30 -> medium (both years).
    cfr 12%: 2024 high (<= 20), 2023 medium (<= 15). recovery 30 h: 2023 medium (<= 168), 2024 low.
    availability and a manual KPI have no band.
    """
    values = pd.concat(
        [
            monthly([4, 31, 1], "deploys", "2026-02-01"),
            monthly([12], "cfr", "2026-02-01"),
            monthly([30], "recovery", "2026-02-01"),
            monthly([99.5], "avail", "2026-02-01"),
            monthly([4], "survey", "2026-02-01"),
        ]
    )
    for year, cfr_band, recovery_band in ((2024, "high", "low"), (2023, "medium", "medium")):
        scores = score_kpis(dora_card(year), values)
        bands = {(r.kpi_id, r.period_start.month): r.dora_band for r in scores.itertuples()}
        assert (bands[("deploys", 2)], bands[("deploys", 3)], bands[("deploys", 4)]) == ("high", "elite", "medium")
        assert bands[("cfr", 2)] == cfr_band
        assert bands[("recovery", 2)] == recovery_band
        assert bands[("avail", 2)] is None and bands[("survey", 2)] is None
        assert bands[("cfr", 3)] is None  # no value in March


def test_dora_band_at_week_grain_divides_by_seven():
    """Week of 2026-10-05: 7 deployments = 1 per day -> elite; the next week 1 -> 1/7 -> high."""
    config = card(perspective("p", objective("o", kpi("deploys", "deployment_frequency", baseline=0, target=5))),
                  review_period="week")  # fmt: skip
    values = pd.DataFrame({"kpi_id": "deploys", "period_start": ["2026-10-05", "2026-10-12"], "value": [7, 1]})
    scores = score_kpis(config, values)
    assert scores["dora_band"].tolist() == ["elite", "high"]
    assert scores["period_end"].dt.strftime("%Y-%m-%d").tolist() == ["2026-10-12", "2026-10-19"]


# --- roll-up ---------------------------------------------------------------------------------------------


def rolled(config: ScorecardConfig, values: dict[str, float | None]) -> dict[str, dict]:
    frame = pd.DataFrame({"kpi_id": list(values), "period_start": "2026-10-01", "value": list(values.values())})
    return nodes_by_id(roll_up(config, score_kpis(config, frame)), "2026-10-01")


def test_weighted_mean_leaves_out_children_without_data_and_reports_coverage():
    """a (w 3) 50 -> 0.5, b (w 1) 100 -> 1.0, c (w 2) no data.

    score = (3 * 0.5 + 1 * 1.0) / (3 + 1) = 2.5 / 4 = 0.625 (red: < 0.7); coverage = 4 / 6.
    """
    config = card(perspective("p", objective("o", kpi("a", weight=3), kpi("b", weight=1), kpi("c", weight=2))))
    node = rolled(config, {"a": 50, "b": 100, "c": None})["o"]
    assert node["score"] == approx(0.625)
    assert node["coverage"] == approx(4 / 6)
    assert (node["kpis_scored"], node["kpis_total"], node["status"]) == (2, 3, "red")
    assert (node["node_type"], node["parent_id"], node["rollup"]) == ("objective", "p", "weighted_mean")


@pytest.mark.parametrize(
    ("rollup", "expected"),
    [
        ("weighted_mean", 0.38),  # (3 * 0.2 + 1 * 0.8 + 1 * 0.5) / 5 = 1.9 / 5
        ("mean", 0.5),  # (0.2 + 0.8 + 0.5) / 3
        ("min", 0.2),
        ("max", 0.8),
    ],
)
def test_rollup_functions(rollup, expected):
    """a (w 3) 20 -> 0.2, b (w 1) 80 -> 0.8, c (w 1) 50 -> 0.5, d (w 5) no data (left out of all four)."""
    config = card(perspective("p", objective("o", kpi("a", weight=3), kpi("b", weight=1), kpi("c", weight=1),
                                             kpi("d", weight=5), rollup=rollup)))  # fmt: skip
    node = rolled(config, {"a": 20, "b": 80, "c": 50, "d": None})["o"]
    assert node["score"] == approx(expected)
    assert node["coverage"] == approx(5 / 10)
    assert node["rollup"] == rollup


def test_all_zero_weights_count_children_alike():
    """Weights 0, 0, 0: a 40 -> 0.4, b 80 -> 0.8, c no data: score (0.4 + 0.8) / 2 = 0.6, coverage 2 / 3."""
    config = card(perspective("p", objective("o", kpi("a", weight=0), kpi("b", weight=0), kpi("c", weight=0))))
    node = rolled(config, {"a": 40, "b": 80, "c": None})["o"]
    assert node["score"] == approx(0.6)
    assert node["coverage"] == approx(2 / 3)


def test_a_zero_weight_child_does_not_move_a_weighted_mean():
    """a (w 1) 40 -> 0.4, b (w 0) 100 -> 1.0: weighted mean 0.4, coverage 1 / 1."""
    config = card(perspective("p", objective("o", kpi("a", weight=1), kpi("b", weight=0))))
    node = rolled(config, {"a": 40, "b": 100})["o"]
    assert (node["score"], node["coverage"], node["kpis_scored"]) == (approx(0.4), 1.0, 2)


def test_node_statuses_at_their_boundaries():
    """One KPI per objective, so each objective's score is its KPI's performance (baseline 0, target 1).

    1.2 green (nodes have no blue), 1.0 green, 0.7 amber, 2.3 - 1.6 = 0.6999999999999997 amber
    (float noise), 0.69 red, -0.5 red, no data no_data.
    """
    values = {"g2": 1.2, "g": 1.0, "a": 0.7, "noise": 2.3 - 1.6, "r": 0.69, "neg": -0.5, "none": None}
    config = card(perspective("p", *[objective(f"o_{k}", kpi(k, baseline=0, target=1)) for k in values]))
    nodes = rolled(config, values)
    statuses = {k: nodes[f"o_{k}"]["status"] for k in values}
    assert statuses == {"g2": "green", "g": "green", "a": "amber", "noise": "amber", "r": "red", "neg": "red",
                        "none": "no_data"}  # fmt: skip
    assert is_missing(nodes["o_none"]["score"]) and nodes["o_none"]["coverage"] == 0.0


def test_amber_performance_setting_moves_node_status_too():
    config = card(perspective("p", objective("o", kpi("a", baseline=0, target=1))), amber_performance=0.5)
    assert rolled(config, {"a": 0.5})["o"]["status"] == "amber"
    assert rolled(config, {"a": 0.49})["o"]["status"] == "red"


def test_roll_up_of_nothing_is_empty_with_the_columns():
    config = card(perspective("p", objective("o", kpi("a"))))
    kpi_scores, node_scores = score(config, pd.DataFrame(columns=["kpi_id", "period_start", "value"]))
    assert list(kpi_scores.columns) == KPI_SCORE_COLUMNS and kpi_scores.empty
    assert list(node_scores.columns) == NODE_SCORE_COLUMNS and node_scores.empty


def test_values_of_unknown_kpis_are_ignored_and_the_last_duplicate_wins():
    config = card(perspective("p", objective("o", kpi("a"))))
    values = pd.DataFrame({"kpi_id": ["a", "ghost", "a"], "period_start": "2026-10-01", "value": [10, 99, 30]})
    kpi_scores, _ = score(config, values)
    assert kpi_scores[["kpi_id", "value"]].values.tolist() == [["a", 30.0]]


# --- the complete worked example -----------------------------------------------------------------------

WORKED = [
    perspective(
        "customer",
        objective(
            "uptime",
            kpi("availability", "availability", baseline=99, threshold=99.5, target=99.9, stretch=99.99, weight=2),
            kpi("csat", baseline=3, threshold=3.8, target=4, stretch=4.5, weight=1),
        ),
        objective(
            "restore",
            kpi("mttr", "mttr", baseline=8, threshold=4, target=2, stretch=1),
            kpi("reopened", direction="lower_is_better", baseline=10, target=5),  # no threshold: amber from 0.7
            rollup="min",
        ),
        weight=2,
    ),
    perspective(
        "process",
        objective(
            "flow",
            kpi("deploys", "deployment_frequency", baseline=20, threshold=40, target=60, stretch=120),
            kpi("lead_time", "lead_time_for_changes", baseline=120, threshold=60, target=48, stretch=24),
            weight=3,
        ),
        objective("safety", kpi("cfr", "change_failure_rate", baseline=30, threshold=15, target=10, stretch=5)),
        weight=1,
    ),
]


def worked_example() -> tuple[pd.DataFrame, pd.DataFrame]:
    config = card(*WORKED, name="Worked Example", dora_report_year=2024)
    sept, octo = "2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z"
    metrics = metric_rows(
        ("availability", "all", "month", sept, 99.7),
        ("availability", "all", "month", octo, 99.95),
        ("mttr", "all", "month", sept, 3.0),
        ("mttr", "all", "month", octo, 1.0),
        ("deployment_frequency", "all", "month", sept, 45),
        ("deployment_frequency", "all", "month", octo, 31),
        ("lead_time_for_changes", "all", "month", sept, 96.0),
        ("lead_time_for_changes", "all", "month", octo, 48.0),
        ("change_failure_rate", "all", "month", octo, 12.0),
        ("change_failure_rate", "checkout", "month", sept, 50.0),  # a service row: not the KPI's scope
    )
    manual = pd.DataFrame(
        {"kpi_id": ["csat", "csat", "reopened"], "period_start": ["2026-09-01", "2026-10-01", "2026-09-01"],
         "value": [4.2, 4.2, 6]}
    )  # fmt: skip
    return score(config, kpi_values_from_metrics(config, metrics, manual))


def test_worked_example_kpis_september():
    """September 2026 (30 days), all performances (v - baseline) / (target - baseline):

    availability 99.7: 0.7 / 0.9 = 7/9 = 0.7778, amber (>= 99.5, < 99.9)
    csat 4.2: 1.2 / 1 = 1.2, green (>= 4, < 4.5)
    mttr 3: (3 - 8) / (2 - 8) = 5/6 = 0.8333, amber (<= 4, > 2); recovery band 3 h < 24 h: high
    reopened 6: (6 - 10) / (5 - 10) = 0.8, amber (no threshold, 0.8 >= 0.7)
    deploys 45: 25 / 40 = 0.625, amber (>= 40, < 60); 45 / 30 days = 1.5 per day: elite
    lead_time 96: (96 - 120) / (48 - 120) = 1/3, red (> 60); 96 h <= 168: high
    cfr: no value (only a checkout row): no_data, no band
    No previous period: every trend is None.
    """
    kpis, _ = worked_example()
    rows = kpis_by_id(kpis, "2026-09-01")
    expected = {
        "availability": (7 / 9, "amber", None),
        "csat": (1.2, "green", None),
        "mttr": (5 / 6, "amber", "high"),
        "reopened": (0.8, "amber", None),
        "deploys": (0.625, "amber", "elite"),
        "lead_time": (1 / 3, "red", "high"),
    }
    for kpi_id, (performance, status, band) in expected.items():
        row = rows[kpi_id]
        assert (row["performance"], row["status"], row["dora_band"]) == (approx(performance), status, band), kpi_id
        assert is_missing(row["trend"])
    assert rows["cfr"]["status"] == "no_data" and is_missing(rows["cfr"]["performance"])
    assert rows["cfr"]["dora_band"] is None
    assert list(rows) == ["availability", "csat", "mttr", "reopened", "deploys", "lead_time", "cfr"]  # file order
    assert rows["mttr"]["period_end"] == pd.Timestamp("2026-10-01", tz="UTC")


def test_worked_example_kpis_october():
    """October 2026 (31 days):

    availability 99.95: 0.95 / 0.9 = 19/18 = 1.0556, green (>= 99.9, < 99.99); +0.25 improving
    csat 4.2: 1.2, green; change 0: flat
    mttr 1: (1 - 8) / (2 - 8) = 7/6 = 1.1667, blue (<= stretch 1); 3 -> 1 improving (lower is better);
        band: 1 h is not < 1 h, so high
    reopened: no value: no_data, trend None
    deploys 31: 11 / 40 = 0.275, red (< 40); 45 -> 31 worsening; 31 / 31 days = 1 per day: elite
    lead_time 48: -72 / -72 = 1.0, green (= target, > stretch 24); 96 -> 48 improving; high
    cfr 12: (12 - 30) / (10 - 30) = 0.9, amber (<= 15, > 10); no September value: trend None; 2024: high
    """
    kpis, _ = worked_example()
    rows = kpis_by_id(kpis, "2026-10-01")
    expected = {
        "availability": (19 / 18, "green", "improving", 0.25, None),
        "csat": (1.2, "green", "flat", 0.0, None),
        "mttr": (7 / 6, "blue", "improving", -2.0, "high"),
        "deploys": (0.275, "red", "worsening", -14.0, "elite"),
        "lead_time": (1.0, "green", "improving", -48.0, "high"),
        "cfr": (0.9, "amber", None, None, "high"),
    }
    for kpi_id, (performance, status, trend, change, band) in expected.items():
        row = rows[kpi_id]
        got = (row["performance"], row["status"], None if is_missing(row["trend"]) else row["trend"],
               None if is_missing(row["change"]) else row["change"], row["dora_band"])  # fmt: skip
        assert got == (approx(performance), status, trend, None if change is None else approx(change), band), kpi_id
    assert rows["reopened"]["status"] == "no_data" and is_missing(rows["reopened"]["trend"])
    assert rows["reopened"]["previous_value"] == 6


def test_worked_example_roll_up_september():
    """September, from the KPI performances above:

    uptime (weighted): (2 * 7/9 + 1 * 1.2) / 3 = (70/45 + 54/45) / 3 = 124/135 = 0.9185, amber
    restore (min): min(5/6, 0.8) = 0.8, amber
    customer (w 2): (124/135 + 108/135) / 2 = 116/135 = 0.8593, amber, coverage 1, kpis 4/4
    flow (w 3): (0.625 + 1/3) / 2 = 23/48 = 0.4792, red
    safety (w 1): no data: no_data, coverage 0, kpis 0/1
    process (w 1): only flow has data: 23/48, red, coverage 3 / (3 + 1) = 0.75, kpis 2/3
    scorecard: (2 * 116/135 + 1 * 23/48) / 3 = (3712 + 1035) / 2160 / 3 = 4747/6480 = 0.7326, amber,
        coverage weighted through the tree: (2 * 1 + 1 * 0.75) / 3 = 11/12, kpis 6/7
    """
    _, nodes = worked_example()
    rows = nodes_by_id(nodes, "2026-09-01")
    expected = {
        "worked_example": ("scorecard", None, 4747 / 6480, "amber", 11 / 12, 6, 7),
        "customer": ("perspective", "worked_example", 116 / 135, "amber", 1.0, 4, 4),
        "process": ("perspective", "worked_example", 23 / 48, "red", 0.75, 2, 3),
        "uptime": ("objective", "customer", 124 / 135, "amber", 1.0, 2, 2),
        "restore": ("objective", "customer", 0.8, "amber", 1.0, 2, 2),
        "flow": ("objective", "process", 23 / 48, "red", 1.0, 2, 2),
        "safety": ("objective", "process", None, "no_data", 0.0, 0, 1),
    }
    assert list(rows) == list(expected)  # scorecard, perspectives, objectives, in file order
    for node_id, (node_type, parent, score_, status, coverage, scored, total) in expected.items():
        row = rows[node_id]
        got_score = None if is_missing(row["score"]) else row["score"]
        got_parent = None if is_missing(row["parent_id"]) else row["parent_id"]
        assert (row["node_type"], got_parent, got_score, row["status"], row["coverage"], row["kpis_scored"],
                row["kpis_total"]) == (node_type, parent, None if score_ is None else approx(score_), status,
                                       approx(coverage), scored, total), node_id  # fmt: skip
    assert rows["restore"]["rollup"] == "min" and rows["worked_example"]["name"] == "Worked Example"


def test_worked_example_roll_up_october():
    """October:

    uptime: (2 * 19/18 + 1.2) / 3 = (95/45 + 54/45) / 3 = 149/135 = 1.1037, green
    restore (min): reopened has no data, so min(7/6) = 7/6, green, coverage 1/2, kpis 1/2
    customer: (149/135 + 7/6) / 2 = (596 + 630) / 540 / 2 = 613/540 = 1.1352, green, kpis 3/4,
        coverage (1 + 1/2) / 2 = 3/4 (the share of KPI weight with data, through the tree)
    flow: (0.275 + 1.0) / 2 = 51/80 = 0.6375, red
    safety: 0.9, amber
    process: (3 * 51/80 + 1 * 0.9) / 4 = (153/80 + 72/80) / 4 = 225/320 = 0.703125, amber
    scorecard: (2 * 613/540 + 225/320) / 3 = (19616 + 6075) / 8640 / 3 = 25691/25920 = 0.9912, amber, kpis 6/7,
        coverage (2 * 3/4 + 1 * 1) / 3 = 5/6 (every perspective has data, but not all its KPI weight does)
    """
    _, nodes = worked_example()
    rows = nodes_by_id(nodes, "2026-10-01")
    expected = {
        "worked_example": (25691 / 25920, "amber", 5 / 6, 6, 7),
        "customer": (613 / 540, "green", 3 / 4, 3, 4),
        "process": (225 / 320, "amber", 1.0, 3, 3),
        "uptime": (149 / 135, "green", 1.0, 2, 2),
        "restore": (7 / 6, "green", 0.5, 1, 2),
        "flow": (51 / 80, "red", 1.0, 2, 2),
        "safety": (0.9, "amber", 1.0, 1, 1),
    }
    for node_id, (score_, status, coverage, scored, total) in expected.items():
        row = rows[node_id]
        got = (row["score"], row["status"], row["coverage"], row["kpis_scored"], row["kpis_total"])
        assert got == (approx(score_), status, approx(coverage), scored, total), node_id


def test_worked_example_frames_have_the_public_columns():
    kpis, nodes = worked_example()
    assert list(kpis.columns) == KPI_SCORE_COLUMNS
    assert list(nodes.columns) == NODE_SCORE_COLUMNS
    assert len(kpis) == 7 * 2 and len(nodes) == 7 * 2
    assert set(kpis["scorecard"]) == {"Worked Example"} and set(nodes["scorecard"]) == {"Worked Example"}
    assert set(kpis["status"]) <= {"blue", "green", "amber", "red", "no_data"}
    # period_start sorted, then file order
    assert kpis["period_start"].is_monotonic_increasing and nodes["period_start"].is_monotonic_increasing
    assert kpis.loc[kpis["kpi_id"] == "reopened", "direction"].tolist() == ["lower_is_better"] * 2
    assert kpis.loc[kpis["kpi_id"] == "lead_time", ["unit", "direction"]].values.tolist()[0] == [
        "hours", "lower_is_better"]  # fmt: skip
