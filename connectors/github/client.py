"""GitHub's GraphQL API: where it lives, how it says "rate limited", and paging repositories' connections, a page of
each of up to `repos_per_query` repositories per request (GraphQL aliases), so a nightly run over many quiet
repositories costs a request per 25 of them, not one each.

This module knows GitHub and nothing of canonical records: it yields the vendor nodes page by page.
HTTP (session, retries, backoff, the `x-ratelimit-*` headers, GitHub's secondary limit: a 403 with Retry-After)
is `connectors.http.VendorClient`'s; GraphQL adds two things a 200 can carry: `errors` of type RATE_LIMITED
(waited for until `rateLimit.resetAt`, else `x-ratelimit-reset`, else DEFAULT_RATE_LIMIT_WAIT seconds, and
retried), and any other `errors` (a repository not found, a token without access to it), which stop the read
with a GithubQueryError naming the repository and GitHub's message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from connectors.base import SourceError
from connectors.github import queries
from connectors.http import BodyRateLimit, VendorClient, VendorHttpError, pause, reset_wait
from connectors.limits import Limits
from connectors.paging import Listing, record_id

SOURCE = "sources.github"  # how every message of this connector starts
DEFAULT_RATE_LIMIT_WAIT = 60.0  # seconds, when GitHub says it is rate limiting but not until when
PAGE_SIZE = 100  # `first:` of every connection: GitHub's maximum
REPOS_PER_QUERY = 25  # repositories one request reads a page of each (2,500 nodes at most: far under GitHub's limits)
Node = Any  # one vendor node as GitHub sent it: a dict, or anything else when GitHub sent something odd


class GithubQueryError(SourceError):
    """GitHub answered, with GraphQL `errors` (other than a rate limit) or without the data asked for."""


def graphql_url(base_url: str) -> str:
    """The GraphQL endpoint for a configured `base_url`: https://api.github.com -> https://api.github.com/graphql;
    GitHub Enterprise Server's REST root https://HOST/api/v3 -> https://HOST/api/graphql; anything else (a proxy,
    the simulator) -> {base_url}/graphql."""
    base = base_url.strip().rstrip("/")
    parts = urlsplit(base)
    if (parts.hostname or "").lower() == "api.github.com":
        return f"{parts.scheme or 'https'}://{parts.netloc}/graphql"
    if parts.path.rstrip("/").lower().endswith("/api/v3"):
        return base[: -len("/api/v3")] + "/api/graphql"
    return f"{base}/graphql"


def graphql_rate_limit(clock: Callable[[], float] | None = None) -> BodyRateLimit:
    """A VendorClient `body_rate_limit`: seconds to wait when a (200) body has an error of type RATE_LIMITED.
    `clock` gives the Unix time (default: time.time, looked up at each call)."""

    def wait(body: Any, headers: Mapping[str, str]) -> float | None:
        if not any(error.get("type") == "RATE_LIMITED" for error in _errors(body)):
            return None
        now = (clock or time.time)()
        data = body.get("data")
        rate = data.get("rateLimit") if isinstance(data, dict) else None
        reset_at = timestamp(rate.get("resetAt") if isinstance(rate, dict) else None)
        if reset_at is not None:
            return max(reset_at.timestamp() - now, 0.0) + 1.0  # one second past the reset: clocks differ
        try:
            return max(float(headers["x-ratelimit-reset"]) - now, 0.0) + 1.0
        except (KeyError, TypeError, ValueError):
            return DEFAULT_RATE_LIMIT_WAIT

    return wait


class GithubClient:
    """GraphQL over one VendorClient: `query`, and the paged reads of one repository."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        sleep: Callable[[float], None] = pause,
        clock: Callable[[], float] | None = None,
        attempts: int = 6,
        backoff_seconds: float = 0.5,
        repos_per_query: int = REPOS_PER_QUERY,
        limits: Limits | None = None,
    ):
        self.url = graphql_url(base_url)
        self.repos_per_query = repos_per_query
        self.limits = limits or Limits()
        self.http = VendorClient(
            SOURCE,
            self.url,
            {"Authorization": f"bearer {token}", "Accept": "application/json"},
            rate_limit=reset_wait("x-ratelimit-remaining", "x-ratelimit-reset", reset_is_epoch=True),
            body_rate_limit=graphql_rate_limit(clock),
            attempts=attempts,
            backoff_seconds=backoff_seconds,
            sleep=sleep,
            limits=self.limits,
        )

    @property
    def requests_sent(self) -> int:
        """Every HTTP attempt so far, retries included."""
        return self.http.requests_sent

    def query(
        self,
        document: str,
        variables: Mapping[str, Any] | None = None,
        *,
        what: str = "query",
        aliases: Mapping[str, str] | None = None,
    ) -> dict:
        """The `data` of one GraphQL request. Raises VendorAuthError (401/403), VendorHttpError (gave up) or
        GithubQueryError (GraphQL errors, no data); `what` says in messages what was being read, unless the error's
        path starts at one of the `aliases` (alias -> what was read there, e.g. "acme/checkout deployments")."""
        try:
            page = self.http.post(self.url, json={"query": document, "variables": dict(variables or {})})
        except VendorHttpError as error:  # the same class (VendorAuthError stays one), with what was read
            raise type(error)(f"{error} (reading {what})") from None
        errors = _errors(page.body)
        if errors:
            path = errors[0].get("path")
            where = (aliases or {}).get(path[0]) if isinstance(path, list) and path else None
            raise GithubQueryError(f"{SOURCE}: {where or what}: GitHub said: {_first_error(errors)}")
        data = page.body.get("data") if isinstance(page.body, dict) else None
        if not isinstance(data, dict):
            raise GithubQueryError(f"{SOURCE}: {what}: GitHub answered without data")
        return data

    def viewer(self) -> str:
        """The token's login: one cheap authenticated request (the pre-flight)."""
        data = self.query(queries.VIEWER, what="the token's user (viewer)")
        return str((data.get("viewer") or {}).get("login") or "")

    def deployments(
        self, repos: Sequence[str], environments: list[str], more: Callable[[str, list[Node]], bool]
    ) -> Iterator[tuple[str, list[Node]]]:
        """(repo, page) for the `repos`' deployments to `environments`, newest created first per repository, each
        with all its statuses; a repository's next page is read while `more(repo, page)` says so."""
        return self._pages("deployments", repos, {"environments": list(environments)}, more, self._with_all_statuses)

    def pull_requests(self, repos: Sequence[str], updated_since: datetime | None) -> Iterator[tuple[str, list[Node]]]:
        """(repo, page) for the `repos`' merged pull requests, most recently updated first per repository, up to and
        including the first page whose oldest was updated before `updated_since` (None: every page)."""
        return self._pages("pullRequests", repos, {}, lambda _repo, nodes: not reaches(nodes, "updatedAt",
                                                                                      updated_since))  # fmt: skip

    def _with_all_statuses(self, repo: str, node: Node) -> Node:
        """The node, its `statuses` completed with the pages after the first (one request each) when it has more."""
        page = node.get("statuses") if isinstance(node, dict) else None
        info = page.get("pageInfo") if isinstance(page, dict) else None
        if not isinstance(info, dict) or not info.get("hasNextPage") or not node.get("id"):
            return node
        what = f"{repo} deployment {node.get('databaseId')} statuses"
        statuses = list(page.get("nodes") or [])
        listing = Listing(f"{SOURCE}: {what}", self.limits.max_pages, _status_key, noun="statuses")
        listing.read(statuses)
        listing.total(page.get("totalCount"), PAGE_SIZE)
        cursor = info.get("endCursor")
        while cursor:
            listing.next_page()
            data = self.query(queries.DEPLOYMENT_STATUSES, {"id": node["id"], "cursor": cursor}, what=what)
            found = data.get("node") if isinstance(data.get("node"), dict) else {}
            following = found.get("statuses") if isinstance(found.get("statuses"), dict) else {}
            nodes = following.get("nodes") if isinstance(following.get("nodes"), list) else []
            statuses += nodes
            listing.read(nodes)
            info = following.get("pageInfo") if isinstance(following.get("pageInfo"), dict) else {}
            cursor = info.get("endCursor") if info.get("hasNextPage") else None
        return {**node, "statuses": {"nodes": statuses, "pageInfo": {"hasNextPage": False, "endCursor": None}}}

    def _pages(
        self, connection: str, repos: Sequence[str], shared: dict[str, Any], more: Callable[[str, list[Node]], bool],
        complete: Callable[[str, Node], Node] | None = None,
    ) -> Iterator[tuple[str, list[Node]]]:
        """Each request reads the next page of up to `repos_per_query` repositories that still have one to read;
        `complete(repo, node)` adds what a node's page left out, before `more` sees it."""
        cursors: dict[str, str | None] = dict.fromkeys(repos)  # the repositories still to read, and where
        listings = {repo: Listing(f"{SOURCE}: {repo} {connection}", self.limits.max_pages,
                                  _NODE_KEYS[connection], noun=connection) for repo in repos}  # fmt: skip
        while cursors:
            batch = list(cursors)[: self.repos_per_query]
            variables = dict(shared)
            for position, repo in enumerate(batch):
                owner, _, name = repo.partition("/")
                variables |= {f"r{position}_owner": owner, f"r{position}_name": name,
                              f"r{position}_cursor": cursors[repo]}  # fmt: skip
            aliases = {queries.alias(position): repo for position, repo in enumerate(batch)}
            what = f"{batch[0]} {connection}" + (f" (and {len(batch) - 1} more repositories)" if len(batch) > 1 else "")
            labels = {key: f"{repo} {connection}" for key, repo in aliases.items()}
            data = self.query(queries.batched(connection, len(batch)), variables, what=what, aliases=labels)
            for key, repo in aliases.items():
                repository = data.get(key)
                if not isinstance(repository, dict):
                    raise GithubQueryError(f"{SOURCE}: {repo} {connection}: no such repository, or the token "
                                           "cannot see it")  # fmt: skip
                page = repository.get(connection) if isinstance(repository.get(connection), dict) else {}
                nodes = page.get("nodes") if isinstance(page.get("nodes"), list) else []
                nodes = [complete(repo, node) for node in nodes] if complete else nodes
                listings[repo].read(nodes)
                listings[repo].total(page.get("totalCount"), PAGE_SIZE)
                yield repo, nodes
                info = page.get("pageInfo") if isinstance(page.get("pageInfo"), dict) else {}
                following = info.get("endCursor")
                if not info.get("hasNextPage") or not following or not more(repo, nodes):
                    del cursors[repo]
                else:
                    listings[repo].next_page()
                    cursors[repo] = following


# How a connection's nodes are told apart: a deployment by its node id, a pull request by its number.
_NODE_KEYS = {"deployments": record_id("id"), "pullRequests": record_id("number")}


def _status_key(status: Any) -> Any:
    """A status's key: what its page gives of it (GitHub's statuses of a deployment differ in state or time)."""
    return (status.get("state"), status.get("createdAt")) if isinstance(status, dict) else None


def _errors(body: Any) -> list[dict]:
    errors = body.get("errors") if isinstance(body, dict) else None
    if not errors:
        return []
    listed = errors if isinstance(errors, list) else [errors]
    return [error if isinstance(error, dict) else {"message": str(error)} for error in listed]


def _first_error(errors: list[dict]) -> str:
    first = errors[0]
    message = " ".join(str(first.get("message") or "no message").split())  # one line
    kind = f" ({first['type']})" if first.get("type") else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{message}{kind}{more}"


def timestamp(value: Any) -> datetime | None:
    """An aware datetime from GitHub's ISO 8601 text, None if absent or unreadable (or without an offset)."""
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else None


def reaches(nodes: list[Node], field: str, since: datetime | None) -> bool:
    """Whether a page reaches before `since` (None: never): its oldest `field` is earlier."""
    stamps = [s for s in (timestamp(n.get(field)) for n in nodes if isinstance(n, dict)) if s is not None]
    return since is not None and bool(stamps) and min(stamps) < since
