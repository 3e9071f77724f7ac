"""The scorecard as a person reads it: perspectives → objectives → KPIs for the latest period."""

from __future__ import annotations

import pandas as pd
from rich.table import Table
from rich.text import Text

from pipelines.render import TREND_MARKS, format_fraction, format_number, status_text
from scoring.config import ScorecardConfig
from scoring.scorecard import kpi_table, node_table


def latest_period(kpi_scores: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.Timestamp | None:
    """The period to show: the latest with a value that had ended by `as_of` (a period still running
    holds partial counts), else the latest with a value, else the latest of all."""
    scored = kpi_scores[kpi_scores["value"].notna()]
    ended = scored[scored["period_end"] <= as_of] if as_of is not None else scored.iloc[0:0]
    for candidates in (ended, scored, kpi_scores):
        if len(candidates):
            return candidates["period_start"].max()
    return None


def scorecard_table(kpi_scores: pd.DataFrame, node_scores: pd.DataFrame, as_of: pd.Timestamp | None = None) -> Table:
    period = latest_period(kpi_scores, as_of)
    kpis = kpi_scores[kpi_scores["period_start"] == period]
    nodes = node_scores[node_scores["period_start"] == period]
    scorecard_row = nodes[nodes["node_type"] == "scorecard"]
    title = _title(kpi_scores, scorecard_row, period)
    table = Table(title=title, title_justify="left", show_lines=False, pad_edge=False)
    for header, justify in [("", "left"), ("value", "right"), ("target", "right"), ("perf.", "right"),
                            ("status", "left"), ("trend", "left"), ("DORA", "left"), ("owner", "left")]:
        table.add_column(header, justify=justify, no_wrap=True, min_width=24 if header == "" else None)
    perspectives = nodes[nodes["node_type"] == "perspective"]
    objectives = nodes[nodes["node_type"] == "objective"]
    for perspective in perspectives.itertuples():
        table.add_row(Text(perspective.name, style="bold"), "", "", format_fraction(perspective.score),
                      status_text(perspective.status), "", "", _coverage(perspective.coverage))
        for objective in objectives[objectives["parent_id"] == perspective.node_id].itertuples():
            table.add_row(Text("  " + objective.name, style="italic"), "", "", format_fraction(objective.score),
                          status_text(objective.status), "", "", _coverage(objective.coverage))
            for kpi in kpis[kpis["objective_id"] == objective.node_id].itertuples():
                table.add_row(
                    "    " + kpi.kpi_name + (" (leading)" if kpi.indicator == "leading" else ""),
                    format_number(kpi.value, kpi.unit),
                    format_number(kpi.target, kpi.unit),
                    format_fraction(kpi.performance),
                    status_text(kpi.status),
                    _trend(kpi.trend, kpi.change, kpi.unit),
                    kpi.dora_band or "",
                    kpi.owner or "",
                )
    return table


def _title(kpi_scores: pd.DataFrame, scorecard_row: pd.DataFrame, period: pd.Timestamp | None) -> str:
    name = kpi_scores["scorecard"].iloc[0] if len(kpi_scores) else "Scorecard"
    when = period.strftime("%Y-%m-%d") if period is not None else "no period"
    if scorecard_row.empty:
        return f"{name} — period starting {when}"
    row = scorecard_row.iloc[0]
    return (f"{name} — period starting {when}: score {format_fraction(row['score'])}, "
            f"{row['status']}, coverage {format_fraction(row['coverage'])}")


def _coverage(coverage: float) -> str:
    return "" if pd.isna(coverage) or coverage >= 1 else f"coverage {format_fraction(coverage)}"


def _trend(trend: str | None, change: float, unit: str) -> str:
    if not isinstance(trend, str):
        return ""
    sign = "+" if change > 0 else ""
    return f"{TREND_MARKS.get(trend, '')} {trend} ({sign}{format_number(change, unit)})"


def in_config_order(
    scorecard: ScorecardConfig, kpi_scores: pd.DataFrame, node_scores: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows read back from the warehouse, in the order scoring gives them: by period, then as in the config file."""
    kpi_order = kpi_table(scorecard)[["kpi_id", "order"]]
    node_order = node_table(scorecard)[["node_type", "node_id", "order"]]
    return _sorted_by_order(kpi_scores, kpi_order), _sorted_by_order(node_scores, node_order)


def _sorted_by_order(rows: pd.DataFrame, order: pd.DataFrame) -> pd.DataFrame:
    keys = [column for column in order.columns if column != "order"]
    ranked = rows.merge(order, on=keys, how="left")
    return ranked.sort_values(["period_start", "order"], kind="stable").drop(columns="order").reset_index(drop=True)
