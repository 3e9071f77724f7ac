"""GitHub's GraphQL API over the simulated history, executed by graphql-core against GitHub's own schema.

The schema (`specs/github/schema.graphql`, GitHub's public schema, MIT: LICENSE-graphql-schema.md beside
it) is built once per process (`github_schema()`, about a second). A query goes through the schema's
full validation, so a field or argument GitHub does not have, or a value of the wrong type, is refused
as GitHub refuses it: HTTP 200 with `errors` (graphql-ruby's wording where it differs from graphql-core's,
`extensions.code` as GitHub sends it). On top, a field that exists on GitHub but is not simulated is
refused (code `notServedBySimulator`) instead of coming back null. Execution errors carry GitHub's `type`
(NOT_FOUND, EXCESSIVE_PAGINATION, MISSING_PAGINATION_BOUNDARIES, INVALID_CURSOR_ARGUMENTS, RATE_LIMITED).

Served (SERVED_FIELDS has the full list per type):
  viewer { login }
  node(id:) { ... on Deployment { ... } }  (a deployment's node id; another id is NOT_FOUND)
  rateLimit(dryRun) { cost limit nodeCount remaining resetAt used }
  repository(owner:, name:) {
    deployments(first|last <= 100, after, before, environments: [String!],
                orderBy: {field: CREATED_AT, direction: ASC|DESC}) {
      totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node }
      nodes { id databaseId createdAt updatedAt environment latestEnvironment originalEnvironment commitOid
              commit { oid } description payload task state latestStatus { state createdAt ... } statuses(...) }
    }
    pullRequests(first|last, after, before, states: [OPEN|CLOSED|MERGED], baseRefName, headRefName, labels,
                 orderBy: {field: CREATED_AT|UPDATED_AT, direction}) {
      nodes { id number title state url createdAt updatedAt closedAt mergedAt merged closed baseRefName
              headRefName mergeCommit { oid } commits(first: 1) { totalCount nodes { commit { oid authoredDate
              committedDate } } } }
    }
  }
A query's cost is GitHub's: the requests its connections need, over 100, at least 1.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    VariableNode,
    build_schema,
    execute,
    get_named_type,
    parse,
    specified_rules,
    validate,
    value_from_ast_untyped,
)

from connectors.simulator.history import Deployment, History, PullRequest
from connectors.simulator.web import BudgetState, iso_z

MAX_PAGE = 100
SCHEMA_FILE = "specs/github/schema.graphql"
VIEWER_LOGIN = "acme-scorecard"
LOAD_SECONDS: dict[str, float] = {}  # "schema": seconds the last github_schema() build took

SERVED_FIELDS: dict[str, frozenset[str]] = {
    name: frozenset(fields.split())
    for name, fields in {
        "Query": "viewer rateLimit repository node",
        "User": "login id databaseId name",
        "RateLimit": "cost limit nodeCount remaining resetAt used",
        "Repository": "id name nameWithOwner url deployments pullRequests",
        "PageInfo": "hasNextPage hasPreviousPage startCursor endCursor",
        "DeploymentConnection": "nodes edges pageInfo totalCount",
        "DeploymentEdge": "cursor node",
        "Deployment": "id databaseId createdAt updatedAt environment latestEnvironment originalEnvironment "
        "commitOid commit description payload task state latestStatus statuses",
        "DeploymentStatusConnection": "nodes edges pageInfo totalCount",
        "DeploymentStatusEdge": "cursor node",
        "DeploymentStatus": "id state createdAt updatedAt description environment logUrl environmentUrl",
        "PullRequestConnection": "nodes edges pageInfo totalCount",
        "PullRequestEdge": "cursor node",
        "PullRequest": "id number title state url createdAt updatedAt closedAt mergedAt merged closed "
        "baseRefName headRefName mergeCommit commits",
        "PullRequestCommitConnection": "nodes edges pageInfo totalCount",
        "PullRequestCommitEdge": "cursor node",
        "PullRequestCommit": "id commit url",
        "Commit": "id oid abbreviatedOid authoredDate committedDate url",
    }.items()
}


@lru_cache(maxsize=1)
def github_schema() -> GraphQLSchema:
    """GitHub's public schema, built once per process. GitHub's SDL defines two fields of
    EnterpriseOwnerInfo twice, which graphql-core's SDL check refuses: it is skipped (assume_valid_sdl)."""
    started = time.perf_counter()
    text = resources.files("connectors.simulator").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema = build_schema(text, assume_valid_sdl=True)
    LOAD_SECONDS["schema"] = time.perf_counter() - started
    return schema


# ---------------------------------------------------------------------------------------------
# Errors


def _error(message: str, kind: str) -> GraphQLError:
    return GraphQLError(message, extensions={"type": kind})


_RUBY_MESSAGES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], tuple[str, dict[str, Any]]]]] = [
    (re.compile(r"Cannot query field '(\w+)' on type '(\w+)'\."),
     lambda m: (f"Field '{m[1]}' doesn't exist on type '{m[2]}'",
                {"code": "undefinedField", "typeName": m[2], "fieldName": m[1]})),
    (re.compile(r"Unknown argument '(\w+)' on field '(\w+)\.(\w+)'\."),
     lambda m: (f"Field '{m[3]}' doesn't accept argument '{m[1]}'",
                {"code": "argumentNotAccepted", "name": m[3], "typeName": "Field", "argumentName": m[1]})),
    (re.compile(r"Field '(\w+)' argument '(\w+)' of type '.+' is required, but it was not provided\."),
     lambda m: (f"Field '{m[1]}' is missing required arguments: {m[2]}",
                {"code": "missingRequiredArguments", "className": "Field", "name": m[1], "arguments": m[2]})),
    (re.compile(r"Field '(\w+)' of type '(.+)' must have a selection of subfields\."),
     lambda m: (f"Field must have selections (field '{m[1]}' returns {m[2]} but has no selections. "
                f"Did you mean '{m[1]} {{ ... }}'?)", {"code": "selectionMismatch", "nodeName": f"field '{m[1]}'"})),
    (re.compile(r"Field '(\w+)' must not have a selection since type '(.+)' has no subfields\."),
     lambda m: (f"Selections can't be made on scalars (field '{m[1]}' returns {m[2]} but has selections)",
                {"code": "selectionMismatch", "nodeName": f"field '{m[1]}'"})),
]  # fmt: skip


def _ruby(error: GraphQLError) -> dict[str, Any]:
    """A validation error as GitHub (graphql-ruby) words it."""
    formatted = dict(error.formatted)
    for pattern, words in _RUBY_MESSAGES:
        match = pattern.match(error.message)
        if match:
            formatted["message"], formatted["extensions"] = words(match)
            return formatted
    formatted.setdefault("extensions", {"code": "argumentLiteralsIncompatible" if "value" in error.message
                                        else "validationError"})  # fmt: skip
    return formatted


def _github_error(error: GraphQLError) -> dict[str, Any]:
    """An execution error in GitHub's shape: `type` beside the message, not under extensions."""
    formatted = dict(error.formatted)
    extensions = dict(formatted.pop("extensions", None) or {})
    kind = extensions.pop("type", None)
    out: dict[str, Any] = {"type": kind} if kind else {}
    out.update(formatted)
    if extensions:
        out["extensions"] = extensions
    return out


class ServedFieldsRule(ValidationRule):
    """Refuse fields GitHub has but the simulator does not serve, rather than answering them with null."""

    def enter_field(self, node: FieldNode, *_args: Any) -> None:
        parent = self.context.get_parent_type()
        if parent is None or self.context.get_field_def() is None:
            return  # an unknown field: the specified rules report it
        name, type_name = node.name.value, get_named_type(parent).name
        if name.startswith("__") or type_name.startswith("__"):
            return
        served = SERVED_FIELDS.get(type_name, frozenset())
        if name not in served:
            listed = ", ".join(sorted(served)) or "none of its fields"
            self.report_error(GraphQLError(
                f"Field '{name}' on type '{type_name}' is not served by the GitHub simulator (it serves: {listed})",
                node, extensions={"code": "notServedBySimulator", "typeName": type_name, "fieldName": name},
            ))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Cost (GitHub's rule: the requests every connection needs, over 100, at least 1)


def query_cost(document: Any, operation_name: str | None, variables: dict[str, Any]) -> tuple[int, int]:
    """(cost, node count) of the operation to run."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    chosen = [o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)]
    if not chosen:
        return 1, 0
    requests, nodes = 0, 0

    def size(field: FieldNode) -> int | None:
        for argument in field.arguments or ():
            if argument.name.value in ("first", "last"):
                value = argument.value
                raw = variables.get(value.name.value) if isinstance(value, VariableNode) else \
                    value_from_ast_untyped(value)  # fmt: skip
                return raw if isinstance(raw, int) else None
        return None

    def walk(selection_set: SelectionSetNode | None, multiplier: int, seen: frozenset[str]) -> None:
        nonlocal requests, nodes
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                count = size(selection)
                if count is not None:
                    requests += multiplier
                    nodes += multiplier * count
                    walk(selection.selection_set, multiplier * max(count, 1), seen)
                else:
                    walk(selection.selection_set, multiplier, seen)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set, multiplier, seen)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                fragment = fragments.get(selection.name.value)
                if fragment is not None:
                    walk(fragment.selection_set, multiplier, seen | {selection.name.value})

    walk(chosen[0].selection_set, 1, frozenset())
    return max(1, round(requests / 100)), nodes


# ---------------------------------------------------------------------------------------------
# Connections


def _cursor(index: int) -> str:
    return base64.b64encode(f"cursor:v2:{index}".encode()).decode()


def _cursor_index(cursor: str) -> int:
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
        if text.startswith("cursor:v2:"):
            return int(text[len("cursor:v2:"):])
    except (ValueError, UnicodeDecodeError):
        pass
    raise _error(f"`{cursor}` does not appear to be a valid cursor.", "INVALID_CURSOR_ARGUMENTS")


def connection(
    items: Sequence[Any], to_node: Callable[[Any], Any], name: str, *,
    first: int | None = None, last: int | None = None, after: str | None = None, before: str | None = None,
) -> dict[str, Any]:
    """One page of a Relay connection over `items`, with GitHub's pagination rules."""
    if first is None and last is None:
        raise _error(f"You must provide a `first` or `last` value to properly paginate the `{name}` connection.",
                     "MISSING_PAGINATION_BOUNDARIES")
    if first is not None and last is not None:
        raise _error(f"Passing both `first` and `last` to paginate the `{name}` connection is not supported.",
                     "INVALID_PAGINATION")
    for argument, value in (("first", first), ("last", last)):
        if value is not None and value > MAX_PAGE:
            raise _error(f"Requesting {value} records on the `{name}` connection exceeds the `{argument}` limit of "
                         f"{MAX_PAGE} records.", "EXCESSIVE_PAGINATION")
        if value is not None and value < 0:
            raise _error(f"`{argument}` on the `{name}` connection must be between 0 and {MAX_PAGE}, not {value}.",
                         "INVALID_PAGINATION")
    start, stop = 0, len(items)
    if after is not None:
        start = max(start, _cursor_index(after) + 1)
    if before is not None:
        stop = min(stop, _cursor_index(before))
    if first is not None:
        stop = min(stop, start + first)
    if last is not None:
        start = max(start, stop - last)
    start, stop = min(start, len(items)), max(min(stop, len(items)), 0)
    indices = range(start, max(stop, start))
    nodes = [to_node(items[i]) for i in indices]
    edges = [{"cursor": _cursor(i), "node": node} for i, node in zip(indices, nodes, strict=True)]
    return {
        "nodes": nodes,
        "edges": edges,
        "totalCount": len(items),
        "pageInfo": {
            "hasNextPage": indices.stop < len(items),
            "hasPreviousPage": start > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


def node_id(kind: str, key: object) -> str:
    return base64.b64encode(f"{kind}:{key}".encode()).decode().rstrip("=")


# ---------------------------------------------------------------------------------------------
# Resolvers: dicts for objects, callables (info, **args) for fields that take arguments


@dataclass
class RateContext:
    cost: int
    node_count: int
    state: BudgetState


def _commit(repo: str, oid: str, authored: Any, committed: Any) -> dict[str, Any]:
    return {
        "id": node_id("Commit", oid), "oid": oid, "abbreviatedOid": oid[:7], "authoredDate": iso_z(authored),
        "committedDate": iso_z(committed), "url": f"https://github.com/{repo}/commit/{oid}",
    }  # fmt: skip


def _graphql_state(deployment: Deployment) -> str | None:
    latest = deployment.latest_status
    if latest is None:
        return "PENDING"
    if latest.state == "success" and deployment.active:
        return "ACTIVE"
    return latest.state.upper()


def _deployment(deployment: Deployment) -> dict[str, Any]:
    repo = deployment.repo

    def status(item: Any) -> dict[str, Any]:
        return {
            "id": node_id("DeploymentStatus", item.id), "state": item.state.upper(),
            "createdAt": iso_z(item.created_at), "updatedAt": iso_z(item.created_at), "description": item.description,
            "environment": deployment.environment, "logUrl": None, "environmentUrl": None,
        }  # fmt: skip

    def statuses(_info: Any, first: int | None = None, last: int | None = None, after: str | None = None,
                 before: str | None = None) -> dict[str, Any]:  # fmt: skip
        newest_first = list(reversed(deployment.statuses))
        return connection(newest_first, status, "statuses", first=first, last=last, after=after, before=before)

    latest = deployment.latest_status
    return {
        "__typename": "Deployment",
        "id": node_id("Deployment", deployment.id),
        "databaseId": deployment.id,
        "createdAt": iso_z(deployment.created_at),
        "updatedAt": iso_z(deployment.updated_at),
        "environment": deployment.environment,
        "latestEnvironment": deployment.environment,
        "originalEnvironment": deployment.environment,
        "commitOid": deployment.sha,
        "commit": _commit(repo, deployment.sha, deployment.created_at, deployment.created_at),
        "description": deployment.description,
        "payload": deployment.payload,
        "task": "deploy",
        "state": _graphql_state(deployment),
        "latestStatus": status(latest) if latest is not None else None,
        "statuses": statuses,
    }


def _pull_request(pull: PullRequest) -> dict[str, Any]:
    repo = pull.repo

    def commit_node(commit: Any) -> dict[str, Any]:
        return {"id": node_id("PullRequestCommit", f"{pull.number}:{commit.oid}"),
                "commit": _commit(repo, commit.oid, commit.authored_at, commit.committed_at),
                "url": f"https://github.com/{repo}/pull/{pull.number}/commits/{commit.oid}"}  # fmt: skip

    def commits(_info: Any, first: int | None = None, last: int | None = None, after: str | None = None,
                before: str | None = None) -> dict[str, Any]:  # fmt: skip
        return connection(pull.commits, commit_node, "commits", first=first, last=last, after=after, before=before)

    merge = pull.merge_commit
    return {
        "id": node_id("PullRequest", f"{repo}#{pull.number}"),
        "number": pull.number,
        "title": pull.title,
        "state": pull.state,
        "url": f"https://github.com/{repo}/pull/{pull.number}",
        "createdAt": iso_z(pull.created_at),
        "updatedAt": iso_z(pull.updated_at),
        "closedAt": iso_z(pull.closed_at) if pull.closed_at else None,
        "mergedAt": iso_z(pull.merged_at) if pull.merged_at else None,
        "merged": pull.merged_at is not None,
        "closed": pull.state != "OPEN",
        "baseRefName": pull.base_ref,
        "headRefName": pull.head_ref,
        "mergeCommit": _commit(repo, merge, pull.merged_at, pull.merged_at) if merge else None,
        "commits": commits,
    }


class _Root:
    """The Query type's fields."""

    def __init__(self, history: History, rate: RateContext):
        self.history = history
        self.rate = rate
        self.repos = {repo.lower(): repo for repo in history.deployments}

    def node(self, _info: Any, id: str) -> dict[str, Any]:  # noqa: A002 (GitHub's argument name)
        found = next((d for served in self.history.deployments.values() for d in served
                      if node_id("Deployment", d.id) == id), None)  # fmt: skip
        if found is None:
            raise _error(f"Could not resolve to a node with the global id of '{id}'", "NOT_FOUND")
        return _deployment(found)

    def viewer(self, _info: Any) -> dict[str, Any]:
        return {"login": VIEWER_LOGIN, "id": node_id("User", VIEWER_LOGIN), "databaseId": 1_000_001,
                "name": "Acme scorecard"}  # fmt: skip

    def rateLimit(self, _info: Any, dryRun: bool = False) -> dict[str, Any]:
        state = self.rate.state
        return {"cost": self.rate.cost, "limit": state.limit, "nodeCount": self.rate.node_count,
                "remaining": state.remaining, "used": state.used,
                "resetAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.reset))}  # fmt: skip

    def repository(self, _info: Any, owner: str, name: str, followRenames: bool = True) -> dict[str, Any]:
        repo = self.repos.get(f"{owner}/{name}".lower())
        if repo is None:
            raise _error(f"Could not resolve to a Repository with the name '{owner}/{name}'.", "NOT_FOUND")
        return self._repository(repo)

    def _repository(self, repo: str) -> dict[str, Any]:
        history = self.history

        def deployments(_info: Any, first: int | None = None, last: int | None = None, after: str | None = None,
                        before: str | None = None, environments: list[str] | None = None,
                        orderBy: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
            items = list(history.deployments[repo])
            if environments:
                wanted = set(environments)
                items = [d for d in items if d.environment in wanted]
            if (orderBy or {}).get("direction") == "DESC":
                items.reverse()
            return connection(items, _deployment, "deployments", first=first, last=last, after=after, before=before)

        def pull_requests(_info: Any, first: int | None = None, last: int | None = None, after: str | None = None,
                          before: str | None = None, states: list[str] | None = None, labels: list[str] | None = None,
                          baseRefName: str | None = None, headRefName: str | None = None,
                          orderBy: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
            items = list(history.pull_requests[repo])
            if states:
                items = [p for p in items if p.state in set(states)]
            if labels:
                items = []  # no simulated pull request has labels
            if baseRefName is not None:
                items = [p for p in items if p.base_ref == baseRefName]
            if headRefName is not None:
                items = [p for p in items if p.head_ref == headRefName]
            if orderBy:
                key = {"CREATED_AT": lambda p: (p.created_at, p.number),
                       "UPDATED_AT": lambda p: (p.updated_at, p.number),
                       "COMMENTS": lambda p: (0, p.number)}[orderBy["field"]]  # fmt: skip
                items.sort(key=key, reverse=orderBy.get("direction") == "DESC")
            return connection(items, _pull_request, "pullRequests", first=first, last=last, after=after, before=before)

        owner, name = repo.split("/", 1)
        return {"id": node_id("Repository", repo), "name": name, "nameWithOwner": repo,
                "url": f"https://github.com/{repo}", "deployments": deployments,
                "pullRequests": pull_requests}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The endpoint


@dataclass(frozen=True)
class GraphqlRequest:
    query: str
    variables: dict[str, Any]
    operation_name: str | None


def read_request(payload: Any) -> GraphqlRequest | str:
    """The parts of a POST body, or GitHub's message for a body without a query."""
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return "A query attribute must be specified and must be a string."
    variables = payload.get("variables") or {}
    if isinstance(variables, str):
        try:
            variables = json.loads(variables) if variables.strip() else {}
        except ValueError:
            return "Variables are invalid JSON."
    if not isinstance(variables, dict):
        return "Variables are invalid JSON."
    name = payload.get("operationName")
    return GraphqlRequest(payload["query"], variables, name if isinstance(name, str) and name else None)


@dataclass
class Prepared:
    """A query that passed validation, with its cost; or the errors to answer with."""

    document: Any = None
    errors: list[dict[str, Any]] | None = None
    cost: int = 1
    node_count: int = 0


def prepare(request: GraphqlRequest) -> Prepared:
    schema = github_schema()
    try:
        document = parse(request.query)
    except GraphQLError as error:
        return Prepared(errors=[dict(error.formatted)])
    errors = validate(schema, document, [*specified_rules, ServedFieldsRule])
    if errors:
        return Prepared(errors=[_ruby(error) for error in errors])
    cost, nodes = query_cost(document, request.operation_name, request.variables)
    return Prepared(document=document, cost=cost, node_count=nodes)


def run(history: History, request: GraphqlRequest, prepared: Prepared, state: BudgetState) -> dict[str, Any]:
    """Execute a prepared query; the answer's JSON (data, and errors if any)."""
    root = _Root(history, RateContext(prepared.cost, prepared.node_count, state))
    result = execute(github_schema(), prepared.document, root_value=root, variable_values=request.variables,
                     operation_name=request.operation_name)  # fmt: skip
    answer: dict[str, Any] = {"data": result.data}
    if result.errors:
        answer["errors"] = [_github_error(error) for error in result.errors]
        if result.data is None:
            answer.pop("data")
    return answer
