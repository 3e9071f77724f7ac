"""The review's own records: commentary on KPIs and the action log, and when an action is overdue.

A comment says, for one KPI and review period, what changed, why, and what is recommended. An action
is a decision of the review, for one KPI or one objective, with an owner, a due day (midnight UTC of
that day) and a status from ACTION_STATUSES.
"""

from __future__ import annotations

import pandas as pd

from scoring.periods import utc

COMMENT_COLUMNS = ["kpi_id", "period_start", "comment", "author"]
ACTION_COLUMNS = ["action_id", "kpi_id", "objective_id", "action", "owner", "due", "status"]

ACTION_STATUSES = ("open", "in_progress", "done", "dropped")
OPEN_ACTION_STATUSES = ("open", "in_progress")


def overdue(actions: pd.DataFrame, today: pd.Timestamp) -> pd.Series:
    """True for each action still open (OPEN_ACTION_STATUSES) whose due day is before `today`'s UTC day.

    An action due today is not overdue yet; a done or dropped one never is. `today` may be any instant
    (naive: UTC); only its UTC day counts.
    """
    day = utc(today).normalize()
    due_day = pd.to_datetime(actions["due"], utc=True).dt.normalize()
    late = actions["status"].isin(OPEN_ACTION_STATUSES) & (due_day < day)
    return late.fillna(False).astype(bool).rename("overdue")
