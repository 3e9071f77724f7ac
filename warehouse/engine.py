"""Engines for the two supported databases, configured for a warehouse that readers and writers share.

SQLite: WAL (readers never block the writer, and see the last committed state), a busy timeout
instead of immediate "database is locked" errors, foreign keys on, and transactions begun by us:
BEGIN for readers, BEGIN IMMEDIATE for writers (execution option `warehouse_write`), so a writer
takes the write lock before it reads and cannot fail half-way with SQLITE_BUSY.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.pool import StaticPool

from warehouse.migrate import WRITE_OPTION

BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S = 10
_SQLITE_PRAGMAS = (
    f"busy_timeout={BUSY_TIMEOUT_MS}",
    "foreign_keys=ON",
    "synchronous=NORMAL",  # durable at every checkpoint; the WAL-mode recommendation
    "cache_size=-65536",  # 64 MiB page cache for bulk upserts
)


def create_warehouse_engine(url: URL) -> sa.Engine:
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": CONNECT_TIMEOUT_S}
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def sqlite_in_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def _sqlite_engine(url: URL) -> sa.Engine:
    options: dict = {"connect_args": {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}}
    if sqlite_in_memory(url):
        options["poolclass"] = StaticPool  # one shared connection, or every checkout would get its own empty DB
    elif "uri" not in url.query:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, **options)
    sa.event.listen(engine, "connect", _sqlite_on_connect)
    sa.event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # the driver's own implicit BEGINs off; `_sqlite_on_begin` issues them
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    _use_wal(cursor)
    cursor.close()


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Switch to WAL (persistent: a no-op once the file is in WAL mode).

    The switch needs the file to itself, and SQLite answers "database is locked" at once, without
    its busy handler, when several connections open a new file together: retry up to the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_on_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")
