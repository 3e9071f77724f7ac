"""The GraphQL documents the GitHub connector sends, every one validated against GitHub's public schema
(tests/specs/github/schema.graphql) by the tests. Each also asks for `rateLimit`, so a page's cost is seen;
connections are read `first: 100`, GitHub's maximum page."""

from __future__ import annotations

# The pre-flight: one cheap authenticated request (a refused token answers 401).
VIEWER = """
query Viewer {
  viewer { login }
  rateLimit { cost remaining resetAt }
}
"""

# A repository's deployments to the given environments, newest created first (GitHub has no "updated since").
DEPLOYMENTS = """
query Deployments($owner: String!, $name: String!, $environments: [String!], $cursor: String) {
  repository(owner: $owner, name: $name) {
    deployments(first: 100, after: $cursor, orderBy: {field: CREATED_AT, direction: DESC},
                environments: $environments) {
      nodes {
        databaseId
        createdAt
        updatedAt
        environment
        commitOid
        description
        payload
        latestStatus { state createdAt }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
  rateLimit { cost remaining resetAt }
}
"""

# A repository's merged pull requests, most recently updated first.
PULL_REQUESTS = """
query PullRequests($owner: String!, $name: String!, $cursor: String) {
  repository(owner: $owner, name: $name) {
    pullRequests(first: 100, after: $cursor, states: [MERGED], orderBy: {field: UPDATED_AT, direction: DESC}) {
      nodes {
        number
        createdAt
        updatedAt
        mergedAt
        mergeCommit { oid }
        commits(first: 1) { nodes { commit { authoredDate committedDate } } }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
  rateLimit { cost remaining resetAt }
}
"""

DOCUMENTS = {"viewer": VIEWER, "deployments": DEPLOYMENTS, "pull_requests": PULL_REQUESTS}
