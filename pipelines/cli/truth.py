"""The simulator's truth on disk (`scorecard simulate --truth-out DIR`): what it serves as canonical record
files (incidents, changes, deployments, pull_requests), and `metrics.json`, what `scorecard metrics --format
json` prints for those files — month grain over the served days, as of the history's end, every service listed
and monitored, default metric settings, records of service `unmapped` out of the metrics.
The end-to-end tests hold the warehouse to it. Which records and metrics: connectors.simulator.truth.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from connectors.files.read import read_records
from connectors.simulator.history import History
from connectors.simulator.truth import TRUTH_KINDS, known_services, truth_metrics, truth_rows
from pipelines.cli.output import records, to_json
from scoring.metrics import METRIC_COLUMNS

METRICS_FILE = "metrics.json"


def metrics_json(values: pd.DataFrame) -> str:
    """Metric rows as `scorecard metrics --format json` prints them."""
    return to_json(records(values, METRIC_COLUMNS)) + "\n"


def write_truth(history: History, out_dir: str | Path) -> dict[str, Path]:
    """Write the truth files under out_dir (created if need be); returns their paths by name
    (incidents, changes, deployments, pull_requests, metrics). The metrics are derived from the files as written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for kind, rows in truth_rows(history).items():
        paths[kind] = out_dir / f"{kind}.csv"
        rows.to_csv(paths[kind], index=False, lineterminator="\n")
    frames = {}
    for kind in TRUTH_KINDS:
        records = read_records(kind, paths[kind], known_services(history))
        if len(records.rejected):
            raise AssertionError(f"{paths[kind]}: rejected rows: {records.rejection_lines()}")
        frames[kind] = records.good
    paths["metrics"] = out_dir / METRICS_FILE
    paths["metrics"].write_text(metrics_json(truth_metrics(history, frames)), encoding="utf-8")
    return paths
