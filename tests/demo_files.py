"""The data set and config the pipeline tests share: the simulator's 10 services, 20 days ending
2024-03-21 (so March 2024 is complete), a bad row per kind, manual KPI values, and the example
scorecard.yaml fed by those files into a throw-away SQLite warehouse."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from connectors.records import KINDS
from connectors.simulator.generate import DatasetSpec, generate_dataset, generate_manual_values, write_dataset
from pipelines.config import read_config

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
