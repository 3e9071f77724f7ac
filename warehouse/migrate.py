"""Schema versions: bring a database to the newest migration, programmatically (no alembic.ini needed).

Migrations live in `warehouse/migrations/versions` (see the README there). `upgrade` is cheap
when the database is current (one SELECT) and safe when several processes start at once: the
upgrade runs under a lock (PostgreSQL advisory lock, SQLite BEGIN IMMEDIATE) and alembic reads the
version again inside it, so the second process finds nothing left to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

from warehouse.errors import WarehouseError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
WRITE_OPTION = "warehouse_write"  # execution option: on SQLite, begin with BEGIN IMMEDIATE
_ADVISORY_LOCK_KEY = 0x5C0_12EC_A2D  # arbitrary, fixed: "the scorecard warehouse migration"


def alembic_config(extra_version_locations: Iterable[str | Path] = ()) -> Config:
    """An in-memory alembic Config for the package's migrations (plus any extra version dirs)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    locations = [MIGRATIONS_DIR / "versions", *map(Path, extra_version_locations)]
    config.set_main_option("version_locations", os.pathsep.join(str(p) for p in locations))
    return config


def current_version(conn: sa.Connection) -> str | None:
    """The database's alembic revision, None for an empty database."""
    return MigrationContext.configure(conn).get_current_revision()


def head_version(extra_version_locations: Iterable[str | Path] = ()) -> str:
    """The newest revision this release knows."""
    return ScriptDirectory.from_config(alembic_config(extra_version_locations)).get_current_head()


def upgrade(engine: sa.Engine, extra_version_locations: Iterable[str | Path] = ()) -> str:
    """Migrate the database to the newest known revision; returns it.

    Raises WarehouseError when the database is at a revision this code does not know (it was
    migrated by a newer release).
    """
    config = alembic_config(extra_version_locations)
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    with engine.connect() as conn:
        current = current_version(conn)
    if current == head:
        return head
    _check_known(script, current, head)
    with _migration_lock(engine) as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return head


def _check_known(script: ScriptDirectory, current: str | None, head: str) -> None:
    if current is None:
        return
    try:
        script.get_revision(current)
    except CommandError:
        raise WarehouseError(
            f"the warehouse schema is at version {current}, newer than this release knows (newest: {head});"
            " upgrade the it-scorecard package"
        ) from None


@contextmanager
def _migration_lock(engine: sa.Engine) -> Iterator[sa.Connection]:
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADVISORY_LOCK_KEY)))
            yield conn
