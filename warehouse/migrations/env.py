"""Alembic environment for the warehouse.

`warehouse.migrate.upgrade` passes its open connection in `config.attributes["connection"]`
(inside a transaction that holds the migration lock). Run from the command line instead
(`alembic -c warehouse/migrations/alembic.ini ...`, with SCORECARD_WAREHOUSE_URL set) it makes
its own engine, e.g. to autogenerate the next migration against a database at the current head.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from warehouse.schema import metadata

config = context.config


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy-and-move
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = os.environ.get("SCORECARD_WAREHOUSE_URL") or config.get_main_option("sqlalchemy.url")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        _run(connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: run migrations against a database")
run_migrations()
