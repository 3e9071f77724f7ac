"""Set-based writes: bulk loading, the fact upsert and slice replacement, never row by row through SQLAlchemy.

Rows reach the database in chunks of CHUNK_ROWS through the driver's fastest path: PostgreSQL
`COPY ... FROM STDIN (FORMAT csv)` and SQLite's `executemany` of one prepared INSERT. Neither binds
more than one row's values at a time, so SQLite's variable limit and PostgreSQL's 65,535 parameters
never apply. Writes that must merge with stored rows load a temporary staging table that way and
then run one set-based statement each:
- facts: `INSERT ... SELECT ... ON CONFLICT (source, source_id) DO UPDATE ... WHERE <newer and
  different>`, counting inserted / updated / unchanged in bulk as well;
- derived tables: DELETE the slice's rows that differ, INSERT the rows that are not stored."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from warehouse.frames import as_tuples, to_db
from warehouse.schema import FACT_KEY

CHUNK_ROWS = 100_000  # rows converted and sent at a time: bounds memory, not statements


@dataclass(frozen=True)
class UpsertResult:
    inserted: int
    updated: int
    unchanged: int

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged


def _chunks(frame: pd.DataFrame) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), CHUNK_ROWS):
        yield frame.iloc[start : start + CHUNK_ROWS]


def _quoted(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def bulk_insert(conn: Connection, table: sa.Table, frame: pd.DataFrame) -> int:
    """Append `frame`'s rows (it has every column of `table` it sets) to `table`; returns the row count."""
    columns = [c for c in table.columns if c.name in frame.columns]
    names = ", ".join(_quoted(conn, c.name) for c in columns)
    target = _quoted(conn, table.name)
    if conn.dialect.name == "postgresql":
        _copy_in(conn, f"COPY {target} ({names}) FROM STDIN (FORMAT csv)", frame, columns)
    else:
        statement = f"INSERT INTO {target} ({names}) VALUES ({', '.join('?' for _ in columns)})"
        for chunk in _chunks(frame):
            conn.exec_driver_sql(statement, as_tuples(to_db(chunk, columns, "sqlite")))
    return len(frame)


def _copy_in(conn: Connection, statement: str, frame: pd.DataFrame, columns: list[sa.Column]) -> None:
    """COPY on the connection's own psycopg connection, so it is part of the open transaction.

    Text never holds "" (empty text is stored as NULL), so CSV's unquoted empty field means NULL.
    """
    driver_connection = conn.connection.driver_connection
    with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
        for chunk in _chunks(frame):
            buffer = io.StringIO()
            to_db(chunk, columns, "postgresql").to_csv(buffer, header=False, index=False)
            copy.write(buffer.getvalue())


# --- the fact upsert ----------------------------------------------------------------------


def _staging_table(table: sa.Table) -> sa.Table:
    """A temporary, constraint-free twin of `table` (dropped at commit on PostgreSQL)."""
    columns = [sa.Column(c.name, c.type) for c in table.columns]
    return sa.Table(
        f"_stage_{table.name}", sa.MetaData(), *columns, prefixes=["TEMPORARY"], postgresql_on_commit="DROP"
    )


def _should_update(incoming, stored, compared: list[str]) -> sa.ColumnElement[bool]:
    """Newest updated_at wins: an older (or undated) re-delivery of a dated record changes nothing,
    and neither does one identical to the stored row.

    `incoming` is the upsert's `excluded` pseudo-table or the staging table's columns.
    """
    newer = sa.or_(stored.c.updated_at.is_(None), incoming.updated_at >= stored.c.updated_at)
    different = sa.or_(*(incoming[name].is_distinct_from(stored.c[name]) for name in compared))
    return sa.and_(newer, different)


def _new_or_changed(table: sa.Table, stage: sa.Table, compared: list[str]) -> sa.Select:
    """The staging rows that are new or would change their stored row, in key order.

    Leaving the unchanged ones out of the INSERT matters on PostgreSQL: ON CONFLICT DO UPDATE
    locks (and so writes) every conflicting row, even one its WHERE then skips. Key order makes
    concurrent upserts of overlapping batches take row locks in one order (no deadlock).
    """
    stored = table.alias("stored")
    same_key = sa.and_(*(stage.c[k] == stored.c[k] for k in FACT_KEY))
    return (
        sa.select(*(stage.c[c.name] for c in table.columns))
        .select_from(stage.outerjoin(stored, same_key))
        .where(sa.or_(stored.c[FACT_KEY[0]].is_(None), _should_update(stage.c, stored, compared)))
        .order_by(*(stage.c[k] for k in FACT_KEY))
    )


def _upsert_statement(conn: Connection, table: sa.Table, stage: sa.Table, compared: list[str]):
    """INSERT ... SELECT ... ON CONFLICT (source, source_id) DO UPDATE ... WHERE <newer and different>.

    The WHERE repeats `_new_or_changed`'s test against the row as it is when the insert reaches it,
    so a concurrent writer's newer row is never overwritten.
    """
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    names = [c.name for c in table.columns]
    statement = insert(table).from_select(names, _new_or_changed(table, stage, compared))
    return statement.on_conflict_do_update(
        index_elements=list(FACT_KEY),
        set_={n: statement.excluded[n] for n in names if n not in FACT_KEY},
        where=_should_update(statement.excluded, table, compared),
    )


def upsert(conn: Connection, table: sa.Table, rows: pd.DataFrame, compared: list[str]) -> UpsertResult:
    """Upsert `rows` (unique keys; every column of `table`) into `table` inside the caller's transaction.

    `compared` names the columns whose difference makes a row "updated" rather than "unchanged".
    """
    stage = _staging_table(table)
    stage.create(conn)  # a failure rolls the transaction back, and the table with it (DDL is transactional)
    bulk_insert(conn, stage, rows)
    statement = _upsert_statement(conn, table, stage, compared)
    if conn.dialect.name == "postgresql":
        inserted, updated = _upsert_counting_postgresql(conn, statement)
    else:
        inserted, updated = _upsert_counting_sqlite(conn, statement, table)
        stage.drop(conn)
    return UpsertResult(inserted=inserted, updated=updated, unchanged=len(rows) - inserted - updated)


def _upsert_counting_postgresql(conn: Connection, statement) -> tuple[int, int]:
    """One statement: the upsert as a CTE returning (xmax = 0), true for a fresh insert, counted."""
    returned = statement.returning(sa.literal_column("xmax = 0", sa.Boolean).label("inserted")).cte("upserted")
    counts = sa.select(
        sa.func.count().filter(returned.c.inserted),
        sa.func.count().filter(sa.not_(returned.c.inserted)),
    )
    inserted, updated = conn.execute(counts).one()
    return int(inserted), int(updated)


def _upsert_counting_sqlite(conn: Connection, statement, table: sa.Table) -> tuple[int, int]:
    """Inserted = the table's growth; updated = the rest of the rows the upsert changed.

    Exact because the caller holds SQLite's write lock (BEGIN IMMEDIATE) throughout.
    """
    size = sa.select(sa.func.count()).select_from(table)
    before = conn.execute(size).scalar_one()
    changed = conn.execute(statement.execution_options(preserve_rowcount=True)).rowcount
    inserted = conn.execute(size).scalar_one() - before
    return inserted, changed - inserted


def insert_new(conn: Connection, table: sa.Table, rows: pd.DataFrame, identity: list[str]) -> int:
    """Insert the `rows` that `table` does not hold yet, matching on `identity` (NULL matches NULL).

    The caller's transaction keeps concurrent writers out (see Warehouse._writing). Returns rows inserted.
    """
    stage = _staging_table(table)
    stage.create(conn)
    bulk_insert(conn, stage, rows)
    names = [c for c in rows.columns]
    same = sa.and_(*(table.c[n].is_not_distinct_from(stage.c[n]) for n in identity))
    new_rows = sa.select(*(stage.c[n] for n in names)).where(~sa.exists().where(same))
    statement = sa.insert(table).from_select(names, new_rows).execution_options(preserve_rowcount=True)
    inserted = conn.execute(statement).rowcount
    if conn.dialect.name != "postgresql":
        stage.drop(conn)
    return inserted


# --- replacing a slice of a derived table ---------------------------------------------------


def _identical(a, b, key: list[str], compared: list[str]) -> sa.ColumnElement[bool]:
    """Same key (plain equality, so the databases can use indexes and hash joins) and same values (NULL = NULL)."""
    return sa.and_(*(a.c[k] == b.c[k] for k in key), *(a.c[n].is_not_distinct_from(b.c[n]) for n in compared))


def replace_slice(conn: Connection, table: sa.Table, rows: pd.DataFrame, slices: list[sa.ColumnElement[bool]],
                  written_at: str = "computed_at") -> None:  # fmt: skip
    """Make the rows of `table` matched by the `slices` (ORed) exactly `rows`, in the caller's transaction.

    Rows already stored with identical values are left as they are (their `written_at` column too), so a
    re-run writes nothing; every other row in the slices is deleted, and the new ones inserted.
    `rows` must lie inside the slices and hold every column of `table`.
    """
    key = [c.name for c in table.primary_key.columns]
    compared = [c.name for c in table.columns if c.name not in key and c.name != written_at]
    stage = _staging_table(table)
    stage.create(conn)
    bulk_insert(conn, stage, rows)
    _prepare_for_joins(conn, stage, key)
    for where in slices:
        conn.execute(sa.delete(table).where(where, ~sa.exists().where(_identical(stage, table, key, compared))))
    names = [c.name for c in table.columns]
    absent = ~sa.exists().where(*(table.c[k] == stage.c[k] for k in key))
    conn.execute(sa.insert(table).from_select(names, sa.select(*(stage.c[n] for n in names)).where(absent)))
    if conn.dialect.name != "postgresql":
        stage.drop(conn)


def _prepare_for_joins(conn: Connection, stage: sa.Table, key: list[str]) -> None:
    """SQLite: index the staging table's key (it probes it per stored row); PostgreSQL: give the planner
    row counts (a temporary table has no statistics until analysed)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ANALYZE {_quoted(conn, stage.name)}")
    else:
        columns = ", ".join(_quoted(conn, k) for k in key)
        index, table = _quoted(conn, f"ix{stage.name}"), _quoted(conn, stage.name)
        conn.exec_driver_sql(f"CREATE INDEX temp.{index} ON {table} ({columns})")
