"""The history the simulator serves: `generate.py`'s records as GitHub and PagerDuty hold them.

`build_history(end=..., seed=..., days=..., services=...)` generates the canonical records (no bad rows,
and of each record its latest version only: vendors serve well-formed records, not stale export
copies) and turns them into vendor objects:
- GitHub, repository `acme/<service>`: every deployment (its `databaseId` is generate.py's deployment
  id), created a few seeded minutes before its last status, whose time is the canonical `deployed_at`;
  a status `in_progress` in between; `updatedAt` moves with the last status, as on GitHub. A deployment
  that implements a change request carries `{"change_request": "CHG..."}` as its payload. Every pull
  request, with its commits (the first one's authored and committed dates are the canonical
  `first_commit_at`); unmerged ones are OPEN or CLOSED.
- PagerDuty, service id `pagerduty_service_id(service)`: the incidents whose source is pagerduty, with
  urgency and priority from the severity (sev1 P1/high, sev2 P2/high, sev3 P3/low, sev4 P4/low, sev5
  no priority/low). A seeded share of about NULL_PRIORITY_SHARE of them has no priority, chosen only
  among sev2 and sev4 incidents: a connector that falls back to the urgency (high -> sev2,
  low -> sev4) reads back the same severity.
ServiceNow incidents and change requests are not served (yet).

The same arguments give the same history; no wall clock is read.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from connectors.records import normalise
from connectors.simulator.generate import GITHUB_ORG, SERVICES, DatasetSpec, generate_dataset

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


def service_names(count: int) -> tuple[str, ...]:
    """The first `count` of generate.SERVICES, then `service-11`, `service-12`, ... beyond them."""
    if count < 1:
        raise ValueError(f"services must be at least 1, not {count}")
    extra = tuple(f"service-{n}" for n in range(len(SERVICES) + 1, count + 1))
    return (SERVICES + extra)[:count]


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


def service_mapping(services: int | Iterable[str] = DEFAULT_SERVICE_COUNT) -> dict[str, dict[str, list[str]]]:
    """Per service, its names in the simulated vendors, as `services:` in scorecard.yaml takes them:
    `{"checkout": {"github_repos": ["acme/checkout"], "pagerduty_services": ["P1A2B3C"]}, ...}`."""
    names = _names(services)
    ids = [pagerduty_service_id(name) for name in names]
    if len(set(ids)) != len(ids):
        raise ValueError("two services get the same PagerDuty service id: rename one")
    pairs = zip(names, ids, strict=True)
    return {name: {"github_repos": [github_repo(name)], "pagerduty_services": [pid]} for name, pid in pairs}


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
    active: bool  # the newest successful deployment of its repository and environment

    @property
    def latest_status(self) -> DeploymentStatus | None:
        return self.statuses[-1] if self.statuses else None


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
class History:
    """What the simulator serves; every time is a UTC datetime in [start, end)."""

    seed: int
    start: datetime
    end: datetime
    services: tuple[str, ...]
    deployments: dict[str, tuple[Deployment, ...]]  # per repository, oldest created first
    pull_requests: dict[str, tuple[PullRequest, ...]]  # per repository, by number
    incidents: tuple[Incident, ...]  # oldest created first

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def repos(self) -> dict[str, str]:
        """Repository -> service."""
        return {github_repo(service): service for service in self.services}

    @property
    def pagerduty_services(self) -> dict[str, str]:
        """PagerDuty service id -> service."""
        return {pagerduty_service_id(service): service for service in self.services}


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
    for kind in ("incidents", "deployments", "pull_requests"):
        result = normalise(kind, raw[kind], set(names))
        if len(result.rejected):  # bad_rows=0: generate.py makes none
            raise AssertionError(f"generated {kind} rejected: {result.rejected['reason'].tolist()[:3]}")
        typed[kind] = result.good
    return History(
        seed=seed,
        start=spec.start.to_pydatetime(),
        end=spec.end.to_pydatetime(),
        services=names,
        deployments=_by_repo(names, _deployments(seed, typed["deployments"])),
        pull_requests=_by_repo(names, _pull_requests(seed, typed["pull_requests"])),
        incidents=tuple(_incidents(seed, typed["incidents"])),
    )


def unserved_records(
    *,
    end: pd.Timestamp | str | datetime,
    seed: int = DEFAULT_SEED,
    days: int = DEFAULT_DAYS,
    services: int | Iterable[str] = DEFAULT_SERVICE_COUNT,
) -> dict[str, pd.DataFrame]:
    """The records of the same history that no served vendor holds yet — ServiceNow's change requests and
    incidents — as canonical export rows (with generate.py's stale copies and bad rows), for a files source
    beside the simulated vendors."""
    spec = DatasetSpec(seed=seed, days=days, end=pd.Timestamp(end), services=_names(services))
    raw = generate_dataset(spec)
    incidents = raw["incidents"]
    return {"changes": raw["changes"], "incidents": incidents[incidents["source"] != "pagerduty"]}


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
    successful = frame[frame["status"] == "success"]
    newest = successful.drop_duplicates(["service", "environment"], keep="last")["db_id"]
    active = frame["db_id"].isin(newest).to_numpy()
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
            description=f"Deploy {row.sha[:7]} to {row.environment}", statuses=statuses, active=bool(active[i]),
        ))  # fmt: skip
    return out


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
