"""kpi_alerts: the escalations of the review period under review (scoring.escalation), recorded in alerts_sent and
posted once to the alert webhook; the `escalations` check fails while that period has any.

Which period: the latest COMPLETE review period by the run's as-of instant (its window's end, capped at now: ended,
and covered from its first day by every source), as the scorecard view picks it (pipelines.views.scorecard
.latest_period); before any period is complete, none. Only
that one period is looked at, so a backfill over two years raises the alerts of its last ended period, not of every
period in it.

Once per transition: an alert already in alerts_sent (key scorecard, kpi_id, period_start, rule) is not posted
again. One that a failed post left undelivered (delivery_error set) is posted again by the next run while it still
stands; one recorded while no webhook was configured is never posted later.
"""

from dataclasses import dataclass, field

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    ResourceParam,
    asset,
)

from connectors.webhook import WebhookError, post_message, slack_payload
from pipelines import clock
from pipelines.assets.scope import SCORECARD_GROUP, Scope, open_scope, window_metadata
from pipelines.partitions import DAILY, SINGLE_RUN
from pipelines.resources import AlertWebhookResource, ProgressReporter, ScorecardConfigResource, WarehouseResource
from pipelines.views.formats import format_number
from pipelines.views.scorecard import latest_period
from scoring.completeness import complete_periods
from scoring.config import ESCALATION_TRIGGERS
from scoring.escalation import ESCALATION_COLUMNS, escalations

ASSET, CHECK = "kpi_alerts", "escalations"
ALERT_KEY = ["kpi_id", "period_start", "rule"]
RETRY_NOTE = "the next run retries"
# What an alert holds between its claim and its post's outcome; if a run dies there, the next run posts it again.
CLAIMED = f"claimed for posting, delivery not confirmed ({RETRY_NOTE})"


def review_period(kpi_scores: pd.DataFrame, as_of: pd.Timestamp) -> pd.Timestamp | None:
    """The period the alerts are about: the latest complete one by `as_of` (latest_period over the complete ones:
    a running or partial period is never alerted on)."""
    complete = kpi_scores["period_start"].isin(complete_periods(kpi_scores)) & (kpi_scores["period_end"] <= as_of)
    return latest_period(kpi_scores[complete], as_of)


def alert_messages(found: pd.DataFrame) -> list[str]:
    """One line per escalation (scoring.escalation's rows of one period, a few per KPI at most): the KPI's name
    and id, what happened, its value with its unit, the target and the owner."""
    return [
        f"{row.kpi_name} ({row.kpi_id}) {_what_happened(row)}: "
        f"{_shown(row.value, row.unit, 'no value')} against target {_shown(row.target, row.unit, 'none')}; "
        f"owner {row.owner if isinstance(row.owner, str) and row.owner else 'not named'}"
        for row in found.itertuples()
    ]


def _what_happened(row) -> str:
    if row.rule == "red":
        was = row.previous_status if isinstance(row.previous_status, str) else "not scored the period before"
        return f"entered red (was {was})"
    if row.rule == "drop":
        return f"fell from {row.previous_status} to {row.status}"
    if row.no_data_periods == 1:
        return "has no data for the review period"
    return f"has had no data for {row.no_data_periods} review periods in a row"


def _shown(number: object, unit: object, missing: str) -> str:
    return missing if pd.isna(number) else format_number(number, unit if isinstance(unit, str) else None)


@dataclass
class AlertOutcome:
    """What one run of kpi_alerts found and did."""

    period: pd.Timestamp | None = None
    standing: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=[*ESCALATION_COLUMNS, "message"]))
    new: int = 0
    webhook: bool = False
    posted: int = 0  # alerts in the post this run made (new ones, and undelivered ones again)
    error: str | None = None  # the one-line reason the post failed, the URL masked

    @property
    def delivered(self) -> int:
        return self.posted if self.error is None else 0

    @property
    def period_text(self) -> str:
        return self.period.strftime("%Y-%m-%d") if self.period is not None else ""


def raise_alerts(scope: Scope, webhook_url: str | None) -> AlertOutcome:
    """Find the review period's escalations, post the ones not posted yet (one message) and record them."""
    name = scope.config.scorecard.name
    kpi_scores = scope.warehouse.read_table("kpi_scores")
    kpi_scores = kpi_scores[kpi_scores["scorecard"] == name]
    period = review_period(kpi_scores, scope.as_of)
    if period is None:
        return AlertOutcome(webhook=webhook_url is not None)
    standing = escalations(kpi_scores, scope.config.scorecard, period)
    standing["message"] = alert_messages(standing)
    due, new = alerts_due(standing, scope.warehouse.read_alerts(name, period), posting=webhook_url is not None)
    outcome = AlertOutcome(period, standing, new=new, webhook=webhook_url is not None)
    now = clock.now()
    due = due.assign(fired_at=due["fired_at"].fillna(now))
    if webhook_url and len(due):
        due = scope.warehouse.claim_alerts(name, due, CLAIMED)  # another run at the same time posts the others
    if webhook_url and len(due):
        title = f"{name}: {len(due)} KPI escalation(s), review period starting {outcome.period_text}"
        outcome.posted, outcome.error = len(due), post_alerts(webhook_url, title, due["message"].tolist())
    delivered_at = now if outcome.delivered else pd.NaT
    scope.warehouse.record_alerts(name, due.assign(delivered_at=delivered_at, delivery_error=outcome.error))
    return outcome


def alerts_due(standing: pd.DataFrame, recorded: pd.DataFrame, posting: bool) -> tuple[pd.DataFrame, int]:
    """The standing escalations to post and record now, with the fired_at of those recorded before: the new ones
    and, when `posting`, those a failed post left undelivered; and how many are new."""
    kept = recorded[[*ALERT_KEY, "fired_at", "delivered_at", "delivery_error"]]
    merged = standing.merge(kept, on=ALERT_KEY, how="left", indicator=True, validate="one_to_one")
    new = merged["_merge"].eq("left_only")
    undelivered = ~new & merged["delivered_at"].isna() & merged["delivery_error"].notna()
    return merged[new | (undelivered & posting)].drop(columns="_merge"), int(new.sum())


def post_alerts(webhook_url: str, title: str, messages: list[str]) -> str | None:
    """Post one message of `messages`; None when the webhook accepted it, else the one-line reason (URL masked)."""
    try:
        post_message(webhook_url, slack_payload(title, messages))
    except WebhookError as failure:
        return str(failure)
    return None


def escalations_check(outcome: AlertOutcome) -> AssetCheckResult:
    """Fails while the review period has escalations (each KPI named, with value, target and owner), and names
    the reason when the post failed."""
    standing = outcome.standing
    counts = {rule: int(standing["rule"].eq(rule).sum()) for rule in ESCALATION_TRIGGERS}
    metadata = {
        "period": outcome.period_text,
        "escalations": len(standing),
        **counts,
        "new": outcome.new,
        "recorded_before": len(standing) - outcome.new,
        "posted": outcome.posted,
        "delivered": outcome.delivered,
        "webhook": "configured" if outcome.webhook else "not configured",
        "delivery_error": outcome.error or "",
    }
    lines = [f"{len(standing)} escalation(s) in the review period starting {outcome.period_text} "
             f"({outcome.new} new):", *standing["message"]]  # fmt: skip
    if outcome.error:
        lines.append(f"not delivered ({RETRY_NOTE}): {outcome.error}")
    return AssetCheckResult(
        check_name=CHECK,
        passed=standing.empty and outcome.error is None,
        severity=AssetCheckSeverity.WARN,
        metadata=metadata,
        description="\n".join(lines) if len(standing) else None,
    )


@asset(
    name=ASSET,
    group_name=SCORECARD_GROUP,
    partitions_def=DAILY,
    backfill_policy=SINGLE_RUN,
    deps=["kpi_scores"],
    check_specs=[AssetCheckSpec(CHECK, asset=ASSET, description="Fails (warning) while the latest complete review "
                                "period has escalations: entered red, fell a band, or no data for N periods.")],
    description="The escalations of the latest complete review period (red, drop, no_data per KPI), "
    "recorded in alerts_sent and posted once to the alert webhook when one is configured.",
)  # fmt: skip
def kpi_alerts(
    context: AssetExecutionContext,
    scorecard: ScorecardConfigResource,
    warehouse: WarehouseResource,
    alert_webhook: AlertWebhookResource,
    progress: ResourceParam[ProgressReporter],
) -> MaterializeResult:
    progress.step_started("alerts")
    with open_scope(context, scorecard, warehouse) as scope:
        outcome = raise_alerts(scope, alert_webhook.resolve_url(scope.config))
    progress.step_done("alerts", escalations=len(outcome.standing), new=outcome.new)
    metadata = {"period": outcome.period_text, "escalations": len(outcome.standing), "new": outcome.new,
                "posted": outcome.posted, **window_metadata(scope)}  # fmt: skip
    return MaterializeResult(metadata=metadata, check_results=[escalations_check(outcome)])
