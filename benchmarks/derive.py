"""Benchmark of `scoring.metrics.derive_metrics` on a large synthetic history.

Generates (seeded, vectorised) 1M incidents, 1M changes, 1M deployments and 1M pull requests over
two years and 500 services, typed as `connectors.records.normalise_frame` would type them, then
derives every metric at month grain over the two years. Prints the wall time of the derivation,
the peak RSS of the process and input rows per second.

    .venv/bin/python benchmarks/derive.py [--rows N] [--services S] [--seed SEED]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoring.metrics import derive_metrics  # noqa: E402

START = pd.Timestamp("2024-01-01", tz="UTC")
END = pd.Timestamp("2026-01-01", tz="UTC")
HOUR_NS = 3_600_000_000_000


def _stamps(ns: np.ndarray) -> pd.Series:
    return pd.Series(ns.astype("datetime64[ns]")).dt.tz_localize("UTC")


def _missing_where(ns: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask, np.datetime64("NaT").astype("datetime64[ns]").astype(np.int64), ns)


def _ids(prefix: str, n: int) -> pd.Series:
    return prefix + pd.Series(np.arange(n)).astype(str)


def _words(rng: np.random.Generator, words: list[str | None], weights: list[float], n: int) -> np.ndarray:
    # Indexing an object array shares one Python object per word, as real frames of repeated words do.
    return np.array(words, dtype=object)[rng.choice(len(words), size=n, p=weights)]


def _uniform_times(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(START.value, END.value, size=n)


def generate(n: int, n_services: int, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    services = np.array([f"svc-{i:03d}" for i in range(n_services)], dtype=object)

    def service() -> np.ndarray:
        return services[rng.integers(0, n_services, size=n)]

    change_ids = _ids("CHG", n)
    implemented = _uniform_times(rng, n)
    changes = pd.DataFrame(
        {
            "source": "servicenow",
            "source_id": change_ids,
            "service": service(),
            "type": _words(rng, ["standard", "normal", "emergency", None], [0.6, 0.3, 0.05, 0.05], n),
            "implemented_at": _stamps(_missing_where(implemented, rng.random(n) < 0.05)),
            "outcome": _words(rng, ["successful", "failed", "backed_out", "unknown"], [0.85, 0.05, 0.03, 0.07], n),
            "updated_at": _stamps(implemented),
        }
    )

    deployed = _uniform_times(rng, n)
    linked_change = change_ids.to_numpy(dtype=object)[rng.integers(0, n, size=n)]
    deployments = pd.DataFrame(
        {
            "source": "github",
            "source_id": _ids("D", n),
            "service": service(),
            "environment": _words(rng, ["production", "Prod", "staging", "dev"], [0.55, 0.15, 0.2, 0.1], n),
            "sha": None,
            "deployed_at": _stamps(deployed),
            "status": _words(
                rng,
                ["success", "failure", "error", "inactive", "in_progress", "queued"],
                [0.85, 0.05, 0.02, 0.04, 0.02, 0.02],
                n,
            ),
            "change_id": np.where(rng.random(n) < 0.2, linked_change, None),
            "updated_at": _stamps(deployed),
        }
    )

    opened = _uniform_times(rng, n)
    resolved = opened + (rng.exponential(2.0, size=n) * HOUR_NS).astype(np.int64)
    caused_by = change_ids.to_numpy(dtype=object)[rng.integers(0, n, size=n)]
    incidents = pd.DataFrame(
        {
            "source": "pagerduty",
            "source_id": _ids("INC", n),
            "service": service(),
            "severity": _words(
                rng, ["sev1", "sev2", "sev3", "sev4", "sev5", None], [0.03, 0.12, 0.3, 0.3, 0.2, 0.05], n
            ),
            "title": None,
            "status": "resolved",
            "opened_at": _stamps(opened),
            "resolved_at": _stamps(_missing_where(resolved, rng.random(n) < 0.01)),
            "caused_by_change": np.where(rng.random(n) < 0.05, caused_by, None),
            "updated_at": _stamps(resolved),
        }
    )

    created = _uniform_times(rng, n)
    first_commit = created - (rng.exponential(24.0, size=n) * HOUR_NS).astype(np.int64)
    merged = created + (rng.exponential(48.0, size=n) * HOUR_NS).astype(np.int64)
    pull_requests = pd.DataFrame(
        {
            "source": "github",
            "source_id": _ids("PR", n),
            "service": service(),
            "created_at": _stamps(created),
            "first_commit_at": _stamps(_missing_where(first_commit, rng.random(n) < 0.1)),
            "merged_at": _stamps(_missing_where(merged, rng.random(n) < 0.1)),
            "merge_commit_sha": None,
            "updated_at": _stamps(merged),
        }
    )
    return {"incidents": incidents, "changes": changes, "deployments": deployments, "pull_requests": pull_requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per record kind")
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    frames = generate(args.rows, args.services, args.seed)
    input_rows = sum(len(frame) for frame in frames.values())
    began = time.perf_counter()
    result = derive_metrics(**frames, grain="month", start=START, end=END, as_of=END)
    seconds = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is KiB on Linux
    print(f"input rows      {input_rows:,}")
    print(f"output rows     {len(result):,}")
    print(f"derive seconds  {seconds:.2f}")
    print(f"peak RSS MB     {peak_mb:,.0f}")
    print(f"rows/s          {input_rows / seconds:,.0f}")


if __name__ == "__main__":
    main()
