"""Ctrl-C (SIGINT) and SIGTERM stop `scorecard backfill` cleanly at any moment: exit 130 / 143, one line saying
what was kept, the Dagster run recorded CANCELED, and running the same command again gives the rows of a run that
was never interrupted.

The subprocess tests run the installed `scorecard` script over tests/demo_files.py's data set with a fixed clock
and a Dagster home in tmp_path, and signal it at points they observe from outside (no sleeps to guess them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import hostile
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus
from dagster._core.instance.ref import InstanceRef
from dagster._utils.interrupts import capture_interrupts
from demo_files import FIRST_DAY, LAST_DAY, write_config
from typer.testing import CliRunner

from connectors.simulator.history import build_history, service_mapping
from connectors.simulator.server import make_app, source_sections
from pipelines.cli import app
from pipelines.clock import NOW_ENV
from pipelines.interrupts import Interrupted, raise_if_received, stop_on_signals
from pipelines.resources import CONFIG_ENV, WAREHOUSE_URL_ENV

NOW = "2024-03-22T00:00:00Z"
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
# Columns that say when a row was written (the wall clock), not what it holds.
WRITE_TIMES = {"loaded_at", "computed_at", "rejected_at", "fired_at", "delivered_at"}
LINUX = Path("/proc/self/status").exists()
HELD = 30  # seconds a stopped run may take to end, far below the vendor request's read timeout (DEFAULT_TIMEOUT)


def again(config_path: Path) -> str:
    return f"re-running `scorecard backfill --from {FIRST_DAY} --to {LAST_DAY} --config {config_path}` is safe"


def open_home(home: Path) -> DagsterInstance:
    """The Dagster instance of `home`, created before the command starts so that only one process creates it."""
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def start(home: Path, *args: str, **env: str) -> subprocess.Popen:
    """The installed `scorecard` command with `args`, its Dagster home `home`, the clock at NOW unless `env` says."""
    outer = {key: value for key, value in os.environ.items() if key not in (WAREHOUSE_URL_ENV, CONFIG_ENV)}
    return subprocess.Popen([str(Path(sys.executable).with_name("scorecard")), *args],
                            env={**outer, NOW_ENV: NOW, "DAGSTER_HOME": str(home), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def start_backfill(config_path: Path, home: Path) -> subprocess.Popen:
    return start(home, "backfill", "--from", FIRST_DAY, "--to", LAST_DAY, "--config", str(config_path))


def wait_for(condition: Callable[[], bool], process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the command ended first: {process.communicate()}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def takes_sigterm(pid: int) -> bool:
    """The process has a handler for SIGTERM (by default it has none): the console script has begun."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


def a_step_succeeded(instance: DagsterInstance) -> bool:
    runs = instance.get_runs()
    return bool(runs) and bool(instance.all_logs(runs[0].run_id, of_type=DagsterEventType.STEP_SUCCESS))


def warehouse_rows(config_path: Path) -> dict[str, pd.DataFrame]:
    """Every table of the warehouse, sorted, without the columns that record when a row was written."""
    engine = sa.create_engine(f"sqlite:///{config_path.parent / 'warehouse.db'}")
    try:
        with engine.connect() as conn:
            names = [name for name in sa.inspect(conn).get_table_names() if name != "alembic_version"]
            frames = {name: pd.read_sql_table(name, conn) for name in names}
    finally:
        engine.dispose()
    tables = {}
    for name, frame in frames.items():
        frame = frame.drop(columns=[c for c in frame.columns if c in WRITE_TIMES or (name, c) ==
                                    ("sync_state", "updated_at")])  # fmt: skip
        tables[name] = frame.sort_values(list(frame.columns), ignore_index=True) if len(frame.columns) else frame
    return tables


def assert_same_rows(found: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    assert sorted(found) == sorted(expected)
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(found[name], frame, obj=name)


@pytest.fixture(scope="module")
def never_interrupted(tmp_path_factory, data_dir) -> dict[str, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("never_interrupted")
    config_path = write_config(folder, data_dir)
    open_home(folder / "home").dispose()
    process = start_backfill(config_path, folder / "home")
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    return warehouse_rows(config_path)


def run_again_and_compare(config_path: Path, home: Path, expected: dict[str, pd.DataFrame]) -> None:
    process = start_backfill(config_path, home)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    assert out.startswith(f"scorecard: {FIRST_DAY} .. {LAST_DAY} (20 days) in one run")
    assert_same_rows(warehouse_rows(config_path), expected)


@pytest.mark.skipif(not LINUX, reason="reads the process's signal handlers in /proc")
def test_a_sigterm_at_start_up_stops_before_anything_is_loaded(tmp_path, data_dir, never_interrupted):
    config_path, instance = write_config(tmp_path, data_dir), open_home(tmp_path / "home")
    process = start_backfill(config_path, tmp_path / "home")
    wait_for(lambda: takes_sigterm(process.pid), process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=300)
    assert (process.returncode, out) == (143, "")
    assert err.count("\n") == 1 and err.startswith("interrupted"), err
    assert "nothing was" in err
    assert all(run.status == DagsterRunStatus.CANCELED for run in instance.get_runs())
    run_again_and_compare(config_path, tmp_path / "home", never_interrupted)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_run_keeps_what_landed_cancels_the_run_and_a_rerun_completes_it(
    tmp_path, data_dir, never_interrupted, signum
):
    config_path, instance = write_config(tmp_path, data_dir), open_home(tmp_path / "home")
    process = start_backfill(config_path, tmp_path / "home")
    wait_for(lambda: a_step_succeeded(instance), process)
    process.send_signal(signum)
    out, err = process.communicate(timeout=300)
    assert (process.returncode, out) == (EXIT_CODES[signum], "")
    assert err == ("interrupted: the records loaded so far are kept and the scores are rewritten by the next run — "
                   f"{again(config_path)}\n")  # fmt: skip
    [run] = instance.get_runs()
    assert run.status == DagsterRunStatus.CANCELED
    run_again_and_compare(config_path, tmp_path / "home", never_interrupted)
    assert instance.get_runs()[0].status == DagsterRunStatus.SUCCESS


def pagerduty_config(folder: Path, base_url: str) -> Path:
    """The mini scorecard fed by the simulator's PagerDuty at `base_url`, one request of which may last an hour."""
    config = yaml.safe_load((Path(__file__).parent / "data" / "mini_scorecard.yaml").read_text())
    section = source_sections(base_url, service_mapping(("checkout",)))["pagerduty"]
    limits = {"request_deadline_seconds": 3600, "time_budget_minutes": 600}
    config |= {"sources": {"pagerduty": {**section, "limits": limits}}, "services": service_mapping(("checkout",)),
               "warehouse": {"url": f"sqlite:///{folder / 'warehouse.db'}"}}  # fmt: skip
    path = folder / "scorecard.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_a_vendor_holds_a_request_ends_the_run_at_once(tmp_path, signum):
    """The sources read in threads of their own: a thread waiting on a vendor must not keep the process alive. The
    request's deadline is an hour and its read timeout a minute: only the run's own end can end it within HELD."""
    history = build_history(end=pd.Timestamp("2026-11-01", tz="UTC"), seed=11, days=3, services=("checkout",))
    instance = open_home(tmp_path / "home")
    with hostile.holding(make_app(history)) as (base_url, arrived):
        process = start(tmp_path / "home", "run", "--from", "2026-10-31", "--config",
                        str(pagerduty_config(tmp_path, base_url)), PAGERDUTY_TOKEN="FAKE_PD",
                        **{NOW_ENV: "2026-11-01T03:00:00Z"})  # fmt: skip
        wait_for(arrived.is_set, process)
        process.send_signal(signum)
        out, err = process.communicate(timeout=HELD)
    assert (process.returncode, out) == (EXIT_CODES[signum], ""), err
    assert err.count("\n") == 1 and err.startswith("interrupted: the records loaded so far are kept"), err
    assert [run.status for run in instance.get_runs()] == [DagsterRunStatus.CANCELED]


def test_a_signal_before_the_run_starts_cancels_the_run_dagster_created(tmp_path, data_dir, monkeypatch):
    """Between creating the run and starting it Dagster does not handle signals: the run would stay NOT_STARTED."""
    config_path, instance = write_config(tmp_path, data_dir), open_home(tmp_path / "home")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(NOW_ENV, NOW)
    create_run = DagsterInstance.create_run_for_job

    def create_then_sigterm(self, *args, **kwargs):
        run = create_run(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        return run

    monkeypatch.setattr(DagsterInstance, "create_run_for_job", create_then_sigterm)
    result = CliRunner().invoke(app, ["backfill", "--from", FIRST_DAY, "--to", LAST_DAY, "--config",
                                      str(config_path)])  # fmt: skip
    assert result.exit_code == 143, result.output
    assert result.stderr == f"interrupted before the run started: nothing was loaded — {again(config_path)}\n"
    assert [run.status for run in instance.get_runs()] == [DagsterRunStatus.CANCELED]


def test_a_signal_dagster_took_is_still_heard_with_its_number():
    """Dagster takes SIGTERM for SIGINT while it runs a job: the exit code still says which signal came."""
    with stop_on_signals():
        with capture_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(Interrupted) as raised:
            raise_if_received()
        raise_if_received()  # heard once
    assert raised.value.exit_code == 143


def test_signals_are_handled_only_inside_the_block():
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(), pytest.raises(Interrupted) as raised:
        os.kill(os.getpid(), signal.SIGINT)
    assert raised.value.exit_code == 130
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_signal_that_lands_in_a_finalizer_is_raised_again():
    """Python only prints an exception raised in __del__ or a weakref callback: the interrupt would be lost."""

    class Finalized:
        def __del__(self):
            raise Interrupted(signal.SIGTERM)

    with stop_on_signals(), pytest.raises(Interrupted) as raised:
        Finalized()
        for _ in range(10**9):  # the signal comes again in a moment, and stops this loop
            pass
    assert raised.value.exit_code == 143
