"""Vectorised interval arithmetic for the metric engine: union per group, split at period boundaries.

Intervals are half-open [start, end) over int64 nanoseconds; groups are integer codes (services).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def merge_intervals(group: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, ...]:
    """Union of intervals per group: overlapping or touching intervals become one.

    Returns (group, start, end) of the merged intervals, sorted by group then start.
    """
    if len(start) == 0:
        return group[:0], start[:0], end[:0]
    order = np.lexsort((start, group))
    group, start, end = group[order], start[order], end[order]
    # The furthest end reached so far within the group: an interval starting after it begins a new run.
    reach = pd.Series(end).groupby(group).cummax().to_numpy()
    begins = np.ones(len(start), dtype=bool)
    begins[1:] = (group[1:] != group[:-1]) | (start[1:] > reach[:-1])
    firsts = np.flatnonzero(begins)
    return group[firsts], start[firsts], np.maximum.reduceat(end, firsts)


def spread_over_periods(
    start: np.ndarray, end: np.ndarray, period_starts: np.ndarray, period_ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut intervals at period boundaries: one piece per (interval, period) they overlap.

    Periods are contiguous and sorted. Returns (interval index, period index, overlap in ns) per
    piece; parts outside the periods are dropped. An empty interval [t, t) yields one piece of
    length 0 in the period holding t, so a zero-length outage is still seen there.
    """
    first = np.searchsorted(period_ends, start, side="right")
    last = np.searchsorted(period_starts, np.maximum(end, start + 1), side="left") - 1
    pieces = np.clip(last - first + 1, 0, None)
    interval = np.repeat(np.arange(len(start)), pieces)
    # Position of each piece within its interval: 0, 1, ... pieces-1.
    offsets = np.arange(len(interval)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    period = first[interval] + offsets
    overlap = np.minimum(end[interval], period_ends[period]) - np.maximum(start[interval], period_starts[period])
    return interval, period, np.clip(overlap, 0, None)
