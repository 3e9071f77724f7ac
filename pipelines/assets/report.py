"""scorecard_report: the HTML report of the latest complete review period by the run's as-of instant, written
to `report.dir` (relative to scorecard.yaml) after the scores, the review's records and the alerts have landed.

The file is `<scorecard slug>-<period start>.html` (pipelines.views.render), with `index.html` beside it; its path
goes into the materialization's metadata, and `scorecard run` / `backfill` print it.
"""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, ResourceParam, asset

from pipelines.assets.scope import SCORECARD_GROUP, open_scope, window_metadata
from pipelines.partitions import DAILY, SINGLE_RUN
from pipelines.resources import ProgressReporter, ScorecardConfigResource, WarehouseResource
from pipelines.views.render import publish, report_dir
from pipelines.views.report import ReportError, read_frames

ASSET = "scorecard_report"
UPSTREAM = ["kpi_scores", "node_scores", "kpi_comments", "actions", "kpi_alerts"]


@asset(
    name=ASSET,
    group_name=SCORECARD_GROUP,
    partitions_def=DAILY,
    backfill_policy=SINGLE_RUN,
    deps=UPSTREAM,
    description="The HTML scorecard report (one self-contained file) of the latest complete review period by "
    "the run's as-of instant, in report.dir: summary, scorecard tree, trend charts, strategy map, weekly operations, "
    "action log, metric dictionary.",
)
def scorecard_report(
    context: AssetExecutionContext,
    scorecard: ScorecardConfigResource,
    warehouse: WarehouseResource,
    progress: ResourceParam[ProgressReporter],
) -> MaterializeResult:
    progress.step_started("report")
    with open_scope(context, scorecard, warehouse) as scope:
        frames = read_frames(scope.warehouse, scope.config.scorecard)
        try:
            written = publish(frames, scope.config, report_dir(scorecard.config_path, scope.config), scope.as_of)
        except ReportError as error:  # nothing scored yet: no report, and the run goes on
            context.log.warning(f"no report written: {error}")
            progress.step_done("report")
            return MaterializeResult(metadata={"written": False, "reason": str(error), **window_metadata(scope)})
    progress.step_done("report")
    return MaterializeResult(metadata={
        "written": True, "path": MetadataValue.path(str(written.path)), "index": MetadataValue.path(str(written.index)),
        "period": written.period, **window_metadata(scope),
    })  # fmt: skip
