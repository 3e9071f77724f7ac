"""What a window of updated records touches: the one rule for "updated in the window" and the periods
whose metrics and scores a run recomputes (pure functions over DataFrames).
"""

import numpy as np
import pandas as pd

from connectors.base import in_window, record_times
from connectors.services import UNMAPPED
from pipelines.config import Config
from pipelines.derive import derive
from scoring.periods import period_table, shift_periods, utc

METRIC_GRAINS = ("week", "month")  # plus the scorecard's review period

# The span of time a record's metrics depend on: (start column, end column or None).
EVENT_SPANS: dict[str, tuple[str, str | None]] = {
    "incidents": ("opened_at", "resolved_at"),  # an open incident runs to the window's end
    "changes": ("implemented_at", None),
    "deployments": ("deployed_at", None),
    "pull_requests": ("merged_at", None),
}


def record_spans(updated: dict[str, pd.DataFrame], window_end: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """(start, last instant) of every updated record's event span, as UTC datetime64[ns]; undated records skipped."""
    starts, lasts = [], []
    for kind, frame in updated.items():
        start_column, end_column = EVENT_SPANS[kind]
        if start_column not in frame.columns or frame.empty:
            continue
        start = pd.to_datetime(frame[start_column], utc=True)
        last = start
        if end_column is not None and end_column in frame.columns:
            last = pd.to_datetime(frame[end_column], utc=True).fillna(window_end - pd.Timedelta(1, "ns"))
        dated = start.notna().to_numpy()
        starts.append(_naive(start[dated]))
        lasts.append(np.maximum(_naive(start[dated]), _naive(last[dated])))
    if not starts:
        return np.array([], dtype="datetime64[ns]"), np.array([], dtype="datetime64[ns]")
    return np.concatenate(starts), np.concatenate(lasts)


def touched_periods(
    updated: dict[str, pd.DataFrame],
    grain: str,
    window_start: pd.Timestamp,
    window_end: pd.Timestamp,
    now: pd.Timestamp | None = None,
) -> pd.DatetimeIndex:
    """Starts (UTC) of the `grain` periods the window itself and the updated records' event spans overlap.

    Spans are cut at `now` (default: no cut): periods that have not begun have no events to count.
    """
    starts, lasts = record_spans(updated, window_end)
    if now is not None:
        cut = _naive(pd.Series([max(utc(now), window_end)]))[0]
        begun = starts < cut
        starts, lasts = starts[begun], np.minimum(lasts[begun], cut)
    starts = np.append(starts, _naive(pd.Series([window_start]))).astype("datetime64[ns]")
    lasts = np.append(lasts, _naive(pd.Series([window_end - pd.Timedelta(1, "ns")]))).astype("datetime64[ns]")
    table = period_table(pd.Timestamp(starts.min(), tz="UTC"), pd.Timestamp(lasts.max(), tz="UTC")
                         + pd.Timedelta(1, "ns"), grain)  # fmt: skip
    period_starts = _naive(table["period_start"])
    first = np.searchsorted(period_starts, starts, side="right") - 1
    after = np.searchsorted(period_starts, lasts, side="right")
    size = len(period_starts) + 1
    covered = np.cumsum(np.bincount(first, minlength=size) - np.bincount(after, minlength=size))[:-1] > 0
    return pd.DatetimeIndex(table["period_start"][covered])


def next_periods(periods: pd.DatetimeIndex, grain: str, count: int = 1) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(shift_periods(_naive(pd.Series(periods)), grain, count)).tz_localize("UTC")


def periods_to_score(touched: pd.DatetimeIndex, grain: str, now: pd.Timestamp) -> pd.DatetimeIndex:
    """The touched review periods and the period after each (its trend compares with them), if it has begun."""
    following = next_periods(touched, grain)
    return touched.union(following[following <= now])


def _naive(stamps: pd.Series) -> np.ndarray:
    index = pd.DatetimeIndex(stamps)
    return (index.tz_convert("UTC").tz_localize(None) if index.tz is not None else index).as_unit("ns").to_numpy()


def metric_grains(config: Config) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*METRIC_GRAINS, config.scorecard.review_period)))


def updated_records(facts: dict[str, pd.DataFrame], start: pd.Timestamp, end: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The fact rows whose updated_at (else event time) falls in [start, end)."""
    return {kind: frame[in_window(record_times(frame, kind), start, end)] for kind, frame in facts.items()}


def derive_touched(
    facts: dict[str, pd.DataFrame], config: Config, grain: str, periods: pd.DatetimeIndex, now: pd.Timestamp
) -> pd.DataFrame:
    """metric_values rows of `grain` for exactly `periods`, derived from all facts as they stand at `now`.

    Records of no configured service (service `unmapped`) are kept in the facts but stay out of the metrics.
    """
    start = periods.min()
    end = next_periods(periods[-1:], grain)[0]
    mapped = {kind: frame[frame["service"] != UNMAPPED] for kind, frame in facts.items()}
    values = derive(mapped, grain=grain, start=start, end=end, as_of=min(now, end), config=config)
    return values[values["period_start"].isin(periods)].reset_index(drop=True)


def review_period_values(metric_values: pd.DataFrame, grain: str, periods: pd.DatetimeIndex) -> pd.DataFrame:
    """Stored metric_values rows of the review period's grain in `periods`."""
    rows = metric_values[metric_values["grain"] == grain].copy()
    rows["period_start"] = pd.to_datetime(rows["period_start"], utc=True)
    return rows[rows["period_start"].isin(periods)]
