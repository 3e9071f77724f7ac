"""The metric dictionary: the one place that says what every derived metric means.

The README's metric table, `scorecard validate`'s list of known metrics and the
warehouse's `metric_dictionary` table are all generated from `METRICS`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd


@dataclass(frozen=True)
class MetricDefinition:
    name: str
    title: str
    definition: str
    unit: str  # hours | percent | count | per_day
    direction: str  # higher_is_better | lower_is_better
    source_fields: str
    dora: bool = False


METRICS: dict[str, MetricDefinition] = {
    m.name: m
    for m in [
        MetricDefinition(
            "deployment_frequency",
            "Deployment frequency",
            "Successful deployments to a production environment (status success, or inactive: superseded by a "
            "newer deployment after succeeding), counted in the period of deployed_at. Null for a service with no "
            "production deployment before the as-of time at all.",
            "count",
            "higher_is_better",
            "deployments.environment, deployments.status, deployments.deployed_at",
            dora=True,
        ),
        MetricDefinition(
            "deployment_frequency_per_day",
            "Deployments per day",
            "deployment_frequency divided by the period's length in days (the elapsed part of a "
            "period that has not ended yet).",
            "per_day",
            "higher_is_better",
            "deployments.environment, deployments.status, deployments.deployed_at",
            dora=True,
        ),
        MetricDefinition(
            "lead_time_for_changes",
            "Lead time for changes",
            "Median hours from a pull request's first commit (created_at when unknown) to the first "
            "successful production deployment of its service at or after its merge; counted in the "
            "period of that deployment. A pull request merged before its service's first recorded "
            "successful production deployment gets no lead time (nothing recorded says when it shipped); "
            "such PRs are counted, not timed (lead_time_untimed_prs).",
            "hours",
            "lower_is_better",
            "pull_requests.first_commit_at, pull_requests.merged_at, deployments.deployed_at",
            dora=True,
        ),
        MetricDefinition(
            "lead_time_untimed_prs",
            "Pull requests without a lead time",
            "Merged pull requests that get no lead time because they were merged before their "
            "service's first recorded successful production deployment (or the service has none yet), "
            "counted in the period of their merge. Null for a service with no pull request merged "
            "before the as-of time at all.",
            "count",
            "lower_is_better",
            "pull_requests.merged_at, deployments.environment, deployments.status, deployments.deployed_at",
        ),
        MetricDefinition(
            "change_failure_rate",
            "Change failure rate",
            "Failed changes / all changes, in percent, counted in the period of the change. The changes "
            "are production deployments with a final status, and implemented change requests that no "
            "such deployment implements: one change is counted once, so a request implemented by "
            "deployments (their change_id is its source_id) is counted as those deployments. A change "
            "failed if its own outcome says so (deployment failure/error; change failed/backed_out, "
            "which fails each deployment implementing it) or an incident is attributed to it. Explicit "
            "beats inferred: an incident's caused_by_change link holds when it names a change "
            "implemented at or before the incident opened, either a production deployment by its "
            "source_id or a change request by its source_id (standing for its latest implementing "
            "deployment at or before the opening, or for itself when it is a change of its own); the "
            "incident, of any severity, is then attributed to that change only. A link naming no "
            "known change, or only changes implemented after the incident opened, does not hold (the "
            "dangling_change_links data-quality check reports it). Any other failure incident goes to "
            "the latest change of its service at or before its opening, if that change is at most "
            "change_failure_window earlier.",
            "percent",
            "lower_is_better",
            "deployments.status, deployments.change_id, changes.outcome, changes.implemented_at, "
            "incidents.caused_by_change, incidents.opened_at",
            dora=True,
        ),
        MetricDefinition(
            "mttr",
            "Mean time to restore",
            "Mean hours of resolved_at - opened_at over failure incidents resolved in the period.",
            "hours",
            "lower_is_better",
            "incidents.severity, incidents.opened_at, incidents.resolved_at",
            dora=True,
        ),
        MetricDefinition(
            "mttr_median",
            "Median time to restore",
            "Median hours of resolved_at - opened_at over failure incidents resolved in the period.",
            "hours",
            "lower_is_better",
            "incidents.severity, incidents.opened_at, incidents.resolved_at",
            dora=True,
        ),
        MetricDefinition(
            "mttr_p90",
            "90th percentile time to restore",
            "90th percentile (linear interpolation) of resolved_at - opened_at hours over failure "
            "incidents resolved in the period.",
            "hours",
            "lower_is_better",
            "incidents.severity, incidents.opened_at, incidents.resolved_at",
        ),
        MetricDefinition(
            "open_failure_incidents",
            "Open failure incidents",
            "Failure incidents opened before the period's end and not resolved by it (the open "
            "incidents MTTR cannot count yet).",
            "count",
            "lower_is_better",
            "incidents.severity, incidents.opened_at, incidents.resolved_at",
        ),
        MetricDefinition(
            "mtbf",
            "Mean time between failures",
            "Per monitored service, (period length - downtime) / outages in hours. Downtime is the "
            "union of failure-incident intervals clipped to the period (an open incident runs to the "
            "period's end or now); an outage is one merged interval, counted in the period where it "
            "begins. Null with sample_size 0 when no outage began, and for a service that is not "
            "monitored. The monitored services are those the config's `services:` maps to an "
            "incident source; when it maps none, those with any incident record (any severity) "
            "opened before the as-of time. The `all` row pools the monitored services: their total "
            "uptime / their total outages.",
            "hours",
            "higher_is_better",
            "incidents.service, incidents.severity, incidents.opened_at, incidents.resolved_at",
        ),
        MetricDefinition(
            "availability",
            "Availability",
            "Per monitored service (as for mtbf), (period length - downtime) / period length in "
            "percent; 100 when a monitored service had no failures; null with sample_size 0 for a "
            "service that is not monitored, whatever incidents it has. sample_size is the number of "
            "outages overlapping the period. The `all` row is the mean over the monitored services "
            "(null when none is).",
            "percent",
            "higher_is_better",
            "incidents.service, incidents.severity, incidents.opened_at, incidents.resolved_at",
        ),
        MetricDefinition(
            "failed_deployment_recovery_time",
            "Failed deployment recovery time",
            "Median hours from a failed change (as decided for change_failure_rate, so a failed "
            "request counts once per deployment implementing it) to its recovery: the latest "
            "resolution of the incidents attributed to it (none while one is open; never before the "
            "change, as a link holds only for a change implemented by the incident's opening), or "
            "else the service's next successful production deployment that has not failed by its "
            "own outcome (one implementing a failed/backed_out request recovers nothing); counted "
            "in the period of the recovery.",
            "hours",
            "lower_is_better",
            "deployments, changes, incidents.caused_by_change, incidents.resolved_at",
            dora=True,
        ),
        MetricDefinition(
            "deployment_rework_rate",
            "Deployment rework rate",
            "Share (percent) of production deployments with a final status that were unplanned: "
            "made while a failure incident of the same service was open, or implementing an "
            "emergency change (deployment change_id naming an emergency change request).",
            "percent",
            "lower_is_better",
            "deployments.deployed_at, deployments.change_id, changes.type, incidents.opened_at",
            dora=True,
        ),
    ]
}

MANUAL_PREFIX = "manual:"


def is_known_metric(name: str) -> bool:
    """A metric a KPI may name: a derived one, or `manual:<name>` loaded from a values CSV."""
    if name.startswith(MANUAL_PREFIX):
        return bool(name[len(MANUAL_PREFIX):].strip())
    return name in METRICS


def dictionary_frame() -> pd.DataFrame:
    """The dictionary as rows, for the warehouse's `metric_dictionary` table and the README."""
    return pd.DataFrame([asdict(m) for m in METRICS.values()])


def markdown_table() -> str:
    lines = ["| metric | unit | direction | definition |", "| --- | --- | --- | --- |"]
    for m in METRICS.values():
        lines.append(f"| `{m.name}` | {m.unit} | {m.direction.replace('_', ' ')} | {m.definition} |")
    return "\n".join(lines)
