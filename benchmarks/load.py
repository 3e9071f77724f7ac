"""Benchmark of `Warehouse.upsert_facts`: 1M deployments into SQLite and PostgreSQL, then again with 10% changed.

Generates (seeded, vectorised) N deployments typed as `connectors.records.normalise_frame` types
them, upserts them into an empty warehouse, then upserts the same N again with every tenth row
changed (newer updated_at, new status). Prints seconds, rows per second and the final row count
per database; the target is under 30 s per upsert.

    .venv/bin/python benchmarks/load.py [--rows N] [--postgres-url URL] [--sqlite-path PATH] [--no-postgres]

PostgreSQL: --postgres-url, else $SCORECARD_TEST_POSTGRES_URL (skipped when neither is given). The
run uses a fresh schema on that server and drops it afterwards. SQLite: a temporary file unless
--sqlite-path is given.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from warehouse import UpsertResult, Warehouse  # noqa: E402
from warehouse.urls import parse_url  # noqa: E402

TARGET_SECONDS = 30.0
START = pd.Timestamp("2024-01-01", tz="UTC")
END = pd.Timestamp("2026-01-01", tz="UTC")


def _stamps(ns: np.ndarray) -> pd.Series:
    return pd.Series(ns.astype("datetime64[ns]")).dt.tz_localize("UTC")


def generate(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    services = np.array([f"svc-{i:03d}" for i in range(500)], dtype=object)
    statuses = np.array(["success", "failure", "error", "inactive"], dtype=object)
    deployed = rng.integers(START.value, END.value, size=n)
    return pd.DataFrame(
        {
            "source": "github",
            "source_id": ("D" + pd.Series(np.arange(n)).astype(str)).astype(object),
            "service": services[rng.integers(0, len(services), size=n)],
            "environment": np.array(["production", "staging"], dtype=object)[rng.integers(0, 2, size=n)],
            "sha": pd.Series(rng.integers(0, 2**62, size=n)).map("{:016x}".format).astype(object),
            "deployed_at": _stamps(deployed),
            "status": statuses[rng.choice(len(statuses), size=n, p=[0.85, 0.07, 0.03, 0.05])],
            "change_id": None,
            "updated_at": _stamps(deployed + 60_000_000_000),
        }
    )


def with_tenth_changed(frame: pd.DataFrame) -> pd.DataFrame:
    changed = frame.copy()
    tenth = np.arange(len(frame)) % 10 == 0
    changed.loc[tenth, "updated_at"] = changed.loc[tenth, "updated_at"] + pd.Timedelta(hours=1)
    changed.loc[tenth, "status"] = "inactive"
    return changed


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """The server's URL with a fresh schema on the search_path; the schema is dropped afterwards."""
    admin = sa.create_engine(parse_url(url), isolation_level="AUTOCOMMIT")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield admin.url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def timed_upsert(wh: Warehouse, frame: pd.DataFrame) -> tuple[float, UpsertResult]:
    started = time.perf_counter()
    result = wh.upsert_facts("deployments", frame)
    return time.perf_counter() - started, result


def run(name: str, url: str, first: pd.DataFrame, second: pd.DataFrame) -> bool:
    with Warehouse.connect(url) as wh:
        rows = []
        for label, frame in (("initial load", first), ("10% changed", second)):
            seconds, result = timed_upsert(wh, frame)
            rows.append((label, seconds, result))
        with wh.engine.connect() as conn:
            final_rows = conn.execute(sa.text("SELECT count(*) FROM deployments")).scalar_one()
    ok = True
    for label, seconds, result in rows:
        verdict = "ok" if seconds < TARGET_SECONDS else f"SLOW (target {TARGET_SECONDS:.0f} s)"
        ok &= seconds < TARGET_SECONDS
        counts = f"inserted {result.inserted:>9,} updated {result.updated:>9,} unchanged {result.unchanged:>9,}"
        print(f"{name:<10} {label:<13} {seconds:7.2f} s {len(first) / seconds:>11,.0f} rows/s   {counts}  {verdict}")
    print(f"{name:<10} final row count {final_rows:,}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--postgres-url", default=os.environ.get("SCORECARD_TEST_POSTGRES_URL"))
    parser.add_argument("--sqlite-path", type=Path, help="SQLite file (default: a temporary one)")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    first = generate(args.rows, args.seed)
    second = with_tenth_changed(first)
    print(f"{args.rows:,} deployments per upsert")
    ok = True
    with tempfile.TemporaryDirectory() as scratch:
        sqlite_path = args.sqlite_path or Path(scratch) / "load.db"
        ok &= run("sqlite", f"sqlite:///{sqlite_path}", first, second)
    if args.postgres_url and not args.no_postgres:
        with postgres_schema(args.postgres_url) as url:
            ok &= run("postgresql", url, first, second)
    else:
        print("postgresql skipped (no --postgres-url and no SCORECARD_TEST_POSTGRES_URL)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
