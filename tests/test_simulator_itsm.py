"""The simulator's Jira Cloud and ServiceNow: the history they serve (cross-links, unmapped entities, the
changelog-only resolutions), their shapes held to the vendors' descriptions, auth, paging, JQL and encoded
queries, faults, and the truth made of them.

The descriptions are cuts of Atlassian's Jira Cloud platform REST API v3 OpenAPI file (tests/specs/jira/
simulator-subset.json: the operations GET myself, GET field, GET/POST search/jql, POST changelog/bulkfetch and
GET search, with every `#/components` entry they reference; `example(s)` and `x-*` keys dropped; Apache 2.0, see
tests/specs/jira/LICENSE) and of the community ServiceNow Table API description (tests/specs/servicenow/
simulator-subset.json: the two GET operations of /api/now/table; Apache 2.0, tests/specs/servicenow/LICENSE).
Responses are validated with jsonschema when it is installed, else with the small validator below.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import requests

from connectors.records import normalise
from connectors.services import UNMAPPED, ServiceMapping, monitored_services
from connectors.simulator.generate import DatasetSpec, generate_dataset
from connectors.simulator.history import (
    JIRA_CHANGE_TYPE_FIELD,
    JIRA_EMBEDDED_HISTORIES,
    JIRA_STATUSES,
    UNMAPPED_CI,
    UNMAPPED_COMPONENT,
    build_history,
    itsm_tool,
    service_mapping,
    service_names,
    servicenow_ci,
)
from connectors.simulator.jira_routes import JqlError, parse_jql
from connectors.simulator.server import make_app, running, vendor_urls
from connectors.simulator.servicenow_routes import parse_query
from connectors.simulator.truth import jira_done_at, truth_frames, truth_metrics
from scoring.metrics import derive_metrics

try:  # not a dependency of the project: the fallback validator below covers the keywords the specs use
    import jsonschema
except ImportError:  # pragma: no cover - depends on the environment
    jsonschema = None

END = pd.Timestamp("2026-06-01", tz="UTC")  # 120 days from 2026-02-01: Auckland's +1300 (to 5 April) and +1200
DAYS = 120
SEED = 11
SERVICES = 6  # checkout, payments, search (Jira), catalog, accounts, notifications (Jira)
AUCKLAND = ZoneInfo("Pacific/Auckland")
JIRA_AUTH = ("ops-bot@acme.example", "FAKE_JIRA_TOKEN")
SN_AUTH = ("scorecard", "FAKE_SN_PASSWORD")
SPECS = Path(__file__).parent / "specs"
JIRA_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+1[23]00$")
SN_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
CONNECTOR_FIELDS = "summary,issuetype,status,priority,components,created,updated,resolutiondate,issuelinks," + \
    JIRA_CHANGE_TYPE_FIELD  # fmt: skip
INCIDENT_JQL = "project = OPS AND issuetype = Incident"
CHANGE_JQL = "project = OPS AND issuetype = Change"


@pytest.fixture(scope="module")
def history():
    return build_history(end=END, seed=SEED, days=DAYS, services=SERVICES)


@pytest.fixture(scope="module")
def urls(history):
    with running(history) as base_url:
        yield vendor_urls(base_url)


@pytest.fixture(scope="module")
def truth(history):
    return truth_frames(history)


@pytest.fixture
def jira():
    with requests.Session() as session:
        session.auth = JIRA_AUTH
        yield session


@pytest.fixture
def sn():
    with requests.Session() as session:
        session.auth = SN_AUTH
        yield session


def millis(moment: datetime | pd.Timestamp) -> int:
    return int(round(pd.Timestamp(moment).timestamp() * 1000))


def search(jira: requests.Session, urls: dict, jql: str, **params: Any) -> list[dict]:
    """Every issue `jql` selects, page after page by nextPageToken; asserts the pages' shape."""
    issues, token, pages = [], None, 0
    while True:
        query = {"jql": jql, **params, **({"nextPageToken": token} if token else {})}
        response = jira.get(f"{urls['jira']}/rest/api/3/search/jql", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        issues += body["issues"]
        pages += 1
        assert body["isLast"] is ("nextPageToken" not in body)
        token = body.get("nextPageToken")
        if token is None:
            return issues
        assert pages < 1000


def table(sn: requests.Session, urls: dict, name: str, **params: Any) -> requests.Response:
    response = sn.get(f"{urls['servicenow']}/api/now/table/{name}", params=params)
    assert response.status_code == 200, response.text
    return response


# ---------------------------------------------------------------------------------------------
# Validation against the vendors' descriptions


def spec(vendor: str) -> dict:
    return json.loads((SPECS / vendor / "simulator-subset.json").read_text(encoding="utf-8"))


_DROPPED = ("nullable", "readOnly", "writeOnly", "xml", "discriminator", "properties", "items",
            "additionalProperties", "allOf", "anyOf", "oneOf")


def _converted(node: Any) -> Any:
    """An OpenAPI 3.0 schema node as JSON Schema: references to `#/definitions/<name>`, `nullable: true` as a
    union with null."""
    if isinstance(node, list):
        return [_converted(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {"$ref": "#/definitions/" + node["$ref"].rsplit("/", 1)[1]}
    out = {key: value for key, value in node.items() if key not in _DROPPED}
    if "properties" in node:
        out["properties"] = {name: _converted(value) for name, value in node["properties"].items()}
    for key in ("items", "additionalProperties", "allOf", "anyOf", "oneOf"):
        if key in node:
            out[key] = node[key] if isinstance(node[key], bool) else _converted(node[key])
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def as_json_schema(document: dict, node: Any) -> dict:
    """`node` as a JSON Schema document, the description's schemas as its definitions (some are recursive)."""
    schemas = document.get("components", {}).get("schemas", {})
    return {"allOf": [_converted(node)], "definitions": {name: _converted(value) for name, value in schemas.items()}}


_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict, "array": list,
          "null": type(None)}  # fmt: skip


def _errors(schema: dict, value: Any, where: str = "$", root: dict | None = None) -> list[str]:
    """What `value` breaks of the JSON Schema keywords the descriptions use (when jsonschema is absent)."""
    root = schema if root is None else root
    while "$ref" in schema:
        schema = root["definitions"][schema["$ref"].rsplit("/", 1)[1]]
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(isinstance(value, _TYPES[k]) and not (k in ("integer", "number") and isinstance(value, bool))
                   for k in kinds):  # fmt: skip
            return [f"{where}: {value!r} is not of type {kinds}"]
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str) and len(value) > schema.get("maxLength", len(value)):
        errors.append(f"{where}: longer than {schema['maxLength']}")
    if isinstance(value, dict):
        errors += [f"{where}: {name} is required" for name in schema.get("required", []) if name not in value]
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                errors += _errors(properties[name], item, f"{where}.{name}", root)
            elif extra is False:
                errors.append(f"{where}: additional property {name}")
            elif isinstance(extra, dict):
                errors += _errors(extra, item, f"{where}.{name}", root)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            errors += _errors(schema["items"], item, f"{where}[{index}]", root)
    for option in schema.get("allOf", []):
        errors += _errors(option, value, where, root)
    if "anyOf" in schema and all(_errors(option, value, where, root) for option in schema["anyOf"]):
        errors.append(f"{where}: matches none of anyOf")
    if "oneOf" in schema and sum(not _errors(option, value, where, root) for option in schema["oneOf"]) != 1:
        errors.append(f"{where}: matches not exactly one of oneOf")
    return errors


def schema_errors(schema: dict, value: Any) -> list[str]:
    if jsonschema is not None:
        return [f"{list(error.absolute_path)}: {error.message}"
                for error in jsonschema.Draft7Validator(schema).iter_errors(value)]  # fmt: skip
    return _errors(schema, value)


def response_schema(document: dict, path: str, method: str = "get", status: str = "200") -> dict:
    content = document["paths"][path][method]["responses"][status]["content"]["application/json"]
    return as_json_schema(document, content["schema"])


def test_the_validator_refuses_what_the_descriptions_forbid():
    document = spec("jira")
    user = response_schema(document, "/rest/api/3/myself")
    assert schema_errors(user, {"accountId": "x", "active": True}) == []
    assert schema_errors(user, {"accountId": 5}) and schema_errors(user, {"unheardOf": 1})
    results = response_schema(document, "/rest/api/3/search/jql")
    assert schema_errors(results, {"issues": [{"id": 1}]})  # an issue id is a string
    assert schema_errors(results, {"issues": [], "isLast": "yes"})
    bulk = response_schema(document, "/rest/api/3/changelog/bulkfetch", "post")
    assert schema_errors(bulk, {"issueChangeLogs": [{"issueId": "1", "changeHistories": [{"items": [{"to": 3}]}]}]})
    assert "Apache License" in (SPECS / "jira" / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in (SPECS / "servicenow" / "LICENSE").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# The history


def test_itsm_tools_cis_and_the_service_mapping():
    names = service_names(13)
    assert [n for n in names if itsm_tool(n) == "jira"] == ["search", "notifications", "recommendations",
                                                              "service-12"]  # fmt: skip
    assert servicenow_ci("checkout") == "Checkout Service" and servicenow_ci("service-11") == "Service-11 Service"
    mapping = service_mapping(6)
    assert mapping["search"]["jira_components"] == ["search"] and "servicenow_cis" not in mapping["search"]
    assert mapping["catalog"]["servicenow_cis"] == ["Catalog Service"] and "jira_components" not in mapping["catalog"]
    assert set(mapping["checkout"]) == {"github_repos", "pagerduty_services", "servicenow_cis"}
    services = {name: ServiceMapping(**entry) for name, entry in mapping.items()}
    assert monitored_services(services) == sorted(mapping)  # every service maps an incident source


def test_same_seed_same_history_and_stable_seeded_sys_ids(history):
    again = build_history(end=END, seed=SEED, days=DAYS, services=SERVICES)
    assert again == history
    other = build_history(end=END, seed=SEED + 1, days=DAYS, services=SERVICES)
    ours = [i.sys_id for i in history.servicenow_incidents] + [c.sys_id for c in history.servicenow_changes]
    assert all(re.fullmatch(r"[0-9a-f]{32}", sys_id) for sys_id in ours) and len(set(ours)) == len(ours)
    assert not set(ours) & {c.sys_id for c in other.servicenow_changes}


def test_both_tools_are_served_with_unmapped_entities(history, truth):
    assert {i.service for i in history.jira_issues} >= {"search", "notifications", None}
    assert {i.service for i in history.servicenow_incidents} >= {"checkout", "catalog", None}
    incidents, changes = truth["incidents"], truth["changes"]
    assert set(incidents["source"]) == {"pagerduty", "jira", "servicenow"}
    assert set(changes["source"]) == {"jira", "servicenow"}
    unmapped = incidents[incidents["service"] == UNMAPPED]
    assert set(unmapped["source"]) == {"jira", "servicenow"} and len(unmapped) >= 6
    sandbox = [i for i in history.jira_issues if i.components == (UNMAPPED_COMPONENT,)]
    legacy = {ci.sys_id for ci in history.servicenow_cis if ci.name == UNMAPPED_CI}
    assert len(sandbox) >= 3 and sum(i.cmdb_ci in legacy or i.business_service in legacy
                                     for i in history.servicenow_incidents) >= 3  # fmt: skip
    assert any(i.components == () for i in history.jira_issues)  # no entity at all: unmapped too
    assert any(i.components[:1] == (UNMAPPED_COMPONENT,) and i.service for i in history.jira_issues)  # first maps
    jira_services = {s for s, tool in history.itsm_tools.items() if tool == "jira"}
    mapped = pd.concat([incidents, changes])
    mapped = mapped[(mapped["service"] != UNMAPPED) & (mapped["source"] != "pagerduty")]
    assert (mapped["source"] == np.where(mapped["service"].isin(jira_services), "jira", "servicenow")).all()
    assert incidents.loc[incidents["source"] == "jira", "source_id"].str.fullmatch(r"OPS-\d+").all()
    assert changes.loc[changes["source"] == "servicenow", "source_id"].str.fullmatch(r"CHG\d{7}").all()


def test_every_cross_link_resolves_to_a_served_change(history, truth):
    changes = set(truth["changes"]["source_id"])
    causes = truth["incidents"]["caused_by_change"].dropna()
    causes = causes[causes != ""]
    assert len(causes) > 0 and set(causes) <= changes
    assert set(causes[causes.str.startswith("OPS-")]) and set(causes[causes.str.startswith("CHG")])
    deployed = truth["deployments"]["change_id"].dropna()
    deployed = deployed[deployed != ""]
    assert len(deployed) > 0 and set(deployed) <= changes
    assert any(d.startswith("OPS-") for d in deployed) and any(d.startswith("CHG") for d in deployed)
    keys = {i.key: i for i in history.jira_issues}
    for issue in history.jira_issues:
        for link in issue.links:
            other = keys[link.key]
            assert {issue.issuetype, other.issuetype} == {"Incident", "Change"} and other.service == issue.service
            assert link.inward == (issue.issuetype == "Incident")  # the change is the incident's inwardIssue
            assert any(back.key == issue.key and back.inward != link.inward for back in other.links)
    sys_ids = {c.sys_id: c for c in history.servicenow_changes}
    assert all(i.caused_by in sys_ids and sys_ids[i.caused_by].service == i.service
               for i in history.servicenow_incidents if i.caused_by)  # fmt: skip


def test_the_served_records_are_generate_pys_under_new_names(history, truth):
    raw = generate_dataset(DatasetSpec(seed=SEED, days=DAYS, end=END, services=history.services, bad_rows=0))
    generated = {kind: normalise(kind, raw[kind]).good for kind in ("incidents", "changes")}
    served = truth["changes"]
    paired = generated["changes"].merge(served, on=["service", "updated_at"], suffixes=("", "_served"))
    assert len(paired) == len(generated["changes"]) == len(served)
    for column in ("type", "implemented_at", "outcome"):
        pd.testing.assert_series_equal(paired[column], paired[f"{column}_served"], check_names=False)
    names = dict(zip(paired["source_id"], paired["source_id_served"], strict=True))
    jira = paired["service"].map(history.itsm_tools) == "jira"
    assert (paired.loc[~jira, "source_id"] == paired.loc[~jira, "source_id_served"]).all()
    assert paired.loc[jira, "source_id_served"].str.fullmatch(r"OPS-\d+").all()
    itsm = generated["incidents"][generated["incidents"]["source"] == "servicenow"]
    incidents = truth["incidents"][truth["incidents"]["source"] != "pagerduty"]
    both = itsm.merge(incidents, on=["service", "opened_at", "updated_at"], suffixes=("", "_served"))
    assert len(both) == len(itsm) == (incidents["service"] != UNMAPPED).sum()
    for column in ("severity", "title", "resolved_at"):
        pd.testing.assert_series_equal(both[column], both[f"{column}_served"], check_names=False)
    expected = both["caused_by_change"].map(names).fillna("")
    assert (expected == both["caused_by_change_served"].fillna("")).all()
    deployments = normalise("deployments", raw["deployments"]).good
    renamed = deployments["change_id"].map(names).fillna("")
    shown = truth["deployments"].set_index("source_id")["change_id"].fillna("")
    assert (renamed.to_numpy() == shown[("acme/" + deployments["service"] + "/" + deployments["source_id"])].to_numpy()
            ).all()  # fmt: skip


def test_change_states_follow_the_canonical_outcome(history, truth):
    changes = truth["changes"].set_index("source_id")
    for change in history.servicenow_changes:
        record = changes.loc[change.number]
        if change.state == "4":
            assert pd.isna(record["implemented_at"]) and record["outcome"] == "unknown" and change.close_code == ""
        else:
            assert change.state == "3" and record["implemented_at"] == (change.work_end or change.closed_at)
            assert {"successful": ("successful", "successful_issues"), "failed": ("unsuccessful",),
                    "backed_out": ("backed_out",)}[record["outcome"]] .__contains__(change.close_code)  # fmt: skip
    codes = {c.close_code for c in history.servicenow_changes}
    assert {"successful", "successful_issues", "unsuccessful", "backed_out", ""} <= codes
    assert any(c.work_end is None and c.state == "3" for c in history.servicenow_changes)  # closed_at fallback
    jira_changes = [i for i in history.jira_issues if i.issuetype == "Change"]
    for issue in jira_changes:
        record = changes.loc[issue.key]
        assert record["type"] == issue.change_type.lower()
        expected = {"Canceled": "unknown", "Failed": "failed", "Backed out": "backed_out"}.get(issue.status,
                                                                                           "successful")
        assert record["outcome"] == expected and JIRA_STATUSES[issue.status][1] == "done"
    assert {i.status for i in jira_changes} >= {"Completed", "Done", "Failed", "Backed out", "Canceled"}


def test_a_share_of_jira_resolutions_is_in_the_changelog_only(history, truth):
    resolved = [i for i in history.jira_issues if i.issuetype == "Incident" and
                JIRA_STATUSES[i.status][1] == "done"]  # fmt: skip
    only_changelog = [i for i in resolved if i.resolutiondate is None]
    assert 0.1 <= len(only_changelog) / len(resolved) <= 0.3
    long = [i for i in only_changelog if len(i.histories) > JIRA_EMBEDDED_HISTORIES]
    assert long and len(long) < len(only_changelog)
    done = {"done", "resolved", "closed", "completed"}
    recent = [h for i in long for h in i.histories[-JIRA_EMBEDDED_HISTORIES:]]
    assert all(item.field != "status" for h in recent for item in h.items)  # cut from the embedded changelog
    rows = truth["incidents"].set_index("source_id")
    for issue in only_changelog:
        assert rows.loc[issue.key, "resolved_at"] == jira_done_at(issue, done) is not None


# ---------------------------------------------------------------------------------------------
# Jira


def test_jira_auth(history, urls):
    myself = f"{urls['jira']}/rest/api/3/myself"
    refused = requests.get(myself)
    assert refused.status_code == 401 and refused.json()["errorMessages"]
    for auth in (("", "token"), ("me@acme.example", "")):
        assert requests.get(myself, auth=auth).status_code == 401
    assert requests.get(myself, headers={"Authorization": "Bearer x"}).status_code == 401
    assert requests.get(myself, auth=JIRA_AUTH).status_code == 200
    with running(history, token={"jira": "right"}) as base:
        only = f"{vendor_urls(base)['jira']}/rest/api/3/myself"
        assert requests.get(only, auth=("me@acme.example", "wrong")).status_code == 401
        assert requests.get(only, auth=("me@acme.example", "right")).status_code == 200


def test_jira_myself_and_fields_match_the_description(jira, urls):
    document = spec("jira")
    user = jira.get(f"{urls['jira']}/rest/api/3/myself").json()
    assert schema_errors(response_schema(document, "/rest/api/3/myself"), user) == []
    assert user["timeZone"] == "Pacific/Auckland" and user["emailAddress"] == JIRA_AUTH[0] and user["accountId"]
    fields = jira.get(f"{urls['jira']}/rest/api/3/field").json()
    assert schema_errors(response_schema(document, "/rest/api/3/field"), fields) == []
    named = {field["name"]: field for field in fields}
    assert named["Change type"]["id"] == "customfield_10042" and named["Change type"]["custom"] is True
    assert len({field["name"].lower() for field in fields}) == len(fields)


def test_jira_search_pages_by_token_with_short_pages(history, jira, urls):
    document = spec("jira")
    schema = response_schema(document, "/rest/api/3/search/jql")
    page = jira.get(f"{urls['jira']}/rest/api/3/search/jql", params={
        "jql": "project = OPS", "fields": CONNECTOR_FIELDS, "maxResults": 100, "expand": "changelog"})
    body = page.json()
    assert schema_errors(schema, body) == []
    assert len(body["issues"]) == 50 and body["isLast"] is False and body["nextPageToken"]  # 10 fields: 50 a page
    issues = search(jira, urls, "(project = OPS) ORDER BY updated ASC, key ASC", fields=CONNECTOR_FIELDS,
                    maxResults=100, expand="changelog")  # fmt: skip
    expected = sorted(history.jira_issues, key=lambda i: (i.updated, i.number))
    assert [i["key"] for i in issues] == [i.key for i in expected] and len(issues) > 100
    incidents = search(jira, urls, INCIDENT_JQL, fields="summary", maxResults=3)
    assert sorted(i["key"] for i in incidents) == sorted(i.key for i in expected if i.issuetype == "Incident")
    few = jira.get(f"{urls['jira']}/rest/api/3/search/jql", params={"jql": CHANGE_JQL, "fields": "status,updated",
                                                                    "maxResults": 7}).json()  # fmt: skip
    assert len(few["issues"]) == 7 and set(few["issues"][0]["fields"]) == {"status", "updated"}
    capped = jira.get(f"{urls['jira']}/rest/api/3/search/jql", params={"jql": CHANGE_JQL, "fields": "status",
                                                                       "maxResults": 1000}).json()  # fmt: skip
    assert len(capped["issues"]) == 100
    ids_only = jira.get(f"{urls['jira']}/rest/api/3/search/jql", params={"jql": CHANGE_JQL, "maxResults": 1000})
    assert set(ids_only.json()["issues"][0]["fields"]) == set() and len(ids_only.json()["issues"]) == min(
        1000, sum(i.issuetype == "Change" for i in history.jira_issues))  # fmt: skip
    changes = search(jira, urls, CHANGE_JQL, fields="key", maxResults=30)
    assert sorted(i["key"] for i in changes) == sorted(i.key for i in history.jira_issues if i.issuetype == "Change")
    wrong = jira.get(f"{urls['jira']}/rest/api/3/search/jql", params={"jql": CHANGE_JQL,
                                                                      "nextPageToken": body["nextPageToken"]})
    assert wrong.status_code == 400  # a token of another query
    posted = jira.post(f"{urls['jira']}/rest/api/3/search/jql", json={"jql": "project = OPS", "fields": ["summary"],
                                                                      "maxResults": 5})  # fmt: skip
    assert [i["key"] for i in posted.json()["issues"]] == [i["key"] for i in body["issues"][:5]]


def test_jira_issue_shape(history, jira, urls):
    issues = search(jira, urls, "project = OPS", fields=CONNECTOR_FIELDS + ",project", maxResults=100,
                    expand="changelog")  # fmt: skip
    served = {i.key: i for i in history.jira_issues}
    offsets = set()
    for issue in issues:
        fields, mine = issue["fields"], served[issue["key"]]
        assert issue["id"] == mine.id and issue["self"].endswith(f"/rest/api/3/issue/{mine.id}")
        for name in ("created", "updated"):
            assert JIRA_TIME.match(fields[name]), fields[name]
            offsets.add(fields[name][-5:])
        assert pd.Timestamp(fields["updated"]) == pd.Timestamp(mine.updated)
        assert fields["resolutiondate"] is None or JIRA_TIME.match(fields["resolutiondate"])
        assert fields["status"]["name"] == mine.status
        assert fields["status"]["statusCategory"]["key"] == JIRA_STATUSES[mine.status][1]
        assert fields["issuetype"]["name"] == mine.issuetype and fields["project"]["key"] == "OPS"
        assert [c["name"] for c in fields["components"]] == list(mine.components)
        if mine.issuetype == "Change":
            assert fields[JIRA_CHANGE_TYPE_FIELD]["value"] in ("Standard", "Normal", "Emergency")
        else:
            assert fields[JIRA_CHANGE_TYPE_FIELD] is None
            assert fields["priority"]["name"] in ("Highest", "High", "Medium", "Low", "Lowest")
        for link in fields["issuelinks"]:
            assert link["type"] == {**link["type"], "name": "Causes", "inward": "is caused by", "outward": "causes"}
            other = link.get("inwardIssue") or link["outwardIssue"]
            assert ("inwardIssue" in link) == (mine.issuetype == "Incident") and other["key"] in served
        log = issue["changelog"]
        assert log["total"] == len(mine.histories) and len(log["histories"]) == min(20, len(mine.histories))
        stamps = [pd.Timestamp(h["created"]) for h in log["histories"]]
        assert stamps == sorted(stamps, reverse=True)  # the most recent first
        assert all(item["field"] in ("status", "labels") for h in log["histories"] for item in h["items"])
    assert offsets == {"+1300", "+1200"}
    one = jira.get(f"{urls['jira']}/rest/api/3/issue/{issues[0]['key']}", params={"fields": "summary"})
    assert one.json()["fields"] == {"summary": issues[0]["fields"]["summary"]}


def test_jql_filters(history, jira, urls):
    issues = sorted(history.jira_issues, key=lambda i: (i.updated, i.number))
    low, high = issues[len(issues) // 4].updated, issues[len(issues) // 2].updated
    jql = f"({INCIDENT_JQL}) AND updated >= {millis(low)} AND updated < {millis(high)} ORDER BY updated ASC, key ASC"
    found = [i["key"] for i in search(jira, urls, jql, fields="updated")]
    assert found == [i.key for i in issues if i.issuetype == "Incident" and low <= i.updated < high] and found

    def keys(query: str) -> set[str]:
        return {i["key"] for i in search(jira, urls, query, maxResults=5000)}

    # A date without a zone is read in the user's zone (Auckland), not in UTC.
    late = next(i for i in issues if i.updated.astimezone(AUCKLAND).date() != i.updated.date())
    day = late.updated.astimezone(AUCKLAND).date()
    local_midnight = datetime(day.year, day.month, day.day, tzinfo=AUCKLAND)
    utc_midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    assert local_midnight <= late.updated < utc_midnight
    for text in (f'"{day:%Y-%m-%d}"', f"{day:%Y-%m-%d}", f'"{day:%Y/%m/%d} 00:00"', f"{day:%Y-%m-%d} 00:00"):
        assert keys(f"updated >= {text}") == {i.key for i in issues if i.updated >= local_midnight}, text
    assert late.key in keys(f'updated >= "{day:%Y-%m-%d}"')
    assert {i.key for i in issues if i.updated >= utc_midnight} != keys(f'updated >= "{day:%Y-%m-%d}"')
    assert keys(f'updated >= "{day:%Y-%m-%d}" AND updated < {millis(local_midnight + timedelta(days=1))}') == {
        i.key for i in issues if local_midnight <= i.updated < local_midnight + timedelta(days=1)}
    every = {i.key for i in issues}
    assert keys('project = "OPS" AND status = "In Progress"') == {i.key for i in issues if i.status == "In Progress"}
    assert keys("project = OPS AND status in (Failed, 'Backed out')") == {
        i.key for i in issues if i.status in ("Failed", "Backed out")}
    assert keys("project = OPS AND issuetype != Change") == {i.key for i in issues if i.issuetype == "Incident"}
    assert keys("project = OPS AND status not in (Resolved, Completed)") == {
        i.key for i in issues if i.status not in ("Resolved", "Completed")}
    assert keys("issuetype = Change OR (issuetype = Incident AND resolved is EMPTY)") == {
        i.key for i in issues if i.issuetype == "Change" or i.resolutiondate is None}
    assert keys(f"project = OPS AND key > {issues[0].key} AND key <= {issues[1].key}") == {
        i.key for i in issues if issues[0].number < i.number <= issues[1].number}
    resolved_since = issues[0].created
    assert keys(f"resolved >= {millis(resolved_since)}") == {i.key for i in issues if i.resolutiondate is not None}
    assert keys("project = ELSEWHERE") == set() and keys("project = ops") == every
    newest = search(jira, urls, "project = OPS ORDER BY created DESC, key DESC", fields="created", maxResults=5000)
    assert [i["key"] for i in newest] == [i.key for i in sorted(issues, key=lambda i: (i.created, i.number),
                                                                   reverse=True)]  # fmt: skip
    for refused in ("ORDER BY updated", "", "project = OPS AND assignee = me", "updated >= 'yesterday'",
                    "project = OPS AND (status = Done", "project ~ OPS"):  # fmt: skip
        response = jira.get(f"{urls['jira']}/rest/api/3/search/jql", params={"jql": refused})
        assert response.status_code == 400 and response.json()["errorMessages"], refused
    with pytest.raises(JqlError):
        parse_jql("status = Done ORDER BY")


def test_the_old_search_is_gone(jira, urls):
    for method in (jira.get, jira.post):
        response = method(f"{urls['jira']}/rest/api/3/search", params={"jql": INCIDENT_JQL})
        assert response.status_code == 410 and "search/jql" in response.json()["errorMessages"][0]


def test_bulkfetch_gives_the_whole_status_history(history, jira, urls):
    document = spec("jira")
    schema = response_schema(document, "/rest/api/3/changelog/bulkfetch", "post")
    request_schema = as_json_schema(document, {"$ref": "#/components/schemas/BulkChangelogRequestBean"})
    cut = [i for i in history.jira_issues if len(i.histories) > JIRA_EMBEDDED_HISTORIES]
    assert cut
    wanted = [i.key for i in cut] + [history.jira_issues[0].id, "OPS-999999"]
    body = {"issueIdsOrKeys": wanted, "fieldIds": ["status"], "maxResults": 10_000}
    assert schema_errors(request_schema, body) == []
    whole = jira.post(f"{urls['jira']}/rest/api/3/changelog/bulkfetch", json=body).json()
    assert schema_errors(schema, whole) == [] and "nextPageToken" not in whole
    logs = {log["issueId"]: log["changeHistories"] for log in whole["issueChangeLogs"]}
    done = {"done", "resolved", "closed", "completed"}
    for issue in cut:
        statuses = [h for h in issue.histories if any(item.field == "status" for item in h.items)]
        assert [h["id"] for h in logs[issue.id]] == [h.id for h in statuses]  # oldest first, status items only
        transitions = [(pd.Timestamp(h["created"]), item["toString"]) for h in logs[issue.id] for item in h["items"]]
        assert all(item["field"] == "status" for h in logs[issue.id] for item in h["items"])
        assert max(at for at, name in transitions if name.lower() in done) == jira_done_at(issue, done)
    assert history.jira_issues[0].id in logs and len(logs) == len(cut) + 1
    pages, token = [], None
    while True:
        page = jira.post(f"{urls['jira']}/rest/api/3/changelog/bulkfetch", json={
            **body, "maxResults": 7, **({"nextPageToken": token} if token else {})}).json()  # fmt: skip
        assert schema_errors(schema, page) == [] and sum(len(log["changeHistories"]) for log in
                                                         page["issueChangeLogs"]) <= 7  # fmt: skip
        pages += [(log["issueId"], h["id"]) for log in page["issueChangeLogs"] for h in log["changeHistories"]]
        token = page.get("nextPageToken")
        if token is None:
            break
    assert pages == [(log["issueId"], h["id"]) for log in whole["issueChangeLogs"] for h in log["changeHistories"]]
    for refused in ({"issueIdsOrKeys": []}, {"issueIdsOrKeys": ["OPS-1"] * 1001}, {"fieldIds": ["status"]},
                    {"issueIdsOrKeys": ["OPS-1"], "maxResults": 20_000}):  # fmt: skip
        response = jira.post(f"{urls['jira']}/rest/api/3/changelog/bulkfetch", json=refused)
        assert response.status_code == 400 and response.json()["errorMessages"]


# ---------------------------------------------------------------------------------------------
# ServiceNow


def test_servicenow_auth(history, urls):
    incidents = f"{urls['servicenow']}/api/now/table/incident"
    refused = requests.get(incidents)
    assert refused.status_code == 401
    assert refused.json() == {"error": {"message": "User Not Authenticated",
                                        "detail": "Required to provide Auth information"}, "status": "failure"}
    assert requests.get(incidents, auth=("scorecard", "")).status_code == 401
    assert requests.get(incidents, auth=SN_AUTH, params={"sysparm_limit": 1}).status_code == 200
    with running(history, token={"servicenow": "right"}) as base:
        only = f"{vendor_urls(base)['servicenow']}/api/now/table/incident"
        assert requests.get(only, auth=("scorecard", "wrong")).status_code == 401
        assert requests.get(only, auth=("scorecard", "right"), params={"sysparm_limit": 1}).status_code == 200


def test_servicenow_values_are_strings_and_references_both_ways(history, sn, urls):
    rows = table(sn, urls, "incident", sysparm_display_value="false", sysparm_exclude_reference_link="true").json()
    assert len(rows["result"]) == len(history.servicenow_incidents)
    for row in rows["result"]:
        assert all(isinstance(value, str) for value in row.values()), row
        assert SN_TIME.match(row["sys_updated_on"]) and SN_TIME.match(row["opened_at"])
        assert row["priority"] in ("1", "2", "3", "4", "5") and row["state"] in ("1", "2", "3", "6", "7", "8")
        assert row["resolved_at"] == "" or SN_TIME.match(row["resolved_at"])
        assert row["cmdb_ci"] == "" or re.fullmatch(r"[0-9a-f]{32}", row["cmdb_ci"])
    linked = table(sn, urls, "incident").json()["result"]
    for plain, with_links in zip(rows["result"], linked, strict=True):
        for field in ("cmdb_ci", "business_service", "caused_by"):
            if plain[field]:
                assert with_links[field] == {"link": with_links[field]["link"], "value": plain[field]}
                assert with_links[field]["link"].endswith(plain[field])
            else:
                assert with_links[field] == ""
    assert any(r["caused_by"] for r in rows["result"]) and any(not r["cmdb_ci"] for r in rows["result"])
    picked = table(sn, urls, "change_request", sysparm_fields="sys_id,number,close_code,nope",
                   sysparm_limit=3).json()["result"]  # fmt: skip
    assert [set(row) for row in picked] == [{"sys_id", "number", "close_code"}] * 3
    shown = table(sn, urls, "incident", sysparm_display_value="true", sysparm_fields="state,cmdb_ci",
                  sysparm_exclude_reference_link="true", sysparm_query="cmdb_ciISNOTEMPTY",
                  sysparm_limit=1).json()["result"][0]  # fmt: skip
    assert shown["state"] in ("Resolved", "Closed", "In Progress") and shown["cmdb_ci"].endswith(("Service",
                                                                                                  "Billing"))
    one = sn.get(f"{urls['servicenow']}/api/now/table/incident/{rows['result'][0]['sys_id']}",
                 params={"sysparm_exclude_reference_link": "true"})  # fmt: skip
    assert one.json()["result"] == rows["result"][0]
    missing = sn.get(f"{urls['servicenow']}/api/now/table/incident/{'0' * 32}")
    assert missing.status_code == 404 and missing.json()["status"] == "failure"
    assert sn.get(f"{urls['servicenow']}/api/now/table/no_such_table").status_code == 400


def test_servicenow_encoded_queries(history, sn, urls):
    changes = sorted(history.servicenow_changes, key=lambda c: (c.updated_at, c.sys_id))

    def numbers(query: str, **params: Any) -> list[str]:
        rows = table(sn, urls, "change_request", sysparm_query=query, sysparm_fields="number", **params)
        return [row["number"] for row in rows.json()["result"]]

    text = lambda moment: moment.strftime("%Y-%m-%d %H:%M:%S")  # noqa: E731
    low, high = changes[len(changes) // 3].updated_at, changes[2 * len(changes) // 3].updated_at
    window = f"sys_updated_on>={text(low)}^sys_updated_on<{text(high)}"
    assert numbers(f"{window}^ORDERBYsys_updated_on^ORDERBYsys_id") == [
        c.number for c in changes if low <= c.updated_at < high]
    assert numbers(f"{window}^ORDERBYDESCsys_updated_on^ORDERBYsys_id")[:3] == [
        c.number for c in sorted((c for c in changes if low <= c.updated_at < high),
                                 key=lambda c: (-c.updated_at.timestamp(), c.sys_id))][:3]  # fmt: skip
    assert sorted(numbers("state=4")) == sorted(c.number for c in changes if c.state == "4")
    assert sorted(numbers("state>=3^close_codeINunsuccessful,backed_out")) == sorted(
        c.number for c in changes if c.close_code in ("unsuccessful", "backed_out"))
    assert sorted(numbers("type=emergency^ORtype=normal^close_code!=successful")) == sorted(
        c.number for c in changes if c.type != "standard" and c.close_code not in ("successful", ""))
    assert sorted(numbers("type=emergency^NQstate=4")) == sorted(
        c.number for c in changes if c.type == "emergency" or c.state == "4")
    assert numbers("no_such_field=1") == [] and numbers("") == numbers("ORDERBYsys_updated_on")
    assert numbers("work_endISEMPTY^state=3") == [c.number for c in changes if c.state == "3" and c.work_end is None]
    parsed = parse_query("a=1^ORb=2^c>3^NQd=4^ORDERBYe^ORDERBYDESCf")
    assert [[[(c.field, c.op, c.value) for c in alternatives] for alternatives in group] for group in parsed.groups] \
        == [[[("a", "=", "1"), ("b", "=", "2")], [("c", ">", "3")]], [[("d", "=", "4")]]]  # fmt: skip
    assert parsed.order == (("e", False), ("f", True))


def test_servicenow_keyset_and_offset_paging(history, sn, urls):
    rows = sorted(history.servicenow_changes, key=lambda c: (c.updated_at, c.sys_id))
    start, end = rows[0].updated_at.strftime("%Y-%m-%d %H:%M:%S"), END.strftime("%Y-%m-%d %H:%M:%S")
    order = "^ORDERBYsys_updated_on^ORDERBYsys_id"
    query = f"sys_updated_on>={start}^sys_updated_on<{end}{order}"
    seen, pages = [], 0
    while True:
        response = table(sn, urls, "change_request", sysparm_query=query, sysparm_limit=9, sysparm_offset=0,
                         sysparm_fields="sys_id,sys_updated_on,number", sysparm_exclude_reference_link="true")
        page = response.json()["result"]
        seen += [row["number"] for row in page]
        pages += 1
        if len(page) < 9:
            break
        last_time, last_id = page[-1]["sys_updated_on"], page[-1]["sys_id"]
        query = (f"sys_updated_on>{last_time}^sys_updated_on<{end}^NQsys_updated_on={last_time}^sys_id>{last_id}"
                 f"{order}")  # fmt: skip
    assert seen == [c.number for c in rows] and pages == len(rows) // 9 + 1
    first = table(sn, urls, "change_request", sysparm_limit=10, sysparm_query=f"ORDERBYsys_updated_on{order}")
    assert first.headers["X-Total-Count"] == str(len(rows))
    links = {rel: url for url, rel in re.findall(r'<([^>]+)>;rel="(\w+)"', first.headers["Link"])}
    assert set(links) == {"first", "next", "last"} and "sysparm_offset=10" in links["next"]
    following = sn.get(links["next"])
    assert following.json()["result"][0]["number"] == rows[10].number
    assert set(re.findall(r'rel="(\w+)"', following.headers["Link"])) == {"first", "prev", "next", "last"}
    capped = table(sn, urls, "change_request", sysparm_limit=50_000, sysparm_fields="number")
    assert len(capped.json()["result"]) == len(rows)
    uncounted = table(sn, urls, "change_request", sysparm_limit=1, sysparm_no_count="true")
    assert "X-Total-Count" not in uncounted.headers


def test_servicenow_lookups_by_sys_id(history, sn, urls):
    cis = [ci.sys_id for ci in history.servicenow_cis]
    found = table(sn, urls, "cmdb_ci", sysparm_query=f"sys_idIN{','.join(cis + ['0' * 32])}",
                  sysparm_fields="sys_id,name").json()["result"]  # fmt: skip
    assert {row["sys_id"]: row["name"] for row in found} == {ci.sys_id: ci.name for ci in history.servicenow_cis}
    assert UNMAPPED_CI in {row["name"] for row in found}
    wanted = [c.sys_id for c in history.servicenow_changes[:100]]
    numbers = table(sn, urls, "change_request", sysparm_query=f"sys_idIN{','.join(wanted)}",
                    sysparm_fields="sys_id,number", sysparm_limit=100).json()["result"]  # fmt: skip
    assert {row["sys_id"]: row["number"] for row in numbers} == {c.sys_id: c.number for c in
                                                                 history.servicenow_changes[:100]}  # fmt: skip


def test_servicenow_requests_and_answers_fit_the_description(sn, urls):
    document = spec("servicenow")
    operation = document["paths"]["/api/now/table/{tableName}"]["get"]
    declared = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
    params = {"sysparm_query": "sys_updated_on>=2026-03-01 00:00:00^ORDERBYsys_updated_on^ORDERBYsys_id",
              "sysparm_fields": "sys_id,number,state", "sysparm_display_value": "false",
              "sysparm_exclude_reference_link": "true", "sysparm_limit": 5, "sysparm_offset": 0,
              "sysparm_no_count": "false", "sysparm_suppress_pagination_header": "true"}  # fmt: skip
    assert set(params) <= declared
    response = table(sn, urls, "incident", **params)
    assert schema_errors(response_schema(document, "/api/now/table/{tableName}"), response.json()) == []
    assert "Link" not in response.headers  # sysparm_suppress_pagination_header
    row = response.json()["result"][0]
    one = sn.get(f"{urls['servicenow']}/api/now/table/incident/{row['sys_id']}", params={"sysparm_fields": "number"})
    assert schema_errors(response_schema(document, "/api/now/table/{tableName}/{sys_id}"), one.json()) == []


# ---------------------------------------------------------------------------------------------
# Faults, and the truth


def test_faults_apply_to_jira_and_servicenow_in_their_own_shapes(history):
    app = make_app(history, fault_rate=0.6, seed=9, keep_fault_log=True)
    statuses: dict[str, set[int]] = {"jira": set(), "servicenow": set()}
    with running(app) as base, requests.Session() as http:
        urls = vendor_urls(base)
        for n in range(60):
            vendor = ("jira", "servicenow")[n % 2]
            url = (f"{urls['jira']}/rest/api/3/search/jql?jql=project%3DOPS&maxResults={n}" if vendor == "jira"
                   else f"{urls['servicenow']}/api/now/table/incident?sysparm_limit={n + 1}")  # fmt: skip
            try:
                response = http.get(url, auth=JIRA_AUTH if vendor == "jira" else SN_AUTH, timeout=5)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                statuses[vendor].add(0)
                continue
            statuses[vendor].add(response.status_code)
            if response.status_code == 429:
                assert response.headers["Retry-After"] in ("0", "1")
                body = response.json()
                assert body["errorMessages"] if vendor == "jira" else body["status"] == "failure"
            elif response.status_code in (502, 503):
                assert response.headers["Content-Type"].startswith("text/html")
    assert any(kind for _, _, kind in app.faults.log)
    for vendor, seen in statuses.items():
        assert 200 in seen and seen & {0, 429, 502, 503}, (vendor, seen)


def test_truth_metrics_leave_unmapped_records_out(history, truth):
    assert (truth["incidents"]["service"] == UNMAPPED).any()
    metrics = truth_metrics(history, truth)
    mapped = {kind: frame[frame["service"] != UNMAPPED] for kind, frame in truth.items()}
    services = sorted(history.services)
    expected = derive_metrics(mapped["incidents"], mapped["changes"], mapped["deployments"], mapped["pull_requests"],
                              grain="month", start=END - pd.Timedelta(days=DAYS), end=END, as_of=END,
                              services=services, monitored=services)  # fmt: skip
    pd.testing.assert_frame_equal(metrics, expected)
    assert UNMAPPED not in set(metrics["service"])
    failure_rate = metrics[(metrics["metric"] == "change_failure_rate") & metrics["value"].notna()]
    assert len(failure_rate) > 0
    only_vendors = truth_frames(history, sources=("github", "pagerduty"))
    assert set(only_vendors["incidents"]["source"]) == {"pagerduty"} and only_vendors["changes"].empty
