"""kpi_comments and actions: the review's commentary and action log, from the files `review:` names (not
partitioned: every run replaces the scorecard's rows with the files as they are), and the overdue_actions check."""

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetSpec,
    MaterializeResult,
    ResourceParam,
    multi_asset,
)

from pipelines import clock
from pipelines.assets.scope import SCORECARD_GROUP
from pipelines.resources import ProgressReporter, ScorecardConfigResource, WarehouseResource
from scoring.review import ACTION_STATUSES, OPEN_ACTION_STATUSES, overdue

OVERDUE_CHECK = "overdue_actions"


@multi_asset(
    specs=[
        AssetSpec("kpi_comments", group_name=SCORECARD_GROUP,
                  description="Commentary per KPI and review period (review.comments): what changed, why, and what "
                  "is recommended."),
        AssetSpec("actions", group_name=SCORECARD_GROUP,
                  description="The action log (review.actions): decisions for a KPI or an objective, with owner, due "
                  f"day and status ({', '.join(ACTION_STATUSES)})."),
    ],
    check_specs=[AssetCheckSpec(OVERDUE_CHECK, asset="actions", description="Open actions (status "
                                f"{' or '.join(OPEN_ACTION_STATUSES)}) due before today (UTC): each named with its "
                                "owner and due day.")],
)  # fmt: skip
def review_log(
    scorecard: ScorecardConfigResource, warehouse: WarehouseResource, progress: ResourceParam[ProgressReporter]
):
    """Replaces the scorecard's kpi_comments and actions rows with the review files (none configured: no rows)."""
    progress.step_started("review")
    config = scorecard.load()
    scorecard.sources(config)  # the same pre-flight as every asset: nothing is written on a bad setup
    review = scorecard.review(config)
    with warehouse.connect(config) as connected:
        comment_rows, action_rows = connected.replace_review(config.scorecard.name, review.comments, review.actions)
    progress.step_done("review", comments=comment_rows, actions=action_rows)
    now = clock.now()
    late = overdue(review.actions, now)
    yield MaterializeResult(asset_key="kpi_comments", metadata={"rows": comment_rows,
                                                                "file": config.review.comments or ""})  # fmt: skip
    yield MaterializeResult(asset_key="actions", metadata={
        "rows": action_rows, "file": config.review.actions or "", "overdue": int(late.sum()),
        **{status: int((review.actions["status"] == status).sum()) for status in ACTION_STATUSES},
    })  # fmt: skip
    yield overdue_check(review.actions, late, now)


def overdue_check(actions: pd.DataFrame, late: pd.Series, now: pd.Timestamp) -> AssetCheckResult:
    """The overdue_actions result: a warning naming every overdue action, its owner and due day."""
    today = now.tz_convert("UTC").strftime("%Y-%m-%d")
    return AssetCheckResult(
        check_name=OVERDUE_CHECK,
        asset_key="actions",
        passed=not late.any(),
        severity=AssetCheckSeverity.WARN,
        metadata={"open": int(actions["status"].isin(OPEN_ACTION_STATUSES).sum()), "overdue": int(late.sum()),
                  "as_of": today},  # fmt: skip
        description=overdue_text(actions[late], today),
    )


def overdue_text(late: pd.DataFrame, today: str) -> str:
    """`N overdue action(s) as of DAY: ID for KPI-or-OBJECTIVE ("ACTION", owner O, due D); ...`"""
    if late.empty:
        return f"no open action is overdue as of {today}"
    target = late["kpi_id"].fillna(late["objective_id"])
    listed = (late["action_id"] + " for " + target + ' ("' + late["action"] + '", owner ' + late["owner"] + ", due "
              + late["due"].dt.strftime("%Y-%m-%d") + ")")  # fmt: skip
    return f"{len(late)} overdue action(s) as of {today}: " + "; ".join(listed)
