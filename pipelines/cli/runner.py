"""`scorecard run` and `scorecard backfill`: the Dagster job of pipelines.definitions, executed in-process.

Both commands run the very job the nightly schedule runs, over a range of day partitions as ONE
run (the assets' single-run backfill policy gives them the whole range as one time window).
A pre-flight reads the config, checks every source's files and credentials and opens the
warehouse first, so a bad setup stops with one message before anything is written.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import yaml
from dagster import (
    AssetCheckSeverity,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    EventLogEntry,
    ExecuteInProcessResult,
    partition_loading_context,
)
from dagster._core.execution.plan.objects import ErrorSource
from dagster._core.instance.ref import InstanceRef
from dagster._core.utils import make_new_run_id
from rich.progress import Progress

from connectors.files.manual import read_manual_values
from connectors.records import KINDS
from pipelines import clock, interrupts
from pipelines.cli import last_run
from pipelines.cli.last_run import RANGE_END_TAG, RANGE_START_TAG
from pipelines.config import Config
from pipelines.definitions import JOB_NAME, build_definitions
from pipelines.partitions import DAILY, PARTITIONS_START_ENV
from pipelines.resources import ProgressReporter, ScorecardConfigResource, WarehouseResource
from warehouse.urls import display_url, mask_text

# Quiet Dagster's own console logging: the CLI prints its summary; failures are reported from the events.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class RangeError(ValueError):
    """--from / --to outside the partitions that exist."""


@dataclass
class Plan:
    """What a run will do, known after the pre-flight."""

    config: Config
    config_path: Path
    first: date
    last: date
    warehouse_url: str  # secrets masked

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


@dataclass
class RunSummary:
    run_id: str
    success: bool
    seconds: float
    counts: dict[str, int]
    checks_failed: list[str]
    checks_warned: list[str]
    error: str | None = None
    report: str | None = None  # the HTML report the run wrote (scorecard_report), if any
    warning: str | None = None  # the check findings could not be kept for `scorecard checks`


def check_range(first: date, last: date) -> None:
    """Raise RangeError unless [first, last] are existing day partitions."""
    start = DAILY.start.date()
    last_available = _last_partition()
    if first < start:
        raise RangeError(f"--from {first} is before the first partition {start} (set {PARTITIONS_START_ENV} "
                         "to start earlier)")  # fmt: skip
    if last_available is None or last > last_available:
        raise RangeError(f"--to {last} is not a complete UTC day yet (the last partition is {last_available})")


def _last_partition() -> date | None:
    with partition_loading_context(effective_dt=clock.now().to_pydatetime()):
        window = DAILY.get_last_partition_window()
    return window.start.date() if window is not None else None


def preflight(config_path: Path | None, first: date, last: date) -> Plan:
    """Range, config, sources (connectors, credentials, every file read), values file, review files and warehouse
    (open and writable), in that order; raises on the first problem.

    Raises RangeError, ConfigError, SourceError, InputFileError (values and review files) or WarehouseError; nothing
    is written but the warehouse schema (created on first use, once everything else is known to be right).
    """
    check_range(first, last)
    resource = ScorecardConfigResource(path=str(config_path) if config_path else None)
    config = resource.load()
    resource.sources(config)
    _check_values_file(resource, config)
    resource.review(config)  # the review files: a bad line raises ReviewFileError (an InputFileError) naming it
    # Outside Dagster the URL is read from the environment directly: an EnvVar only resolves inside a run.
    warehouse = WarehouseResource()
    with warehouse.connect(config) as connected:
        connected.check_writable()
    return Plan(config, resource.config_path, first, last, display_url(warehouse.resolve_url(config)))


def _check_values_file(resource: ScorecardConfigResource, config: Config) -> None:
    """Read the manual KPI values once up front: a bad line raises InputFileError naming it."""
    path = resource.values_path(config)
    if path is not None:
        grain = config.scorecard.review_period
        read_manual_values(path, grain, pd.Timestamp("2000-01-01", tz="UTC"))




def execute(plan: Plan, progress: ProgressReporter | None = None) -> RunSummary:
    """One in-process run of the scorecard job over plan.first..plan.last."""
    defs = build_definitions(progress=progress, scorecard=ScorecardConfigResource(path=str(plan.config_path)))
    job = defs.resolve_job_def(JOB_NAME)
    began = time.monotonic()
    run_id = make_new_run_id()
    with open_instance() as instance:
        instance.add_event_listener(run_id, lambda event: _cancel_when_interrupted(instance, event))
        try:
            result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET_RUN_CONFIG,
                                            run_id=run_id, **_partition_args(plan.first, plan.last))  # fmt: skip
            interrupts.raise_if_received()  # Dagster's own handlers took the signal
        except interrupts.Interrupted as interrupted:
            interrupted.stage = _settle_interrupted(instance, run_id)
            raise
        finally:
            kept = _keep_checks(instance, run_id, plan.config_path)
        return RunSummary(result.run_id, result.success, time.monotonic() - began, summary_counts(result),
                          failed_checks(result, AssetCheckSeverity.ERROR),
                          failed_checks(result, AssetCheckSeverity.WARN), first_failure(result),
                          report_path(result), kept)  # fmt: skip


def _cancel_when_interrupted(instance: DagsterInstance, event: EventLogEntry) -> None:
    """A step stopped by Ctrl-C or SIGTERM: the user asked the run to stop. Marked CANCELING before Dagster ends the
    run, Dagster records it CANCELED (else: a FAILURE, "interrupted unexpectedly")."""
    dagster_event = event.dagster_event
    if dagster_event is None or dagster_event.event_type != DagsterEventType.STEP_FAILURE:
        return
    if dagster_event.step_failure_data.error_source != ErrorSource.INTERRUPT:
        return
    run = instance.get_run_by_id(event.run_id)
    if run is not None and run.status == DagsterRunStatus.STARTED:
        instance.report_run_canceling(run, message="Interrupted (Ctrl-C or SIGTERM) on the command line.")


def _settle_interrupted(instance: DagsterInstance, run_id: str) -> str:
    """Record an interrupted run CANCELED if it is not finished (interrupted before it started, Dagster leaves it
    NOT_STARTED); returns how far it got: starting, running or finished."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return "starting"
    if not run.is_finished:
        instance.report_run_canceled(run, message="Interrupted (Ctrl-C or SIGTERM) on the command line.")
    if run.status == DagsterRunStatus.SUCCESS:
        return "finished"
    return "starting" if run.status == DagsterRunStatus.NOT_STARTED else "running"


def _keep_checks(instance: DagsterInstance, run_id: str, config_path: Path) -> str | None:
    """Keep the run's checks for `scorecard checks` beside the config: a throw-away instance forgets them, and
    `checks` without DAGSTER_HOME (the summary's pointer) finds them there."""
    found = last_run.from_instance(instance, run_id)
    return last_run.keep(found, config_path) if found is not None else None


def _partition_args(first: date, last: date) -> dict:
    if first == last:
        return {"partition_key": first.isoformat()}
    return {"tags": {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}}


def open_instance() -> DagsterInstance:
    """The DAGSTER_HOME instance when there is one (runs show in `dagster dev`), else a throw-away one.

    Telemetry is off unless the home's dagster.yaml says otherwise: with it on, Dagster greets on stderr
    ("Welcome to Dagster!") the first time, which is noise in a command's output.
    """
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return DagsterInstance.ephemeral()
    overrides = None if _sets_telemetry(Path(home) / "dagster.yaml") else {"telemetry": {"enabled": False}}
    return DagsterInstance.from_ref(InstanceRef.from_dir(home, overrides=overrides))


def _sets_telemetry(instance_yaml: Path) -> bool:
    if not instance_yaml.is_file():
        return False
    settings = yaml.safe_load(instance_yaml.read_text(encoding="utf-8"))
    return isinstance(settings, dict) and "telemetry" in settings


def materialization_metadata(result: ExecuteInProcessResult) -> dict[str, dict[str, object]]:
    """asset key -> metadata values of its materialization in the run."""
    found = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        found[materialization.asset_key.to_user_string()] = {k: v.value for k, v in materialization.metadata.items()}
    return found


def report_path(result: ExecuteInProcessResult) -> str | None:
    """Where the run's scorecard_report asset wrote the HTML report (None: it wrote none)."""
    path = materialization_metadata(result).get("scorecard_report", {}).get("path")
    return str(path) if path else None


def summary_counts(result: ExecuteInProcessResult) -> dict[str, int]:
    metadata = materialization_metadata(result)
    facts = [metadata.get(kind, {}) for kind in KINDS]
    names = ("read", "inserted", "updated", "unchanged", "rejected", "same_time_conflicts")
    totals = {name: sum(int(m.get(name, 0)) for m in facts) for name in names}
    links = check_metadata(result, "dangling_change_links")
    return {
        **totals,
        "links": int(links.get("links", 0)),
        "dangling_links": int(links.get("dangling", 0)),
        "metrics": int(metadata.get("metric_values", {}).get("rows_written", 0)),
        "kpis": int(metadata.get("kpi_scores", {}).get("rows_written", 0)),
        "nodes": int(metadata.get("node_scores", {}).get("rows_written", 0)),
    }


def check_metadata(result: ExecuteInProcessResult, check_name: str) -> dict[str, object]:
    """The metadata values of the last evaluation of `check_name` in the run ({} if it did not run)."""
    found: dict[str, object] = {}
    for event in result.all_events:
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            if evaluation.check_name == check_name:
                found = {key: value.value for key, value in evaluation.metadata.items()}
    return found


def failed_checks(result: ExecuteInProcessResult, severity: AssetCheckSeverity) -> list[str]:
    """`asset:check` of every check of `severity` that did not pass in the run (once each)."""
    evaluations = [e.asset_check_evaluation_data for e in result.all_events
                   if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION]  # fmt: skip
    failed = [e for e in evaluations if not e.passed and e.severity == severity]
    return list(dict.fromkeys(f"{e.asset_key.to_user_string()}:{e.check_name}" for e in failed))


def first_failure(result: ExecuteInProcessResult) -> str | None:
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            cause = error.cause if error is not None and error.cause is not None else error
            message = error_line(cause.message) if cause is not None else "unknown error"
            return f"step {event.step_key} failed: {message}"
    return None if result.success else "the run failed"


# SQLAlchemy appends the statement, its parameters and a link to its docs: the driver's own words come first.
_NOT_THE_CAUSE = re.compile(r"^\s*(\[SQL:|\[parameters:|\(Background on this error at:)")
_QUALIFIED_CLASS = re.compile(r"^(?:\w+\.)+(?=\w+: )")


def error_line(message: str) -> str:
    """The one line of an exception's text that says what went wrong: its class without the module path and
    the first line of its message, secrets masked."""
    lines = [line.strip() for line in message.splitlines() if line.strip() and not _NOT_THE_CAUSE.match(line)]
    return mask_text(_QUALIFIED_CLASS.sub("", lines[0])) if lines else "unknown error"


# what the steps report done to the ProgressReporter (its docstring says when)
STEPS = (*KINDS, "metric_values", "scores", "metric_dictionary", "review", "alerts", "report")


class BarReporter(ProgressReporter):
    """Drives a rich progress bar: one tick per step of STEPS done."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.task = progress.add_task("starting", total=len(STEPS))

    def step_started(self, step: str) -> None:
        self.progress.update(self.task, description=step)

    def step_done(self, step: str, **counts: int) -> None:
        self.progress.update(self.task, advance=1, description=f"{step} done")
