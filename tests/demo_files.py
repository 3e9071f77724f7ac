"""The data set and config the pipeline tests share: the simulator's 10 services, 20 days ending
2024-03-21 (so March 2024 is complete), a bad row per kind, manual KPI values, and the example
scorecard.yaml fed by those files into a throw-away SQLite warehouse."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from connectors.records import KINDS
from connectors.simulator.generate import DatasetSpec, generate_dataset, generate_manual_values, write_dataset
from pipelines.cli import app
from pipelines.clock import NOW_ENV
from pipelines.config import read_config
from pipelines.resources import CONFIG_ENV, WAREHOUSE_URL_ENV

ROOT = Path(__file__).resolve().parents[1]
SPEC = DatasetSpec(seed=11, days=20, end=pd.Timestamp("2024-03-21", tz="UTC"), bad_rows=1)
FIRST_DAY, LAST_DAY = "2024-03-01", "2024-03-20"


def write_data(folder: Path) -> Path:
    """The canonical CSV files and values.csv of SPEC, in `folder`."""
    write_dataset(generate_dataset(SPEC), folder)
    example = read_config(ROOT / "scorecard.yaml")
    ranges = {kpi.id: (kpi.baseline, kpi.target) for _, _, kpi in example.iter_kpis() if kpi.is_manual}
    generate_manual_values(SPEC, ranges).to_csv(folder / "values.csv", index=False)
    return folder


def write_config(folder: Path, data_dir: Path, **changes) -> Path:
    """The example scorecard.yaml reading `data_dir`'s files into `folder`/warehouse.db."""
    config = yaml.safe_load((ROOT / "scorecard.yaml").read_text())
    files = {kind: str(data_dir / f"{kind}.csv") for kind in KINDS} | {"values": str(data_dir / "values.csv")}
    config["sources"] = {"files": files}
    config["warehouse"] = {"url": f"sqlite:///{folder / 'warehouse.db'}"}
    config.update(changes)
    path = folder / "scorecard.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def cli(*args: str):
    """The `scorecard` command, run in-process."""
    return CliRunner().invoke(app, list(args))


def isolate_cli(env: pytest.MonkeyPatch, now: str) -> None:
    """No outside warehouse, config or Dagster home, and the clock at `now`. (Module-scoped fixtures run before
    conftest's per-test clean environment, so they clean it themselves.)"""
    for name in (WAREHOUSE_URL_ENV, CONFIG_ENV, "DAGSTER_HOME"):
        env.delenv(name, raising=False)
    env.setenv(NOW_ENV, now)


def generate_demo(folder: Path, days: int) -> Path:
    """`scorecard generate` of `days` ending at the clock, for the example config, into `folder`/scorecard.db;
    returns the config it wrote (call inside `isolate_cli`)."""
    config = folder / "scorecard.yaml"
    generated = cli("generate", "--out", str(folder / "data"), "--days", str(days), "--config",
                    str(ROOT / "scorecard.yaml"), "--write-config", str(config),
                    "--warehouse-url", f"sqlite:///{folder / 'scorecard.db'}")  # fmt: skip
    assert generated.exit_code == 0, generated.output
    return config
