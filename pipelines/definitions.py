"""The one Dagster `Definitions` of the scorecard: `dagster dev` (workspace.yaml) and `scorecard run` load it."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, build_schedule_from_partitioned_job, define_asset_job

from pipelines.assets import ASSETS
from pipelines.checks import CHECKS
from pipelines.resources import ProgressReporter, ScorecardConfigResource, warehouse_resource

JOB_NAME = "scorecard_job"
SCHEDULE_NAME = "nightly_scorecard"

scorecard_job = define_asset_job(
    JOB_NAME,
    selection=AssetSelection.all(),
    description="Pull, derive, score and write: every asset for a day partition or a range (one run).",
)
nightly_schedule = build_schedule_from_partitioned_job(
    scorecard_job,
    name=SCHEDULE_NAME,
    hour_of_day=2,
    minute_of_hour=0,
    description="Every night at 02:00 UTC: the previous UTC day's partition.",
)


def build_definitions(progress: ProgressReporter | None = None, **resources: object) -> Definitions:
    """The definitions with the default resources, any of them replaced (the CLI passes its progress bar)."""
    defaults = {
        "scorecard": ScorecardConfigResource(),
        "warehouse": warehouse_resource(),
        "progress": progress or ProgressReporter(),
    }
    return Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=[scorecard_job],
        schedules=[nightly_schedule],
        resources={**defaults, **resources},
    )


defs = build_definitions()
