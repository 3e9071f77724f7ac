"""The one clock of the commands and the assets: "now" is $SCORECARD_NOW when set, else the wall clock.

Every default that depends on the day — `run`'s yesterday, `backfill --days`, the partitions that
exist, the data `generate` writes, a run's "as of" cap — reads it here, so a test (or a user who
wants a reproducible run) fixes the day in one place: `SCORECARD_NOW=2026-11-03T02:00:00Z`.
"""

from __future__ import annotations

import os
from datetime import date

import pandas as pd

NOW_ENV = "SCORECARD_NOW"


class ClockError(ValueError):
    """$SCORECARD_NOW is set to something that is not an instant."""


def now() -> pd.Timestamp:
    """The current instant, UTC (tz-aware)."""
    fixed = os.environ.get(NOW_ENV, "").strip()
    if not fixed:
        return pd.Timestamp.now(tz="UTC")
    try:
        stamp = pd.Timestamp(fixed)
    except ValueError:
        raise ClockError(f"{NOW_ENV}='{fixed}' is not a date or an ISO 8601 instant") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def midnight() -> pd.Timestamp:
    """The start (00:00 UTC) of the current UTC day."""
    return now().normalize()


def previous_day(at: pd.Timestamp | None = None) -> date:
    """The last complete UTC day before `at` (default: now)."""
    at = now() if at is None else at
    return (at.tz_convert("UTC").normalize() - pd.Timedelta(days=1)).date()
