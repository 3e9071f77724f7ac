"""GitHub under `/github`: the GraphQL endpoint and the REST deployment endpoints, over the history.

Base URL `http://HOST:PORT/github` (as GitHub Enterprise's would be): GraphQL at `POST /github/graphql`
(see github_graphql), REST at
- `GET /repos/{owner}/{repo}/deployments` (`sha`, `ref`, `task`, `environment`, `per_page` up to 100,
  default 30, `page`), newest first, paged with a `Link` header (`first`, `prev`, `next`, `last`);
- `GET /repos/{owner}/{repo}/deployments/{deployment_id}`;
- `GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses` (paged the same way), newest first;
- `GET /rate_limit` (free, as on GitHub).
Bodies are GitHub's shapes (the tests hold them to GitHub's OpenAPI description).

Auth: `Authorization: bearer <token>` or `token <token>`; with `token` given to the simulator only that
one. No header: 401 (REST "Requires authentication", GraphQL "This endpoint requires you to be
authenticated."); a wrong scheme or token: 401 "Bad credentials". Every answer carries
`x-ratelimit-limit/-remaining/-reset/-used/-resource` (`core` for REST, `graphql` for GraphQL, each
5,000 an hour: REST counts requests, GraphQL the query cost); a spent budget answers 403 (REST) or a
200 whose error is of type RATE_LIMITED (GraphQL), as GitHub does.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from connectors.simulator import github_graphql
from connectors.simulator.faults import Fault
from connectors.simulator.history import Deployment, DeploymentStatus, History
from connectors.simulator.web import (
    Budget,
    BudgetState,
    Request,
    RequestIds,
    Response,
    iso_z,
    json_response,
    proxy_error,
)

RATE_LIMIT = 5_000  # per hour, REST requests and GraphQL points alike
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
API_VERSION = "2022-11-28"
REST_DOCS = "https://docs.github.com/rest"
GRAPHQL_DOCS = "https://docs.github.com/graphql"
BOT_LOGIN = "acme-deployer"
BOT_ID = 1_000_002

_DEPLOYMENTS = re.compile(r"^/repos/([^/]+)/([^/]+)/deployments$")
_DEPLOYMENT = re.compile(r"^/repos/([^/]+)/([^/]+)/deployments/(\d+)$")
_STATUSES = re.compile(r"^/repos/([^/]+)/([^/]+)/deployments/(\d+)/statuses$")
_STATUS = re.compile(r"^/repos/([^/]+)/([^/]+)/deployments/(\d+)/statuses/(\d+)$")
_AUTH = re.compile(r"^\s*(bearer|token)\s+(\S+)\s*$", re.IGNORECASE)


def _message(status: int, message: str, docs: str = REST_DOCS) -> dict[str, str]:
    return {"message": message, "documentation_url": docs, "status": str(status)}


class GithubApi:
    prefix = "github"

    def __init__(self, history: History, *, token: str | None = None, clock: Callable[[], float] = time.time):
        self.history = history
        self.token = token
        self.clock = clock
        self.budgets = {"core": Budget(RATE_LIMIT, 3600, clock), "graphql": Budget(RATE_LIMIT, 3600, clock)}
        self.ids = RequestIds("C0DE:")
        self.repos = {repo.lower(): repo for repo in history.deployments}
        self.by_id = {(d.repo, d.id): d for deployments in history.deployments.values() for d in deployments}

    # -- the shared parts of every answer

    def _headers(self, resource: str, state: BudgetState) -> dict[str, str]:
        return {
            "x-github-api-version-selected": API_VERSION,
            "x-github-request-id": self.ids.next(),
            "x-ratelimit-limit": str(state.limit),
            "x-ratelimit-remaining": str(state.remaining),
            "x-ratelimit-reset": str(int(state.reset)),
            "x-ratelimit-used": str(state.used),
            "x-ratelimit-resource": resource,
        }

    def _answer(self, status: int, payload: Any, resource: str, state: BudgetState,
                extra: dict[str, str] | None = None) -> Response:  # fmt: skip
        return json_response(status, payload, {**self._headers(resource, state), **(extra or {})})

    @staticmethod
    def _resource(request: Request) -> str:
        return "graphql" if request.path == "/graphql" else "core"

    def fault_response(self, request: Request, fault: Fault) -> Response:
        resource = self._resource(request)
        state = self.budgets[resource].peek()
        if fault.status == 429:
            body = _message(429, "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
                                 "again.", f"{REST_DOCS}/using-the-rest-api/rate-limits-for-the-rest-api")  # fmt: skip
            return self._answer(429, body, resource, state, {"Retry-After": str(fault.retry_after)})
        response = proxy_error(fault.status or 502)
        response.headers.update(self._headers(resource, state))
        return response

    def _auth_error(self, request: Request, resource: str) -> Response | None:
        header = request.header("authorization")
        state = self.budgets[resource].peek()
        if not header:
            if resource == "graphql":
                body = {"message": "This endpoint requires you to be authenticated.",
                        "documentation_url": f"{GRAPHQL_DOCS}/guides/forming-calls-with-graphql#authenticating-with-"
                                             "graphql", "status": "401"}  # fmt: skip
            else:
                body = _message(401, "Requires authentication")
            return self._answer(401, body, resource, state)
        match = _AUTH.match(header)
        if match is None or (self.token is not None and match[2] != self.token):
            return self._answer(401, _message(401, "Bad credentials"), resource, state)
        return None

    # -- routing

    def handle(self, request: Request) -> Response:
        resource = self._resource(request)
        refused = self._auth_error(request, resource)
        if refused is not None:
            return refused
        if resource == "graphql":
            if request.method != "POST":
                return self._answer(404, _message(404, "Not Found", GRAPHQL_DOCS), resource,
                                    self.budgets[resource].peek())
            return self._graphql(request)
        if request.method != "GET":
            return self._answer(404, _message(404, "Not Found"), resource, self.budgets[resource].peek())
        if request.path == "/rate_limit":
            return self._rate_limit()
        allowed, state = self.budgets["core"].spend(1)
        if not allowed:
            body = _message(403, f"API rate limit exceeded for user ID {BOT_ID}.",
                            f"{REST_DOCS}/using-the-rest-api/rate-limits-for-the-rest-api")  # fmt: skip
            return self._answer(403, body, "core", state)
        for pattern, route in ((_DEPLOYMENTS, self._deployments), (_DEPLOYMENT, self._deployment),
                               (_STATUSES, self._statuses), (_STATUS, self._status)):  # fmt: skip
            match = pattern.match(request.path)
            if match:
                repo = self.repos.get(f"{match[1]}/{match[2]}".lower())
                if repo is None:
                    break
                return route(request, state, repo, *match.groups()[2:])
        return self._answer(404, _message(404, "Not Found"), "core", state)

    # -- GraphQL

    def _graphql(self, request: Request) -> Response:
        budget = self.budgets["graphql"]
        try:
            payload = json.loads(request.body or b"null")
        except ValueError:
            return self._answer(400, _message(400, "Problems parsing JSON", GRAPHQL_DOCS), "graphql", budget.peek())
        parsed = github_graphql.read_request(payload)
        if isinstance(parsed, str):
            return self._answer(200, {"errors": [{"message": parsed}]}, "graphql", budget.peek())
        prepared = github_graphql.prepare(parsed)
        if prepared.errors is not None:
            return self._answer(200, {"errors": prepared.errors}, "graphql", budget.peek())
        allowed, state = budget.spend(prepared.cost)
        if not allowed:
            body = {"errors": [{"type": "RATE_LIMITED", "message": f"API rate limit exceeded for user ID {BOT_ID}."}]}
            return self._answer(200, body, "graphql", state)
        return self._answer(200, github_graphql.run(self.history, parsed, prepared, state), "graphql", state)

    # -- REST

    def _rate_limit(self) -> Response:
        core, graphql = self.budgets["core"].peek(), self.budgets["graphql"].peek()

        def figures(state: BudgetState) -> dict[str, int]:
            return {"limit": state.limit, "used": state.used, "remaining": state.remaining, "reset": int(state.reset)}

        body = {"resources": {"core": figures(core), "graphql": figures(graphql)}, "rate": figures(core)}
        return self._answer(200, body, "core", core)

    def _page(self, request: Request, items: Sequence[Any], to_json: Callable[[Any], Any],
              state: BudgetState) -> Response:  # fmt: skip
        per_page = _positive_int(request.param("per_page"), DEFAULT_PER_PAGE)
        per_page = min(per_page, MAX_PER_PAGE)
        page = _positive_int(request.param("page"), 1)
        last = max(math.ceil(len(items) / per_page), 1)
        shown = items[(page - 1) * per_page: page * per_page]
        links = []
        if page > 1:
            links += [("prev", min(page - 1, last)), ("first", 1)]
        if page < last:
            links += [("next", page + 1), ("last", last)]
        extra = {"Link": ", ".join(f'<{request.url_with(page=n)}>; rel="{rel}"' for rel, n in links)} if links else {}
        return self._answer(200, [to_json(item) for item in shown], "core", state, extra)

    def _not_found(self, state: BudgetState) -> Response:
        return self._answer(404, _message(404, "Not Found"), "core", state)

    def _deployments(self, request: Request, state: BudgetState, repo: str) -> Response:
        items = list(reversed(self.history.deployments[repo]))  # newest first
        for name, value_of in (("environment", lambda d: d.environment), ("sha", lambda d: d.sha),
                               ("ref", lambda d: d.ref), ("task", lambda _d: "deploy")):  # fmt: skip
            wanted = request.param(name)
            if wanted not in (None, "", "none"):
                items = [d for d in items if value_of(d) == wanted]
        return self._page(request, items, lambda d: deployment_json(request.base_url, d), state)

    def _deployment(self, request: Request, state: BudgetState, repo: str, deployment_id: str) -> Response:
        deployment = self.by_id.get((repo, int(deployment_id)))
        if deployment is None:
            return self._not_found(state)
        return self._answer(200, deployment_json(request.base_url, deployment), "core", state)

    def _statuses(self, request: Request, state: BudgetState, repo: str, deployment_id: str) -> Response:
        deployment = self.by_id.get((repo, int(deployment_id)))
        if deployment is None:
            return self._not_found(state)
        newest_first = list(reversed(deployment.statuses))
        return self._page(request, newest_first, lambda s: status_json(request.base_url, deployment, s), state)

    def _status(self, request: Request, state: BudgetState, repo: str, deployment_id: str, status_id: str) -> Response:
        deployment = self.by_id.get((repo, int(deployment_id)))
        found = [s for s in deployment.statuses if s.id == int(status_id)] if deployment else []
        if not found:
            return self._not_found(state)
        return self._answer(200, status_json(request.base_url, deployment, found[0]), "core", state)


def _positive_int(text: str | None, default: int) -> int:
    try:
        value = int(text) if text not in (None, "") else default
    except ValueError:
        return default
    return value if value >= 1 else default


def bot_user(base_url: str) -> dict[str, Any]:
    """The deploying bot, as a GitHub simple-user."""
    api = f"{base_url}/users/{BOT_LOGIN}"
    return {
        "login": BOT_LOGIN, "id": BOT_ID, "node_id": "U_kgDOAA9CQg", "avatar_url":
        f"https://avatars.githubusercontent.com/u/{BOT_ID}?v=4", "gravatar_id": "", "url": api,
        "html_url": f"https://github.com/{BOT_LOGIN}", "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}", "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs", "repos_url": f"{api}/repos", "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events", "type": "User", "user_view_type": "public",
        "site_admin": False,
    }  # fmt: skip


def deployment_json(base_url: str, deployment: Deployment) -> dict[str, Any]:
    """A deployment as `GET /repos/{owner}/{repo}/deployments` lists it."""
    url = f"{base_url}/repos/{deployment.repo}/deployments/{deployment.id}"
    return {
        "url": url,
        "id": deployment.id,
        "node_id": github_graphql.node_id("Deployment", deployment.id),
        "sha": deployment.sha,
        "ref": deployment.ref,
        "task": "deploy",
        "payload": json.loads(deployment.payload),
        "original_environment": deployment.environment,
        "environment": deployment.environment,
        "description": deployment.description,
        "creator": bot_user(base_url),
        "created_at": iso_z(deployment.created_at),
        "updated_at": iso_z(deployment.updated_at),
        "statuses_url": f"{url}/statuses",
        "repository_url": f"{base_url}/repos/{deployment.repo}",
        "transient_environment": False,
        "production_environment": deployment.environment == "production",
        "performed_via_github_app": None,
    }


def status_json(base_url: str, deployment: Deployment, status: DeploymentStatus) -> dict[str, Any]:
    """A deployment status as `GET .../deployments/{id}/statuses` lists it."""
    deployment_url = f"{base_url}/repos/{deployment.repo}/deployments/{deployment.id}"
    return {
        "url": f"{deployment_url}/statuses/{status.id}",
        "id": status.id,
        "node_id": github_graphql.node_id("DeploymentStatus", status.id),
        "state": status.state,
        "creator": bot_user(base_url),
        "description": status.description,
        "environment": deployment.environment,
        "target_url": "",
        "created_at": iso_z(status.created_at),
        "updated_at": iso_z(status.created_at),
        "deployment_url": deployment_url,
        "repository_url": f"{base_url}/repos/{deployment.repo}",
        "environment_url": "",
        "log_url": "",
        "performed_via_github_app": None,
    }
