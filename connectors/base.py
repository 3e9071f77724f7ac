"""What every source is: the `Source` protocol, what it returns (`SourceBatch`), how it fails (`SourceError`),
and the one rule of windowing a record by time.

A source turns (kind, [start, end)) into the canonical records of that kind *updated* in the window,
already normalised (`good`), plus the rows it could not read (`rejected`). Sources know nothing
about the warehouse: the Dagster assets write what they return, and keep each source's cursor.
A vendor record keeps its payload in an extra `payload` column (a dict), stored in the fact's `raw`.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from connectors.records import REJECTED_COLUMNS, empty_frame, parse_utc
from connectors.services import Services

# When a record happened, newest first: a record without updated_at is placed by its event time.
RECORD_TIME_COLUMNS: dict[str, tuple[str, ...]] = {
    "incidents": ("updated_at", "opened_at"),
    "changes": ("updated_at", "implemented_at"),
    "deployments": ("updated_at", "deployed_at"),
    "pull_requests": ("updated_at", "merged_at", "created_at"),
}


class SourceError(Exception):
    """A source that cannot run: no connector, a missing credential, an unreadable file. The message names
    the config path and no secret."""


@dataclass
class SourceBatch:
    """What one source returned for one kind and window."""

    good: pd.DataFrame  # typed like normalise_frame's good output
    rejected: pd.DataFrame  # REJECTED_COLUMNS
    same_time_conflicts: int = 0  # rows that lost a tie on (source, source_id, updated_at) to other content
    cursor: str | None = None  # the source's new sync_state cursor for this kind; stored once `good` has landed
    # The stretch of time this read covers, [start, end) UTC, kept in sync_state.covered once `good` has landed:
    # a period is complete only when every feed covers it (scoring.completeness). None: a kind it does not read.
    covered: tuple[pd.Timestamp, pd.Timestamp] | None = None

    @property
    def read(self) -> int:
        return len(self.good) + len(self.rejected)


class Source(Protocol):
    name: str

    @property
    def kinds(self) -> tuple[str, ...]:
        """The record kinds it reads (its feeds: a period is complete only when each of them covers it)."""
        ...

    def check(self) -> None:
        """Raise SourceError if the source cannot run at all (the pre-flight: before anything is written)."""
        ...

    def fetch(self, kind: str, start: pd.Timestamp, end: pd.Timestamp, cursor: str | None = None) -> SourceBatch:
        """Records of `kind` updated in [start, end) (UTC). `cursor` is what the source last returned as
        `SourceBatch.cursor` for this kind (None on the first run); the caller stores the new one only after
        the batch's records have landed, so a run killed mid-sync resumes from the old cursor."""
        ...


@dataclass(frozen=True)
class SourceContext:
    """What every source factory gets besides its own config section."""

    base_dir: Path  # relative paths in scorecard.yaml start here (the file's folder)
    services: Services  # the service vocabulary and each source's names for a service
    production_environments: tuple[str, ...]  # metrics.production_environments, unless a source overrides it


def credential(env_name: str, config_path: str, environ: Mapping[str, str] | None = None) -> str:
    """The secret held by the environment variable `env_name`, which the config names at `config_path`
    (`sources.github.token_env`); SourceError, naming the variable and the path, when it is not set."""
    value = (os.environ if environ is None else environ).get(env_name)
    if not value:
        raise SourceError(unset_message(env_name, config_path))
    return value


def unset_message(env_name: str, config_path: str) -> str:
    return f"environment variable {env_name} is not set ({config_path})"


def empty_batch(kind: str) -> SourceBatch:
    return SourceBatch(empty_frame(kind), pd.DataFrame({c: pd.Series([], dtype=object) for c in REJECTED_COLUMNS}))


def record_times(frame: pd.DataFrame, kind: str) -> pd.Series:
    """Each record's time for windowing: updated_at, else its event time (UTC; NaT if none)."""
    stamps = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    for column in RECORD_TIME_COLUMNS[kind]:
        if column in frame.columns:
            stamps = stamps.fillna(parse_utc(frame[column]))
    return stamps


def vendor_text(value: Any) -> str | None:
    """A vendor value as stripped text (a number as its text); None for None, NaN and empty text."""
    if isinstance(value, str):
        return value.strip() or None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value).strip() or None


def utc(stamp: pd.Timestamp | str) -> pd.Timestamp:
    """A timestamp in UTC; a naive one is taken as UTC (how windows are given)."""
    stamp = pd.Timestamp(stamp)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def read_through(cursor: str | None, end: pd.Timestamp) -> str:
    """A vendor source's sync_state cursor once it has read a window ending at `end`: the latest window end read so
    far (ISO 8601 UTC), so sync_state tells how far each source and kind is synced; re-reading an earlier window
    (a backfill) does not move it back. Vendor sources re-read their window whole, so a run killed mid-sync
    resumes by reading that window again: the cursor says what landed, it is not a place to resume from."""
    stamp = utc(end)
    try:
        return max(stamp, utc(cursor)).isoformat() if cursor else stamp.isoformat()
    except ValueError:  # not a time (written by something else): start over from this window
        return stamp.isoformat()


def records_read_through(fetch):
    """Decorates a vendor source's `fetch`: a window read of one of the source's `kinds` (the kinds it reads, as
    configured) returns its `read_through` cursor, and covers the whole window (the vendor answered for all of it)."""

    @functools.wraps(fetch)
    def fetch_and_mark(source, kind: str, start: pd.Timestamp, end: pd.Timestamp, cursor: str | None = None):
        batch = fetch(source, kind, start, end, cursor)
        if kind in source.kinds and utc(end) > utc(start):
            batch.cursor = read_through(cursor, end)
            batch.covered = (utc(start), utc(end))
        return batch

    return fetch_and_mark


def in_window(stamps: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    return (stamps >= start) & (stamps < end)
