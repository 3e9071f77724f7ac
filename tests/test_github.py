"""The GitHub connector: GraphQL documents valid against GitHub's schema, paging and stopping, rate limits and
retries, GraphQL errors, vendor nodes to canonical records. No network (`responses`), no real sleeping (sleep is
injected), no wall clock (windows are fixed dates; where a wait is computed from "now", time.time is fixed)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import graphql
import pandas as pd
import pydantic
import pytest
import responses

from connectors.base import SourceContext, SourceError
from connectors.github import extract, queries
from connectors.github.client import DEFAULT_RATE_LIMIT_WAIT, GithubClient, graphql_rate_limit, graphql_url
from connectors.github.config import DEFAULT_CHANGE_PATTERN, GithubConfig
from connectors.github.source import GithubSource, github_source
from connectors.services import ServiceMapping
from connectors.simulator.github_graphql import github_schema

HERE = Path(__file__).parent
DATA = HERE / "data" / "github"
GRAPHQL = "https://api.github.com/graphql"
TOKEN = "ghp_FAKE_TOKEN_123"
ENVIRON = {"GITHUB_TOKEN": TOKEN}
SERVICES = {"checkout": ServiceMapping(github_repos=["acme/checkout"])}
START, END = pd.Timestamp("2026-10-10T00:00:00Z"), pd.Timestamp("2026-10-11T00:00:00Z")
NOW = pd.Timestamp("2026-10-10T12:00:00Z").timestamp()  # the fixed "now" of rate-limit waits


def iso(stamp: pd.Timestamp | str) -> str:
    return pd.Timestamp(stamp).strftime("%Y-%m-%dT%H:%M:%SZ")


def errors_body(name: str) -> dict:
    return json.loads((DATA / "errors.json").read_text())[name]


def deployment(number: int, created: str | pd.Timestamp, *, state: str | None = "SUCCESS",
               status_at: str | pd.Timestamp | None = None, environment: str = "production",
               description: str | None = None, payload: str = "{}",
               live_at: str | pd.Timestamp | None = None) -> dict:  # fmt: skip
    """A Deployment node as queries.batched("deployments", n) asks for it; its (latest) status 5 minutes after
    creation unless given; with `live_at`, a SUCCESS status then before it (the latest an INACTIVE one, say)."""
    created = pd.Timestamp(created)
    status = None if state is None else {"state": state, "createdAt": iso(status_at or created + pd.Timedelta("5min"))}
    earlier = [{"state": "SUCCESS", "createdAt": iso(live_at)}] if live_at is not None else []
    return {
        "id": f"DE_{number}",
        "databaseId": number,
        "createdAt": iso(created),
        "updatedAt": iso(created + pd.Timedelta("5min")),
        "environment": environment,
        "commitOid": f"{number:040x}",
        "description": description,
        "payload": payload,
        "latestStatus": status,
        "statuses": {"nodes": ([status] if status else []) + earlier,  # newest first, as GitHub's REST lists them
                     "pageInfo": {"hasNextPage": False, "endCursor": None}},
    }


def pull_request(number: int, updated: str | pd.Timestamp, *, authored: str | None = None,
                 committed: str = "2026-10-01T08:00:00Z") -> dict:  # fmt: skip
    updated = pd.Timestamp(updated)
    return {
        "number": number,
        "createdAt": iso(updated - pd.Timedelta("2D")),
        "updatedAt": iso(updated),
        "mergedAt": iso(updated - pd.Timedelta("1min")),
        "mergeCommit": {"oid": f"{number:040x}"},
        "commits": {"nodes": [{"commit": {"authoredDate": authored, "committedDate": committed}}]},
    }


class FakeGithub:
    """GitHub's GraphQL endpoint for some repositories: serves their connections 100 a page, newest first, with
    opaque cursors, filtering deployments by `environments` as GitHub does; an unknown repository is NOT_FOUND."""

    def __init__(self, deployments: dict[str, list[dict]] | None = None,
                 pull_requests: dict[str, list[dict]] | None = None,
                 statuses: dict[str, list[dict]] | None = None):  # fmt: skip
        self.connections = {"deployments": deployments or {}, "pullRequests": pull_requests or {}}
        self.statuses = statuses or {}  # a deployment's node id -> all its statuses, for DEPLOYMENT_STATUSES
        self.bodies: list[dict] = []

    def __call__(self, request) -> tuple[int, dict, str]:
        body = json.loads(request.body)
        self.bodies.append(body)
        variables = body["variables"]
        if "viewer" in body["query"]:
            return 200, {}, json.dumps({"data": {"viewer": {"login": "octocat"}}})
        if "query DeploymentStatuses" in body["query"]:
            nodes, page, info = self.page(self.statuses[variables["id"]], variables["cursor"])
            return 200, {}, json.dumps({"data": {"node": {"statuses": {"nodes": page, "pageInfo": info}}}})
        connection = "deployments" if "deployments(" in body["query"] else "pullRequests"
        data, errors = {}, []
        for alias in aliases(body):
            repo = f"{variables[f'{alias}_owner']}/{variables[f'{alias}_name']}"
            if repo not in self.connections[connection]:
                not_found = errors_body("not_found")["errors"][0]
                message = not_found["message"].replace("acme/nope", repo)
                data[alias] = None
                errors.append(not_found | {"path": [alias], "message": message})
                continue
            nodes = self.connections[connection][repo]
            if connection == "deployments":
                nodes = [n for n in nodes if n is None or n.get("environment") in variables["environments"]]
            nodes, page, info = self.page(nodes, variables[f"{alias}_cursor"])
            data[alias] = {connection: {"nodes": page, "pageInfo": info}}
        data["rateLimit"] = {"cost": 1, "remaining": 4000, "resetAt": "2026-10-10T13:00:00Z"}
        headers = {"x-ratelimit-remaining": "4000", "x-ratelimit-reset": str(int(NOW) + 3600)}
        return 200, headers, json.dumps({"data": data} | ({"errors": errors} if errors else {}))

    @staticmethod
    def page(nodes: list, cursor: str | None) -> tuple[list, list, dict]:
        """(nodes, the page of 100 after `cursor`, its pageInfo)."""
        offset = int(cursor.removeprefix("cursor:")) if cursor else 0
        page = nodes[offset : offset + 100]
        return nodes, page, {"hasNextPage": offset + 100 < len(nodes), "endCursor": f"cursor:{offset + len(page)}"}

    def cursors(self) -> list[str | None]:
        """The first repository's cursor of each request."""
        return [body["variables"].get("r0_cursor") for body in self.bodies]


def aliases(body: dict) -> list[str]:
    """The repository aliases of a batched request (r0, r1, ...), in order."""
    found = {name.removesuffix("_owner") for name in body["variables"] if name.endswith("_owner")}
    return sorted(found, key=lambda alias: int(alias[1:]))


def serve(fake: FakeGithub, url: str = GRAPHQL) -> FakeGithub:
    responses.add_callback(responses.POST, url, callback=fake, content_type="application/json")
    return fake


def make_source(sleeps: list[float] | None = None, *, services=SERVICES, environ=ENVIRON,
                **section) -> GithubSource:  # fmt: skip
    config = GithubConfig(**{"repos": ["acme/checkout"], **section})
    context = SourceContext(Path("."), services, ("production",))
    return github_source(config, context, environ, sleep=(sleeps if sleeps is not None else []).append)


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(time, "time", lambda: NOW)
    return NOW


# --- the documents -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> graphql.GraphQLSchema:
    """GitHub's published schema, the one the simulator executes queries against (one copy in the repository)."""
    return github_schema()


@pytest.mark.parametrize("name", sorted(queries.DOCUMENTS))
def test_every_query_validates_against_githubs_schema(schema, name):
    assert graphql.validate(schema, graphql.parse(queries.DOCUMENTS[name])) == []


def test_every_query_of_the_module_is_in_documents():
    documents = {name for name, value in vars(queries).items()
                 if isinstance(value, str) and "{" in value and not name.startswith("_")}  # fmt: skip
    assert {getattr(queries, name) for name in documents} <= set(queries.DOCUMENTS.values())


def test_the_schema_check_catches_a_wrong_field(schema):
    wrong = queries.batched("deployments", 1).replace("commitOid", "sha")
    assert [e.message for e in graphql.validate(schema, graphql.parse(wrong))] == [
        "Cannot query field 'sha' on type 'Deployment'."]  # fmt: skip


# --- where GraphQL is ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("base_url", "expected"), [
    ("https://api.github.com", "https://api.github.com/graphql"),
    ("https://api.github.com/", "https://api.github.com/graphql"),
    ("https://ghe.acme.internal/api/v3", "https://ghe.acme.internal/api/graphql"),
    ("https://ghe.acme.internal/api/v3/", "https://ghe.acme.internal/api/graphql"),
    ("http://127.0.0.1:8765/github", "http://127.0.0.1:8765/github/graphql"),
])  # fmt: skip
def test_graphql_url(base_url, expected):
    assert graphql_url(base_url) == expected


@responses.activate
def test_github_enterprise_is_asked_at_api_graphql():
    fake = serve(FakeGithub(), "https://ghe.acme.internal/api/graphql")
    make_source(base_url="https://ghe.acme.internal/api/v3").check()
    assert len(fake.bodies) == 1 and responses.calls[0].request.url == "https://ghe.acme.internal/api/graphql"


# --- check() ---------------------------------------------------------------------------------------------


@responses.activate
def test_check_sends_one_authenticated_viewer_query():
    fake = serve(FakeGithub())
    make_source().check()
    assert len(fake.bodies) == 1 and "viewer" in fake.bodies[0]["query"]
    assert responses.calls[0].request.headers["Authorization"] == f"bearer {TOKEN}"


@pytest.mark.parametrize("token_env", ["GITHUB_TOKEN", "GH_PAT_ACME"])
@responses.activate
def test_a_refused_token_stops_check_naming_the_variable_not_the_token(token_env):
    responses.add(responses.POST, GRAPHQL, json=errors_body("bad_credentials"), status=401)
    source = make_source(token_env=token_env, environ={token_env: TOKEN})
    with pytest.raises(SourceError) as caught:
        source.check()
    message = str(caught.value)
    assert message.startswith("sources.github") and token_env in message and "401" in message
    assert TOKEN not in message and "\n" not in message
    assert len(responses.calls) == 1  # a refusal is not retried


def test_an_unset_token_variable_is_a_source_error():
    with pytest.raises(SourceError, match=r"^environment variable GITHUB_TOKEN is not set \(sources.github"):
        make_source(environ={})


# --- deployments -------------------------------------------------------------------------------------------


@responses.activate
def test_deployments_are_paged_to_the_last_page_passing_cursors():
    created = pd.date_range(end="2026-10-10T23:00:00Z", periods=230, freq="min")[::-1]  # newest first
    fake = serve(FakeGithub({"acme/checkout": [deployment(1000 + i, t) for i, t in enumerate(created)]}))
    batch = make_source().fetch("deployments", START, END)
    assert fake.cursors() == [None, "cursor:100", "cursor:200"]
    assert all(b["variables"]["r0_owner"] == "acme" and b["variables"]["r0_name"] == "checkout" for b in fake.bodies)
    assert all(b["variables"]["environments"] == ["production"] for b in fake.bodies)
    assert len(batch.good) == 230 and batch.rejected.empty
    assert batch.good["source_id"].is_unique and batch.good["source_id"].str.match(r"^acme/checkout/1\d{3}$").all()


@responses.activate
def test_deployments_stop_past_the_window_plus_look_back_and_keep_late_statuses():
    """Window 10 Oct, look-back 3 days: page 1 ends on 9 Oct (before the window, inside the look-back), so page 2
    is read; it reaches 6 Oct, before the look-back, so page 3 is not."""
    after_end = [deployment(9000 + i, pd.Timestamp("2026-10-11T06:00:00Z") - pd.Timedelta(minutes=i)) for i in range(5)]
    inside = [deployment(5000 + i, pd.Timestamp("2026-10-10T20:00:00Z") - pd.Timedelta(minutes=i)) for i in range(90)]
    day_before = [deployment(4500 + i, pd.Timestamp("2026-10-09T20:00Z") - pd.Timedelta(minutes=i)) for i in range(5)]
    late = deployment(4001, "2026-10-08T12:00:00Z", status_at="2026-10-10T06:00:00Z")  # created 2 days before
    settled = deployment(4000, "2026-10-08T11:00:00Z")  # its status came on 8 Oct
    old = [deployment(3000 - i, pd.Timestamp("2026-10-06T12:00:00Z") - pd.Timedelta(hours=i)) for i in range(150)]
    fake = serve(FakeGithub({"acme/checkout": after_end + inside + day_before + [late, settled] + old}))
    batch = make_source().fetch("deployments", START, END)
    assert fake.cursors() == [None, "cursor:100"]
    kept = batch.good.set_index("source_id")
    assert len(kept) == 91 and "acme/checkout/4001" in kept.index and "acme/checkout/4000" not in kept.index
    assert kept.loc["acme/checkout/4001", "deployed_at"] == pd.Timestamp("2026-10-10T06:00:00Z")
    assert kept.loc["acme/checkout/4001", "updated_at"] == pd.Timestamp("2026-10-10T06:00:00Z")
    assert not kept.index.str.match(r"acme/checkout/(9|45)").any()  # created after the window, or the day before
    fake.bodies.clear()
    without = make_source(lookback_days=0).fetch("deployments", START, END)
    assert "acme/checkout/4001" not in set(without.good["source_id"])
    assert fake.cursors() == [None]  # without the look-back, the late status is missed


@responses.activate
def test_deployed_at_is_the_first_success_not_the_inactive_status_of_its_successor():
    superseded = deployment(1, "2026-10-10T10:00:00Z", state="INACTIVE", status_at="2026-10-10T18:00:00Z",
                            live_at="2026-10-10T10:05:00Z")  # fmt: skip
    failed = deployment(2, "2026-10-10T11:00:00Z", state="FAILURE", status_at="2026-10-10T11:07:00Z")
    serve(FakeGithub({"acme/checkout": [failed, superseded]}))
    rows = make_source().fetch("deployments", START, END).good.set_index("source_id")
    assert rows.loc["acme/checkout/1", ["deployed_at", "status", "updated_at"]].tolist() == [
        pd.Timestamp("2026-10-10T10:05:00Z"), "inactive", pd.Timestamp("2026-10-10T18:00:00Z")]
    assert rows.loc["acme/checkout/2", ["deployed_at", "status"]].tolist() == [  # never succeeded: its latest status
        pd.Timestamp("2026-10-10T11:07:00Z"), "failure"]


@responses.activate
def test_the_deployment_a_window_success_superseded_is_read_however_old():
    """Window 10 Oct: a deployment went live in it, so GitHub marked the one live before it INACTIVE then. That one
    is 6 days old, past the 3-day look-back: reading goes on to the page holding it, and no further."""
    new = deployment(900, "2026-10-10T10:00:00Z")
    failed = [deployment(800 - i, pd.Timestamp("2026-10-09T23:00:00Z") - pd.Timedelta(minutes=30 * i),
                         state="FAILURE") for i in range(250)]  # back to 4 Oct 19:30  # fmt: skip
    superseded = deployment(500, "2026-10-04T12:00:00Z", state="INACTIVE", status_at="2026-10-10T10:05:00Z",
                            live_at="2026-10-04T12:05:00Z")  # fmt: skip
    older = [deployment(400 - i, pd.Timestamp("2026-10-03T12:00:00Z") - pd.Timedelta(hours=i), state="INACTIVE",
                        live_at=pd.Timestamp("2026-10-03T12:05:00Z") - pd.Timedelta(hours=i)) for i in range(150)]
    fake = serve(FakeGithub({"acme/checkout": [new, *failed, superseded, *older]}))
    rows = make_source().fetch("deployments", START, END).good.set_index("source_id")
    assert fake.cursors() == [None, "cursor:100", "cursor:200"]  # the look-back alone stops after page 2
    assert rows.loc["acme/checkout/500", ["deployed_at", "status", "updated_at"]].tolist() == [
        pd.Timestamp("2026-10-04T12:05:00Z"), "inactive", pd.Timestamp("2026-10-10T10:05:00Z")]
    fake.bodies.clear()
    quiet = make_source().fetch("deployments", START + pd.Timedelta("2D"), END + pd.Timedelta("2D"))
    assert fake.cursors() == [None] and quiet.good.empty  # nothing went live in that window: the look-back rules


@responses.activate
def test_a_deployment_with_more_than_a_page_of_statuses_has_the_rest_read_by_its_node_id():
    statuses = [{"state": "IN_PROGRESS", "createdAt": iso(pd.Timestamp("2026-10-10T12:00Z") - pd.Timedelta(seconds=i))}
                for i in range(230)] + [{"state": "SUCCESS", "createdAt": "2026-10-10T09:00:00Z"}]  # fmt: skip
    node = deployment(7, "2026-10-10T08:55:00Z", state="IN_PROGRESS", status_at="2026-10-10T12:00:00Z")
    node["statuses"] = {"nodes": statuses[:100], "pageInfo": {"hasNextPage": True, "endCursor": "cursor:100"}}
    fake = serve(FakeGithub({"acme/checkout": [node]}, statuses={"DE_7": statuses}))
    row = make_source().fetch("deployments", START, END).good.iloc[0]
    assert row["deployed_at"] == pd.Timestamp("2026-10-10T09:00:00Z") and row["status"] == "in_progress"
    assert [(b["variables"].get("id"), b["variables"].get("cursor")) for b in fake.bodies[1:]] == [
        ("DE_7", "cursor:100"), ("DE_7", "cursor:200")]
    assert row["payload"]["statuses"]["nodes"] == statuses  # the node as read whole


@responses.activate
def test_look_back_is_configurable():
    nodes = [deployment(100 + i, pd.Timestamp("2026-10-10T20:00:00Z") - pd.Timedelta(hours=i)) for i in range(400)]
    fake = serve(FakeGithub({"acme/checkout": nodes}))  # hourly: page 1 reaches 6 Oct 17:00, page 2 2 Oct 13:00
    for days, pages in [(0, 1), (3, 1), (7, 2), (30, 4)]:
        fake.bodies.clear()
        make_source(lookback_days=days).fetch("deployments", START, END)
        assert len(fake.bodies) == pages, days


@responses.activate
def test_only_production_environments_are_asked_for_and_the_section_overrides_metrics():
    nodes = [deployment(1, "2026-10-10T10:00:00Z", environment="live"),
             deployment(2, "2026-10-10T11:00:00Z", environment="staging")]  # fmt: skip
    fake = serve(FakeGithub({"acme/checkout": nodes}))
    batch = make_source(production_environments=["live", "prod"]).fetch("deployments", START, END)
    assert fake.bodies[0]["variables"]["environments"] == ["live", "prod"]
    assert batch.good["source_id"].tolist() == ["acme/checkout/1"] and batch.good["environment"].tolist() == ["live"]


@pytest.mark.parametrize(("state", "status"), [
    ("SUCCESS", "success"), ("FAILURE", "failure"), ("ERROR", "error"), ("INACTIVE", "inactive"),
    ("IN_PROGRESS", "in_progress"), ("QUEUED", "queued"), ("PENDING", "queued"), ("WAITING", "queued"),
])  # fmt: skip
def test_deployment_states(state, status):
    assert extract.deployment_status({"state": state, "createdAt": "2026-10-10T10:00:00Z"}) == status


def test_every_github_status_state_is_mapped(schema):
    states = {value for value in schema.get_type("DeploymentStatusState").values}
    assert states == set(extract.DEPLOYMENT_STATES)


@responses.activate
def test_a_deployment_with_no_status_yet_is_queued_at_its_creation():
    node = deployment(7, "2026-10-10T10:00:00Z", state=None)
    serve(FakeGithub({"acme/checkout": [node]}))
    row = make_source().fetch("deployments", START, END).good.iloc[0]
    assert row["status"] == "queued" and row["deployed_at"] == pd.Timestamp("2026-10-10T10:00:00Z")
    assert row["updated_at"] == pd.Timestamp("2026-10-10T10:05:00Z")  # the node's updatedAt


@responses.activate
def test_a_deployment_record_keeps_the_vendor_node_as_payload():
    node = json.loads((DATA / "deployment_node.json").read_text())
    serve(FakeGithub({"acme/checkout": [node]}))
    row = make_source().fetch("deployments", START, END).good.iloc[0]
    assert row["payload"] == node
    assert {k: row[k] for k in ("source", "source_id", "service", "environment", "sha", "status", "change_id")} == {
        "source": "github", "source_id": "acme/checkout/1815000123", "service": "checkout",
        "environment": "production", "sha": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", "status": "success",
        "change_id": "CHG0030042",  # the payload's change_request wins over the description's CHG0030001
    }  # fmt: skip
    assert row["deployed_at"] == pd.Timestamp("2026-10-10T10:03:39Z")  # its SUCCESS status
    assert row["updated_at"] == pd.Timestamp("2026-10-10T10:03:40Z")  # updatedAt, a second after it


@pytest.mark.parametrize(("payload", "description", "expected"), [
    ('{"change_id": "CHG0030001"}', "Deploy OPS-7", "CHG0030001"),
    ('{"change_request": 30042}', None, "30042"),
    ("{}", "Release for CHG0012345, approved", "CHG0012345"),
    ("{}", "Deploy OPS-42 to production", "OPS-42"),
    ("not json", "hotfix PAY2-9", "PAY2-9"),
    ('{"change_id": ""}', "no ticket here, just v1-2", None),
    ("{}", None, None),
])  # fmt: skip
def test_change_id_from_the_payload_else_the_description(payload, description, expected):
    assert extract.change_id(payload, description, re.compile(DEFAULT_CHANGE_PATTERN)) == expected


@responses.activate
def test_the_change_pattern_is_configurable_and_its_group_is_the_id():
    node = deployment(8, "2026-10-10T10:00:00Z", description="Rollout for RFC-0077 (also OPS-1)")
    serve(FakeGithub({"acme/checkout": [node]}))
    batch = make_source(change_pattern=r"RFC-(\d+)").fetch("deployments", START, END)
    assert batch.good["change_id"].tolist() == ["0077"]


@responses.activate
def test_malformed_deployments_are_rejected_with_a_reason_and_the_page_is_kept():
    no_created = deployment(11, "2026-10-10T10:00:00Z", state=None)
    del no_created["createdAt"]
    unknown = deployment(12, "2026-10-10T11:00:00Z", state="EXPLODED")
    good = [deployment(13, "2026-10-10T12:00:00Z"), deployment(14, "2026-10-10T13:00:00Z")]
    serve(FakeGithub({"acme/checkout": [good[1], unknown, no_created, good[0]]}))
    batch = make_source().fetch("deployments", START, END)
    assert sorted(batch.good["source_id"]) == ["acme/checkout/13", "acme/checkout/14"]
    reasons = batch.rejected.set_index("source_id")
    assert reasons.loc["acme/checkout/11", ["column", "reason"]].tolist() == ["deployed_at", "missing"]
    assert reasons.loc["acme/checkout/12", "column"] == "status"
    assert "'EXPLODED' is not one of" in reasons.loc["acme/checkout/12", "reason"]


@responses.activate
def test_a_repo_no_service_claims_is_unmapped():
    nodes = [deployment(1, "2026-10-10T10:00:00Z")]
    fake = serve(FakeGithub({"acme/checkout": nodes, "acme/Legacy-Tool": nodes}))
    services = {"checkout": ServiceMapping(github_repos=["ACME/Checkout"])}  # names compare case-insensitively
    batch = make_source(services=services, repos=["acme/checkout", "acme/Legacy-Tool"]).fetch(
        "deployments", START, END)  # fmt: skip
    assert dict(zip(batch.good["source_id"], batch.good["service"], strict=True)) == {
        "acme/checkout/1": "checkout", "acme/Legacy-Tool/1": "unmapped"}  # fmt: skip
    assert batch.good["entity"].tolist() == ["acme/checkout", "acme/Legacy-Tool"]  # the repo it was mapped by
    assert len(fake.bodies) == 1 and aliases(fake.bodies[0]) == ["r0", "r1"]  # one request reads both


@responses.activate
def test_a_request_reads_a_page_of_25_repositories_and_only_those_with_more_are_asked_again():
    repos = [f"acme/svc{n}" for n in range(60)]
    nodes = {repo: [deployment(n, START + pd.Timedelta(hours=1))] for n, repo in enumerate(repos)}
    nodes["acme/svc30"] = [deployment(1000 + i, END - pd.Timedelta(minutes=5 * (i + 2))) for i in range(250)]
    fake = serve(FakeGithub(nodes))
    batch = make_source(repos=repos, services={}).fetch("deployments", START, END)
    # svc30's later pages ride along with the repositories not yet read, then alone
    assert [len(aliases(body)) for body in fake.bodies] == [25, 25, 11, 1]
    assert [body["variables"]["r0_name"] for body in fake.bodies] == ["svc0", "svc25", "svc30", "svc30"]
    assert fake.cursors()[2:] == ["cursor:100", "cursor:200"]
    assert len(batch.good) == 59 + 250 and batch.good["source_id"].is_unique


@responses.activate
def test_a_repo_github_does_not_know_is_a_source_error_naming_it():
    serve(FakeGithub({"acme/checkout": []}))
    with pytest.raises(SourceError) as caught:
        make_source(repos=["acme/checkout", "acme/nope"]).fetch("deployments", START, END)
    message = str(caught.value)
    assert message == ("sources.github: acme/nope deployments: GitHub said: "
                       "Could not resolve to a Repository with the name 'acme/nope'. (NOT_FOUND)")  # fmt: skip
    assert len(responses.calls) == 1  # both repositories in one request, not retried


def test_the_cursor_says_how_far_the_source_has_read_and_never_moves_back():
    from connectors.base import read_through

    assert read_through(None, END) == "2026-10-11T00:00:00+00:00"
    assert read_through("2026-10-20T00:00:00+00:00", END) == "2026-10-20T00:00:00+00:00"  # a backfill of older days
    assert read_through("2026-10-01T00:00:00Z", END) == "2026-10-11T00:00:00+00:00"
    assert read_through("page-7", END) == "2026-10-11T00:00:00+00:00"  # not a time: this window's end


@responses.activate
def test_kinds_github_has_none_of_send_no_request():
    batch = make_source().fetch("incidents", START, END)
    assert batch.read == 0 and batch.cursor is None and len(responses.calls) == 0


# --- pull requests ------------------------------------------------------------------------------------------


@responses.activate
def test_pull_requests_by_updated_at_desc_stop_past_the_window():
    updated = pd.date_range(end="2026-10-11T10:00:00Z", periods=280, freq="12min")[::-1]
    nodes = [pull_request(1000 + i, t) for i, t in enumerate(updated)]  # 280 over 56 hours, newest first
    fake = serve(FakeGithub(pull_requests={"acme/checkout": nodes}))
    batch = make_source().fetch("pull_requests", START, END)
    inside = sum(START <= t < END for t in updated)
    assert fake.cursors() == [None, "cursor:100"]  # page 2 reaches 9 Oct 18:12: page 3 is not asked for
    assert len(batch.good) == inside and batch.rejected.empty
    assert batch.good["updated_at"].between(START, END, inclusive="left").all()


@responses.activate
def test_a_pull_request_record():
    node = pull_request(12, "2026-10-10T09:00:00Z", authored="2026-10-02T07:00:00Z")
    plain = pull_request(13, "2026-10-10T10:00:00Z")  # no authoredDate: the committedDate
    serve(FakeGithub(pull_requests={"acme/checkout": [plain, node]}))
    good = make_source().fetch("pull_requests", START, END).good.set_index("source_id")
    row = good.loc["acme/checkout#12"]
    assert (row["source"], row["service"], row["merge_commit_sha"]) == ("github", "checkout", f"{12:040x}")
    assert row["created_at"] == pd.Timestamp("2026-10-08T09:00:00Z")
    assert row["merged_at"] == pd.Timestamp("2026-10-10T08:59:00Z")
    assert row["first_commit_at"] == pd.Timestamp("2026-10-02T07:00:00Z")
    assert row["payload"] == node
    assert good.loc["acme/checkout#13", "first_commit_at"] == pd.Timestamp("2026-10-01T08:00:00Z")


@responses.activate
def test_a_malformed_pull_request_is_rejected_and_its_page_kept():
    broken = pull_request(21, "2026-10-10T09:00:00Z")
    del broken["createdAt"]
    serve(FakeGithub(pull_requests={"acme/checkout": [pull_request(22, "2026-10-10T10:00:00Z"), broken, None]}))
    batch = make_source().fetch("pull_requests", START, END)
    assert batch.good["source_id"].tolist() == ["acme/checkout#22"]
    reasons = dict(zip(batch.rejected["source_id"].fillna("-"), batch.rejected["column"], strict=True))
    assert reasons == {"acme/checkout#21": "created_at", "-": "source_id"}


# --- rate limits, retries, giving up -------------------------------------------------------------------------


def page_of(nodes: list[dict], *, more: bool = False) -> dict:
    info = {"hasNextPage": more, "endCursor": "cursor:x" if more else None}
    return {"data": {"r0": {"deployments": {"nodes": nodes, "pageInfo": info}},
                     "rateLimit": {"cost": 1, "remaining": 0, "resetAt": "2026-10-10T13:00:00Z"}}}  # fmt: skip


@responses.activate
def test_graphql_rate_limited_in_a_200_waits_for_the_reset_and_retries(frozen_now):
    limited = errors_body("rate_limited")
    responses.add(responses.POST, GRAPHQL, json=limited, headers={"x-ratelimit-reset": str(int(NOW) + 120)})
    responses.add(responses.POST, GRAPHQL, json=page_of([deployment(1, "2026-10-10T10:00:00Z")]))
    sleeps: list[float] = []
    batch = make_source(sleeps).fetch("deployments", START, END)
    assert sleeps == [121.0] and len(responses.calls) == 2 and len(batch.good) == 1


def test_graphql_rate_limited_waits_until_rate_limit_reset_at_else_the_header_else_a_default():
    wait = graphql_rate_limit(clock=lambda: NOW)
    limited = errors_body("rate_limited")
    with_reset_at = {**limited, "data": {"rateLimit": {"resetAt": "2026-10-10T12:05:00Z"}}}  # NOW + 5 minutes
    assert wait(with_reset_at, {"x-ratelimit-reset": str(int(NOW) + 30)}) == 301.0
    assert wait(limited, {"x-ratelimit-reset": str(int(NOW) + 30)}) == 31.0
    assert wait(limited, {}) == DEFAULT_RATE_LIMIT_WAIT
    assert wait(errors_body("not_found"), {}) is None and wait(page_of([]), {}) is None


@responses.activate
def test_a_spent_budget_waits_until_the_reset_before_the_next_page(frozen_now):
    spent = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 45)}
    responses.add(responses.POST, GRAPHQL, json=page_of([deployment(2, "2026-10-10T11:00:00Z")], more=True),
                  headers=spent)  # fmt: skip
    responses.add(responses.POST, GRAPHQL, json=page_of([deployment(1, "2026-10-10T10:00:00Z")]))
    sleeps: list[float] = []
    batch = make_source(sleeps).fetch("deployments", START, END)
    assert sleeps == [46.0] and len(responses.calls) == 2 and len(batch.good) == 2


@responses.activate
def test_a_403_with_the_budget_spent_is_a_rate_limit_not_a_refusal(frozen_now):
    spent = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 10)}
    responses.add(responses.POST, GRAPHQL, json={"message": "API rate limit exceeded"}, status=403, headers=spent)
    responses.add(responses.POST, GRAPHQL, json={"data": {"viewer": {"login": "octocat"}}})
    sleeps: list[float] = []
    make_source(sleeps).check()
    assert sleeps == [11.0] and len(responses.calls) == 2


@responses.activate
def test_a_secondary_rate_limit_403_with_retry_after_is_waited_for():
    responses.add(responses.POST, GRAPHQL, json={"message": "You have exceeded a secondary rate limit."}, status=403,
                  headers={"Retry-After": "30", "x-ratelimit-remaining": "4000", "x-ratelimit-reset": "0"})  # fmt: skip
    responses.add(responses.POST, GRAPHQL, json={"data": {"viewer": {"login": "octocat"}}})
    sleeps: list[float] = []
    make_source(sleeps).check()
    assert sleeps == [30.0] and len(responses.calls) == 2


@responses.activate
def test_a_502_is_retried():
    responses.add(responses.POST, GRAPHQL, body="<html>Bad gateway</html>", status=502)
    responses.add(responses.POST, GRAPHQL, json=page_of([deployment(1, "2026-10-10T10:00:00Z")]))
    sleeps: list[float] = []
    batch = make_source(sleeps).fetch("deployments", START, END)
    assert len(responses.calls) == 2 and len(sleeps) == 1 and len(batch.good) == 1


@responses.activate
def test_giving_up_is_a_source_error_naming_sources_github_and_the_repo():
    responses.add(responses.POST, GRAPHQL, body="<html>Bad gateway</html>", status=502)
    sleeps: list[float] = []
    with pytest.raises(SourceError) as caught:
        make_source(sleeps).fetch("deployments", START, END)
    message = str(caught.value)
    assert message.startswith("sources.github: POST https://api.github.com/graphql: gave up after 6 attempts: HTTP 502")
    assert "acme/checkout deployments" in message and TOKEN not in message and "\n" not in message
    assert len(responses.calls) == 6 and len(sleeps) == 5


@responses.activate
def test_a_token_refused_mid_read_names_the_variable():
    responses.add(responses.POST, GRAPHQL, json=errors_body("bad_credentials"), status=401)
    with pytest.raises(SourceError) as caught:
        make_source().fetch("pull_requests", START, END)
    assert "GITHUB_TOKEN" in str(caught.value) and TOKEN not in str(caught.value)


def test_the_client_counts_requests_and_keeps_the_token_in_the_session_only():
    client = GithubClient("https://api.github.com", TOKEN)
    assert client.requests_sent == 0 and client.url == GRAPHQL
    assert client.http.session.headers["Authorization"] == f"bearer {TOKEN}"


# --- the config section ---------------------------------------------------------------------------------------


def test_config_defaults_and_checks():
    config = GithubConfig()
    assert (config.lookback_days, config.change_pattern, config.repos) == (3, DEFAULT_CHANGE_PATTERN, [])
    with pytest.raises(pydantic.ValidationError, match="owner/name"):
        GithubConfig(repos=["checkout"])
    with pytest.raises(pydantic.ValidationError, match="not a regular expression"):
        GithubConfig(change_pattern="CHG(")
    with pytest.raises(pydantic.ValidationError):
        GithubConfig(lookback_days=-1)


# --- paging that does not end ---------------------------------------------------------------------------------


def endless_connection(nodes_of_page, total=None):
    """A GraphQL callback whose one repository always has a next page, under a cursor never sent before."""
    bodies = []

    def answer(request):
        bodies.append(json.loads(request.body))
        page = {"nodes": nodes_of_page(len(bodies)), "pageInfo": {"hasNextPage": True, "endCursor": f"c{len(bodies)}"}}
        if total is not None:
            page["totalCount"] = total
        return 200, {}, json.dumps({"data": {"r0": {"deployments": page}}})

    return answer, bodies


@responses.activate
def test_an_end_cursor_that_moves_while_pages_come_back_empty_stops_at_the_first_empty_page():
    recent = [deployment(n, "2026-10-10T12:00:00Z") for n in range(3)]
    answer, bodies = endless_connection(lambda page: recent if page == 1 else [])
    responses.add_callback(responses.POST, GRAPHQL, callback=answer, content_type="application/json")
    with pytest.raises(SourceError) as raised:
        make_source().fetch("deployments", START, END)
    assert str(raised.value) == ("sources.github: acme/checkout deployments: page 2 was empty, yet the vendor promises "
                                 "another: the listing does not advance; stopped")
    assert [body["variables"]["r0_cursor"] for body in bodies] == [None, "c1"]


@responses.activate
def test_a_connection_past_its_own_total_count_stops_at_the_ceiling_it_implies():
    answer, bodies = endless_connection(lambda page: [deployment(100 * page + n, "2026-10-10T12:00:00Z")
                                                      for n in range(100)], total=120)  # fmt: skip
    responses.add_callback(responses.POST, GRAPHQL, callback=answer, content_type="application/json")
    with pytest.raises(SourceError, match=r"^sources.github: acme/checkout deployments: the vendor still promises more "
                                          r"after 9 pages of 900 deployments, more than the vendor's own total"):
        make_source().fetch("deployments", START, END)
    assert len(bodies) == 9  # what 120 needs (2 pages), twice over, plus 5


@responses.activate
def test_statuses_whose_cursor_moves_over_the_same_page_stop():
    statuses = [{"state": "IN_PROGRESS", "createdAt": iso(pd.Timestamp("2026-10-10T12:00Z") - pd.Timedelta(seconds=i))}
                for i in range(100)]  # fmt: skip
    node = deployment(7, "2026-10-10T08:55:00Z", state="IN_PROGRESS", status_at="2026-10-10T12:00:00Z")
    node["statuses"] = {"nodes": statuses, "pageInfo": {"hasNextPage": True, "endCursor": "c0"}}
    fake = FakeGithub({"acme/checkout": [node]})
    sent = []

    def answer(request):
        body = json.loads(request.body)
        if "query DeploymentStatuses" not in body["query"]:
            return fake(request)
        sent.append(body["variables"]["cursor"])
        page = {"nodes": statuses, "pageInfo": {"hasNextPage": True, "endCursor": f"c{len(sent)}"}}
        return 200, {}, json.dumps({"data": {"node": {"statuses": page}}})

    responses.add_callback(responses.POST, GRAPHQL, callback=answer, content_type="application/json")
    with pytest.raises(SourceError, match=r"^sources.github: acme/checkout deployment 7 statuses: page 2 repeated page "
                                          r"1, yet the vendor promises another"):
        make_source().fetch("deployments", START, END)
    assert sent == ["c0"]
