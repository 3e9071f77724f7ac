"""Which periods the loaded data covers: complete, partial or still running (README "Complete periods").

A *feed* is one record kind of one configured source; its *coverage* is the union of the windows it has read
(half-open UTC intervals, as `sync_state.covered` keeps them). The data covers an instant when every feed does.
A period is **complete** when it has ended by the as-of instant and the common coverage holds all of it, from its
first day; otherwise the rows of that period say what they cover: `data_from` (the first instant covered) and
`data_to` (the end of what is covered: the as-of instant while the period runs).

Pure: DataFrames and timestamps in, DataFrames out.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from scoring.intervals import merge_intervals

COMPLETENESS_COLUMNS = ["complete", "data_from", "data_to"]
_UTC_NS = "datetime64[ns, UTC]"


def intervals_frame(starts: object = (), ends: object = ()) -> pd.DataFrame:
    """Intervals as a frame of UTC `start`, `end` columns."""
    return pd.DataFrame({"start": pd.to_datetime(pd.Series(starts, dtype=object), utc=True).astype(_UTC_NS),
                         "end": pd.to_datetime(pd.Series(ends, dtype=object), utc=True).astype(_UTC_NS)})  # fmt: skip


def merged(intervals: pd.DataFrame) -> pd.DataFrame:
    """The union of `intervals`: overlapping or touching ones become one, sorted by start; empty ones dropped."""
    kept = intervals[intervals["end"] > intervals["start"]]
    start, end = _ns(kept["start"]), _ns(kept["end"])
    _, start, end = merge_intervals(np.zeros(len(start), dtype=np.int64), start, end)
    return intervals_frame(pd.to_datetime(start, utc=True), pd.to_datetime(end, utc=True))


def with_window(covered: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """`covered` once the window [start, end) has been read too."""
    return merged(pd.concat([covered, intervals_frame([start], [end])], ignore_index=True))


def common_coverage(feeds: list[pd.DataFrame]) -> pd.DataFrame | None:
    """The instants every feed covers (their intersection); None when there is no feed (nothing to wait for)."""
    if not feeds:
        return None
    common = merged(feeds[0])
    for feed in feeds[1:]:  # one pass per feed: a few sources times four kinds
        pairs = common.merge(merged(feed), how="cross", suffixes=("_a", "_b"))
        starts = pairs[["start_a", "start_b"]].max(axis=1)
        ends = pairs[["end_a", "end_b"]].min(axis=1)
        common = merged(intervals_frame(starts, ends))
    return common


def period_completeness(periods: pd.DataFrame, coverage: pd.DataFrame | None, as_of: pd.Timestamp) -> pd.DataFrame:
    """`periods` (period_start, period_end) with `complete`, `data_from` and `data_to`.

    What a period's figures cover is the latest covered stretch inside it, up to `as_of`: `data_from` is where
    that stretch begins (the period's start when it is covered from its first day), `data_to` where it ends (the
    period's end once covered to it; `as_of` while the period runs). A period nothing covers has neither.
    """
    result = periods.reset_index(drop=True).copy()
    period_start, period_end = _ns(result["period_start"]), _ns(result["period_end"])
    cap = np.minimum(period_end, _ns(pd.Series([as_of]))[0])
    if coverage is None:
        covered_from, covered_to = np.full_like(period_start, np.iinfo(np.int64).min), cap.copy()
        found = cap > period_start
    else:
        starts, ends = _ns(coverage["start"]), _ns(coverage["end"])
        last = np.searchsorted(starts, cap, side="left") - 1  # the last stretch beginning before the cap
        safe = np.clip(last, 0, None)
        found = (last >= 0) & (ends[safe] > period_start) if len(starts) else np.zeros(len(cap), dtype=bool)
        covered_from = np.where(found, starts[safe] if len(starts) else 0, 0)
        covered_to = np.where(found, ends[safe] if len(ends) else 0, 0)
    data_from = np.maximum(period_start, covered_from)
    data_to = np.minimum(cap, covered_to)
    result["complete"] = found & (period_end <= cap) & (covered_from <= period_start) & (covered_to >= period_end)
    result["data_from"] = _stamps(np.where(found, data_from, np.iinfo(np.int64).min))
    result["data_to"] = _stamps(np.where(found, data_to, np.iinfo(np.int64).min))
    return result


def with_completeness(rows: pd.DataFrame, completeness: pd.DataFrame) -> pd.DataFrame:
    """`rows` with their period's COMPLETENESS_COLUMNS (from period_completeness), matched on period_start."""
    table = completeness[["period_start", *COMPLETENESS_COLUMNS]]
    return rows.drop(columns=COMPLETENESS_COLUMNS, errors="ignore").merge(table, on="period_start", how="left")


def complete_periods(rows: pd.DataFrame) -> pd.DatetimeIndex:
    """The period starts of `rows` not marked incomplete: rows that do not say (no `complete` column, or empty:
    scored from a file, or written by something else) count as complete, as they did before completeness."""
    if "complete" not in rows.columns:
        return pd.DatetimeIndex(rows["period_start"].unique())
    marked_incomplete = rows["complete"].eq(False).fillna(False).astype(bool)
    return pd.DatetimeIndex(rows.loc[~marked_incomplete, "period_start"].unique())


def coverage_text(covered: pd.DataFrame) -> str:
    """`covered` as stored in sync_state.covered: a JSON list of [start, end] ISO 8601 UTC pairs."""
    pairs = [[start.isoformat(), end.isoformat()] for start, end in zip(covered["start"], covered["end"], strict=True)]
    return json.dumps(pairs)


def coverage_from_text(text: str | None) -> pd.DataFrame:
    """sync_state.covered back as intervals (nothing read yet: none; unreadable text: none, so it is read again)."""
    try:
        pairs = json.loads(text) if text else []
        return merged(intervals_frame([p[0] for p in pairs], [p[1] for p in pairs]))
    except (ValueError, TypeError, IndexError, KeyError):
        return intervals_frame()


def _ns(stamps: pd.Series) -> np.ndarray:
    index = pd.DatetimeIndex(stamps)
    index = index.tz_convert("UTC").tz_localize(None) if index.tz is not None else index
    return index.as_unit("ns").asi8


def _stamps(values: np.ndarray) -> pd.Series:
    """int64 nanoseconds as UTC timestamps (int64 min, numpy's NaT, is none)."""
    return pd.Series(pd.to_datetime(values, utc=True).as_unit("ns"))
