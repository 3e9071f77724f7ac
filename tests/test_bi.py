"""What BI tools read: the views of migration 0003 on SQLite and PostgreSQL, docs/bi.md's example queries and
column guide, the PostgreSQL column comments, and the read-only role of warehouse/sql/readonly_role.sql.

The scored warehouse: `scorecard backfill` of tests/demo_files.py's data (March 2024) as of 2024-04-02 06:00, so
March is the latest ended review period and April has begun (scored, nearly empty).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command
from demo_files import write_config
from test_warehouse import OCTOBER, SEPTEMBER, VALUES, good, incident, scores, ts
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.clock import NOW_ENV
from pipelines.config import read_config
from pipelines.resources import WAREHOUSE_URL_ENV
from pipelines.views.scorecard import latest_period
from scoring.bands import BAND_NAMES
from scoring.dictionary import dictionary_frame
from scoring.scorecard import KPI_STATUSES
from warehouse import Warehouse, WarehouseError
from warehouse.frames import from_db
from warehouse.migrate import alembic_config, upgrade
from warehouse.schema import TABLES, VIEWS, kpi_scores, metric_values, node_scores

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "bi.md"
ROLE_SCRIPT = ROOT / "warehouse" / "sql" / "readonly_role.sql"
BI_VIEWS = importlib.import_module("warehouse.migrations.versions.0003_bi_views")
VIEWS_NOW = importlib.import_module("warehouse.migrations.versions.0004_complete_periods")  # the views as they stand
NOW = "2024-04-02T06:00:00Z"
DERIVED = (metric_values, kpi_scores, node_scores)
INSUFFICIENT_PRIVILEGE = "42501"
runner = CliRunner()


def stamp_computed_at(wh: Warehouse, when: str) -> None:
    """Every derived row computed at `when`, as a run at that instant stamps them (the warehouse stamps the wall
    clock, and SCORECARD_NOW only moves the pipeline's clock)."""
    with wh.engine.begin() as conn:
        for table in DERIVED:
            conn.execute(sa.update(table).values(computed_at=ts(when).to_pydatetime()))


# --- a scored warehouse on both databases ------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_module_url(postgres_admin: sa.Engine) -> Iterator[str]:
    """conftest's postgres_url for a whole module: one backfill serves every test here."""
    schema = f"wh_bi_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    yield postgres_admin.url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module")
def scored(tmp_path_factory, data_dir, postgres_module_url) -> Iterator[dict[str, Warehouse]]:
    """{"sqlite": ..., "postgresql": ...}: the same backfill into a SQLite file and a PostgreSQL schema."""
    folder = tmp_path_factory.mktemp("bi")
    config_path = write_config(folder, data_dir)
    urls = {"sqlite": f"sqlite:///{folder / 'warehouse.db'}", "postgresql": postgres_module_url}
    warehouses = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv(NOW_ENV, NOW)
        for dialect, url in urls.items():
            env.setenv(WAREHOUSE_URL_ENV, url)
            result = runner.invoke(app, ["backfill", "--from", "2024-03-01", "--to", "2024-04-01",
                                         "--config", str(config_path)])  # fmt: skip
            assert result.exit_code == 0, result.output
            warehouses[dialect] = Warehouse.open_existing(url)
            stamp_computed_at(warehouses[dialect], NOW)
    yield warehouses
    for wh in warehouses.values():
        wh.dispose()


def test_every_view_returns_the_same_rows_on_sqlite_and_postgresql(scored):
    for view in VIEWS:
        on_sqlite, on_postgres = (scored[d].read_table(view) for d in ("sqlite", "postgresql"))
        assert len(on_sqlite) > 0, view
        pd.testing.assert_frame_equal(on_sqlite, on_postgres, obj=view)


def test_scorecard_latest_is_the_latest_ended_review_period(scored):
    wh = scored["sqlite"]
    kpis = wh.read_table("kpi_scores")
    latest = wh.read_table("scorecard_latest")
    assert set(latest["period_start"]) == {ts("2024-03-01")} == {latest_period(kpis, ts(NOW))}
    assert sorted(latest["kpi_id"]) == sorted(kpis["kpi_id"].unique())
    assert latest["value"].notna().all() and ts("2024-04-01") in set(kpis["period_start"])  # April runs, not shown
    overall = wh.read_table("node_scores").query("node_type == 'scorecard' and period_start == @ts('2024-03-01')")
    assert (latest["scorecard_score"] == overall["score"].iloc[0]).all()


def test_period_views_say_which_periods_ended_and_count_back_from_the_latest_ended(scored):
    periods = scored["postgresql"].read_table("scorecard_periods")
    assert periods[["period_start", "period_ended", "periods_ago"]].to_dict("records") == [
        {"period_start": ts("2024-03-01"), "period_ended": True, "periods_ago": 0},
        {"period_start": ts("2024-04-01"), "period_ended": False, "periods_ago": -1},
    ]
    weeks = scored["postgresql"].read_table("metric_periods").query("grain == 'week'")
    assert list(weeks.loc[weeks["periods_ago"] == 0, "period_start"]) == [ts("2024-03-25")]
    assert list(weeks["periods_ago"]) == [4, 3, 2, 1, 0, -1]
    assert list(weeks["period_ended"]) == [True] * 5 + [False]


def test_metric_latest_and_service_health_hold_each_grains_latest_ended_period(scored):
    wh = scored["sqlite"]
    stored = wh.read_table("metric_values")
    latest = wh.read_table("metric_latest")
    shown = {"week": ts("2024-03-25"), "month": ts("2024-03-01")}
    expected = stored[stored["period_start"] == stored["grain"].map(shown)].reset_index(drop=True)
    pd.testing.assert_frame_equal(latest, expected)

    health = wh.read_table("service_health").set_index(["service", "grain"])
    assert set(health.index) == set(zip(stored["service"], stored["grain"], strict=True))
    month = latest[latest["grain"] == "month"].set_index(["service", "metric"])
    checkout = health.loc[("checkout", "month")]
    assert checkout["period_start"] == ts("2024-03-01") and checkout["period_ended"]
    for column, metric, source in BI_VIEWS.HEALTH_FIGURES:
        expected_figure = month.loc[("checkout", metric), source]
        assert checkout[column] == expected_figure or pd.isna(checkout[column]) and pd.isna(expected_figure), column
    history = wh.read_table("service_health_history")
    assert len(history) == len(stored[["service", "grain", "period_start"]].drop_duplicates())
    latest_rows = history[history["periods_ago"] == 0].drop(columns="periods_ago").reset_index(drop=True)
    pd.testing.assert_frame_equal(latest_rows, wh.read_table("service_health"), check_dtype=False)


def test_status_and_band_ranks_follow_the_scoring_order(scored):
    def ranks(column: str, names: tuple[str, ...]) -> str:
        return f"CASE {column} " + " ".join(f"WHEN '{name}' THEN {rank}" for rank, name in enumerate(names, 1)) + " END"

    assert BI_VIEWS.STATUS_RANK == ranks("k.status", KPI_STATUSES)
    assert BI_VIEWS.BAND_RANK == ranks("h.dora_band", BAND_NAMES)
    history = scored["sqlite"].read_table("kpi_status_history")
    assert set(history["status"]) == set(KPI_STATUSES)
    assert (history["status_rank"] == history["status"].map({s: i for i, s in enumerate(KPI_STATUSES, 1)})).all()
    assert len(history) == len(scored["sqlite"].read_table("kpi_scores"))


def test_dora_band_history_holds_every_kpi_on_a_dora_metric(scored):
    wh = scored["postgresql"]
    bands = wh.read_table("dora_band_history")
    kpis = wh.read_table("kpi_scores")
    dora_metrics = set(dictionary_frame().query("dora")["name"])
    assert sorted(bands["kpi_id"].unique()) == sorted(kpis.loc[kpis["metric"].isin(dora_metrics), "kpi_id"].unique())
    march = bands[bands["periods_ago"] == 0].set_index("kpi_id")
    assert march.loc["deployment_frequency", "dora_band"] == "elite"
    banded = bands["dora_band"].notna()
    ranks = bands.loc[banded, "dora_band"].map({band: i for i, band in enumerate(BAND_NAMES, 1)})
    assert (bands.loc[banded, "dora_band_rank"] == ranks).all() and bands.loc[~banded, "dora_band_rank"].isna().all()


# --- the same rules on hand-made scores, on each database ---------------------------------------------------


@pytest.mark.parametrize(
    ("computed_at", "shown"),
    [
        ("2026-10-15T00:00:00Z", SEPTEMBER),  # October still running: September is the latest ended
        ("2026-11-01T00:00:00Z", OCTOBER),  # October ends at that instant (periods are half-open)
        ("2026-09-20T00:00:00Z", OCTOBER),  # nothing ended yet: the latest with a value, as the report
    ],
)
def test_scorecard_latest_is_the_period_the_report_shows(warehouse, computed_at, shown):
    kpis, nodes = scores(VALUES)
    warehouse.replace_scores("Mini Scorecard", kpis, nodes, [SEPTEMBER, OCTOBER])
    stamp_computed_at(warehouse, computed_at)
    latest = warehouse.read_table("scorecard_latest")
    assert set(latest["period_start"]) == {shown} == {latest_period(warehouse.read_table("kpi_scores"),
                                                                    ts(computed_at))}  # fmt: skip
    assert sorted(latest["kpi_id"]) == sorted(kpis["kpi_id"].unique())


def test_a_period_without_any_value_is_not_shown(warehouse):
    kpis, nodes = scores([*VALUES[:1], ("it_spend", "2026-10-01", np.nan)])
    warehouse.replace_scores("Mini Scorecard", kpis, nodes, [SEPTEMBER, OCTOBER])
    stamp_computed_at(warehouse, "2026-11-05T00:00:00Z")
    assert set(warehouse.read_table("scorecard_latest")["period_start"]) == {SEPTEMBER}
    periods = warehouse.read_table("scorecard_periods")
    assert list(periods["periods_ago"]) == [0, -1] and list(periods["period_ended"]) == [True, True]


def test_views_are_empty_on_an_empty_warehouse(warehouse):
    for view in VIEWS:
        frame = warehouse.read_table(view)
        assert frame.empty and list(frame.columns) == [c.name for c in VIEWS[view].columns]


# --- columns, comments and docs -----------------------------------------------------------------------------


def documented_columns(view: str) -> list[tuple[str, str]]:
    """(column, meaning) rows of docs/bi.md's table after `<!-- columns: view -->`."""
    text = DOCS.read_text(encoding="utf-8")
    marker = f"<!-- columns: {view} -->\n"
    assert marker in text, f"docs/bi.md has no column table for view {view}"
    block = text.split(marker, 1)[1].split("\n\n", 1)[0]
    rows = [line.strip("|").split("|", 1) for line in block.splitlines()[2:]]
    return [(name.strip().strip("`"), meaning.strip()) for name, meaning in rows]


def test_view_columns_are_the_documented_and_commented_ones(scored):
    assert set(VIEWS_NOW.COMMENTS) == set(VIEWS)
    for view, table in VIEWS.items():
        names = [c.name for c in table.columns]
        assert list(VIEWS_NOW.COMMENTS[view][1]) == names, view
        assert documented_columns(view) == list(VIEWS_NOW.COMMENTS[view][1].items()), f"docs/bi.md, view {view}"
        for wh in scored.values():
            assert [c["name"] for c in sa.inspect(wh.engine).get_columns(view)] == names, (view, wh.dialect)


def test_postgresql_comments_every_view_and_view_column(scored):
    with scored["postgresql"].engine.connect() as conn:
        described = conn.execute(sa.text(
            "SELECT c.relname, a.attname, col_description(c.oid, a.attnum) FROM pg_class c "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
            "WHERE c.relkind = 'v' AND c.relnamespace = current_schema()::regnamespace")).all()  # fmt: skip
        views = dict(conn.execute(sa.text(
            "SELECT relname, obj_description(oid, 'pg_class') FROM pg_class "
            "WHERE relkind = 'v' AND relnamespace = current_schema()::regnamespace")).all())  # fmt: skip
    assert views == {view: about for view, (about, _) in VIEWS_NOW.COMMENTS.items()}
    expected = {(view, column): text for view, (_, columns) in VIEWS_NOW.COMMENTS.items()
                for column, text in columns.items()}  # fmt: skip
    assert {(view, column): text for view, column, text in described} == expected


def docs_queries() -> dict[str, str]:
    """docs/bi.md's example queries by name: the ```sql block after each `<!-- query: name -->`."""
    found = re.findall(r"<!-- query: (\w+) -->\n```sql\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    return dict(found)


COLUMN_TYPES = {c.name: c.type for view in VIEWS.values() for c in view.columns}


def test_docs_example_queries_return_the_same_rows_on_both_databases(scored):
    queries = docs_queries()
    assert {"rag_table", "kpi_trend", "dora_bands", "service_weeks"} <= set(queries)
    scorecard_name = read_config(ROOT / "scorecard.yaml").scorecard.name
    assert all(f"scorecard = '{scorecard_name}'" in query for query in queries.values() if "scorecard" in query)
    for name, query in queries.items():
        frames = []
        for wh in scored.values():
            with wh.engine.connect() as conn:
                result = conn.exec_driver_sql(query)
                frames.append(from_db(result.all(), [(key, COLUMN_TYPES[key]) for key in result.keys()]))
        assert len(frames[0]) > 0, name
        pd.testing.assert_frame_equal(*frames, obj=name)


def test_the_rag_table_shows_every_kpi_of_the_latest_ended_period(scored):
    with scored["sqlite"].engine.connect() as conn:
        rows = conn.exec_driver_sql(docs_queries()["rag_table"]).mappings().all()
    latest = scored["sqlite"].read_table("scorecard_latest")
    assert sorted(row["kpi_name"] for row in rows) == sorted(latest["kpi_name"])  # one row per KPI
    assert {row["period_start"] for row in rows} == {"2024-03-01 00:00:00.000000"}  # SQLite's text
    assert {row["status"] for row in rows} <= set(KPI_STATUSES)


# --- migration 0003 down and up -----------------------------------------------------------------------------


def test_0003_downgrades_to_the_old_views_and_upgrades_keeping_views_built_on_scorecard_latest(warehouse):
    kpis, nodes = scores(VALUES)  # written at the head version, kept through the downgrade (0004's columns go)
    warehouse.replace_scores("Mini Scorecard", kpis, nodes, [SEPTEMBER, OCTOBER])
    config = alembic_config()
    with warehouse.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")
    assert set(sa.inspect(warehouse.engine).get_view_names()) == {"kpi_history", "scorecard_latest"}
    if warehouse.dialect == "postgresql":
        assert sa.inspect(warehouse.engine).get_table_comment("kpi_history")["text"] is None
    stamp_computed_at(warehouse, "2026-10-15T00:00:00Z")
    with warehouse.engine.begin() as conn:  # a BI author's own view on the old scorecard_latest
        conn.exec_driver_sql("CREATE VIEW my_rag AS SELECT kpi_id, period_start, status FROM scorecard_latest")

    upgrade(warehouse.engine)
    assert set(sa.inspect(warehouse.engine).get_view_names()) == {*VIEWS, "my_rag"}
    with warehouse.engine.connect() as conn:
        shown = conn.exec_driver_sql("SELECT DISTINCT period_start FROM my_rag").scalars().all()
    assert len(shown) == 1 and ts(shown[0]) == SEPTEMBER  # the new meaning: October had not ended


# --- the read-only role (PostgreSQL) ------------------------------------------------------------------------

LATER_MIGRATION = """
import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = "{head}"


def upgrade():
    op.create_table("later_table", sa.Column("id", sa.Integer(), primary_key=True))
    op.execute("CREATE VIEW later_view AS SELECT id FROM later_table")
"""


def run_role_script(admin: sa.Engine, *variables: str) -> subprocess.CompletedProcess:
    if shutil.which("psql") is None:  # as conftest does for the server: CI must run it
        missing = "psql is not installed (Debian: postgresql-client); the read-only role recipe is a psql script"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    libpq_url = admin.url.set(drivername="postgresql").render_as_string(hide_password=False)
    args = ["psql", libpq_url, "-X", "-q", *(f"-v{v}" for v in variables), "-f", str(ROLE_SCRIPT)]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def reader(postgres_admin, postgres_url) -> Iterator[tuple[str, str]]:
    """(group role, login role in it): unique names, dropped afterwards (roles belong to the whole cluster)."""
    group, login = (f"bi_{kind}_{uuid.uuid4().hex[:10]}" for kind in ("reader", "login"))
    yield group, login
    with postgres_admin.connect() as conn:
        for role in (login, group):
            if conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first():
                conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
                conn.exec_driver_sql(f'DROP ROLE "{role}"')


def schema_of(url: str) -> str:
    return sa.engine.make_url(url).query["options"].removeprefix("-csearch_path=")


def expect_denied(conn: sa.Connection, statement: str) -> None:
    with pytest.raises(sa.exc.ProgrammingError) as denied:
        conn.exec_driver_sql(statement)
    conn.rollback()
    assert denied.value.orig.sqlstate == INSUFFICIENT_PRIVILEGE, (statement, str(denied.value.orig))


def test_the_readonly_role_reads_every_table_and_view_and_writes_nothing(postgres_admin, postgres_url, reader,
                                                                         tmp_path):  # fmt: skip
    owner_warehouse = Warehouse.connect(postgres_url)
    group, login = reader
    schema = schema_of(postgres_url)
    database = postgres_admin.url.database
    variables = (f"role={group}", f"schema={schema}", f"database={database}", f"owner={postgres_admin.url.username}")
    for _ in range(2):  # running it again changes nothing
        done = run_role_script(postgres_admin, *variables)
        assert done.returncode == 0, done.stderr
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{login}" LOGIN IN ROLE "{group}"')
        attributes = conn.execute(sa.text("SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                                          "WHERE rolname = :r"), {"r": group}).one()  # fmt: skip
    assert tuple(attributes) == (False, False, False, False)

    later = tmp_path / "later"
    later.mkdir()
    (later / "9001_later.py").write_text(LATER_MIGRATION.format(head=owner_warehouse.schema_version()))
    upgrade(owner_warehouse.engine, extra_version_locations=[later])  # the owner migrates after the grant
    owner_warehouse.dispose()

    url = sa.engine.make_url(postgres_url).set(username=login, password=None)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            for name in [*TABLES, *VIEWS, "alembic_version", "later_table", "later_view"]:
                conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar_one()
            for statement in (
                "INSERT INTO sync_state (source, kind, cursor, updated_at) VALUES ('x', 'y', 'z', now())",
                "UPDATE kpi_scores SET value = 0",
                "DELETE FROM metric_values",
                "TRUNCATE node_scores",
                "DELETE FROM later_table",
                "CREATE TABLE bi_scratch (id integer)",
                "CREATE VIEW bi_scratch AS SELECT 1 AS one",
                "DROP TABLE kpi_scores",
                "DROP VIEW scorecard_latest",
                "ALTER TABLE incidents ADD COLUMN note text",
            ):
                expect_denied(conn, statement)
    finally:
        engine.dispose()
    with Warehouse(sa.create_engine(url), url) as as_reader, pytest.raises(WarehouseError, match="cannot write"):
        as_reader.check_writable()


def test_the_role_script_refuses_to_run_without_a_role(postgres_admin):
    done = run_role_script(postgres_admin)
    assert done.returncode != 0 and "give the role to grant to" in done.stderr


# --- migration 0004: complete periods ---------------------------------------------------------------------


def test_0004_upgrades_a_populated_warehouse_saying_what_its_rows_and_sources_cover(warehouse):
    kpis, nodes = scores(VALUES)
    warehouse.replace_scores("Mini Scorecard", kpis, nodes, [SEPTEMBER, OCTOBER])
    warehouse.upsert_facts("incidents", good("incidents", [incident("P1", updated_at="2026-09-03T12:00:00Z"),
                                                           incident("P2", updated_at="2026-10-20T08:00:00Z")]))
    warehouse.set_cursor("pagerduty", "incidents", "2026-10-21T00:00:00+00:00")
    config = alembic_config()
    with warehouse.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
    assert "complete" not in {c["name"] for c in sa.inspect(warehouse.engine).get_columns("kpi_scores")}
    stamp_computed_at(warehouse, "2026-10-15T00:00:00Z")  # as the last run before the upgrade left them

    upgrade(warehouse.engine)
    stored = warehouse.read_table("kpi_scores")
    by_period = stored.groupby("period_start")[["complete", "data_from", "data_to"]].first()
    # Before 0004 nothing said what a row covered: a period counts as complete once it had ended by its computation.
    assert by_period.loc[SEPTEMBER].tolist() == [True, SEPTEMBER, OCTOBER]
    assert by_period.loc[OCTOBER].tolist() == [False, OCTOBER, ts("2026-10-15")]
    sync = warehouse.read_table("sync_state").set_index(["source", "kind"])
    assert json.loads(sync.loc[("pagerduty", "incidents"), "covered"]) == [
        [ts("2026-09-03").isoformat(), "2026-10-21T00:00:00+00:00"]]  # from its first record's day to its cursor
    assert set(warehouse.read_table("scorecard_latest")["period_start"]) == {SEPTEMBER}
