"""The scorecard's Dagster assets, partitioned by UTC day.

    incidents, changes, deployments, pull_requests   records updated in the window, upserted from every source
    metric_values                                    every week / month / review period the updated records touch
    kpi_scores, node_scores                          the touched review periods and the next one (its trend moved)
    metric_dictionary                                the metric definitions (not partitioned)

Every partitioned asset has `BackfillPolicy.single_run()`: a backfill of a range is one run whose
assets see the whole range as one time window, so each source is read once for the range.
The warehouse is the hand-over between assets: no asset output goes through an I/O manager.
"""

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSpec,
    BackfillPolicy,
    BetaWarning,
    DailyPartitionsDefinition,
    MaterializeResult,
    ResourceParam,
    asset,
    multi_asset,
)

from connectors.base import Source, in_window, record_times
from connectors.files.manual import empty_values, read_manual_values
from connectors.records import KINDS
from connectors.services import UNMAPPED
from pipelines import clock
from pipelines.config import Config
from pipelines.derive import current_period_start, derive
from pipelines.resources import ProgressReporter, ScorecardConfigResource, WarehouseResource
from scoring.dictionary import dictionary_frame
from scoring.periods import period_table, shift_periods, utc
from scoring.scorecard import kpi_values_from_metrics, score
from warehouse import Warehouse

# BackfillPolicy is marked beta in Dagster 1.x; relying on it is deliberate (one run per backfilled range).
warnings.filterwarnings("ignore", category=BetaWarning, message=".*backfill_policy.*")

PARTITIONS_START_ENV = "SCORECARD_PARTITIONS_START"
DEFAULT_PARTITIONS_START = "2024-01-01"
METRIC_GRAINS = ("week", "month")  # plus the scorecard's review period
REJECTED_SHARE_WARN = 0.05  # the rejected_share check warns above this share of the rows read

DAILY = DailyPartitionsDefinition(
    start_date=os.environ.get(PARTITIONS_START_ENV, DEFAULT_PARTITIONS_START), timezone="UTC"
)
SINGLE_RUN = BackfillPolicy.single_run()
FACTS_GROUP, SCORECARD_GROUP = "facts", "scorecard"

# The span of time a record's metrics depend on: (start column, end column or None).
EVENT_SPANS: dict[str, tuple[str, str | None]] = {
    "incidents": ("opened_at", "resolved_at"),  # an open incident runs to the window's end
    "changes": ("implemented_at", None),
    "deployments": ("deployed_at", None),
    "pull_requests": ("merged_at", None),
}


# ---------------------------------------------------------------------------------------------
# Periods touched by a window's records (pure functions)


def record_spans(updated: dict[str, pd.DataFrame], window_end: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """(start, last instant) of every updated record's event span, as UTC datetime64[ns]; undated records skipped."""
    starts, lasts = [], []
    for kind, frame in updated.items():
        start_column, end_column = EVENT_SPANS[kind]
        if start_column not in frame.columns or frame.empty:
            continue
        start = pd.to_datetime(frame[start_column], utc=True)
        last = start
        if end_column is not None and end_column in frame.columns:
            last = pd.to_datetime(frame[end_column], utc=True).fillna(window_end - pd.Timedelta(1, "ns"))
        dated = start.notna().to_numpy()
        starts.append(_naive(start[dated]))
        lasts.append(np.maximum(_naive(start[dated]), _naive(last[dated])))
    if not starts:
        return np.array([], dtype="datetime64[ns]"), np.array([], dtype="datetime64[ns]")
    return np.concatenate(starts), np.concatenate(lasts)


def touched_periods(
    updated: dict[str, pd.DataFrame],
    grain: str,
    window_start: pd.Timestamp,
    window_end: pd.Timestamp,
    now: pd.Timestamp | None = None,
) -> pd.DatetimeIndex:
    """Starts (UTC) of the `grain` periods the window itself and the updated records' event spans overlap.

    Spans are cut at `now` (default: no cut): periods that have not begun have no events to count.
    """
    starts, lasts = record_spans(updated, window_end)
    if now is not None:
        cut = _naive(pd.Series([max(utc(now), window_end)]))[0]
        begun = starts < cut
        starts, lasts = starts[begun], np.minimum(lasts[begun], cut)
    starts = np.append(starts, _naive(pd.Series([window_start]))).astype("datetime64[ns]")
    lasts = np.append(lasts, _naive(pd.Series([window_end - pd.Timedelta(1, "ns")]))).astype("datetime64[ns]")
    table = period_table(pd.Timestamp(starts.min(), tz="UTC"), pd.Timestamp(lasts.max(), tz="UTC")
                         + pd.Timedelta(1, "ns"), grain)  # fmt: skip
    period_starts = _naive(table["period_start"])
    first = np.searchsorted(period_starts, starts, side="right") - 1
    after = np.searchsorted(period_starts, lasts, side="right")
    size = len(period_starts) + 1
    covered = np.cumsum(np.bincount(first, minlength=size) - np.bincount(after, minlength=size))[:-1] > 0
    return pd.DatetimeIndex(table["period_start"][covered])


def next_periods(periods: pd.DatetimeIndex, grain: str, count: int = 1) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(shift_periods(_naive(pd.Series(periods)), grain, count)).tz_localize("UTC")


def periods_to_score(touched: pd.DatetimeIndex, grain: str, now: pd.Timestamp) -> pd.DatetimeIndex:
    """The touched review periods and the period after each (its trend compares with them), if it has begun."""
    following = next_periods(touched, grain)
    return touched.union(following[following <= now])


def _naive(stamps: pd.Series) -> np.ndarray:
    index = pd.DatetimeIndex(stamps)
    return (index.tz_convert("UTC").tz_localize(None) if index.tz is not None else index).as_unit("ns").to_numpy()


def metric_grains(config: Config) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*METRIC_GRAINS, config.scorecard.review_period)))


def updated_records(facts: dict[str, pd.DataFrame], start: pd.Timestamp, end: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The fact rows whose updated_at (else event time) falls in [start, end)."""
    return {kind: frame[in_window(record_times(frame, kind), start, end)] for kind, frame in facts.items()}


def derive_touched(
    facts: dict[str, pd.DataFrame], config: Config, grain: str, periods: pd.DatetimeIndex, now: pd.Timestamp
) -> pd.DataFrame:
    """metric_values rows of `grain` for exactly `periods`, derived from all facts as they stand at `now`.

    Records of no configured service (service `unmapped`) are kept in the facts but stay out of the metrics.
    """
    start = periods.min()
    end = next_periods(periods[-1:], grain)[0]
    mapped = {kind: frame[frame["service"] != UNMAPPED] for kind, frame in facts.items()}
    values = derive(mapped, grain=grain, start=start, end=end, as_of=min(now, end), config=config)
    return values[values["period_start"].isin(periods)].reset_index(drop=True)


def review_period_values(metric_values: pd.DataFrame, grain: str, periods: pd.DatetimeIndex) -> pd.DataFrame:
    """Stored metric_values rows of the review period's grain in `periods`."""
    rows = metric_values[metric_values["grain"] == grain].copy()
    rows["period_start"] = pd.to_datetime(rows["period_start"], utc=True)
    return rows[rows["period_start"].isin(periods)]


# ---------------------------------------------------------------------------------------------
# Asset plumbing


@dataclass
class Scope:
    """What every asset step opens first: config and sources (the pre-flight), warehouse, window."""

    config: Config
    sources: list[Source]
    warehouse: Warehouse
    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def as_of(self) -> pd.Timestamp:
        """The instant the run computes as of: its window's end, capped at now. The same run gives the same rows."""
        return min(self.end, clock.now())


@contextmanager
def open_scope(
    context: AssetExecutionContext, scorecard: ScorecardConfigResource, warehouse: WarehouseResource
) -> Iterator[Scope]:
    config = scorecard.load()
    sources = scorecard.sources(config)  # a source that cannot run stops every step here, before any write
    window = context.partition_time_window
    with warehouse.connect(config) as connected:
        yield Scope(config, sources, connected, utc(window.start), utc(window.end))


def _window_metadata(scope: Scope) -> dict[str, str]:
    return {"window_start": scope.start.isoformat(), "window_end": scope.end.isoformat()}


def rejected_share_check(kind: str, read: int, rejected: int) -> AssetCheckResult:
    share = rejected / read if read else 0.0
    return AssetCheckResult(
        asset_key=kind,
        check_name="rejected_share",
        passed=share <= REJECTED_SHARE_WARN,
        severity=AssetCheckSeverity.WARN,
        metadata={"rejected": rejected, "read": read, "share": round(share, 4), "threshold": REJECTED_SHARE_WARN},
        description=f"{rejected} of {read} rows read were rejected (warn above {REJECTED_SHARE_WARN:.0%})",
    )


# ---------------------------------------------------------------------------------------------
# Facts


def load_facts(scope: Scope, kind: str) -> dict[str, int]:
    """Fetch `kind` from every source for the window, upsert the good records, keep the rejected ones.

    `rejected` counts the rows rejected in the window, `rejected_new` those not already in rejected_records,
    `same_time_conflicts` the rows a source dropped for a later one with the same key and updated_at.
    """
    counts = {"read": 0, "inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0, "rejected_new": 0,
              "same_time_conflicts": 0}
    for source in scope.sources:
        cursor = scope.warehouse.get_cursor(source.name, kind)
        batch = source.fetch(kind, scope.start, scope.end, cursor)
        result = scope.warehouse.upsert_facts(kind, batch.good)
        counts["rejected_new"] += scope.warehouse.write_rejected(kind, batch.rejected, source=source.name)
        if batch.cursor is not None and batch.cursor != cursor:  # only once its records have landed
            scope.warehouse.set_cursor(source.name, kind, batch.cursor)
        counts["read"] += batch.read
        counts["rejected"] += len(batch.rejected)
        counts["same_time_conflicts"] += batch.same_time_conflicts
        counts["inserted"] += result.inserted
        counts["updated"] += result.updated
        counts["unchanged"] += result.unchanged
    return counts


def fact_asset(kind: str):
    @asset(
        name=kind,
        group_name=FACTS_GROUP,
        partitions_def=DAILY,
        backfill_policy=SINGLE_RUN,
        check_specs=[AssetCheckSpec("rejected_share", asset=kind, description="Share of rows read that were "
                                    f"rejected, warning above {REJECTED_SHARE_WARN:.0%}")],  # fmt: skip
        description=f"Canonical {kind.replace('_', ' ')} updated in the partition's day, upserted by (source, "
        "source_id) from every configured source; unreadable rows go to rejected_records.",
    )
    def _facts(
        context: AssetExecutionContext,
        scorecard: ScorecardConfigResource,
        warehouse: WarehouseResource,
        progress: ResourceParam[ProgressReporter],
    ) -> MaterializeResult:
        progress.step_started(kind)
        with open_scope(context, scorecard, warehouse) as scope:
            counts = load_facts(scope, kind)
        progress.step_done(kind, **counts)
        return MaterializeResult(
            metadata={**counts, **_window_metadata(scope), "sources": ", ".join(s.name for s in scope.sources)},
            check_results=[rejected_share_check(kind, counts["read"], counts["rejected"])],
        )

    return _facts


FACT_ASSETS = [fact_asset(kind) for kind in KINDS]


# ---------------------------------------------------------------------------------------------
# Metrics


@asset(
    group_name=SCORECARD_GROUP,
    partitions_def=DAILY,
    backfill_policy=SINGLE_RUN,
    deps=list(KINDS),
    description="Every metric for every service and `all`, recomputed for each week, month and review period "
    "that the records updated in the window touch (their event times; an incident's opened..resolved span).",
)
def metric_values(
    context: AssetExecutionContext,
    scorecard: ScorecardConfigResource,
    warehouse: WarehouseResource,
    progress: ResourceParam[ProgressReporter],
) -> MaterializeResult:
    progress.step_started("metric_values")
    with open_scope(context, scorecard, warehouse) as scope:
        metadata = write_metric_values(scope)
    progress.step_done("metric_values", metrics=metadata["rows_written"])
    return MaterializeResult(metadata={**metadata, **_window_metadata(scope)})


def write_metric_values(scope: Scope) -> dict[str, int]:
    """Derive and replace the touched periods of every grain; returns counts for the asset's metadata."""
    facts = {kind: scope.warehouse.read_facts(kind) for kind in KINDS}
    updated = updated_records(facts, scope.start, scope.end)
    counts = {"rows_written": 0, "records_updated": sum(len(frame) for frame in updated.values())}
    for grain in metric_grains(scope.config):
        periods = touched_periods(updated, grain, scope.start, scope.end, scope.as_of)
        values = derive_touched(facts, scope.config, grain, periods, scope.as_of)
        counts["rows_written"] += scope.warehouse.replace_metric_values(values, grain, list(periods))
        counts[f"{grain}_periods"] = len(periods)
    return counts


# ---------------------------------------------------------------------------------------------
# Scores


def manual_values(scope: Scope, scorecard: ScorecardConfigResource) -> pd.DataFrame:
    """KPI values from `sources.files.values`; rows without a period count for the window's last review period."""
    path = scorecard.values_path(scope.config)
    if path is None:
        return empty_values()
    review_period = scope.config.scorecard.review_period
    last_period = current_period_start(scope.end - pd.Timedelta(1, "ns"), review_period)
    return read_manual_values(path, review_period, last_period)


def score_periods(
    config: Config, metric_rows: pd.DataFrame, manual: pd.DataFrame, periods: pd.DatetimeIndex
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kpi_scores, node_scores) of `periods`, scored with the previous periods' values for the trend."""
    grain = config.scorecard.review_period
    with_previous = periods.union(next_periods(periods, grain, -1))
    values = kpi_values_from_metrics(config.scorecard, review_period_values(metric_rows, grain, with_previous), manual)
    values = values[values["period_start"].isin(with_previous)]
    kpi_scores, node_scores = score(config.scorecard, values)
    return (kpi_scores[kpi_scores["period_start"].isin(periods)].reset_index(drop=True),
            node_scores[node_scores["period_start"].isin(periods)].reset_index(drop=True))  # fmt: skip


@multi_asset(
    specs=[
        AssetSpec("kpi_scores", group_name=SCORECARD_GROUP, deps=["metric_values"],
                  description="Each KPI scored per review period: value, performance, status, trend, DORA band."),
        AssetSpec("node_scores", group_name=SCORECARD_GROUP, deps=["kpi_scores"],
                  description="Objective, perspective and scorecard roll-ups per review period, with coverage."),
    ],  # fmt: skip
    partitions_def=DAILY,
    backfill_policy=SINGLE_RUN,
)
def scorecard_scores(
    context: AssetExecutionContext,
    scorecard: ScorecardConfigResource,
    warehouse: WarehouseResource,
    progress: ResourceParam[ProgressReporter],
):
    """Scores the review periods the window's updated records touch, and the period after each."""
    progress.step_started("scores")
    with open_scope(context, scorecard, warehouse) as scope:
        kpi_count, node_count, scored = write_scores(scope, manual_values(scope, scorecard))
    progress.step_done("scores", kpis=kpi_count, nodes=node_count)
    periods = ", ".join(p.strftime("%Y-%m-%d") for p in scored)
    for key, count in (("kpi_scores", kpi_count), ("node_scores", node_count)):
        yield MaterializeResult(asset_key=key, metadata={"rows_written": count, "periods": periods,
                                                         **_window_metadata(scope)})  # fmt: skip


def write_scores(scope: Scope, manual: pd.DataFrame) -> tuple[int, int, pd.DatetimeIndex]:
    """Score and replace the touched review periods and the next ones: (kpi rows, node rows, periods scored)."""
    grain = scope.config.scorecard.review_period
    updated = {kind: scope.warehouse.read_facts_updated(kind, scope.start, scope.end) for kind in KINDS}
    periods = periods_to_score(touched_periods(updated, grain, scope.start, scope.end, scope.as_of), grain,
                               scope.as_of)  # fmt: skip
    kpi_scores, node_scores = score_periods(scope.config, scope.warehouse.read_table("metric_values"), manual, periods)
    scored = pd.DatetimeIndex(kpi_scores["period_start"].unique())
    kpi_count, node_count = scope.warehouse.replace_scores(scope.config.scorecard.name, kpi_scores, node_scores,
                                                           list(scored))  # fmt: skip
    return kpi_count, node_count, scored


# ---------------------------------------------------------------------------------------------
# The metric dictionary


@asset(group_name=SCORECARD_GROUP, description="The metric definitions (scoring.dictionary) for BI readers.")
def metric_dictionary(
    scorecard: ScorecardConfigResource, warehouse: WarehouseResource, progress: ResourceParam[ProgressReporter]
) -> MaterializeResult:
    progress.step_started("metric_dictionary")
    config = scorecard.load()
    scorecard.sources(config)  # the same pre-flight as every asset: nothing is written on a bad setup
    frame = dictionary_frame()
    with warehouse.connect(config) as connected:
        connected.write_metric_dictionary(frame)
    progress.step_done("metric_dictionary")
    return MaterializeResult(metadata={"metrics": len(frame)})


ASSETS = [*FACT_ASSETS, metric_values, scorecard_scores, metric_dictionary]
