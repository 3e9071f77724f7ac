"""`Warehouse`: the one object the pipeline, the CLI and the tests use to read and write the warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL

from warehouse import bulk, prepare
from warehouse.bulk import UpsertResult
from warehouse.engine import create_warehouse_engine, sqlite_in_memory
from warehouse.errors import WarehouseError
from warehouse.frames import from_db, utc_series
from warehouse.migrate import WRITE_OPTION, current_version, head_version, upgrade
from warehouse.schema import (
    COMPLETENESS,
    FACT_KEY,
    FACT_TABLES,
    TABLES,
    VIEW_KEYS,
    VIEWS,
    metric_dictionary,
    metric_values,
    rejected_records,
    sync_state,
)
from warehouse.schema import actions as actions_table
from warehouse.schema import alerts_sent as alerts_sent_table
from warehouse.schema import kpi_comments as kpi_comments_table
from warehouse.schema import kpi_scores as kpi_scores_table
from warehouse.schema import node_scores as node_scores_table
from warehouse.urls import display_url, is_secret_query_key, mask_text, parse_url

IN_LIST_CHUNK = 500  # period starts per `IN (...)`: far below either database's parameter limit


def _now() -> datetime:
    return datetime.now(UTC)


def _one_line(error: BaseException, url: URL) -> str:
    """The driver's first line of explanation, without any secret of the URL (even one echoed on its own)."""
    cause = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    text = mask_text(lines[0] if lines else type(cause).__name__)
    secrets = [url.password] if url.password else []
    for key, value in url.query.items():
        if is_secret_query_key(key):
            secrets.extend([value] if isinstance(value, str) else value)
    for secret in filter(None, secrets):
        text = text.replace(str(secret), "***")
    return text


class Warehouse:
    """A warehouse database (SQLite file or PostgreSQL), its schema kept at the newest migration.

    Writes are idempotent and each is one transaction; see warehouse/README.md.
    """

    def __init__(self, engine: sa.Engine, url: URL):
        self.engine = engine
        self._url = url

    @classmethod
    def connect(cls, url: str | URL, *, migrate: bool = True) -> Warehouse:
        """Open the warehouse at `url`, creating or migrating its schema to the newest version.

        Raises WarehouseError (one line, password masked) for a bad or unreachable URL.
        """
        parsed = parse_url(url)
        try:
            engine = create_warehouse_engine(parsed)
        except (sa.exc.SQLAlchemyError, OSError, ImportError) as error:
            raise WarehouseError(f"cannot open warehouse {display_url(parsed)}: {_one_line(error, parsed)}") from None
        try:
            if migrate:
                upgrade(engine)
            else:
                with engine.connect():
                    pass
        except WarehouseError:
            engine.dispose()
            raise
        except (sa.exc.SQLAlchemyError, OSError) as error:
            engine.dispose()
            raise WarehouseError(f"cannot open warehouse {display_url(parsed)}: {_one_line(error, parsed)}") from None
        return cls(engine, parsed)

    @classmethod
    def open_existing(cls, url: str | URL) -> Warehouse:
        """Open a warehouse for reading only: nothing is created, migrated or written.

        Raises WarehouseError when there is no warehouse at `url` yet (no SQLite file, no schema)
        or its schema is not this release's.
        """
        parsed = parse_url(url)
        if parsed.get_backend_name() == "sqlite" and not sqlite_in_memory(parsed) and "uri" not in parsed.query:
            path = Path(parsed.database).expanduser()
            if not path.is_file():
                raise WarehouseError(f"no warehouse at {display_url(parsed)} yet: run scorecard run or "
                                     "scorecard backfill first")  # fmt: skip
        warehouse = cls.connect(parsed, migrate=False)
        try:
            version, head = warehouse.schema_version(), head_version()
        except sa.exc.SQLAlchemyError as error:
            warehouse.dispose()
            raise WarehouseError(f"cannot read warehouse {display_url(parsed)}: {_one_line(error, parsed)}") from None
        if version != head:
            warehouse.dispose()
            state = "has no scorecard tables yet" if version is None else f"is at schema version {version}"
            raise WarehouseError(f"the warehouse at {display_url(parsed)} {state} (this release writes {head}): "
                                 "run scorecard run or scorecard backfill first")  # fmt: skip
        return warehouse

    def check_writable(self) -> None:
        """Raise WarehouseError, with the driver's reason, unless this connection may write the tables.

        Writes one sync_state row and rolls it back: a read-only file or a user without INSERT fails here,
        in the pre-flight, instead of half-way through a run.
        """
        probe = {"source": "~preflight", "kind": "~preflight", "cursor": "", "updated_at": _now()}
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{WRITE_OPTION: True})
                transaction = conn.begin()
                try:
                    conn.execute(sa.insert(sync_state).values(probe))
                finally:
                    transaction.rollback()
        except sa.exc.SQLAlchemyError as error:
            raise WarehouseError(f"cannot write to warehouse {display_url(self._url)}: "
                                 f"{_one_line(error, self._url)}") from None  # fmt: skip

    def dispose(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()

    def __repr__(self) -> str:
        return f"Warehouse({self.url_for_display!r})"

    @property
    def url_for_display(self) -> str:
        return display_url(self._url)

    @property
    def dialect(self) -> str:
        """"sqlite" or "postgresql"."""
        return self.engine.dialect.name

    def schema_version(self) -> str:
        with self.engine.connect() as conn:
            return current_version(conn)

    # --- transactions ---------------------------------------------------------------------

    @contextmanager
    def _writing(self, *locked: sa.Table) -> Iterator[sa.Connection]:
        """One write transaction. SQLite: BEGIN IMMEDIATE (the database's write lock).

        PostgreSQL: `locked` tables in SHARE ROW EXCLUSIVE mode, which lets readers read but makes
        concurrent rewrites of the same table take turns (a DELETE + INSERT racing another would
        otherwise hit the primary key).
        """
        with self.engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                if locked and self.dialect == "postgresql":
                    names = ", ".join(conn.dialect.identifier_preparer.quote(t.name) for t in locked)
                    conn.exec_driver_sql(f"LOCK TABLE {names} IN SHARE ROW EXCLUSIVE MODE")
                yield conn

    def _read(self, columns: list[tuple[str, sa.types.TypeEngine]], statement: sa.Select) -> pd.DataFrame:
        with self.engine.connect() as conn:
            rows = conn.execute(statement).all()
        return from_db(rows, columns)

    # --- facts ----------------------------------------------------------------------------

    def upsert_facts(self, kind: str, frame: pd.DataFrame) -> UpsertResult:
        """Upsert normalised records of `kind` (normalise_frame's `good` frame) by (source, source_id).

        The newest updated_at wins: a record older than the stored one (or undated, against a dated
        one) changes nothing; so does an identical one (counted `unchanged`). Extra columns go into
        `raw` as JSON. One transaction.
        """
        rows = prepare.fact_rows(kind, frame, _now())
        if rows.empty:
            return UpsertResult(0, 0, 0)
        compared = [c for c in rows.columns if c not in (*FACT_KEY, "loaded_at")]
        with self._writing() as conn:
            return bulk.upsert(conn, FACT_TABLES[kind], rows, compared)

    def _fact_columns(self, kind: str, with_raw: bool) -> list[sa.Column]:
        prepare.check_kind(kind)
        table = FACT_TABLES[kind]
        names = prepare.canonical_columns(kind) + (["raw"] if with_raw else [])
        return [table.c[name] for name in names]

    def read_facts(self, kind: str, *, with_raw: bool = False, service: str | None = None) -> pd.DataFrame:
        """All records of `kind` (of `service` only, if given), typed as normalise_frame's good output, ordered by
        (source, source_id)."""
        where = [FACT_TABLES[kind].c.service == service] if service is not None else None
        return self._select(self._fact_columns(kind, with_raw), list(FACT_KEY), where=where)

    def read_facts_updated(self, kind: str, start: Any, end: Any, *, with_raw: bool = False) -> pd.DataFrame:
        """Records of `kind` whose updated_at is in [start, end) (undated records never match)."""
        columns = self._fact_columns(kind, with_raw)
        table = FACT_TABLES[kind]
        window = [table.c.updated_at >= _timestamp(start), table.c.updated_at < _timestamp(end)]
        return self._select(columns, list(FACT_KEY), where=window)

    def _select(self, columns: list, order_by: list[str], where: list | None = None) -> pd.DataFrame:
        """`columns` of the rows matching `where`, sorted by `order_by` in pandas: the same order on
        both databases, whatever the server's collation."""
        # Values come back raw (no per-value SQLAlchemy type processing); `from_db` types whole columns.
        raw = [sa.type_coerce(column, sa.types.NullType()).label(column.name) for column in columns]
        frame = self._read([(column.name, column.type) for column in columns], sa.select(*raw).where(*(where or [])))
        return frame.sort_values(order_by, kind="stable", ignore_index=True)

    def write_rejected(self, kind: str, rejected: pd.DataFrame, source: str | None = None) -> int:
        """Store normalise_frame's `rejected` rows (REJECTED_COLUMNS) of `kind`; returns rows newly stored.

        `source` fills in rows whose own source is missing. A record already stored with the same
        kind, source, source_id, reason and payload is not stored again.
        """
        rows = prepare.rejected_rows(kind, rejected, source, _now())
        if rows.empty:
            return 0
        with self._writing(rejected_records) as conn:
            return bulk.insert_new(conn, rejected_records, rows, prepare.REJECTED_IDENTITY)

    # --- derived tables -------------------------------------------------------------------

    def replace_metric_values(self, frame: pd.DataFrame, grain: str, period_starts: Any) -> int:
        """Replace every metric_values row of `grain` in `period_starts` by `frame` (METRIC_COLUMNS).

        One transaction: readers see the old rows or the new, never none. Rows already stored with
        identical values keep their computed_at (a re-run writes nothing). Returns len(frame), the
        rows now stored for those periods.
        """
        starts = prepare.period_starts(period_starts)
        rows = prepare.derived_rows(metric_values, frame, _derived_columns(metric_values, frame), starts, _now(),
                                    {"grain": grain})  # fmt: skip
        with self._writing(metric_values) as conn:
            bulk.replace_slice(conn, metric_values, rows, _period_slices(metric_values, starts, grain=grain))
        return len(rows)

    def replace_scores(
        self, scorecard: str, kpi_scores: pd.DataFrame, node_scores: pd.DataFrame, period_starts: Any
    ) -> tuple[int, int]:
        """Replace the scorecard's kpi_scores and node_scores rows in `period_starts`, both in one transaction.

        As replace_metric_values; returns (kpi rows, node rows) now stored for those periods.
        """
        starts = prepare.period_starts(period_starts)
        computed_at = _now()
        frames = [(kpi_scores_table, kpi_scores), (node_scores_table, node_scores)]
        prepared = [
            (table, prepare.derived_rows(table, frame, _derived_columns(table, frame), starts, computed_at,
                                         {"scorecard": scorecard}))
            for table, frame in frames
        ]  # fmt: skip
        with self._writing(kpi_scores_table, node_scores_table) as conn:
            for table, rows in prepared:
                bulk.replace_slice(conn, table, rows, _period_slices(table, starts, scorecard=scorecard))
        return len(prepared[0][1]), len(prepared[1][1])

    def unfinished_periods(self, table: str, ended_by: Any, **equal: str) -> pd.DatetimeIndex:
        """Period starts of `table` (metric_values, kpi_scores, node_scores) whose rows were written while the
        period still ran (not complete, covered only up to before its end, or not saying) and that had ended by
        `ended_by`, among the rows with the `equal` column values (grain, scorecard). A period partial from its
        start is not one: only reading its first days can change it, and that touches it anyway."""
        derived = TABLES[table]
        where = [derived.c[name] == value for name, value in equal.items()]
        ran_out = sa.or_(derived.c.data_to.is_(None), derived.c.data_to < derived.c.period_end)
        statement = (sa.select(derived.c.period_start).distinct()
                     .where(*where, derived.c.complete.is_not(True), ran_out,
                            derived.c.period_end <= _timestamp(ended_by)))
        with self.engine.connect() as conn:
            starts = conn.execute(statement).scalars().all()
        return pd.DatetimeIndex(utc_series(pd.Series(starts, dtype=object))).sort_values()

    def write_metric_dictionary(self, frame: pd.DataFrame) -> int:
        """Replace the metric_dictionary by `frame` (scoring.dictionary.dictionary_frame()); returns rows written."""
        if "name" not in frame.columns:
            raise WarehouseError("metric_dictionary: missing column(s) name")
        rows = frame[[c.name for c in metric_dictionary.columns if c.name in frame.columns]]
        with self._writing(metric_dictionary) as conn:
            conn.execute(sa.delete(metric_dictionary))
            return bulk.bulk_insert(conn, metric_dictionary, rows)

    def replace_review(self, scorecard: str, comments: pd.DataFrame, actions: pd.DataFrame) -> tuple[int, int]:
        """Make the scorecard's kpi_comments and actions rows exactly `comments` and `actions` (as
        connectors.files.review reads them), both in one transaction: readers see the old rows or the new, never
        none. A row stored with identical values keeps its loaded_at (a re-run writes nothing); rows no longer in
        the frames are deleted. Returns (comment rows, action rows) now stored.
        """
        loaded_at = _now()
        prepared = [(table, prepare.review_rows(table, frame, scorecard, loaded_at))
                    for table, frame in ((kpi_comments_table, comments), (actions_table, actions))]  # fmt: skip
        with self._writing(kpi_comments_table, actions_table) as conn:
            for table, rows in prepared:
                bulk.replace_slice(conn, table, rows, [table.c.scorecard == scorecard], written_at="loaded_at")
        return len(prepared[0][1]), len(prepared[1][1])

    # --- escalation alerts ----------------------------------------------------------------

    def read_alerts(self, scorecard: str, period_start: Any | None = None) -> pd.DataFrame:
        """The scorecard's alerts_sent rows (of the review period starting `period_start`, if given), in key order."""
        table = alerts_sent_table
        where = [table.c.scorecard == scorecard]
        if period_start is not None:
            where.append(table.c.period_start == _timestamp(period_start))
        return self._select(list(table.columns), [c.name for c in table.primary_key.columns], where=where)

    def record_alerts(self, scorecard: str, alerts: pd.DataFrame) -> int:
        """Upsert `alerts` (every alerts_sent column but scorecard) by (scorecard, kpi_id, period_start, rule).

        A stored alert keeps its first fired_at; its other columns (the delivery above all) take the new values.
        One transaction; returns the rows written.
        """
        rows = _alert_rows(scorecard, alerts)
        if not rows:
            return 0
        key = [c.name for c in alerts_sent_table.primary_key.columns]
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        statement = insert(alerts_sent_table)
        kept = {*key, "fired_at"}
        statement = statement.on_conflict_do_update(
            index_elements=key,
            set_={c.name: statement.excluded[c.name] for c in alerts_sent_table.columns if c.name not in kept},
        )
        with self._writing(alerts_sent_table) as conn:
            conn.execute(statement, rows)
        return len(rows)

    def claim_alerts(self, scorecard: str, alerts: pd.DataFrame, claim: str) -> pd.DataFrame:
        """Claim `alerts` (every alerts_sent column but scorecard) for posting, so that runs at the same time post
        each at most once: a new one is inserted undelivered with `delivery_error` = `claim`; one already stored
        is claimed only while it is still undelivered with the delivery_error this run read (compare and set).
        Returns the rows of `alerts` this run won. A run that dies after claiming leaves the claim as the
        delivery_error, so the next run posts the alert again: never lost."""
        rows = _alert_rows(scorecard, alerts.assign(delivered_at=pd.NaT, delivery_error=claim))
        table, won = alerts_sent_table, []
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        with self._writing(alerts_sent_table) as conn:
            for position, (row, seen) in enumerate(zip(rows, alerts["delivery_error"], strict=True)):
                key = [table.c[name] == row[name] for name in ("scorecard", "kpi_id", "period_start", "rule")]
                if pd.isna(seen):  # not stored when this run read the table: the first to insert it wins
                    statement = insert(table).values(row).on_conflict_do_nothing()
                else:
                    statement = (sa.update(table).where(*key, table.c.delivered_at.is_(None),
                                                        table.c.delivery_error == seen)
                                 .values(delivery_error=claim))  # fmt: skip
                # RETURNING, not rowcount: psycopg does not count a row ON CONFLICT DO NOTHING inserted
                if conn.execute(statement.returning(table.c.kpi_id)).first() is not None:
                    won.append(position)
        return alerts.iloc[won]

    # --- sync state -----------------------------------------------------------------------

    def get_cursor(self, source: str, kind: str) -> str | None:
        """The cursor last stored for (source, kind), None if there is none."""
        statement = sa.select(sync_state.c.cursor).where(sync_state.c.source == source, sync_state.c.kind == kind)
        with self.engine.connect() as conn:
            return conn.execute(statement).scalar_one_or_none()

    def get_covered(self, source: str, kind: str) -> str | None:
        """sync_state.covered of (source, kind): the windows read so far, as stored (None if there are none)."""
        statement = sa.select(sync_state.c.covered).where(sync_state.c.source == source, sync_state.c.kind == kind)
        with self.engine.connect() as conn:
            return conn.execute(statement).scalar_one_or_none()

    def set_cursor(self, source: str, kind: str, cursor: str | None, covered: str | None = None) -> None:
        """Store (source, kind)'s cursor and, when given, the windows it has read (`covered`, kept otherwise)."""
        values = {"source": source, "kind": kind, "cursor": cursor, "updated_at": _now()}
        changed = {"cursor", "updated_at"}
        if covered is not None:
            values["covered"] = covered
            changed.add("covered")
        with self._writing() as conn:
            insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
            statement = insert(sync_state).values(values)
            conn.execute(statement.on_conflict_do_update(
                index_elements=["source", "kind"], set_={name: statement.excluded[name] for name in sorted(changed)},
            ))  # fmt: skip

    # --- any table ------------------------------------------------------------------------

    def read_table(self, name: str) -> pd.DataFrame:
        """Every row of a warehouse table or view, typed (timestamps UTC), in key order."""
        if name in TABLES:
            table = TABLES[name]
            return self._select(list(table.columns), [c.name for c in table.primary_key.columns])
        if name in VIEWS:
            view = VIEWS[name]
            return self._select(list(view.columns), VIEW_KEYS[name])
        known = ", ".join(sorted([*TABLES, *VIEWS]))
        raise WarehouseError(f"no warehouse table or view '{name}' (known: {known})")


def _period_slices(table: sa.Table, starts: list[datetime], **equal: str) -> list[sa.ColumnElement[bool]]:
    """WHERE clauses for the rows of `table` in `starts` with the `equal` column values, a few hundred periods each."""
    fixed = [table.c[name] == value for name, value in equal.items()]
    chunks = [starts[i : i + IN_LIST_CHUNK] for i in range(0, len(starts), IN_LIST_CHUNK)]
    return [sa.and_(*fixed, table.c.period_start.in_(chunk)) for chunk in chunks]


def _alert_rows(scorecard: str, alerts: pd.DataFrame) -> list[dict[str, Any]]:
    """alerts_sent rows as parameter dicts (None for missing values), checked before anything is written."""
    table = alerts_sent_table
    columns = [c.name for c in table.columns if c.name != "scorecard"]
    missing = [name for name in columns if name not in alerts.columns]
    if missing:
        raise WarehouseError(f"alerts_sent: missing column(s) {', '.join(missing)}")
    frame = alerts[columns].reset_index(drop=True).astype(object)
    for column in table.columns:
        if column.type.python_type is datetime and column.name in frame:
            stamps = utc_series(alerts[column.name].reset_index(drop=True))
            frame[column.name] = pd.Series(stamps.dt.to_pydatetime(), dtype=object).where(stamps.notna(), None)
    frame = frame.where(frame.notna(), None)
    empty = [c.name for c in table.columns if not c.nullable and c.name in frame and frame[c.name].isna().any()]
    if empty:
        raise WarehouseError(f"alerts_sent: missing values in required column(s) {', '.join(empty)}")
    key = [c.name for c in table.primary_key.columns if c.name != "scorecard"]
    if frame.duplicated(key).any():
        raise WarehouseError(f"alerts_sent: {int(frame.duplicated(key).sum())} rows repeat a key (kpi_id, "
                             "period_start, rule)")  # fmt: skip
    frame.insert(0, "scorecard", scorecard)
    return frame.to_dict("records")


def _derived_columns(table: sa.Table, frame: pd.DataFrame) -> list[str]:
    """The columns a derived frame must bring: every one but computed_at; what its period covers
    (schema.COMPLETENESS) when it says (a frame that does not leaves them empty: unknown)."""
    return [c.name for c in table.columns
            if c.name != "computed_at" and (c.name not in COMPLETENESS or c.name in frame.columns)]  # fmt: skip


def _timestamp(value: Any) -> datetime:
    try:
        stamp = utc_series(pd.Series([value], dtype=object)).iloc[0]
    except (TypeError, ValueError):
        stamp = pd.NaT
    if pd.isna(stamp):
        raise WarehouseError(f"not a timestamp: {value!r}")
    return stamp.to_pydatetime()
