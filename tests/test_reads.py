"""The facts step reads every source at once (pipelines.reads, pipelines.assets.facts.load_facts): each source in a
thread of its own, its kinds one after another; every write in the step's thread, a cursor only after its records
landed; a failing source ends the others' reads and loses none that had completed.

The fake sources below wait for each other (a barrier, events) instead of sleeping: whether reads overlap is read
from the instants they record, and nothing depends on how long anything takes.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from connectors.base import SourceBatch, SourceError, empty_batch
from connectors.http import Stop
from connectors.records import normalise
from pipelines.assets.facts import load_facts
from pipelines.assets.scope import Scope
from pipelines.config import read_config
from warehouse import Warehouse

START, END = pd.Timestamp("2026-10-30", tz="UTC"), pd.Timestamp("2026-10-31", tz="UTC")
WAIT = 60  # seconds: only a test that is about to fail waits this long
ROWS = {
    "deployments": {"service": "checkout", "environment": "production", "sha": "a", "status": "success",
                    "deployed_at": "2026-10-30T10:00:00Z", "updated_at": "2026-10-30T10:05:00Z"},
    "incidents": {"service": "checkout", "severity": "sev2", "opened_at": "2026-10-30T11:00:00Z",
                  "resolved_at": "2026-10-30T12:00:00Z", "updated_at": "2026-10-30T12:00:00Z"},
    "pull_requests": {"service": "checkout", "created_at": "2026-10-29T09:00:00Z",
                      "merged_at": "2026-10-30T09:00:00Z", "updated_at": "2026-10-30T09:00:00Z"},
}  # fmt: skip


def batch(source: str, kind: str) -> SourceBatch:
    """One good record of `kind` from `source`, read through the window's end."""
    result = normalise(kind, pd.DataFrame([{"source": source, "source_id": f"{source}-1", **ROWS[kind]}], dtype=object))
    assert result.rejected.empty, result.rejected
    return SourceBatch(result.good, result.rejected, cursor=END.isoformat(), covered=(START, END))


class FakeSource:
    """A source whose fetch of each kind runs `behaviour[kind](source, kind)` (default: one record), recording when
    and in which thread every fetch began and ended."""

    def __init__(self, name: str, behaviour: dict):
        self.name = name
        self.behaviour = behaviour
        self.fetches: list[tuple[str, int, float, float]] = []  # kind, thread, began, ended (perf_counter)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self.behaviour)

    def check(self) -> None:
        pass

    def fetch(self, kind: str, start: pd.Timestamp, end: pd.Timestamp, cursor: str | None = None) -> SourceBatch:
        began = time.perf_counter()
        try:
            return (self.behaviour[kind] or batch)(self.name, kind)
        finally:
            self.fetches.append((kind, threading.get_ident(), began, time.perf_counter()))


class RecordedWarehouse:
    """The warehouse, each write recorded with its thread: ("upsert", kind, sources) and ("cursor", source, kind)."""

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse
        self.writes: list[tuple] = []

    def __getattr__(self, name: str):
        return getattr(self.warehouse, name)

    def upsert_facts(self, kind: str, frame: pd.DataFrame):
        self.writes.append(("upsert", kind, tuple(sorted(set(frame["source"]))), threading.get_ident()))
        return self.warehouse.upsert_facts(kind, frame)

    def write_rejected(self, kind: str, rejected: pd.DataFrame, source: str | None = None) -> int:
        self.writes.append(("rejected", kind, source, threading.get_ident()))
        return self.warehouse.write_rejected(kind, rejected, source=source)

    def set_cursor(self, source: str, kind: str, cursor: str | None, covered: str | None = None) -> None:
        self.writes.append(("cursor", source, kind, threading.get_ident()))
        self.warehouse.set_cursor(source, kind, cursor, covered)


@pytest.fixture
def warehouse(tmp_path: Path):
    with Warehouse.connect(f"sqlite:///{tmp_path / 'warehouse.db'}") as connected:
        yield RecordedWarehouse(connected)


def scope_of(warehouse: RecordedWarehouse, *sources: FakeSource) -> Scope:
    config = read_config(Path(__file__).parent / "data" / "mini_scorecard.yaml")
    return Scope(config, list(sources), warehouse, START, END)  # type: ignore[arg-type]


def test_two_sources_read_at_the_same_time_each_in_its_own_thread(warehouse):
    both_reading = threading.Barrier(2, timeout=WAIT)  # one at a time, the first would wait here for ever

    def meet(source: str, kind: str) -> SourceBatch:
        both_reading.wait()
        return batch(source, kind)

    github = FakeSource("github", {"deployments": meet, "pull_requests": None})
    pagerduty = FakeSource("pagerduty", {"incidents": meet})
    counts = load_facts(scope_of(warehouse, github, pagerduty))
    (_, _, github_began, github_ended), (_, _, paged_began, paged_ended) = github.fetches[0], pagerduty.fetches[0]
    assert github_began < paged_ended and paged_began < github_ended  # the two reads overlap in time
    main = threading.get_ident()
    github_threads, pagerduty_threads = {f[1] for f in github.fetches}, {f[1] for f in pagerduty.fetches}
    assert len(github_threads) == len(pagerduty_threads) == 1  # a source is only ever used by its own thread
    assert main not in github_threads | pagerduty_threads and github_threads != pagerduty_threads
    assert [f[0] for f in github.fetches] == ["deployments", "pull_requests"]  # its kinds one after another
    assert github.fetches[0][3] <= github.fetches[1][2]
    assert {write[-1] for write in warehouse.writes} == {main}  # every write in the step's thread
    assert {kind: c["inserted"] for kind, c in counts.items()} == {"incidents": 1, "changes": 0, "deployments": 1,
                                                                   "pull_requests": 1}  # fmt: skip


def test_a_cursor_is_stored_only_after_its_batch_landed_and_each_kind_is_done_after_its_last_batch(warehouse):
    github = FakeSource("github", {"deployments": None, "pull_requests": None})
    files = FakeSource("files", {"deployments": None, "incidents": None})
    done: list[tuple[str, int]] = []
    load_facts(scope_of(warehouse, github, files), kind_done=lambda kind, counts: done.append((kind, counts["read"])))
    writes = [write[:3] for write in warehouse.writes]
    for source, kind in [("github", "deployments"), ("github", "pull_requests"), ("files", "deployments"),
                         ("files", "incidents")]:  # fmt: skip
        cursor = writes.index(("cursor", source, kind))
        assert writes.index(("upsert", kind, (source,))) < cursor
        assert writes.index(("rejected", kind, source)) < cursor
    assert sorted(done) == [("changes", 0), ("deployments", 2), ("incidents", 1), ("pull_requests", 1)]
    assert done[0] == ("changes", 0)  # no source reads it: done before any read


def test_a_failing_source_ends_the_others_and_what_had_completed_still_lands(warehouse):
    github_reads_on = threading.Event()
    github_ended = threading.Event()
    seen: dict[str, bool] = {}

    def read_until_stopped(source: str, kind: str) -> SourceBatch:
        github_reads_on.set()  # its deployments batch is complete: the executor began the next read
        stop = Stop.of_thread()
        stop.wait(WAIT)  # a request under way, until the step ends it
        seen["stopped"] = stop.is_set()
        github_ended.set()
        raise SourceError("sources.github: stopped")  # what a vendor's client raises once stopped

    def fail(source: str, kind: str) -> SourceBatch:
        github_reads_on.wait(WAIT)
        raise RuntimeError("the API said no")

    github = FakeSource("github", {"deployments": None, "pull_requests": read_until_stopped})
    pagerduty = FakeSource("pagerduty", {"incidents": fail, "changes": None})
    with pytest.raises(SourceError) as raised:
        load_facts(scope_of(warehouse, github, pagerduty))
    assert str(raised.value) == "sources.pagerduty: reading incidents: RuntimeError: the API said no"
    assert github_ended.wait(WAIT) and seen["stopped"]  # the read under way was ended, not waited for
    assert [f[0] for f in pagerduty.fetches] == ["incidents"]  # its next read never began
    inner = warehouse.warehouse
    assert list(inner.read_facts("deployments")["source_id"]) == ["github-1"]  # completed before: landed
    assert inner.get_cursor("github", "deployments") == END.isoformat()
    assert inner.read_facts("pull_requests").empty and inner.get_cursor("github", "pull_requests") is None
    assert inner.get_cursor("pagerduty", "incidents") is None


def test_a_failure_that_names_its_source_is_raised_as_it_is(warehouse):
    def refused(source: str, kind: str) -> SourceBatch:
        raise SourceError("sources.jira: GET https://acme.atlassian.net/rest/api/3/search/jql: HTTP 400")

    with pytest.raises(SourceError) as raised:
        load_facts(scope_of(warehouse, FakeSource("jira", {"incidents": refused})))
    assert str(raised.value) == "sources.jira: GET https://acme.atlassian.net/rest/api/3/search/jql: HTTP 400"


def test_the_step_thread_leaving_ends_every_read(warehouse):
    """An interrupt arrives in the step's thread (while it lands a batch): no read goes on in the background."""
    pagerduty_ended = threading.Event()
    seen: dict[str, bool] = {}

    def read_until_stopped(source: str, kind: str) -> SourceBatch:
        stop = Stop.of_thread()
        stop.wait(WAIT)
        seen["stopped"] = stop.is_set()
        pagerduty_ended.set()
        return empty_batch(kind)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    warehouse.upsert_facts = interrupted
    with pytest.raises(KeyboardInterrupt):
        load_facts(scope_of(warehouse, FakeSource("github", {"deployments": None}),
                            FakeSource("pagerduty", {"incidents": read_until_stopped})))  # fmt: skip
    assert pagerduty_ended.wait(WAIT) and seen["stopped"]
