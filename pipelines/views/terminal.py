"""The scorecard and metrics as rich tables for a person at a terminal.

Rich styles only when stdout is a terminal, so a piped table stays plain text.
"""

from __future__ import annotations

import re

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pipelines.views.formats import format_fraction, format_number, status_word, trend_text
from pipelines.views.scorecard import latest_period, period_covers

# C0 and C1 control characters but tab and newline: an escape sequence in a vendor's text must not reach a terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
STATUS_STYLES = {"blue": "bold blue", "green": "green", "amber": "yellow", "red": "bold red", "no_data": "dim"}
PIPED_WIDTH = 160  # a piped table goes to a file or a pager, not an 80-column terminal


def plain(value: object, style: str = "") -> Text:
    """A value printed literally: no Rich markup read in it (a KPI named `[/x]`, a service named `[link=...]`),
    control characters removed."""
    return Text(_CONTROL.sub("", "" if value is None else str(value)), style=style)


def status_text(status: str | None) -> Text:
    return Text(status_word(status), style=STATUS_STYLES.get(status or "no_data", ""))


def metrics_table(metrics: pd.DataFrame) -> Table:
    table = Table(title="Metrics", title_justify="left", show_lines=False)
    for header, justify in [("metric", "left"), ("service", "left"), ("period", "left"), ("value", "right"),
                            ("unit", "left"), ("n", "right")]:
        table.add_column(header, justify=justify)
    for row in metrics.itertuples():
        table.add_row(*_cells(row.metric, row.service, row.period_start.strftime("%Y-%m-%d"),
                              format_number(row.value, row.unit), row.unit, str(row.sample_size)))
    return table


def print_table(table: Table, console: Console | None = None) -> None:
    if console is None:
        console = Console(soft_wrap=False)
        if not console.is_terminal:
            console = Console(soft_wrap=False, width=PIPED_WIDTH)
    console.print(table)


def scorecard_table(kpi_scores: pd.DataFrame, node_scores: pd.DataFrame, as_of: pd.Timestamp | None = None) -> Table:
    period = latest_period(kpi_scores, as_of)
    kpis = kpi_scores[kpi_scores["period_start"] == period]
    nodes = node_scores[node_scores["period_start"] == period]
    scorecard_row = nodes[nodes["node_type"] == "scorecard"]
    title = _title(kpi_scores, scorecard_row, period)
    table = Table(title=plain(title), title_justify="left", show_lines=False, pad_edge=False)
    for header, justify in [("", "left"), ("value", "right"), ("target", "right"), ("perf.", "right"),
                            ("status", "left"), ("trend", "left"), ("DORA", "left"), ("owner", "left")]:
        table.add_column(header, justify=justify, no_wrap=True, min_width=24 if header == "" else None)
    perspectives = nodes[nodes["node_type"] == "perspective"]
    objectives = nodes[nodes["node_type"] == "objective"]
    for perspective in perspectives.itertuples():
        table.add_row(*_cells(plain(perspective.name, "bold"), "", "", format_fraction(perspective.score),
                              status_text(perspective.status), "", "", _coverage(perspective.coverage)))
        for objective in objectives[objectives["parent_id"] == perspective.node_id].itertuples():
            table.add_row(*_cells(plain("  " + objective.name, "italic"), "", "", format_fraction(objective.score),
                                  status_text(objective.status), "", "", _coverage(objective.coverage)))
            for kpi in kpis[kpis["objective_id"] == objective.node_id].itertuples():
                table.add_row(*_cells(
                    "    " + kpi.kpi_name + (" (leading)" if kpi.indicator == "leading" else ""),
                    format_number(kpi.value, kpi.unit),
                    format_number(kpi.target, kpi.unit),
                    format_fraction(kpi.performance),
                    status_text(kpi.status),
                    trend_text(kpi.trend, kpi.change, kpi.unit),
                    kpi.dora_band or "",
                    kpi.owner or "",
                ))
    return table


def _cells(*cells: str | Text) -> list[Text]:
    """Every cell as plain Text (styled ones kept as they are): a figure's unit or a name from the config or the
    data is never read as markup."""
    return [cell if isinstance(cell, Text) else plain(cell) for cell in cells]


def _title(kpi_scores: pd.DataFrame, scorecard_row: pd.DataFrame, period: pd.Timestamp | None) -> str:
    name = kpi_scores["scorecard"].iloc[0] if len(kpi_scores) else "Scorecard"
    when = period.strftime("%Y-%m-%d") if period is not None else "no period"
    if scorecard_row.empty:
        return f"{name} — period starting {when}"
    row = scorecard_row.iloc[0]
    label = period_covers(row)
    return (f"{name} — period starting {when}{f' ({label})' if label else ''}: score "
            f"{format_fraction(row['score'])}, {row['status']}, coverage {format_fraction(row['coverage'])}")


def _coverage(coverage: float) -> str:
    return "" if pd.isna(coverage) or coverage >= 1 else f"coverage {format_fraction(coverage)}"
