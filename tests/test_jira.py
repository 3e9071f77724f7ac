"""The Jira source against a fake Jira Cloud REST API v3 (responses; no network, nothing sleeps, no wall clock).

Every request the connector sends is checked against a cut of Atlassian's own OpenAPI description
(tests/specs/jira/rest-subset.json, made by tests/specs/jira/cut.py): the path and method exist, every query
parameter is declared for that operation, and the bulkfetch body fits its request schema.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from functools import cache
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
import responses
from pydantic import ValidationError

from connectors.base import SourceContext, SourceError
from connectors.http import VendorHttpError
from connectors.jira.client import JiraClient, window_jql
from connectors.jira.config import JiraConfig
from connectors.jira.extract import change_rows, incident_rows
from connectors.jira.source import jira_source
from connectors.services import ServiceMapping

try:  # not a dependency of the project: the schema check below falls back to its own when it is absent
    import jsonschema
except ImportError:  # pragma: no cover - depends on the environment
    jsonschema = None

BASE = "https://acme.atlassian.test"
SEARCH = f"{BASE}/rest/api/3/search/jql"
OLD_SEARCH = f"{BASE}/rest/api/3/search"
BULK = f"{BASE}/rest/api/3/changelog/bulkfetch"
MYSELF = f"{BASE}/rest/api/3/myself"
FIELD = f"{BASE}/rest/api/3/field"
EMAIL, TOKEN = "ops-bot@acme.example", "FAKE_JIRA_TOKEN_123"
BASIC = "Basic " + base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()
ENV = {"JIRA_EMAIL": EMAIL, "JIRA_TOKEN": TOKEN}
ZONE = "Pacific/Auckland"  # the API user's zone: +13:00 in March (daylight time), +12:00 in winter
INCIDENT_JQL = "project = OPS AND issuetype = Incident"
CHANGE_JQL = "project = OPS AND issuetype = Change"
START, END = pd.Timestamp("2026-03-05T00:00:00Z"), pd.Timestamp("2026-03-06T00:00:00Z")
SERVICES = {
    "checkout": ServiceMapping(jira_components=["checkout"]),
    "payments": ServiceMapping(jira_components=["Payments", "billing-api"]),
}
SPEC_FILE = Path(__file__).parent / "specs" / "jira" / "rest-subset.json"
DONE = {"Resolved", "Done", "Closed", "Completed", "Failed", "Backed out", "Rolled back", "Canceled", "Declined"}
OPEN = {"Open": "new", "To Do": "new", "In Progress": "indeterminate", "Implementing": "indeterminate"}
CHANGE_TYPE_FIELD = {"id": "customfield_10042", "name": "Change type", "custom": True}
JIRA_FIELDS = [
    {"id": "summary", "name": "Summary", "custom": False},
    {"id": "status", "name": "Status", "custom": False},
    {"id": "components", "name": "Components", "custom": False},
    CHANGE_TYPE_FIELD,
    {"id": "customfield_10077", "name": "Service", "custom": True},
]


# --- the spec ----------------------------------------------------------------------------------------------


@cache
def spec() -> dict:
    return json.loads(SPEC_FILE.read_text(encoding="utf-8"))


def schema(name: str) -> dict:
    return spec()["components"]["schemas"][name]


def spec_problems(method: str, url: str, body: bytes | str | None) -> list[str]:
    """What is wrong with a request by the spec cut: an unknown path or method, an undeclared query parameter,
    a body that does not fit the operation's request schema."""
    parts = urlsplit(url)
    operation = spec()["paths"].get(parts.path, {}).get(method.lower())
    if operation is None:
        return [f"{method} {parts.path}: no such operation in the spec"]
    declared = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
    problems = [f"{method} {parts.path}: undeclared query parameter {name}"
                for name in parse_qs(parts.query, keep_blank_values=True) if name not in declared]  # fmt: skip
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is not None:
        ref = content["schema"]["$ref"].rsplit("/", 1)[1]
        problems += [f"{method} {parts.path}: {problem}" for problem in body_problems(json.loads(body), schema(ref))]
    elif body:
        problems.append(f"{method} {parts.path}: a body where the operation takes none")
    return problems


def body_problems(body, node: dict) -> list[str]:
    if jsonschema is not None:
        return [error.message for error in jsonschema.Draft7Validator(node).iter_errors(body)]
    return _checked(body, node, "body")


_TYPES = {"object": dict, "array": list, "string": str, "integer": int, "boolean": bool}


def _checked(value, node: dict, where: str) -> list[str]:
    """The subset of JSON Schema the request schemas use: type, required, properties, additionalProperties false,
    items, minItems/maxItems, uniqueItems, minimum/maximum."""
    kind = node.get("type")
    if kind and (not isinstance(value, _TYPES[kind]) or (kind == "integer" and isinstance(value, bool))):
        return [f"{where}: not of type {kind}"]
    problems = []
    if kind == "object":
        problems += [f"{where}: {key} is required" for key in node.get("required", []) if key not in value]
        properties = node.get("properties", {})
        if node.get("additionalProperties") is False:
            problems += [f"{where}: {key} is not allowed" for key in value if key not in properties]
        for key, item in value.items():
            if key in properties:
                problems += _checked(item, properties[key], f"{where}.{key}")
    if kind == "array":
        if "maxItems" in node and len(value) > node["maxItems"]:
            problems.append(f"{where}: more than {node['maxItems']} items")
        if "minItems" in node and len(value) < node["minItems"]:
            problems.append(f"{where}: fewer than {node['minItems']} items")
        if node.get("uniqueItems") and len({json.dumps(item) for item in value}) < len(value):
            problems.append(f"{where}: items are not unique")
        for item in value:
            problems += _checked(item, node.get("items", {}), f"{where}[]")
    if kind == "integer":
        if "maximum" in node and value > node["maximum"]:
            problems.append(f"{where}: above {node['maximum']}")
        if "minimum" in node and value < node["minimum"]:
            problems.append(f"{where}: below {node['minimum']}")
    return problems


# --- the fake Jira ----------------------------------------------------------------------------------------


def utc(value) -> pd.Timestamp:
    value = pd.Timestamp(value)
    return value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")


def jira_time(value, zone: str = ZONE) -> str:
    """A time as Jira writes it: the user's zone, milliseconds, an offset without a colon."""
    local = utc(value).tz_convert(zone)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + local.strftime("%z")


def history(number: int, at, to: str, *, field: str = "status", source: str = "In Progress") -> dict:
    return {"id": str(number), "created": jira_time(at),
            "items": [{"field": field, "fieldtype": "jira", "fieldId": field, "from": "1", "fromString": source,
                       "to": "2", "toString": to}]}  # fmt: skip


def issue(number, updated, *, issuetype="Incident", created=None, status="Resolved", resolved=None,
          resolutiondate=True, priority="High", components=("checkout",), links=(), change_type="Normal",
          histories=None, **fields):  # fmt: skip
    """An issue as Jira stores it, its `changelog` holding every history (the fake embeds the latest 20)."""
    updated = utc(updated)
    created = utc(created) if created is not None else updated - pd.Timedelta(hours=2)
    done = status in DONE
    resolved = utc(resolved) if resolved is not None else created + pd.Timedelta(hours=1)
    if histories is None:
        histories = [history(1, created + pd.Timedelta(minutes=10), "In Progress", source="Open")]
        histories += [history(2, resolved, status)] if done else []
    body = {
        "summary": f"issue {number}",
        "issuetype": {"name": issuetype, "id": "10002" if issuetype == "Change" else "10001"},
        "project": {"key": "OPS", "id": "10000"},
        "status": {"name": status, "id": "3", "statusCategory": {"key": "done" if done else OPEN.get(status, "new")}},
        "priority": {"name": priority, "id": "2"} if priority else None,
        "components": [{"id": str(100 + n), "name": name} for n, name in enumerate(components)],
        "created": jira_time(created),
        "updated": jira_time(updated),
        "resolutiondate": jira_time(resolved) if done and resolutiondate else None,
        "issuelinks": list(links),
    }
    if issuetype == "Change":
        body["customfield_10042"] = {"value": change_type, "id": "10300"} if change_type else None
    return {"id": str(20000 + number), "key": f"OPS-{number}", "self": f"{BASE}/rest/api/3/issue/{20000 + number}",
            "fields": body | fields, "changelog": {"histories": histories}}  # fmt: skip


def caused_by(key: str) -> dict:
    return {"id": "1", "type": {"name": "Causes", "inward": "is caused by", "outward": "causes"},
            "inwardIssue": {"id": "1", "key": key}}  # fmt: skip


_CONDITION = re.compile(r"^\s*(\w+)\s*(>=|<=|!=|=|>|<)\s*(.+?)\s*$")


class FakeJira:
    """GET search/jql (the JQL subset the connector sends: AND of `field op value`, ORDER BY; a date without a
    zone is read in the user's zone, as Jira does), POST changelog/bulkfetch, GET myself and GET field, with Basic
    auth. `page_sizes`: how many issues each page holds at most (a short page in the middle), else `maxResults`;
    `embed`: the most recent histories a search embeds; `window=False` ignores the JQL's bounds on updated."""

    def __init__(self, issues, *, page_sizes=(), embed=20, zone=ZONE, window=True, bulk_page=None):
        self.issues = list(issues)
        self.page_sizes = list(page_sizes)
        self.embed = embed
        self.zone = zone
        self.window = window
        self.bulk_page = bulk_page
        self.searches: list[dict[str, list[str]]] = []
        self.bulk: list[dict] = []
        self.served: dict[str, dict] = {}
        self.headers: list[dict[str, str]] = []

    def install(self, api) -> FakeJira:
        api.add_callback(responses.GET, SEARCH, callback=self.search)
        api.add_callback(responses.POST, BULK, callback=self.bulkfetch)
        api.add_callback(responses.GET, MYSELF, callback=self.myself)
        api.add_callback(responses.GET, FIELD, callback=self.field)
        api.add(responses.GET, OLD_SEARCH, status=410, json={"errorMessages": ["The requested API has been removed."]})
        return self

    def _refused(self, request) -> bool:
        self.headers.append(dict(request.headers))
        return request.headers.get("Authorization") != BASIC

    def myself(self, request):
        if self._refused(request):
            return 401, {}, json.dumps({"errorMessages": ["You are not authenticated."]})
        return 200, {}, json.dumps({"accountId": "5b10ac8d82e05b22cc7d4ef5", "emailAddress": EMAIL,
                                    "displayName": "Ops Bot", "timeZone": self.zone, "active": True})  # fmt: skip

    def field(self, request):
        if self._refused(request):
            return 401, {}, "{}"
        return 200, {}, json.dumps(JIRA_FIELDS)

    def moment(self, value: str) -> pd.Timestamp:
        value = value.strip().strip('"').strip("'")
        if value.isdigit():
            return pd.Timestamp(int(value), unit="ms", tz="UTC")
        return pd.Timestamp(value.replace("/", "-")).tz_localize(self.zone).tz_convert("UTC")

    def selected(self, jql: str) -> list[dict]:
        where, *order_by = re.split(r"\s+ORDER\s+BY\s+", jql, maxsplit=1, flags=re.IGNORECASE)
        order = order_by[0] if order_by else ""
        items = self.issues
        for condition in re.split(r"\s+AND\s+", where.replace("(", " ").replace(")", " ")):
            field, op, value = _CONDITION.match(condition).groups()
            if field in ("updated", "created"):
                if not self.window:
                    continue
                bound = self.moment(value)
                compare = {">=": bound.__le__, ">": bound.__lt__, "<": bound.__gt__, "<=": bound.__ge__}[op]
                items = [i for i in items if compare(utc(i["fields"][field]))]
            else:
                value = value.strip('"')
                read = {"project": lambda i: i["fields"]["project"]["key"],
                        "issuetype": lambda i: i["fields"]["issuetype"]["name"]}[field]  # fmt: skip
                items = [i for i in items if (read(i) == value) == (op == "=")]
        for term in reversed([t.strip() for t in order.split(",") if t.strip()]):
            name, *direction = term.split()
            if name == "updated":
                items = sorted(items, key=lambda i: utc(i["fields"]["updated"]), reverse=direction == ["DESC"])
            else:
                items = sorted(items, key=lambda i: i.get("key", ""), reverse=direction == ["DESC"])
        return items

    def search(self, request):
        query = parse_qs(urlsplit(request.url).query)
        self.searches.append(query)
        if self._refused(request):
            return 401, {}, json.dumps({"errorMessages": ["You are not authenticated."]})
        items = self.selected(query["jql"][0])
        asked = query["fields"][0].split(",")
        offset = int(query["nextPageToken"][0].removeprefix("tok-")) if "nextPageToken" in query else 0
        page_number = len([q for q in self.searches if q["jql"] == query["jql"]]) - 1
        size = int(query["maxResults"][0])
        if page_number < len(self.page_sizes):
            size = min(size, self.page_sizes[page_number])
        page = [self.serve(item, asked, "changelog" in query.get("expand", [""])[0])
                for item in items[offset : offset + size]]  # fmt: skip
        body: dict = {"issues": page, "isLast": offset + size >= len(items)}
        if not body["isLast"]:
            body["nextPageToken"] = f"tok-{offset + size}"
        return 200, {}, json.dumps(body)

    def serve(self, item: dict, asked: list[str], expand: bool) -> dict:
        served = {key: copy.deepcopy(item[key]) for key in ("id", "key", "self") if key in item}
        served["fields"] = {name: copy.deepcopy(item["fields"][name]) for name in asked if name in item["fields"]}
        if expand:
            histories = sorted(item["changelog"]["histories"], key=lambda h: utc(h["created"]))
            latest = histories[-self.embed :] if self.embed else []
            served["changelog"] = {"startAt": 0, "maxResults": len(latest), "total": len(histories),
                                   "histories": latest}  # fmt: skip
        self.served[item.get("key") or item["id"]] = served
        return served

    def bulkfetch(self, request):
        body = json.loads(request.body)
        self.bulk.append(body)
        if self._refused(request):
            return 401, {}, "{}"
        by_name = {i["key"]: i for i in self.issues} | {i["id"]: i for i in self.issues}
        pairs = [(by_name[name]["id"], h) for name in body["issueIdsOrKeys"] if name in by_name
                 for h in by_name[name]["changelog"]["histories"]
                 if any(item["fieldId"] in body.get("fieldIds", [item["fieldId"]]) for item in h["items"])]  # fmt: skip
        offset = int(body.get("nextPageToken", "b-0").removeprefix("b-"))
        size = min(body.get("maxResults", 1000), self.bulk_page or 10_000)
        logs: dict[str, list] = {}
        for issue_id, entry in pairs[offset : offset + size]:
            logs.setdefault(issue_id, []).append(entry)
        answer: dict = {"issueChangeLogs": [{"issueId": k, "changeHistories": v} for k, v in logs.items()]}
        if offset + size < len(pairs):
            answer["nextPageToken"] = f"b-{offset + size}"
        return 200, {}, json.dumps(answer)


@pytest.fixture
def api():
    """The mocked HTTP layer; afterwards, every request sent is held to the spec cut."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
        problems = [problem for call in mock.calls
                    for problem in spec_problems(call.request.method, call.request.url, call.request.body)]  # fmt: skip
        assert problems == []


def source(sleeps=None, mapping=SERVICES, environ=ENV, **section):
    section = {"incident_jql": INCIDENT_JQL, "change_jql": CHANGE_JQL} | section
    config = JiraConfig(base_url=BASE, **section)
    context = SourceContext(Path("."), mapping, ("production",))
    sleep = sleeps.append if sleeps is not None else (lambda seconds: None)
    return jira_source(config, context, environ, sleep=sleep)


def serve(api, issues, **options) -> FakeJira:
    return FakeJira(issues, **options).install(api)


def good(batch) -> pd.DataFrame:
    return batch.good.set_index("source_id")


def at(hours: float) -> pd.Timestamp:
    return START + pd.Timedelta(hours=hours)


# --- the search: paging, the JQL, the fields ------------------------------------------------------------


def test_pages_by_token_to_the_last_page_through_a_short_page_in_the_middle(api):
    fake = serve(api, [issue(n, at(n)) for n in range(1, 9)], page_sizes=[3, 1, 3])
    batch = source(page_size=3).fetch("incidents", START, END)
    assert sorted(batch.good["source_id"], key=lambda k: int(k[4:])) == [f"OPS-{n}" for n in range(1, 9)]
    assert batch.rejected.empty and batch.cursor == END.isoformat()  # read through the window's end
    # 3, then 1 (short, yet not the last), then 3, then the last 1: four pages, each asking for 3
    assert [q.get("nextPageToken") for q in fake.searches] == [None, ["tok-3"], ["tok-4"], ["tok-7"]]
    assert all(q["maxResults"] == ["3"] for q in fake.searches)


def test_the_jql_sent_bounds_updated_by_epoch_ms_and_orders_by_updated_then_key(api):
    fake = serve(api, [issue(1, at(1))])
    source().fetch("incidents", START, END)
    (query,) = fake.searches
    assert query["jql"] == [f"({INCIDENT_JQL}) AND updated >= 1772668800000 AND updated < 1772755200000 "
                            "ORDER BY updated ASC, key ASC"]  # fmt: skip
    assert int(START.timestamp() * 1000) == 1772668800000 and int(END.timestamp() * 1000) == 1772755200000
    assert query["fields"] == ["summary,status,priority,components,created,updated,resolutiondate,issuelinks"]
    assert query["maxResults"] == ["100"] and query["expand"] == ["changelog"]


def test_the_fields_of_changes_are_the_mapped_ones_with_the_change_type_field_by_id(api):
    fake = serve(api, [issue(1, at(1), issuetype="Change", status="Completed")])
    source().fetch("changes", START, END)
    (query,) = fake.searches
    assert query["jql"][0].startswith(f"({CHANGE_JQL}) AND updated >= 1772668800000 AND updated < 1772755200000 ")
    assert query["fields"] == ["status,components,created,updated,resolutiondate,customfield_10042"]


def test_sub_millisecond_bounds_round_outwards_and_a_configured_order_by_is_replaced():
    start, end = pd.Timestamp("2026-03-05T00:00:00.0004Z"), pd.Timestamp("2026-03-05T01:00:00.0004Z")
    jql = window_jql("project = OPS order by created DESC", start, end)
    assert jql == ("(project = OPS) AND updated >= 1772668800000 AND updated < 1772672400001 "
                   "ORDER BY updated ASC, key ASC")  # fmt: skip


def test_no_jql_configured_means_no_records_of_that_kind_and_no_request(api):
    fake = serve(api, [issue(1, at(1)), issue(2, at(2), issuetype="Change", status="Completed")])
    bare = source(incident_jql=None, change_jql=None)
    for kind in ("incidents", "changes", "deployments", "pull_requests"):
        batch = bare.fetch(kind, START, END)
        assert batch.good.empty and batch.rejected.empty and batch.cursor is None
    assert len(api.calls) == 0 and fake.searches == []


def test_what_the_search_returns_out_of_the_half_open_window_is_dropped(api):
    issues = [issue(1, START - pd.Timedelta(milliseconds=1)), issue(2, START), issue(3, at(12)),
              issue(4, END - pd.Timedelta(milliseconds=1)), issue(5, END)]  # fmt: skip
    serve(api, issues, window=False)  # a search that ignores the bounds: the source filters again
    batch = source().fetch("incidents", START, END)
    assert sorted(batch.good["source_id"]) == ["OPS-2", "OPS-3", "OPS-4"]


# --- time zones ------------------------------------------------------------------------------------------


def test_an_auckland_user_gets_the_utc_window_to_the_millisecond_at_both_midnights(api):
    """A naive date in the JQL would be read in Pacific/Auckland (+13:00): "2026-03-05" would start the window at
    2026-03-04T11:00Z and "2026-03-06" end it at 2026-03-05T11:00Z, losing the UTC evening."""
    issues = [
        issue(1, pd.Timestamp("2026-03-05T00:00:00+13:00")),  # Auckland's midnight: 11:00Z the day before
        issue(2, START - pd.Timedelta(milliseconds=1)),  # 12:59:59.999 in Auckland on the 5th
        issue(3, START),  # UTC midnight: 13:00 in Auckland
        issue(4, pd.Timestamp("2026-03-06T00:00:00+13:00")),  # Auckland's next midnight: 11:00Z, in the window
        issue(5, END - pd.Timedelta(milliseconds=1)),  # 12:59:59.999 on the 6th in Auckland, in the window
        issue(6, END),  # out
    ]
    fake = serve(api, issues)
    batch = source().fetch("incidents", START, END)
    assert sorted(batch.good["source_id"]) == ["OPS-3", "OPS-4", "OPS-5"]
    assert good(batch).loc["OPS-5", "updated_at"] == pd.Timestamp("2026-03-05T23:59:59.999Z")
    assert issues[4]["fields"]["updated"] == "2026-03-06T12:59:59.999+1300"
    # the fake reads a date the way Jira does (the user's zone): what a naive-date JQL would have selected
    naive = fake.selected(f'({INCIDENT_JQL}) AND updated >= "2026-03-05" AND updated < "2026-03-06"')
    assert [i["key"] for i in naive] == ["OPS-1", "OPS-2", "OPS-3"]  # OPS-4 and OPS-5 lost


def test_offsets_without_a_colon_are_stored_in_utc(api):
    auckland = issue(1, at(10), created="2026-03-04T21:15:30Z", resolved="2026-03-05T01:00:00Z")
    assert auckland["fields"]["created"] == "2026-03-05T10:15:30.000+1300"
    winter = issue(2, at(11), created="2026-06-30T23:30:00Z", status="Open")
    winter["fields"]["created"] = jira_time("2026-03-01T05:30:00Z", "America/Bogota")  # -0500
    winter["fields"]["updated"] = "2026-03-05T05:00:00.250-0600"  # 11:00:00.250Z
    serve(api, [auckland, winter])
    rows = good(source().fetch("incidents", START, END))
    assert winter["fields"]["created"] == "2026-03-01T00:30:00.000-0500"
    assert rows.loc["OPS-1", "opened_at"] == pd.Timestamp("2026-03-04T21:15:30Z")
    assert rows.loc["OPS-1", "resolved_at"] == pd.Timestamp("2026-03-05T01:00:00Z")
    assert rows.loc["OPS-1", "updated_at"] == at(10)
    assert rows.loc["OPS-2", "opened_at"] == pd.Timestamp("2026-03-01T05:30:00Z")
    assert rows.loc["OPS-2", "updated_at"] == pd.Timestamp("2026-03-05T11:00:00.250Z")
    assert pd.isna(rows.loc["OPS-2", "resolved_at"]) and rows.loc["OPS-2", "status"] == "Open"
    assert str(rows["opened_at"].dtype) == "datetime64[ns, UTC]"


# --- resolution from the changelog ------------------------------------------------------------------------


def noisy(number: int, since: pd.Timestamp, count: int) -> list[dict]:
    """`count` histories of other fields, a minute apart from `since`: they push older ones out of the embed."""
    return [history(number + n, since + pd.Timedelta(minutes=n), "someone", field="assignee") for n in range(count)]


def test_resolution_from_the_changelog_and_one_bulkfetch_for_every_truncated_issue(api):
    opened = at(1)
    resolved_at = {2: at(2), 3: at(3)}

    def cut_short(number):  # resolved, then 25 edits: the resolving transition is not among the 20 embedded
        histories = [history(number * 100, resolved_at[number], "Resolved")]
        histories += noisy(number * 100 + 1, resolved_at[number] + pd.Timedelta(minutes=5), 25)
        return issue(number, at(8), created=opened, resolutiondate=False, histories=histories)

    reopened = [history(10, at(1.5), "Resolved"), history(11, at(1.7), "Reopened", source="Resolved"),
                history(12, at(2.5), "Closed", source="Reopened")]  # fmt: skip
    closed_later = [history(60, at(2.2), "Resolved"), history(61, at(4.5), "Closed", source="Resolved")]
    issues = [
        issue(1, at(5), created=opened, resolutiondate=False, histories=reopened),  # embedded, untruncated
        issue(6, at(5), created=opened, resolutiondate=False, status="Closed", histories=closed_later),
        cut_short(2),
        cut_short(3),
        issue(4, at(6), created=opened, resolved=at(4), histories=noisy(400, at(4), 30)),  # has a resolutiondate
        issue(5, at(7), created=opened, status="In Progress", histories=noisy(500, at(1), 30)),  # open
    ]
    fake = serve(api, issues)
    batch = source().fetch("incidents", START, END)
    rows = good(batch)
    assert rows.loc["OPS-1", "resolved_at"] == at(2.5)  # the last transition to a done status
    assert rows.loc["OPS-2", "resolved_at"] == at(2) and rows.loc["OPS-3", "resolved_at"] == at(3)
    assert rows.loc["OPS-4", "resolved_at"] == at(4) and pd.isna(rows.loc["OPS-5", "resolved_at"])
    assert rows.loc["OPS-6", "resolved_at"] == at(2.2)  # resolved then, closed days after: not the resolution
    embedded = fake.served["OPS-2"]["changelog"]
    assert embedded["total"] == 26 and len(embedded["histories"]) == 20
    assert fake.bulk == [{"issueIdsOrKeys": ["OPS-2", "OPS-3"], "fieldIds": ["status"], "maxResults": 10_000}]


def test_bulkfetch_sends_at_most_1000_issues_a_request_and_follows_its_token(api):
    issues = [issue(n, at(5), created=at(1), resolutiondate=False,
                    histories=[history(n * 100, at(2), "Done"), *noisy(n * 100 + 1, at(3), 20)])
              for n in range(1, 1003)]  # fmt: skip
    fake = serve(api, issues, bulk_page=600)  # status histories come 600 a page: the token is followed
    batch = source().fetch("incidents", START, END)
    assert len(batch.good) == 1002 and set(batch.good["resolved_at"]) == {at(2)}
    assert [len(body["issueIdsOrKeys"]) for body in fake.bulk] == [1000, 1000, 2]
    assert "nextPageToken" not in fake.bulk[0] and fake.bulk[1]["nextPageToken"] == "b-600"
    assert fake.bulk[1]["issueIdsOrKeys"] == fake.bulk[0]["issueIdsOrKeys"]
    assert len(fake.searches) == 11  # 100 issues a page


# --- severity, service, caused by -------------------------------------------------------------------------


@pytest.mark.parametrize(("priority", "severity"), [("Highest", "sev1"), ("High", "sev2"), ("medium", "sev3"),
                                                    ("LOW", "sev4"), ("Lowest", "sev5"), (None, None)])  # fmt: skip
def test_default_severity_from_the_priority_name(priority, severity):
    rows = incident_rows([issue(1, at(1), priority=priority)], SERVICES, JiraConfig(base_url=BASE))
    assert rows.loc[0, "severity"] == severity


def test_a_custom_severity_map_replaces_the_default_and_an_unknown_priority_is_rejected(api):
    serve(api, [issue(1, at(1), priority="Blocker"), issue(2, at(2), priority="Minor"),
                issue(3, at(3), priority="Highest"), issue(4, at(4), priority="Urgent")])  # fmt: skip
    batch = source(severity_by_priority={"blocker": "sev1", "Minor": "sev4"}).fetch("incidents", START, END)
    assert dict(good(batch)["severity"]) == {"OPS-1": "sev1", "OPS-2": "sev4"}
    reasons = dict(zip(batch.rejected["source_id"], batch.rejected["reason"], strict=True))
    assert set(reasons) == {"OPS-3", "OPS-4"} and set(batch.rejected["column"]) == {"severity"}
    assert "Highest (not in sources.jira.severity_by_priority)" in reasons["OPS-3"]
    assert "Urgent (not in sources.jira.severity_by_priority)" in reasons["OPS-4"]
    with pytest.raises(ValidationError):
        JiraConfig(base_url=BASE, severity_by_priority={"Highest": "critical"})


def test_components_map_to_services_first_mapped_wins_else_unmapped(api):
    serve(api, [
        issue(1, at(1), components=("checkout",)),
        issue(2, at(2), components=("sandbox", "BILLING-API")),  # the first one a service claims, any case
        issue(3, at(3), components=("sandbox",)),  # no service claims it
        issue(4, at(4), components=()),  # no component at all: it lands, unmapped
        issue(5, at(5), components=("checkout", "payments")),
    ])  # fmt: skip
    batch = source().fetch("incidents", START, END)
    assert dict(good(batch)["service"]) == {"OPS-1": "checkout", "OPS-2": "payments", "OPS-3": "unmapped",
                                            "OPS-4": "unmapped", "OPS-5": "checkout"}  # fmt: skip
    # the component each was mapped by, else its first one: what an unmapped record tells the check
    assert dict(good(batch)["entity"]) == {"OPS-1": "checkout", "OPS-2": "BILLING-API", "OPS-3": "sandbox",
                                           "OPS-4": None, "OPS-5": "checkout"}  # fmt: skip
    assert batch.rejected.empty


def test_a_configured_service_field_is_read_instead_of_the_components(api):
    fake = serve(api, [
        issue(1, at(1), components=("payments",), customfield_10077={"value": "Checkout", "id": "1"}),
        issue(2, at(2), customfield_10077={"value": "billing-api", "id": "2"}),  # a payments component name
        issue(3, at(3), customfield_10077=None),
        issue(4, at(4), customfield_10077="ledger"),
    ])  # fmt: skip
    batch = source(service_field="Service").fetch("incidents", START, END)
    assert dict(good(batch)["service"]) == {"OPS-1": "checkout", "OPS-2": "payments", "OPS-3": "unmapped",
                                            "OPS-4": "unmapped"}  # fmt: skip
    assert dict(good(batch)["entity"]) == {"OPS-1": "Checkout", "OPS-2": "billing-api", "OPS-3": None,
                                           "OPS-4": "ledger"}  # fmt: skip
    (query,) = fake.searches
    assert query["fields"] == ["summary,status,priority,created,updated,resolutiondate,issuelinks,customfield_10077"]


def test_caused_by_change_is_the_inward_issue_of_the_causes_link(api):
    outward = {
        "type": {"name": "Causes", "inward": "is caused by", "outward": "causes"},
        "outwardIssue": {"key": "OPS-77"},
    }  # this one causes OPS-77: not what caused it
    relates = {"type": {"name": "Relates", "inward": "relates to", "outward": "relates to"},
               "inwardIssue": {"key": "OPS-78"}}  # fmt: skip
    serve(api, [issue(1, at(1), links=[relates, caused_by("OPS-7")]), issue(2, at(2), links=[outward, relates]),
                issue(3, at(3)), issue(4, at(4), links=[{"type": {"name": "Triggered"},
                                                          "inwardIssue": {"key": "OPS-9"}}])])  # fmt: skip
    rows = good(source().fetch("incidents", START, END))
    assert rows["caused_by_change"].where(rows["caused_by_change"].notna(), None).to_dict() == {
        "OPS-1": "OPS-7", "OPS-2": None, "OPS-3": None, "OPS-4": None}  # fmt: skip
    other = incident_rows([issue(4, at(4), links=[{"type": {"name": "Triggered"}, "inwardIssue": {"key": "OPS-9"}}])],
                          SERVICES, JiraConfig(base_url=BASE, caused_by_link="triggered"))  # fmt: skip
    assert other.loc[0, "caused_by_change"] == "OPS-9"


# --- changes ---------------------------------------------------------------------------------------------


def change(number, updated, status, **options):
    return issue(number, updated, issuetype="Change", status=status, **options)


def test_change_type_field_by_name_once_per_run_outcome_by_status_and_canceled_not_implemented(api):
    fake = serve(api, [
        change(1, at(1), "Completed", change_type="Standard", resolved=at(0.5)),
        change(2, at(2), "Failed", change_type="Emergency", resolved=at(1.5)),
        change(3, at(3), "Backed out", resolved=at(2.5)),
        change(4, at(4), "Canceled", resolved=at(3.5)),  # done, not an outcome: never implemented
        change(5, at(5), "Implementing"),
        change(6, at(6), "Rolled back", change_type="Urgent", resolved=at(5.5)),  # not a change type: rejected
        change(7, at(7), "Done", resolutiondate=False,
               histories=[history(70, at(6.5), "Done", source="Implementing")]),  # fmt: skip
    ])  # fmt: skip
    jira = source()
    batch = jira.fetch("changes", START, END)
    jira.fetch("changes", END, END + pd.Timedelta(days=1))
    rows = good(batch)
    assert dict(rows["type"]) == {"OPS-1": "standard", "OPS-2": "emergency", "OPS-3": "normal", "OPS-4": "normal",
                                  "OPS-5": "normal", "OPS-7": "normal"}  # fmt: skip
    assert dict(rows["outcome"]) == {"OPS-1": "successful", "OPS-2": "failed", "OPS-3": "backed_out",
                                     "OPS-4": "unknown", "OPS-5": "unknown", "OPS-7": "successful"}  # fmt: skip
    assert rows.loc["OPS-1", "implemented_at"] == at(0.5) and rows.loc["OPS-3", "implemented_at"] == at(2.5)
    assert rows.loc["OPS-7", "implemented_at"] == at(6.5)
    assert pd.isna(rows.loc["OPS-4", "implemented_at"]) and pd.isna(rows.loc["OPS-5", "implemented_at"])
    assert rows.loc["OPS-1", "updated_at"] == at(1)
    (rejected,) = batch.rejected.to_dict("records")
    assert (rejected["source_id"], rejected["column"]) == ("OPS-6", "type")
    assert "Urgent (from sources.jira.change_type_field 'Change type')" in rejected["reason"]
    field_requests = [call for call in api.calls if call.request.url.endswith("/rest/api/3/field")]
    assert len(field_requests) == 1 and len(fake.searches) == 2
    assert all(q["fields"][0].endswith(",customfield_10042") for q in fake.searches)


def test_a_change_type_field_given_by_id_needs_no_field_list_and_an_unknown_name_is_a_config_error(api):
    fake = serve(api, [change(1, at(1), "Completed")])
    assert len(source(change_type_field="customfield_10042").fetch("changes", START, END).good) == 1
    assert not any(call.request.url.endswith("/field") for call in api.calls)
    with pytest.raises(SourceError) as raised:
        source(change_type_field="Kind of change").fetch("changes", START, END)
    assert str(raised.value).startswith("sources.jira.change_type_field: no Jira field is named 'Kind of change'")
    assert len(fake.searches) == 1  # nothing searched with a field that does not exist


def test_change_rows_are_canonical_without_the_source():
    rows = change_rows([change(1, at(1), "Closed", change_type="NORMAL", resolved=at(0.25))], SERVICES,
                       JiraConfig(base_url=BASE), "customfield_10042")  # fmt: skip
    row = rows.loc[0].to_dict()
    assert {k: row[k] for k in ("source", "source_id", "service", "type", "outcome")} == {
        "source": "jira",
        "source_id": "OPS-1",
        "service": "checkout",
        "type": "normal",
        "outcome": "successful",
    }
    assert row["implemented_at"] == jira_time(at(0.25))


# --- malformed issues, the payload, auth ------------------------------------------------------------------


def test_a_malformed_issue_is_rejected_and_the_rest_of_its_page_lands(api):
    keyless = issue(2, at(2))
    del keyless["key"]
    garbled = issue(3, at(3))
    garbled["fields"]["created"] = "2026-02-30T10:15:30.000+1300"  # no such day
    serve(api, [issue(1, at(1)), keyless, garbled, issue(4, at(4))])
    batch = source().fetch("incidents", START, END)
    assert sorted(batch.good["source_id"]) == ["OPS-1", "OPS-4"]
    reasons = batch.rejected[["source_id", "column", "reason"]].to_dict("records")
    assert {(r["column"], r["reason"]) for r in reasons} == {("source_id", "missing"),
                                                              ("opened_at", "not an ISO 8601 timestamp")}  # fmt: skip
    assert batch.rejected.set_index("column").loc["opened_at", "source_id"] == "OPS-3"
    assert json.loads(batch.rejected.set_index("column").loc["source_id", "payload"])["payload"]["id"] == "20002"


def test_the_payload_column_holds_the_issue_as_jira_sent_it(api):
    fake = serve(api, [issue(1, at(1), links=[caused_by("OPS-7")])])
    rows = good(source().fetch("incidents", START, END))
    payload = rows.loc["OPS-1", "payload"]
    assert payload == fake.served["OPS-1"]
    assert payload["self"] == f"{BASE}/rest/api/3/issue/20001" and "changelog" in payload
    assert set(payload["fields"]) == {"summary", "status", "priority", "components", "created", "updated",
                                      "resolutiondate", "issuelinks"}  # fmt: skip


def test_every_request_carries_basic_auth_of_email_and_token(api):
    fake = serve(api, [issue(1, at(1)), change(2, at(2), "Completed")])
    jira = source()
    jira.check()
    jira.fetch("incidents", START, END)
    jira.fetch("changes", START, END)
    assert len(fake.headers) == 4  # myself, the incident search, the field list, the change search
    assert {headers["Authorization"] for headers in fake.headers} == {BASIC}
    assert BASIC == "Basic b3BzLWJvdEBhY21lLmV4YW1wbGU6RkFLRV9KSVJBX1RPS0VOXzEyMw=="
    assert all(headers["Accept"] == "application/json" for headers in fake.headers)


def test_the_check_is_one_request_to_myself(api):
    serve(api, [])
    source().check()
    assert [call.request.url for call in api.calls] == [MYSELF]


@pytest.mark.parametrize("when", ["check", "fetch"])
def test_a_refused_credential_names_the_section_and_the_variables_never_the_secrets(api, when):
    serve(api, [issue(1, at(1))])
    environ = {"OPS_JIRA_USER": "someone.else@acme.example", "OPS_JIRA_KEY": "WRONG_SECRET_456"}
    jira = source(environ=environ, email_env="OPS_JIRA_USER", token_env="OPS_JIRA_KEY")
    with pytest.raises(SourceError) as raised:
        jira.check() if when == "check" else jira.fetch("incidents", START, END)
    message = str(raised.value)
    assert message == ("sources.jira: Jira refused the credentials in OPS_JIRA_USER and OPS_JIRA_KEY (HTTP 401): "
                       "check the account's email address, its API token and its access to the projects")  # fmt: skip
    wrong_basic = base64.b64encode(b"someone.else@acme.example:WRONG_SECRET_456").decode()
    for secret in ("WRONG_SECRET_456", "someone.else@acme.example", wrong_basic):
        assert secret not in message and secret not in repr(raised.value)
    assert "\n" not in message and len(api.calls) == 1


def test_the_factory_needs_both_variables():
    config = JiraConfig(base_url=BASE)
    context = SourceContext(Path("."), SERVICES, ("production",))
    with pytest.raises(SourceError, match=r"^environment variable JIRA_EMAIL is not set \(sources\.jira\.email_env\)$"):
        jira_source(config, context, {"JIRA_TOKEN": TOKEN})
    with pytest.raises(SourceError, match=r"^environment variable JIRA_TOKEN is not set \(sources\.jira\.token_env\)$"):
        jira_source(config, context, {"JIRA_EMAIL": EMAIL})
    assert jira_source(config, context, ENV).name == "jira"


# --- retries ---------------------------------------------------------------------------------------------


def test_429_with_retry_after_is_waited_out_then_the_page_lands(api):
    fake = FakeJira([issue(1, at(1))])
    api.add(responses.GET, SEARCH, status=429, headers={"Retry-After": "7"},
            json={"errorMessages": ["Rate limit exceeded."]})  # fmt: skip
    fake.install(api)
    sleeps: list[float] = []
    batch = source(sleeps=sleeps).fetch("incidents", START, END)
    assert list(batch.good["source_id"]) == ["OPS-1"] and sleeps == [7.0]
    assert len(api.calls) == 2 and len(fake.searches) == 1


def test_5xx_is_retried_then_given_up_naming_the_section_and_endpoint_never_the_token(api):
    api.add(responses.GET, SEARCH, status=503)
    sleeps: list[float] = []
    with pytest.raises(VendorHttpError) as raised:
        source(sleeps=sleeps).fetch("incidents", START, END)
    message = str(raised.value)
    assert message == f"sources.jira: GET {SEARCH}: gave up after 6 attempts: HTTP 503"
    assert isinstance(raised.value, SourceError) and len(sleeps) == 5 and len(api.calls) == 6
    for secret in (TOKEN, EMAIL, BASIC.split()[1], "?", "project", "1772668800000"):
        assert secret not in message and secret not in repr(raised.value)


def test_a_bulkfetch_that_fails_names_its_endpoint(api):
    fake = FakeJira([issue(1, at(5), resolutiondate=False, histories=noisy(10, at(1), 25))])
    api.add_callback(responses.GET, SEARCH, callback=fake.search)
    api.add(responses.POST, BULK, status=500)
    with pytest.raises(VendorHttpError, match=rf"^sources\.jira: POST {re.escape(BULK)}: gave up after 6 attempts"):
        source().fetch("incidents", START, END)


# --- the spec check itself, and the config -----------------------------------------------------------------


def test_the_spec_check_catches_what_it_is_for():
    assert spec_problems("GET", f"{BASE}/rest/api/3/search?jql=x&startAt=0", None) == [
        "GET /rest/api/3/search: no such operation in the spec"]  # fmt: skip
    assert spec_problems("GET", f"{SEARCH}?jql=x&startAt=0", None) == [
        "GET /rest/api/3/search/jql: undeclared query parameter startAt"]  # fmt: skip
    assert spec_problems("GET", f"{SEARCH}?jql=x&fields=a,b&maxResults=100&nextPageToken=t&expand=changelog",
                         None) == []  # fmt: skip
    too_many = json.dumps({"issueIdsOrKeys": [f"OPS-{n}" for n in range(1001)], "fieldIds": ["status"]})
    assert spec_problems("POST", BULK, too_many) != []
    assert spec_problems("POST", BULK, json.dumps({"fieldIds": ["status"]})) != []  # issueIdsOrKeys is required
    assert spec_problems("POST", BULK, json.dumps({"issueIdsOrKeys": ["OPS-1"], "maxResults": 20000})) != []
    assert spec_problems("POST", BULK, json.dumps({"issueIdsOrKeys": ["OPS-1"], "startAt": 0})) != []
    assert spec_problems("POST", BULK, json.dumps({"issueIdsOrKeys": ["OPS-1"], "fieldIds": ["status"],
                                                   "maxResults": 10000, "nextPageToken": "x"})) == []  # fmt: skip
    assert (SPEC_FILE.parent / "LICENSE").read_text(encoding="utf-8").lstrip().startswith("Apache License")


def test_the_client_alone_reads_the_field_list_once(api):
    serve(api, [])
    client = JiraClient(BASE, EMAIL, TOKEN, sleep=lambda s: None)
    assert client.field_id("change TYPE") == "customfield_10042" and client.field_id("Service") == "customfield_10077"
    assert client.field_id("components") == "components" and client.field_id("customfield_1") == "customfield_1"
    assert len(api.calls) == 1


def test_config_defaults():
    config = JiraConfig(base_url=BASE)
    assert (config.email_env, config.token_env, config.incident_jql, config.change_jql) == (
        "JIRA_EMAIL", "JIRA_TOKEN", None, None)  # fmt: skip
    assert config.page_size == 100 and config.service_field is None and config.change_type_field == "Change type"
    assert config.severity_by_priority == {"Highest": "sev1", "High": "sev2", "Medium": "sev3", "Low": "sev4",
                                           "Lowest": "sev5"}  # fmt: skip
    assert config.outcome_by_status == {
        "Completed": "successful",
        "Done": "successful",
        "Closed": "successful",
        "Failed": "failed",
        "Backed out": "backed_out",
        "Rolled back": "backed_out",
    }
    assert config.done_statuses == ["Done", "Resolved", "Closed", "Completed"] and config.caused_by_link == "Causes"
    with pytest.raises(ValidationError):
        JiraConfig(base_url=BASE, outcome_by_status={"Done": "fine"})
    with pytest.raises(ValidationError):
        JiraConfig(base_url=BASE, page_size=0)


# --- paging that does not end ---------------------------------------------------------------------------------


def endless_search(page_of):
    """A search callback that always promises another page, under a token it has never sent before."""
    served = []

    def search(request):
        served.append(request)
        return 200, {}, json.dumps({"issues": page_of(len(served)), "nextPageToken": f"fresh-{len(served)}"})

    return search, served


def test_a_token_new_every_page_over_the_same_issues_stops_at_the_second_page(api):
    search, served = endless_search(lambda _page: [issue(n, at(1)) for n in range(3)])
    api.add_callback(responses.GET, SEARCH, callback=search)
    with pytest.raises(VendorHttpError) as raised:
        source(change_jql=None).fetch("incidents", START, END)
    assert str(raised.value) == (f"sources.jira: GET {SEARCH}: page 2 repeated page 1, yet the vendor "
                                 "promises another: the listing does not advance; stopped")
    assert len(served) == 2


def test_a_token_new_every_page_over_issues_read_before_stops(api):
    search, served = endless_search(lambda page: [issue(n, at(1)) for n in range(page % 2, 6, 2)])
    api.add_callback(responses.GET, SEARCH, callback=search)
    with pytest.raises(VendorHttpError, match="page 3 held only issues read before \\(3\\), yet the vendor promises"):
        source(change_jql=None).fetch("incidents", START, END)
    assert len(served) == 3  # 0 2 4, 1 3 5, then 0 2 4 again


def test_a_search_that_brings_new_issues_for_ever_stops_at_max_pages(api):
    search, served = endless_search(lambda page: [issue(10 * page + n, at(1)) for n in range(3)])
    api.add_callback(responses.GET, SEARCH, callback=search)
    with pytest.raises(VendorHttpError) as raised:
        source(change_jql=None, limits={"max_pages": 7}).fetch("incidents", START, END)
    assert str(raised.value) == (f"sources.jira: GET {SEARCH}: the vendor still promises more after 7 pages of 21 "
                                 "issues, the most one listing may take (raise limits.max_pages for a listing truly "
                                 "that long); stopped")
    assert len(served) == 7


def test_a_bulkfetch_token_new_every_page_over_the_same_histories_stops(api):
    done = issue(1, at(5), created=at(1), resolutiondate=False, histories=[history(100, at(2), "Done")])
    answers = []

    def bulkfetch(request):
        answers.append(request)
        histories = [history(100, at(2), "Done")]
        return 200, {}, json.dumps({"issueChangeLogs": [{"issueId": done["id"], "changeHistories": histories}],
                                    "nextPageToken": f"fresh-{len(answers)}"})  # fmt: skip

    fake = FakeJira([done], embed=0)
    fake.bulkfetch = bulkfetch
    fake.install(api)
    with pytest.raises(VendorHttpError, match=r"^sources\.jira: POST .*/changelog/bulkfetch: page 2 repeated "
                                              r"page 1, yet the vendor promises another"):
        source(change_jql=None).fetch("incidents", START, END)
    assert len(answers) == 2
