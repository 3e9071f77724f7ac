"""GitHub nodes -> raw canonical rows (deployments, pull_requests), for `connectors.records.normalise`.

GitHub's words are mapped here and nowhere else. A row keeps its vendor node in the extra `payload` column
(stored in the fact's `raw`). Rows are not validated here: a node missing what a record needs (no createdAt,
a state no one knows) becomes a row `normalise` rejects with the reason, and the rest of its page is kept.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from connectors.github.client import timestamp
from connectors.services import ENTITY

SOURCE = "github"

# GitHub's DeploymentStatusState (latestStatus.state) -> canonical deployment status. A word not here is
# passed on as it is, so normalise rejects the row naming it.
DEPLOYMENT_STATES: dict[str, str] = {
    "SUCCESS": "success",
    "FAILURE": "failure",
    "ERROR": "error",
    "INACTIVE": "inactive",
    "IN_PROGRESS": "in_progress",
    "QUEUED": "queued",
    "PENDING": "queued",
    "WAITING": "queued",
}
NO_STATUS = "queued"  # a deployment no status was posted for yet
PAYLOAD_CHANGE_KEYS = ("change_id", "change_request")  # where a deploy payload names its change

DEPLOYMENT_COLUMNS = ["source", "source_id", "service", "environment", "sha", "deployed_at", "status", "change_id",
                      "updated_at", "payload", ENTITY]  # fmt: skip
PULL_REQUEST_COLUMNS = ["source", "source_id", "service", "created_at", "first_commit_at", "merged_at",
                        "merge_commit_sha", "updated_at", "payload", ENTITY]  # fmt: skip


def deployment_row(repo: str, service: str, node: Any, change_pattern: re.Pattern[str]) -> dict[str, Any]:
    """One Deployment node (see queries.batched("deployments", n)) as a raw deployments row: status from its latest
    status, deployed_at when it went live (see `deployed_at`), updated_at its latest change (a later INACTIVE status
    included), so a deployment superseded days later is read again without moving its deployed_at."""
    status = _get(node, "latestStatus")
    database_id = _get(node, "databaseId")
    return {
        "source": SOURCE,
        "source_id": f"{repo}/{database_id}" if database_id not in (None, "") else None,
        "service": service,
        "environment": environment(node),
        "sha": _get(node, "commitOid"),
        "deployed_at": deployed_at(node),
        "status": deployment_status(status),
        "change_id": change_id(_get(node, "payload"), _get(node, "description"), change_pattern),
        "updated_at": _latest(_get(status, "createdAt"), _get(node, "updatedAt")) or _get(node, "createdAt"),
        "payload": node,
        ENTITY: repo,
    }


def environment(node: Any) -> Any:
    return _get(node, "environment")


def went_live(node: Any) -> str | None:
    """The time of a Deployment node's first SUCCESS status (its `statuses`, in whatever order GitHub lists
    them), None if it never succeeded."""
    statuses = _get(node, "statuses", "nodes")
    times = [_get(s, "createdAt") for s in statuses if _state(s) == "SUCCESS"] if isinstance(statuses, list) else []
    return _earliest(*times)


def deployed_at(node: Any) -> str | None:
    """When a deployment went live: its first SUCCESS status, not a later INACTIVE one (GitHub posts that when a
    newer deployment to the environment succeeds, often days later); never succeeded: its latest status's time,
    else its creation."""
    return went_live(node) or _get(node, "latestStatus", "createdAt") or _get(node, "createdAt")


def pull_request_row(repo: str, service: str, node: Any) -> dict[str, Any]:
    """One merged PullRequest node (see queries.batched("pullRequests", n)) as a raw pull_requests row."""
    number = _get(node, "number")
    commits = _get(node, "commits", "nodes")
    first = _get(commits[0], "commit") if isinstance(commits, list) and commits else None
    return {
        "source": SOURCE,
        "source_id": f"{repo}#{number}" if number not in (None, "") else None,
        "service": service,
        "created_at": _get(node, "createdAt"),
        "first_commit_at": _get(first, "authoredDate") or _get(first, "committedDate"),
        "merged_at": _get(node, "mergedAt"),
        "merge_commit_sha": _get(node, "mergeCommit", "oid"),
        "updated_at": _get(node, "updatedAt"),
        "payload": node,
        ENTITY: repo,
    }


def deployment_status(latest_status: Any) -> str | None:
    """The canonical status of a deployment's latestStatus: no status yet is queued; a status without a state is
    None (the row is rejected: status missing); a state not in DEPLOYMENT_STATES is passed on unchanged."""
    if latest_status is None:
        return NO_STATUS
    state = _get(latest_status, "state")
    if state is None or str(state).strip() == "":
        return None
    return DEPLOYMENT_STATES.get(str(state).strip().upper(), str(state))


def change_id(payload: Any, description: Any, pattern: re.Pattern[str]) -> str | None:
    """The change a deployment implements: `change_id` or `change_request` in its payload (a JSON object, sent by
    GraphQL as a string), else the first match of `pattern` in its description (its first group, if it has one)."""
    fields = payload
    if isinstance(payload, str):
        try:
            fields = json.loads(payload)
        except ValueError:
            fields = None
    if isinstance(fields, dict):
        for key in PAYLOAD_CHANGE_KEYS:
            value = fields.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
                return str(value).strip()
    if isinstance(description, str):
        match = pattern.search(description)
        if match:
            found = next((g for g in match.groups() if g), None) if pattern.groups else match.group(0)
            return found or None
    return None


def _get(value: Any, *keys: str) -> Any:
    """value[k1][k2]..., None where a level is missing or not an object."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _state(status: Any) -> str:
    state = _get(status, "state")
    return str(state).strip().upper() if state is not None else ""


def _moments(values: tuple[Any, ...]) -> list[tuple[datetime, Any]]:
    """(instant, value as sent) of the values that are ISO 8601 times with an offset; the others are left out."""
    return [(moment, value) for value in values if (moment := timestamp(value)) is not None]


def _earliest(*values: Any) -> Any:
    """The earliest of GitHub's times, as sent; None if none is readable."""
    return min(_moments(values), key=lambda pair: pair[0], default=(None, None))[1]


def _latest(*values: Any) -> Any:
    """The latest of GitHub's times, as sent; the first value when none is readable (normalise reports it)."""
    return max(_moments(values), key=lambda pair: pair[0], default=(None, values[0] if values else None))[1]
