"""How results are printed: JSON and CSV for machines, rich tables for people.

Rich styles only when stdout is a terminal, so a piped table stays plain text.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

STATUS_STYLES = {"blue": "bold blue", "green": "green", "amber": "yellow", "red": "bold red", "no_data": "dim"}
STATUS_MARKS = {"blue": "◆", "green": "●", "amber": "▲", "red": "■", "no_data": "·"}
TREND_MARKS = {"improving": "↑", "worsening": "↓", "flat": "→"}
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


def format_number(value: object, unit: str | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    number = float(value)
    text = f"{number:,.0f}" if unit == "count" and number.is_integer() else f"{number:,.2f}"
    return text + "%" if unit == "percent" else text


def format_fraction(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value) * 100:.1f}%"


def status_text(status: str | None) -> Text:
    status = status or "no_data"
    return Text(f"{STATUS_MARKS.get(status, '')} {status}", style=STATUS_STYLES.get(status, ""))


def metrics_table(metrics: pd.DataFrame) -> Table:
    table = Table(title="Metrics", title_justify="left", show_lines=False)
    for header, justify in [("metric", "left"), ("service", "left"), ("period", "left"), ("value", "right"),
                            ("unit", "left"), ("n", "right")]:
        table.add_column(header, justify=justify)
    for row in metrics.itertuples():
        table.add_row(row.metric, row.service, row.period_start.strftime("%Y-%m-%d"),
                      format_number(row.value, row.unit), row.unit, str(row.sample_size))
    return table


PIPED_WIDTH = 160  # a piped table goes to a file or a pager, not an 80-column terminal


def print_table(table: Table, console: Console | None = None) -> None:
    if console is None:
        console = Console(soft_wrap=False)
        if not console.is_terminal:
            console = Console(soft_wrap=False, width=PIPED_WIDTH)
    console.print(table)
