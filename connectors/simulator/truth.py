"""The truth about a served history: the canonical records a faithful connector makes of what the
simulator serves, and the metrics the engine derives from them.

`truth_rows(history)` maps the vendor objects by the connectors' rules:
- incidents (PagerDuty): source `pagerduty`, source_id the incident id, severity from the priority
  (P1..P5 -> sev1..sev5), else from the urgency (high -> sev2, low -> sev4), status PagerDuty's,
  opened_at = created_at, resolved_at (resolved incidents only), updated_at;
- incidents (ServiceNow): source `servicenow`, source_id the number, severity sev<priority>, status the state's
  word in lower case, opened_at, resolved_at = resolved_at, else closed_at when the state is Resolved/Closed,
  caused_by_change the number of the caused_by change request, service by the name of the cmdb_ci CI, else of
  the business_service CI (servicenow_cis), else `unmapped`;
- incidents (Jira): source `jira`, source_id the key, severity from the priority name (Highest..Lowest ->
  sev1..sev5), status the status name, opened_at = created, resolved_at = resolutiondate, else (status of
  category done) the last changelog transition to a done status (Done, Resolved, Closed, Completed) from one that is
  not, caused_by_change
  the key of the "Causes" link's inwardIssue, service the first component that maps (jira_components), else
  `unmapped`;
- changes (ServiceNow): type, outcome by close code (successful, successful_issues -> successful; unsuccessful ->
  failed; backed_out -> backed_out), implemented_at = work_end, else closed_at when Closed; a Canceled change has
  neither (outcome unknown);
- changes (Jira): type = customfield_10042's value in lower case, outcome by status (Completed/Done/Closed ->
  successful, Failed -> failed, Backed out/Rolled back -> backed_out), implemented_at = resolutiondate, else the
  last transition to a done status, for those statuses only; another status: neither (outcome unknown);
- deployments (GitHub): source `github`, source_id `acme/<service>/<databaseId>`, sha = commitOid,
  deployed_at = the first success status's createdAt (when it went live; not the inactive status GitHub posts once
  a newer deployment succeeds), else latestStatus.createdAt, else createdAt; status = latestStatus.state in lower
  case (queued without a status), change_id the
  payload's `change_request` (a CHG number, or a Jira key for a Jira service), updated_at = updatedAt (which
  GitHub moves with the latest status);
- pull_requests (GitHub, merged only: the connectors ask for states MERGED): source_id
  `acme/<service>#<number>`, first_commit_at = the first commit's authoredDate (its committedDate is the
  same), merge_commit_sha = mergeCommit.oid.
`sources` narrows the truth to some vendors ("github", "pagerduty", "jira", "servicenow"; default all).

`pipelines.truth.write_truth(history, out_dir)` writes `incidents.csv`, `changes.csv`, `deployments.csv`,
`pull_requests.csv` (the canonical columns of connectors.records.SCHEMAS, times ISO 8601 UTC) and `metrics.json`:
what `scorecard metrics --format json` prints for those files with month grain over the served days, as of the
history's end, every service listed and monitored (as a config made from `service_mapping` has it), default metric
settings, records of service `unmapped` left out of the metrics as the pipeline leaves them out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import pandas as pd

from connectors.records import SCHEMAS, empty_frame, normalise
from connectors.services import UNMAPPED
from connectors.simulator.history import (
    JIRA_PRIORITY_BY_SEVERITY,
    JIRA_STATUSES,
    SEVERITY_BY_URGENCY,
    History,
    JiraIssue,
    servicenow_ci,
)
from connectors.simulator.web import iso_z
from scoring.metrics import MetricSettings, derive_metrics

TRUTH_KINDS = ("incidents", "changes", "deployments", "pull_requests")
SOURCES = ("github", "pagerduty", "jira", "servicenow")
SEVERITY_BY_PRIORITY = {f"P{n}": f"sev{n}" for n in range(1, 6)}
# The connectors' default maps (connectors/jira/config.py, connectors/servicenow/config.py), and what the
# simulator's config adds: ServiceNow's backed_out close code.
JIRA_SEVERITY = {name.lower(): severity for severity, name in JIRA_PRIORITY_BY_SEVERITY.items()}
JIRA_OUTCOME_BY_STATUS = {"completed": "successful", "done": "successful", "closed": "successful",
                          "failed": "failed", "backed out": "backed_out", "rolled back": "backed_out"}  # fmt: skip
JIRA_DONE_STATUSES = {"done", "resolved", "closed", "completed"}
JIRA_CAUSED_BY_LINK = "Causes"
SERVICENOW_OUTCOME_BY_CLOSE_CODE = {"successful": "successful", "successful_issues": "successful",
                                    "unsuccessful": "failed", "backed_out": "backed_out"}  # fmt: skip
SERVICENOW_CANCELED_STATES = {"4"}
SERVICENOW_STATE_WORDS = {"1": "new", "2": "in_progress", "3": "on_hold", "6": "resolved", "7": "closed",
                          "8": "canceled"}  # fmt: skip


def _text(moment) -> str:
    return iso_z(moment) if moment is not None else ""


def incident_severity(priority: str | None, urgency: str | None) -> str | None:
    """The severity a connector reads: the priority's, else the urgency's."""
    if priority is not None:
        return SEVERITY_BY_PRIORITY[priority]
    return SEVERITY_BY_URGENCY.get(urgency or "")


def jira_done_at(issue: JiraIssue, done: set[str]):
    """The time of the issue's last changelog transition into a status of category done named in `done`, from one
    not named there (else, with only moves between such statuses, the last of those)."""
    moves = [((item.from_string or "").lower() not in done, h.created) for h in issue.histories for item in h.items
             if item.field == "status" and (item.to_string or "").lower() in done
             and JIRA_STATUSES.get(item.to_string or "", ("", ""))[1] == "done"]  # fmt: skip
    return max(moves)[1] if moves else None


def _jira_rows(history: History, mapping: dict[str, str]) -> tuple[list[dict], list[dict]]:
    incidents, changes = [], []
    for issue in history.jira_issues:
        service = next((mapping[c.lower()] for c in issue.components if c.lower() in mapping), UNMAPPED)
        category = JIRA_STATUSES[issue.status][1]
        if issue.issuetype == "Incident":
            resolved = issue.resolutiondate
            if resolved is None and category == "done":
                resolved = jira_done_at(issue, JIRA_DONE_STATUSES)
            cause = next((link.key for link in issue.links if link.type == JIRA_CAUSED_BY_LINK and link.inward), "")
            incidents.append({
                "source": "jira", "source_id": issue.key, "service": service,
                "severity": JIRA_SEVERITY.get((issue.priority or "").lower(), ""), "title": issue.summary,
                "status": issue.status, "opened_at": _text(issue.created), "resolved_at": _text(resolved),
                "caused_by_change": cause, "updated_at": _text(issue.updated),
            })  # fmt: skip
        else:
            outcome = JIRA_OUTCOME_BY_STATUS.get(issue.status.lower())
            implemented = None
            if outcome is not None:
                implemented = issue.resolutiondate or jira_done_at(issue, JIRA_DONE_STATUSES | set(
                    JIRA_OUTCOME_BY_STATUS))  # fmt: skip
            changes.append({
                "source": "jira", "source_id": issue.key, "service": service,
                "type": (issue.change_type or "").lower(), "implemented_at": _text(implemented),
                "outcome": outcome or "unknown", "updated_at": _text(issue.updated),
            })  # fmt: skip
    return incidents, changes


def _servicenow_rows(history: History, mapping: dict[str, str]) -> tuple[list[dict], list[dict]]:
    names = {ci.sys_id: ci.name for ci in history.servicenow_cis}
    numbers = {change.sys_id: change.number for change in history.servicenow_changes}

    def service(cmdb_ci: str, business_service: str) -> str:
        entity = names.get(cmdb_ci) if cmdb_ci else names.get(business_service)
        return mapping.get((entity or "").lower(), UNMAPPED)

    incidents = []
    for i in history.servicenow_incidents:
        resolved = i.resolved_at or (i.closed_at if i.state in ("6", "7") else None)
        incidents.append({
            "source": "servicenow", "source_id": i.number, "service": service(i.cmdb_ci, i.business_service),
            "severity": f"sev{i.priority}", "title": i.short_description, "status": SERVICENOW_STATE_WORDS[i.state],
            "opened_at": _text(i.opened_at), "resolved_at": _text(resolved),
            "caused_by_change": numbers.get(i.caused_by, ""), "updated_at": _text(i.updated_at),
        })  # fmt: skip
    changes = []
    for c in history.servicenow_changes:
        canceled = c.state in SERVICENOW_CANCELED_STATES
        implemented = None if canceled else c.work_end or (c.closed_at if c.state == "3" else None)
        outcome = "unknown" if canceled or implemented is None else SERVICENOW_OUTCOME_BY_CLOSE_CODE.get(
            c.close_code, "unknown")  # fmt: skip
        changes.append({
            "source": "servicenow", "source_id": c.number, "service": service(c.cmdb_ci, c.business_service),
            "type": c.type, "implemented_at": _text(implemented), "outcome": outcome,
            "updated_at": _text(c.updated_at),
        })  # fmt: skip
    return incidents, changes


def truth_rows(history: History, sources: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
    """Per kind (TRUTH_KINDS), the canonical rows as text (the canonical columns, in SCHEMAS order) of what
    `sources` serve (default: every vendor)."""
    wanted = set(SOURCES if sources is None else sources)
    unknown = wanted - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown source(s) {', '.join(sorted(unknown))}: the simulator serves {', '.join(SOURCES)}")
    incidents, changes = [], []
    if "pagerduty" in wanted:
        incidents += [{
            "source": "pagerduty", "source_id": i.id, "service": history.pagerduty_services[i.service_id],
            "severity": incident_severity(i.priority, i.urgency) or "", "title": i.title, "status": i.status,
            "opened_at": _text(i.created_at), "resolved_at": _text(i.resolved_at if i.status == "resolved" else None),
            "caused_by_change": "", "updated_at": _text(i.updated_at),
        } for i in history.incidents]  # fmt: skip
    if "jira" in wanted:
        components = {s.lower(): s for s, tool in history.itsm_tools.items() if tool == "jira"}
        jira_incidents, jira_changes = _jira_rows(history, components)
        incidents, changes = incidents + jira_incidents, changes + jira_changes
    if "servicenow" in wanted:
        cis = {servicenow_ci(s).lower(): s for s, tool in history.itsm_tools.items() if tool == "servicenow"}
        sn_incidents, sn_changes = _servicenow_rows(history, cis)
        incidents, changes = incidents + sn_incidents, changes + sn_changes
    deployments, pull_requests = [], []
    if "github" in wanted:
        for repo, served in history.deployments.items():
            for d in served:
                latest = d.latest_status
                live = d.went_live or (latest.created_at if latest else d.created_at)
                deployments.append({
                    "source": "github", "source_id": f"{repo}/{d.id}", "service": history.repos[repo],
                    "environment": d.environment, "sha": d.sha, "deployed_at": _text(live),
                    "status": latest.state if latest else "queued",
                    "change_id": json.loads(d.payload).get("change_request", ""),
                    "updated_at": _text(d.updated_at),
                })  # fmt: skip
        pull_requests = [{
            "source": "github", "source_id": f"{repo}#{p.number}", "service": history.repos[repo],
            "created_at": _text(p.created_at),
            "first_commit_at": _text(p.commits[0].authored_at if p.commits else None),
            "merged_at": _text(p.merged_at), "merge_commit_sha": p.merge_commit or "",
            "updated_at": _text(p.updated_at),
        } for repo, served in history.pull_requests.items() for p in served if p.state == "MERGED"]  # fmt: skip
    rows = {"incidents": incidents, "changes": changes, "deployments": deployments, "pull_requests": pull_requests}
    return {kind: pd.DataFrame(rows[kind], columns=[c.name for c in SCHEMAS[kind]], dtype=object) for kind in rows}


def known_services(history: History) -> set[str]:
    """The service names truth records may carry: the history's services and `unmapped`."""
    return {*history.services, UNMAPPED}


def truth_frames(history: History, sources: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
    """Per kind (TRUTH_KINDS), the typed canonical records (`normalise`'s good rows) of what `sources` serve."""
    frames = {}
    for kind, rows in truth_rows(history, sources).items():
        result = normalise(kind, rows, known_services(history))
        if len(result.rejected):
            raise AssertionError(f"truth {kind} rejected: {result.rejected['reason'].tolist()[:3]}")
        frames[kind] = result.good
    return frames


def truth_metrics(
    history: History, frames: dict[str, pd.DataFrame], settings: MetricSettings | None = None
) -> pd.DataFrame:
    """The metric engine on the truth frames: month grain over [start, end), as of the end, every service
    listed and monitored, records of service `unmapped` left out (as pipelines.incremental.derive_touched does)."""
    services = sorted(history.services)
    mapped = {kind: frames[kind] if kind in frames else empty_frame(kind) for kind in TRUTH_KINDS}
    mapped = {kind: frame[frame["service"] != UNMAPPED] for kind, frame in mapped.items()}
    return derive_metrics(
        mapped["incidents"], mapped["changes"], mapped["deployments"], mapped["pull_requests"],
        grain="month", start=pd.Timestamp(history.start), end=pd.Timestamp(history.end),
        as_of=pd.Timestamp(history.end), settings=settings or MetricSettings(), services=services, monitored=services,
    )  # fmt: skip
