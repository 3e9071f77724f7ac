"""metric_values (every week, month and review period the window's records touch, and every stored one that was still
running when written and has ended since: it may be whole now) and the metric dictionary."""

from dagster import AssetExecutionContext, MaterializeResult, ResourceParam, asset

from connectors.records import KINDS
from pipelines.assets.scope import SCORECARD_GROUP, Scope, open_scope, window_metadata
from pipelines.incremental import derive_touched, metric_grains, touched_periods, updated_records
from pipelines.partitions import DAILY, SINGLE_RUN
from pipelines.resources import ProgressReporter, ScorecardConfigResource, WarehouseResource
from scoring.completeness import with_completeness
from scoring.dictionary import dictionary_frame


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
    return MaterializeResult(metadata={**metadata, **window_metadata(scope)})


def write_metric_values(scope: Scope) -> dict[str, int]:
    """Derive and replace the touched periods of every grain; returns counts for the asset's metadata."""
    facts = {kind: scope.warehouse.read_facts(kind) for kind in KINDS}
    updated = updated_records(facts, scope.start, scope.end)
    counts = {"rows_written": 0, "records_updated": sum(len(frame) for frame in updated.values())}
    for grain in metric_grains(scope.config):
        periods = touched_periods(updated, grain, scope.start, scope.end, scope.as_of).union(
            scope.warehouse.unfinished_periods("metric_values", scope.as_of, grain=grain))
        values = with_completeness(derive_touched(facts, scope.config, grain, periods, scope.as_of),
                                   scope.completeness(periods, grain))  # fmt: skip
        counts["rows_written"] += scope.warehouse.replace_metric_values(values, grain, list(periods))
        counts[f"{grain}_periods"] = len(periods)
    return counts


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
