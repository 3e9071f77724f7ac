"""The truth about a served history: the canonical records a faithful connector makes of what the
simulator serves, and the metrics the engine derives from them.

`truth_rows(history)` maps the vendor objects by the connectors' rules:
- incidents (PagerDuty): source `pagerduty`, source_id the incident id, severity from the priority
  (P1..P5 -> sev1..sev5), else from the urgency (high -> sev2, low -> sev4), status PagerDuty's,
  opened_at = created_at, resolved_at (resolved incidents only), updated_at;
- deployments (GitHub): source `github`, source_id `acme/<service>/<databaseId>`, sha = commitOid,
  deployed_at = latestStatus.createdAt, status = latestStatus.state in lower case, change_id the
  payload's `change_request`, updated_at = updatedAt (which GitHub moves with the latest status);
- pull_requests (GitHub, merged only: the connectors ask for states MERGED): source_id
  `acme/<service>#<number>`, first_commit_at = the first commit's authoredDate (its committedDate is the
  same), merge_commit_sha = mergeCommit.oid.

`pipelines.truth.write_truth(history, out_dir)` writes `incidents.csv`, `deployments.csv`, `pull_requests.csv` (the
canonical columns of connectors.records.SCHEMAS, times ISO 8601 UTC) and `metrics.json`: what
`scorecard metrics --format json` prints for those files with month grain over the served days, as of
the history's end, every service listed and monitored (as a config made from `service_mapping` has
it), default metric settings. Changes are not served, so none are written.
"""

from __future__ import annotations

import json

import pandas as pd

from connectors.records import SCHEMAS, empty_frame, normalise
from connectors.simulator.history import SEVERITY_BY_URGENCY, History
from connectors.simulator.web import iso_z
from scoring.metrics import MetricSettings, derive_metrics

TRUTH_KINDS = ("incidents", "deployments", "pull_requests")
SEVERITY_BY_PRIORITY = {f"P{n}": f"sev{n}" for n in range(1, 6)}


def _text(moment) -> str:
    return iso_z(moment) if moment is not None else ""


def incident_severity(priority: str | None, urgency: str | None) -> str | None:
    """The severity a connector reads: the priority's, else the urgency's."""
    if priority is not None:
        return SEVERITY_BY_PRIORITY[priority]
    return SEVERITY_BY_URGENCY.get(urgency or "")


def truth_rows(history: History) -> dict[str, pd.DataFrame]:
    """Per served kind, the canonical rows as text (the canonical columns, in SCHEMAS order)."""
    incidents = [{
        "source": "pagerduty", "source_id": i.id, "service": history.pagerduty_services[i.service_id],
        "severity": incident_severity(i.priority, i.urgency) or "", "title": i.title, "status": i.status,
        "opened_at": _text(i.created_at), "resolved_at": _text(i.resolved_at if i.status == "resolved" else None),
        "caused_by_change": "", "updated_at": _text(i.updated_at),
    } for i in history.incidents]  # fmt: skip
    deployments = []
    for repo, served in history.deployments.items():
        for d in served:
            latest = d.latest_status
            deployments.append({
                "source": "github", "source_id": f"{repo}/{d.id}", "service": history.repos[repo],
                "environment": d.environment, "sha": d.sha, "deployed_at": _text(latest.created_at),
                "status": latest.state, "change_id": json.loads(d.payload).get("change_request", ""),
                "updated_at": _text(d.updated_at),
            })  # fmt: skip
    pull_requests = [{
        "source": "github", "source_id": f"{repo}#{p.number}", "service": history.repos[repo],
        "created_at": _text(p.created_at), "first_commit_at": _text(p.commits[0].authored_at if p.commits else None),
        "merged_at": _text(p.merged_at), "merge_commit_sha": p.merge_commit or "", "updated_at": _text(p.updated_at),
    } for repo, served in history.pull_requests.items() for p in served if p.state == "MERGED"]  # fmt: skip
    rows = {"incidents": incidents, "deployments": deployments, "pull_requests": pull_requests}
    return {kind: pd.DataFrame(rows[kind], columns=[c.name for c in SCHEMAS[kind]], dtype=object) for kind in rows}


def truth_frames(history: History) -> dict[str, pd.DataFrame]:
    """Per served kind, the typed canonical records (`normalise`'s good rows)."""
    frames = {}
    for kind, rows in truth_rows(history).items():
        result = normalise(kind, rows, set(history.services))
        if len(result.rejected):
            raise AssertionError(f"truth {kind} rejected: {result.rejected['reason'].tolist()[:3]}")
        frames[kind] = result.good
    return frames


def truth_metrics(
    history: History, frames: dict[str, pd.DataFrame], settings: MetricSettings | None = None
) -> pd.DataFrame:
    """The metric engine on the truth frames: month grain over [start, end), as of the end, every service
    listed and monitored."""
    services = sorted(history.services)
    return derive_metrics(
        frames["incidents"], empty_frame("changes"), frames["deployments"], frames["pull_requests"],
        grain="month", start=pd.Timestamp(history.start), end=pd.Timestamp(history.end),
        as_of=pd.Timestamp(history.end), settings=settings or MetricSettings(), services=services, monitored=services,
    )  # fmt: skip
