"""How figures read, the same in the terminal and in the HTML report: numbers with their unit, fractions as
percentages, and a mark beside every status and trend word (colour is never the only signal).

`format_number` is the one place a figure meets its unit: every value, limit and change printed goes through it.
"""

from __future__ import annotations

import math

STATUS_MARKS = {"blue": "◆", "green": "●", "amber": "▲", "red": "■", "no_data": "·"}
TREND_MARKS = {"improving": "↑", "worsening": "↓", "flat": "→"}
MISSING = "—"
UNIT_SPACE = "\u00a0"  # no line break between a number and its unit ("15,000.00 EUR" never splits)
# What follows the number, per unit; any other unit (EUR, days, tickets) follows it after UNIT_SPACE. A count or
# a score has no unit to print: the KPI's name says what is counted or scored.
UNIT_SUFFIXES = {"percent": "%", "hours": f"{UNIT_SPACE}h", "per_day": "/day", "count": "", "score": ""}


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_number(value: object, unit: str | None = None) -> str:
    """`value` with its unit, e.g. "109.00%", "2.50 h", "15,000.00 EUR", "436"; "—" for no value."""
    if _missing(value):
        return MISSING
    number = float(value)
    text = f"{number:,.0f}" if unit == "count" and number.is_integer() else f"{number:,.2f}"
    return text + (UNIT_SUFFIXES.get(unit, UNIT_SPACE + unit) if unit else "")


def format_fraction(value: object) -> str:
    if _missing(value):
        return MISSING
    return f"{float(value) * 100:.1f}%"


def status_word(status: str | None) -> str:
    """The status with its mark, e.g. "■ red"; a missing status reads as no_data."""
    status = status if isinstance(status, str) and status else "no_data"
    return f"{STATUS_MARKS.get(status, '')} {status}"


def trend_text(trend: str | None, change: float, unit: str) -> str:
    """The trend word with its mark and the change in the KPI's unit, e.g. "↓ worsening (+208.00 EUR)"."""
    if not isinstance(trend, str):
        return ""
    sign = "+" if change > 0 else ""
    return f"{TREND_MARKS.get(trend, '')} {trend} ({sign}{format_number(change, unit)})"
