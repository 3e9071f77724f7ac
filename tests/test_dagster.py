"""The Dagster layer end to end: assets, checks, the nightly schedule, single-run backfills and `scorecard run`.

Data and config: tests/demo_files.py (the simulator's 10 services, 20 days ending 2024-03-21, fed to the
example scorecard.yaml through `sources.files`, into a throw-away SQLite warehouse).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml
from dagster import AssetKey, DagsterInstance, build_schedule_context, materialize
from demo_files import FIRST_DAY, LAST_DAY, ROOT, write_config
from typer.testing import CliRunner

from connectors import registry
from connectors.base import SourceBatch, SourceError, empty_batch
from connectors.files.source import FilesSource
from connectors.records import KINDS
from pipelines.assets import ASSETS
from pipelines.assets.facts import rejected_share_check
from pipelines.checks import CHECKS, kpi_coverage_problems
from pipelines.cli import app
from pipelines.cli.runner import RANGE_END_TAG, RANGE_START_TAG, STEPS, materialization_metadata
from pipelines.clock import INSTANT_FORMAT, NOW_ENV, previous_day
from pipelines.config import read_config
from pipelines.definitions import JOB_NAME, SCHEDULE_NAME, build_definitions
from pipelines.incremental import periods_to_score, touched_periods
from pipelines.resources import AlertWebhookResource, ProgressReporter, ScorecardConfigResource, WarehouseResource
from warehouse import Warehouse

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
DERIVED_TABLES = ("metric_values", "kpi_scores", "node_scores")
runner = CliRunner()


class RecordingProgress(ProgressReporter):
    def __init__(self):
        self.done: list[str] = []

    def step_done(self, step: str, **counts: int) -> None:
        self.done.append(step)


def resources(config_path: Path, progress: ProgressReporter | None = None) -> dict:
    return {
        "scorecard": ScorecardConfigResource(path=str(config_path)),
        "warehouse": WarehouseResource(url=f"sqlite:///{config_path.parent / 'warehouse.db'}"),
        "alert_webhook": AlertWebhookResource(),
        "progress": progress or ProgressReporter(),
    }


def warehouse_of(config_path: Path) -> Warehouse:
    return Warehouse.connect(f"sqlite:///{config_path.parent / 'warehouse.db'}")


def snapshot(config_path: Path) -> dict[str, pd.DataFrame]:
    """Every fact and derived table in key order, timestamps (loaded_at, computed_at) included."""
    with warehouse_of(config_path) as warehouse:
        return {name: warehouse.read_table(name) for name in (*KINDS, *DERIVED_TABLES)}


def run_range(config_path: Path, first: str, last: str, instance: DagsterInstance, progress=None):
    job = build_definitions(**resources(config_path, progress)).resolve_job_def(JOB_NAME)
    tags = {RANGE_START_TAG: first, RANGE_END_TAG: last}
    return job.execute_in_process(tags=tags, instance=instance, run_config=QUIET)


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory, data_dir):
    """One single-run backfill of the whole data set, on an instance that keeps its runs."""
    folder = tmp_path_factory.mktemp("backfill")
    config_path = write_config(folder, data_dir)
    instance = DagsterInstance.ephemeral()
    progress = RecordingProgress()
    result = run_range(config_path, FIRST_DAY, LAST_DAY, instance, progress)
    return config_path, instance, result, progress


# ---------------------------------------------------------------------------------------------
# Assets and checks


def test_materialize_one_day_writes_every_table(tmp_path, data_dir):
    config_path = write_config(tmp_path, data_dir)
    result = materialize([*ASSETS, *CHECKS], partition_key="2024-03-11", resources=resources(config_path),
                         instance=DagsterInstance.ephemeral(), run_config=QUIET)  # fmt: skip
    assert result.success
    incidents = materialization_metadata(result)["incidents"]
    assert incidents["read"] == incidents["inserted"] + incidents["rejected"] > 0
    with warehouse_of(config_path) as warehouse:
        facts, metrics = warehouse.read_facts("deployments"), warehouse.read_table("metric_values")
        kpis, dictionary = warehouse.read_table("kpi_scores"), warehouse.read_table("metric_dictionary")
    assert len(facts) and facts["updated_at"].between(pd.Timestamp("2024-03-11", tz="UTC"),
                                                      pd.Timestamp("2024-03-12", tz="UTC")).all()  # fmt: skip
    assert set(metrics["grain"]) == {"week", "month"}
    assert set(pd.to_datetime(metrics.loc[metrics["grain"] == "week", "period_start"], utc=True).dt.day) == {11}
    assert len(kpis) == sum(1 for _ in read_config(config_path).iter_kpis())  # March 2024, every KPI
    assert len(dictionary) > 5
    assert all(evaluation.passed for evaluation in result.get_asset_check_evaluations())


def test_backfill_is_one_run_over_the_whole_range(backfilled):
    config_path, instance, result, progress = backfilled
    assert result.success
    assert len(instance.get_runs()) == 1
    assert sorted(progress.done) == sorted(STEPS)  # every step once: the range was read once
    assert len(instance.get_materialized_partitions(AssetKey("incidents"))) == 20
    metadata = materialization_metadata(result)["deployments"]
    assert (metadata["window_start"], metadata["window_end"]) == (
        "2024-03-01T00:00:00+00:00", "2024-03-21T00:00:00+00:00")
    with warehouse_of(config_path) as warehouse:
        kpis = warehouse.read_table("kpi_scores")
    assert set(pd.to_datetime(kpis["period_start"], utc=True)) == {pd.Timestamp("2024-03-01", tz="UTC")}


def test_one_fact_kind_can_be_materialized_alone(tmp_path, data_dir):
    config_path = write_config(tmp_path, data_dir)
    result = materialize([*ASSETS, *CHECKS], partition_key="2024-03-11", resources=resources(config_path),
                         selection=["deployments"], instance=DagsterInstance.ephemeral(), run_config=QUIET)  # fmt: skip
    assert result.success
    assert list(materialization_metadata(result)) == ["deployments"]
    checked = {(e.asset_key.to_user_string(), e.check_name) for e in result.get_asset_check_evaluations()}
    assert ("deployments", "rejected_share") in checked and {asset for asset, _ in checked} == {"deployments"}
    with warehouse_of(config_path) as warehouse:
        assert len(warehouse.read_facts("deployments")) and warehouse.read_facts("incidents").empty
        assert set(warehouse.read_table("sync_state")["kind"]) == {"deployments"}


def test_backfill_checks_pass(backfilled):
    _, _, result, _ = backfilled
    evaluations = result.get_asset_check_evaluations()
    names = {(e.asset_key.to_user_string(), e.check_name) for e in evaluations}
    assert ("incidents", "opened_before_resolved") in names
    assert ("kpi_scores", "every_kpi_scored") in names and ("node_scores", "rollup_coverage") in names
    assert {("deployments", "unique_source_keys"), ("deployments", "rejected_share")} <= names
    assert [e.check_name for e in evaluations if not e.passed] == []


@pytest.fixture(scope="module")
def rerun(backfilled):
    """The backfill's tables before and after running the same window again."""
    config_path, instance, _, _ = backfilled
    before = snapshot(config_path)
    assert run_range(config_path, FIRST_DAY, LAST_DAY, instance).success
    return before, snapshot(config_path)


def test_a_second_run_of_the_same_window_changes_no_row(rerun):
    before, after = rerun
    for name in before:
        assert len(before[name]) > 0, name
        columns = [c for c in before[name].columns if c != "computed_at"]
        pd.testing.assert_frame_equal(after[name][columns], before[name][columns], obj=name)


def test_a_second_run_keeps_computed_at(rerun):
    before, after = rerun
    for name in DERIVED_TABLES:
        pd.testing.assert_series_equal(after[name]["computed_at"], before[name]["computed_at"], obj=name)


@pytest.mark.filterwarnings("ignore:Function `JobDefinition.run_request_for_partition`:DeprecationWarning")
def test_schedule_tick_runs_the_previous_day(tmp_path, data_dir):
    config_path = write_config(tmp_path, data_dir)
    defs = build_definitions(**resources(config_path))
    schedule = defs.resolve_schedule_def(SCHEDULE_NAME)
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "UTC"
    with DagsterInstance.ephemeral() as instance:
        context = build_schedule_context(instance=instance,
                                         scheduled_execution_time=datetime(2024, 3, 15, 2, 0, tzinfo=UTC))  # fmt: skip
        (request,) = schedule.evaluate_tick(context).run_requests
        assert request.partition_key == "2024-03-14"
        result = defs.resolve_job_def(JOB_NAME).execute_in_process(
            partition_key=request.partition_key, tags=request.tags, instance=instance, run_config=QUIET)
    assert result.success
    with warehouse_of(config_path) as warehouse:
        updated = warehouse.read_facts("incidents")["updated_at"]
    assert len(updated) and (updated.dt.strftime("%Y-%m-%d") == "2024-03-14").all()


def test_a_config_error_writes_nothing(tmp_path, data_dir):
    config_path = write_config(tmp_path, data_dir, metrics={"change_failure_window": "soon"})
    result = materialize(ASSETS, partition_key="2024-03-11", resources=resources(config_path),
                         instance=DagsterInstance.ephemeral(), run_config=QUIET, raise_on_error=False)  # fmt: skip
    assert not result.success
    assert not (tmp_path / "warehouse.db").exists()
    cli = runner.invoke(app, ["backfill", "--from", FIRST_DAY, "--to", LAST_DAY, "--config", str(config_path)])
    assert (cli.exit_code, cli.stderr) == (2, "error: metrics.change_failure_window: 'soon' is not a duration "
                                              "like 30m, 24h, 2d or 1w\n")  # fmt: skip
    assert not (tmp_path / "warehouse.db").exists()


def test_rejected_share_warns_above_five_percent():
    assert rejected_share_check("incidents", read=100, rejected=5).passed
    warning = rejected_share_check("incidents", read=100, rejected=6)
    assert not warning.passed and warning.severity.value == "WARN"


# ---------------------------------------------------------------------------------------------
# Periods and sources (pure)


def test_touched_periods_cover_the_window_and_incident_spans():
    updated = {"incidents": pd.DataFrame({"opened_at": pd.to_datetime(["2024-01-30T10:00Z"]),
                                          "resolved_at": pd.Series([pd.NaT], dtype="datetime64[ns, UTC]")})}
    start, end = pd.Timestamp("2024-03-10", tz="UTC"), pd.Timestamp("2024-03-11", tz="UTC")
    months = touched_periods(updated, "month", start, end)
    assert list(months.strftime("%Y-%m")) == ["2024-01", "2024-02", "2024-03"]  # open: runs to the window's end
    assert list(touched_periods({}, "week", start, end).strftime("%Y-%m-%d")) == ["2024-03-04"]


def test_scores_take_the_next_period_only_once_it_has_begun():
    touched = pd.DatetimeIndex(["2024-01-01", "2024-02-01"], tz="UTC")
    assert len(periods_to_score(touched, "month", pd.Timestamp("2024-02-20", tz="UTC"))) == 2
    assert periods_to_score(touched, "month", pd.Timestamp("2024-03-01", tz="UTC"))[-1].month == 3


def test_files_source_takes_records_updated_in_the_window(tmp_path):
    path = tmp_path / "deployments.csv"
    path.write_text(
        "source,source_id,service,environment,sha,deployed_at,status,updated_at\n"
        "github,1,checkout,production,a,2024-03-01T10:00:00Z,success,2024-03-02T01:00:00Z\n"
        "github,2,checkout,production,b,2024-03-01T11:00:00Z,success,\n"
        "github,3,checkout,production,c,not a time,success,2024-03-01T12:00:00Z\n"
    )
    source = FilesSource({"deployments": path})
    day = (pd.Timestamp("2024-03-01", tz="UTC"), pd.Timestamp("2024-03-02", tz="UTC"))
    march_first = source.fetch("deployments", *day)
    assert list(march_first.good["source_id"]) == ["2"]  # no updated_at: placed by deployed_at
    assert list(march_first.rejected["source_id"]) == ["3"] and march_first.read == 2
    assert source.fetch("incidents", *day).read == 0


def test_a_missing_credential_stops_the_sources(tmp_path, data_dir, monkeypatch):
    class StubSource:
        name = "github"
        kinds = ("deployments",)

        def check(self) -> None:
            pass

        def fetch(self, kind, start, end, cursor=None) -> SourceBatch:
            return empty_batch(kind)

    monkeypatch.setitem(registry.SOURCE_FACTORIES, "github", lambda section, context, environ: StubSource())
    monkeypatch.delenv("SCORECARD_TEST_GITHUB_TOKEN", raising=False)
    config_path = write_config(tmp_path, data_dir)
    config = yaml.safe_load(config_path.read_text())
    config["sources"]["github"] = {"token_env": "SCORECARD_TEST_GITHUB_TOKEN", "repos": ["acme/checkout"]}
    config_path.write_text(yaml.safe_dump(config))
    resource = ScorecardConfigResource(path=str(config_path))
    with pytest.raises(SourceError, match="SCORECARD_TEST_GITHUB_TOKEN is not set \\(sources.github.token_env\\)"):
        resource.sources(read_config(config_path))
    result = runner.invoke(app, ["run", "--config", str(config_path), "--from", "2024-03-11"])
    assert result.exit_code == 2 and result.stderr.startswith("error: environment variable SCORECARD_TEST_GITHUB")
    assert not (tmp_path / "warehouse.db").exists()
    monkeypatch.setenv("SCORECARD_TEST_GITHUB_TOKEN", "ghp_secret")
    assert [s.name for s in resource.sources(read_config(config_path))] == ["github", "files"]


def test_kpi_coverage_problems_name_missing_and_valueless_kpis():
    scores = pd.DataFrame({"period_start": ["2024-03-01"] * 2, "kpi_id": ["a", "b"], "value": [1.0, None],
                           "status": ["green", "red"]})  # fmt: skip
    problems = kpi_coverage_problems(scores, ["a", "b", "c"])
    assert dict(zip(problems["kpi_id"], problems["problem"], strict=True)) == {
        "b": "no value but status is not no_data", "c": "not scored"}


# ---------------------------------------------------------------------------------------------
# The CLI


def test_cli_backfill_prints_the_summary(tmp_path, data_dir):
    config_path = write_config(tmp_path, data_dir)
    args = ["backfill", "--from", "2024-03-01", "--to", "2024-03-10", "--config", str(config_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "2024-03-01 .. 2024-03-10 (10 days) in one run" in out
    assert "records read" in out and "metric values" in out and "KPI scores       17 rows" in out
    assert "checks           all passed" in out
    assert "warehouse.db" in out


def test_run_defaults_to_the_previous_utc_day(tmp_path, data_dir, monkeypatch):
    assert previous_day(pd.Timestamp("2024-03-15T01:30:00Z")) == date(2024, 3, 14)
    monkeypatch.setenv(NOW_ENV, "2024-03-13T02:00:00Z")
    result = runner.invoke(app, ["run", "--config", str(write_config(tmp_path, data_dir))])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("scorecard: 2024-03-12 in one run")


def test_a_fixed_clock_bounds_the_partitions_that_exist(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv(NOW_ENV, "2024-03-13T02:00:00Z")
    result = runner.invoke(app, ["run", "--config", str(write_config(tmp_path, data_dir)), "--from", "2024-03-13"])
    assert (result.exit_code, result.stderr) == (2, "error: --to 2024-03-13 is not a complete UTC day yet "
                                                    "(the last partition is 2024-03-12)\n")
    monkeypatch.setenv(NOW_ENV, "next tuesday")
    result = runner.invoke(app, ["run", "--config", str(write_config(tmp_path, data_dir))])
    assert (result.exit_code, result.stderr.splitlines()) == (2, [f"error: {NOW_ENV}='next tuesday' is not an instant "
                                                                 f"(use {INSTANT_FORMAT})"])


def test_cli_run_of_one_day_and_a_missing_file(tmp_path, data_dir):
    config_path = write_config(tmp_path, data_dir)
    result = runner.invoke(app, ["run", "--config", str(config_path), "--from", "2024-03-12"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("scorecard: 2024-03-12 in one run")
    (tmp_path / "missing").mkdir()
    missing = write_config(tmp_path / "missing", data_dir)
    config = yaml.safe_load(missing.read_text())
    config["sources"]["files"]["changes"] = str(tmp_path / "nope.csv")
    missing.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["run", "--config", str(missing), "--from", "2024-03-12"])
    assert (result.exit_code, result.stderr.count("\n")) == (2, 1)
    assert result.stderr.startswith("error: sources.files.changes: file not found")
    assert not (tmp_path / "missing" / "warehouse.db").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "absent.yaml", "--from", "2024-03-01", "--to", "2024-03-01"],
         "error: absent.yaml: config file not found"),
        (["--from", "2023-12-31", "--to", "2024-01-02"], "error: --from 2023-12-31 is before the first partition"),
        (["--from", "2024-03-02", "--to", "2024-03-01"], "error: --to 2024-03-01 is before --from 2024-03-02"),
        (["--from", "2999-01-01", "--to", "2999-01-02"], "error: --to 2999-01-02 is not a complete UTC day yet"),
    ],
)
def test_cli_backfill_bad_input_is_one_line_and_exit_2(tmp_path, data_dir, args, message):
    config_path = write_config(tmp_path, data_dir)
    args = args if "--config" in args else [*args, "--config", str(config_path)]
    result = runner.invoke(app, ["backfill", *args])
    assert (result.exit_code, result.stderr.count("\n")) == (2, 1), result.output
    assert result.stderr.startswith(message)
    assert not (tmp_path / "warehouse.db").exists()


def test_cli_reports_a_failed_step_in_one_line_and_exits_1(tmp_path, data_dir, monkeypatch):
    class BrokenSource:
        name = "github"
        kinds = ("deployments",)

        def check(self) -> None:
            pass

        def fetch(self, kind, start, end, cursor=None) -> SourceBatch:
            raise RuntimeError(f"{kind}: the API said no")

    monkeypatch.setitem(registry.SOURCE_FACTORIES, "github", lambda section, context, environ: BrokenSource())
    config_path = write_config(tmp_path, data_dir)
    config = yaml.safe_load(config_path.read_text())
    config["sources"] = {"github": {"token_env": "SCORECARD_TEST_GITHUB_TOKEN"}}
    config_path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("SCORECARD_TEST_GITHUB_TOKEN", "ghp_secret")
    result = runner.invoke(app, ["run", "--config", str(config_path), "--from", "2024-03-12"])
    assert result.exit_code == 1, result.output
    assert result.stderr == ("error: step facts failed: SourceError: sources.github: reading deployments: "
                             "RuntimeError: deployments: the API said no\n")
    assert "ghp_secret" not in result.output


# ---------------------------------------------------------------------------------------------
# The demo path: generate --write-config, backfill --days, show


def test_show_prints_the_warehouse_scorecard_in_config_order(backfilled):
    config_path, *_ = backfilled
    table = runner.invoke(app, ["show", "--config", str(config_path)])
    assert table.exit_code == 0, table.output
    names = ["Financial", "Customer", "Internal Process", "Learning & Growth"]
    positions = [table.stdout.index(name) for name in names]
    assert positions == sorted(positions)
    assert "period starting 2024-03-01" in table.stdout
    as_json = runner.invoke(app, ["show", "--config", str(config_path), "--period", "2024-03-15", "--format", "json"])
    payload = json.loads(as_json.stdout)
    assert {kpi["period_start"] for kpi in payload["kpis"]} == {"2024-03-01T00:00:00Z"}
    assert {node["node_type"] for node in payload["nodes"]} == {"objective", "perspective", "scorecard"}


def test_show_before_any_run_says_what_to_do_and_writes_nothing(tmp_path, data_dir):
    config_path = write_config(tmp_path, data_dir)
    result = runner.invoke(app, ["show", "--config", str(config_path)])
    assert (result.exit_code, result.stderr.count("\n")) == (2, 1)
    assert "run scorecard run or scorecard backfill first" in result.stderr
    assert not (tmp_path / "warehouse.db").exists()
    sqlite3.connect(tmp_path / "warehouse.db").close()  # an empty database file
    result = runner.invoke(app, ["show", "--config", str(config_path)])
    assert result.exit_code == 2 and "has no scorecard tables yet" in result.stderr
    with sqlite3.connect(tmp_path / "warehouse.db") as db:
        assert db.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


# Fixed "today"s on every weekday: generate --days 5 must put every record inside the 5 days that
# backfill --days 5 (ending yesterday) reads. A bad row at today's midnight once failed this every Tuesday.
@pytest.mark.parametrize("today", ["2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04",
                                   "2026-12-05", "2026-12-06"])  # fmt: skip
def test_generate_writes_a_config_fed_by_the_files_and_backfill_days_runs_it(tmp_path, monkeypatch, today):
    monkeypatch.setenv(NOW_ENV, f"{today}T06:30:00Z")
    out = tmp_path / "demo"
    result = runner.invoke(app, ["generate", "--out", str(out / "data"), "--days", "5", "--config",
                                 str(ROOT / "scorecard.yaml"), "--write-config", str(out / "scorecard.yaml"),
                                 "--warehouse-url", f"sqlite:///{out / 'scorecard.db'}"])
    assert result.exit_code == 0, result.output
    written = read_config(out / "scorecard.yaml")
    assert written.sources.files.incidents == "data/incidents.csv" and written.sources.github is None
    assert written.scorecard.name == read_config(ROOT / "scorecard.yaml").scorecard.name
    backfill = runner.invoke(app, ["backfill", "--days", "5", "--config", str(out / "scorecard.yaml")])
    assert backfill.exit_code == 0, backfill.output
    first = (pd.Timestamp(today) - pd.Timedelta(days=5)).date()
    assert f"scorecard: {first} .. {previous_day(pd.Timestamp(today, tz='UTC'))} (5 days) in one run" in backfill.stdout
    assert "rejected 20" in backfill.stdout
    assert not runner.invoke(app, ["backfill", "--config", str(out / "scorecard.yaml")]).exit_code == 0


# ---------------------------------------------------------------------------------------------
# What vendor sources rely on: cursors stored after the records land, unmapped records out of the metrics


def vendor_stub(batches: list, received: list):
    """A `github` source serving `batches` in turn (deployments only), recording the cursors it is given."""

    class Stub:
        name = "github"
        kinds = ("deployments",)

        def check(self) -> None:
            pass

        def fetch(self, kind, start, end, cursor=None) -> SourceBatch:
            if kind != "deployments":
                return empty_batch(kind)
            received.append(cursor)
            return batches.pop(0)

    return Stub()


def deployments_batch(rows: list[dict], cursor: str | None) -> SourceBatch:
    from connectors.records import normalise

    frame = pd.DataFrame(rows, dtype=object)
    result = normalise("deployments", frame, None)
    return SourceBatch(result.good, result.rejected, cursor=cursor)


def test_a_vendor_cursor_is_stored_after_its_records_land_and_given_back(tmp_path, data_dir, monkeypatch):
    row = {"source": "github", "source_id": "acme/legacy/1", "service": "unmapped", "environment": "production",
           "sha": "a", "deployed_at": "2024-03-12T10:00:00Z", "status": "success",
           "updated_at": "2024-03-12T10:05:00Z", "entity": "acme/legacy"}  # fmt: skip
    received: list = []
    batches = [deployments_batch([row], "page-7"), deployments_batch([{**row, "source_id": "acme/legacy/2"}], "page-8")]
    monkeypatch.setitem(registry.SOURCE_FACTORIES, "github",
                        lambda section, context, environ: vendor_stub(batches, received))  # fmt: skip
    monkeypatch.setenv("SCORECARD_TEST_GITHUB_TOKEN", "ghp_FAKE")
    config_path = write_config(tmp_path, data_dir)
    config = yaml.safe_load(config_path.read_text())
    config["sources"]["github"] = {"token_env": "SCORECARD_TEST_GITHUB_TOKEN", "repos": ["acme/legacy"]}
    config_path.write_text(yaml.safe_dump(config))
    first = runner.invoke(app, ["run", "--config", str(config_path), "--from", "2024-03-12"])
    assert first.exit_code == 0, first.output
    assert "warning: deployments:unmapped_records" in first.stdout
    with warehouse_of(config_path) as warehouse:
        assert warehouse.get_cursor("github", "deployments") == "page-7"
        metrics = warehouse.read_table("metric_values")
        assert "unmapped" in set(warehouse.read_facts("deployments")["service"])
    assert "unmapped" not in set(metrics["service"])
    again = runner.invoke(app, ["run", "--config", str(config_path), "--from", "2024-03-13"])
    assert again.exit_code == 0, again.output
    assert received == [None, "page-7"]
    with warehouse_of(config_path) as warehouse:
        assert warehouse.get_cursor("github", "deployments") == "page-8"
    # the check names the entity and where to map it
    check = next(c for c in CHECKS if "deployments" in str(c.check_keys) and "unmapped_records" in str(c.check_keys))
    result = check(scorecard=ScorecardConfigResource(path=str(config_path)),
                   warehouse=WarehouseResource(url=read_config(config_path).warehouse.url))  # fmt: skip
    assert result.description == ("2 deployments of entities no service claims: github acme/legacy (2: add it to "
                                  "services.<name>.github_repos)")  # fmt: skip
    assert result.metadata["unmapped"].value == 2


def test_a_cursor_is_not_stored_when_its_records_did_not_land(tmp_path, data_dir, monkeypatch):
    unusable = SourceBatch(pd.DataFrame({"source": ["github"]}), empty_batch("deployments").rejected, cursor="page-9")
    monkeypatch.setitem(registry.SOURCE_FACTORIES, "github",
                        lambda section, context, environ: vendor_stub([unusable], []))  # fmt: skip
    monkeypatch.setenv("SCORECARD_TEST_GITHUB_TOKEN", "ghp_FAKE")
    config_path = write_config(tmp_path, data_dir)
    config = yaml.safe_load(config_path.read_text())
    config["sources"]["github"] = {"token_env": "SCORECARD_TEST_GITHUB_TOKEN"}
    config_path.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["run", "--config", str(config_path), "--from", "2024-03-12"])
    assert result.exit_code == 1, result.output
    with warehouse_of(config_path) as warehouse:
        assert warehouse.get_cursor("github", "deployments") is None


@pytest.mark.parametrize("value", ["inf", "-inf", "1e400", "nan"])
def test_a_values_file_with_a_value_that_is_no_finite_number_stops_the_run_before_anything_is_written(
        tmp_path, data_dir, value):
    values = tmp_path / "values.csv"
    values.write_text(f"kpi_id,value\nit_spend,{value}\n")
    config_path = write_config(tmp_path, data_dir)
    config = yaml.safe_load(config_path.read_text())
    config["sources"]["files"]["values"] = str(values)
    config_path.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["run", "--config", str(config_path), "--from", "2024-03-12"])
    assert (result.exit_code, result.stderr.count("\n")) == (2, 1), result.output
    assert result.stderr.startswith("error: ") and f"line 2: value '{value}' is not a finite number" in result.stderr
    assert not (tmp_path / "warehouse.db").exists()
