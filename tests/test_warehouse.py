"""The warehouse on SQLite and PostgreSQL: schema and migrations, idempotent writes, reads, views, errors.

Most tests run once per database through the `warehouse` fixture (tests/conftest.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from connectors.records import REJECTED_COLUMNS, SCHEMAS, empty_frame, normalise_frame
from pipelines.config import parse_config_text
from scoring.completeness import COMPLETENESS_COLUMNS
from scoring.dictionary import METRICS, dictionary_frame
from scoring.metrics import METRIC_COLUMNS, derive_metrics
from scoring.scorecard import KPI_SCORE_COLUMNS, NODE_SCORE_COLUMNS, score
from warehouse import UpsertResult, Warehouse, WarehouseError
from warehouse.migrate import alembic_config, upgrade
from warehouse.schema import FACT_TABLES, TABLES, VIEWS, kpi_scores, metric_dictionary, metric_values, node_scores
from warehouse.schema import metadata as schema_metadata

DATA = Path(__file__).parent / "data"
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


T = TypeVar("T")

def ts(text: str) -> pd.Timestamp:
    """A UTC timestamp, as the warehouse reads them back (text without an offset is UTC)."""
    stamp = pd.Timestamp(text)
    return stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")


def incident(source_id: str, **overrides) -> dict:
    row = {"source": "pagerduty", "source_id": source_id, "service": "checkout", "severity": "sev1",
           "title": "checkout down", "status": "resolved", "opened_at": "2026-03-01T10:00:00Z",
           "resolved_at": "2026-03-01T12:00:00Z", "caused_by_change": "", "updated_at": "2026-03-01T12:00:00Z"}
    return row | overrides  # fmt: skip


def good(kind: str, rows: list[dict]) -> pd.DataFrame:
    frame, rejected = normalise_frame(kind, pd.DataFrame(rows))
    assert rejected.empty, rejected.to_dict("records")
    return frame


def deployments(n: int, *, updated: str = "2026-01-02T00:00:00Z", seed: int = 7) -> pd.DataFrame:
    """`n` deployments typed as normalise_frame types them, built without a Python loop."""
    rng = np.random.default_rng(seed)
    deployed = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s")
    return pd.DataFrame(
        {
            "source": "github",
            "source_id": "d" + pd.Series(np.arange(n)).astype(str).astype(object),
            "service": np.array(["checkout", "search", "payments"], dtype=object)[rng.integers(0, 3, n)],
            "environment": "production",
            "sha": pd.Series(rng.integers(0, 2**40, n)).map("{:x}".format).astype(object),
            "deployed_at": pd.Series(deployed),
            "status": np.array(["success", "failure"], dtype=object)[rng.integers(0, 2, n)],
            "change_id": None,
            "updated_at": pd.Series(pd.Timestamp(updated), index=range(n)).dt.as_unit("ns"),
        }
    )


def count(wh: Warehouse, table: str) -> int:
    with wh.engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


# --- schema ---------------------------------------------------------------------------------


def test_table_columns_follow_the_scoring_frames_and_record_schemas():
    assert [c.name for c in metric_values.columns] == [*METRIC_COLUMNS, "computed_at", *COMPLETENESS_COLUMNS]
    assert [c.name for c in kpi_scores.columns] == [*KPI_SCORE_COLUMNS, "computed_at", *COMPLETENESS_COLUMNS]
    assert [c.name for c in node_scores.columns] == [*NODE_SCORE_COLUMNS, "computed_at", *COMPLETENESS_COLUMNS]
    for kind, table in FACT_TABLES.items():
        assert [c.name for c in table.columns] == [c.name for c in SCHEMAS[kind]] + ["raw", "loaded_at"]
    assert set(dictionary_frame().columns) == {c.name for c in metric_dictionary.columns}


def test_schema_is_created_on_first_use_and_its_version_reported(warehouse_url):
    wh = Warehouse.connect(warehouse_url)
    assert wh.schema_version() == HEAD
    inspector = sa.inspect(wh.engine)
    assert set(TABLES) <= set(inspector.get_table_names())
    assert set(VIEWS) <= set(inspector.get_view_names())
    assert wh.upsert_facts("incidents", good("incidents", [incident("P1")])) == UpsertResult(1, 0, 0)
    wh.dispose()
    again = Warehouse.connect(warehouse_url)  # already current: nothing to do, and nothing lost
    assert again.schema_version() == HEAD
    assert count(again, "incidents") == 1
    again.dispose()


def at_once(count: int, work: Callable[[], T]) -> list[T]:
    """`work` run by `count` threads at the same time: their results, or the first error one of them raised."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return [future.result() for future in [pool.submit(work) for _ in range(count)]]


def test_processes_starting_together_create_the_schema_once(warehouse_url):
    def open_warehouse() -> str:
        with Warehouse.connect(warehouse_url) as wh:
            return wh.schema_version()

    assert at_once(4, open_warehouse) == [HEAD] * 4


def test_sqlite_is_set_up_for_concurrent_readers(sqlite_url):
    wh = Warehouse.connect(sqlite_url)
    assert Path(wh.engine.url.database).parent.is_dir()
    with wh.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    wh.dispose()


def test_migrations_create_exactly_the_tables_the_code_defines(warehouse):
    with warehouse.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, schema_metadata) == []


MIGRATION_LATER = f'''
import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = "{HEAD}"


def upgrade():
    op.add_column("incidents", sa.Column("priority_note", sa.Text()))
    op.create_index("ix_incidents_status", "incidents", ["status"])
'''


def test_a_later_migration_upgrades_a_populated_warehouse(warehouse_url, tmp_path):
    wh = Warehouse.connect(warehouse_url)
    wh.upsert_facts("incidents", good("incidents", [incident("P1"), incident("P2")]))
    wh.set_cursor("pagerduty", "incidents", "abc")
    later = tmp_path / "later_versions"
    later.mkdir()
    (later / "9001_priority_note.py").write_text(MIGRATION_LATER)

    assert upgrade(wh.engine, extra_version_locations=[later]) == "9001"
    assert upgrade(wh.engine, extra_version_locations=[later]) == "9001"  # idempotent
    assert wh.schema_version() == "9001"
    assert "priority_note" in {c["name"] for c in sa.inspect(wh.engine).get_columns("incidents")}
    assert list(wh.read_facts("incidents")["source_id"]) == ["P1", "P2"]
    assert wh.get_cursor("pagerduty", "incidents") == "abc"
    wh.dispose()

    with pytest.raises(WarehouseError, match="version 9001, newer than this release knows"):
        Warehouse.connect(warehouse_url)  # this release only knows up to HEAD


# --- facts ------------------------------------------------------------------------------------


def test_upsert_counts_inserted_updated_and_unchanged(warehouse):
    first = good("incidents", [incident("P1"), incident("P2"), incident("P3")])
    assert warehouse.upsert_facts("incidents", first) == UpsertResult(inserted=3, updated=0, unchanged=0)
    assert warehouse.upsert_facts("incidents", first) == UpsertResult(inserted=0, updated=0, unchanged=3)
    second = good("incidents", [incident("P1"), incident("P2", status="closed", updated_at="2026-03-02T09:00:00Z"),
                                incident("P3"), incident("P4")])  # fmt: skip
    assert warehouse.upsert_facts("incidents", second) == UpsertResult(inserted=1, updated=1, unchanged=2)
    stored = warehouse.read_facts("incidents").set_index("source_id")
    assert stored.loc["P2", "status"] == "closed"
    assert stored.loc["P2", "updated_at"] == ts("2026-03-02T09:00:00Z")
    assert len(stored) == 4


def test_newest_updated_at_wins(warehouse):
    newer = incident("P1", status="resolved", updated_at="2026-03-05T00:00:00Z")
    warehouse.upsert_facts("incidents", good("incidents", [newer]))

    older = incident("P1", status="triggered", resolved_at="", updated_at="2026-03-01T00:00:00Z")
    assert warehouse.upsert_facts("incidents", good("incidents", [older])) == UpsertResult(0, 0, 1)
    undated = incident("P1", status="acknowledged", updated_at="")
    assert warehouse.upsert_facts("incidents", good("incidents", [undated])) == UpsertResult(0, 0, 1)
    stored = warehouse.read_facts("incidents")
    assert stored.loc[0, "status"] == "resolved" and stored.loc[0, "resolved_at"] == ts("2026-03-01T12:00:00Z")

    newest = incident("P1", status="closed", updated_at="2026-03-06T00:00:00Z")
    assert warehouse.upsert_facts("incidents", good("incidents", [newest])) == UpsertResult(0, 1, 0)
    assert warehouse.read_facts("incidents").loc[0, "status"] == "closed"


def test_extra_columns_are_kept_in_raw(warehouse):
    rows = [incident("P1", urgency="high", html_url="https://pd.example/P1", escalations=3),
            incident("P2", urgency=None, html_url=None, escalations=None)]  # fmt: skip
    warehouse.upsert_facts("incidents", good("incidents", rows))
    stored = warehouse.read_facts("incidents", with_raw=True).set_index("source_id")
    assert json.loads(stored.loc["P1", "raw"]) == {"urgency": "high", "html_url": "https://pd.example/P1",
                                                   "escalations": 3.0}  # fmt: skip
    assert stored.loc["P2", "raw"] is None
    assert "raw" not in warehouse.read_facts("incidents").columns
    read_back = warehouse.read_facts("incidents", with_raw=True)
    assert warehouse.upsert_facts("incidents", read_back) == UpsertResult(0, 0, 2)  # raw survives a round trip


def test_a_20k_row_batch_upserts_in_bulk(warehouse):
    batch = deployments(20_000)
    assert warehouse.upsert_facts("deployments", batch) == UpsertResult(20_000, 0, 0)
    changed = batch.copy()
    tenth = changed.index % 10 == 0
    changed.loc[tenth, "updated_at"] = ts("2026-01-03T00:00:00Z")
    changed.loc[tenth, "status"] = "inactive"
    assert warehouse.upsert_facts("deployments", changed) == UpsertResult(0, 2_000, 18_000)
    assert count(warehouse, "deployments") == 20_000
    assert (warehouse.read_facts("deployments")["status"] == "inactive").sum() == 2_000


def test_rejected_records_land_and_the_good_records_of_their_batch_too(warehouse):
    rows = [incident("P1"), incident("P2", opened_at=""), incident("P3"),
            incident("P4", resolved_at="2026-03-01T09:00:00Z"), incident("", source="")]  # fmt: skip
    raw = pd.DataFrame(rows).fillna("")
    batch_good, rejected = normalise_frame("incidents", raw)
    assert list(rejected.columns) == REJECTED_COLUMNS
    assert warehouse.upsert_facts("incidents", batch_good).inserted == 2
    assert warehouse.write_rejected("incidents", rejected, source="pagerduty") == 3
    assert warehouse.write_rejected("incidents", rejected, source="pagerduty") == 0  # a re-run adds nothing
    assert warehouse.write_rejected("changes", rejected, source="pagerduty") == 3  # another kind is another record

    stored = warehouse.read_table("rejected_records")
    incidents_rejected = stored[stored["kind"] == "incidents"].set_index("row")
    assert len(stored) == 6 and len(incidents_rejected) == 3
    assert incidents_rejected.loc[2, ["source", "source_id", "column_name", "reason"]].tolist() == [
        "pagerduty", "P2", "opened_at", "missing"]  # fmt: skip
    assert incidents_rejected.loc[4, "reason"] == "before opened_at"
    assert incidents_rejected.loc[5, "source"] == "pagerduty"  # missing source filled in from the argument
    assert incidents_rejected.loc[5, "source_id"] is None
    assert json.loads(incidents_rejected.loc[4, "payload"])["source_id"] == "P4"
    assert str(stored["rejected_at"].dtype) == "datetime64[ns, UTC]"
    assert sorted(warehouse.read_facts("incidents")["source_id"]) == ["P1", "P3"]


RECORDS = {
    "incidents": [incident("P1", opened_at="2026-03-01T08:00:00.123456-02:00", caused_by_change="CHG1"),
                  incident("P2", severity="", title="", resolved_at="", status=None, updated_at="")],
    "changes": [{"source": "servicenow", "source_id": "CHG1", "service": "checkout", "type": "emergency",
                 "implemented_at": "2026-03-01T09:00:00+01:00", "outcome": "backed out",
                 "updated_at": "2026-03-01T10:00:00Z"},
                {"source": "servicenow", "source_id": "CHG2", "service": "search", "type": "",
                 "implemented_at": "", "outcome": "", "updated_at": ""}],
    "deployments": [{"source": "github", "source_id": "D1", "service": "checkout", "environment": "production",
                     "sha": "abc123", "deployed_at": "2026-03-01T09:30:00Z", "status": "success",
                     "change_id": "CHG1", "updated_at": "2026-03-01T09:31:00Z"},
                    {"source": "github", "source_id": "D2", "service": "search", "environment": "staging",
                     "sha": "", "deployed_at": "2026-03-02T00:00:00Z", "status": "queued", "change_id": "",
                     "updated_at": ""}],
    "pull_requests": [{"source": "github", "source_id": "PR1", "service": "checkout",
                       "created_at": "2026-02-27T10:00:00Z", "first_commit_at": "2026-02-26T10:00:00Z",
                       "merged_at": "2026-02-28T10:00:00Z", "merge_commit_sha": "abc123",
                       "updated_at": "2026-02-28T10:00:00Z"},
                      {"source": "github", "source_id": "PR2", "service": "checkout",
                       "created_at": "2026-02-27T11:00:00Z", "first_commit_at": "", "merged_at": "",
                       "merge_commit_sha": "", "updated_at": "2026-02-27T11:00:00Z"}],
}  # fmt: skip


@pytest.mark.parametrize("kind", list(RECORDS))
def test_read_facts_round_trips_the_normalised_types(warehouse, kind):
    frame = good(kind, RECORDS[kind])
    warehouse.upsert_facts(kind, frame)
    stored = warehouse.read_facts(kind)
    expected = frame[[c.name for c in SCHEMAS[kind]]].sort_values("source_id", ignore_index=True)
    pd.testing.assert_frame_equal(stored, expected)
    for col in SCHEMAS[kind]:
        if col.kind == "timestamp":
            assert str(stored[col.name].dtype) == "datetime64[ns, UTC]"
        else:
            assert stored[col.name].dtype == object
            assert all(value is None or isinstance(value, str) for value in stored[col.name])
    empty_text = [c.name for c in SCHEMAS[kind] if c.kind != "timestamp" and pd.isna(expected.loc[1, c.name])]
    assert empty_text and all(stored.loc[1, name] is None for name in empty_text)


def test_read_facts_updated_returns_records_updated_in_the_window(warehouse):
    rows = [incident("P1", updated_at="2026-03-01T23:59:59Z"), incident("P2", updated_at="2026-03-02T00:00:00Z"),
            incident("P3", updated_at="2026-03-02T23:59:59.999999Z"), incident("P4", updated_at="2026-03-03T00:00:00Z"),
            incident("P5", updated_at="")]  # fmt: skip
    warehouse.upsert_facts("incidents", good("incidents", rows))
    window = warehouse.read_facts_updated("incidents", "2026-03-02", pd.Timestamp("2026-03-03", tz="UTC"))
    assert list(window["source_id"]) == ["P2", "P3"]
    assert warehouse.read_facts_updated("changes", "2026-03-02", "2026-03-03").empty


def test_bad_frames_are_refused_before_anything_is_written(warehouse):
    with pytest.raises(WarehouseError, match="unknown record kind 'tickets'"):
        warehouse.upsert_facts("tickets", good("incidents", [incident("P1")]))
    with pytest.raises(WarehouseError, match="incidents: missing column.*service"):
        warehouse.upsert_facts("incidents", good("incidents", [incident("P1")]).drop(columns="service"))
    with pytest.raises(WarehouseError, match=r"missing values in required column\(s\) service \(1 rows\)"):
        warehouse.upsert_facts("incidents", good("incidents", [incident("P1")]).assign(service=None))
    with pytest.raises(WarehouseError, match="no warehouse table or view 'nope'"):
        warehouse.read_table("nope")
    assert count(warehouse, "incidents") == 0


# --- derived tables ---------------------------------------------------------------------------


def metric_frame() -> pd.DataFrame:
    """Real metric rows: derive_metrics over a few deployments, months January to March 2026."""
    deploys = deployments(30).assign(deployed_at=lambda f: f["deployed_at"] + pd.to_timedelta(f.index * 3, unit="D"))
    return derive_metrics(
        empty_frame("incidents"), empty_frame("changes"), deploys, empty_frame("pull_requests"),
        grain="month", start="2026-01-01", end="2026-04-01", as_of="2026-04-01",
    )  # fmt: skip


MONTHS = [ts("2026-01-01"), ts("2026-02-01"), ts("2026-03-01")]


def test_replace_metric_values_replaces_exactly_the_given_periods(warehouse):
    frame = metric_frame()
    assert warehouse.replace_metric_values(frame, "month", MONTHS) == len(frame)
    stored = warehouse.read_table("metric_values")
    by_key = ["metric", "service", "period_start"]
    pd.testing.assert_frame_equal(
        stored[METRIC_COLUMNS].sort_values(by_key, ignore_index=True),
        frame.astype({"metric": object, "service": object, "grain": object, "unit": object})
        .sort_values(by_key, ignore_index=True),
    )

    february = frame[frame["period_start"] == MONTHS[1]]
    newer = february[february["service"] == "all"].assign(value=42.0)
    for _ in range(2):  # a re-run replaces again, it never duplicates
        assert warehouse.replace_metric_values(newer, "month", [MONTHS[1]]) == len(newer)
        stored = warehouse.read_table("metric_values")
        in_february = stored[stored["period_start"] == MONTHS[1]]
        assert len(in_february) == len(newer) and (in_february["value"] == 42.0).all()
        assert len(stored[stored["period_start"] != MONTHS[1]]) == len(frame) - len(february)


def test_a_rerun_with_the_same_values_keeps_computed_at_and_a_change_renews_it(warehouse):
    frame = metric_frame()
    warehouse.replace_metric_values(frame, "month", MONTHS)
    before = warehouse.read_table("metric_values").set_index(["metric", "service", "period_start"])
    changed = frame.copy()
    changed.loc[0, "value"] = 1234.5
    assert warehouse.replace_metric_values(changed, "month", MONTHS) == len(frame)
    after = warehouse.read_table("metric_values").set_index(["metric", "service", "period_start"])
    renewed = after["computed_at"] != before["computed_at"]
    first = tuple(changed.loc[0, ["metric", "service", "period_start"]])
    assert renewed.sum() == 1 and renewed.loc[first] and after.loc[first, "value"] == 1234.5


def test_replace_metric_values_leaves_other_grains_and_refuses_stray_rows(warehouse):
    months = metric_frame()
    warehouse.replace_metric_values(months, "month", MONTHS)
    weeks = months.assign(grain="week")
    warehouse.replace_metric_values(weeks, "week", MONTHS)
    assert warehouse.replace_metric_values(months.iloc[:0], "month", MONTHS[:1]) == 0
    stored = warehouse.read_table("metric_values")
    assert (stored["grain"] == "week").sum() == len(weeks)
    assert (stored["grain"] == "month").sum() == (months["period_start"] != MONTHS[0]).sum()

    with pytest.raises(WarehouseError, match="period_start outside the periods replaced"):
        warehouse.replace_metric_values(months, "month", MONTHS[1:])
    with pytest.raises(WarehouseError, match="grain other than 'day'"):
        warehouse.replace_metric_values(months, "day", MONTHS)
    assert len(warehouse.read_table("metric_values")) == len(stored)


def scores(values: list[tuple[str, str, float]], name: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """kpi_scores and node_scores of tests/data/mini_scorecard.yaml for (kpi_id, period_start, value)."""
    config = parse_config_text((DATA / "mini_scorecard.yaml").read_text())
    frame = pd.DataFrame(values, columns=["kpi_id", "period_start", "value"])
    kpis, nodes = score(config.scorecard, frame)
    if name:
        kpis, nodes = kpis.assign(scorecard=name), nodes.assign(scorecard=name)
    return kpis, nodes


SEPTEMBER, OCTOBER = ts("2026-09-01"), ts("2026-10-01")
VALUES = [("it_spend", "2026-09-01", 106.0), ("it_spend", "2026-10-01", 102.0), ("deploys", "2026-10-01", 5.0)]


def test_replace_scores_writes_both_tables_in_one_go(warehouse):
    kpis, nodes = scores(VALUES)
    assert warehouse.replace_scores("Mini Scorecard", kpis, nodes, [SEPTEMBER, OCTOBER]) == (len(kpis), len(nodes))
    assert warehouse.replace_scores("Mini Scorecard", kpis, nodes, [SEPTEMBER, OCTOBER]) == (len(kpis), len(nodes))
    stored_kpis, stored_nodes = warehouse.read_table("kpi_scores"), warehouse.read_table("node_scores")
    assert len(stored_kpis) == len(kpis) and len(stored_nodes) == len(nodes)
    shown = ["kpi_id", "period_start", "value", "performance", "status"]
    pd.testing.assert_frame_equal(
        stored_kpis.sort_values(shown[:2], ignore_index=True)[shown],
        kpis.sort_values(shown[:2], ignore_index=True)[shown],
        check_dtype=False,
    )

    october_kpis, october_nodes = scores([("it_spend", "2026-10-01", 99.0)])
    warehouse.replace_scores("Mini Scorecard", october_kpis, october_nodes, [OCTOBER])
    stored = warehouse.read_table("kpi_scores").set_index(["kpi_id", "period_start"])
    assert stored.loc[("it_spend", OCTOBER), "value"] == 99.0
    assert stored.loc[("it_spend", SEPTEMBER), "value"] == 106.0
    assert np.isnan(stored.loc[("deploys", OCTOBER), "value"])
    assert len(warehouse.read_table("node_scores")) == len(nodes)

    with pytest.raises(WarehouseError, match="scorecard other than 'Other'"):
        warehouse.replace_scores("Other", kpis, nodes, [SEPTEMBER, OCTOBER])


def test_metric_dictionary_is_filled(warehouse):
    assert warehouse.write_metric_dictionary(dictionary_frame()) == len(METRICS)
    assert warehouse.write_metric_dictionary(dictionary_frame()) == len(METRICS)
    stored = warehouse.read_table("metric_dictionary")
    assert sorted(stored["name"]) == sorted(METRICS)
    assert stored["dora"].dtype == bool
    assert stored.set_index("name").loc["change_failure_rate", "unit"] == "percent"


def test_cursors_are_kept_per_source_and_kind(warehouse):
    assert warehouse.get_cursor("github", "deployments") is None
    warehouse.set_cursor("github", "deployments", "2026-03-01T00:00:00Z")
    warehouse.set_cursor("github", "pull_requests", "page-7")
    warehouse.set_cursor("github", "deployments", "2026-03-02T00:00:00Z")
    assert warehouse.get_cursor("github", "deployments") == "2026-03-02T00:00:00Z"
    assert warehouse.get_cursor("github", "pull_requests") == "page-7"
    assert len(warehouse.read_table("sync_state")) == 2


# --- readers during rewrites ------------------------------------------------------------------


def test_a_reader_sees_the_old_rows_or_the_new_never_none_nor_both(warehouse):
    days = pd.date_range("2026-01-01", periods=4, freq="D", tz="UTC")
    services = [f"svc{i:03d}" for i in range(100)]
    base = pd.DataFrame(
        {"metric": "deployment_frequency", "service": np.repeat(services, len(days)), "grain": "day",
         "period_start": np.tile(days, len(services)), "unit": "count", "value": 1.0, "sample_size": 1}
    ).assign(period_end=lambda f: f["period_start"] + pd.Timedelta(days=1))[METRIC_COLUMNS]  # fmt: skip
    expected = len(base)
    warehouse.replace_metric_values(base, "day", days)
    window = sa.select(sa.func.count(), sa.func.sum(metric_values.c.value)).where(
        metric_values.c.grain == "day", metric_values.c.period_start.in_(list(days.to_pydatetime()))
    )
    seen: list[tuple[int, float]] = []
    stop = threading.Event()

    def read() -> None:
        with warehouse.engine.connect() as conn:
            while not stop.is_set():
                seen.append(tuple(conn.execute(window).one()))
                conn.rollback()  # end the snapshot: the next poll sees the latest commit

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for version in range(2, 32):
            warehouse.replace_metric_values(base.assign(value=float(version)), "day", days)
            time.sleep(0.005)
    finally:
        stop.set()
        reader.join()
    assert len(seen) > 20
    assert {n for n, _ in seen} == {expected}, "a reader saw a partial rewrite"
    assert len({total for _, total in seen}) > 1, "the reader never saw a rewrite land"


# --- views ------------------------------------------------------------------------------------


def _fill_scores(wh: Warehouse) -> None:
    kpis, nodes = scores(VALUES)
    wh.replace_scores("Mini Scorecard", kpis, nodes, [SEPTEMBER, OCTOBER])
    other_kpis, other_nodes = scores(VALUES[:1], name="Other Scorecard")  # its latest period is September
    wh.replace_scores("Other Scorecard", other_kpis, other_nodes, [SEPTEMBER])


def test_scorecard_latest_holds_every_kpi_of_each_scorecards_latest_period(warehouse):
    _fill_scores(warehouse)
    latest = warehouse.read_table("scorecard_latest")
    per_scorecard = latest.groupby("scorecard")["period_start"].unique()
    assert list(per_scorecard.loc["Mini Scorecard"]) == [OCTOBER]
    assert list(per_scorecard.loc["Other Scorecard"]) == [SEPTEMBER]
    mini = latest[latest["scorecard"] == "Mini Scorecard"].set_index("kpi_id")
    assert sorted(mini.index) == sorted(scores(VALUES)[0]["kpi_id"].unique())
    nodes = warehouse.read_table("node_scores").set_index(["scorecard", "node_id", "period_start"])
    assert mini.loc["it_spend", "objective_score"] == nodes.loc[("Mini Scorecard", "spend", OCTOBER), "score"]
    assert mini.loc["it_spend", "perspective_name"] == "Financial"
    assert mini.loc["it_spend", "scorecard_score"] == nodes.loc[("Mini Scorecard", "mini_scorecard", OCTOBER), "score"]
    history = warehouse.read_table("kpi_history")
    assert len(history) == len(warehouse.read_table("kpi_scores"))


def test_views_return_the_same_rows_on_sqlite_and_postgresql(sqlite_url, postgres_url):
    score_views = ["kpi_history", "scorecard_latest"]  # tests/test_bi.py compares every view on a backfill
    frames = {}
    for url in (sqlite_url, postgres_url):
        with Warehouse.connect(url) as wh:
            _fill_scores(wh)
            frames[wh.dialect] = {view: wh.read_table(view).drop(columns="computed_at") for view in score_views}
    for view in score_views:
        assert len(frames["sqlite"][view]) > 0
        pd.testing.assert_frame_equal(frames["sqlite"][view], frames["postgresql"][view])


# --- bad URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+psycopg://scorer:s3cret-pw@127.0.0.1:1/nowhere", "cannot open warehouse"),
        ("postgresql://scorer:s3cret-pw@127.0.0.1:1/nowhere", "cannot open warehouse"),
        ("mysql://scorer:s3cret-pw@localhost/db", "unsupported warehouse database 'mysql'"),
        ("postgresql+psycopg://scorer:s3cret-pw@127.0.0.1:notaport/db", "invalid warehouse URL"),
        ("no url at all", "invalid warehouse URL"),
        ("postgresql+psycopg://scorer@127.0.0.1:1/nowhere?password=s3cret-pw", "cannot open warehouse"),
        ("postgresql+psycopg://scorer@127.0.0.1:1/nowhere?sslpassword=s3cret-pw&sslmode=disable",
         "cannot open warehouse"),
    ],
)
def test_a_bad_url_raises_one_line_without_the_password(url, message):
    with pytest.raises(WarehouseError) as caught:
        Warehouse.connect(url)
    text = str(caught.value)
    assert message in text and "\n" not in text and "s3cret-pw" not in text
    assert "scorer:***@" in text or "scorer" not in url or "password=***" in text


def test_an_unusable_sqlite_path_raises_warehouse_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(WarehouseError, match="cannot open warehouse sqlite:///"):
        Warehouse.connect(f"sqlite:///{blocker / 'sub' / 'warehouse.db'}")


def test_text_with_nul_characters_lands_on_both_databases(warehouse):
    """PostgreSQL refuses NUL in text: normalising strips it from the canonical columns, JSON escapes it in raw."""
    row = incident("P\x001", title="disk\x00full") | {"note": "a\x00b"}
    assert warehouse.upsert_facts("incidents", good("incidents", [row])) == UpsertResult(1, 0, 0)
    stored = warehouse.read_facts("incidents", with_raw=True)
    assert (stored.loc[0, "source_id"], stored.loc[0, "title"]) == ("P1", "diskfull")
    assert json.loads(stored.loc[0, "raw"]) == {"note": "a\x00b"}
