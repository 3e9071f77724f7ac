"""The one Dagster `Definitions` of the scorecard: `dagster dev` (workspace.yaml) and `scorecard run` load it."""

from __future__ import annotations

from dagster import Definitions

from pipelines.assets import ASSETS
from pipelines.checks import CHECKS
from pipelines.resources import ProgressReporter, ScorecardConfigResource, alert_webhook_resource, warehouse_resource
from pipelines.schedules import JOB_NAME, SCHEDULE_NAME, nightly_schedule, scorecard_job

__all__ = ["JOB_NAME", "SCHEDULE_NAME", "build_definitions", "defs"]

def build_definitions(progress: ProgressReporter | None = None, **resources: object) -> Definitions:
    """The definitions with the default resources, any of them replaced (the CLI passes its progress bar)."""
    defaults = {
        "scorecard": ScorecardConfigResource(),
        "warehouse": warehouse_resource(),
        "alert_webhook": alert_webhook_resource(),
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
