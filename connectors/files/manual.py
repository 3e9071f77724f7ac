"""The `manual` source: KPI values typed into a spreadsheet (`kpi_id,value[,period]`).

Used for the `manual:<name>` KPIs that no system measures (IT spend, staff satisfaction,
training hours) and for the pilot mode, where a scorecard is scored from a spreadsheet alone.
A values file is small and hand-edited, so any bad line stops the load with a message naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from connectors.files.read import InputFileError
from connectors.records import in_range
from scoring.periods import period_start


def empty_values() -> pd.DataFrame:
    """No KPI values: the typed frame `read_manual_values` returns, without rows."""
    return pd.DataFrame({
        "kpi_id": pd.Series([], dtype=object),
        "period_start": pd.Series([], dtype="datetime64[ns, UTC]"),
        "value": pd.Series([], dtype="float64"),
    })


def read_manual_values(path: str | Path, review_period: str, default_period: pd.Timestamp) -> pd.DataFrame:
    """KPI values as [kpi_id, period_start (UTC), value]; rows without a period get `default_period`.

    `period` may be a month (2026-10), a date (2026-10-01) or an ISO week (2026-W43); it is
    floored to the start of its review period.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"values file not found: {path}")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InputFileError(f"{path}: not a readable CSV of kpi_id,value[,period] ({error})") from None
    missing = {"kpi_id", "value"} - set(raw.columns)
    if missing:
        raise InputFileError(f"{path}: missing column(s) {', '.join(sorted(missing))} (expected kpi_id,value[,period])")
    kpi_ids = raw["kpi_id"].str.strip()
    values = pd.to_numeric(raw["value"].str.strip().str.rstrip("%"), errors="coerce")
    periods = parse_periods(raw["period"] if "period" in raw.columns else pd.Series("", index=raw.index))
    _fail_on_first(path, kpi_ids == "", "kpi_id is empty", raw)
    not_finite = ~np.isfinite(values.astype("float64"))  # NaN, and inf / 1e400, which would score as -inf%
    _fail_on_first(path, not_finite & (raw["value"].str.strip() != ""), "value '{value}' is not a finite number", raw)
    _fail_on_first(path, periods.isna() & _has_period(raw), "period '{period}' is not a month, date or ISO week", raw)
    starts = period_start(periods.fillna(default_period), review_period)
    frame = pd.DataFrame({"kpi_id": kpi_ids, "period_start": starts, "value": values.astype("float64")})
    duplicated = frame.duplicated(["kpi_id", "period_start"], keep="first")
    _fail_on_first(path, duplicated, "a second value for kpi_id '{kpi_id}' in the same period", raw)
    return frame.reset_index(drop=True)


def _has_period(raw: pd.DataFrame) -> pd.Series:
    if "period" not in raw.columns:
        return pd.Series(False, index=raw.index)
    return raw["period"].str.strip() != ""


def parse_periods(text: pd.Series) -> pd.Series:
    """Each text as the UTC instant it names: a month (2026-10), a date or instant (ISO 8601) or an ISO week
    (2026-W43, its Monday); NaT where empty, unreadable or beyond what a timestamp holds. Floor them with
    scoring.periods.period_start."""
    text = text.str.strip()
    weeks = text.str.extract(r"^(\d{4})-?W(\d{2})$")
    week_starts = pd.to_datetime(weeks[0] + "-W" + weeks[1] + "-1", format="%G-W%V-%u", errors="coerce", utc=True)
    dates = pd.to_datetime(text.where(weeks[0].isna()), format="ISO8601", errors="coerce", utc=True)
    # each in range (9999-01: NaT) before they meet: dates read to the nanosecond would not hold a week of 9999
    return in_range(dates).fillna(in_range(week_starts)).where(text != "")


def _fail_on_first(path: Path, bad: pd.Series, message: str, raw: pd.DataFrame) -> None:
    if bad.any():
        position = int(bad.to_numpy().nonzero()[0][0])
        row = raw.iloc[position].to_dict()
        raise InputFileError(f"{path} line {position + 2}: {message.format(**row)}")
