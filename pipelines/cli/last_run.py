"""The last run of the scorecard job and its asset checks' findings, for `scorecard checks`.

With $DAGSTER_HOME set they are read from that Dagster instance (the nightly run under dagster-daemon, and
`scorecard run` / `backfill` with DAGSTER_HOME set); without it, from the file `<config>.last-run.json` beside the
config, which `run` and `backfill` write after every run (without a Dagster home their instance is a throw-away one).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from dagster import AssetCheckEvaluation, AssetCheckSeverity, DagsterEventType, DagsterInstance, RunsFilter
from rich.table import Table

from pipelines.definitions import JOB_NAME
from pipelines.views.terminal import plain

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"


class LastRunError(ValueError):
    """No run recorded, or its record cannot be read."""


@dataclass
class LastRun:
    run_id: str
    status: str  # the Dagster run status: SUCCESS, FAILURE, CANCELED, STARTED, ...
    first_day: str | None
    last_day: str | None
    checks: list[dict]  # asset, check, passed, severity (WARN/ERROR), description, metadata

    @property
    def failed(self) -> list[dict]:
        """The checks of severity ERROR that did not pass."""
        return [c for c in self.checks if not c["passed"] and c["severity"] == AssetCheckSeverity.ERROR.value]


def check_row(evaluation: AssetCheckEvaluation) -> dict:
    return {
        "asset": evaluation.asset_key.to_user_string(),
        "check": evaluation.check_name,
        "passed": evaluation.passed,
        "severity": evaluation.severity.value,
        "description": evaluation.description,
        "metadata": {key: value.value for key, value in evaluation.metadata.items()},
    }


def from_instance(instance: DagsterInstance, run_id: str | None = None) -> LastRun | None:
    """The run `run_id` (default: the newest run of the scorecard job) in `instance` with every check it evaluated,
    in order (None: no such run)."""
    runs = [instance.get_run_by_id(run_id)] if run_id else instance.get_runs(RunsFilter(job_name=JOB_NAME), limit=1)
    if not runs or runs[0] is None:
        return None
    run = runs[0]
    entries = instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    checks = [check_row(entry.dagster_event.asset_check_evaluation_data) for entry in entries]
    first = run.tags.get(RANGE_START_TAG) or run.tags.get(PARTITION_TAG)
    last = run.tags.get(RANGE_END_TAG) or run.tags.get(PARTITION_TAG)
    return LastRun(run.run_id, run.status.value, first, last, checks)


def record_path(config_path: Path) -> Path:
    """Where `run` and `backfill` keep the last run of `config_path` without a Dagster home: beside the config."""
    return config_path.with_name(f"{config_path.stem}.last-run.json")


def keep(last_run: LastRun, config_path: Path) -> str | None:
    """Write the record beside the config; None, or a one-line warning when it cannot be written."""
    path = record_path(config_path)
    try:
        path.write_text(json.dumps(asdict(last_run), indent=2, default=str) + "\n", encoding="utf-8")
    except OSError as error:
        return f"{path}: cannot keep the run's check findings there ({error.strerror or error}); scorecard checks " \
               "will not show this run (set DAGSTER_HOME to keep runs in a Dagster instance)"  # fmt: skip
    return None


def load(config_path: Path) -> LastRun:
    """The last run: from the Dagster instance when $DAGSTER_HOME is set, else from the record beside the config."""
    if os.environ.get("DAGSTER_HOME"):
        from pipelines.cli.runner import open_instance  # imports this module

        with open_instance() as instance:
            found = from_instance(instance)
        if found is None:
            raise LastRunError(f"no run of {JOB_NAME} in the Dagster instance at $DAGSTER_HOME yet: run scorecard "
                               "run or scorecard backfill first")  # fmt: skip
        return found
    path = record_path(config_path)
    try:
        return LastRun(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise LastRunError(f"no run recorded for {config_path} yet ({path} does not exist): run scorecard run or "
                           "scorecard backfill first, or set DAGSTER_HOME to the Dagster home that ran it") from None
    except (OSError, ValueError, TypeError) as error:
        raise LastRunError(f"{path}: cannot read the last run's record ({error}): run scorecard run again") from None


RESULT_ORDER = {"failed": 0, "warning": 1, "passed": 2}


def result_word(check: dict) -> str:
    if check["passed"]:
        return "passed"
    return "failed" if check["severity"] == AssetCheckSeverity.ERROR.value else "warning"


def findings_text(check: dict) -> str:
    """The check's description, then its metadata as `key value` pairs."""
    metadata = ", ".join(f"{key} {value:,}" if isinstance(value, int) and not isinstance(value, bool)
                         else f"{key} {value}" for key, value in check["metadata"].items() if value != "")  # fmt: skip
    return "\n".join(part for part in (check["description"], metadata) if part)


def checks_table(found: LastRun) -> Table:
    """Failed checks first, then warnings, then those that passed, each with its findings."""
    span = found.first_day if found.first_day == found.last_day else f"{found.first_day} .. {found.last_day}"
    table = Table(title=plain(f"Checks of run {found.run_id[:8]} ({found.status}, {span})"), title_justify="left",
                  show_lines=True, pad_edge=False)  # fmt: skip
    for header in ("check", "result", "findings"):
        table.add_column(header, overflow="fold")
    for check in sorted(found.checks, key=lambda c: RESULT_ORDER[result_word(c)]):
        name = f"{check['asset']}:{check['check']}"
        table.add_row(plain(name), plain(result_word(check)), plain(findings_text(check)))
    return table
