"""Escalation triggers: which KPIs escalate to their owner in a review period, from the KPI scores of every period.

Each rule is a transition, so it fires once, in the period it happens (scoring.config.EscalationRule says which
rules a KPI has; `ScorecardConfig.escalation_for` gives None for a KPI that never escalates):
- `red`: the status is red and the previous period's was not (or there was none: the KPI's first period);
- `drop`: the status fell at least one band (blue > green > amber > red) but not into red, which is `red`'s
  transition; a fall of two bands is one alert;
- `no_data`: the period is exactly the N-th no_data period in a row (N = `no_data_periods`): once per dry spell.

"The previous period" is the KPI's row of the period just before (its period_end is this period's start): after a
gap in a KPI's history there is no previous status, as in its first period. Only complete periods count (rows with
`complete` false are left out): a running or partial period neither fires nor is compared with. Vectorised over
every KPI and period; the only loop walks the three rules.
"""

from __future__ import annotations

import pandas as pd

from scoring.completeness import complete_periods
from scoring.config import ESCALATION_TRIGGERS, ScorecardConfig
from scoring.scorecard import KPI_STATUSES

ESCALATION_COLUMNS = [
    "kpi_id", "kpi_name", "unit", "period_start", "rule", "status", "previous_status", "value", "target", "owner",
    "no_data_periods",
]  # fmt: skip
BANDS = tuple(status for status in KPI_STATUSES if status != "no_data")  # best first
_RANK = {status: rank for rank, status in enumerate(BANDS)}


def rule_table(scorecard: ScorecardConfig) -> pd.DataFrame:
    """One row per KPI that escalates, in file order: kpi_id, a bool column per trigger, no_data_periods, order."""
    rows = []
    for _, _, kpi in scorecard.iter_kpis():
        rule = scorecard.escalation_for(kpi)
        if rule is not None:
            triggers = {trigger: trigger in rule.triggers for trigger in ESCALATION_TRIGGERS}
            rows.append({"kpi_id": kpi.id, **triggers, "no_data_periods": rule.no_data_periods})
    table = pd.DataFrame(rows, columns=["kpi_id", *ESCALATION_TRIGGERS, "no_data_periods"])
    table["order"] = range(len(table))
    return table


def with_transitions(kpi_scores: pd.DataFrame) -> pd.DataFrame:
    """The rows sorted by KPI and period, with `previous_status` (None when the period before has no row) and
    `no_data_run` (how many no_data periods in a row end here; 0 for a scored period)."""
    rows = kpi_scores.sort_values(["kpi_id", "period_start"], kind="stable", ignore_index=True)
    by_kpi = rows.groupby("kpi_id", sort=False)
    follows = by_kpi["period_end"].shift().eq(rows["period_start"])
    previous = by_kpi["status"].shift().where(follows)
    no_data = rows["status"].eq("no_data")
    # A stretch of periods ends where the KPI changes between no_data and scored, or its history has a gap.
    stretch = (~follows | no_data.ne(previous.eq("no_data"))).cumsum()
    run = rows.groupby(stretch).cumcount() + 1
    return rows.assign(previous_status=previous.astype(object).where(previous.notna(), None),
                       no_data_run=run.where(no_data, 0))  # fmt: skip


def fired(rows: pd.DataFrame) -> dict[str, pd.Series]:
    """Per rule, whether it fires on each row of `with_transitions` (with the rule table's no_data_periods)."""
    status, previous = rows["status"], rows["previous_status"]
    fell = status.map(_RANK) > previous.map(_RANK)  # NaN (no_data, no previous) compares False
    return {
        "red": status.eq("red") & previous.ne("red"),
        "drop": fell & status.ne("red"),
        "no_data": rows["no_data_run"].eq(rows["no_data_periods"]),
    }


def escalations(kpi_scores: pd.DataFrame, scorecard: ScorecardConfig, period_start: pd.Timestamp) -> pd.DataFrame:
    """The escalations of the review period starting `period_start` (ESCALATION_COLUMNS, in file order, then rule
    order), from `kpi_scores` of one scorecard over all its periods (the history the rules look back on)."""
    rules = rule_table(scorecard)
    history = kpi_scores[kpi_scores["kpi_id"].isin(rules["kpi_id"])]
    history = history[history["period_start"].isin(complete_periods(history))]
    rows = with_transitions(history).merge(rules, on="kpi_id", validate="many_to_one")
    in_period = rows["period_start"].eq(period_start)
    found = [rows[in_period & rows[rule] & fires].assign(rule=rule, rule_order=order)
             for order, (rule, fires) in enumerate(fired(rows).items())]  # fmt: skip
    result = pd.concat(found, ignore_index=True).sort_values(["order", "rule_order"], kind="stable")
    return result[ESCALATION_COLUMNS].reset_index(drop=True)
