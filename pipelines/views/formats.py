"""How figures read, the same in the terminal and in the HTML report: numbers with their unit, fractions as
percentages, and a mark beside every status and trend word (colour is never the only signal).
"""

from __future__ import annotations

import math

STATUS_MARKS = {"blue": "◆", "green": "●", "amber": "▲", "red": "■", "no_data": "·"}
TREND_MARKS = {"improving": "↑", "worsening": "↓", "flat": "→"}
MISSING = "—"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_number(value: object, unit: str | None = None) -> str:
    if _missing(value):
        return MISSING
    number = float(value)
    text = f"{number:,.0f}" if unit == "count" and number.is_integer() else f"{number:,.2f}"
    return text + "%" if unit == "percent" else text


def format_fraction(value: object) -> str:
    if _missing(value):
        return MISSING
    return f"{float(value) * 100:.1f}%"


def status_word(status: str | None) -> str:
    """The status with its mark, e.g. "■ red"; a missing status reads as no_data."""
    status = status if isinstance(status, str) and status else "no_data"
    return f"{STATUS_MARKS.get(status, '')} {status}"


def trend_text(trend: str | None, change: float, unit: str) -> str:
    if not isinstance(trend, str):
        return ""
    sign = "+" if change > 0 else ""
    return f"{TREND_MARKS.get(trend, '')} {trend} ({sign}{format_number(change, unit)})"
