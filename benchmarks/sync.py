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
from connectors.jira.extract import search_fields  # noqa: E402
from connectors.registry import SourcesConfig, configured_sources  # noqa: E402
from connectors.services import ServiceMapping  # noqa: E402
from connectors.simulator.history import JIRA_CHANGE_TYPE_FIELD, build_history, service_mapping  # noqa: E402
from connectors.simulator.jira_routes import MANY_FIELDS, MAX_RESULTS_FEW_FIELDS, MAX_RESULTS_MANY_FIELDS  # noqa: E402
from connectors.simulator.server import credential_envs, make_app, running, source_sections  # noqa: E402

PAGE = 100  # GitHub's and PagerDuty's maximum page size


def sources(base_url: str, mapping: dict) -> dict:
    """The four vendor sources of a config fed by the simulator, checked (one request each)."""
    sections = source_sections(base_url, mapping)
    services = {name: ServiceMapping(**entry) for name, entry in mapping.items()}
    context = SourceContext(ROOT, services, ("production", "prod"))
    environ = dict.fromkeys(credential_envs(sections), "bench")
    return {source.name: source for source in configured_sources(SourcesConfig(**sections), context, environ)}


KINDS = {"github": ("deployments", "pull_requests"), "pagerduty": ("incidents",), "jira": ("incidents", "changes"),
         "servicenow": ("incidents", "changes")}  # fmt: skip


def minimum_requests(source, kind: str, records: pd.DataFrame) -> int:
    """The fewest requests the vendor's page size allows. GitHub: a repo needs ceil(n / 100) pages (at least one),
    and a request carries one page each of up to REPOS_PER_QUERY repos, so: the most pages of one repo, or all
    pages over REPOS_PER_QUERY, whichever is more. PagerDuty: one request per 100 incidents (at least one). Jira:
    one per page of the most issues a page holds for the fields asked. ServiceNow: one per `page_size` rows.
    Not counted: the requests beside the pages, each made once per run, not per page: Jira's field list and
    bulk changelog reads (1,000 issues a request), ServiceNow's reference lookups (100 ids a request, cached
    for the run)."""
    if source.name == "github":
        per_repo = records["source_id"].str.rsplit("/", n=1).str[0] if kind == "deployments" else \
            records["source_id"].str.split("#").str[0]  # fmt: skip
        counts = per_repo.value_counts().reindex(list(source.repos), fill_value=0)
        pages = [max(1, math.ceil(n / PAGE)) for n in counts]
        return max(max(pages), math.ceil(sum(pages) / REPOS_PER_QUERY))
    if source.name == "jira":
        fields = search_fields(kind, change_type_field=JIRA_CHANGE_TYPE_FIELD if kind == "changes" else None)
        page = MAX_RESULTS_MANY_FIELDS if len(fields) > MANY_FIELDS else MAX_RESULTS_FEW_FIELDS
        return max(1, math.ceil(len(records) / page))
    if source.name == "servicenow":
        return max(1, math.ceil(len(records) / source.section.page_size))
    return max(1, math.ceil(len(records) / PAGE))


def requests_of(source) -> int:
    return source.client.http.requests_sent


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
