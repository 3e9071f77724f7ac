"""DataFrames to database values and back, vectorised, typed by the warehouse's column types.

Writing: `to_db(frame, table, dialect)` gives a frame of plain values (text, floats, nullable
ints, booleans; timestamps as UTC text in the form each database parses) for the bulk loaders.
Reading: `from_db(rows, columns)` types fetched rows the way `connectors.records.normalise_frame`
does: timestamps `datetime64[ns, UTC]`, text as objects with None for missing, floats float64.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from warehouse.schema import UTCDateTime

# np.datetime_as_string(unit="us") gives "YYYY-MM-DDTHH:MM:SS.ffffff": 26 characters, "T" at index 10.
_ISO_US_WIDTH = 26
_ISO_T_AT = 10


def kind_of(column_type: sa.types.TypeEngine) -> str:
    """timestamp | float | int | bool | text: how a column's values are converted."""
    if isinstance(column_type, UTCDateTime | sa.DateTime):
        return "timestamp"
    if isinstance(column_type, sa.Boolean):
        return "bool"
    if isinstance(column_type, sa.Integer):
        return "int"
    if isinstance(column_type, sa.Float | sa.Numeric):
        return "float"
    return "text"


# --- values in ----------------------------------------------------------------------------


def utc_series(values: Any) -> pd.Series:
    """Timestamps (aware, naive-as-UTC, or ISO text) as a datetime64[ns, UTC] Series."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC").dt.as_unit("ns")
    if pd.api.types.is_datetime64_dtype(series.dtype):
        return series.dt.tz_localize("UTC").dt.as_unit("ns")
    if len(series) == 0:
        return pd.Series([], dtype="datetime64[ns, UTC]", index=series.index)
    return pd.Series(pd.to_datetime(series, utc=True, format="ISO8601"), index=series.index).dt.as_unit("ns")


def timestamp_text(values: pd.Series, dialect: str) -> pd.Series:
    """UTC timestamps as text with microseconds, None for missing.

    SQLite gets SQLAlchemy's own storage format ("YYYY-MM-DD HH:MM:SS.ffffff"), so values written
    here and values bound by SQLAlchemy compare correctly as text; PostgreSQL gets ISO 8601 with Z.
    """
    stamps = utc_series(values)
    missing = stamps.isna().to_numpy()
    naive = stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    if dialect != "sqlite":
        text = np.datetime_as_string(naive, unit="us", timezone="UTC")
    else:
        text = np.datetime_as_string(naive, unit="us").astype(f"<U{_ISO_US_WIDTH}")
        text.view(np.uint32).reshape(-1, _ISO_US_WIDTH)[:, _ISO_T_AT] = ord(" ")  # in place: "T" -> " "
    out = pd.Series(text.astype(object), index=values.index, dtype=object)
    return out.where(~missing, None)


def text_values(values: pd.Series) -> pd.Series:
    """Values as str objects; None for missing and for empty text (the records' convention)."""
    as_text = values.astype("string")
    return as_text.astype(object).where(as_text.notna() & (as_text != ""), None)


def _converted(values: pd.Series, kind: str, dialect: str) -> pd.Series:
    if kind == "timestamp":
        return timestamp_text(values, dialect)
    if kind == "float":
        return pd.to_numeric(values, errors="raise").astype("float64")
    if kind == "int":
        return pd.to_numeric(values, errors="raise").astype("Int64")
    if kind == "bool":
        return values.astype("boolean")
    return text_values(values)


def to_db(frame: pd.DataFrame, columns: Sequence[sa.Column], dialect: str) -> pd.DataFrame:
    """`frame`'s values for `columns` (all must be present), converted for the bulk loaders."""
    return pd.DataFrame(
        {c.name: _converted(frame[c.name], kind_of(c.type), dialect) for c in columns}, index=frame.index
    )


def as_tuples(frame: pd.DataFrame) -> list[tuple]:
    """Rows of Python values with None for every missing one (for DB-API executemany)."""
    plain = frame.astype(object)
    plain = plain.where(frame.notna(), None)
    return list(plain.itertuples(index=False, name=None))


# --- values out ---------------------------------------------------------------------------


def _typed(values: list[Any] | pd.Series, kind: str) -> pd.Series:
    series = pd.Series(values, dtype=object)
    if kind == "timestamp":
        return utc_series(series.where(series.notna(), None)) if len(series) else utc_series([])
    if kind == "float":
        return pd.to_numeric(series).astype("float64")
    if kind == "int":
        numbers = pd.to_numeric(series).astype("Int64")
        return numbers if numbers.isna().any() else numbers.astype("int64")
    if kind == "bool":
        flags = series.astype("boolean")
        return flags if flags.isna().any() else flags.astype(bool)
    return series.where(series.notna(), None)


def from_db(rows: Iterable[Sequence[Any]], columns: Sequence[tuple[str, sa.types.TypeEngine]]) -> pd.DataFrame:
    """Fetched rows as a frame typed by (name, type) pairs, in that column order."""
    rows = list(rows)
    values = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    typed = {name: _typed(list(col), kind_of(type_)) for (name, type_), col in zip(columns, values, strict=True)}
    return pd.DataFrame(typed)
