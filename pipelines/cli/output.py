"""Machine-readable output: rows as JSON-ready dicts, JSON and CSV text."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable

import pandas as pd

FRACTION_DECIMALS = 4


def _iso(value: object) -> object:
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def records(frame: pd.DataFrame, columns: Iterable[str], fractions: Iterable[str] = ()) -> list[dict]:
    """Rows as JSON-ready dicts: timestamps ISO 8601 UTC, NaN as None, fractions rounded."""
    subset = frame[list(columns)].copy()
    for name in fractions:
        subset[name] = subset[name].round(FRACTION_DECIMALS)
    subset = subset.astype(object).where(subset.notna(), None)
    return [{key: _iso(value) for key, value in row.items()} for row in subset.to_dict("records")]


def to_json(payload: object) -> str:
    return json.dumps(payload, indent=2, default=str)


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()
