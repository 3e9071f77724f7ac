"""Escalation alerts: the pure rules (scoring.escalation), the period they look at, the Slack-compatible payload,
the shared client's secret-path posting, alerts_sent, and `scorecard backfill`/`run` end to end against a local
webhook (http.server on 127.0.0.1) on SQLite and PostgreSQL.

The end-to-end scorecard is manual KPIs fed by a values file (the pilot mode): IT spend goes amber in January
2024 and red in February, so with the clock at 2024-03-03 the latest ended review period (February) has one
escalation. The webhook URL carries a fake token in its path, as a Slack one does, and must show nowhere.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
import yaml
from dagster import AssetCheckSeverity, AssetKey, DagsterEventType, DagsterInstance
from dagster._core.instance.ref import InstanceRef
from dagster._serdes import serialize_value
from test_warehouse import at_once
from typer.testing import CliRunner

from connectors.http import VendorClient, VendorHttpError
from connectors.webhook import MAX_BLOCKS, SECTION_CHARS, WebhookError, post_message, slack_payload
from pipelines.assets import ASSETS
from pipelines.assets.alerts import (
    CLAIMED,
    AlertOutcome,
    alert_messages,
    alerts_due,
    escalations_check,
    kpi_alerts,
    review_period,
)
from pipelines.cli import app
from pipelines.cli.runner import RANGE_END_TAG, RANGE_START_TAG
from pipelines.clock import NOW_ENV
from pipelines.config import parse_config
from pipelines.definitions import JOB_NAME, build_definitions
from pipelines.resources import ALERT_WEBHOOK_URL_ENV, WAREHOUSE_URL_ENV, AlertWebhookResource, ScorecardConfigResource
from scoring.config import ScorecardConfig
from scoring.escalation import ESCALATION_COLUMNS, escalations, with_transitions
from warehouse import Warehouse
from warehouse.errors import WarehouseError
from warehouse.schema import TABLES, VIEWS

runner = CliRunner()
SECRET = "T0FAKE/B0FAKE/xoxbFAKEsecretTOKEN42"
UTC_JAN = pd.Timestamp("2024-01-01", tz="UTC")
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


# ---------------------------------------------------------------------------------------------
# The rules


def scorecard(**escalation) -> ScorecardConfig:
    """Three manual KPIs: `a` and `b` take the scorecard's rule (`escalation` sets it), `c` never escalates."""
    kpi = {"metric": "manual:x", "unit": "percent", "direction": "higher_is_better", "baseline": 0, "threshold": 50,
           "target": 80, "stretch": 95, "owner": "ana"}  # fmt: skip
    return ScorecardConfig.model_validate({
        "name": "Rules", **({"escalation": escalation} if escalation else {}),
        "perspectives": [{"id": "p", "name": "P", "objectives": [{"id": "o", "name": "O", "kpis": [
            {"id": "a", "name": "Alpha", **kpi}, {"id": "b", "name": "Beta", **kpi},
            {"id": "c", "name": "Gamma", **kpi, "escalation": False}]}]}],
    })  # fmt: skip


def history(**statuses: list[str | None]) -> pd.DataFrame:
    """kpi_scores rows per KPI, one a month from January 2024; None leaves that month out (a gap)."""
    frames = []
    for kpi_id, sequence in statuses.items():
        starts = pd.date_range(UTC_JAN, periods=len(sequence), freq="MS")
        frame = pd.DataFrame({"kpi_id": kpi_id, "kpi_name": kpi_id.title(), "unit": "percent", "period_start": starts,
                              "period_end": starts + pd.offsets.MonthBegin(1), "status": sequence,
                              "value": [None if s in (None, "no_data") else 42.0 for s in sequence], "target": 80.0,
                              "owner": "ana"})  # fmt: skip
        frames.append(frame[frame["status"].notna()])
    return pd.concat(frames, ignore_index=True)


def month(number: int) -> pd.Timestamp:
    return UTC_JAN + pd.offsets.MonthBegin(number - 1) if number > 1 else UTC_JAN


def fired(kpi_scores: pd.DataFrame, number: int, rules: ScorecardConfig | None = None) -> list[tuple[str, str]]:
    found = escalations(kpi_scores, rules or scorecard(), month(number))
    return list(zip(found["kpi_id"], found["rule"], strict=True))


def test_red_in_the_first_period_ever_fires():
    assert fired(history(a=["red"]), 1) == [("a", "red")]


def test_amber_to_red_is_red_only():
    found = escalations(history(a=["amber", "red"]), scorecard(), month(2))
    assert found[["kpi_id", "rule", "status", "previous_status"]].values.tolist() == [["a", "red", "red", "amber"]]


def test_a_fall_of_bands_is_one_drop():
    assert fired(history(a=["blue", "amber"]), 2) == [("a", "drop")]
    assert fired(history(a=["green", "amber"], b=["blue", "green"]), 2) == [("a", "drop"), ("b", "drop")]


@pytest.mark.parametrize("statuses", [["red", "red"], ["amber", "green"], ["green", "green"], ["amber", "blue"],
                                      ["blue", "no_data"], ["no_data", "amber"]])  # fmt: skip
def test_staying_rising_or_losing_data_once_fires_nothing(statuses):
    assert fired(history(a=statuses), 2) == []


def test_red_after_a_period_without_data_fires_again():
    assert fired(history(a=["red", "no_data", "red"]), 3) == [("a", "red")]


def test_a_run_of_no_data_fires_once_at_the_nth_period():
    kpi_scores = history(a=["green", "no_data", "no_data", "no_data"])
    assert [fired(kpi_scores, number) for number in (1, 2, 3, 4)] == [[], [], [("a", "no_data")], []]
    three = scorecard(no_data_periods=3)
    assert [fired(kpi_scores, number, three) for number in (3, 4)] == [[], [("a", "no_data")]]
    once = scorecard(no_data_periods=1)
    assert fired(history(a=["no_data", "no_data"]), 1, once) == [("a", "no_data")]
    assert fired(history(a=["no_data", "no_data"]), 2, once) == []


def test_a_gap_in_the_history_breaks_a_run_and_leaves_no_previous_status():
    with_gap = history(a=["no_data", None, "no_data"], b=["red", None, "red"])
    assert fired(with_gap, 3, scorecard(no_data_periods=2)) == [("b", "red")]
    rows = with_transitions(with_gap)
    assert rows.loc[rows["period_start"] == month(3), "previous_status"].tolist() == [None, None]


def test_a_kpi_with_escalation_false_never_fires():
    kpi_scores = history(c=["green", "red", "no_data", "no_data"])
    assert [fired(kpi_scores, number) for number in (1, 2, 3, 4)] == [[], [], [], []]


def test_triggers_restrict_the_rules():
    kpi_scores = history(a=["green", "red"], b=["green", "amber"])
    assert fired(kpi_scores, 2, scorecard(triggers=["drop"])) == [("b", "drop")]  # green -> red is red's alone
    assert fired(kpi_scores, 2, scorecard(triggers=["red"])) == [("a", "red")]
    assert fired(history(a=["no_data", "no_data"]), 2, scorecard(triggers=["red", "drop"])) == []


def test_a_kpi_rule_replaces_the_scorecard_rule():
    rules = scorecard(triggers=["red"])
    rules.perspectives[0].objectives[0].kpis[1].escalation = rules.escalation.model_copy(update={"triggers": ["drop"]})
    assert fired(history(a=["green", "amber"], b=["green", "amber"]), 2, rules) == [("b", "drop")]


def test_the_rows_carry_what_the_message_needs_in_config_then_rule_order():
    kpi_scores = history(b=["green", "red"], a=["no_data", "no_data"])
    found = escalations(kpi_scores, scorecard(), month(2))
    assert list(found.columns) == ESCALATION_COLUMNS
    assert found[["kpi_id", "rule"]].values.tolist() == [["a", "no_data"], ["b", "red"]]
    assert found.loc[1, ["status", "previous_status", "value", "target", "owner"]].tolist() == [
        "red", "green", 42.0, 80.0, "ana"]
    assert escalations(kpi_scores.iloc[0:0], scorecard(), month(2)).empty


def test_kpis_no_longer_configured_are_ignored():
    assert fired(history(gone=["green", "red"]), 2) == []


def test_messages_name_the_kpi_value_target_owner_and_what_happened():
    kpi_scores = history(a=["green", "red"], b=["blue", "amber"])
    kpi_scores.loc[kpi_scores["kpi_id"] == "b", "owner"] = None
    found = escalations(pd.concat([kpi_scores, history(c=["red"])]), scorecard(), month(2))
    assert alert_messages(found) == [
        "A (a) entered red (was green): 42.00% against target 80.00%; owner ana",
        "B (b) fell from blue to amber: 42.00% against target 80.00%; owner not named",
    ]
    first = escalations(history(a=["red"], b=["no_data"]), scorecard(no_data_periods=1), month(1))
    assert alert_messages(first) == [
        "A (a) entered red (was not scored the period before): 42.00% against target 80.00%; owner ana",
        "B (b) has no data for the review period: no value against target 80.00%; owner ana",
    ]
    dry = escalations(history(a=["no_data", "no_data"]), scorecard(), month(2))
    assert alert_messages(dry) == [
        "A (a) has had no data for 2 review periods in a row: no value against target 80.00%; owner ana"]


# ---------------------------------------------------------------------------------------------
# Which period


def test_the_period_is_the_latest_that_has_ended_by_the_as_of_instant():
    kpi_scores = history(a=["green"] * 24)  # two years of backfill: only the last ended month is looked at
    assert review_period(kpi_scores, pd.Timestamp("2025-12-15", tz="UTC")) == pd.Timestamp("2025-11-01", tz="UTC")
    assert review_period(kpi_scores, pd.Timestamp("2026-01-01", tz="UTC")) == pd.Timestamp("2025-12-01", tz="UTC")
    assert review_period(kpi_scores, pd.Timestamp("2026-06-01", tz="UTC")) == pd.Timestamp("2025-12-01", tz="UTC")


def test_before_any_period_has_ended_there_is_none():
    assert review_period(history(a=["red"]), pd.Timestamp("2024-01-20", tz="UTC")) is None


def test_an_ended_period_without_any_value_is_still_reviewed():
    assert review_period(history(a=["no_data", "no_data"]), month(3)) == month(2)


# ---------------------------------------------------------------------------------------------
# The check


def outcome(**changes) -> AlertOutcome:
    standing = escalations(history(a=["amber", "red"]), scorecard(), month(2))
    standing["message"] = alert_messages(standing)
    return AlertOutcome(**{"period": month(2), "standing": standing, "new": 1, "webhook": True, **changes})


def test_the_check_fails_with_a_warning_naming_each_escalation():
    result = escalations_check(outcome(posted=1))
    assert (result.passed, result.severity) == (False, AssetCheckSeverity.WARN)
    assert result.description.splitlines() == [
        "1 escalation(s) in the review period starting 2024-02-01 (1 new):",
        "A (a) entered red (was amber): 42.00% against target 80.00%; owner ana"]
    metadata = {key: value.value for key, value in result.metadata.items()}
    assert metadata == {"period": "2024-02-01", "escalations": 1, "red": 1, "drop": 0, "no_data": 0, "new": 1,
                        "recorded_before": 0, "posted": 1, "delivered": 1, "webhook": "configured",
                        "delivery_error": ""}  # fmt: skip


def test_the_check_passes_without_escalations_and_names_a_failed_post():
    assert escalations_check(AlertOutcome()).passed
    failed = escalations_check(outcome(posted=1, error="alerts webhook: POST https://hooks.example: HTTP 500"))
    assert failed.description.splitlines()[-1] == ("not delivered (the next run retries): alerts webhook: POST "
                                                   "https://hooks.example: HTTP 500")  # fmt: skip
    assert failed.metadata["delivered"].value == 0


def test_due_are_the_new_alerts_and_when_posting_those_a_failed_post_left():
    standing = escalations(history(a=["green", "red"], b=["green", "amber"], c=["green", "red"]),
                           scorecard(), month(2))  # fmt: skip
    standing = pd.concat([standing, standing.assign(kpi_id="x"), standing.assign(kpi_id="y")], ignore_index=True)
    fired_at = pd.Timestamp("2024-03-01", tz="UTC")
    recorded = pd.DataFrame({"kpi_id": ["a", "x", "y"], "period_start": month(2), "rule": ["red", "red", "red"],
                             "fired_at": fired_at, "delivered_at": [fired_at, pd.NaT, pd.NaT],
                             "delivery_error": [None, "HTTP 500", None]})  # fmt: skip
    # a: delivered; x: a failed post; y: recorded while no webhook was configured; b, x's and y's drops: new
    due, new = alerts_due(standing, recorded, posting=True)
    assert list(zip(due["kpi_id"], due["rule"], strict=True)) == [("b", "drop"), ("x", "red"), ("x", "drop"),
                                                                  ("y", "drop")]  # fmt: skip
    assert new == 3 and due.loc[due["kpi_id"] == "x", "fired_at"].tolist() == [fired_at, pd.NaT]
    due, new = alerts_due(standing, recorded, posting=False)
    assert list(zip(due["kpi_id"], due["rule"], strict=True)) == [("b", "drop"), ("x", "drop"), ("y", "drop")]


def test_the_asset_has_the_check_and_runs_in_the_job():
    assert kpi_alerts in ASSETS
    spec = next(iter(kpi_alerts.check_specs))
    assert (spec.name, spec.asset_key) == ("escalations", AssetKey("kpi_alerts"))
    assert AssetKey("kpi_scores") in kpi_alerts.asset_deps[AssetKey("kpi_alerts")]
    assert kpi_alerts.partitions_def is not None and kpi_alerts.backfill_policy is not None
    job = build_definitions().resolve_job_def(JOB_NAME)
    assert AssetKey("kpi_alerts") in job.asset_layer.executable_asset_keys


# ---------------------------------------------------------------------------------------------
# The payload and the post


def test_the_payload_is_slack_compatible_text_and_blocks():
    payload = slack_payload("Card: 2 KPI escalation(s)", ["A <b> & c", "B"])
    assert payload["text"] == "Card: 2 KPI escalation(s)\n• A &lt;b&gt; &amp; c\n• B"
    assert payload["blocks"] == [
        {"type": "header", "text": {"type": "plain_text", "text": "Card: 2 KPI escalation(s)"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "• A &lt;b&gt; &amp; c\n• B"}},
    ]


def test_a_long_payload_keeps_within_slacks_limits():
    lines = [f"KPI {n} " + "x" * 400 for n in range(1000)]
    blocks = slack_payload("t" * 200, lines)["blocks"]
    assert len(blocks) == MAX_BLOCKS and len(blocks[0]["text"]["text"]) == 150
    assert all(len(block["text"]["text"]) <= SECTION_CHARS for block in blocks[1:])
    shown = sum(block["text"]["text"].count("• KPI") for block in blocks[1:])
    assert blocks[-1]["text"]["text"].endswith(f"… and {1000 - shown} more")


@dataclass
class Webhook:
    """A local webhook receiver: answers each POST with the next of `statuses` (then 200 "ok"), and records it."""

    base: str
    statuses: list[int] = field(default_factory=list)
    posts: list[dict] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.base}/services/{SECRET}"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    received: Webhook | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.posts.append({"path": self.path, "body": json.loads(body),
                                   "content_type": self.headers["Content-Type"]})  # fmt: skip
            status = received.statuses.pop(0) if received.statuses else 200
            answer = b"ok" if status == 200 else b"server_error"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            if status != 200:
                self.send_header("Retry-After", "0")  # the shared client honours it: no real waiting in tests
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):  # keep the server quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    received = Webhook(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


def test_post_message_sends_one_json_post_and_takes_a_plain_ok(webhook):
    post_message(webhook.url, {"text": "hi", "blocks": []})
    assert webhook.posts == [{"path": f"/services/{SECRET}", "body": {"text": "hi", "blocks": []},
                              "content_type": "application/json"}]  # fmt: skip


def test_a_failing_receiver_is_retried_by_the_shared_client(webhook):
    webhook.statuses = [500, 503]
    post_message(webhook.url, {"text": "hi"})
    assert len(webhook.posts) == 3


def test_a_receiver_down_after_retries_is_one_masked_line(webhook, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    webhook.statuses = [500] * 10
    with pytest.raises(WebhookError) as caught:
        post_message(webhook.url, {"text": "hi"})
    assert str(caught.value) == f"alerts webhook: POST {webhook.base}: gave up after 5 attempts: HTTP 500"
    assert caught.value.__context__ is None or SECRET not in str(caught.value.__context__)
    assert '"POST /***' in caplog.text  # urllib3 did log the request lines, without the path
    assert SECRET not in caplog.text and "services" not in caplog.text


@pytest.mark.parametrize("url", ["hooks.slack.com/services/" + SECRET, "ftp://hooks.example/" + SECRET, ""])
def test_a_webhook_url_that_is_not_http_is_refused_without_showing_it(url):
    with pytest.raises(WebhookError) as caught:
        post_message(url, {"text": "hi"})
    assert "not an http(s) URL" in str(caught.value) and SECRET not in str(caught.value)


def test_deliver_needs_no_json_answer_and_a_secret_path_client_hides_the_path(webhook):
    client = VendorClient("hook", webhook.url, {}, sleep=lambda seconds: None, secret_path=True, attempts=2)
    assert client.deliver(webhook.url, {"x": 1}) == 200
    webhook.statuses = [404]
    with pytest.raises(VendorHttpError) as caught:
        client.deliver(webhook.url, {"x": 1})
    assert str(caught.value) == f"hook: POST {webhook.base}: HTTP 404"
    plain = VendorClient("hook", webhook.base, {}, sleep=lambda seconds: None, attempts=2)
    with pytest.raises(VendorHttpError, match="not JSON"):  # a JSON client still wants JSON
        plain.post("/x", json={})


def test_the_resource_reads_the_variable_the_config_names(monkeypatch):
    default, custom = parse_config(config_data()), parse_config({**config_data(), "alerts": {"webhook_url_env": "X"}})
    assert AlertWebhookResource().resolve_url(default) is None
    monkeypatch.setenv(ALERT_WEBHOOK_URL_ENV, "https://hooks.example/a")
    assert AlertWebhookResource().resolve_url(default) == "https://hooks.example/a"
    assert AlertWebhookResource(url="https://hooks.example/b").resolve_url(default) == "https://hooks.example/b"
    assert AlertWebhookResource(url="https://hooks.example/b").resolve_url(custom) is None
    monkeypatch.setenv("X", "https://hooks.example/x")
    assert AlertWebhookResource().resolve_url(custom) == "https://hooks.example/x"


# ---------------------------------------------------------------------------------------------
# alerts_sent


def alert_rows(**changes) -> pd.DataFrame:
    row = {"kpi_id": "it_spend", "period_start": pd.Timestamp("2024-02-01", tz="UTC"), "rule": "red",
           "status": "red", "previous_status": "amber", "value": 109.0, "target": 100.0, "owner": "cfo",
           "message": "IT spend (it_spend) entered red", "fired_at": pd.Timestamp("2024-03-03T02:00", tz="UTC"),
           "delivered_at": pd.NaT, "delivery_error": "alerts webhook: POST https://x: HTTP 500"}  # fmt: skip
    return pd.DataFrame([{**row, **changes}])


def test_record_alerts_upserts_by_key_and_keeps_the_first_fired_at(warehouse):
    assert warehouse.record_alerts("Card", alert_rows()) == 1
    later = pd.Timestamp("2024-03-04T02:00", tz="UTC")
    warehouse.record_alerts("Card", alert_rows(fired_at=later, delivered_at=later, delivery_error=None))
    warehouse.record_alerts("Card", alert_rows(rule="drop", period_start=pd.Timestamp("2024-01-01", tz="UTC")))
    warehouse.record_alerts("Other", alert_rows())
    stored = warehouse.read_alerts("Card", pd.Timestamp("2024-02-01", tz="UTC"))
    assert len(stored) == 1
    row = stored.iloc[0]
    assert (row["fired_at"], row["delivered_at"], row["delivery_error"]) == (
        pd.Timestamp("2024-03-03T02:00", tz="UTC"), later, None)
    assert len(warehouse.read_alerts("Card")) == 2 and len(warehouse.read_table("alerts_sent")) == 3
    assert warehouse.record_alerts("Card", alert_rows().iloc[0:0]) == 0


def test_record_alerts_refuses_a_bad_frame_before_writing(warehouse):
    with pytest.raises(WarehouseError, match="missing column"):
        warehouse.record_alerts("Card", alert_rows().drop(columns="message"))
    with pytest.raises(WarehouseError, match="required column"):
        warehouse.record_alerts("Card", alert_rows(message=None))
    with pytest.raises(WarehouseError, match="repeat a key"):
        warehouse.record_alerts("Card", pd.concat([alert_rows(), alert_rows()]))
    assert warehouse.read_table("alerts_sent").empty


# ---------------------------------------------------------------------------------------------
# End to end: `scorecard backfill` / `run` with the webhook


VALUES = """kpi_id,value,period
it_spend,102,2024-01
it_spend,109,2024-02
satisfaction,4.5,2024-01
satisfaction,4.5,2024-02
run_cost,14000,2024-01
run_cost,20000,2024-02
"""


def config_data() -> dict:
    """Three manual KPIs: IT spend goes amber -> red (escalates), satisfaction stays green, run cost goes green ->
    red but has `escalation: false`."""
    spend = {"id": "it_spend", "name": "IT spend vs budget", "metric": "manual:it_spend", "unit": "percent",
             "direction": "lower_is_better", "baseline": 110, "threshold": 105, "target": 100, "stretch": 95,
             "owner": "cfo"}  # fmt: skip
    satisfaction = {"id": "satisfaction", "name": "IT user satisfaction", "metric": "manual:csat", "unit": "score",
                    "direction": "higher_is_better", "baseline": 3, "threshold": 3.8, "target": 4.2, "stretch": 4.6,
                    "owner": "service-desk"}  # fmt: skip
    run_cost = {"id": "run_cost", "name": "Run cost per service", "metric": "manual:run_cost", "unit": "count",
                "direction": "lower_is_better", "baseline": 20000, "threshold": 16000, "target": 15000,
                "owner": "cloud-lead", "escalation": False}  # fmt: skip
    return {
        "sources": {"files": {"values": "values.csv"}},
        "scorecard": {"name": "Alerts Card", "review_period": "month", "perspectives": [
            {"id": "financial", "name": "Financial", "objectives": [
                {"id": "spend", "name": "Spend within budget", "kpis": [spend, satisfaction, run_cost]}]}]},
    }  # fmt: skip


@pytest.fixture
def setup(tmp_path, warehouse_url, monkeypatch) -> Path:
    """The config and values in tmp_path, the warehouse at `warehouse_url`, the clock at 2024-03-03 02:00 UTC, and a
    Dagster home that keeps the runs' event logs."""
    (tmp_path / "values.csv").write_text(VALUES)
    config_path = tmp_path / "scorecard.yaml"
    config_path.write_text(yaml.safe_dump(config_data(), sort_keys=False))
    monkeypatch.setenv(WAREHOUSE_URL_ENV, warehouse_url)
    monkeypatch.setenv(NOW_ENV, "2024-03-03T02:00:00Z")
    (tmp_path / "dagster_home").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return config_path


def run(config_path: Path, *days: str):
    """`scorecard run` (default: yesterday, 2024-03-02: the nightly run) over one day or `--from`/`--to`."""
    options = [f"--{name}={day}" for name, day in zip(("from", "to"), days, strict=False)]
    result = runner.invoke(app, ["run", "--config", str(config_path), *options])
    assert result.exit_code == 0, result.output
    return result


def seed(config_path: Path):
    """The run of 2024-01-31: scores January (amber, its first period: nothing to raise) and February (red, the
    period that has begun); as of February 1st the period under review is January, so it raises nothing."""
    result = run(config_path, "2024-01-31")
    assert "checks           all passed" in result.stdout
    return result


def alerts_sent(warehouse_url: str) -> pd.DataFrame:
    with Warehouse.connect(warehouse_url) as warehouse:
        return warehouse.read_table("alerts_sent")


def dagster_records(config_path: Path) -> tuple[str, list]:
    """Everything the Dagster home kept of the runs (runs, job snapshots, event logs) as text, and the evaluations
    of the escalations check, oldest first."""
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(config_path.parent / "dagster_home")))
    texts, evaluations = [], []
    for run in reversed(instance.get_runs()):
        texts += [serialize_value(run), serialize_value(instance.get_job_snapshot(run.job_snapshot_id))]
        for entry in instance.all_logs(run.run_id):
            texts.append(serialize_value(entry))
            event = entry.dagster_event
            if event is not None and event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
                if event.asset_check_evaluation_data.check_name == "escalations":
                    evaluations.append(event.asset_check_evaluation_data)
    instance.dispose()
    return "\n".join(texts), evaluations


def assert_secret_nowhere(config_path: Path, warehouse_url: str, *outputs: str) -> None:
    for output in outputs:
        assert SECRET not in output and "/services/" not in output
    with Warehouse.connect(warehouse_url) as warehouse:
        tables = {name: warehouse.read_table(name) for name in (*TABLES, *VIEWS)}
    for name, table in tables.items():
        assert SECRET not in table.astype(str).to_csv(), name
    logs, _ = dagster_records(config_path)
    assert logs and SECRET not in logs and "T0FAKE" not in logs


def test_a_kpi_turning_red_posts_one_message_once(setup, webhook, warehouse_url, monkeypatch):
    monkeypatch.setenv(ALERT_WEBHOOK_URL_ENV, webhook.url)
    first = seed(setup)
    assert webhook.posts == []
    nightly = run(setup)  # as of 2024-03-03 the period under review is February: IT spend went amber -> red
    assert "checks           warning: kpi_alerts:escalations" in nightly.stdout
    assert len(webhook.posts) == 1
    post = webhook.posts[0]
    assert post["content_type"] == "application/json" and set(post["body"]) == {"text", "blocks"}
    line = "IT spend vs budget (it_spend) entered red (was amber): 109.00% against target 100.00%; owner cfo"
    assert post["body"]["text"] == f"Alerts Card: 1 KPI escalation(s), review period starting 2024-02-01\n• {line}"
    assert post["body"]["blocks"][1] == {"type": "section", "text": {"type": "mrkdwn", "text": f"• {line}"}}
    stored = alerts_sent(warehouse_url)
    columns = ["scorecard", "kpi_id", "rule", "status", "previous_status", "value", "target", "owner", "message"]
    assert stored[columns].values.tolist() == [["Alerts Card", "it_spend", "red", "red", "amber", 109.0, 100.0, "cfo",
                                                line]]  # fmt: skip
    assert stored.loc[0, "period_start"] == pd.Timestamp("2024-02-01", tz="UTC")
    assert stored.loc[0, "delivered_at"] == stored.loc[0, "fired_at"] == pd.Timestamp("2024-03-03T02:00", tz="UTC")
    assert stored.loc[0, "delivery_error"] is None

    again = run(setup)  # the same period again
    assert len(webhook.posts) == 1  # nothing new to post
    assert "warning: kpi_alerts:escalations" in again.stdout  # the escalation still stands
    pd.testing.assert_frame_equal(alerts_sent(warehouse_url), stored)

    _, evaluations = dagster_records(setup)
    assert [(e.passed, e.severity) for e in evaluations] == [(True, AssetCheckSeverity.WARN)] + [
        (False, AssetCheckSeverity.WARN)] * 2
    assert line in evaluations[1].description and "(1 new)" in evaluations[1].description
    assert "(0 new)" in evaluations[2].description and line in evaluations[2].description
    assert {k: v.value for k, v in evaluations[2].metadata.items()}["recorded_before"] == 1
    assert_secret_nowhere(setup, warehouse_url, first.output, nightly.output, again.output)


def test_a_webhook_down_after_retries_is_retried_by_the_next_run(setup, webhook, warehouse_url, monkeypatch):
    monkeypatch.setenv(ALERT_WEBHOOK_URL_ENV, webhook.url)
    seed(setup)
    webhook.statuses = [500] * 5  # every attempt of the nightly run
    down = run(setup)
    assert len(webhook.posts) == 5
    stored = alerts_sent(warehouse_url)
    reason = f"alerts webhook: POST {webhook.base}: gave up after 5 attempts: HTTP 500"
    assert pd.isna(stored.loc[0, "delivered_at"]) and stored.loc[0, "delivery_error"] == reason
    _, evaluations = dagster_records(setup)
    assert not evaluations[-1].passed
    assert evaluations[-1].description.splitlines()[-1] == f"not delivered (the next run retries): {reason}"
    assert {k: v.value for k, v in evaluations[-1].metadata.items()}["delivery_error"] == reason

    again = run(setup)
    assert len(webhook.posts) == 6 and "it_spend" in webhook.posts[-1]["body"]["text"]
    stored = alerts_sent(warehouse_url)
    assert stored.loc[0, "delivered_at"] == pd.Timestamp("2024-03-03T02:00", tz="UTC")
    assert stored.loc[0, "delivery_error"] is None

    third = run(setup)
    assert len(webhook.posts) == 6
    assert_secret_nowhere(setup, warehouse_url, down.output, again.output, third.output)


def test_a_500_then_200_is_one_delivery(setup, webhook, warehouse_url, monkeypatch):
    monkeypatch.setenv(ALERT_WEBHOOK_URL_ENV, webhook.url)
    seed(setup)
    webhook.statuses = [500]
    run(setup)
    assert len(webhook.posts) == 2 and webhook.posts[0]["body"] == webhook.posts[1]["body"]
    assert alerts_sent(warehouse_url).loc[0, "delivered_at"] == pd.Timestamp("2024-03-03T02:00", tz="UTC")


def test_without_a_webhook_alerts_are_recorded_and_never_posted_later(setup, webhook, warehouse_url, monkeypatch):
    seed(setup)
    nightly = run(setup)
    assert "warning: kpi_alerts:escalations" in nightly.stdout
    stored = alerts_sent(warehouse_url)
    assert stored["kpi_id"].tolist() == ["it_spend"]
    assert pd.isna(stored.loc[0, "delivered_at"]) and stored.loc[0, "delivery_error"] is None
    monkeypatch.setenv(ALERT_WEBHOOK_URL_ENV, webhook.url)
    run(setup)
    assert webhook.posts == []
    _, evaluations = dagster_records(setup)
    assert [{k: v.value for k, v in e.metadata.items()}["webhook"] for e in evaluations[1:]] == [
        "not configured", "configured"]


def test_a_period_that_has_not_ended_raises_nothing(setup, webhook, warehouse_url, monkeypatch):
    monkeypatch.setenv(ALERT_WEBHOOK_URL_ENV, webhook.url)
    monkeypatch.setenv(NOW_ENV, "2024-01-20T02:00:00Z")
    (setup.parent / "values.csv").write_text("kpi_id,value,period\nit_spend,109,2024-01\n")
    result = run(setup, "2024-01-15")
    assert "checks           all passed" in result.stdout
    assert webhook.posts == [] and alerts_sent(warehouse_url).empty


def test_a_backfill_of_the_job_posts_the_last_ended_period_only(setup, webhook, warehouse_url, monkeypatch):
    """The job of build_definitions with its default resources (the webhook's URL an EnvVar, as deployed), over
    a range whose first month has an escalation of its own (satisfaction red in January): only February's post."""
    monkeypatch.setenv(ALERT_WEBHOOK_URL_ENV, webhook.url)
    (setup.parent / "values.csv").write_text(VALUES.replace("satisfaction,4.5,2024-01", "satisfaction,3.1,2024-01"))
    defs = build_definitions(scorecard=ScorecardConfigResource(path=str(setup)))
    instance = DagsterInstance.ephemeral()
    tags = {RANGE_START_TAG: "2024-01-01", RANGE_END_TAG: "2024-03-02"}
    result = defs.resolve_job_def(JOB_NAME).execute_in_process(instance=instance, tags=tags, run_config=QUIET)
    assert result.success and len(webhook.posts) == 1
    assert "(it_spend)" in webhook.posts[0]["body"]["text"] and "satisfaction" not in webhook.posts[0]["body"]["text"]
    assert alerts_sent(warehouse_url)["period_start"].tolist() == [pd.Timestamp("2024-02-01", tz="UTC")]
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "escalations")
    assert not check.passed and "owner cfo" in check.description
    run_record = instance.get_run_by_id(result.run_id)
    snapshot = serialize_value(instance.get_job_snapshot(run_record.job_snapshot_id))
    events = [serialize_value(entry) for entry in instance.all_logs(result.run_id)]
    assert SECRET not in "\n".join([serialize_value(run_record), snapshot, *events])
    assert ALERT_WEBHOOK_URL_ENV in snapshot  # the resource's URL is an EnvVar, by name


# --- at most once under concurrency, never lost to a crash ---------------------------------------------------


def claimable(count: int) -> pd.DataFrame:
    """`count` new escalations of one period, as alerts_due gives them (not stored yet: delivery_error empty)."""
    return pd.DataFrame({
        "kpi_id": [f"k{i}" for i in range(count)], "period_start": pd.Timestamp("2024-02-01", tz="UTC"),
        "rule": "red", "status": "red", "previous_status": "amber", "value": 1.0, "target": 2.0, "owner": "o",
        "message": "m", "fired_at": pd.Timestamp("2024-03-03T02:00", tz="UTC"), "delivered_at": pd.NaT,
        "delivery_error": None,
    })  # fmt: skip


def test_runs_claiming_the_same_alerts_at_the_same_time_win_each_once(warehouse_url):
    Warehouse.connect(warehouse_url).dispose()  # the schema exists before the runs race
    alerts, start = claimable(12), threading.Barrier(4)

    def one_run() -> pd.DataFrame:
        with Warehouse.connect(warehouse_url) as warehouse:
            start.wait()
            return warehouse.claim_alerts("Alerts Card", alerts, CLAIMED)

    claimed = pd.concat(at_once(4, one_run))["kpi_id"]
    assert sorted(claimed) == sorted(alerts["kpi_id"])  # each alert claimed by exactly one run
    stored = alerts_sent(warehouse_url)
    assert (stored["delivery_error"] == CLAIMED).all() and stored["delivered_at"].isna().all()


def test_an_undelivered_alert_is_claimed_again_only_while_it_reads_as_the_claimer_saw_it(warehouse_url):
    with Warehouse.connect(warehouse_url) as warehouse:
        warehouse.claim_alerts("Alerts Card", claimable(1), CLAIMED)
        seen = claimable(1).assign(delivery_error=CLAIMED)
        assert len(warehouse.claim_alerts("Alerts Card", seen, "second claim")) == 1
        assert len(warehouse.claim_alerts("Alerts Card", seen, "third claim")) == 0  # the second run has it


def test_a_run_that_dies_between_claiming_and_posting_loses_no_alert(setup, webhook, warehouse_url, monkeypatch):
    monkeypatch.setenv(ALERT_WEBHOOK_URL_ENV, webhook.url)
    seed(setup)

    def crash(*args, **kwargs):
        raise RuntimeError("the process died here")

    with monkeypatch.context() as dying:
        dying.setattr("pipelines.assets.alerts.post_alerts", crash)
        died = runner.invoke(app, ["run", "--config", str(setup)])
    assert died.exit_code == 1 and webhook.posts == []
    stored = alerts_sent(warehouse_url)
    assert stored["delivery_error"].tolist() == [CLAIMED] and stored["delivered_at"].isna().all()
    run(setup)  # the next run posts it
    assert len(webhook.posts) == 1 and "it_spend" in webhook.posts[0]["body"]["text"]
    assert alerts_sent(warehouse_url).loc[0, "delivery_error"] is None
