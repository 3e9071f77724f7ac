"""Review files for a simulated window (`scorecard simulate --write-config`): commentary on the latest review period
that has ended by the window's end, and an action log with due days around that end — one overdue, one done, one
in progress, one dropped — so a demo's report shows both.

The texts are written for the example scorecard.yaml; any other scorecard gets plainer ones on its first KPI and
objective. Nothing here reads the wall clock: the caller gives the window's end.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scoring.config import ScorecardConfig
from scoring.periods import floor_to_period, shift_periods, utc

# (kpi_id, comment) on the example scorecard's KPIs, for the latest ended review period
EXAMPLE_COMMENTS = [
    ("mttr", "The longest sev1 incidents on payments waited for a manual database failover. Recommend automating "
             "the failover runbook (DEMO-1)."),
    ("availability", "The payments outages took most of the month's error budget. Recommend running payments in two "
                     "zones before the peak season (DEMO-4)."),
    ("change_failure_rate", "Most failed changes were configuration changes made outside the pipeline. Recommend "
                            "routing them through it, with the same checks as code (DEMO-2)."),
    ("it_spend_vs_budget", "Over budget after the unplanned licence true-up; the run rate is back on plan from next "
                           "month. No further action beyond the licence review (DEMO-3, done)."),
]  # fmt: skip
# (id, kpi_id, objective_id, action, days from the window's end to the due day, status)
EXAMPLE_ACTIONS = [
    ("DEMO-1", "mttr", None, "Automate the payments database failover runbook", -10, "open"),
    ("DEMO-2", "change_failure_rate", None, "Route configuration changes through the deployment pipeline", 21,
     "in_progress"),
    ("DEMO-3", None, "spend_within_budget", "Close the licence true-up review and agree next year's baseline", -20,
     "done"),
    ("DEMO-4", "availability", None, "Run payments in two zones before the peak season", 45, "open"),
    ("DEMO-5", "training_hours_per_engineer", None, "Book a cloud certification bootcamp (replaced by the learning "
                                                     "budget per engineer)", -5, "dropped"),
]  # fmt: skip


def latest_ended_period(end: pd.Timestamp, grain: str) -> pd.Timestamp:
    """The start of the latest review period that has ended by `end`."""
    current = floor_to_period(pd.DatetimeIndex([utc(end)]), grain)
    return pd.Timestamp(shift_periods(current, grain, -1)[0], tz="UTC")


def demo_review(scorecard: ScorecardConfig, end: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(comments, actions) as their files hold them: `kpi_id, period, comment, author` and `id, kpi_id,
    objective_id, action, owner, due, status`, dated from `end` (the window's exclusive end, UTC)."""
    owners = _owners(scorecard)
    comments, actions = _texts(scorecard, owners)
    period = latest_ended_period(end, scorecard.review_period).strftime("%Y-%m-%d")
    comment_rows = pd.DataFrame(comments, columns=["kpi_id", "comment"])
    comment_rows = comment_rows.assign(period=period, author=comment_rows["kpi_id"].map(owners))
    action_rows = pd.DataFrame(actions, columns=["id", "kpi_id", "objective_id", "action", "days", "status"])
    target = action_rows["kpi_id"].fillna(action_rows["objective_id"])
    day = utc(end).normalize()
    due = (day + pd.to_timedelta(action_rows["days"], unit="D")).dt.strftime("%Y-%m-%d")
    action_rows = action_rows.assign(owner=target.map(owners), due=due)
    return (comment_rows[["kpi_id", "period", "comment", "author"]],
            action_rows[["id", "kpi_id", "objective_id", "action", "owner", "due", "status"]])  # fmt: skip


def write_demo_review(scorecard: ScorecardConfig, end: pd.Timestamp, folder: Path) -> dict[str, Path]:
    """`demo_review` written as `folder`/comments.csv and `folder`/actions.csv; returns {"comments", "actions"}."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"comments": folder / "comments.csv", "actions": folder / "actions.csv"}
    for frame, path in zip(demo_review(scorecard, end), paths.values(), strict=True):
        frame.to_csv(path, index=False)
    return paths


def _texts(scorecard: ScorecardConfig, owners: dict[str, str]) -> tuple[list, list]:
    """The example's texts when every KPI and objective they name is in `scorecard`, else plain ones."""
    named = {kpi_id for kpi_id, _ in EXAMPLE_COMMENTS} | {a[1] or a[2] for a in EXAMPLE_ACTIONS}
    if named <= owners.keys():
        return EXAMPLE_COMMENTS, EXAMPLE_ACTIONS
    _, objective, kpi = next(scorecard.iter_kpis())
    comments = [(kpi.id, f"Reviewed {kpi.name}: the cause of the latest change is being analysed; see DEMO-1.")]
    actions = [
        ("DEMO-1", kpi.id, None, f"Find the cause of the latest change in {kpi.name}", -10, "open"),
        ("DEMO-2", kpi.id, None, f"Agree a recovery plan for {kpi.name}", 21, "in_progress"),
        ("DEMO-3", None, objective.id, f"Confirm the owners of {objective.name}", -20, "done"),
    ]  # fmt: skip
    return comments, actions


def _owners(scorecard: ScorecardConfig) -> dict[str, str]:
    """Each KPI's and objective's owner (else the scorecard's, else `review-board`), by id."""
    fallback = scorecard.owner or "review-board"
    owners = {objective.id: objective.owner or fallback for _, objective in scorecard.objectives()}
    owners |= {kpi.id: kpi.owner or owners[objective.id] for _, objective, kpi in scorecard.iter_kpis()}
    return owners

