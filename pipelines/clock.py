"""The one clock of the commands and the assets: "now" is $SCORECARD_NOW when set, else the wall clock.

Every default that depends on the day — `run`'s yesterday, `backfill --days`, the partitions that
exist, the data `generate` writes, a run's "as of" cap — reads it here, so a test (or a user who
wants a reproducible run) fixes the day in one place: `SCORECARD_NOW=2026-11-03T02:00:00Z`.

Days and instants given by a user (options, $SCORECARD_NOW) are read strictly here too: a day is
`YYYY-MM-DD`; an instant is a day (its midnight, UTC) or an ISO 8601 time with `Z` or an offset,
never guessed from another spelling or a time without a zone.
"""

from __future__ import annotations

import os
import re
from datetime import date

import pandas as pd

NOW_ENV = "SCORECARD_NOW"
DAY_FORMAT = "YYYY-MM-DD"
INSTANT_FORMAT = f"{DAY_FORMAT}, or an ISO 8601 time with Z or an offset such as 2026-11-03T02:00:00Z"
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})")


class ClockError(ValueError):
    """$SCORECARD_NOW is set to something that is not an instant."""


def now() -> pd.Timestamp:
    """The current instant, UTC (tz-aware)."""
    fixed = os.environ.get(NOW_ENV, "").strip()
    if not fixed:
        return pd.Timestamp.now(tz="UTC")
    stamp = parse_instant(fixed)
    if stamp is None:
        raise ClockError(f"{NOW_ENV}='{fixed}' is not an instant (use {INSTANT_FORMAT})")
    return stamp


def parse_day(text: str) -> pd.Timestamp | None:
    """A day written YYYY-MM-DD, as its midnight UTC; None for any other text or a day no calendar has."""
    if not _DAY.fullmatch(text):
        return None
    return _timestamp(text)


def parse_instant(text: str) -> pd.Timestamp | None:
    """A day (its midnight UTC) or an ISO 8601 time with Z or an offset, in UTC; None for any other text."""
    return _timestamp(text) if _DAY.fullmatch(text) or _INSTANT.fullmatch(text) else None


def _timestamp(text: str) -> pd.Timestamp | None:
    try:
        stamp = pd.Timestamp(text)
    except ValueError:  # 2026-02-30, 25:00
        return None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def midnight() -> pd.Timestamp:
    """The start (00:00 UTC) of the current UTC day."""
    return now().normalize()


def previous_day(at: pd.Timestamp | None = None) -> date:
    """The last complete UTC day before `at` (default: now)."""
    at = now() if at is None else at
    return (at.tz_convert("UTC").normalize() - pd.Timedelta(days=1)).date()
