"""Benchmark of the vendor connectors: a backfill of 180 days × 50 services from the vendor simulator, then a
nightly run, per source: records, requests, requests per 1,000 records next to the minimum the vendor's page
size allows, client-side records/s, and peak memory. Then the sources read at once, as the facts step reads them,
from a simulator that waits `--delay` seconds before every answer (a vendor's latency): the time of each source
alone, the four one after another (their sum) and the four at once, for the nightly run and the backfill.

    .venv/bin/python benchmarks/sync.py [--services 50] [--days 180] [--seed 7] [--delay 0.05] [--repeat 3]

The simulator runs in this process, in threads of its own; "client records/s" divides by the CPU time of the
thread that fetches (`time.thread_time`), so it is what the connector (HTTP client, paging, extract,
normalise) costs, without the simulator's work or the wait for it.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
from connectors.simulator.server import (  # noqa: E402
    SimulatorApp,
    SimulatorServer,
    credential_envs,
    make_app,
    running,
    source_sections,
)
from pipelines.assets.facts import load_facts  # noqa: E402
from pipelines.assets.scope import Scope  # noqa: E402
from pipelines.config import read_config  # noqa: E402
from warehouse import Warehouse  # noqa: E402

PAGE = 100  # GitHub's and PagerDuty's maximum page size


def sources(base_urls: dict[str, str], mapping: dict) -> dict:
    """The vendor sources of a config fed by the simulator (vendor -> the base URL of a simulator serving it),
    checked (one request each)."""
    sections = {name: source_sections(url, mapping)[name] for name, url in base_urls.items()}
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


@contextmanager
def served_apart(app: SimulatorApp) -> Iterator[dict[str, str]]:
    """Each vendor served by a simulator process of its own, as vendors answer from machines of their own: their
    work (GitHub's GraphQL above all) then does not share the client's interpreter. Yields vendor -> base URL."""
    context = multiprocessing.get_context("fork")
    children, urls = [], {}
    try:
        for name in KINDS:
            here, there = context.Pipe()
            child = context.Process(target=serve_in_child, args=(app, there), daemon=True)
            child.start()
            children.append(child)
            urls[name] = here.recv()
        yield urls
    finally:
        for child in children:
            child.terminate()
            child.join()


def serve_in_child(app: SimulatorApp, pipe) -> None:
    server = SimulatorServer(app)
    pipe.send(server.base_url)
    server.serve_forever()


def sync_seconds(base_urls: dict[str, str], mapping: dict, names: tuple[str, ...], start: pd.Timestamp,
                 end: pd.Timestamp, folder: Path) -> tuple[float, dict[str, int]]:
    """The named sources read over [start, end) into a fresh warehouse in `folder` as the facts step reads them
    (pipelines.assets.facts.load_facts: the sources at once): seconds, and requests per source. The sources are
    built (and checked) before the clock starts."""
    built = sources({name: base_urls[name] for name in names}, mapping)
    config = read_config(ROOT / "scorecard.yaml")  # the scope's config: load_facts reads only its sources
    with Warehouse.connect(f"sqlite:///{folder / 'warehouse.db'}") as warehouse:
        sent = {name: requests_of(source) for name, source in built.items()}
        began = time.perf_counter()
        load_facts(Scope(config, list(built.values()), warehouse, start, end))
        seconds = time.perf_counter() - began
    return seconds, {name: requests_of(source) - sent[name] for name, source in built.items()}


def measure_concurrent(label: str, base_urls: dict[str, str], mapping: dict, start: pd.Timestamp,
                       end: pd.Timestamp, repeat: int) -> None:
    """Each source alone, then the four at once, `repeat` rounds: the median seconds of each, and their range."""
    print(f"{label}, the sources alone and at once: {start.date()} .. {(end - pd.Timedelta(days=1)).date()}, "
          f"median of {repeat}")
    print(f"  {'sources':28} {'requests':>8} {'seconds':>8}  range")
    groups = [*((name,) for name in KINDS), tuple(KINDS)]
    runs: dict[tuple[str, ...], list[tuple[float, dict[str, int]]]] = {group: [] for group in groups}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeat):
            for group in groups:
                fresh = Path(tempfile.mkdtemp(dir=folder))
                runs[group].append(sync_seconds(base_urls, mapping, group, start, end, fresh))
    median = {group: statistics.median(seconds for seconds, _ in found) for group, found in runs.items()}
    for group, found in runs.items():
        name = f"{group[0]} alone" if len(group) == 1 else "the four at once"
        times = [seconds for seconds, _ in found]
        print(f"  {name:28} {sum(found[0][1].values()):>8,} {median[group]:>8.2f}  {min(times):.2f} – {max(times):.2f}")
    alone = {group[0]: median[group] for group in groups[:-1]}
    slowest = max(alone, key=alone.get)
    together, total = median[groups[-1]], sum(alone.values())
    print(f"  the four at once: {together / alone[slowest]:.2f} × the slowest alone ({slowest}, "
          f"{alone[slowest]:.2f} s), {together / total:.2f} × the sum of the four alone ({total:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds before every answer, for the sources "
                        "read at once")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the sources alone and at once")
    args = parser.parse_args()
    end = pd.Timestamp("2026-11-01", tz="UTC")
    began = time.perf_counter()
    history = build_history(end=end, seed=args.seed, days=args.days, services=args.services)
    print(f"history: {args.services} services × {args.days} days built in {time.perf_counter() - began:.1f} s")
    mapping = service_mapping(args.services)
    with running(make_app(history, 0.0, args.seed)) as base_url:
        built = sources(dict.fromkeys(KINDS, base_url), mapping)
        measure("backfill", built, end - pd.Timedelta(days=args.days), end)
        measure("nightly run after it", built, end - pd.Timedelta(days=1), end)
    with served_apart(make_app(history, 0.0, args.seed, delay=args.delay)) as base_urls:
        print(f"each vendor in a simulator process of its own, {args.delay:g} s before every answer")
        measure_concurrent("nightly run", base_urls, mapping, end - pd.Timedelta(days=1), end, args.repeat)
        measure_concurrent("backfill", base_urls, mapping, end - pd.Timedelta(days=args.days), end, args.repeat)
    print(f"peak RSS MB  {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f}")


if __name__ == "__main__":
    main()
