"""Interval arithmetic of the metric engine: union per group and the split at period boundaries."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.intervals import merge_intervals, spread_over_periods

PERIOD_STARTS = np.array([0, 10, 20])
PERIOD_ENDS = np.array([10, 20, 30])


def arrays(*values: list[int]) -> list[np.ndarray]:
    return [np.array(v, dtype=np.int64) for v in values]


def test_merge_joins_overlapping_nested_and_touching_intervals_per_group():
    """Group 0: [0,2) [1,3) [3,4) (touching) [1,2) (nested) -> [0,4); [6,8) stays apart.
    Group 1: [5,6) [6,7) -> [5,7), not joined with group 0's [6,8). Input order does not matter.
    """
    group, start, end = arrays([1, 0, 0, 0, 0, 1, 0], [6, 3, 0, 1, 6, 5, 1], [7, 4, 2, 3, 8, 6, 2])
    merged = merge_intervals(group, start, end)
    assert [list(a) for a in merged] == [[0, 0, 1], [0, 6, 5], [4, 8, 7]]


def test_merge_of_nothing_is_nothing():
    group, start, end = merge_intervals(*arrays([], [], []))
    assert len(group) == len(start) == len(end) == 0


def test_spread_cuts_at_period_boundaries_and_drops_the_outside():
    """Periods [0,10) [10,20) [20,30).
    #0 [5,25) -> 5 in p0, 10 in p1, 5 in p2; #1 [-5,3) -> 3 in p0; #2 [30,40) and #4 [-9,-1) -> nothing;
    #3 [12,12) -> one empty piece in p1 (a zero-length outage is still seen).
    """
    start, end = arrays([5, -5, 30, 12, -9], [25, 3, 40, 12, -1])
    interval, period, overlap = spread_over_periods(start, end, PERIOD_STARTS, PERIOD_ENDS)
    assert list(zip(interval, period, overlap, strict=True)) == [(0, 0, 5), (0, 1, 10), (0, 2, 5), (1, 0, 3), (3, 1, 0)]


def test_spread_of_an_interval_ending_at_a_boundary_stays_in_its_period():
    interval, period, overlap = spread_over_periods(*arrays([10], [20]), PERIOD_STARTS, PERIOD_ENDS)
    assert (list(interval), list(period), list(overlap)) == ([0], [1], [10])


def covered_cells(start: np.ndarray, end: np.ndarray) -> set[int]:
    """Brute-force union: the unit cells [t, t+1) the intervals cover."""
    return {t for s, e in zip(start, end, strict=True) for t in range(s, e)}


intervals = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 30), st.integers(0, 8)), max_size=12
).map(lambda rows: arrays([g for g, _, _ in rows], [s for _, s, _ in rows], [s + n for _, s, n in rows]))


@settings(max_examples=200, deadline=None)
@given(intervals)
def test_merged_union_equals_brute_force_union(rows):
    group, start, end = rows
    merged_group, merged_start, merged_end = merge_intervals(group, start, end)
    for g in range(3):
        mine = merged_group == g
        assert covered_cells(merged_start[mine], merged_end[mine]) == covered_cells(start[group == g], end[group == g])
        assert (merged_end[mine] - merged_start[mine]).sum() == len(covered_cells(start[group == g], end[group == g]))
        assert (merged_start[mine][1:] > merged_end[mine][:-1]).all()


boundaries = st.lists(st.integers(-20, 60), min_size=2, max_size=6, unique=True).map(sorted)


@settings(max_examples=200, deadline=None)
@given(intervals, boundaries)
def test_pieces_sum_to_the_clipped_interval_length(rows, edges):
    _, start, end = rows
    period_starts, period_ends = np.array(edges[:-1]), np.array(edges[1:])
    interval, period, overlap = spread_over_periods(start, end, period_starts, period_ends)
    clipped = np.clip(np.minimum(end, edges[-1]) - np.maximum(start, edges[0]), 0, None)
    assert (np.bincount(interval, overlap, minlength=len(start)) == clipped).all()
    assert (overlap >= 0).all()
    assert (overlap[start[interval] < end[interval]] > 0).all()
    assert (start[interval] < period_ends[period]).all() and (end[interval] >= period_starts[period]).all()
