"""Complete periods: what every derived row covers, and what every source has read.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

- `metric_values`, `kpi_scores` and `node_scores` get `complete`, `data_from` and `data_to`: a period is complete
  when it had ended by the run's as-of instant and every configured source's loaded history covered all of it.
- `sync_state` gets `covered`: the windows each source has read of each kind, merged (a JSON list of [start, end)
  UTC pairs), from which the pipeline decides completeness.
- Every view gains the three columns at its end (PostgreSQL replaces views in place, keeping grants and the
  views users built on them). `scorecard_periods` and `metric_periods` now count `periods_ago` from the latest
  COMPLETE period (the one `scorecard show` and the report pick), else the latest ended, as before.

Rows written before this version: a period counts as complete when it had ended by the row's computed_at, covered
from its start. Each source's `covered` starts on the first day of its stored records and ends at its cursor; the
`files` source (which keeps no cursor) at the day of the last computation.

Frozen on purpose, as 0001 and 0003: the views and columns are spelled out here.
"""

from __future__ import annotations

import importlib
import json

import pandas as pd
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_initial = importlib.import_module("warehouse.migrations.versions.0001_initial")
_bi = importlib.import_module("warehouse.migrations.versions.0003_bi_views")
KPI_COLUMNS = _initial.KPI_COLUMNS
DERIVED = ("metric_values", "kpi_scores", "node_scores")
FACT_KINDS = ("incidents", "changes", "deployments", "pull_requests")

COLUMN_COMMENTS = {
    "complete": "true when the period had ended and every source's loaded history covered all of it; false: "
                "running or partial",
    "data_from": "first instant of the period the loaded data covers, UTC",
    "data_to": "end of what the loaded data covers in the period, UTC (the period's end once covered to it; the "
               "run's as-of instant while it runs)",
}  # fmt: skip
COVERED_COMMENT = "the windows read so far, merged: a JSON list of [start, end) UTC pairs"


def _completeness(alias: str) -> str:
    return f"{alias}.complete, {alias}.data_from, {alias}.data_to"


# The review period each scorecard shows (periods_ago = 0), as pipelines.views.scorecard.latest_period: the latest
# complete period with a value, else the latest with a value that had ended, else the latest with a value.
SCORECARD_PERIODS = """CREATE VIEW scorecard_periods AS
WITH periods AS (
    SELECT scorecard, period_start, max(period_end) AS period_end,
           max(CASE WHEN value IS NOT NULL THEN 1 ELSE 0 END) AS scored,
           min(CASE WHEN complete THEN 1 ELSE 0 END) AS complete_flag,
           min(data_from) AS data_from, max(data_to) AS data_to
    FROM kpi_scores
    GROUP BY scorecard, period_start
), computed AS (
    SELECT scorecard, max(computed_at) AS computed_at FROM kpi_scores GROUP BY scorecard
), ranked AS (
    SELECT p.scorecard, p.period_start, p.period_end, p.scored, p.complete_flag, p.data_from, p.data_to,
           c.computed_at, COALESCE(p.period_end <= c.computed_at, FALSE) AS period_ended,
           ROW_NUMBER() OVER (PARTITION BY p.scorecard ORDER BY p.period_start DESC) AS period_rank
    FROM periods p JOIN computed c ON c.scorecard = p.scorecard
), shown AS (
    SELECT scorecard,
           COALESCE(min(CASE WHEN scored = 1 AND complete_flag = 1 THEN period_rank END),
                    min(CASE WHEN scored = 1 AND period_ended THEN period_rank END),
                    min(CASE WHEN scored = 1 THEN period_rank END), 1) AS period_rank
    FROM ranked
    GROUP BY scorecard
)
SELECT r.scorecard, r.period_start, r.period_end, r.period_ended, r.period_rank - s.period_rank AS periods_ago,
       r.computed_at, r.complete_flag = 1 AS complete, r.data_from, r.data_to
FROM ranked r JOIN shown s ON s.scorecard = r.scorecard"""

# Per grain, periods_ago = 0 is the latest complete period, else the latest that had ended when metric_values was
# last computed, else the latest.
METRIC_PERIODS = """CREATE VIEW metric_periods AS
WITH periods AS (
    SELECT grain, period_start, max(period_end) AS period_end,
           min(CASE WHEN complete THEN 1 ELSE 0 END) AS complete_flag,
           min(data_from) AS data_from, max(data_to) AS data_to
    FROM metric_values GROUP BY grain, period_start
), computed AS (
    SELECT max(computed_at) AS computed_at FROM metric_values
), ranked AS (
    SELECT p.grain, p.period_start, p.period_end, p.complete_flag, p.data_from, p.data_to, c.computed_at,
           COALESCE(p.period_end <= c.computed_at, FALSE) AS period_ended,
           ROW_NUMBER() OVER (PARTITION BY p.grain ORDER BY p.period_start DESC) AS period_rank
    FROM periods p CROSS JOIN computed c
), shown AS (
    SELECT grain, COALESCE(min(CASE WHEN complete_flag = 1 THEN period_rank END),
                           min(CASE WHEN period_ended THEN period_rank END), 1) AS period_rank
    FROM ranked
    GROUP BY grain
)
SELECT r.grain, r.period_start, r.period_end, r.period_ended, r.period_rank - s.period_rank AS periods_ago,
       r.computed_at, r.complete_flag = 1 AS complete, r.data_from, r.data_to
FROM ranked r JOIN shown s ON s.grain = r.grain"""

METRIC_LATEST = f"""CREATE VIEW metric_latest AS
SELECT m.metric, m.service, m.grain, m.period_start, m.period_end, m.value, m.unit, m.sample_size, m.computed_at,
       {_completeness("m")}
FROM metric_values m
JOIN metric_periods p ON p.grain = m.grain AND p.period_start = m.period_start
WHERE p.periods_ago = 0"""

SERVICE_HEALTH_HISTORY = f"""CREATE VIEW service_health_history AS
SELECT m.service, m.grain, m.period_start, p.period_end, p.period_ended, p.periods_ago,
       {_bi._FIGURES},
       {_completeness("p")}
FROM metric_values m
JOIN metric_periods p ON p.grain = m.grain AND p.period_start = m.period_start
GROUP BY m.service, m.grain, m.period_start, p.period_end, p.period_ended, p.periods_ago, {_completeness("p")}"""

SERVICE_HEALTH = f"""CREATE VIEW service_health AS
SELECT service, grain, period_start, period_end, period_ended,
       {", ".join(column for column, _, _ in _bi.HEALTH_FIGURES)},
       complete, data_from, data_to
FROM service_health_history
WHERE periods_ago = 0"""

KPI_HISTORY = f"CREATE VIEW kpi_history AS SELECT {KPI_COLUMNS}, {_completeness('k')} FROM kpi_scores k"

KPI_STATUS_HISTORY = f"""CREATE VIEW kpi_status_history AS
SELECT {KPI_COLUMNS}, p.period_ended, p.periods_ago, {_bi.STATUS_RANK} AS status_rank, {_completeness("k")}
FROM kpi_scores k
JOIN scorecard_periods p ON p.scorecard = k.scorecard AND p.period_start = k.period_start"""

DORA_BAND_HISTORY = f"""CREATE VIEW dora_band_history AS
SELECT h.scorecard, h.kpi_id, h.kpi_name, h.metric, h.unit, h.period_start, h.period_end, h.period_ended,
       h.periods_ago, h.value, h.status, h.dora_band, {_bi.BAND_RANK} AS dora_band_rank, h.owner,
       {_completeness("h")}
FROM kpi_status_history h
JOIN metric_dictionary d ON d.name = h.metric
WHERE d.dora = TRUE"""

SCORECARD_LATEST = f"""CREATE VIEW scorecard_latest AS
SELECT {KPI_COLUMNS},
       {_initial._node_columns("p", "perspective")},
       {_initial._node_columns("o", "objective")},
       {_initial._node_columns("s", "scorecard")},
       {_completeness("k")}
FROM kpi_scores k
JOIN scorecard_periods sp ON sp.scorecard = k.scorecard AND sp.period_start = k.period_start AND sp.periods_ago = 0
{_initial._node_join("p", "perspective", "k.perspective_id")}
{_initial._node_join("o", "objective", "k.objective_id")}
{_initial._node_join("s", "scorecard", None)}"""

# In creation order (a view after the views it reads).
VIEWS_SQL = {
    "kpi_history": KPI_HISTORY,
    "scorecard_periods": SCORECARD_PERIODS,
    "metric_periods": METRIC_PERIODS,
    "metric_latest": METRIC_LATEST,
    "service_health_history": SERVICE_HEALTH_HISTORY,
    "service_health": SERVICE_HEALTH,
    "kpi_status_history": KPI_STATUS_HISTORY,
    "dora_band_history": DORA_BAND_HISTORY,
    "scorecard_latest": SCORECARD_LATEST,
}
OLD_VIEWS_SQL = {"kpi_history": _initial.KPI_HISTORY, **_bi.VIEWS_SQL}

# --- comments (PostgreSQL): 0003's, with the new columns and the new meaning of periods_ago -----------------

_COMPLETE = {
    "complete": "true when the period had ended and every source's loaded history covered all of it; false: "
                "running or partial (see data_from, data_to)",
    "data_from": "first instant of the period the loaded data covers, UTC (period_start when covered from its "
                 "first day)",
    "data_to": "end of what the loaded data covers in the period, UTC (period_end once covered to it; the run's "
               "as-of instant while it runs)",
}  # fmt: skip
_PERIODS_AGO = ("0 for the period shown as latest (the latest complete, else the latest ended), 1 for the one "
                "before, ...; negative for a period after it")  # fmt: skip


def _now_meaning(column: str, text: str) -> str:
    if column == "periods_ago":
        return _PERIODS_AGO
    if column.endswith("_coverage"):  # scoring weighs coverage through the tree since this version
        return text.replace("weight with data in the period", "KPI weight with data in the period, weighted "
                                                               "through the tree")
    return text


def _comments() -> dict[str, tuple[str, dict[str, str]]]:
    comments = {}
    for view, (about, columns) in _bi.COMMENTS.items():
        columns = {name: _now_meaning(name, text) for name, text in columns.items()}
        about = about.replace("latest ended", "latest complete")
        comments[view] = (about, {**columns, **_COMPLETE})
    return comments


COMMENTS = _comments()


def _replace_view(view: str, create_sql: str) -> None:
    """PostgreSQL replaces the view in place (the new columns come last), keeping its grants and the views users
    built on it; SQLite has no CREATE OR REPLACE VIEW, and no view there depends on another by more than name."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(create_sql.replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1))
    else:
        op.execute(f"DROP VIEW {view}")
        op.execute(create_sql)


def _comment_views(comments: dict[str, tuple[str, dict[str, str]]]) -> None:
    for view, (about, columns) in comments.items():
        op.execute(f"COMMENT ON VIEW {view} IS {_bi._literal(about)}")
        for column, text in columns.items():
            op.execute(f"COMMENT ON COLUMN {view}.{column} IS {_bi._literal(text)}")


def _add_columns() -> None:
    for table in DERIVED:
        op.add_column(table, sa.Column("complete", sa.Boolean(), comment=COLUMN_COMMENTS["complete"]))
        for name in ("data_from", "data_to"):
            op.add_column(table, sa.Column(name, sa.DateTime(timezone=True), comment=COLUMN_COMMENTS[name]))
    op.add_column("sync_state", sa.Column("covered", sa.Text(), comment=COVERED_COMMENT))


def _fill_derived_rows() -> None:
    for table in DERIVED:
        op.execute(f"UPDATE {table} SET complete = (period_end <= computed_at), data_from = period_start, "
                   f"data_to = CASE WHEN period_end <= computed_at THEN period_end ELSE computed_at END")


def _day(value: object) -> pd.Timestamp:
    return pd.Timestamp(value).tz_localize("UTC") if pd.Timestamp(value).tzinfo is None else pd.Timestamp(value)


def _covered(start: object, end: object) -> str | None:
    first, last = _day(start).floor("D"), _day(end)
    return json.dumps([[first.isoformat(), last.isoformat()]]) if last > first else None


def _fill_covered() -> None:
    conn = op.get_bind()
    stored = conn.execute(sa.text("SELECT source, kind, cursor FROM sync_state")).all()
    for source, kind, cursor in stored:
        if kind not in FACT_KINDS or not cursor:
            continue
        first = conn.execute(sa.text(f"SELECT min(updated_at) FROM {kind} WHERE source = :source"),
                             {"source": source}).scalar()  # fmt: skip
        try:
            covered = _covered(first, cursor) if first is not None else None
        except ValueError:  # a cursor that is not a time: nothing known
            covered = None
        conn.execute(sa.text("UPDATE sync_state SET covered = :covered WHERE source = :source AND kind = :kind"),
                     {"covered": covered, "source": source, "kind": kind})  # fmt: skip
    _fill_files_covered(conn, {(source, kind) for source, kind, _ in stored})


def _fill_files_covered(conn: sa.Connection, stored: set[tuple[str, str]]) -> None:
    """The `files` source keeps no cursor: its history runs from its first record to the last computation."""
    computed = conn.execute(sa.text("SELECT max(computed_at) FROM metric_values")).scalar()
    if computed is None:
        return
    vendors = sorted({source for source, _ in stored})
    for kind in FACT_KINDS:
        if ("files", kind) in stored:
            continue
        not_vendor = " AND source NOT IN :vendors" if vendors else ""
        statement = sa.text(f"SELECT min(updated_at) FROM {kind} WHERE updated_at IS NOT NULL{not_vendor}")
        if vendors:
            statement = statement.bindparams(sa.bindparam("vendors", expanding=True))
        first = conn.execute(statement, {"vendors": vendors} if vendors else {}).scalar()
        covered = _covered(first, _day(computed).floor("D")) if first is not None else None
        if covered is not None:
            conn.execute(sa.text("INSERT INTO sync_state (source, kind, cursor, updated_at, covered) "
                                 "VALUES ('files', :kind, NULL, :now, :covered)"),
                         {"kind": kind, "now": _day(computed).to_pydatetime(), "covered": covered})  # fmt: skip


def upgrade() -> None:
    _add_columns()
    _fill_derived_rows()
    _fill_covered()
    for view, sql in VIEWS_SQL.items():
        _replace_view(view, sql)
    if op.get_bind().dialect.name == "postgresql":
        _comment_views(COMMENTS)


def downgrade() -> None:
    # Views first (they read the columns; PostgreSQL cannot drop view columns in place), then the columns (SQLite
    # rebuilds each table, which no view may name meanwhile), then 0003's views again.
    for view in reversed(VIEWS_SQL):
        op.execute(f"DROP VIEW {view}")
    with op.batch_alter_table("sync_state") as batch:
        batch.drop_column("covered")
    for table in DERIVED:
        with op.batch_alter_table(table) as batch:
            for name in ("data_to", "data_from", "complete"):
                batch.drop_column(name)
    for sql in OLD_VIEWS_SQL.values():
        op.execute(sql)
    if op.get_bind().dialect.name == "postgresql":
        _comment_views(_bi.COMMENTS)
