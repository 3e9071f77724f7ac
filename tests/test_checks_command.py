"""`scorecard checks`: the last run's asset checks with their findings, read from the Dagster instance of
$DAGSTER_HOME, else from the record `run` and `backfill` keep beside the config."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetCheckSeverity
from demo_files import write_config
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.cli.last_run import LastRun, keep, record_path
from pipelines.clock import NOW_ENV

DAY = "2024-03-12"
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def with_a_rejected_incident(data_dir: Path, folder: Path) -> Path:
    """The shared data files, one incident of DAY moved to a service the config does not know: it is rejected,
    and incidents:rejected_share warns (1 of the day's few incidents)."""
    folder.mkdir(parents=True)
    for file in data_dir.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    incidents = pd.read_csv(folder / "incidents.csv", dtype=str, keep_default_na=False)
    incidents.loc[incidents.index[incidents["updated_at"].str.startswith(DAY)][0], "service"] = "no-such-service"
    incidents.to_csv(folder / "incidents.csv", index=False)
    return folder


def run_and_list_checks(folder: Path, data_dir: Path) -> tuple[Path, str, dict]:
    """`scorecard run` of DAY with a rejected incident, then `scorecard checks --format json`."""
    config_path = write_config(folder, with_a_rejected_incident(data_dir, folder / "data"))
    result = invoke("run", "--config", str(config_path), "--from", DAY)
    assert result.exit_code == 0, result.output
    listed = invoke("checks", "--config", str(config_path), "--format", "json")
    assert listed.exit_code == 0, listed.output
    return config_path, result.stdout, json.loads(listed.stdout)


@pytest.fixture(scope="module")
def without_dagster_home(tmp_path_factory, data_dir):
    with pytest.MonkeyPatch.context() as env:
        env.delenv("DAGSTER_HOME", raising=False)
        env.setenv(NOW_ENV, "2024-03-22T00:00:00Z")
        return run_and_list_checks(tmp_path_factory.mktemp("no_home"), data_dir)


def test_the_summary_points_to_the_findings(without_dagster_home):
    config_path, summary, _ = without_dagster_home
    assert (f"  checks           warning: incidents:rejected_share (details: scorecard checks --config "
            f"{config_path})\n") in summary  # fmt: skip


def test_checks_lists_every_check_of_the_last_run_with_its_findings(without_dagster_home):
    config_path, summary, found = without_dagster_home
    assert summary.split("(run ", 1)[1].startswith(found["run_id"][:8])
    assert (found["status"], found["first_day"], found["last_day"]) == ("SUCCESS", DAY, DAY)
    rejected = next(c for c in found["checks"] if (c["asset"], c["check"]) == ("incidents", "rejected_share"))
    assert (rejected["passed"], rejected["severity"], rejected["metadata"]["rejected"]) == (False, "WARN", 1)
    read = rejected["metadata"]["read"]
    assert rejected["description"] == f"1 of {read} rows read were rejected (warn above 5%)"
    assert {"unmapped_records", "every_kpi_scored", "overdue_actions", "escalations"} <= {c["check"] for c in
                                                                                          found["checks"]}  # fmt: skip
    assert record_path(config_path).is_file()


def test_checks_table_puts_what_did_not_pass_first(without_dagster_home, monkeypatch):
    config_path, _, _ = without_dagster_home
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    result = invoke("checks", "--config", str(config_path))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Checks of run ")
    rows = [line for line in result.stdout.splitlines() if line.startswith("│") and ":" in line.split("│")[1]]
    assert "incidents:rejected_share" in rows[0] and "warning" in rows[0]
    assert "rows read were rejected" in rows[0]
    assert all("passed" in row for row in rows[1:])


def test_with_a_dagster_home_the_checks_come_from_the_instance(tmp_path, data_dir, without_dagster_home,
                                                               monkeypatch):  # fmt: skip
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv(NOW_ENV, "2024-03-22T00:00:00Z")
    config_path, _, found = run_and_list_checks(tmp_path / "run", data_dir)
    record_path(config_path).unlink()  # read from the instance, not from the record beside the config
    listed = invoke("checks", "--config", str(config_path), "--format", "json")
    assert (listed.exit_code, json.loads(listed.stdout)) == (0, found)
    expected = without_dagster_home[2]
    assert found["run_id"] != expected["run_id"]
    assert {**found, "run_id": ""} == {**expected, "run_id": ""}


def test_checks_before_any_run_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    result = invoke("checks", "--config", str(tmp_path / "scorecard.yaml"))
    assert (result.exit_code, result.stderr.count("\n")) == (2, 1)
    assert result.stderr.startswith(f"error: no run recorded for {tmp_path / 'scorecard.yaml'} yet (")
    assert "run scorecard run or scorecard backfill first" in result.stderr
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    result = invoke("checks")
    assert (result.exit_code, result.stderr) == (2, "error: no run of scorecard_job in the Dagster instance at "
                                                    "$DAGSTER_HOME yet: run scorecard run or scorecard backfill "
                                                    "first\n")  # fmt: skip


def test_checks_exits_1_when_a_check_of_severity_error_failed(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    config_path = tmp_path / "scorecard.yaml"
    failed = {"asset": "kpi_scores", "check": "every_kpi_scored", "passed": False,
              "severity": AssetCheckSeverity.ERROR.value, "description": None, "metadata": {"problems": 2}}  # fmt: skip
    assert keep(LastRun("f" * 36, "SUCCESS", DAY, DAY, [failed]), config_path) is None
    result = invoke("checks", "--config", str(config_path))
    assert result.exit_code == 1, result.output
    assert "kpi_scores:every_kpi_scored" in result.stdout and "failed" in result.stdout
    assert "problems 2" in result.stdout


def test_a_record_that_cannot_be_kept_is_a_one_line_warning_and_the_run_goes_on(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv(NOW_ENV, "2024-03-22T00:00:00Z")
    config_path = write_config(tmp_path, data_dir)
    record_path(config_path).mkdir()
    result = invoke("run", "--config", str(config_path), "--from", DAY)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"warning: {record_path(config_path)}: cannot keep the run's check findings "
                                    "there (")  # fmt: skip
    assert result.stderr.count("\n") == 1 and "checks           all passed" in result.stdout
