"""The job every run executes and the nightly schedule that runs it."""

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

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
