"""The vendor API simulator: the history it serves, GitHub (GraphQL against GitHub's schema, REST against
GitHub's OpenAPI description in tests/specs/github), PagerDuty, auth, rate-limit headers, faults, and
the truth files it writes."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests

from connectors.files.read import read_records
from connectors.github import extract, queries
from connectors.records import SCHEMAS, normalise
from connectors.simulator.faults import FAILING_KINDS, FAULT_KINDS, MAX_FAILURES_IN_A_ROW, FaultPlan, fault_at
from connectors.simulator.generate import DatasetSpec, generate_dataset
from connectors.simulator.github_graphql import LOAD_SECONDS, SERVED_FIELDS, github_schema, node_id
from connectors.simulator.history import (
    PRIORITY_BY_SEVERITY,
    build_history,
    github_repo,
    pagerduty_service_id,
    service_mapping,
    service_names,
)
from connectors.simulator.server import make_app, running, vendor_urls
from connectors.simulator.truth import truth_frames
from pipelines.cli.output import records as output_records
from pipelines.cli.output import to_json
from pipelines.cli.truth import write_truth
from scoring.metrics import METRIC_COLUMNS, derive_metrics

END = pd.Timestamp("2026-03-01", tz="UTC")
SEED = 11
SPEC_DIR = Path(__file__).parent / "specs" / "github"
GITHUB_AUTH = {"Authorization": "bearer test-token"}
PAGERDUTY_AUTH = {"Authorization": "Token token=test-key", "Accept": "application/vnd.pagerduty+json;version=2"}

DEPLOYMENTS = """
query Deployments($owner: String!, $name: String!, $environments: [String!], $cursor: String, $first: Int = 100) {
  repository(owner: $owner, name: $name) {
    deployments(first: $first, after: $cursor, orderBy: {field: CREATED_AT, direction: DESC},
                environments: $environments) {
      nodes {
        databaseId createdAt updatedAt environment commitOid description payload
        latestStatus { state createdAt }
        statuses(first: 100) { nodes { state createdAt } }
      }
      pageInfo { hasNextPage endCursor }
      totalCount
    }
  }
  rateLimit { cost remaining resetAt }
}
"""
PULL_REQUESTS = """
query PullRequests($owner: String!, $name: String!, $cursor: String) {
  repository(owner: $owner, name: $name) {
    pullRequests(first: 100, after: $cursor, states: [MERGED], orderBy: {field: UPDATED_AT, direction: DESC}) {
      nodes {
        number createdAt updatedAt mergedAt
        mergeCommit { oid }
        commits(first: 1) { nodes { commit { authoredDate committedDate } } }
      }
      pageInfo { hasNextPage endCursor }
      totalCount
    }
  }
  rateLimit { cost remaining resetAt }
}
"""


@pytest.fixture(scope="module")
def history():
    return build_history(end=END, seed=SEED, days=30, services=3)


@pytest.fixture(scope="module")
def base_url(history):
    with running(history) as url:
        yield url


@pytest.fixture(scope="module")
def urls(base_url):
    return vendor_urls(base_url)


@pytest.fixture(scope="module")
def truth(history):
    return truth_frames(history)


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


def graphql(http: requests.Session, urls: dict, query: str, **variables: Any) -> dict:
    response = http.post(urls["github_graphql"], json={"query": query, "variables": variables}, headers=GITHUB_AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def pagerduty(http: requests.Session, urls: dict, **params: Any) -> requests.Response:
    return http.get(f"{urls['pagerduty']}/incidents", params=params, headers=PAGERDUTY_AUTH)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


# ---------------------------------------------------------------------------------------------
# The history


def test_same_seed_same_history_and_another_seed_differs(history):
    assert build_history(end=END, seed=SEED, days=30, services=3) == history
    other = build_history(end=END, seed=SEED + 1, days=30, services=3)
    assert other.deployments != history.deployments
    assert history.services == ("checkout", "payments", "search")
    assert history.start == datetime(2026, 1, 30, tzinfo=UTC) and history.end == END.to_pydatetime()


def test_served_records_are_generate_py_records_latest_version_only(history, truth):
    raw = generate_dataset(DatasetSpec(seed=SEED, days=30, end=END, services=history.services, bad_rows=0))
    generated = {kind: normalise(kind, raw[kind]).good for kind in ("incidents", "deployments", "pull_requests")}

    def same(served: pd.DataFrame, expected: pd.DataFrame, columns: list[str]) -> None:
        pd.testing.assert_frame_equal(served.sort_values("source_id")[columns].reset_index(drop=True),
                                      expected.sort_values("source_id")[columns].reset_index(drop=True),
                                      check_dtype=False)  # fmt: skip

    paged = generated["incidents"][generated["incidents"]["source"] == "pagerduty"]
    served = truth["incidents"][truth["incidents"]["source"] == "pagerduty"]
    same(served, paged, ["source_id", "service", "severity", "title", "status", "opened_at", "resolved_at",
                         "updated_at"])  # fmt: skip
    deployments = generated["deployments"].assign(
        source_id=lambda f: "acme/" + f["service"] + "/" + f["source_id"])
    # A Jira service's change requests are Jira issues: its deployments name their keys (test_simulator_itsm.py)
    jira = (deployments["service"].map(history.itsm_tools) == "jira") & deployments["change_id"].notna()
    deployments["change_id"] = deployments["change_id"].where(~jira, "OPS-n")
    served = truth["deployments"].assign(change_id=truth["deployments"]["change_id"].str.replace(
        r"^OPS-\d+$", "OPS-n", regex=True), status=truth["deployments"]["status"].replace("inactive", "success"))
    same(served, deployments, ["source_id", "service", "environment", "sha", "deployed_at", "status",
                                             "change_id"])  # fmt: skip
    assert not (deployments["status"] == "in_progress").any()  # the stale copies are gone
    merged = generated["pull_requests"][generated["pull_requests"]["merged_at"].notna()]
    same(truth["pull_requests"], merged, ["source_id", "service", "created_at", "first_commit_at", "merged_at",
                                          "merge_commit_sha", "updated_at"])  # fmt: skip


def test_deployments_are_created_minutes_before_their_final_status(history):
    served = [d for deployments in history.deployments.values() for d in deployments]
    final = [d.went_live or d.latest_status.created_at for d in served]
    leads = [(at - d.created_at).total_seconds() for d, at in zip(served, final, strict=True)]
    assert min(leads) >= 60 and max(leads) <= 480
    assert all(d.updated_at == d.latest_status.created_at for d in served)
    payloads = [json.loads(d.payload) for d in served if d.payload != "{}"]
    assert payloads and all(re.fullmatch(r"CHG\d{7}|OPS-\d+", p["change_request"]) for p in payloads)


def test_a_success_marks_the_environments_earlier_successful_deployments_inactive_then(history):
    """GitHub's auto_inactive: per repository and environment, one deployment is live; each success supersedes the
    earlier-created live one at that moment, with an inactive status that moves its updatedAt."""
    served = [d for deployments in history.deployments.values() for d in deployments]
    by_id = {(d.repo, d.id): d for d in served}
    superseded = [d for d in served if d.latest_status.state == "inactive"]
    assert len(superseded) > len(served) / 2
    for d in superseded:
        states = [status.state for status in d.statuses]
        assert states == ["in_progress", "success", "inactive"] and d.updated_at == d.statuses[-1].created_at
        successor = [o for o in served if (o.repo, o.environment) == (d.repo, d.environment)
                     and o.went_live == d.statuses[-1].created_at and o.created_at > d.created_at]  # fmt: skip
        assert successor, d.id
    live = Counter((d.repo, d.environment) for d in served if d.active)
    assert set(live.values()) == {1}  # one per repository and environment
    assert all(by_id[(d.repo, d.id)].went_live for d in served if d.active)
    ids = [s.id for d in served for s in d.statuses]
    assert len(ids) == len(set(ids))


def test_github_as_of_an_earlier_moment_shows_what_a_nightly_run_read_then(history):
    moment = datetime(2026, 2, 20, tzinfo=UTC)
    earlier = history.github_as_of(moment)
    for repo, served in history.deployments.items():
        then = {d.id: d for d in earlier.deployments[repo]}
        assert set(then) == {d.id for d in served if d.created_at < moment}
        for d in served:
            if d.id in then:
                assert all(s.created_at < moment for s in then[d.id].statuses)
                assert then[d.id].went_live == (d.went_live if d.went_live and d.went_live < moment else None)
                assert then[d.id].updated_at <= d.updated_at
    superseded_later = [d for ds in history.deployments.values() for d in ds
                        if d.went_live and d.went_live < moment <= d.statuses[-1].created_at]  # fmt: skip
    assert superseded_later and all(
        next(e for e in earlier.deployments[d.repo] if e.id == d.id).active for d in superseded_later)
    assert earlier.incidents == history.incidents


def test_null_priorities_are_a_share_the_urgency_fallback_reads_back_exactly():
    big = build_history(end=END, seed=SEED)  # the defaults: 10 services, 180 days
    assert len(big.services) == 10 and big.days == 180
    frames = truth_frames(big)
    severity = frames["incidents"].set_index("source_id")["severity"]
    without = [i for i in big.incidents if i.priority is None]
    assert 0.08 <= len(without) / len(big.incidents) <= 0.25
    assert {(i.urgency, severity[i.id]) for i in without} <= {("high", "sev2"), ("low", "sev4")}
    with_priority = [i for i in big.incidents if i.priority is not None]
    assert all(PRIORITY_BY_SEVERITY[severity[i.id]] == i.priority for i in with_priority)


def test_a_delay_is_waited_before_every_answer(history, http):
    with running(make_app(history, delay=0.2)) as base_url:
        for _ in range(2):
            began = time.monotonic()
            assert pagerduty(http, vendor_urls(base_url), limit=1).status_code == 200
            assert time.monotonic() - began >= 0.2  # a lower bound: the server sleeps at least that long


def test_service_mapping_names_what_is_served(history, http, urls):
    mapping = service_mapping(history.services)
    assert mapping["checkout"] == {"github_repos": ["acme/checkout"], "pagerduty_services": [
        pagerduty_service_id("checkout")], "servicenow_cis": ["Checkout Service"]}
    assert all(re.fullmatch(r"P[0-9A-Z]{6}", m["pagerduty_services"][0]) for m in mapping.values())
    assert service_mapping(3) == mapping and service_names(12)[-2:] == ("service-11", "service-12")
    listed = http.get(f"{urls['pagerduty']}/services", headers=PAGERDUTY_AUTH).json()["services"]
    assert {s["id"]: s["name"] for s in listed} == {m["pagerduty_services"][0]: name for name, m in mapping.items()}
    for name in history.services:
        assert http.get(f"{urls['github']}/repos/{github_repo(name)}/deployments", headers=GITHUB_AUTH).ok


# ---------------------------------------------------------------------------------------------
# GitHub GraphQL


def test_schema_is_githubs_built_once_and_serves_fields_it_has():
    schema = github_schema()
    assert github_schema() is schema
    assert "Deployment" in schema.type_map and len(schema.type_map) > 1000
    assert 0 < LOAD_SECONDS["schema"] < 30
    for type_name, fields in SERVED_FIELDS.items():
        assert fields <= set(schema.type_map[type_name].fields), type_name


def test_graphql_edges_last_and_before(history, http, urls):
    query = """query($before: String) { repository(owner: "acme", name: "search") {
      deployments(last: 3, before: $before) { edges { cursor node { databaseId } }
        pageInfo { hasPreviousPage hasNextPage startCursor } } } }"""
    page = graphql(http, urls, query)["data"]["repository"]["deployments"]
    served = history.deployments["acme/search"]
    assert [e["node"]["databaseId"] for e in page["edges"]] == [d.id for d in served[-3:]]
    assert page["pageInfo"]["hasPreviousPage"] and not page["pageInfo"]["hasNextPage"]
    earlier = graphql(http, urls, query, before=page["pageInfo"]["startCursor"])["data"]["repository"]["deployments"]
    assert [e["node"]["databaseId"] for e in earlier["edges"]] == [d.id for d in served[-6:-3]]


def test_graphql_deployments_page_newest_first_to_the_last_page(history, http, urls):
    served = list(reversed(history.deployments["acme/checkout"]))
    production = [d for d in served if d.environment == "production"]
    assert len(production) > 100
    nodes, cursor, pages = [], None, 0
    while True:
        answer = graphql(http, urls, DEPLOYMENTS, owner="acme", name="checkout", environments=["production"],
                         cursor=cursor)  # fmt: skip
        assert "errors" not in answer
        connection = answer["data"]["repository"]["deployments"]
        assert connection["totalCount"] == len(production)
        nodes += connection["nodes"]
        pages += 1
        if not connection["pageInfo"]["hasNextPage"]:
            break
        cursor = connection["pageInfo"]["endCursor"]
    assert pages == math.ceil(len(production) / 100)
    assert [n["databaseId"] for n in nodes] == [d.id for d in production]
    first = nodes[0]
    assert utc(first["createdAt"]) < utc(first["latestStatus"]["createdAt"])
    assert first["latestStatus"]["state"] in ("SUCCESS", "FAILURE", "ERROR")
    assert answer["data"]["rateLimit"]["cost"] == 1


def test_graphql_deployments_read_as_the_truth(history, truth, http, urls):
    nodes = []
    for service in history.services:
        cursor = None
        while True:
            connection = graphql(http, urls, DEPLOYMENTS, owner="acme", name=service, cursor=cursor, first=50)[
                "data"]["repository"]["deployments"]
            nodes += [(service, node) for node in connection["nodes"]]
            if not connection["pageInfo"]["hasNextPage"]:
                break
            cursor = connection["pageInfo"]["endCursor"]
    read = pd.DataFrame({
        "source": "github", "source_id": [f"acme/{s}/{n['databaseId']}" for s, n in nodes],
        "service": [s for s, _ in nodes], "environment": [n["environment"] for _, n in nodes],
        "sha": [n["commitOid"] for _, n in nodes], "deployed_at": [extract.deployed_at(n) for _, n in nodes],
        "status": [n["latestStatus"]["state"].lower() for _, n in nodes],
        "change_id": [json.loads(n["payload"]).get("change_request") for _, n in nodes],
        "updated_at": [n["updatedAt"] for _, n in nodes],
    })  # fmt: skip
    read = normalise("deployments", read).good.sort_values("source_id").reset_index(drop=True)
    expected = truth["deployments"].sort_values("source_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(read, expected, check_dtype=False)
    assert read["change_id"].notna().any()


def test_graphql_statuses_are_the_rest_statuses(history, http, urls):
    nodes = graphql(http, urls, DEPLOYMENTS, owner="acme", name="checkout", first=20)["data"]["repository"][
        "deployments"]["nodes"]  # fmt: skip
    for node in nodes:
        rest = http.get(f"{urls['github']}/repos/acme/checkout/deployments/{node['databaseId']}/statuses",
                        headers=GITHUB_AUTH).json()  # fmt: skip
        assert [(s["state"].upper(), s["created_at"]) for s in rest] == [
            (s["state"], s["createdAt"]) for s in node["statuses"]["nodes"]]
    assert {n["latestStatus"]["state"] for n in nodes} >= {"INACTIVE"}


def test_graphql_node_serves_a_deployments_statuses_by_its_id(history, http, urls):
    deployment = history.deployments["acme/checkout"][0]
    answer = graphql(http, urls, queries.DEPLOYMENT_STATUSES, id=node_id("Deployment", deployment.id), cursor=None)
    statuses = answer["data"]["node"]["statuses"]
    assert [s["state"] for s in statuses["nodes"]] == [s.state.upper() for s in reversed(deployment.statuses)]
    assert statuses["pageInfo"]["hasNextPage"] is False
    missing = graphql(http, urls, queries.DEPLOYMENT_STATUSES, id="nope", cursor=None)
    assert missing["data"]["node"] is None and missing["errors"][0]["type"] == "NOT_FOUND"


def test_graphql_merged_pull_requests_most_recently_updated_first(history, truth, http, urls):
    nodes, cursor, pages = [], None, 0
    while True:
        connection = graphql(http, urls, PULL_REQUESTS, owner="acme", name="checkout", cursor=cursor)[
            "data"]["repository"]["pullRequests"]
        nodes += connection["nodes"]
        pages += 1
        if not connection["pageInfo"]["hasNextPage"]:
            break
        cursor = connection["pageInfo"]["endCursor"]
    merged = [p for p in history.pull_requests["acme/checkout"] if p.state == "MERGED"]
    assert pages == 2 and len(nodes) == len(merged) == connection["totalCount"]
    updated = [utc(n["updatedAt"]) for n in nodes]
    assert updated == sorted(updated, reverse=True)
    expected = truth["pull_requests"].set_index("source_id")
    for node in nodes:
        row = expected.loc[f"acme/checkout#{node['number']}"]
        commit = node["commits"]["nodes"][0]["commit"]
        assert utc(commit["authoredDate"]) == row["first_commit_at"] == utc(commit["committedDate"])
        assert utc(node["mergedAt"]) == row["merged_at"] and node["mergeCommit"]["oid"] == row["merge_commit_sha"]


def test_graphql_open_and_closed_pull_requests_and_viewer(history, http, urls):
    query = """{ viewer { login } repository(owner: "acme", name: "search") {
      pullRequests(first: 100, states: [OPEN, CLOSED]) { totalCount nodes { state mergedAt merged } } } }"""
    answer = graphql(http, urls, query)
    assert answer["data"]["viewer"]["login"]
    nodes = answer["data"]["repository"]["pullRequests"]["nodes"]
    unmerged = [p for p in history.pull_requests["acme/search"] if p.state != "MERGED"]
    assert len(nodes) == len(unmerged) and all(n["mergedAt"] is None and not n["merged"] for n in nodes)


def _errors(http, urls, query: str, **variables) -> list[dict]:
    answer = graphql(http, urls, query, **variables)
    assert answer.get("errors"), answer
    return answer["errors"]


def test_graphql_refuses_what_github_refuses(http, urls):
    repo = 'repository(owner: "acme", name: "checkout")'
    [error] = _errors(http, urls, f"{{ {repo} {{ deployments(first: 101) {{ totalCount }} }} }}")
    assert error["type"] == "EXCESSIVE_PAGINATION"
    assert error["message"] == ("Requesting 101 records on the `deployments` connection exceeds the `first` limit of "
                                "100 records.")  # fmt: skip
    [error] = _errors(http, urls, f"{{ {repo} {{ pullRequests(states: [MERGED]) {{ totalCount }} }} }}")
    assert error["type"] == "MISSING_PAGINATION_BOUNDARIES"
    [error] = _errors(http, urls, f"{{ {repo} {{ deployments(first: 1) {{ nodes {{ databaseId colour }} }} }} }}")
    assert error["message"] == "Field 'colour' doesn't exist on type 'Deployment'"
    assert error["extensions"]["code"] == "undefinedField" and error["locations"]
    [error] = _errors(http, urls, f"{{ {repo} {{ deployments(first: 1, sort: NEWEST) {{ totalCount }} }} }}")
    assert error["message"] == "Field 'deployments' doesn't accept argument 'sort'"
    [error] = _errors(http, urls, '{ repository(name: "checkout") { id } }')
    assert error["message"] == "Field 'repository' is missing required arguments: owner"
    assert _errors(http, urls, f'{{ {repo} {{ deployments(first: "ten") {{ totalCount }} }} }}')
    assert _errors(http, urls, f"{{ {repo} {{ pullRequests(first: 1, states: [DONE]) {{ totalCount }} }} }}")
    [error] = _errors(http, urls, '{ repository(owner: "acme", name: "nope") { id } }')
    assert error["type"] == "NOT_FOUND" and "acme/nope" in error["message"]
    [error] = _errors(http, urls, f'{{ {repo} {{ deployments(first: 1, after: "bogus") {{ totalCount }} }} }}')
    assert error["type"] == "INVALID_CURSOR_ARGUMENTS"
    [error] = _errors(http, urls, f"{{ {repo} {{ stargazerCount }} }}")  # GitHub has it; the simulator does not
    assert error["extensions"]["code"] == "notServedBySimulator"
    assert _errors(http, urls, "{ repository(owner: ")  # a syntax error
    bad = http.post(urls["github_graphql"], data=b"{not json", headers=GITHUB_AUTH)
    assert bad.status_code == 400 and bad.json()["message"] == "Problems parsing JSON"
    empty = http.post(urls["github_graphql"], json={"variables": {}}, headers=GITHUB_AUTH)
    assert empty.json() == {"errors": [{"message": "A query attribute must be specified and must be a string."}]}


def test_graphql_rate_limit_counts_points(http, urls):
    first = graphql(http, urls, "{ rateLimit { cost remaining used limit resetAt } }")["data"]["rateLimit"]
    response = http.post(urls["github_graphql"], json={"query": "{ rateLimit { cost remaining used } }"},
                         headers=GITHUB_AUTH)  # fmt: skip
    second = response.json()["data"]["rateLimit"]
    assert first["limit"] == 5000 and first["cost"] == 1 and second["remaining"] == first["remaining"] - 1
    assert response.headers["x-ratelimit-resource"] == "graphql"
    assert int(response.headers["x-ratelimit-remaining"]) == second["remaining"]
    nested = """{ repository(owner: "acme", name: "checkout") {
      deployments(first: 100) { nodes { statuses(first: 100) { totalCount } } } } rateLimit { cost nodeCount } }"""
    rate = graphql(http, urls, nested)["data"]["rateLimit"]
    assert rate == {"cost": 1, "nodeCount": 100 + 100 * 100}


# ---------------------------------------------------------------------------------------------
# GitHub REST, held to GitHub's OpenAPI description


@pytest.fixture(scope="module")
def rest_spec():
    return json.loads((SPEC_DIR / "rest-subset.json").read_text(encoding="utf-8"))


def _resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        section, name = node["$ref"].removeprefix("#/components/").split("/", 1)
        node = spec["components"][section][name]
    return node


def to_json_schema(spec: dict, node: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: references inlined, `nullable: true` as a union with null."""
    if isinstance(node, list):
        return [to_json_schema(spec, item) for item in node]
    if not isinstance(node, dict):
        return node
    node = _resolve(spec, node)
    out = {key: to_json_schema(spec, value) if key in ("items", "additionalProperties") else value
           for key, value in node.items() if key not in ("nullable", "example", "examples")}  # fmt: skip
    if "properties" in node:
        out["properties"] = {name: to_json_schema(spec, value) for name, value in node["properties"].items()}
    for key in ("oneOf", "anyOf", "allOf"):
        if key in node:
            out[key] = to_json_schema(spec, node[key])
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict, "array": list,
          "null": type(None)}  # fmt: skip


def schema_errors(schema: dict, value: Any, where: str = "$") -> list[str]:
    """What `value` breaks of the JSON Schema keywords GitHub's description uses (jsonschema is not a dependency)."""
    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        wanted = types if isinstance(types, list) else [types]
        fits = any(isinstance(value, _TYPES[t]) and not (t in ("integer", "number") and isinstance(value, bool))
                   for t in wanted)  # fmt: skip
        if not fits:
            return [f"{where}: {value!r} is not {wanted}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: longer than {schema['maxLength']}")
        if schema.get("format") == "date-time" and not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value):
            errors.append(f"{where}: {value!r} is not a date-time")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where}: {name} is required")
        properties = schema.get("properties", {})
        for name, item in value.items():
            if name in properties:
                errors += schema_errors(properties[name], item, f"{where}.{name}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: unexpected {name}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += schema_errors(schema["additionalProperties"], item, f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += schema_errors(schema["items"], item, f"{where}[{index}]")
    for option in schema.get("allOf", []):
        errors += schema_errors(option, value, where)
    if "anyOf" in schema and all(schema_errors(option, value, where) for option in schema["anyOf"]):
        errors.append(f"{where}: matches none of anyOf")
    if "oneOf" in schema and sum(not schema_errors(option, value, where) for option in schema["oneOf"]) != 1:
        errors.append(f"{where}: does not match exactly one of oneOf")
    return errors


def response_schema(spec: dict, path: str, status: str) -> dict:
    response = _resolve(spec, spec["paths"][path]["get"]["responses"][status])
    return to_json_schema(spec, response["content"]["application/json"]["schema"])


def test_rest_subset_is_closed_under_its_references(rest_spec):
    loader = importlib.util.spec_from_file_location("cut_openapi", SPEC_DIR / "cut.py")
    cut = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(cut)
    assert cut.cut(rest_spec) == rest_spec
    assert "MIT" in (SPEC_DIR / "LICENSE-openapi").read_text(encoding="utf-8")


def test_validator_catches_what_the_description_forbids(rest_spec):
    schema = response_schema(rest_spec, "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses", "200")
    assert schema_errors(schema, [{"id": 1}])  # required fields missing
    assert schema_errors(schema, "not a list")
    nullable = to_json_schema(rest_spec, {"$ref": "#/components/schemas/nullable-simple-user"})
    assert schema_errors(nullable, None) == []


def test_rest_responses_match_githubs_openapi_description(history, http, urls, rest_spec):
    repo_url = f"{urls['github']}/repos/acme/checkout"
    listing = http.get(f"{repo_url}/deployments", params={"per_page": 100}, headers=GITHUB_AUTH)
    assert listing.status_code == 200 and len(listing.json()) == 100
    assert schema_errors(response_schema(rest_spec, "/repos/{owner}/{repo}/deployments", "200"), listing.json()) == []
    deployment = listing.json()[0]
    assert deployment["id"] == history.deployments["acme/checkout"][-1].id  # newest first
    one = http.get(f"{repo_url}/deployments/{deployment['id']}", headers=GITHUB_AUTH)
    path = "/repos/{owner}/{repo}/deployments/{deployment_id}"
    assert schema_errors(response_schema(rest_spec, path, "200"), one.json()) == [] and one.json() == deployment
    statuses = http.get(deployment["statuses_url"], headers=GITHUB_AUTH)
    assert schema_errors(response_schema(rest_spec, f"{path}/statuses", "200"), statuses.json()) == []
    latest, started = statuses.json()  # the newest is live yet: nothing superseded it
    assert latest["state"] in ("success", "failure", "error") and started["state"] == "in_progress"
    assert started["created_at"] > deployment["created_at"] and latest["created_at"] == deployment["updated_at"]
    superseded = http.get(listing.json()[-1]["statuses_url"], headers=GITHUB_AUTH).json()
    assert [s["state"] for s in superseded] == ["inactive", "success", "in_progress"]
    assert superseded[0]["created_at"] == listing.json()[-1]["updated_at"]
    status = http.get(latest["url"], headers=GITHUB_AUTH)
    assert schema_errors(response_schema(rest_spec, f"{path}/statuses/{{status_id}}", "200"), status.json()) == []
    missing = http.get(f"{repo_url}/deployments/1", headers=GITHUB_AUTH)
    assert missing.status_code == 404
    assert schema_errors(response_schema(rest_spec, path, "404"), missing.json()) == []
    payloads = [d["payload"] for d in listing.json()]
    assert all(isinstance(p, dict) for p in payloads)


def _links(response: requests.Response) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response.headers.get("Link", ""))}


def test_rest_link_pagination(history, http, urls):
    served = list(reversed(history.deployments["acme/checkout"]))
    url, ids, pages = f"{urls['github']}/repos/acme/checkout/deployments?per_page=30", [], []
    while url:
        response = http.get(url, headers=GITHUB_AUTH)
        ids += [d["id"] for d in response.json()]
        pages.append(_links(response))
        url = pages[-1].get("next")
    assert ids == [d.id for d in served]
    last = math.ceil(len(served) / 30)
    assert len(pages) == last and pages[0]["last"].endswith(f"page={last}") and "prev" not in pages[0]
    assert set(pages[1]) == {"prev", "first", "next", "last"} and set(pages[-1]) == {"prev", "first"}
    listing = f"{urls['github']}/repos/acme/checkout/deployments"
    capped = http.get(listing, params={"per_page": 500}, headers=GITHUB_AUTH)
    assert len(capped.json()) == 100 and "per_page=500" in _links(capped)["next"]
    staging = http.get(f"{urls['github']}/repos/acme/checkout/deployments", params={"environment": "staging"},
                       headers=GITHUB_AUTH).json()  # fmt: skip
    assert staging and {d["environment"] for d in staging} == {"staging"}
    beyond = http.get(f"{urls['github']}/repos/acme/checkout/deployments", params={"page": 99}, headers=GITHUB_AUTH)
    assert beyond.json() == []


# ---------------------------------------------------------------------------------------------
# PagerDuty


def test_pagerduty_classic_pagination(history, http, urls):
    seen, offset = [], 0
    while True:
        body = pagerduty(http, urls, date_range="all", limit=5, offset=offset).json()
        assert body["limit"] == 5 and body["offset"] == offset and body["total"] is None
        seen += body["incidents"]
        if not body["more"]:
            break
        offset += len(body["incidents"])
    assert [i["id"] for i in seen] == [i.id for i in history.incidents]  # created_at ascending by default
    counted = pagerduty(http, urls, date_range="all", limit=5, total="true").json()
    assert counted["total"] == len(history.incidents) and counted["more"] is True
    assert pagerduty(http, urls, date_range="all", limit=1000).json()["limit"] == 100


def test_pagerduty_offset_cap_and_range_errors(history, http, urls):
    capped = pagerduty(http, urls, date_range="all", limit=100, offset=9950)
    assert capped.status_code == 400
    error = capped.json()["error"]
    assert error["code"] == 2001 and error["message"] == "Invalid Input Provided" and error["errors"]
    assert pagerduty(http, urls, date_range="all", limit=100, offset=9900).status_code == 200
    too_long = pagerduty(http, urls, since="2025-06-01T00:00:00Z", until="2026-03-01T00:00:00Z")
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == 2001
    ok = pagerduty(http, urls, since="2025-10-01T00:00:00Z", until="2026-03-01T00:00:00Z", limit=100)
    assert ok.status_code == 200 and len(ok.json()["incidents"]) == len(history.incidents)
    ignored = pagerduty(http, urls, date_range="all", since="2020-01-01T00:00:00Z", until="2026-01-01T00:00:00Z")
    assert ignored.status_code == 200 and len(ignored.json()["incidents"]) == min(25, len(history.incidents))
    assert pagerduty(http, urls, sort_by="severity").status_code == 400
    assert pagerduty(http, urls, **{"statuses[]": "closed"}).status_code == 400


def test_pagerduty_since_until_filter_on_creation_with_a_month_by_default(history, http, urls):
    since, until = datetime(2026, 2, 10, tzinfo=UTC), datetime(2026, 2, 20, tzinfo=UTC)
    body = pagerduty(http, urls, since=since.isoformat(), until=until.isoformat(), limit=100).json()
    assert [i["id"] for i in body["incidents"]] == [i.id for i in history.incidents if since <= i.created_at < until]
    default = pagerduty(http, urls, limit=100).json()["incidents"]
    month_before = datetime(2026, 2, 1, tzinfo=UTC)
    assert [i["id"] for i in default] == [i.id for i in history.incidents if i.created_at >= month_before]


def test_pagerduty_status_service_filters_and_sorting(history, http, urls):
    resolved = pagerduty(http, urls, date_range="all", limit=100, sort_by="resolved_at:desc",
                         **{"statuses[]": ["resolved"]}).json()["incidents"]  # fmt: skip
    stamps = [utc(i["resolved_at"]) for i in resolved]
    assert stamps == sorted(stamps, reverse=True) and {i["status"] for i in resolved} == {"resolved"}
    assert len(resolved) == sum(i.status == "resolved" for i in history.incidents)
    still_open = pagerduty(http, urls, date_range="all", **{"statuses[]": ["triggered", "acknowledged"]}).json()
    assert {i["id"] for i in still_open["incidents"]} == {i.id for i in history.incidents if i.status != "resolved"}
    assert all(i["resolved_at"] is None for i in still_open["incidents"])
    checkout = pagerduty_service_id("checkout")
    mine = pagerduty(http, urls, date_range="all", limit=100, **{"service_ids[]": [checkout]}).json()["incidents"]
    assert mine and {i["service"]["id"] for i in mine} == {checkout}
    assert {i["service"]["summary"] for i in mine} == {"checkout"}
    newest = pagerduty(http, urls, date_range="all", sort_by="created_at:desc", limit=100).json()["incidents"]
    assert [i["id"] for i in newest] == [i.id for i in reversed(history.incidents)]


def test_pagerduty_incident_shape_and_time_zone(history, truth, http, urls):
    in_utc = pagerduty(http, urls, date_range="all", limit=100).json()["incidents"]
    in_india = pagerduty(http, urls, date_range="all", limit=100, time_zone="Asia/Kolkata").json()["incidents"]
    for plain, local in zip(in_utc, in_india, strict=True):
        assert plain["created_at"].endswith("Z") and local["created_at"].endswith("+05:30")
        assert utc(plain["created_at"]) == utc(local["created_at"])
        assert plain["updated_at"] and plain["html_url"].endswith(plain["id"]) and plain["urgency"] in ("high", "low")
        assert plain["service"]["type"] == "service_reference"
        if plain["priority"] is not None:
            assert plain["priority"]["type"] == "priority_reference"
            assert re.fullmatch(r"P[1-5]", plain["priority"]["summary"])
        if plain["status"] == "resolved":
            assert plain["resolved_at"] == plain["last_status_change_at"]
    expected = truth["incidents"].set_index("source_id")
    for incident in in_utc:
        row = expected.loc[incident["id"]]
        assert utc(incident["created_at"]) == row["opened_at"] and incident["title"] == row["title"]
    assert pagerduty(http, urls, time_zone="Mars/Olympus").status_code == 400
    one = http.get(f"{urls['pagerduty']}/incidents/{in_utc[0]['id']}", headers=PAGERDUTY_AUTH)
    assert one.json()["incident"] == in_utc[0]
    assert http.get(f"{urls['pagerduty']}/incidents/QNOPE00", headers=PAGERDUTY_AUTH).json()["error"]["code"] == 2100


# ---------------------------------------------------------------------------------------------
# Auth and rate-limit headers


def test_auth_refusals(history, http, urls):
    repo = f"{urls['github']}/repos/acme/checkout/deployments"
    anonymous = http.get(repo)
    assert anonymous.status_code == 401 and anonymous.json()["message"] == "Requires authentication"
    wrong = http.get(repo, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert wrong.status_code == 401 and wrong.json()["message"] == "Bad credentials"
    assert http.get(repo, headers={"Authorization": "token anything"}).status_code == 200
    graphql_anonymous = http.post(urls["github_graphql"], json={"query": "{ viewer { login } }"})
    assert graphql_anonymous.status_code == 401 and "authenticated" in graphql_anonymous.json()["message"]
    refused = http.get(f"{urls['pagerduty']}/incidents")
    assert refused.status_code == 401 and refused.json() == {"error": {"message": "Unauthorized", "code": 2006}}
    assert http.get(f"{urls['pagerduty']}/incidents", headers={"Authorization": "Bearer x"}).status_code == 401
    with running(history, token={"github": "right", "pagerduty": "key"}) as base:
        only = vendor_urls(base)
        assert http.get(f"{only['github']}/repos/acme/checkout/deployments",
                        headers={"Authorization": "bearer wrong"}).json()["message"] == "Bad credentials"
        assert http.get(f"{only['github']}/repos/acme/checkout/deployments",
                        headers={"Authorization": "Bearer right"}).status_code == 200
        incidents = f"{only['pagerduty']}/incidents"
        assert http.get(incidents, headers={"Authorization": "Token token=nope"}).status_code == 401
        assert http.get(incidents, headers={"Authorization": "Token token=key"}).status_code == 200


def test_rate_limit_headers_on_every_response(http, urls, base_url):
    github = [
        http.get(f"{urls['github']}/repos/acme/checkout/deployments", headers=GITHUB_AUTH),
        http.get(f"{urls['github']}/repos/acme/nope/deployments", headers=GITHUB_AUTH),
        http.get(f"{urls['github']}/repos/acme/checkout/deployments"),
        http.post(urls["github_graphql"], json={"query": "{ viewer { login } }"}, headers=GITHUB_AUTH),
    ]
    for response in github:
        for name in ("limit", "remaining", "reset", "used", "resource"):
            assert f"x-ratelimit-{name}" in response.headers, (response.url, name)
        assert int(response.headers["x-ratelimit-reset"]) > datetime.now(UTC).timestamp() - 5
    assert [r.headers["x-ratelimit-resource"] for r in github] == ["core", "core", "core", "graphql"]
    assert [r.status_code for r in github] == [200, 404, 401, 200]
    for response in (pagerduty(http, urls), http.get(f"{urls['pagerduty']}/incidents")):
        assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(response.headers)
        assert 0 <= int(response.headers["ratelimit-reset"]) <= 60
    unknown = http.get(f"{base_url}/opsgenie/v2/alerts")
    assert unknown.status_code == 404 and "/github" in unknown.json()["message"]


# ---------------------------------------------------------------------------------------------
# Faults


def test_fault_plan_is_seeded_and_near_its_rate():
    def run(seed: int) -> list[str | None]:
        plan = FaultPlan(0.2, seed)
        return [(fault.kind if (fault := plan.decide(f"GET /x?page={n}")) else None) for n in range(3000)]

    first = run(5)
    assert first == run(5) and first != run(6)
    share = sum(kind is not None for kind in first) / len(first)
    assert 0.17 <= share <= 0.23
    assert set(Counter(first)) == {None, *FAULT_KINDS}
    assert FaultPlan(0.0, 5).decide("GET /x") is None
    assert all(fault_at(5, n, 1.0).retry_after in (0, 1) for n in range(200) if fault_at(5, n, 1.0).status == 429)
    assert all(fault_at(5, n, 1.0).delay <= 0.3 for n in range(200))


def test_a_retried_request_fails_at_most_twice_in_a_row():
    plan = FaultPlan(1.0, 3)
    kinds = [plan.decide("GET /same") for _ in range(60)]
    failing_run = 0
    for fault in kinds:
        failing_run = failing_run + 1 if fault is not None and fault.kind in FAILING_KINDS else 0
        assert failing_run <= MAX_FAILURES_IN_A_ROW


def _outcome(http: requests.Session, url: str) -> str:
    try:
        response = http.get(url, headers=PAGERDUTY_AUTH, timeout=5)
    except requests.exceptions.ChunkedEncodingError:
        return "truncated"
    except requests.ConnectionError:
        return "dropped"
    if response.status_code == 429:
        assert response.headers["Retry-After"] in ("0", "1") and response.json()["error"]["code"] == 2020
        return "rate_limited"
    if response.status_code in (502, 503):
        assert response.headers["Content-Type"].startswith("text/html")
        return {502: "bad_gateway", 503: "unavailable"}[response.status_code]
    try:
        response.json()
    except ValueError:
        return "cut_json"
    return "ok"


def test_faults_over_http_are_the_plan_and_the_same_per_seed(history):
    def run() -> tuple[list[str], list[str | None]]:
        app = make_app(history, fault_rate=0.5, seed=22, keep_fault_log=True)
        with running(app) as base, requests.Session() as http:
            outcomes = [_outcome(http, f"{base}/pagerduty/incidents?date_range=all&offset={n}") for n in range(60)]
        return outcomes, [kind for _, _, kind in app.faults.log]

    outcomes, planned = run()
    assert [("ok" if kind in (None, "slow") else kind) for kind in planned] == outcomes
    assert set(outcomes) == {"ok", "rate_limited", "bad_gateway", "unavailable", "dropped", "truncated", "cut_json"}
    assert run() == (outcomes, planned)


def test_every_request_succeeds_within_three_attempts_under_faults(history):
    with running(history, fault_rate=0.6, seed=4) as base, requests.Session() as http:
        for offset in range(0, 40, 2):
            url = f"{base}/pagerduty/incidents?date_range=all&limit=2&offset={offset}"
            attempts = [_outcome(http, url)]
            while attempts[-1] != "ok":
                attempts.append(_outcome(http, url))
            assert len(attempts) <= MAX_FAILURES_IN_A_ROW + 1


# ---------------------------------------------------------------------------------------------
# The truth


def test_write_truth_writes_the_served_records_and_their_metrics(history, truth, tmp_path):
    paths = write_truth(history, tmp_path / "truth")
    assert sorted(p.name for p in paths.values()) == ["changes.csv", "deployments.csv", "incidents.csv",
                                                      "metrics.json", "pull_requests.csv"]  # fmt: skip
    frames = {}
    for kind in ("incidents", "changes", "deployments", "pull_requests"):
        header = paths[kind].read_text(encoding="utf-8").splitlines()[0]
        assert header.split(",") == [c.name for c in SCHEMAS[kind]]
        records = read_records(kind, paths[kind], {*history.services, "unmapped"})
        assert records.rejected.empty and records.conflicting_duplicates == 0
        pd.testing.assert_frame_equal(records.good, truth[kind], check_dtype=False)
        frames[kind] = records.good
    assert set(frames["incidents"]["source"]) == {"pagerduty", "jira", "servicenow"}
    assert set(frames["deployments"]["source"]) == {"github"}
    assert frames["deployments"]["source_id"].str.fullmatch(r"acme/[a-z]+/\d+").all()
    assert frames["pull_requests"]["source_id"].str.fullmatch(r"acme/[a-z]+#\d+").all()
    services = sorted(history.services)
    frames = {kind: frame[frame["service"] != "unmapped"] for kind, frame in frames.items()}  # as the pipeline does
    values = derive_metrics(frames["incidents"], frames["changes"], frames["deployments"],
                            frames["pull_requests"], grain="month", start=END - pd.Timedelta(days=30), end=END,
                            as_of=END, services=services, monitored=services)  # fmt: skip
    written = json.loads(paths["metrics"].read_text(encoding="utf-8"))
    assert written == json.loads(to_json(output_records(values, METRIC_COLUMNS)))
    assert {row["period_start"] for row in written} == {"2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"}
    assert any(row["value"] is not None for row in written if row["metric"] == "deployment_frequency")
