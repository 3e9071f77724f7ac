"""The scorecard view shared by the terminal and the HTML report: which period to show, and rows in the order
of the config file (perspectives → objectives → KPIs).
"""

from __future__ import annotations

import pandas as pd

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
