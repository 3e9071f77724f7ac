"""The scorecard view shared by the terminal and the HTML report: which period to show, and rows in the order
of the config file (perspectives → objectives → KPIs).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from scoring.completeness import complete_periods
from scoring.config import ScorecardConfig
from scoring.scorecard import kpi_table, node_table


def latest_period(kpi_scores: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.Timestamp | None:
    """The period to show: the latest complete one with a value that had ended by `as_of` (README "Complete
    periods"); else the latest with a value that had ended by then (partial); else the latest with a value
    (running); else the latest of all.
    Rows that do not say whether they are complete (scored from a file) count as complete once ended."""
    scored = kpi_scores[kpi_scores["value"].notna()]
    ended = scored[scored["period_end"] <= as_of] if as_of is not None else scored.iloc[0:0]
    complete = ended[ended["period_start"].isin(complete_periods(ended))]
    for candidates in (complete, ended, scored, kpi_scores):
        if len(candidates):
            return candidates["period_start"].max()
    return None


def period_covers(row: Mapping[str, object]) -> str:
    """What a period's figures cover, for a row with period_start, period_end, complete, data_from and data_to:
    "" when complete (or when the row does not say), else "running: 7 of 31 days", "partial: data from
    2026-09-08", or both, or "partial: no data loaded for it"."""
    complete = row.get("complete")
    if complete is None or pd.isna(complete) or bool(complete):
        return ""
    start, end = pd.Timestamp(row["period_start"]), pd.Timestamp(row["period_end"])
    data_from, data_to = row.get("data_from"), row.get("data_to")
    if data_from is None or pd.isna(data_from) or data_to is None or pd.isna(data_to):
        return "partial: no data loaded for it"
    data_from, data_to = pd.Timestamp(data_from), pd.Timestamp(data_to)
    parts = []
    if data_to < end:
        covered = (data_to - data_from) // pd.Timedelta(days=1)
        parts.append(f"running: {covered} of {(end - start).days} days" if data_from == start
                     else f"running: {covered} of {(end - start).days} days, data from {data_from:%Y-%m-%d}")
    elif data_from > start:
        parts.append(f"partial: data from {data_from:%Y-%m-%d}")
    return "; ".join(parts) or "partial"


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
