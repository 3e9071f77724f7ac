"""Benchmark of the vendor connectors: a backfill of 180 days × 50 services from the vendor simulator, then a
nightly run, per source: records, requests, requests per 1,000 records next to the minimum the vendor's page
size allows, client-side records/s, and peak memory.

    .venv/bin/python benchmarks/sync.py [--services 50] [--days 180] [--seed 7]

The simulator runs in this process, in threads of its own; "client records/s" divides by the CPU time of the
thread that fetches (`time.thread_time`), so it is what the connector (HTTP client, paging, extract,
normalise) costs, without the simulator's work or the wait for it.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.base import SourceContext  # noqa: E402
from connectors.github.client import REPOS_PER_QUERY  # noqa: E402
from connectors.github.config import GithubConfig  # noqa: E402
from connectors.github.source import github_source  # noqa: E402
from connectors.pagerduty.config import PagerDutyConfig  # noqa: E402
from connectors.pagerduty.source import pagerduty_source  # noqa: E402
from connectors.services import ServiceMapping  # noqa: E402
from connectors.simulator.history import build_history, service_mapping  # noqa: E402
from connectors.simulator.server import make_app, running, vendor_urls  # noqa: E402

PAGE = 100  # both vendors' maximum page size
ENVIRON = {"GITHUB_TOKEN": "bench", "PAGERDUTY_TOKEN": "bench"}


def sources(base_url: str, mapping: dict) -> dict:
    urls = vendor_urls(base_url)
    services = {name: ServiceMapping(**entry) for name, entry in mapping.items()}
    context = SourceContext(ROOT, services, ("production", "prod"))
    github = GithubConfig(base_url=urls["github"], repos=[r for m in mapping.values() for r in m["github_repos"]])
    pagerduty = PagerDutyConfig(base_url=urls["pagerduty"],
                                services=[s for m in mapping.values() for s in m["pagerduty_services"]])
    return {"github": github_source(github, context, ENVIRON),
            "pagerduty": pagerduty_source(pagerduty, context, ENVIRON)}


KINDS = {"github": ("deployments", "pull_requests"), "pagerduty": ("incidents",)}


def minimum_requests(source, kind: str, records: pd.DataFrame) -> int:
    """The fewest requests the vendor's page size allows. GitHub: a repo needs ceil(n / 100) pages (at least one),
    and a request carries one page each of up to REPOS_PER_QUERY repos, so: the most pages of one repo, or all
    pages over REPOS_PER_QUERY, whichever is more. PagerDuty: one request per 100 incidents (at least one)."""
    if source.name == "github":
        per_repo = records["source_id"].str.rsplit("/", n=1).str[0] if kind == "deployments" else \
            records["source_id"].str.split("#").str[0]  # fmt: skip
        counts = per_repo.value_counts().reindex(list(source.repos), fill_value=0)
        pages = [max(1, math.ceil(n / PAGE)) for n in counts]
        return max(max(pages), math.ceil(sum(pages) / REPOS_PER_QUERY))
    return max(1, math.ceil(len(records) / PAGE))


def requests_of(source) -> int:
    return source.client.requests_sent if source.name == "github" else source.client.http.requests_sent


def measure(label: str, sources_by_name: dict, start: pd.Timestamp, end: pd.Timestamp) -> None:
    print(f"{label}: {start.date()} .. {(end - pd.Timedelta(days=1)).date()}")
    print(f"  {'source/kind':24} {'records':>8} {'requests':>8} {'req/1k':>7} {'minimum':>8} {'client rec/s':>12}")
    for name, source in sources_by_name.items():
        for kind in KINDS[name]:
            sent, began = requests_of(source), time.thread_time()
            batch = source.fetch(kind, start, end)
            requests, client = requests_of(source) - sent, time.thread_time() - began
            records = len(batch.good) + len(batch.rejected)
            per_1k = 1000 * requests / records if records else float("nan")
            rate = records / client if client > 0 else float("nan")
            least = minimum_requests(source, kind, batch.good)
            print(f"  {name + '/' + kind:24} {records:>8,} {requests:>8,} {per_1k:>7.1f} {least:>8,} {rate:>12,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    end = pd.Timestamp("2026-11-01", tz="UTC")
    began = time.perf_counter()
    history = build_history(end=end, seed=args.seed, days=args.days, services=args.services)
    print(f"history: {args.services} services × {args.days} days built in {time.perf_counter() - began:.1f} s")
    with running(make_app(history, 0.0, args.seed)) as base_url:
        built = sources(base_url, service_mapping(args.services))
        measure("backfill", built, end - pd.Timedelta(days=args.days), end)
        measure("nightly run after it", built, end - pd.Timedelta(days=1), end)
    print(f"peak RSS MB  {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f}")


if __name__ == "__main__":
    main()
