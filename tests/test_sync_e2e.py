"""End to end through the vendors' APIs: the simulator serves 180 days of GitHub, PagerDuty, Jira and ServiceNow,
`scorecard backfill` reads them through the connectors, and the warehouse must equal the simulator's truth exactly —
the facts record for record, the metrics value for value — with and without injected faults, on a
second run, and after a run that died half-way.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from connectors.github.source import GithubSource
from connectors.pagerduty.client import PagerDutyClient
from connectors.records import SCHEMAS
from connectors.simulator.history import build_history, service_mapping
from connectors.simulator.server import make_app, running, source_sections
from connectors.simulator.truth import truth_frames, truth_metrics
from pipelines.checks import unmapped_entities
from pipelines.cli import app
from pipelines.clock import NOW_ENV
from warehouse import Warehouse

END = pd.Timestamp("2026-11-01", tz="UTC")  # the simulator's history ends here (exclusive)
DAYS = 180
SERVICES = ("checkout", "payments", "search", "catalog")
KINDS = ("incidents", "changes", "deployments", "pull_requests")
TOKENS = {"GITHUB_TOKEN": "ghp_FAKE_E2E_TOKEN", "PAGERDUTY_TOKEN": "FAKE_PD_E2E_TOKEN", "JIRA_EMAIL": "e2e@acme.test",
          "JIRA_TOKEN": "FAKE_JIRA_E2E_TOKEN", "SN_USER": "e2e-user", "SN_PASSWORD": "FAKE_SN_E2E_PASSWORD"}
SECRETS = {name: value for name, value in TOKENS.items() if name not in ("JIRA_EMAIL", "SN_USER")}
runner = CliRunner()


@pytest.fixture(scope="module")
def history():
    return build_history(end=END, seed=5, days=DAYS, services=SERVICES)


@pytest.fixture(scope="module")
def truth(history):
    frames = truth_frames(history)
    production = frames["deployments"]["environment"].str.lower().isin(["production", "prod"])
    facts = {**frames, "deployments": frames["deployments"][production]}  # the connector reads production only
    return facts, truth_metrics(history, frames)


@pytest.fixture(autouse=True)
def _environment(monkeypatch):
    """The fixed clock and fake tokens (conftest.py has already cleared the machine's settings)."""
    monkeypatch.setenv(NOW_ENV, (END + pd.Timedelta(hours=3)).isoformat())
    for name, token in TOKENS.items():
        monkeypatch.setenv(name, token)


def write_config(folder: Path, base_url: str) -> Path:
    """The mini scorecard fed by the simulator's four vendors, into folder/warehouse.db."""
    config = yaml.safe_load((Path(__file__).parent / "data" / "mini_scorecard.yaml").read_text())
    mapping = service_mapping(SERVICES)
    config["sources"] = source_sections(base_url, mapping)
    config["services"] = mapping
    config["warehouse"] = {"url": f"sqlite:///{folder / 'warehouse.db'}"}
    path = folder / "scorecard.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def backfill(config_path: Path):
    return runner.invoke(app, ["backfill", "--days", str(DAYS), "--config", str(config_path)])


def tables(config_path: Path) -> dict[str, pd.DataFrame]:
    with Warehouse.open_existing(f"sqlite:///{config_path.parent / 'warehouse.db'}") as warehouse:
        facts = {kind: warehouse.read_facts(kind) for kind in KINDS}
        return {**facts, "metric_values": warehouse.read_table("metric_values")}


def canonical(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    columns = [column.name for column in SCHEMAS[kind]]
    return frame[columns].sort_values(["source", "source_id"], ignore_index=True).astype(object)


def month_metrics(frame: pd.DataFrame) -> pd.DataFrame:
    rows = frame[frame["grain"] == "month"] if "grain" in frame.columns else frame
    key = ["metric", "service", "period_start"]
    rows = rows[[*key, "value", "sample_size"]].copy()
    rows["period_start"] = pd.to_datetime(rows["period_start"], utc=True)
    rows["sample_size"] = rows["sample_size"].astype("int64")
    return rows.sort_values(key, ignore_index=True)


def assert_equals_truth(found: dict[str, pd.DataFrame], truth) -> None:
    facts, metrics = truth
    for kind in KINDS:
        pd.testing.assert_frame_equal(canonical(found[kind], kind), canonical(facts[kind], kind), check_dtype=False,
                                      obj=kind)  # fmt: skip
    expected = month_metrics(metrics)
    stored = month_metrics(found["metric_values"])
    stored = stored[stored["period_start"].isin(expected["period_start"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(stored, expected, check_dtype=False, check_exact=False, rtol=1e-9,
                                  obj="metric_values")


@pytest.fixture(scope="module")
def reference(history, truth, tmp_path_factory):
    """One clean backfill through the simulator, without faults."""
    folder = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(NOW_ENV, (END + pd.Timedelta(hours=3)).isoformat())
        for name, token in TOKENS.items():
            patch.setenv(name, token)
        with running(history) as base_url:
            config_path = write_config(folder, base_url)
            result = backfill(config_path)
            assert result.exit_code == 0, result.output
        with running(history) as base_url:  # another simulator process would listen on another port
            write_config(folder, base_url)
            again = backfill(config_path)
            assert again.exit_code == 0, again.output
    return config_path, result.stdout, again.stdout, tables(config_path)


def test_the_warehouse_equals_the_simulators_truth(reference, truth):
    config_path, summary, _, found = reference
    assert "rejected 0" in summary and "(0 do not hold: incidents:dangling_change_links)" in summary
    # the simulator serves records of a CI and a Jira component no service claims: reported, nothing else
    assert (f"checks           warning: incidents:unmapped_records (details: scorecard checks --config {config_path})"
            "\n") in summary  # fmt: skip
    assert_equals_truth(found, truth)


def test_checks_names_the_entities_no_service_claims(reference):
    result = runner.invoke(app, ["checks", "--config", str(reference[0]), "--format", "json"])
    assert result.exit_code == 0, result.output
    [unmapped] = [c for c in json.loads(result.stdout)["checks"] if not c["passed"]]
    assert (unmapped["asset"], unmapped["check"], unmapped["severity"]) == ("incidents", "unmapped_records", "WARN")
    assert "add it to services.<name>.servicenow_cis" in unmapped["description"]
    assert "add it to services.<name>.jira_components" in unmapped["description"]


def test_sync_state_says_each_source_and_kind_is_read_through_the_windows_end(reference):
    config_path = reference[0]
    with Warehouse.open_existing(f"sqlite:///{config_path.parent / 'warehouse.db'}") as warehouse:
        cursors = warehouse.read_table("sync_state").set_index(["source", "kind"])["cursor"].to_dict()
    read = [("github", "deployments"), ("github", "pull_requests"), ("pagerduty", "incidents"),
            ("jira", "incidents"), ("jira", "changes"), ("servicenow", "incidents"), ("servicenow", "changes")]
    assert cursors == dict.fromkeys(read, END.isoformat())


def test_a_second_run_changes_no_row(reference):
    config_path, _, second, first_tables = reference
    assert "inserted 0, updated 0" in second
    for name, frame in tables(config_path).items():
        pd.testing.assert_frame_equal(frame, first_tables[name], obj=name)


def test_with_faults_injected_the_warehouse_is_the_same(history, truth, tmp_path):
    simulator = make_app(history, 0.2, 3, keep_fault_log=True)
    with running(simulator) as base_url:
        result = backfill(write_config(tmp_path, base_url))
    assert result.exit_code == 0, result.output
    faults = Counter(kind for _, _, kind in simulator.faults.log if kind is not None)
    assert sum(faults.values()) >= 5 and len(faults) >= 3, faults  # 429s, 5xx, drops, cut bodies, slow answers
    assert_equals_truth(tables(tmp_path / "scorecard.yaml"), truth)


def test_a_run_that_died_half_way_ends_identical_when_run_again(history, truth, tmp_path, monkeypatch):
    deployments_read = threading.Event()
    fetch = GithubSource.fetch

    def fetch_and_tell(self, kind, *args, **kwargs):
        batch = fetch(self, kind, *args, **kwargs)
        if kind == "deployments":
            deployments_read.set()
        return batch

    def killed(*_args, **_kwargs):
        deployments_read.wait(60)  # the sources read at once: PagerDuty dies once GitHub's deployments are read
        raise RuntimeError("the process was killed here")

    with running(history) as base_url:
        config_path = write_config(tmp_path, base_url)
        with monkeypatch.context() as patch:
            patch.setattr(GithubSource, "fetch", fetch_and_tell)
            patch.setattr(PagerDutyClient, "resolved_since", killed)
            died = backfill(config_path)
        assert died.exit_code == 1, died.output
        assert died.stderr == ("error: step facts failed: SourceError: sources.pagerduty: reading incidents: "
                               "RuntimeError: the process was killed here\n")
        with Warehouse.open_existing(f"sqlite:///{tmp_path / 'warehouse.db'}") as warehouse:
            assert len(warehouse.read_facts("deployments")) > 0  # half-way: GitHub's records had landed
            # ... and sync_state says so, and says nothing of PagerDuty, whose read died
            assert warehouse.get_cursor("github", "deployments") == END.isoformat()
            assert warehouse.get_cursor("pagerduty", "incidents") is None
        result = backfill(config_path)
    assert result.exit_code == 0, result.output
    assert_equals_truth(tables(config_path), truth)


def test_no_token_reaches_the_output_or_the_warehouse(reference):
    config_path, summary, second, found = reference
    database = (config_path.parent / "warehouse.db").read_bytes()
    for token in SECRETS.values():
        assert token not in summary and token not in second
        assert token.encode() not in database


def test_scorecard_simulate_serves_writes_its_truth_and_a_config_and_stops_on_sigterm(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import requests

    config_out, truth_dir = tmp_path / "demo" / "scorecard.yaml", tmp_path / "truth"
    command = [str(Path(sys.executable).with_name("scorecard")), "simulate", "--port", "0", "--days", "5",
               "--delay", "0.01", "--truth-out", str(truth_dir),
               "--config", str(Path(__file__).parents[1] / "scorecard.yaml"), "--write-config", str(config_out),
               "--warehouse-url", f"sqlite:///{tmp_path / 'wh.db'}"]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, NOW_ENV: "2026-11-01T06:00:00Z"})  # fmt: skip
    try:
        line = process.stderr.readline()  # "simulator: http://127.0.0.1:PORT (github: ...": printed once listening
        assert line.startswith("simulator: http://127.0.0.1:") and "0.01 s before every answer" in line, line
        base_url = line.split()[1]
        for _ in range(50):
            if config_out.exists():
                break
            time.sleep(0.1)
        written = yaml.safe_load(config_out.read_text())
        assert written["sources"]["github"]["base_url"] == f"{base_url}/github"
        assert set(written["sources"]) == {"github", "pagerduty", "jira", "servicenow", "files"}
        assert written["sources"]["jira"]["base_url"] == f"{base_url}/jira"
        assert set(written["sources"]["files"]) == {"values"}
        assert requests.post(f"{base_url}/github/graphql", json={"query": "{ viewer { login } }"}).status_code == 401
        assert sorted(p.name for p in truth_dir.iterdir()) == ["changes.csv", "deployments.csv", "incidents.csv",
                                                               "metrics.json", "pull_requests.csv"]  # fmt: skip
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0


def test_a_refused_token_is_one_line_naming_the_source_and_its_variable_and_nothing_is_written(history, tmp_path):
    simulator = make_app(history, token=dict.fromkeys(("github", "pagerduty", "jira", "servicenow"), "the-right-token"))
    with running(simulator) as base_url:
        result = backfill(write_config(tmp_path, base_url))
    assert (result.exit_code, result.stderr.count("\n")) == (2, 1), result.output
    assert result.stderr.startswith("error: sources.github: ") and "GITHUB_TOKEN" in result.stderr
    assert TOKENS["GITHUB_TOKEN"] not in result.output
    assert not (tmp_path / "warehouse.db").exists()


def test_no_token_in_anything_a_failing_run_leaves(history, tmp_path, monkeypatch):
    """The run's output, the warehouse and the Dagster home (run storage, event logs, compute logs)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    def killed(*_args, **_kwargs):
        raise RuntimeError("the process was killed here")

    monkeypatch.setattr(PagerDutyClient, "resolved_since", killed)
    with running(history) as base_url:
        died = backfill(write_config(tmp_path, base_url))
    assert died.exit_code == 1, died.output
    left = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.name == "warehouse.db" for path in left) and any(home in path.parents for path in left)
    for token in SECRETS.values():
        assert token not in died.output
        assert [path for path in left if token.encode() in path.read_bytes()] == []


def test_unmapped_records_are_counted_per_source_and_entity_with_the_mapping_to_add(reference, truth):
    config_path = reference[0]
    with Warehouse.open_existing(f"sqlite:///{config_path.parent / 'warehouse.db'}") as warehouse:
        found = unmapped_entities(warehouse.read_facts("incidents", with_raw=True, service="unmapped"))
    incidents = truth[0]["incidents"]
    expected = incidents[incidents["service"] == "unmapped"]["source"].value_counts().to_dict()
    assert found.groupby("source")["records"].sum().to_dict() == expected
    assert set(zip(found["source"], found["entity"], found["mapping"], strict=True)) == {
        ("servicenow", "Legacy Billing", "servicenow_cis"), ("servicenow", "(none)", "servicenow_cis"),
        ("jira", "sandbox", "jira_components"), ("jira", "(none)", "jira_components")}  # fmt: skip


def test_links_across_sources_resolve_for_each_pair(reference):
    """A ServiceNow incident's caused_by and a Jira incident's "Causes" link name a change of their own tool; a
    GitHub deployment names the ServiceNow or Jira change it implements: every such link lands on a stored change."""
    found = reference[3]
    changes = found["changes"].set_index("source_id")["source"]
    incidents, deployments = found["incidents"], found["deployments"]
    pairs = pd.concat([
        pd.DataFrame({"from": incidents["source"], "to": incidents["caused_by_change"]}),
        pd.DataFrame({"from": deployments["source"], "to": deployments["change_id"]}),
    ]).dropna()  # fmt: skip
    pairs["to_source"] = pairs["to"].map(changes)
    assert pairs["to_source"].notna().all(), pairs[pairs["to_source"].isna()]
    assert set(zip(pairs["from"], pairs["to_source"], strict=True)) == {
        ("servicenow", "servicenow"), ("jira", "jira"), ("github", "servicenow"), ("github", "jira")}  # fmt: skip


def superseded_across_months(history) -> tuple:
    """The production deployment superseded longest after it went live, in another month: GitHub's INACTIVE status
    on it comes days later, past the connector's 3-day look-back."""
    candidates = [d for served in history.deployments.values() for d in served if d.environment == "production"
                  and d.latest_status.state == "inactive" and d.went_live.month != d.updated_at.month]  # fmt: skip
    return max(candidates, key=lambda d: d.updated_at - d.went_live)


def nightly(history, folder: Path, day: pd.Timestamp, monkeypatch) -> tuple[str, dict[str, pd.DataFrame]]:
    """The nightly run of `day` at 02:00 the next day, GitHub serving what it had by then; (summary, tables)."""
    night = day + pd.Timedelta(days=1)
    monkeypatch.setenv(NOW_ENV, (night + pd.Timedelta(hours=2)).isoformat())
    with running(history.github_as_of(night.to_pydatetime())) as base_url:
        config_path = write_config(folder, base_url)
        config = yaml.safe_load(config_path.read_text())
        config["sources"] = {"github": config["sources"]["github"]}
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        result = runner.invoke(app, ["run", "--from", day.date().isoformat(), "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    return result.output, tables(config_path)


def test_a_deployment_superseded_days_later_keeps_its_success_time_when_read_again(history, truth, tmp_path,
                                                                                   monkeypatch):  # fmt: skip
    x = superseded_across_months(history)
    key, went_live, superseded_at = f"{x.repo}/{x.id}", pd.Timestamp(x.went_live), pd.Timestamp(x.updated_at)
    assert (superseded_at.normalize() - went_live.normalize()).days > 3
    _, first = nightly(history, tmp_path, went_live.normalize(), monkeypatch)
    stored = first["deployments"].set_index("source_id")
    assert stored.loc[key, ["deployed_at", "status", "updated_at"]].tolist() == [went_live, "success", went_live]

    summary, second = nightly(history, tmp_path, superseded_at.normalize(), monkeypatch)
    again = second["deployments"].set_index("source_id")
    assert again.loc[key, ["deployed_at", "status", "updated_at"]].tolist() == [went_live, "inactive", superseded_at]
    facts, _ = truth
    expected = canonical(facts["deployments"], "deployments").set_index("source_id").loc[key]
    assert again.loc[key, expected.index].tolist() == expected.tolist()  # as a full backfill stores it
    both = again.index.intersection(stored.index)
    pd.testing.assert_series_equal(again.loc[both, "deployed_at"], stored.loc[both, "deployed_at"])
    changed = both[again.loc[both, "updated_at"] != stored.loc[both, "updated_at"]]
    assert key in changed
    kept = [c.name for c in SCHEMAS["deployments"] if c.name not in ("source_id", "status", "updated_at")]
    pd.testing.assert_frame_equal(again.loc[changed, kept], stored.loc[changed, kept])  # status and updated_at only
    prs = [frame["pull_requests"].set_index("source_id")["updated_at"] for frame in (first, second)]
    inserted = len(again) - len(both) + len(prs[1].index.difference(prs[0].index))
    assert not (prs[1].reindex(prs[0].index) != prs[0]).any()  # no pull request read on both nights changed
    assert f"inserted {inserted:,}, updated {len(changed):,}, unchanged 0" in summary  # the deployments it superseded

    # The month it went live keeps it: its counts and lead time are the same, though that period was recomputed (the
    # per-day figures are not compared: the month had not ended at the first night).
    month = went_live.normalize().replace(day=1)
    compared = ["deployment_frequency", "lead_time_for_changes", "change_failure_rate"]
    rows = [frame[(frame["grain"] == "month") & (frame["service"] == x.service) & frame["metric"].isin(compared)
                  & (pd.to_datetime(frame["period_start"], utc=True) == month)]
            [["metric", "period_start", "value", "sample_size"]].sort_values("metric", ignore_index=True)
            for frame in (first["metric_values"], second["metric_values"])]  # fmt: skip
    assert len(rows[0]) > 0
    pd.testing.assert_frame_equal(rows[1], rows[0])
    frequency = rows[1].set_index("metric").loc["deployment_frequency", "value"]
    assert frequency == (stored["service"].eq(x.service) & stored["deployed_at"].ge(month)).sum()
