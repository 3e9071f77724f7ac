"""The history the simulator serves: `generate.py`'s records as GitHub, PagerDuty, Jira and ServiceNow hold them.

`build_history(end=..., seed=..., days=..., services=...)` generates the canonical records (no bad rows,
and of each record its latest version only: vendors serve well-formed records, not stale export
copies) and turns them into vendor objects:
- GitHub, repository `acme/<service>`: every deployment (its `databaseId` is generate.py's deployment
  id), created a few seeded minutes before its final status (success, failure, error; in_progress or queued
  for one still running), whose time is the canonical `deployed_at`; a status `in_progress` in between. As
  GitHub's auto_inactive does, when a deployment succeeds, the earlier-created deployments of its repository
  and environment whose state is success get an `inactive` status at that moment, often days after their own
  success; `updatedAt` moves with the latest status, as on GitHub. `History.github_as_of(moment)` is GitHub as
  it stood at an earlier moment (what a nightly run read then). A deployment
  that implements a change request carries `{"change_request": "CHG..."}` as its payload. Every pull
  request, with its commits (the first one's authored and committed dates are the canonical
  `first_commit_at`); unmerged ones are OPEN or CLOSED.
- PagerDuty, service id `pagerduty_service_id(service)`: the incidents whose source is pagerduty, with
  urgency and priority from the severity (sev1 P1/high, sev2 P2/high, sev3 P3/low, sev4 P4/low, sev5
  no priority/low). A seeded share of about NULL_PRIORITY_SHARE of them has no priority, chosen only
  among sev2 and sev4 incidents: a connector that falls back to the urgency (high -> sev2,
  low -> sev4) reads back the same severity.
- The ITSM tool of each service (`itsm_tool`): generate.py's change requests and the incidents it gives to
  ServiceNow belong to it. ServiceNow (table API): incidents and change requests with seeded, stable
  sys_ids, on the service's CI `servicenow_ci(service)` (a row of cmdb_ci; a share of incidents names it
  as business_service only); an incident's caused_by is its change's sys_id. Jira (project OPS, user zone
  Pacific/Auckland): issues OPS-<n>, one sequence for incidents and changes in order of creation, with
  the service's name as component; an incident a change caused links to it ("Causes", the change as the
  incident's inwardIssue); the change type in customfield_10042. JIRA_CHANGELOG_ONLY_SHARE of the
  resolved Jira incidents (rounded, at least one) have no resolutiondate (the resolution is only in the
  changelog), some of them with more than JIRA_EMBEDDED_HISTORIES histories (the status transitions
  buried under later label edits); so do 10% of the implemented Jira changes (short changelogs). A
  tenth of the Jira issues of a service have the components [sandbox, <service>]. A GitHub deployment
  implementing a Jira change names its key in the payload, as incidents' caused_by_change does.
  Change states follow the canonical record: implemented -> Closed (ServiceNow state 3, close code
  successful/successful_issues, unsuccessful, backed_out; 15% without work_end, closed_at then being
  the implementation) or Jira Completed/Done, Failed, Backed out; never implemented -> Canceled.
  ServiceNow incidents are Resolved (6) or Closed (7; a third of those without resolved_at, closed_at
  then being the resolution).
- Entities no service claims: a few ServiceNow incidents on CI "Legacy Billing" (and one with no CI at
  all), a few Jira incidents with component "sandbox" (and one with no component).

The same arguments give the same history; no wall clock is read.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from connectors.records import normalise
from connectors.simulator.generate import (
    GITHUB_ORG,
    INCIDENT_TITLES,
    SERVICES,
    DatasetSpec,
    generate_dataset,
    service_names,
)

DEFAULT_SEED = 7
DEFAULT_DAYS = 180
DEFAULT_SERVICE_COUNT = 10
NULL_PRIORITY_SHARE = 0.15
URGENCY_BY_SEVERITY = {"sev1": "high", "sev2": "high", "sev3": "low", "sev4": "low", "sev5": "low"}
PRIORITY_BY_SEVERITY = {"sev1": "P1", "sev2": "P2", "sev3": "P3", "sev4": "P4"}  # sev5: no priority
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
# What a connector reads without a priority; only these severities may be served without one.
SEVERITY_BY_URGENCY = {"high": "sev2", "low": "sev4"}
PR_TITLES = (
    "Fix flaky retry in client", "Bump dependencies", "Add metrics for cache hits", "Refactor request handler",
    "Tighten input validation", "Speed up startup", "Handle timeouts upstream", "Clean up feature flag",
    "Improve error messages", "Add pagination to listing",
)
STATUS_DESCRIPTIONS = {
    "success": "Deployment finished successfully.", "failure": "Deployment failed.", "error": "Deployment errored.",
    "in_progress": "Deployment started.", "queued": "Deployment queued.", "pending": "Deployment pending.",
    "inactive": "Deployment replaced by a newer one.",
}
FIRST_STATUS_ID = 2_000_000_000
# Jira and ServiceNow
JIRA_PROJECT = "OPS"
JIRA_CHANGE_TYPE_FIELD = "customfield_10042"
JIRA_CHANGELOG_ONLY_SHARE = 0.2  # resolved Jira incidents without a resolutiondate
JIRA_EMBEDDED_HISTORIES = 20  # what the search embeds of an issue's changelog (the most recent)
UNMAPPED_CI = "Legacy Billing"
UNMAPPED_COMPONENT = "sandbox"
# Jira status name -> (id, status category key)
JIRA_STATUSES = {
    "Open": ("1", "new"), "To Do": ("10000", "new"), "In Progress": ("3", "indeterminate"),
    "Waiting for support": ("10010", "indeterminate"), "Implementing": ("10011", "indeterminate"),
    "Resolved": ("5", "done"), "Closed": ("6", "done"), "Done": ("10001", "done"), "Completed": ("10002", "done"),
    "Failed": ("10003", "done"), "Backed out": ("10004", "done"), "Canceled": ("10005", "done"),
}  # fmt: skip
JIRA_PRIORITY_BY_SEVERITY = {"sev1": "Highest", "sev2": "High", "sev3": "Medium", "sev4": "Low", "sev5": "Lowest"}
JIRA_CHANGE_TYPES = {"standard": "Standard", "normal": "Normal", "emergency": "Emergency"}
SERVICENOW_CLOSE_CODES = {"successful": ("successful", "successful_issues"), "failed": ("unsuccessful",),
                          "backed_out": ("backed_out",)}  # fmt: skip


def _names(services: int | Iterable[str]) -> tuple[str, ...]:
    return service_names(services) if isinstance(services, int) else tuple(services)


def github_repo(service: str) -> str:
    """The GitHub repository (owner/name) of a service."""
    return f"{GITHUB_ORG}/{service}"


def _stable_id(text: str) -> str:
    """`P` + 6 uppercase base36 characters from the CRC-32 of `text`."""
    return "P" + np.base_repr(zlib.crc32(text.encode()) % 36**6, 36).zfill(6)


def pagerduty_service_id(service: str) -> str:
    """The PagerDuty service id of a service: stable, derived from its name."""
    return _stable_id(service)


def priority_id(summary: str) -> str:
    """The PagerDuty id of a priority (P1..P5)."""
    return _stable_id(f"priority:{summary}")


def itsm_tool(service: str) -> str:
    """The ITSM tool of a service: "jira" for every third service of `service_names` order (the 3rd, 6th, ...:
    position % 3 == 2), else "servicenow". A name outside that sequence goes by its CRC-32 instead."""
    if service in SERVICES:
        position = SERVICES.index(service)
    elif service.startswith("service-") and service[8:].isdigit() and int(service[8:]) > len(SERVICES):
        position = int(service[8:]) - 1
    else:
        position = zlib.crc32(service.encode())
    return "jira" if position % 3 == 2 else "servicenow"


def servicenow_ci(service: str) -> str:
    """The ServiceNow CI (cmdb_ci name) of a service: "checkout" -> "Checkout Service"."""
    return f"{service.title()} Service"


def service_mapping(services: int | Iterable[str] = DEFAULT_SERVICE_COUNT) -> dict[str, dict[str, list[str]]]:
    """Per service, its names in the simulated vendors, as `services:` in scorecard.yaml takes them:
    `{"checkout": {"github_repos": ["acme/checkout"], "pagerduty_services": ["P1A2B3C"],
    "servicenow_cis": ["Checkout Service"]}, "search": {..., "jira_components": ["search"]}, ...}`
    (`servicenow_cis` or `jira_components`, by `itsm_tool`)."""
    names = _names(services)
    ids = [pagerduty_service_id(name) for name in names]
    if len(set(ids)) != len(ids):
        raise ValueError("two services get the same PagerDuty service id: rename one")
    cis = [servicenow_ci(name).lower() for name in names]
    if len(set(cis)) != len(cis) or UNMAPPED_CI.lower() in cis:
        raise ValueError("two services get the same ServiceNow CI name: rename one")
    if UNMAPPED_COMPONENT in {name.lower() for name in names}:
        raise ValueError(f"a service may not be named {UNMAPPED_COMPONENT!r}: the simulator's unmapped component")
    mapping = {}
    for name, pid in zip(names, ids, strict=True):
        entry = {"github_repos": [github_repo(name)], "pagerduty_services": [pid]}
        if itsm_tool(name) == "jira":
            entry["jira_components"] = [name]
        else:
            entry["servicenow_cis"] = [servicenow_ci(name)]
        mapping[name] = entry
    return mapping


# ---------------------------------------------------------------------------------------------
# Vendor objects


@dataclass(frozen=True)
class DeploymentStatus:
    id: int
    state: str  # GitHub's REST word: success, failure, error, inactive, in_progress, queued, pending
    created_at: datetime
    description: str


@dataclass(frozen=True)
class Deployment:
    id: int  # REST `id`, GraphQL `databaseId`
    repo: str
    service: str
    environment: str
    sha: str
    ref: str
    created_at: datetime
    updated_at: datetime
    payload: str  # a JSON object, as text
    description: str
    statuses: tuple[DeploymentStatus, ...]  # oldest first

    @property
    def latest_status(self) -> DeploymentStatus | None:
        return self.statuses[-1] if self.statuses else None

    @property
    def went_live(self) -> datetime | None:
        """The time of its first success status."""
        return next((status.created_at for status in self.statuses if status.state == "success"), None)

    @property
    def active(self) -> bool:
        """Live: it succeeded and no newer deployment of its repository and environment has (GitHub's ACTIVE)."""
        return self.latest_status is not None and self.latest_status.state == "success"

    def as_of(self, moment: datetime) -> Deployment:
        """The deployment as GitHub showed it at `moment`: its statuses posted before then."""
        statuses = tuple(status for status in self.statuses if status.created_at < moment)
        updated = statuses[-1].created_at if statuses else self.created_at
        return replace(self, statuses=statuses, updated_at=updated)


@dataclass(frozen=True)
class Commit:
    oid: str
    authored_at: datetime
    committed_at: datetime


@dataclass(frozen=True)
class PullRequest:
    repo: str
    service: str
    number: int
    title: str
    state: str  # OPEN, CLOSED, MERGED
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    merged_at: datetime | None
    merge_commit: str | None
    commits: tuple[Commit, ...]  # oldest first
    head_ref: str
    base_ref: str


@dataclass(frozen=True)
class Incident:
    id: str
    number: int
    service: str
    service_id: str
    title: str
    status: str  # triggered, acknowledged, resolved
    urgency: str  # high, low
    priority: str | None  # P1..P5
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    incident_key: str

    @property
    def last_status_change_at(self) -> datetime:
        if self.status == "resolved" and self.resolved_at is not None:
            return self.resolved_at
        return self.updated_at if self.status == "acknowledged" else self.created_at


@dataclass(frozen=True)
class JiraChange:
    """One item of a Jira changelog history."""

    field: str  # "status", "labels"
    from_id: str | None
    from_string: str | None
    to_id: str | None
    to_string: str | None


@dataclass(frozen=True)
class JiraHistory:
    id: str
    created: datetime
    items: tuple[JiraChange, ...]


@dataclass(frozen=True)
class JiraLink:
    id: str
    type: str  # the link type's name: "Causes"
    inward: bool  # True: the other issue is this one's inwardIssue (this issue "is caused by" it)
    key: str  # the other issue's key


@dataclass(frozen=True)
class JiraIssue:
    id: str  # "10001"
    key: str  # "OPS-12"
    issuetype: str  # Incident, Change
    service: str | None  # None: an entity no service claims (or none at all)
    summary: str
    status: str  # a JIRA_STATUSES name
    priority: str | None  # Highest..Lowest (incidents)
    components: tuple[str, ...]
    created: datetime
    updated: datetime
    resolutiondate: datetime | None
    change_type: str | None  # Standard, Normal, Emergency (changes)
    links: tuple[JiraLink, ...]
    histories: tuple[JiraHistory, ...]  # oldest first

    @property
    def number(self) -> int:
        return int(self.key.rsplit("-", 1)[1])


@dataclass(frozen=True)
class ConfigurationItem:
    sys_id: str
    name: str
    service: str | None  # the service whose CI it is; None for UNMAPPED_CI


@dataclass(frozen=True)
class ServiceNowIncident:
    sys_id: str
    number: str  # INC0010001
    service: str | None  # None: an entity no service claims (or none at all)
    short_description: str
    priority: str  # "1".."5"
    state: str  # "1" New, "2" In Progress, "3" On Hold, "6" Resolved, "7" Closed, "8" Canceled
    opened_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    updated_at: datetime
    cmdb_ci: str  # a ConfigurationItem sys_id, or ""
    business_service: str  # a ConfigurationItem sys_id, or ""
    caused_by: str  # a ServiceNowChange sys_id, or ""


@dataclass(frozen=True)
class ServiceNowChange:
    sys_id: str
    number: str  # CHG0030001
    service: str
    short_description: str
    type: str  # standard, normal, emergency
    state: str  # "3" Closed, "4" Canceled
    close_code: str  # successful, successful_issues, unsuccessful, backed_out, or ""
    opened_at: datetime
    work_start: datetime | None
    work_end: datetime | None
    closed_at: datetime | None
    updated_at: datetime
    cmdb_ci: str
    business_service: str


@dataclass(frozen=True)
class History:
    """What the simulator serves; every time is a UTC datetime in [start, end)."""

    seed: int
    start: datetime
    end: datetime
    services: tuple[str, ...]
    deployments: dict[str, tuple[Deployment, ...]]  # per repository, oldest created first
    pull_requests: dict[str, tuple[PullRequest, ...]]  # per repository, by number
    incidents: tuple[Incident, ...]  # oldest created first (PagerDuty)
    jira_issues: tuple[JiraIssue, ...] = ()  # by key number (the order of creation)
    servicenow_incidents: tuple[ServiceNowIncident, ...] = ()  # by number
    servicenow_changes: tuple[ServiceNowChange, ...] = ()  # by number
    servicenow_cis: tuple[ConfigurationItem, ...] = ()  # the services' CIs in service order, then UNMAPPED_CI

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def github_as_of(self, moment: datetime) -> History:
        """This history with GitHub's deployments as they stood at `moment` (those created before it, with the
        statuses posted before it): what a nightly run then read. The other vendors' records are left whole."""
        deployments = {repo: tuple(d.as_of(moment) for d in served if d.created_at < moment)
                       for repo, served in self.deployments.items()}  # fmt: skip
        return replace(self, deployments=deployments)

    @property
    def repos(self) -> dict[str, str]:
        """Repository -> service."""
        return {github_repo(service): service for service in self.services}

    @property
    def pagerduty_services(self) -> dict[str, str]:
        """PagerDuty service id -> service."""
        return {pagerduty_service_id(service): service for service in self.services}

    @property
    def itsm_tools(self) -> dict[str, str]:
        """Service -> its ITSM tool ("jira" or "servicenow")."""
        return {service: itsm_tool(service) for service in self.services}


def build_history(
    *,
    end: pd.Timestamp | str | datetime,
    seed: int = DEFAULT_SEED,
    days: int = DEFAULT_DAYS,
    services: int | Iterable[str] = DEFAULT_SERVICE_COUNT,
) -> History:
    """The served history of `services` (a count: the first of generate.SERVICES; or names) over the `days`
    before `end` (exclusive; naive is UTC: pass today's midnight UTC), from generate.py with `seed`."""
    names = _names(services)
    service_mapping(names)  # the PagerDuty ids must not collide
    spec = DatasetSpec(seed=seed, days=days, end=pd.Timestamp(end), services=names, bad_rows=0)
    raw = generate_dataset(spec)
    typed = {}
    for kind in ("incidents", "changes", "deployments", "pull_requests"):
        result = normalise(kind, raw[kind], set(names))
        if len(result.rejected):  # bad_rows=0: generate.py makes none
            raise AssertionError(f"generated {kind} rejected: {result.rejected['reason'].tolist()[:3]}")
        typed[kind] = result.good
    itsm = _itsm_records(seed, spec.start, spec.end, names, typed["changes"], typed["incidents"])
    keys = itsm.pop("keys")  # generate.py's change numbers of Jira changes -> their Jira keys
    deployments = typed["deployments"].assign(change_id=_relabelled(typed["deployments"]["change_id"], keys))
    return History(
        seed=seed,
        start=spec.start.to_pydatetime(),
        end=spec.end.to_pydatetime(),
        services=names,
        deployments=_by_repo(names, _deployments(seed, deployments)),
        pull_requests=_by_repo(names, _pull_requests(seed, typed["pull_requests"])),
        incidents=tuple(_incidents(seed, typed["incidents"])),
        **itsm,
    )


def _by_repo(services: tuple[str, ...], items: list) -> dict[str, tuple]:
    grouped: dict[str, list] = {github_repo(service): [] for service in services}
    for item in items:
        grouped[item.repo].append(item)
    return {repo: tuple(values) for repo, values in grouped.items()}


def _times(column: pd.Series) -> list[datetime | None]:
    return [None if pd.isna(value) else value.to_pydatetime() for value in column]


def _seconds(values: np.ndarray) -> pd.TimedeltaIndex:
    return pd.to_timedelta(np.round(values), unit="s")


def _hex(rng: np.random.Generator, count: int, size: int = 20) -> list[str]:
    return [row.tobytes().hex() for row in rng.integers(0, 256, size=(count, size), dtype=np.uint8)]


def _deployments(seed: int, frame: pd.DataFrame) -> list[Deployment]:
    frame = frame.assign(db_id=frame["source_id"].astype(np.int64)).sort_values(["deployed_at", "db_id"], kind="stable")
    frame = frame.reset_index(drop=True)
    rng = np.random.default_rng([seed, 40])
    count = len(frame)
    lead = np.round(rng.uniform(60, 480, count))  # created 1..8 minutes before the last status
    started_after = np.round(lead * rng.uniform(0.1, 0.5, count))
    created = _times(frame["deployed_at"] - _seconds(lead))
    started = _times(frame["deployed_at"] - _seconds(lead - started_after))
    deployed = _times(frame["deployed_at"])
    status_ids = FIRST_STATUS_ID + np.cumsum(rng.integers(1, 30, 2 * count)).reshape(count, 2) if count else []
    out = []
    for i, row in enumerate(frame.itertuples(index=False)):
        final = DeploymentStatus(int(status_ids[i][1]), row.status, deployed[i], STATUS_DESCRIPTIONS[row.status])
        if row.status in ("in_progress", "queued", "pending"):
            statuses = (final,)
        else:
            statuses = (DeploymentStatus(int(status_ids[i][0]), "in_progress", started[i],
                                         STATUS_DESCRIPTIONS["in_progress"]), final)  # fmt: skip
        payload = json.dumps({"change_request": row.change_id}) if row.change_id else "{}"
        out.append(Deployment(
            id=int(row.db_id), repo=github_repo(row.service), service=row.service, environment=row.environment,
            sha=row.sha, ref="main", created_at=created[i], updated_at=deployed[i], payload=payload,
            description=f"Deploy {row.sha[:7]} to {row.environment}", statuses=statuses,
        ))  # fmt: skip
    return _auto_inactive(out, int(status_ids[-1][1]) if count else FIRST_STATUS_ID)


def _auto_inactive(deployments: list[Deployment], last_status_id: int) -> list[Deployment]:
    """GitHub's auto_inactive (the default of every success status): when a deployment succeeds, each deployment of
    its repository and environment created before it whose state is success gets an inactive status then, which
    moves its updatedAt. Statuses get ids in the order they are posted, after `last_status_id`."""
    live: dict[tuple[str, str], list[Deployment]] = {}
    superseded: dict[int, datetime] = {}
    for deployment in sorted((d for d in deployments if d.went_live), key=lambda d: (d.went_live, d.id)):
        key = (deployment.repo, deployment.environment)
        prior = [d for d in live.get(key, []) if (d.created_at, d.id) < (deployment.created_at, deployment.id)]
        superseded.update((d.id, deployment.went_live) for d in prior)
        live[key] = [d for d in live.get(key, []) if d not in prior] + [deployment]
    ids = {key: last_status_id + n for n, key in enumerate(sorted(superseded, key=lambda k: (superseded[k], k)), 1)}
    return [replace(d, statuses=(*d.statuses, DeploymentStatus(ids[d.id], "inactive", superseded[d.id],
                                                               STATUS_DESCRIPTIONS["inactive"])),
                    updated_at=superseded[d.id]) if d.id in superseded else d for d in deployments]  # fmt: skip


def _pull_requests(seed: int, frame: pd.DataFrame) -> list[PullRequest]:
    frame = frame.assign(pr_number=frame["source_id"].str.rsplit("#", n=1).str[1].astype(np.int64))
    frame = frame.sort_values(["service", "pr_number"], kind="stable").reset_index(drop=True)
    rng = np.random.default_rng([seed, 41])
    count = len(frame)
    commit_counts = 1 + rng.poisson(1.5, count)
    fractions = rng.uniform(0, 1, int(commit_counts.sum()))
    oids = _hex(rng, int(commit_counts.sum()))
    closed_unmerged = rng.random(count) < 0.3
    titles = rng.choice(np.array(PR_TITLES, dtype=object), size=count)
    created, updated, merged = _times(frame["created_at"]), _times(frame["updated_at"]), _times(frame["merged_at"])
    first_commit = _times(frame["first_commit_at"].fillna(frame["created_at"]))
    out, at = [], 0
    for i, row in enumerate(frame.itertuples(index=False)):
        k = int(commit_counts[i])
        span = (created[i] - first_commit[i]).total_seconds()
        offsets = [0.0] + sorted(round(f * span) for f in fractions[at + 1: at + k])
        commits = tuple(
            Commit(oids[at + j], first_commit[i] + timedelta(seconds=offset),
                   first_commit[i] + timedelta(seconds=offset)) for j, offset in enumerate(offsets)
        )  # fmt: skip
        at += k
        if merged[i] is not None:
            state, closed = "MERGED", merged[i]
        elif closed_unmerged[i]:
            state, closed = "CLOSED", updated[i]
        else:
            state, closed = "OPEN", None
        out.append(PullRequest(
            repo=github_repo(row.service), service=row.service, number=int(row.pr_number), title=str(titles[i]),
            state=state, created_at=created[i], updated_at=updated[i], closed_at=closed, merged_at=merged[i],
            merge_commit=row.merge_commit_sha if merged[i] is not None else None, commits=commits,
            head_ref=f"{row.service}-{int(row.pr_number)}", base_ref="main",
        ))  # fmt: skip
    return out


def _incidents(seed: int, frame: pd.DataFrame) -> list[Incident]:
    frame = frame[frame["source"] == "pagerduty"].sort_values(["opened_at", "source_id"], kind="stable")
    frame = frame.reset_index(drop=True)
    rng = np.random.default_rng([seed, 42])
    count = len(frame)
    first_number = int(rng.integers(1000, 10_000))
    severity = frame["severity"].fillna("").astype(str)
    eligible = severity.isin([s for s, u in URGENCY_BY_SEVERITY.items() if SEVERITY_BY_URGENCY[u] == s]).to_numpy()
    chance = min(1.0, NULL_PRIORITY_SHARE * count / max(int(eligible.sum()), 1))
    no_priority = (eligible & (rng.random(count) < chance)) | ~severity.isin(list(PRIORITY_BY_SEVERITY)).to_numpy()
    keys = _hex(rng, count, 16)
    created, updated, resolved = _times(frame["opened_at"]), _times(frame["updated_at"]), _times(frame["resolved_at"])
    out = []
    for i, row in enumerate(frame.itertuples(index=False)):
        status = str(row.status)
        out.append(Incident(
            id=row.source_id, number=first_number + i, service=row.service,
            service_id=pagerduty_service_id(row.service), title=row.title or "", status=status,
            urgency=URGENCY_BY_SEVERITY.get(severity[i], "low"),
            priority=None if no_priority[i] else PRIORITY_BY_SEVERITY[severity[i]],
            created_at=created[i], updated_at=updated[i] or created[i],
            resolved_at=resolved[i] if status == "resolved" else None, incident_key=keys[i],
        ))  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------
# Jira and ServiceNow


def _sys_id(seed: int, table: str, key: str) -> str:
    """A ServiceNow sys_id (32 hex digits): stable, from the seed, the table and the record's number or name."""
    return hashlib.blake2b(f"{seed}:{table}:{key}".encode(), digest_size=16).hexdigest()


def _relabelled(ids: pd.Series, keys: dict[str, str]) -> pd.Series:
    """`ids` with those `keys` names replaced by their new label (the others, and empty ones, as they are)."""
    mapped = ids.map(keys)
    kept = np.where(mapped.notna().to_numpy(), mapped.to_numpy(dtype=object), ids.to_numpy(dtype=object))
    return pd.Series(kept, index=ids.index, dtype=object)


def _choice(rng: np.random.Generator, options: tuple[str, ...], shares: tuple[float, ...], count: int) -> np.ndarray:
    return rng.choice(np.array(options, dtype=object), size=count, p=list(shares))


def _unmapped_incidents(seed: int, start: pd.Timestamp, end: pd.Timestamp, source: str) -> pd.DataFrame:
    """A few incidents of no service (three resolved ones on the unmapped entity, one open one on none), as
    canonical rows with an `entity` column: UNMAPPED_CI / UNMAPPED_COMPONENT, or "" for none."""
    rng = np.random.default_rng([seed, 61, zlib.crc32(source.encode())])
    span = (end - start).total_seconds()
    opened = np.round(rng.uniform(0.05, 0.85, 3) * span)
    duration = np.round(np.clip(90 * 60 * np.exp(rng.standard_normal(3)), 600, 30 * 3600))
    resolved = np.minimum(opened + duration, span - 3600)
    updated = np.minimum(resolved + np.round(rng.uniform(60, 1800, 3)), span - 1)
    late = max(np.round(span - rng.uniform(1, 10) * 3600), 0.0)  # the open one
    entity = UNMAPPED_CI if source == "servicenow" else UNMAPPED_COMPONENT
    frame = pd.DataFrame({
        "source": source,
        "service": None,
        "severity": rng.choice(["sev2", "sev3", "sev4"], size=4),
        "title": [f"{entity}: {title}" for title in rng.choice(INCIDENT_TITLES, size=4)],
        "opened_at": start + _seconds(np.append(opened, late)),
        "resolved_at": start + _seconds(np.append(resolved, np.nan)),
        "updated_at": start + _seconds(np.append(updated, min(late + 300, span - 1))),
        "caused_by_change": None,
        "entity": [entity] * 3 + [""],
    })  # fmt: skip
    return frame


def _itsm_records(seed: int, start: pd.Timestamp, end: pd.Timestamp, services: tuple[str, ...],
                  changes: pd.DataFrame, incidents: pd.DataFrame) -> dict:  # fmt: skip
    """The History fields of Jira and ServiceNow, and `keys`: generate.py's change numbers of Jira changes ->
    their Jira keys (for the deployments' change_id)."""
    rng = np.random.default_rng([seed, 60])
    jira_services = {s for s in services if itsm_tool(s) == "jira"}
    changes = changes.sort_values("source_id", kind="stable", ignore_index=True)
    incidents = incidents[incidents["source"] == "servicenow"].sort_values("source_id", kind="stable",
                                                                           ignore_index=True)  # fmt: skip
    count = len(changes)
    settled = changes["implemented_at"].notna().to_numpy()
    anchor = changes["implemented_at"].fillna(changes["updated_at"])
    lead = np.where(settled, rng.uniform(1, 48, count) * 3600, rng.uniform(5, 120, count) * 60)
    opened = (anchor - _seconds(lead)).clip(lower=start)
    work_start = pd.concat([opened, changes["implemented_at"] - _seconds(rng.uniform(5, 60, count) * 60)],
                           axis=1).max(axis=1)  # fmt: skip
    changes = changes.assign(opened=opened, work_start=work_start.where(settled), jira=changes["service"].isin(
        jira_services).to_numpy())  # fmt: skip

    sn_unmapped = _unmapped_incidents(seed, start, end, "servicenow")
    jira_unmapped = _unmapped_incidents(seed, start, end, "jira")
    incidents = incidents.assign(jira=incidents["service"].isin(jira_services).to_numpy(), entity=None)
    jira_incidents = pd.concat([incidents[incidents["jira"]], jira_unmapped], ignore_index=True)
    sn_incidents = incidents[~incidents["jira"]]
    last_number = sn_incidents["source_id"].str[3:].astype(int).max() if len(sn_incidents) else 10_000
    sn_unmapped["source_id"] = [f"INC{last_number + 1 + i:07d}" for i in range(len(sn_unmapped))]
    sn_incidents = pd.concat([sn_incidents, sn_unmapped], ignore_index=True)

    # Jira keys: one sequence for incidents and changes, in order of creation.
    jira_changes = changes[changes["jira"]]
    created = pd.concat([jira_changes["opened"], jira_incidents["opened_at"]], ignore_index=True)
    kind = np.r_[np.zeros(len(jira_changes)), np.ones(len(jira_incidents))]
    order = np.lexsort((np.arange(len(created)), kind, created.to_numpy()))
    numbers = np.empty(len(created), dtype=np.int64)
    numbers[order] = int(rng.integers(1, 200)) + np.arange(len(created))
    change_keys = [f"{JIRA_PROJECT}-{n}" for n in numbers[: len(jira_changes)]]
    keys = dict(zip(jira_changes["source_id"], change_keys, strict=True))
    jira_changes = jira_changes.assign(key=change_keys)
    jira_incidents = jira_incidents.assign(key=[f"{JIRA_PROJECT}-{n}" for n in numbers[len(jira_changes):]],
                                           caused_by_change=_relabelled(jira_incidents["caused_by_change"], keys))
    issues = _jira_issues(seed, jira_changes, jira_incidents)
    cis = [ConfigurationItem(_sys_id(seed, "cmdb_ci", servicenow_ci(s)), servicenow_ci(s), s)
           for s in services if s not in jira_services]  # fmt: skip
    cis.append(ConfigurationItem(_sys_id(seed, "cmdb_ci", UNMAPPED_CI), UNMAPPED_CI, None))
    sn_changes = _servicenow_changes(seed, changes[~changes["jira"]], cis)
    return {
        "keys": keys,
        "jira_issues": issues,
        "servicenow_incidents": _servicenow_incidents(seed, sn_incidents, cis, sn_changes),
        "servicenow_changes": sn_changes,
        "servicenow_cis": tuple(cis),
    }


def _share(rng: np.random.Generator, eligible: np.ndarray, share: float) -> np.ndarray:
    """A mask of `share` of the eligible positions (at least one, when any is), drawn by `rng`."""
    chosen = rng.permutation(np.flatnonzero(eligible))
    mask = np.zeros(len(eligible), dtype=bool)
    mask[chosen[: max(1, round(share * len(chosen))) if len(chosen) else 0]] = True
    return mask


def _status(name: str) -> tuple[str, str]:
    return JIRA_STATUSES[name][0], name


def _jira_issues(seed: int, changes: pd.DataFrame, incidents: pd.DataFrame) -> tuple[JiraIssue, ...]:
    rng = np.random.default_rng([seed, 62])
    # Changes: the status follows the outcome; never implemented: Canceled.
    count = len(changes)
    outcome = changes["outcome"].fillna("unknown").to_numpy()
    settled = changes["implemented_at"].notna().to_numpy()
    done_word = _choice(rng, ("Completed", "Done"), (0.8, 0.2), count)
    status = np.select([~settled, outcome == "failed", outcome == "backed_out"], ["Canceled", "Failed", "Backed out"],
                       done_word)  # fmt: skip
    no_resolution = settled & (rng.random(count) < 0.1)
    # Incidents: resolved (most Resolved) or still open; a share resolved in the changelog only.
    n = len(incidents)
    resolved = incidents["resolved_at"].notna().to_numpy()
    words = np.where(resolved, _choice(rng, ("Resolved", "Done", "Closed"), (0.75, 0.15, 0.1), n), "In Progress")
    # Exactly the share (at least one) of the resolved ones; of those, 40% (at least one, not all) cut short.
    chosen = rng.permutation(np.flatnonzero(resolved))
    count_only = max(1, round(JIRA_CHANGELOG_ONLY_SHARE * len(chosen))) if len(chosen) else 0
    count_long = min(max(1, round(0.4 * count_only)), max(count_only - 1, 1)) if count_only else 0
    changelog_only, long = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    changelog_only[chosen[:count_only]] = True
    long[chosen[:count_long]] = True
    both = _share(rng, incidents["service"].notna().to_numpy(), 0.1)  # [sandbox, service]: the first that maps wins
    change_both = _share(rng, np.ones(count, dtype=bool), 0.1)
    first_step = rng.uniform(0.05, 0.3, n)
    flaps = rng.integers(2, 5, n)

    causes: dict[str, list[str]] = {}
    for incident_key, change_key in zip(incidents["key"], incidents["caused_by_change"], strict=True):
        if isinstance(change_key, str) and change_key:
            causes.setdefault(change_key, []).append(incident_key)
    link_ids = iter(range(20_000, 10**9))
    history_ids = iter(range(int(rng.integers(100_000, 200_000)), 10**9))
    issues: list[JiraIssue] = []

    def history(at: datetime, *items: JiraChange) -> JiraHistory:
        return JiraHistory(str(next(history_ids)), at.replace(microsecond=0), items)  # Jira's times: whole seconds

    def move(before: str, after: str) -> JiraChange:
        return JiraChange("status", *_status(before), *_status(after))

    opened, work_start = _times(changes["opened"]), _times(changes["work_start"])
    implemented, updated = _times(changes["implemented_at"]), _times(changes["updated_at"])
    for i, row in enumerate(changes.itertuples(index=False)):
        if settled[i]:
            histories = (history(work_start[i], move("To Do", "Implementing")),
                         history(implemented[i], move("Implementing", str(status[i]))))  # fmt: skip
            resolution = None if no_resolution[i] else implemented[i]
        else:
            histories = (history(updated[i], move("To Do", "Canceled")),)
            resolution = updated[i]
        links = tuple(JiraLink(str(next(link_ids)), "Causes", False, key) for key in causes.get(row.key, []))
        kind = "hotfix" if row.type == "emergency" else "deploy to production"
        issues.append(JiraIssue(
            id=str(10_000 + int(row.key.split("-")[1])), key=row.key, issuetype="Change", service=row.service,
            summary=f"{row.service}: {kind}", status=str(status[i]), priority="Medium",
            components=(UNMAPPED_COMPONENT, row.service) if change_both[i] else (row.service,),
            created=opened[i], updated=updated[i], resolutiondate=resolution,
            change_type=JIRA_CHANGE_TYPES[row.type], links=links, histories=histories,
        ))  # fmt: skip
    created, resolved_at = _times(incidents["opened_at"]), _times(incidents["resolved_at"])
    updated = _times(incidents["updated_at"])
    for i, row in enumerate(incidents.itertuples(index=False)):
        service = row.service if isinstance(row.service, str) else None
        if service is None:
            components = (row.entity,) if row.entity else ()
        else:
            components = (UNMAPPED_COMPONENT, service) if both[i] else (service,)
        if resolved[i]:
            span = resolved_at[i] - created[i]
            picked_up = created[i] + span * first_step[i]
            histories = [history(picked_up, move("Open", "In Progress"))]
            if long[i]:  # waiting for the customer a few times, then label edits after the resolution
                gaps = np.linspace(0, 1, 2 * int(flaps[i]) + 2)[1:-1]
                for j, share in enumerate(gaps):
                    before, after = ("In Progress", "Waiting for support") if j % 2 == 0 else \
                        ("Waiting for support", "In Progress")  # fmt: skip
                    histories.append(history(picked_up + (resolved_at[i] - picked_up) * share, move(before, after)))
            histories.append(history(resolved_at[i], move("In Progress", str(words[i]))))
            if long[i]:
                after = updated[i] - resolved_at[i]
                for j in range(JIRA_EMBEDDED_HISTORIES + 2):
                    at = resolved_at[i] + after * ((j + 1) / (JIRA_EMBEDDED_HISTORIES + 3))
                    histories.append(history(at, JiraChange(
                        "labels", None, "" if j == 0 else f"review-{j}", None, f"review-{j + 1}")))  # fmt: skip
            resolution = None if changelog_only[i] else resolved_at[i]
        else:
            histories = [history(created[i] + (updated[i] - created[i]) / 2, move("Open", "In Progress"))]
            resolution = None
        cause = row.caused_by_change
        links = (JiraLink(str(next(link_ids)), "Causes", True, cause),) if isinstance(cause, str) and cause else ()
        issues.append(JiraIssue(
            id=str(10_000 + int(row.key.split("-")[1])), key=row.key, issuetype="Incident", service=service,
            summary=row.title or "", status=str(words[i]), priority=JIRA_PRIORITY_BY_SEVERITY.get(row.severity),
            components=components, created=created[i], updated=updated[i], resolutiondate=resolution,
            change_type=None, links=links, histories=tuple(histories),
        ))  # fmt: skip
    return tuple(sorted(issues, key=lambda issue: issue.number))


def _servicenow_changes(seed: int, changes: pd.DataFrame, cis: list[ConfigurationItem]) -> tuple[ServiceNowChange, ...]:
    rng = np.random.default_rng([seed, 63])
    ci_of = {ci.service: ci.sys_id for ci in cis}
    count = len(changes)
    outcome = changes["outcome"].fillna("unknown").to_numpy()
    settled = changes["implemented_at"].notna().to_numpy()
    successful = _choice(rng, SERVICENOW_CLOSE_CODES["successful"], (0.9, 0.1), count)
    close_code = np.select([~settled, outcome == "failed", outcome == "backed_out", outcome == "successful"],
                           ["", "unsuccessful", "backed_out", successful], "")  # fmt: skip
    no_work_end = settled & (rng.random(count) < 0.15)  # implemented_at is then the closed_at
    opened, work_start = _times(changes["opened"]), _times(changes["work_start"])
    implemented, updated = _times(changes["implemented_at"]), _times(changes["updated_at"])
    out = []
    for i, row in enumerate(changes.itertuples(index=False)):
        kind = "hotfix" if row.type == "emergency" else "deploy to production"
        out.append(ServiceNowChange(
            sys_id=_sys_id(seed, "change_request", row.source_id), number=row.source_id, service=row.service,
            short_description=f"{row.service}: {kind}", type=row.type, state="3" if settled[i] else "4",
            close_code=str(close_code[i]), opened_at=opened[i], work_start=work_start[i],
            work_end=None if no_work_end[i] else implemented[i],
            closed_at=implemented[i] if no_work_end[i] else updated[i], updated_at=updated[i],
            cmdb_ci=ci_of[row.service], business_service=ci_of[row.service],
        ))  # fmt: skip
    return tuple(sorted(out, key=lambda change: change.number))


def _servicenow_incidents(seed: int, incidents: pd.DataFrame, cis: list[ConfigurationItem],
                          changes: tuple[ServiceNowChange, ...]) -> tuple[ServiceNowIncident, ...]:  # fmt: skip
    rng = np.random.default_rng([seed, 64])
    ci_of = {ci.service: ci.sys_id for ci in cis}
    ci_named = {ci.name: ci.sys_id for ci in cis}
    change_of = {change.number: change.sys_id for change in changes}
    count = len(incidents)
    resolved = incidents["resolved_at"].notna().to_numpy()
    closed = resolved & (rng.random(count) < 0.3)
    closed_only = closed & (rng.random(count) < 0.35)  # no resolved_at: the resolution is the closed_at
    draw = rng.random(count)  # < 0.15: business_service only; < 0.45: cmdb_ci only; else both
    opened, resolved_at, updated = (_times(incidents[c]) for c in ("opened_at", "resolved_at", "updated_at"))
    out = []
    for i, row in enumerate(incidents.itertuples(index=False)):
        service = row.service if isinstance(row.service, str) else None
        ci = ci_of[service] if service is not None else ci_named.get(row.entity, "")
        cmdb_ci, business = ("", ci) if draw[i] < 0.15 else (ci, "") if draw[i] < 0.45 else (ci, ci)
        state = "7" if closed[i] else "6" if resolved[i] else "2"
        cause = row.caused_by_change
        out.append(ServiceNowIncident(
            sys_id=_sys_id(seed, "incident", row.source_id), number=row.source_id, service=service,
            short_description=row.title or "", priority=str(row.severity or "sev3")[3:], state=state,
            opened_at=opened[i], resolved_at=None if closed_only[i] or not resolved[i] else resolved_at[i],
            closed_at=(resolved_at[i] if closed_only[i] else updated[i]) if closed[i] else None,
            updated_at=updated[i], cmdb_ci=cmdb_ci, business_service=business,
            caused_by=change_of[cause] if isinstance(cause, str) and cause else "",
        ))  # fmt: skip
    return tuple(sorted(out, key=lambda incident: incident.number))
