"""Reporting periods in UTC: day, ISO week (Monday start) and calendar month."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

Grain = Literal["day", "week", "month"]
GRAINS: tuple[str, ...] = ("day", "week", "month")
_UTC_NS = "datetime64[ns, UTC]"


def _check(grain: str) -> None:
    if grain not in GRAINS:
        raise ValueError(f"grain '{grain}' is not one of {', '.join(GRAINS)}")


def _naive_ns(stamps: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    index = pd.DatetimeIndex(stamps)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.as_unit("ns").to_numpy()


def floor_to_period(stamps: pd.Series | pd.DatetimeIndex, grain: str) -> np.ndarray:
    """Start of the period holding each timestamp, as naive UTC datetime64[ns] (NaT stays NaT)."""
    _check(grain)
    values = _naive_ns(stamps)
    days = values.astype("datetime64[D]")
    if grain == "day":
        starts = days
    elif grain == "month":
        starts = values.astype("datetime64[M]").astype("datetime64[D]")
    else:
        # 1970-01-01 was a Thursday: (days since epoch + 3) % 7 is 0 on Mondays.
        day_numbers = days.astype(np.int64)
        starts = (day_numbers - (day_numbers + 3) % 7).astype("datetime64[D]")
        starts[np.isnat(days)] = np.datetime64("NaT")
    return starts.astype("datetime64[ns]")


def period_start(stamps: pd.Series, grain: str) -> pd.Series:
    """`floor_to_period` as a tz-aware UTC Series aligned with `stamps`."""
    starts = floor_to_period(stamps, grain)
    return pd.Series(starts, index=stamps.index).dt.tz_localize("UTC")


def shift_periods(starts: np.ndarray | pd.Series, grain: str, count: int = 1) -> np.ndarray:
    """Period starts moved `count` periods later (negative: earlier), naive UTC datetime64[ns]."""
    _check(grain)
    values = _naive_ns(pd.Series(starts)) if not isinstance(starts, np.ndarray) else starts.astype("datetime64[ns]")
    if grain == "day":
        return values + np.timedelta64(count, "D")
    if grain == "week":
        return values + np.timedelta64(7 * count, "D")
    months = values.astype("datetime64[M]") + np.timedelta64(count, "M")
    return months.astype("datetime64[ns]")


def period_table(start: pd.Timestamp, end: pd.Timestamp, grain: str) -> pd.DataFrame:
    """Every period that overlaps [start, end): columns period_start, period_end (exclusive), UTC."""
    _check(grain)
    start, end = utc(start), utc(end)
    if end <= start:
        return pd.DataFrame({"period_start": pd.Series([], dtype=_UTC_NS), "period_end": pd.Series([], dtype=_UTC_NS)})
    first = floor_to_period(pd.DatetimeIndex([start]), grain)[0]
    last = floor_to_period(pd.DatetimeIndex([end - pd.Timedelta(1, "ns")]), grain)[0]
    starts = [first]
    while starts[-1] < last:
        starts.append(shift_periods(np.array([starts[-1]]), grain)[0])
    starts_arr = np.array(starts, dtype="datetime64[ns]")
    return pd.DataFrame(
        {
            "period_start": pd.DatetimeIndex(starts_arr).tz_localize("UTC"),
            "period_end": pd.DatetimeIndex(shift_periods(starts_arr, grain)).tz_localize("UTC"),
        }
    )


def utc(value: pd.Timestamp | str) -> pd.Timestamp:
    """A timestamp in UTC; naive input is taken as UTC (for dates typed on a command line)."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
