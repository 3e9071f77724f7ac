"""kpi_scores and node_scores: the review periods the window's records touch, the stored ones that were still
running when scored and have ended since (they may be whole now), and the period after each."""

import pandas as pd
from dagster import AssetExecutionContext, AssetSpec, MaterializeResult, ResourceParam, multi_asset

from connectors.files.manual import empty_values, read_manual_values
from connectors.records import KINDS
from pipelines.assets.scope import SCORECARD_GROUP, Scope, open_scope, window_metadata
from pipelines.derive import current_period_start
from pipelines.incremental import next_periods, periods_to_score, review_period_values, touched_periods
from pipelines.partitions import DAILY, SINGLE_RUN
from pipelines.resources import ProgressReporter, ScorecardConfigResource, WarehouseResource
from scoring.completeness import complete_periods, with_completeness
from scoring.scorecard import kpi_values_from_metrics, score


def manual_values(scope: Scope, scorecard: ScorecardConfigResource) -> pd.DataFrame:
    """KPI values from `sources.files.values`; rows without a period count for the window's last review period."""
    path = scorecard.values_path(scope.config)
    if path is None:
        return empty_values()
    review_period = scope.config.scorecard.review_period
    last_period = current_period_start(scope.end - pd.Timedelta(1, "ns"), review_period)
    return read_manual_values(path, review_period, last_period)


def score_periods(
    scope: Scope, metric_rows: pd.DataFrame, manual: pd.DataFrame, periods: pd.DatetimeIndex
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kpi_scores, node_scores) of `periods`, scored with the previous periods' values for the trend (between
    complete periods only), each row with what its period covers."""
    config = scope.config
    grain = config.scorecard.review_period
    with_previous = periods.union(next_periods(periods, grain, -1))
    completeness = scope.completeness(with_previous, grain)
    values = kpi_values_from_metrics(config.scorecard, review_period_values(metric_rows, grain, with_previous), manual)
    values = values[values["period_start"].isin(with_previous)]
    kpi_scores, node_scores = score(config.scorecard, values, complete_periods(completeness))
    return tuple(with_completeness(frame[frame["period_start"].isin(periods)], completeness).reset_index(drop=True)
                 for frame in (kpi_scores, node_scores))  # fmt: skip


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
                                                         **window_metadata(scope)})  # fmt: skip


def write_scores(scope: Scope, manual: pd.DataFrame) -> tuple[int, int, pd.DatetimeIndex]:
    """Score and replace the touched review periods and the next ones: (kpi rows, node rows, periods scored)."""
    grain = scope.config.scorecard.review_period
    updated = {kind: scope.warehouse.read_facts_updated(kind, scope.start, scope.end) for kind in KINDS}
    touched = touched_periods(updated, grain, scope.start, scope.end, scope.as_of)
    unfinished = scope.warehouse.unfinished_periods("kpi_scores", scope.as_of, scorecard=scope.config.scorecard.name)
    periods = periods_to_score(touched.union(unfinished), grain, scope.as_of)
    kpi_scores, node_scores = score_periods(scope, scope.warehouse.read_table("metric_values"), manual, periods)
    scored = pd.DatetimeIndex(kpi_scores["period_start"].unique())
    kpi_count, node_count = scope.warehouse.replace_scores(scope.config.scorecard.name, kpi_scores, node_scores,
                                                           list(scored))  # fmt: skip
    return kpi_count, node_count, scored
