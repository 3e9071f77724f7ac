"""Every source read at once: one thread per source, each reading its record kinds one after another.

A night then takes about as long as its slowest source, not the sum of them. A source object (and its HTTP
session) is only ever used by its own thread. The caller's thread gets each batch as it completes and does every
write with it (the warehouse connection is not shared across threads). When a read fails, every other read is
ended (connectors.http.Stop: a request under way ends at once, a read not begun never begins); the reads that had
completed are still handed over, then the first failure is raised. Any other way out of `read_all` (an interrupt
in the caller's thread) ends them the same way: no read goes on once its step has ended, and none keeps the
process alive.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass

import pandas as pd

from connectors.base import Source, SourceBatch, SourceError
from connectors.http import Stop


@dataclass(frozen=True)
class Read:
    """One source's records of one kind over the window, from its stored cursor."""

    source: Source
    kind: str
    cursor: str | None


def read_all(reads: list[Read], start: pd.Timestamp, end: pd.Timestamp) -> Iterator[tuple[Read, SourceBatch]]:
    """Each read's batch, in the order they complete; raises the first failure once the reads completed before it
    are handed over. Close the generator (`contextlib.closing`) to end the reads on any way out."""
    reading = _Reading()
    handed: set[Future[SourceBatch]] = set()
    try:
        futures = {reading.submit(read, start, end): read for read in reads}
        for future in as_completed(futures):
            if future.exception() is not None:
                reading.end()  # before handing over what completed: nothing new begins meanwhile
                yield from _completed(futures, handed)
                read, error = reading.failed or (futures[future], future.exception())
                raise _named(error, read)
            handed.add(future)
            yield futures[future], future.result()
    finally:
        reading.end()


class _Reading:
    """The threads of one `read_all`: one per source, and the Stop that ends their reads."""

    def __init__(self) -> None:
        self.stop = Stop()
        self.failed: tuple[Read, BaseException] | None = None  # the first read that failed: the one reported
        self._lock = threading.Lock()
        self._executors: dict[int, ThreadPoolExecutor] = {}

    def submit(self, read: Read, start: pd.Timestamp, end: pd.Timestamp) -> Future[SourceBatch]:
        """Queue `read` in its source's own thread, after the reads of that source queued before it."""
        key = id(read.source)
        if key not in self._executors:
            self._executors[key] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"read-{read.source.name}")
        return self._executors[key].submit(self._fetch, read, start, end)

    def end(self) -> None:
        """End every read, without waiting for any."""
        self.stop.set()
        for executor in self._executors.values():
            executor.shutdown(wait=False, cancel_futures=True)

    def _fetch(self, read: Read, start: pd.Timestamp, end: pd.Timestamp) -> SourceBatch:
        if self.stop.is_set():
            raise CancelledError  # another read failed before this one began
        with self.stop.applied():
            try:
                return read.source.fetch(read.kind, start, end, read.cursor)
            except BaseException as error:
                with self._lock:
                    self.failed = self.failed or (read, error)
                self.stop.set()  # from here: the other reads end now, not once the caller has heard of it
                raise


def _completed(futures: dict[Future[SourceBatch], Read], handed: set[Future[SourceBatch]]):
    for future, read in futures.items():
        if future not in handed and future.done() and not future.cancelled() and future.exception() is None:
            yield read, future.result()


def _named(error: BaseException, read: Read) -> BaseException:
    """The failure of `read`, naming its source: a SourceError names its config path already."""
    if isinstance(error, SourceError):
        return error
    named = SourceError(f"sources.{read.source.name}: reading {read.kind}: {type(error).__name__}: {error}")
    named.__cause__ = error
    return named
