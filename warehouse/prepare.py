"""Checking and shaping the frames callers hand to the warehouse, before anything is written.

Every problem is a WarehouseError that names the table and column, raised before the
transaction starts, so a bad frame writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from connectors.records import KINDS, REJECTED_COLUMNS, SCHEMAS
from warehouse.errors import WarehouseError
from warehouse.frames import text_values, utc_series
from warehouse.schema import FACT_KEY, UTCDateTime


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise WarehouseError(f"unknown record kind '{kind}' (one of {', '.join(KINDS)})")


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise WarehouseError(f"{what}: missing column(s) {', '.join(missing)}")


def _require_values(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    empty = frame[list(columns)].isna().sum()
    empty = empty[empty > 0]
    if len(empty):
        problems = ", ".join(f"{column} ({count} rows)" for column, count in empty.items())
        raise WarehouseError(f"{what}: missing values in required column(s) {problems}")


# --- facts --------------------------------------------------------------------------------


def canonical_columns(kind: str) -> list[str]:
    return [c.name for c in SCHEMAS[kind]]


def fact_rows(kind: str, frame: pd.DataFrame, loaded_at: datetime) -> pd.DataFrame:
    """The canonical columns, `raw` (the extra columns as JSON) and `loaded_at`, one row per key (newest wins).

    A `raw` column in `frame` (as `read_facts(with_raw=True)` returns) is kept for rows without extra values.
    """
    check_kind(kind)
    schema = SCHEMAS[kind]
    _require_columns(frame, [c.name for c in schema if c.required], kind)
    frame = frame.reset_index(drop=True)
    rows = pd.DataFrame(index=frame.index)
    for col in schema:
        rows[col.name] = frame[col.name] if col.name in frame.columns else pd.Series(None, index=frame.index)
    _require_values(rows, [c.name for c in schema if c.required], kind)
    extras = [c for c in frame.columns if c not in rows.columns and c not in ("raw", "loaded_at")]
    rows["raw"] = raw_json(frame[extras])
    if "raw" in frame.columns:  # a frame read back with_raw: keep its raw where no extra column says more
        rows["raw"] = rows["raw"].where(rows["raw"].notna(), text_values(frame["raw"]))
    rows["loaded_at"] = loaded_at
    return newest_per_key(rows)


def raw_json(extras: pd.DataFrame) -> pd.Series:
    """Each row's extra columns as one JSON object (None when it has no extra value at all).

    pandas writes JSON lines in C; JSON escapes every newline inside values, so the text splits
    into exactly one line per row.
    """
    if extras.shape[1] == 0 or len(extras) == 0:
        return pd.Series(None, index=extras.index, dtype=object)
    text = extras.to_json(orient="records", lines=True, date_format="iso", date_unit="us", default_handler=str)
    lines = text.rstrip("\n").split("\n")
    assert len(lines) == len(extras), "one JSON line per row"
    return pd.Series(lines, index=extras.index, dtype=object).where(extras.notna().any(axis=1), None)


def newest_per_key(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (source, source_id): the newest updated_at, undated counting as oldest, ties to the later row.

    The same rule as `connectors.records.normalise_frame`, so a frame it produced is unchanged.
    """
    if not rows.duplicated(list(FACT_KEY)).any():  # the usual case (normalise_frame's output): nothing to sort
        return rows.reset_index(drop=True)
    order = utc_series(rows["updated_at"]).sort_values(kind="stable", na_position="first").index
    newest = rows.loc[order].drop_duplicates(list(FACT_KEY), keep="last")
    return newest.sort_index().reset_index(drop=True)


# --- rejected records ---------------------------------------------------------------------

REJECTED_IDENTITY = ["kind", "source", "source_id", "reason", "payload"]


def rejected_rows(kind: str, rejected: pd.DataFrame, source: str | None, rejected_at: datetime) -> pd.DataFrame:
    """rejected_records rows from a REJECTED_COLUMNS frame, without repeats of one record and reason."""
    check_kind(kind)
    _require_columns(rejected, REJECTED_COLUMNS, f"rejected {kind}")
    rows = pd.DataFrame(
        {
            "kind": kind,
            "source": text_values(rejected["source"]).where(rejected["source"].notna(), source),
            "source_id": text_values(rejected["source_id"]),
            "row": pd.to_numeric(rejected["row"], errors="coerce").astype("Int64"),
            "column_name": text_values(rejected["column"]),
            "reason": text_values(rejected["reason"]),
            "payload": text_values(rejected["payload"]),
            "rejected_at": rejected_at,
        },
        index=rejected.index,
    )
    _require_values(rows, ["reason"], f"rejected {kind}")
    return rows.drop_duplicates(REJECTED_IDENTITY).reset_index(drop=True)


# --- derived tables -----------------------------------------------------------------------


def period_starts(values: Any) -> list[datetime]:
    """Distinct period starts as UTC datetimes (naive input is read as UTC); one value is a list of one."""
    if isinstance(values, str | datetime):
        values = [values]
    try:
        stamps = utc_series(pd.Series(list(values), dtype=object))
    except (TypeError, ValueError) as error:
        raise WarehouseError(f"period_starts: {error}") from None
    if stamps.isna().any():
        raise WarehouseError("period_starts: missing timestamp")
    return [stamp.to_pydatetime() for stamp in stamps.drop_duplicates().sort_values()]


def derived_rows(
    table: sa.Table,
    frame: pd.DataFrame,
    columns: list[str],
    starts: list[datetime],
    computed_at: datetime,
    fixed: dict[str, str],
) -> pd.DataFrame:
    """`frame`'s `columns` plus computed_at, checked against the table's key and the periods replaced.

    `fixed` maps columns to the one value every row must have (e.g. grain, scorecard).
    """
    what = table.name
    _require_columns(frame, columns, what)
    rows = frame[columns].reset_index(drop=True).copy()
    rows["computed_at"] = computed_at
    for column, value in fixed.items():
        stray = rows[column].notna() & (rows[column] != value)
        if stray.any():
            raise WarehouseError(f"{what}: {int(stray.sum())} rows have {column} other than '{value}'")
        rows[column] = value
    key = [c.name for c in table.primary_key.columns]
    _require_values(rows, [c.name for c in table.columns if not c.nullable and c.name in rows], what)
    rows["period_start"] = utc_series(rows["period_start"])
    outside = ~rows["period_start"].isin(pd.DatetimeIndex(starts, tz="UTC") if starts else [])
    if outside.any():
        raise WarehouseError(f"{what}: {int(outside.sum())} rows have a period_start outside the periods replaced")
    repeated = rows.duplicated(key)
    if repeated.any():
        raise WarehouseError(f"{what}: {int(repeated.sum())} rows repeat a key ({', '.join(key)})")
    return rows


# --- the review tables --------------------------------------------------------------------


def review_rows(table: sa.Table, frame: pd.DataFrame, scorecard: str, loaded_at: datetime) -> pd.DataFrame:
    """`frame` (every column of `table` but scorecard and loaded_at) as rows of `table` for `scorecard`, checked:
    required values present, timestamps UTC, no key twice."""
    what = table.name
    columns = [c.name for c in table.columns if c.name not in ("scorecard", "loaded_at")]
    _require_columns(frame, columns, what)
    rows = frame[columns].reset_index(drop=True).copy()
    rows.insert(0, "scorecard", scorecard)
    rows["loaded_at"] = loaded_at
    _require_values(rows, [c.name for c in table.columns if not c.nullable], what)
    for column in table.columns:
        if isinstance(column.type, UTCDateTime) and column.name != "loaded_at":
            rows[column.name] = utc_series(rows[column.name])
    key = [c.name for c in table.primary_key.columns]
    repeated = rows.duplicated(key)
    if repeated.any():
        raise WarehouseError(f"{what}: {int(repeated.sum())} rows repeat a key ({', '.join(key)})")
    return rows
