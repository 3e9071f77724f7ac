"""Benchmark of a nightly run at platform scale: one new day into a warehouse holding two years (or six months) of
500 services.

For each history (`--days`, default 730 and 182) `scorecard generate --services N` writes the history and the day
after it as canonical CSV files; the history is backfilled once (`scorecard backfill`, fed by `sources.files`) into
a SQLite and/or a PostgreSQL warehouse, then the next day's records are appended to the files and `scorecard run`
reads that day, the nightly run, on a copy of the built warehouse (`--runs N` copies, one run each). Every command
is a child process reading one pinned clock (SCORECARD_NOW), so what `--keep DIR` keeps (files, the SQLite file, a
pg_dump of the PostgreSQL warehouse, the build's figures) serves later invocations: the build is skipped.

Per child it prints the wall time and the peak RSS (os.wait4). For a nightly run, where the time went, from the
Dagster event log of the run (each nightly run gets a fresh DAGSTER_HOME, as a scheduled run has one): start-up
(launch to the run's creation: imports, the pre-flight that reads every file, the definitions), run set-up (Dagster
planning the run), the fact steps (syncs), metric_values (derive), scorecard_scores (scoring), scorecard_report
(report), the asset checks, the other steps (alerts, metric dictionary, review files), Dagster between the steps, and
the finish (run end to exit: the summary). Writes happen inside the steps (the facts' upserts in the syncs, the
replaced periods in derive and scoring): the step timings do not show them apart. The build runs without a Dagster
home, as `scorecard backfill` does by default (a recorded run writes an event per asset and partition, minutes at
730 partitions): its split is the run's own seconds (from its summary) and the rest of the command.

PostgreSQL: `--postgres-url` (else $SCORECARD_TEST_POSTGRES_URL, else the local server) names the server; the
benchmark creates its own databases there (bench_nightly_*) and drops them when it ends.

    .venv/bin/python benchmarks/nightly.py [--services 500] [--days 730 182] [--database sqlite|postgresql|both]
        [--keep DIR] [--runs 1] [--seed 7] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.records import KINDS  # noqa: E402
from pipelines.partitions import DEFAULT_PARTITIONS_START, PARTITIONS_START_ENV  # noqa: E402
from pipelines.settings import files_section, write_config_copy  # noqa: E402
from warehouse.urls import parse_url  # noqa: E402

SCORECARD = Path(sys.executable).with_name("scorecard")
NIGHT = pd.Timestamp("2026-12-03", tz="UTC")  # the day the nightly run reads: a Thursday, a working day
CLOCK = "2026-12-04T02:00:00Z"  # every child's now: the nightly schedule's hour on the day after NIGHT
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NIGHTLY_SECONDS, NIGHTLY_MB = 30.0, 1024.0
BACKFILL_SECONDS, BACKFILL_MB = 120.0, 2048.0
WITHIN = 1.5  # two years against six months, and SQLite against PostgreSQL
# Dagster step keys -> the phase they are counted in; every other step is an asset check.
STEP_PHASES = {"facts": "syncs", "metric_values": "derive", "scorecard_scores": "scoring",
               "scorecard_report": "report", "kpi_alerts": "other steps", "metric_dictionary": "other steps",
               "review_log": "other steps"}  # fmt: skip
PHASES = ("start-up", "run set-up", "syncs", "derive", "scoring", "report", "checks", "other steps", "between steps",
          "finish")


@dataclass
class Child:
    """One `scorecard` command: wall seconds, peak RSS, seconds per phase and what it printed."""

    seconds: float
    peak_mb: float
    phases: dict[str, float]
    summary: str


@dataclass
class Dataset:
    folder: Path
    days: int
    history_records: int
    new_records: int

    @property
    def first_day(self) -> pd.Timestamp:
        return NIGHT - pd.Timedelta(days=self.days)


# ---------------------------------------------------------------------------------------------
# Children and their Dagster runs


def child_env(**settings: str) -> dict[str, str]:
    """The environment of a child: ours without any scorecard or Dagster setting, then `settings`."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("SCORECARD_", "DAGSTER_"))}
    return {**inherited, "SCORECARD_NOW": CLOCK, **settings}


def run_child(command: list[str], folder: Path, recorded: bool, **settings: str) -> Child:
    """Run `scorecard <command>`, `recorded` in a fresh Dagster home in `folder` (its phases read from the run's
    event log; else only the run's own seconds from its summary); exit on failure."""
    home = folder / "dagster-home"
    shutil.rmtree(home, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    if recorded:
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    env = child_env(**({"DAGSTER_HOME": str(home)} if recorded else {}), **settings)
    with open(folder / "stdout.txt", "w") as out, open(folder / "stderr.txt", "w") as err:
        launched, began = time.time(), time.perf_counter()
        process = subprocess.Popen([str(SCORECARD), *command], stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds, exited = time.perf_counter() - began, time.time()
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"scorecard {' '.join(command)} failed ({os.waitstatus_to_exitcode(status)}):\n"
                 + (folder / "stderr.txt").read_text(encoding="utf-8"))  # fmt: skip
    summary = (folder / "stdout.txt").read_text(encoding="utf-8")
    phases = run_phases(home, launched, exited) if recorded else summary_phases(summary, seconds)
    return Child(seconds, usage.ru_maxrss / 1024, phases, summary)


def summary_phases(summary: str, seconds: float) -> dict[str, float]:
    """The run's seconds as its summary gives them ("in one run, 239.5 s"), and the rest of the command's."""
    run = float(re.search(r" in one run, ([\d.]+) s", summary).group(1))
    return {"before and after the run": seconds - run, "the run": run}


def run_phases(home: Path, launched: float, exited: float) -> dict[str, float]:
    """Seconds per phase of the one run recorded in the Dagster home at `home` (event times are wall-clock)."""
    from dagster import DagsterEventType, DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        record = instance.get_run_records(limit=1)[0]
        events = [e for e in instance.all_logs(record.dagster_run.run_id) if e.dagster_event is not None]
    times = pd.DataFrame({"step": [e.step_key for e in events], "at": [e.timestamp for e in events],
                          "type": [e.dagster_event.event_type_value for e in events]})  # fmt: skip
    kinds = DagsterEventType
    created = record.create_timestamp.timestamp()
    run_start = times.loc[times["type"] == kinds.RUN_START.value, "at"].min()
    run_end = times.loc[times["type"].isin([kinds.RUN_SUCCESS.value, kinds.RUN_FAILURE.value]), "at"].max()
    step_events = [kinds.STEP_START.value, kinds.STEP_SUCCESS.value, kinds.STEP_FAILURE.value]
    steps = times[times["type"].isin(step_events)].groupby("step")["at"]
    per_step = (steps.max() - steps.min()).groupby(lambda step: STEP_PHASES.get(step, "checks")).sum()
    phases = {"start-up": created - launched, "run set-up": run_start - created, **per_step.to_dict(),
              "between steps": run_end - run_start - per_step.sum(), "finish": exited - run_end}  # fmt: skip
    return {phase: float(phases.get(phase, 0.0)) for phase in PHASES}


# ---------------------------------------------------------------------------------------------
# The files: history, and history plus the night's records


def prepare(folder: Path, services: int, days: int, seed: int) -> Dataset:
    """Generated files split into history/ and nightly/ (history plus the night's records), with a config for
    each; kept in `folder` and reused when there."""
    stamp = folder / "dataset.json"
    if stamp.exists():
        return Dataset(folder, **json.loads(stamp.read_text(encoding="utf-8")))
    generated = folder / "generated"
    began = time.perf_counter()
    subprocess.run([str(SCORECARD), "generate", "--out", str(generated), "--days", str(days + 1), "--seed", str(seed),
                    "--services", str(services), "--config", str(ROOT / "scorecard.yaml"),
                    "--write-config", str(generated / "scorecard.yaml")],
                   env=child_env(), check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    print(f"generated {services} services × {days + 1} days in {time.perf_counter() - began:.1f} s")
    history, new = 0, 0
    for kind in KINDS:
        kept, added = split_night(generated / f"{kind}.csv", folder / "history", folder / "nightly")
        history, new = history + kept, new + added
    for name in ("history", "nightly"):
        files = {kind: folder / name / f"{kind}.csv" for kind in KINDS} | {"values": generated / "values.csv"}
        write_config_copy(generated / "scorecard.yaml", folder / f"{name}.yaml",
                          {"files": files_section(files, folder / f"{name}.yaml")},
                          written_by="benchmarks/nightly.py")  # fmt: skip
    dataset = Dataset(folder, days, history, new)
    stamp.write_text(json.dumps({"days": days, "history_records": history, "new_records": new}), encoding="utf-8")
    return dataset


def split_night(path: Path, history: Path, nightly: Path) -> tuple[int, int]:
    """Rows updated before NIGHT to history/, and those rows followed by the night's to nightly/ (appended, as an
    export that grew by a day): (history rows, the night's rows)."""
    rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    updated = pd.to_datetime(rows["updated_at"], utc=True, format="ISO8601", errors="coerce")
    night = (updated >= NIGHT).to_numpy()
    history.mkdir(parents=True, exist_ok=True)
    nightly.mkdir(parents=True, exist_ok=True)
    rows[~night].to_csv(history / path.name, index=False)
    shutil.copyfile(history / path.name, nightly / path.name)
    rows[night].to_csv(nightly / path.name, mode="a", header=False, index=False)
    return int((~night).sum()), int(night.sum())


# ---------------------------------------------------------------------------------------------
# Warehouses: built once, copied for every nightly run


class SqliteWarehouse:
    name = "sqlite"

    def __init__(self, folder: Path):
        self.folder = folder / "sqlite"
        self.built, self.building, self.copy = (self.folder / name for name in ("warehouse.db", "building.db",
                                                                                  "run/warehouse.db"))  # fmt: skip

    def restored(self) -> bool:
        return self.built.exists()

    def build_url(self) -> str:
        _remove_sqlite(self.building)
        self.folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.building}"

    def keep_build(self) -> None:
        self.building.replace(self.built)

    def copy_url(self) -> str:
        _remove_sqlite(self.copy)
        self.copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.built, self.copy)
        return f"sqlite:///{self.copy}"

    def close(self) -> None:
        _remove_sqlite(self.copy)


def _remove_sqlite(path: Path) -> None:
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        file.unlink(missing_ok=True)


class PostgresWarehouse:
    """Databases bench_nightly_<key> (the build) and bench_nightly_<key>_run (a copy per nightly run, from the build
    as template); with `keep`, the build is kept as a pg_dump in the folder and restored next time."""

    name = "postgresql"

    def __init__(self, folder: Path, keep: bool, server_url: str, key: str):
        self.url = parse_url(server_url)
        self.admin = sa.create_engine(self.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        self.built, self.copy = f"bench_nightly_{key}", f"bench_nightly_{key}_run"
        self.dump = folder / "postgresql" / "warehouse.dump" if keep else None

    def restored(self) -> bool:
        self._drop(self.copy)
        self._drop(self.built)
        if self.dump is None or not self.dump.exists():
            return False
        self._sql(f'CREATE DATABASE "{self.built}"')
        subprocess.run(["pg_restore", "--no-owner", "-d", self._libpq(self.built), str(self.dump)], check=True)
        return True

    def build_url(self) -> str:
        self._drop(self.built)
        self._sql(f'CREATE DATABASE "{self.built}"')
        return self._url(self.built)

    def keep_build(self) -> None:
        if self.dump is not None:
            self.dump.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["pg_dump", "-Fc", "-f", str(self.dump), self._libpq(self.built)], check=True)

    def copy_url(self) -> str:
        self._drop(self.copy)
        self._sql(f'CREATE DATABASE "{self.copy}" TEMPLATE "{self.built}"')
        return self._url(self.copy)

    def close(self) -> None:
        self._drop(self.copy)
        self._drop(self.built)
        self.admin.dispose()

    def _sql(self, statement: str) -> None:
        with self.admin.connect() as connection:
            connection.exec_driver_sql(statement)

    def _drop(self, database: str) -> None:
        self._sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    def _url(self, database: str) -> str:
        return self.url.set(database=database).render_as_string(hide_password=False)

    def _libpq(self, database: str) -> str:
        return self.url.set(drivername="postgresql", database=database).render_as_string(hide_password=False)


# ---------------------------------------------------------------------------------------------
# The benchmark


def build(warehouse, dataset: Dataset) -> Child:
    """The backfill of the history into the warehouse, or the figures of the kept build."""
    figures = dataset.folder / warehouse.name / "build.json"
    if warehouse.restored() and figures.exists():
        return Child(**json.loads(figures.read_text(encoding="utf-8")))
    last = (NIGHT - pd.Timedelta(days=1)).date()
    command = ["backfill", "--config", str(dataset.folder / "history.yaml"), "--days", str(dataset.days),
               "--to", str(last)]  # fmt: skip
    child = run_child(command, dataset.folder / warehouse.name / "build", False,
                      SCORECARD_WAREHOUSE_URL=warehouse.build_url(), **partitions_setting(dataset))  # fmt: skip
    warehouse.keep_build()
    figures.write_text(json.dumps(asdict(child)), encoding="utf-8")
    return child


def nightly(warehouse, dataset: Dataset) -> Child:
    """`scorecard run` of NIGHT on a fresh copy of the built warehouse, the files holding the night's records."""
    day = str(NIGHT.date())
    command = ["run", "--config", str(dataset.folder / "nightly.yaml"), "--from", day, "--to", day]
    return run_child(command, dataset.folder / warehouse.name / "nightly", True,
                     SCORECARD_WAREHOUSE_URL=warehouse.copy_url(), **partitions_setting(dataset))  # fmt: skip


def partitions_setting(dataset: Dataset) -> dict[str, str]:
    """SCORECARD_PARTITIONS_START when the history begins before the default first partition."""
    first = dataset.first_day.date()
    return {PARTITIONS_START_ENV: str(first)} if str(first) < DEFAULT_PARTITIONS_START else {}


def bench(warehouse, dataset: Dataset, runs: int) -> tuple[Child, list[Child]]:
    try:
        built = build(warehouse, dataset)
        return built, [nightly(warehouse, dataset) for _ in range(runs)]
    finally:
        warehouse.close()


# ---------------------------------------------------------------------------------------------
# Printing


def span(values: list[float], fmt: str = "{:,.1f}") -> str:
    low, high = min(values), max(values)
    return fmt.format(low) if fmt.format(low) == fmt.format(high) else f"{fmt.format(low)} – {fmt.format(high)}"


def verdict(holds: bool) -> str:
    return "holds" if holds else "does NOT hold"


def print_child(title: str, children: list[Child], seconds_target: float, mb_target: float) -> None:
    seconds, peaks = [c.seconds for c in children], [c.peak_mb for c in children]
    runs = f" ({len(children)} runs)" if len(children) > 1 else ""
    print(f"  {title}{runs}: {span(seconds)} s, peak RSS {span(peaks, '{:,.0f}')} MB — target under "
          f"{seconds_target:.0f} s and {mb_target / 1024:.0f} GB: "
          f"{verdict(max(seconds) < seconds_target and max(peaks) < mb_target)}")  # fmt: skip
    for phase in children[0].phases:
        print(f"      {phase:<24} {span([c.phases[phase] for c in children], '{:,.2f}'):>14} s")


def print_result(warehouse: str, dataset: Dataset, built: Child, runs: list[Child]) -> None:
    print(f"\n{warehouse}, {dataset.days} days before {NIGHT.date()} (history {dataset.history_records:,} records, "
          f"the night {dataset.new_records:,}):")  # fmt: skip
    print_child(f"build: scorecard backfill --days {dataset.days}", [built], BACKFILL_SECONDS, BACKFILL_MB)
    print_child(f"nightly: scorecard run {NIGHT.date()}", runs, NIGHTLY_SECONDS, NIGHTLY_MB)
    print("    its summary:\n" + "\n".join(f"      {line}" for line in runs[0].summary.splitlines()))


def print_ratios(results: dict[tuple[str, int], list[Child]]) -> None:
    """Best nightly wall times against each other: longest history against shortest, SQLite against PostgreSQL."""
    best = {key: min(c.seconds for c in runs) for key, runs in results.items()}
    databases, histories = sorted({d for d, _ in best}), sorted({h for _, h in best})
    lines = [f"  {database}: {histories[-1]} days / {histories[0]} days = "
             + ratio_text(best[database, histories[-1]] / best[database, histories[0]])
             for database in databases if len(histories) > 1]  # fmt: skip
    lines += [f"  {days} days: slower / faster database = "
              + ratio_text(max(best[d, days] for d in databases) / min(best[d, days] for d in databases))
              for days in histories if len(databases) > 1]  # fmt: skip
    if lines:
        print("\nnightly ratios (best runs):\n" + "\n".join(lines))


def ratio_text(ratio: float) -> str:
    return f"{ratio:.2f}× — target within {WITHIN}×: {verdict(ratio <= WITHIN)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--days", type=int, nargs="+", default=[730, 182], help="the histories (days before the night)")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--keep", type=Path, help="keep files, warehouses and figures here, and reuse them")
    parser.add_argument("--runs", type=int, default=1, help="nightly runs, each on a fresh copy")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--postgres-url", default=os.environ.get("SCORECARD_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    args = parser.parse_args()
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]

    with tempfile.TemporaryDirectory() as temporary:
        root = (args.keep or Path(temporary)).resolve()
        results = {}
        for days in args.days:
            key = f"{args.services}x{days}-seed{args.seed}"
            dataset = prepare(root / key, args.services, days, args.seed)
            for database in databases:
                warehouse = (SqliteWarehouse(dataset.folder) if database == "sqlite" else
                             PostgresWarehouse(dataset.folder, args.keep is not None, args.postgres_url,
                                               key.replace("-", "_")))  # fmt: skip
                built, runs = bench(warehouse, dataset, args.runs)
                print_result(database, dataset, built, runs)
                results[database, days] = runs
        print_ratios(results)


if __name__ == "__main__":
    main()
