"""Benchmark of a history backfill: two years of generated records for 100 services through `scorecard backfill`.

Generates the data set with the demo generator (connectors.simulator.generate), writes it as
canonical CSV files with a config whose only source is those files and whose warehouse is a
fresh SQLite file, then runs `scorecard backfill --days N` as a child process: one Dagster run for
the whole range. Prints the records generated, wall time, rows written and the child's peak RSS.

    .venv/bin/python benchmarks/backfill.py [--services 100] [--days 730] [--seed 7] [--keep DIR]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.simulator.generate import DatasetSpec, generate_dataset, write_dataset  # noqa: E402
from pipelines import clock  # noqa: E402
from pipelines.settings import with_files_source  # noqa: E402


def prepare(folder: Path, services: int, days: int, seed: int) -> tuple[Path, int]:
    names = tuple(f"svc-{number:03d}" for number in range(services))
    spec = DatasetSpec(seed=seed, days=days, end=clock.midnight(), services=names)
    frames = generate_dataset(spec)
    paths = write_dataset(frames, folder / "data")
    config = _config_for(folder, names)
    with_files_source(config, paths, folder / "scorecard.yaml", f"sqlite:///{folder / 'scorecard.db'}")
    return folder / "scorecard.yaml", sum(len(frame) for frame in frames.values())


def _config_for(folder: Path, names: tuple[str, ...]) -> Path:
    """The example scorecard with the generated services as its service vocabulary (and no manual values)."""
    import yaml

    data = yaml.safe_load((ROOT / "scorecard.yaml").read_text(encoding="utf-8"))
    data["services"] = {name: {} for name in names}
    for perspective in data["scorecard"]["perspectives"]:
        for objective in perspective["objectives"]:
            for kpi in objective["kpis"]:
                kpi.pop("scope", None)
    path = folder / "base.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="write the data set and warehouse here (default: a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        config, records = prepare(folder, args.services, args.days, args.seed)
        generated = time.perf_counter() - began
        began = time.perf_counter()
        scorecard = Path(sys.executable).with_name("scorecard")
        command = [str(scorecard), "backfill", "--config", str(config), "--days", str(args.days)]
        finished = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - began
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(finished.stdout.strip())
        if finished.returncode:
            print(finished.stderr.strip(), file=sys.stderr)
            sys.exit(finished.returncode)
        print(f"services            {args.services}")
        print(f"days                {args.days}")
        print(f"records generated   {records:,} (in {generated:.1f} s)")
        print(f"backfill seconds    {seconds:.1f}")
        print(f"backfill peak RSS   {peak_mb:,.0f} MB")
        print(f"records/s           {records / seconds:,.0f}")


if __name__ == "__main__":
    main()
