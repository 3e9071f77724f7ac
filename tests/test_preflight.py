"""What a run checks before it writes, and the routes a user takes into it: `SCORECARD_WAREHOUSE_URL`
on SQLite and on the real PostgreSQL server, unreadable files, sources without a connector, a
read-only warehouse, the Dagster home, and "as of" the window's end.

A bad setup is one line on stderr, exit 2, and nothing written: no warehouse file, no rows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import responses
import yaml
from dagster import DagsterInstance, materialize
from demo_files import write_config
from typer.testing import CliRunner

from connectors.base import SourceContext
from connectors.registry import SourcesConfig, configured_sources
from pipelines.assets import ASSETS
from pipelines.cli import app
from pipelines.cli.runner import error_line
from pipelines.clock import NOW_ENV
from pipelines.resources import (
    WAREHOUSE_URL_ENV,
    AlertWebhookResource,
    ProgressReporter,
    ScorecardConfigResource,
    WarehouseResource,
)
from warehouse import Warehouse

runner = CliRunner()
DAY = "2024-03-12"
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def copy_data(data_dir: Path, folder: Path) -> Path:
    """A copy of the shared data files to spoil in one test."""
    folder.mkdir()
    for file in data_dir.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    return folder


def invoke(*args: str):
    return runner.invoke(app, list(args))


def assert_one_line_error(result, *fragments: str) -> None:
    assert (result.exit_code, result.stderr.count("\n")) == (2, 1), result.output
    assert result.stderr.startswith("error: ")
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def with_sources(config_path: Path, **sources: dict) -> Path:
    config = yaml.safe_load(config_path.read_text())
    config["sources"].update(sources)
    config_path.write_text(yaml.safe_dump(config))
    return config_path


# ---------------------------------------------------------------------------------------------
# SCORECARD_WAREHOUSE_URL: the README's way to point a run elsewhere (it once died on an EnvVar traceback)


def kpi_rows(url: str) -> int:
    with Warehouse.open_existing(url) as warehouse:
        return len(warehouse.read_table("kpi_scores"))


def test_the_warehouse_url_from_the_environment_on_sqlite(tmp_path, data_dir, monkeypatch):
    config_path = write_config(tmp_path, data_dir)  # warehouse.url points at tmp_path/warehouse.db
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv(WAREHOUSE_URL_ENV, elsewhere)
    run = invoke("run", "--config", str(config_path), "--from", DAY)
    assert run.exit_code == 0, run.output
    assert "warehouse        sqlite:///" in run.stdout and "elsewhere.db" in run.stdout
    backfill = invoke("backfill", "--config", str(config_path), "--from", "2024-03-01", "--to", "2024-03-10")
    assert backfill.exit_code == 0, backfill.output
    show = invoke("show", "--config", str(config_path))
    assert show.exit_code == 0 and "IT Balanced Scorecard" in show.stdout, show.output
    assert kpi_rows(elsewhere) > 0
    assert not (tmp_path / "warehouse.db").exists()


def test_the_warehouse_url_from_the_environment_on_postgresql(tmp_path, data_dir, monkeypatch, postgres_url):
    config_path = write_config(tmp_path, data_dir)
    monkeypatch.setenv(WAREHOUSE_URL_ENV, postgres_url)
    run = invoke("run", "--config", str(config_path), "--from", DAY)
    assert run.exit_code == 0, run.output
    assert "warehouse        postgresql+psycopg://" in run.stdout
    backfill = invoke("backfill", "--config", str(config_path), "--from", "2024-03-10", "--to", "2024-03-11")
    assert backfill.exit_code == 0, backfill.output
    show = invoke("show", "--config", str(config_path), "--format", "json")
    assert show.exit_code == 0, show.output
    assert kpi_rows(postgres_url) > 0
    assert not (tmp_path / "warehouse.db").exists()


@pytest.mark.parametrize("where", ["user info", "query"])
def test_a_password_in_the_environment_url_is_never_printed(tmp_path, data_dir, monkeypatch, postgres_url, where):
    config_path = write_config(tmp_path, data_dir)
    secret_url = (postgres_url.replace("postgres@", "postgres:hunter2@") if where == "user info"
                  else postgres_url.replace("?", "?password=hunter2&"))  # fmt: skip
    monkeypatch.setenv(WAREHOUSE_URL_ENV, secret_url)
    run = invoke("run", "--config", str(config_path), "--from", DAY)  # trust auth: the password is not checked
    assert run.exit_code == 0, run.output
    assert "hunter2" not in run.output
    assert ("postgres:***@" if where == "user info" else "password=***") in run.stdout
    monkeypatch.setenv(WAREHOUSE_URL_ENV, secret_url.replace("127.0.0.1:5432", "127.0.0.1:1"))
    refused = invoke("run", "--config", str(config_path), "--from", DAY)
    assert_one_line_error(refused, "cannot open warehouse")
    assert "hunter2" not in refused.output


# ---------------------------------------------------------------------------------------------
# A file that cannot be read at all is a pre-flight error; bad rows are not


def spoil(path: Path, how: str) -> None:
    if how == "garbage bytes":
        path.write_bytes(bytes(range(256)) * 8)
    elif how == "empty file":
        path.write_bytes(b"")
    elif how == "required column missing":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns=["opened_at"])
        frame.to_csv(path, index=False)
    elif how == "a directory":
        path.unlink()
        path.mkdir()


@pytest.mark.parametrize("how", ["garbage bytes", "empty file", "required column missing", "a directory"])
def test_an_unreadable_file_stops_backfill_before_anything_is_written(tmp_path, data_dir, how):
    data = copy_data(data_dir, tmp_path / "data")
    spoil(data / "incidents.csv", how)
    config_path = write_config(tmp_path, data)
    result = invoke("backfill", "--config", str(config_path), "--from", "2024-03-01", "--to", "2024-03-10")
    assert_one_line_error(result, "sources.files.incidents", "incidents.csv")
    if how == "a directory":
        assert "is a directory, not a file" in result.stderr
    assert not (tmp_path / "warehouse.db").exists()


def test_an_unreadable_file_stops_every_asset_of_a_dagster_run(tmp_path, data_dir):
    """Outside the CLI's pre-flight too (a run from the UI): every step checks every file before it writes."""
    data = copy_data(data_dir, tmp_path / "data")
    (data / "pull_requests.csv").write_bytes(b"")
    config_path = write_config(tmp_path, data)
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    resources = {"scorecard": ScorecardConfigResource(path=str(config_path)), "warehouse": WarehouseResource(url=url),
                 "alert_webhook": AlertWebhookResource(), "progress": ProgressReporter()}  # fmt: skip
    result = materialize(ASSETS, partition_key=DAY, resources=resources, instance=DagsterInstance.ephemeral(),
                         run_config=QUIET, raise_on_error=False)  # fmt: skip
    assert not result.success
    assert not result.get_asset_materialization_events()
    assert not (tmp_path / "warehouse.db").exists()


def test_bad_csv_lines_pass_the_pre_flight_and_the_good_rows_land(tmp_path, data_dir):
    """A field too many, an unterminated quote and a shifted row (severity left out) are rejected with the line
    they start on; the good row after them lands in the same run."""
    data = copy_data(data_dir, tmp_path / "data")
    path = data / "incidents.csv"
    first = len(path.read_text().splitlines()) + 1
    row = "pagerduty,{id},checkout,sev1,down,resolved,2024-03-12T10:00:00Z,2024-03-12T11:00:00Z,,2024-03-12T11:00:00Z"
    with path.open("a") as file:
        file.write("\n".join([row.format(id="EXTRA") + ",x",
                              row.format(id="QUOTE").replace("down", '"down'),
                              row.format(id="SHIFT").replace("sev1,", "") + ",",
                              row.format(id="GOOD")]) + "\n")
    config_path = write_config(tmp_path, data)
    result = invoke("run", "--config", str(config_path), "--from", DAY)
    assert result.exit_code == 0, result.output
    with Warehouse.open_existing(f"sqlite:///{tmp_path / 'warehouse.db'}") as warehouse:
        incidents, rejected = warehouse.read_table("incidents"), warehouse.read_table("rejected_records")
    assert "GOOD" in set(incidents["source_id"]) and not {"EXTRA", "QUOTE", "SHIFT"} & set(incidents["source_id"])
    mine = rejected[rejected["row"] >= first].sort_values("row")
    assert mine[["row", "column_name", "reason"]].to_dict("records") == [
        {"row": first, "column_name": None, "reason": "line has 11 fields, the header has 10"},
        {"row": first + 1, "column_name": None, "reason": "unterminated quote"},
        {"row": first + 2, "column_name": "severity",
         "reason": "'down' is not one of sev1..sev5 (or P1..P5, 1..5, critical/high/medium/low)"},
    ]


# ---------------------------------------------------------------------------------------------
# A configured source that cannot run stops the run: going on would score emptier data


def test_a_source_without_its_credentials_stops_the_run_and_keeps_the_scores(tmp_path, data_dir, monkeypatch):
    config_path = write_config(tmp_path, data_dir)
    first = invoke("run", "--config", str(config_path), "--from", DAY)
    assert first.exit_code == 0, first.output
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    with Warehouse.open_existing(url) as warehouse:
        before = warehouse.read_table("kpi_scores")
    monkeypatch.delenv("SN_USER", raising=False)
    monkeypatch.setenv("SN_PASSWORD", "not-shown")
    with_sources(config_path, servicenow={"base_url": "https://acme.service-now.com"})
    again = invoke("run", "--config", str(config_path), "--from", DAY)
    assert_one_line_error(again, "environment variable SN_USER is not set (sources.servicenow.user_env)")
    assert "not-shown" not in again.output
    with Warehouse.open_existing(url) as warehouse:
        pd.testing.assert_frame_equal(warehouse.read_table("kpi_scores"), before)


def test_the_example_config_names_its_vendor_sources_and_stops_without_their_credentials(tmp_path, monkeypatch):
    for name in ("GITHUB_TOKEN", "PAGERDUTY_TOKEN", "JIRA_EMAIL", "JIRA_TOKEN", "SN_USER", "SN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    root_config = Path(__file__).resolve().parents[1] / "scorecard.yaml"
    result = invoke("run", "--config", str(root_config), "--from", DAY)
    assert_one_line_error(result, "environment variable GITHUB_TOKEN is not set (sources.github.token_env) "
                                  "(and 5 more)")  # fmt: skip


# ---------------------------------------------------------------------------------------------
# An unwritable warehouse is found in the pre-flight, with the driver's own reason


def test_a_read_only_warehouse_stops_the_run_in_the_pre_flight(tmp_path, data_dir, monkeypatch):
    config_path = write_config(tmp_path, data_dir)
    assert invoke("run", "--config", str(config_path), "--from", DAY).exit_code == 0
    database = tmp_path / "warehouse.db"
    url = f"sqlite:///{database}"
    with Warehouse.open_existing(url) as warehouse:
        before = warehouse.read_table("metric_values")
    # mode=ro: read-only even for root, who ignores file permissions
    monkeypatch.setenv(WAREHOUSE_URL_ENV, f"sqlite:///file:{database}?mode=ro&uri=true")
    result = invoke("run", "--config", str(config_path), "--from", "2024-03-13")
    assert_one_line_error(result, "cannot write to warehouse", "attempt to write a readonly database")
    with Warehouse.open_existing(url) as warehouse:
        pd.testing.assert_frame_equal(warehouse.read_table("metric_values"), before)


def test_a_failed_step_keeps_the_drivers_reason_not_sqlalchemys_footer():
    message = ("sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) attempt to write a readonly database\n"
               "[SQL: INSERT INTO deployments (source) VALUES (?)]\n[parameters: ('github',)]\n"
               "(Background on this error at: https://sqlalche.me/e/21/e3q8)\n")  # fmt: skip
    assert error_line(message) == "OperationalError: (sqlite3.OperationalError) attempt to write a readonly database"
    assert error_line("connectors.base.SourceError: sources.files.incidents: x\n") == (
        "SourceError: sources.files.incidents: x")
    assert error_line("connection to postgresql://u:pw@h/db failed") == "connection to postgresql://u:***@h/db failed"


# ---------------------------------------------------------------------------------------------
# The Dagster home, and "as of"


def test_a_dagster_home_without_dagster_yaml_keeps_the_run_and_does_not_greet(tmp_path, data_dir, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    result = invoke("run", "--config", str(write_config(tmp_path, data_dir)), "--from", DAY)
    assert result.exit_code == 0, result.output
    assert "Welcome to Dagster" not in result.output and "Telemetry" not in result.output
    assert result.stderr == ""
    with DagsterInstance.get() as instance:
        assert len(instance.get_runs()) == 1


def test_the_same_run_later_gives_the_same_rows(tmp_path, data_dir, monkeypatch):
    """A run computes as of its window's end: the current period's partial values do not move with the clock."""
    config_path = write_config(tmp_path, data_dir)
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    tables = ("metric_values", "kpi_scores", "node_scores")

    def run_at(now: str) -> dict[str, pd.DataFrame]:
        monkeypatch.setenv(NOW_ENV, now)
        result = invoke("run", "--config", str(config_path), "--from", DAY)
        assert result.exit_code == 0, result.output
        with Warehouse.open_existing(url) as warehouse:
            return {name: warehouse.read_table(name) for name in tables}

    first = run_at("2024-03-13T02:00:00Z")
    later = run_at("2024-03-13T23:59:00Z")
    much_later = run_at("2024-06-01T00:00:00Z")
    for name in tables:
        pd.testing.assert_frame_equal(later[name], first[name])  # computed_at too: no row was rewritten
        pd.testing.assert_frame_equal(much_later[name], first[name])


# ---------------------------------------------------------------------------------------------
# What the summary reports beyond the counts: links that do not hold, same-time duplicates


def test_the_summary_counts_dangling_links_and_same_time_duplicates(tmp_path, data_dir):
    data = copy_data(data_dir, tmp_path / "data")
    incidents = pd.read_csv(data / "incidents.csv", dtype=str, keep_default_na=False)
    dangling = {**incidents.iloc[0].to_dict(), "source": "servicenow", "source_id": "INC9999999",
                "service": "checkout", "severity": "sev1", "opened_at": "2024-03-12T11:00:00Z",
                "resolved_at": "2024-03-12T13:00:00Z", "caused_by_change": "CHG-404",
                "updated_at": "2024-03-12T13:05:00Z"}  # fmt: skip
    pd.concat([incidents, pd.DataFrame([dangling])]).to_csv(data / "incidents.csv", index=False)
    deployments = pd.read_csv(data / "deployments.csv", dtype=str, keep_default_na=False)
    twin = deployments.iloc[0].to_dict()
    twin["status"] = "failure" if twin["status"] != "failure" else "success"
    pd.concat([deployments, pd.DataFrame([twin])]).to_csv(data / "deployments.csv", index=False)

    result = invoke("run", "--config", str(write_config(tmp_path, data)), "--from", DAY)
    assert result.exit_code == 0, result.output
    assert "same-time duplicates 1: later row kept" in result.stdout
    # the day's records: the dangling link and whatever links were updated that day
    assert re.search(r"change links     \d+ caused_by_change \(1 do not hold: incidents:dangling_change_links\)",
                     result.stdout), result.stdout
    assert "warning: incidents:dangling_change_links" in result.stdout


def test_metrics_warns_about_same_time_duplicates(tmp_path):
    path = tmp_path / "deployments.csv"
    path.write_text("source,source_id,service,environment,sha,deployed_at,status,updated_at\n"
                    "github,1,checkout,production,a,2026-10-01T10:00:00Z,success,2026-10-01T10:05:00Z\n"
                    "github,1,checkout,production,a,2026-10-01T10:00:00Z,failure,2026-10-01T10:05:00Z\n")
    result = invoke("metrics", "--deployments", str(path), "--as-of", "2026-11-01", "--metric",
                    "change_failure_rate", "--service", "all", "--format", "json")
    assert result.exit_code == 0, result.output
    assert "warning: 1 rows in" in result.stderr and "the later row was kept" in result.stderr
    assert [row["value"] for row in json.loads(result.stdout)] == [100.0]


# ---------------------------------------------------------------------------------------------
# The registry builds sources with the credentials of the environment it is given


@responses.activate
def test_configured_sources_take_their_credentials_from_the_environment_given(monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    responses.add(responses.POST, "https://api.github.com/graphql", json={"data": {"viewer": {"login": "octocat"}}})
    sections = SourcesConfig(github={"repos": ["acme/checkout"]})
    context = SourceContext(Path("."), {}, ("production",))
    built = configured_sources(sections, context, {"GITHUB_TOKEN": "from-the-mapping"})
    assert [source.name for source in built] == ["github"]
    assert responses.calls[0].request.headers["Authorization"] == "bearer from-the-mapping"
