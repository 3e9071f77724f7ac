"""Shared fixtures: warehouses on SQLite (a temporary file) and on PostgreSQL.

PostgreSQL tests use the server at $SCORECARD_TEST_POSTGRES_URL, each in a fresh schema (put
first on the search_path through the connection's `options`) that is dropped afterwards. With the
variable unset, or the server unreachable, they are skipped, except under CI=true, where they fail:
CI must exercise both databases.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from demo_files import write_data

from pipelines.clock import NOW_ENV
from pipelines.resources import CONFIG_ENV, WAREHOUSE_URL_ENV
from warehouse import Warehouse
from warehouse.urls import display_url, parse_url

POSTGRES_URL_ENV = "SCORECARD_TEST_POSTGRES_URL"
DATABASES = {"sqlite": "sqlite_url", "postgresql": "postgres_url"}


def _postgres_unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true requires the PostgreSQL warehouse tests to run")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[sa.Engine]:
    """An autocommit engine on the test server, for creating and dropping per-test schemas."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        _postgres_unavailable(f"{POSTGRES_URL_ENV} is not set")
    engine = sa.create_engine(parse_url(url), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError as error:
        engine.dispose()
        first_line = str(error.orig).strip().splitlines()[0]
        _postgres_unavailable(f"PostgreSQL at {display_url(engine.url)} is unreachable: {first_line}")
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_url(postgres_admin: sa.Engine) -> Iterator[str]:
    """The test server's URL with a fresh, empty schema as the only schema on the search_path."""
    schema = f"wh_test_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = postgres_admin.url.update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in a directory that does not exist yet (the warehouse creates it)."""
    return f"sqlite:///{tmp_path / 'not-yet' / 'warehouse.db'}"


@pytest.fixture(params=list(DATABASES))
def warehouse_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(DATABASES[request.param])


@pytest.fixture
def warehouse(warehouse_url: str) -> Iterator[Warehouse]:
    """A new, empty warehouse at the newest schema version, on each database."""
    wh = Warehouse.connect(warehouse_url)
    yield wh
    wh.dispose()


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the machine's warehouse, config, Dagster home or fixed clock: a test sets what it needs."""
    for name in (WAREHOUSE_URL_ENV, CONFIG_ENV, "DAGSTER_HOME", NOW_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/demo_files.py's data set, written once for the session; tests that spoil files copy it first."""
    return write_data(tmp_path_factory.mktemp("data"))
