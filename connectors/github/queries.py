"""The GraphQL documents the GitHub connector sends, every one validated against GitHub's public schema
(tests/specs/github/schema.graphql) by the tests. Each also asks for `rateLimit`, so a page's cost is seen;
connections are read `first: 100`, GitHub's maximum page, with their `totalCount` (what bounds their paging)."""

from __future__ import annotations

# The pre-flight: one cheap authenticated request (a refused token answers 401).
VIEWER = """
query Viewer {
  viewer { login }
  rateLimit { cost remaining resetAt }
}
"""

# A deployment's statuses: the first SUCCESS is when it went live (latestStatus may be a later INACTIVE). GitHub
# does not document their order, so a page is read whole; a deployment has a handful, and one with more than a page
# has the rest read by DEPLOYMENT_STATUSES. Asking for them costs rate-limit points (about one per repository page:
# GitHub counts 100 nested status connections as one request's worth), not requests.
_STATUS_PAGE = """
fragment StatusPage on DeploymentStatusConnection {
  nodes { state createdAt }
  pageInfo { hasNextPage endCursor }
}
"""
# The next page of one deployment's statuses, by the deployment's node id.
DEPLOYMENT_STATUSES = """
query DeploymentStatuses($id: ID!, $cursor: String) {
  node(id: $id) { ... on Deployment { statuses(first: 100, after: $cursor) { ...StatusPage } } }
  rateLimit { cost remaining resetAt }
}
""" + _STATUS_PAGE

# One request reads a page of each of several repositories' connections: the repository fields are aliased r0, r1,
# ... with variables r0_owner, r0_name, r0_cursor, ...: `batched(CONNECTION, n)` writes the document for n of them.
_DEPLOYMENT_PAGE = """
fragment DeploymentPage on DeploymentConnection {
  nodes {
    id
    databaseId
    createdAt
    updatedAt
    environment
    commitOid
    description
    payload
    latestStatus { state createdAt }
    statuses(first: 100) { ...StatusPage }
  }
  pageInfo { hasNextPage endCursor }
  totalCount
}
""" + _STATUS_PAGE
# Deployments to the given environments, newest created first (GitHub has no "updated since").
_DEPLOYMENTS_FIELD = ("deployments(first: 100, after: $r{i}_cursor, orderBy: {{field: CREATED_AT, direction: DESC}}, "
                     "environments: $environments) {{ ...DeploymentPage }}")  # fmt: skip
_DEPLOYMENTS_VARIABLES = "$environments: [String!]"

_PULL_REQUEST_PAGE = """
fragment PullRequestPage on PullRequestConnection {
  nodes {
    number
    createdAt
    updatedAt
    mergedAt
    mergeCommit { oid }
    commits(first: 1) { nodes { commit { authoredDate committedDate } } }
  }
  pageInfo { hasNextPage endCursor }
  totalCount
}
"""
# Merged pull requests, most recently updated first.
_PULL_REQUESTS_FIELD = ("pullRequests(first: 100, after: $r{i}_cursor, states: [MERGED], "
                       "orderBy: {{field: UPDATED_AT, direction: DESC}}) {{ ...PullRequestPage }}")  # fmt: skip

_CONNECTIONS = {
    "deployments": ("Deployments", _DEPLOYMENTS_VARIABLES, _DEPLOYMENTS_FIELD, _DEPLOYMENT_PAGE),
    "pullRequests": ("PullRequests", "", _PULL_REQUESTS_FIELD, _PULL_REQUEST_PAGE),
}


def alias(position: int) -> str:
    """The alias of the `position`-th repository of a batched document."""
    return f"r{position}"


def batched(connection: str, count: int) -> str:
    """The document reading one page of `connection` ("deployments", "pullRequests") of `count` repositories."""
    name, shared, field, fragment = _CONNECTIONS[connection]
    variables = [shared] if shared else []
    fields = []
    for i in range(count):
        variables.append(f"$r{i}_owner: String!, $r{i}_name: String!, $r{i}_cursor: String")
        fields.append(f"  {alias(i)}: repository(owner: $r{i}_owner, name: $r{i}_name) {{ {field.format(i=i)} }}")
    body = "\n".join(fields)
    return f"query {name}({', '.join(variables)}) {{\n{body}\n  rateLimit {{ cost remaining resetAt }}\n}}\n{fragment}"


DOCUMENTS = {"viewer": VIEWER, "deployment statuses": DEPLOYMENT_STATUSES,
             **{f"{connection} x{count}": batched(connection, count)
                for connection in _CONNECTIONS for count in (1, 3)}}  # fmt: skip
