"""The ServiceNow source against a fake ServiceNow Table API (responses; no network, nothing sleeps). Every request
the connector sends is checked against the Table API description in tests/specs/servicenow."""

from __future__ import annotations

import base64
import itertools
import json
import re
from functools import cache
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pandas as pd
import pytest
import responses
import yaml
from pydantic import ValidationError

from connectors.base import SourceContext, SourceError
from connectors.http import VendorHttpError
from connectors.servicenow.client import LOOKUP_BATCH, ServiceNowClient, keyset_query, window_query
from connectors.servicenow.config import ServiceNowConfig
from connectors.servicenow.extract import change_rows, incident_rows
from connectors.servicenow.source import servicenow_source
from connectors.services import ServiceMapping

BASE = "https://sn.test"
TABLES = re.compile(rf"{re.escape(BASE)}/api/now/table/\w+")
USER, PASSWORD = "scorecard.reader", "FAKE_SN_PASSWORD_123"
ENV = {"SN_USER": USER, "SN_PASSWORD": PASSWORD}
AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
START, END = pd.Timestamp("2024-03-01T00:00:00Z"), pd.Timestamp("2024-03-02T00:00:00Z")
SPEC = Path(__file__).parent / "specs" / "servicenow" / "openapi.yaml"
UNAUTHENTICATED = {"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"},
                   "status": "failure"}  # fmt: skip

CI_CHECKOUT, CI_PAYMENTS, CI_LEGACY, BS_PAYMENTS = "a" * 32, "b" * 32, "c" * 32, "d" * 32
CIS = [
    {"sys_id": CI_CHECKOUT, "name": "Checkout Service", "sys_class_name": "cmdb_ci_service"},
    {"sys_id": CI_PAYMENTS, "name": "payments service", "sys_class_name": "cmdb_ci_service"},
    {"sys_id": CI_LEGACY, "name": "Legacy Billing", "sys_class_name": "cmdb_ci_appl"},
    {"sys_id": BS_PAYMENTS, "name": "Payments Service", "sys_class_name": "cmdb_ci_service"},
]
SERVICES = {
    "checkout": ServiceMapping(servicenow_cis=["Checkout Service"]),
    "payments": ServiceMapping(servicenow_cis=["Payments Service"]),
}


def sn(stamp) -> str:
    """A time as ServiceNow stores it: UTC `YYYY-MM-DD HH:MM:SS`."""
    return pd.Timestamp(stamp).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")


def sys_id(n: int, prefix: str = "") -> str:
    return f"{prefix}{n:0{32 - len(prefix)}x}"


def incident(n, updated=None, **fields):
    updated = pd.Timestamp(updated) if updated is not None else START + pd.Timedelta(minutes=n)
    opened = updated - pd.Timedelta(hours=2)
    record = {
        "sys_id": sys_id(n), "number": f"INC{10000 + n:07d}", "short_description": f"incident {n}",
        "priority": "2", "state": "6", "opened_at": sn(opened), "resolved_at": sn(updated), "closed_at": "",
        "sys_updated_on": sn(updated), "cmdb_ci": CI_CHECKOUT, "business_service": "", "caused_by": "",
        "impact": "2", "sys_created_by": "admin",
    }  # fmt: skip
    return record | fields


def change(n, updated=None, **fields):
    updated = pd.Timestamp(updated) if updated is not None else START + pd.Timedelta(minutes=n)
    record = {
        "sys_id": sys_id(n, "c"), "number": f"CHG{30000 + n:07d}", "short_description": f"change {n}",
        "type": "normal", "state": "3", "close_code": "successful", "work_start": sn(updated - pd.Timedelta(hours=1)),
        "work_end": sn(updated - pd.Timedelta(minutes=30)), "closed_at": sn(updated), "sys_updated_on": sn(updated),
        "cmdb_ci": CI_CHECKOUT, "business_service": "", "risk": "3",
    }  # fmt: skip
    return record | fields


# --- the Table API description (tests/specs/servicenow) -----------------------------------------------------


@cache
def spec() -> dict:
    return yaml.safe_load(SPEC.read_text(encoding="utf-8"))


def spec_problems(method: str, path: str, query: dict[str, list[str]]) -> list[str]:
    """What the description says is wrong with a request: an unknown path or method, a query parameter its
    operation does not declare, a value not of the declared type."""
    for template, item in spec()["paths"].items():
        if re.fullmatch(re.sub(r"\{[^/}]+\}", "[^/]+", template), path):
            operation = item.get(method.lower())
            break
    else:
        return [f"no path {path}"]
    if operation is None:
        return [f"no {method} {path}"]
    declared = {p["name"]: p.get("schema", {}) for p in operation.get("parameters", []) if p["in"] == "query"}
    problems = []
    for name, values in query.items():
        if name not in declared:
            problems.append(f"query parameter {name} is not declared")
            continue
        kind = declared[name].get("type")
        for value in values:
            if kind == "boolean" and value not in ("true", "false"):
                problems.append(f"{name}={value} is not a boolean")
            if kind == "number" and not re.fullmatch(r"\d+(\.\d+)?", value):
                problems.append(f"{name}={value} is not a number")
    return problems


# --- the fake ServiceNow --------------------------------------------------------------------------------------

_CONDITION = re.compile(r"([a-z_]+?)(IN|>=|<=|!=|=|>|<)(.*)")


def select(rows: list[dict], encoded: str) -> list[dict]:
    """The rows an encoded query selects, in its order: conditions joined by ^, groups by ^NQ, ORDERBYfield."""
    groups, order = [], []
    for group in encoded.split("^NQ") if encoded else []:
        conditions = []
        for term in group.split("^"):
            if term.startswith("ORDERBY"):
                order.append(term.removeprefix("ORDERBY"))
                continue
            match = _CONDITION.fullmatch(term)
            assert match, f"the fake cannot read {term!r}"
            conditions.append(match.groups())
        groups.append(conditions)

    def holds(row, field, op, value):
        have = row.get(field, "")
        if op == "IN":
            return have in value.split(",")
        return {"=": have == value, "!=": have != value, ">": have > value, ">=": have >= value, "<": have < value,
                "<=": have <= value}[op]  # fmt: skip

    chosen = [row for row in rows if not groups or any(all(holds(row, *c) for c in g) for g in groups)]
    for field in reversed(order):
        chosen.sort(key=lambda row, field=field: row.get(field, ""))
    return chosen


class FakeServiceNow:
    """GET /api/now/table/{table} as ServiceNow serves it: Basic auth (its 401 body otherwise), the encoded query
    subset above, sysparm_fields, sysparm_limit / sysparm_offset, X-Total-Count and (unless `link=False`) the Link
    header; every request checked against the Table API description."""

    def __init__(self, tables: dict[str, list[dict]], *, link: bool = True):
        self.tables = tables
        self.link = link
        self.requests: list[tuple[str, dict[str, str]]] = []  # (table, query)
        self.headers: list[dict[str, str]] = []

    def __call__(self, request):
        parts = urlsplit(request.url)
        raw_query = parse_qs(parts.query, keep_blank_values=True)
        assert spec_problems(request.method, parts.path, raw_query) == []
        assert all(len(values) == 1 for values in raw_query.values())
        table, query = parts.path.rsplit("/", 1)[1], {name: values[0] for name, values in raw_query.items()}
        self.requests.append((table, query))
        self.headers.append(dict(request.headers))
        if request.headers.get("Authorization") != AUTH:
            return 401, {}, json.dumps(UNAUTHENTICATED)
        rows = select(self.tables.get(table, []), query.get("sysparm_query", ""))
        offset, limit = int(query.get("sysparm_offset", "0")), int(query.get("sysparm_limit", "10000"))
        page = rows[offset : offset + limit]
        if query.get("sysparm_fields"):
            names = query["sysparm_fields"].split(",")
            page = [{name: row[name] for name in names if name in row} for row in page]
        headers = {"X-Total-Count": str(len(rows))}
        if self.link:
            headers["Link"] = links(parts, raw_query, offset, limit, len(rows))
        return 200, headers, json.dumps({"result": page})

    def of(self, table: str) -> list[dict[str, str]]:
        return [query for name, query in self.requests if name == table]


def links(parts, query, offset, limit, total) -> str:
    def at(where):
        return urlunsplit(parts._replace(query=urlencode({**query, "sysparm_offset": [str(where)]}, doseq=True)))

    rels = [("first", 0)]
    if offset > 0:
        rels.append(("prev", max(offset - limit, 0)))
    if offset + limit < total:
        rels.append(("next", offset + limit))
    rels.append(("last", max(total - 1, 0) // limit * limit))
    return ",".join(f'<{at(where)}>;rel="{rel}"' for rel, where in rels)


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def serve(api, incidents=(), changes=(), cis=CIS, **options) -> FakeServiceNow:
    fake = FakeServiceNow({"incident": list(incidents), "change_request": list(changes), "cmdb_ci": list(cis)},
                          **options)  # fmt: skip
    api.add_callback(responses.GET, TABLES, callback=fake)
    return fake


def source(sleeps=None, mapping=SERVICES, environ=ENV, **section):
    config = ServiceNowConfig(base_url=BASE, **section)
    context = SourceContext(Path("."), mapping, ("production",))
    sleep = sleeps.append if sleeps is not None else (lambda seconds: None)
    return servicenow_source(config, context, environ, sleep=sleep)


def by_number(batch) -> pd.DataFrame:
    return batch.good.set_index("source_id")


# --- the requests: query, fields, raw values, the window ------------------------------------------------------


def test_the_exact_listing_and_lookup_requests_with_basic_auth(api):
    fake = serve(api, [incident(1, caused_by=sys_id(7, "c"))], [change(7, "2024-02-20T00:00:00Z")])
    batch = source().fetch("incidents", START, END)
    assert list(batch.good["source_id"]) == ["INC0010001"] and batch.rejected.empty
    listing, cis, changes = fake.requests
    assert listing == ("incident", {
        "sysparm_query": "sys_updated_on>=2024-03-01 00:00:00^sys_updated_on<2024-03-02 00:00:00"
                         "^ORDERBYsys_updated_on^ORDERBYsys_id",
        "sysparm_fields": "sys_id,number,short_description,priority,state,opened_at,resolved_at,closed_at,"
                          "sys_updated_on,cmdb_ci,business_service,caused_by",
        "sysparm_limit": "1000", "sysparm_offset": "0",
        "sysparm_display_value": "false", "sysparm_exclude_reference_link": "true",
    })  # fmt: skip
    assert cis == ("cmdb_ci", {"sysparm_query": f"sys_idIN{CI_CHECKOUT}", "sysparm_fields": "sys_id,name",
                               "sysparm_limit": "1", "sysparm_display_value": "false",
                               "sysparm_exclude_reference_link": "true"})  # fmt: skip
    assert changes == ("change_request", {"sysparm_query": f"sys_idIN{sys_id(7, 'c')}",
                                          "sysparm_fields": "sys_id,number", "sysparm_limit": "1",
                                          "sysparm_display_value": "false",
                                          "sysparm_exclude_reference_link": "true"})  # fmt: skip
    assert all(headers["Authorization"] == AUTH for headers in fake.headers)
    assert all(headers["Accept"] == "application/json" for headers in fake.headers)


def test_changes_ask_only_the_fields_they_map(api):
    fake = serve(api, changes=[change(1)])
    source().fetch("changes", START, END)
    (listing,) = fake.of("change_request")
    assert listing["sysparm_fields"] == ("sys_id,number,type,state,close_code,work_end,closed_at,sys_updated_on,"
                                         "cmdb_ci,business_service")  # fmt: skip
    assert listing["sysparm_query"] == ("sys_updated_on>=2024-03-01 00:00:00^sys_updated_on<2024-03-02 00:00:00"
                                        "^ORDERBYsys_updated_on^ORDERBYsys_id")  # fmt: skip
    assert (listing["sysparm_display_value"], listing["sysparm_exclude_reference_link"]) == ("false", "true")


@pytest.mark.parametrize(
    ("start", "end", "since", "until"),
    [
        (pd.Timestamp("2024-03-01 00:00:00"), pd.Timestamp("2024-03-02 00:00:00"),  # naive: taken as UTC
         "2024-03-01 00:00:00", "2024-03-02 00:00:00"),
        (pd.Timestamp("2024-03-01T02:00:00+02:00"), pd.Timestamp("2024-03-02T02:00:00+02:00"),
         "2024-03-01 00:00:00", "2024-03-02 00:00:00"),
        (pd.Timestamp("2024-03-01T09:30:00-05:00"), pd.Timestamp("2024-03-01T23:59:59.250Z"),
         "2024-03-01 14:30:00", "2024-03-02 00:00:00"),  # a fraction of a second: the next whole one
    ],
)  # fmt: skip
def test_the_window_is_sent_as_plain_utc_datetimes(api, start, end, since, until):
    fake = serve(api, [])
    source().fetch("incidents", start, end)
    (listing,) = fake.of("incident")
    assert listing["sysparm_query"] == (f"sys_updated_on>={since}^sys_updated_on<{until}"
                                        "^ORDERBYsys_updated_on^ORDERBYsys_id")  # fmt: skip
    assert "javascript" not in listing["sysparm_query"]


def test_the_window_is_half_open_on_sys_updated_on(api):
    records = [incident(1, START - pd.Timedelta(seconds=1)), incident(2, START), incident(3, END - pd.Timedelta(
        seconds=1)), incident(4, END)]  # fmt: skip
    serve(api, records)
    assert sorted(source().fetch("incidents", START, END).good["source_id"]) == ["INC0010002", "INC0010003"]


def test_other_kinds_and_empty_windows_send_nothing(api):
    fake = serve(api, [incident(1)], [change(1)])
    for kind in ("deployments", "pull_requests"):
        batch = source().fetch(kind, START, END)
        assert batch.good.empty and batch.rejected.empty and batch.cursor is None
    assert source().fetch("incidents", END, START).good.empty
    no_whole_second = (START + pd.Timedelta(milliseconds=10), START + pd.Timedelta(milliseconds=900))
    assert source().fetch("incidents", *no_whole_second).good.empty
    assert fake.requests == []


# --- paging by keyset -----------------------------------------------------------------------------------------


def test_pages_to_the_last_page_at_the_configured_page_size_by_keyset(api):
    # two incidents a minute: a page boundary falls between two incidents updated in the same second
    records = [incident(n, START + pd.Timedelta(minutes=n // 2)) for n in range(250)]
    fake = serve(api, list(reversed(records)))
    batch = source(page_size=100).fetch("incidents", START, END)
    assert sorted(batch.good["source_id"]) == [f"INC{10000 + n:07d}" for n in range(250)] and batch.rejected.empty
    first, second, third = fake.of("incident")
    assert [(q["sysparm_limit"], q["sysparm_offset"]) for q in (first, second, third)] == [("100", "0")] * 3
    assert second["sysparm_query"] == (
        "sys_updated_on>2024-03-01 00:49:00^sys_updated_on<2024-03-02 00:00:00"
        "^NQsys_updated_on=2024-03-01 00:49:00^sys_id>00000000000000000000000000000063"
        "^ORDERBYsys_updated_on^ORDERBYsys_id"
    )
    assert third["sysparm_query"] == keyset_query(("2024-03-01 01:39:00", sys_id(199)), "2024-03-02 00:00:00")


def test_a_whole_number_of_pages_ends_by_the_link_header_without_an_empty_page(api):
    fake = serve(api, [incident(n) for n in range(200)])
    assert len(source(page_size=100).fetch("incidents", START, END).good) == 200
    assert len(fake.of("incident")) == 2


def test_without_a_link_header_a_short_page_is_the_last(api):
    fake = serve(api, [incident(n) for n in range(250)], link=False)
    assert len(source(page_size=100).fetch("incidents", START, END).good) == 250
    assert len(fake.of("incident")) == 3
    api.reset()
    fake = serve(api, [incident(n) for n in range(200)], link=False)
    assert len(source(page_size=100).fetch("incidents", START, END).good) == 200
    assert len(fake.of("incident")) == 3  # the full second page may not be the last: one more, empty


def test_a_short_page_with_a_next_link_is_not_the_last(api):
    hidden = {sys_id(n) for n in range(40, 50)}  # rows access controls hide: dropped after the limit
    fake = FakeServiceNow({"incident": [incident(n) for n in range(150)], "cmdb_ci": CIS})

    def with_hidden_rows(request):
        status, headers, body = fake(request)
        result = json.loads(body)
        if "result" in result:
            result["result"] = [row for row in result["result"] if row.get("sys_id") not in hidden]
        return status, headers, json.dumps(result)

    api.add_callback(responses.GET, TABLES, callback=with_hidden_rows)
    batch = source(page_size=100).fetch("incidents", START, END)
    assert len(batch.good) == 140 and len(fake.of("incident")) == 2


@pytest.mark.parametrize("moved_to", [END - pd.Timedelta(hours=1), END + pd.Timedelta(hours=1)])
def test_a_row_updated_during_the_scan_is_neither_skipped_nor_duplicated(api, moved_to):
    records = [incident(n, START + pd.Timedelta(minutes=n)) for n in range(300)]
    fake = FakeServiceNow({"incident": records, "cmdb_ci": CIS})
    served: list[str] = []

    def update_after_the_first_page(request):
        answer = fake(request)
        if len(fake.of("incident")) == 1 and fake.requests[-1][0] == "incident":
            # incident 10, already read on page 1, is updated: it moves to the end of the order
            records[10] = records[10] | {"sys_updated_on": sn(moved_to), "state": "7", "closed_at": sn(moved_to)}
        served.extend(row.get("number") for row in json.loads(answer[2]).get("result", []) if "opened_at" in row)
        return answer

    api.add_callback(responses.GET, TABLES, callback=update_after_the_first_page)
    batch = source(page_size=100).fetch("incidents", START, END)
    numbers = [f"INC{10000 + n:07d}" for n in range(300)]
    assert sorted(batch.good["source_id"]) == numbers and batch.good["source_id"].is_unique
    assert batch.rejected.empty and batch.same_time_conflicts == 0
    moved = by_number(batch).loc["INC0010010"]
    if moved_to < END:  # read again at its new place: the newer version lands
        assert served.count("INC0010010") == 2 and len(served) == 301
        assert (moved["updated_at"], moved["status"]) == (moved_to, "closed")
    else:  # gone from the window: the version read before stands
        assert served.count("INC0010010") == 1 and len(served) == 300
        assert (moved["updated_at"], moved["status"]) == (START + pd.Timedelta(minutes=10), "resolved")
    assert [q["sysparm_offset"] for q in fake.of("incident")] == ["0"] * len(fake.of("incident"))


def test_a_listing_that_does_not_move_on_is_an_error_not_a_loop(api):
    page = [incident(n) for n in range(3)]
    next_link = f'<{BASE}/api/now/table/incident?sysparm_offset=3>;rel="next"'
    api.add(responses.GET, TABLES, json={"result": page}, headers={"Link": next_link})
    with pytest.raises(
        VendorHttpError,
        match=r"^sources\.servicenow: GET https://sn\.test/api/now/table/incident: "
        r"page 2 repeated page 1, yet the vendor promises another: the listing does not advance; stopped$",
    ):
        source(page_size=3).fetch("incidents", START, END)
    assert len(api.calls) == 2


def test_a_listing_whose_pages_go_backwards_is_an_error_not_a_loop(api):
    pages = iter([[incident(n) for n in (5, 6, 7)], [incident(n) for n in (1, 2, 3)]])
    next_link = f'<{BASE}/api/now/table/incident?sysparm_offset=3>;rel="next"'
    api.add_callback(responses.GET, TABLES, callback=lambda _request: (
        200, {"Link": next_link}, json.dumps({"result": next(pages)})))  # fmt: skip
    with pytest.raises(VendorHttpError, match=r": cannot ask for the next page: the page did not move past the one "
                                              r"before$"):  # fmt: skip
        source(page_size=3).fetch("incidents", START, END)
    assert len(api.calls) == 2



def test_a_listing_past_its_x_total_count_stops_at_the_ceiling_it_implies(api):
    pages = itertools.count()

    def more_than_its_total(_request):  # says 150 rows, then serves new ones (later keys) for ever
        page = next(pages)
        rows = [incident(100 * page + n, START + pd.Timedelta(seconds=100 * page + n)) for n in range(100)]
        next_link = f'<{BASE}/api/now/table/incident?sysparm_offset=0>;rel="next"'
        return 200, {"Link": next_link, "X-Total-Count": "150"}, json.dumps({"result": rows})

    api.add_callback(responses.GET, TABLES, callback=more_than_its_total)
    with pytest.raises(VendorHttpError, match=r"^sources\.servicenow: GET https://sn\.test/api/now/table/incident: the "
                                              r"vendor still promises more after 9 pages of 900 records, more than "
                                              r"the vendor's own total of records needs; stopped$"):  # fmt: skip
        source(page_size=100).fetch("incidents", START, END)
    assert len(api.calls) == 9  # what 150 needs (2 pages), twice over, plus 5

# --- references: CIs and changes, batched and cached ----------------------------------------------------------


def test_caused_by_is_the_changes_number_by_one_batched_lookup(api):
    changes = [change(n, "2024-02-20T00:00:00Z") for n in (7, 8, 9)]
    incidents = [incident(1, caused_by=sys_id(7, "c")), incident(2, caused_by=sys_id(8, "c")),
                 incident(3, caused_by=sys_id(7, "c")), incident(4, caused_by=sys_id(9, "c")),
                 incident(5, caused_by="f" * 32), incident(6)]  # fmt: skip
    fake = serve(api, incidents, changes)
    good = by_number(source().fetch("incidents", START, END))
    assert dict(good["caused_by_change"]) == {"INC0010001": "CHG0030007", "INC0010002": "CHG0030008",
                                              "INC0010003": "CHG0030007", "INC0010004": "CHG0030009",
                                              "INC0010005": None, "INC0010006": None}  # fmt: skip
    (lookup,) = fake.of("change_request")
    expected = ",".join([sys_id(7, "c"), sys_id(8, "c"), sys_id(9, "c"), "f" * 32])
    assert lookup["sysparm_query"] == f"sys_idIN{expected}" and lookup["sysparm_fields"] == "sys_id,number"


def test_changes_listed_by_the_source_need_no_lookup_for_the_incidents_that_name_them(api):
    fake = serve(api, [incident(1, caused_by=sys_id(7, "c"))], [change(7)])
    built = source()
    built.fetch("changes", START, END)
    assert by_number(built.fetch("incidents", START, END)).loc["INC0010001", "caused_by_change"] == "CHG0030007"
    assert len(fake.of("change_request")) == 1  # the listing; no lookup


def test_250_distinct_cis_take_3_lookups_and_a_second_fetch_none(api):
    cis = [{"sys_id": sys_id(n, "e"), "name": "Checkout Service" if n % 2 else f"CI {n}"} for n in range(250)]
    incidents = [incident(n, cmdb_ci=sys_id(n, "e")) for n in range(250)]
    incidents.append(incident(250, cmdb_ci="9" * 32))  # resolves to nothing
    fake = serve(api, incidents, cis=cis)
    built = source()
    good = by_number(built.fetch("incidents", START, END))
    lookups = fake.of("cmdb_ci")
    assert [len(q["sysparm_query"].removeprefix("sys_idIN").split(",")) for q in lookups] == [100, 100, 51]
    assert LOOKUP_BATCH == 100 and all(q["sysparm_fields"] == "sys_id,name" for q in lookups)
    assert good.loc["INC0010001", "service"] == "checkout" and good.loc["INC0010002", "service"] == "unmapped"
    assert good.loc["INC0010250", "service"] == "unmapped"
    built.fetch("incidents", START, END)
    assert len(fake.of("cmdb_ci")) == 3  # known ids, found or not, are not asked again
    assert len(fake.of("incident")) == 2


def test_service_from_the_ci_name_else_the_business_service_else_unmapped(api):
    serve(api, [
        incident(1, cmdb_ci=CI_CHECKOUT, business_service=BS_PAYMENTS),  # the CI maps: it wins
        incident(2, cmdb_ci=CI_PAYMENTS),  # names compared case-insensitively
        incident(3, cmdb_ci=CI_LEGACY, business_service=BS_PAYMENTS),  # the CI maps to nothing: the service
        incident(4, cmdb_ci="", business_service=BS_PAYMENTS),
        incident(5, cmdb_ci=CI_LEGACY),  # no service claims Legacy Billing
        incident(6, cmdb_ci="", business_service=""),  # no CI at all: still lands
    ])  # fmt: skip
    good = by_number(source().fetch("incidents", START, END))
    assert dict(good["service"]) == {"INC0010001": "checkout", "INC0010002": "payments", "INC0010003": "payments",
                                     "INC0010004": "payments", "INC0010005": "unmapped",
                                     "INC0010006": "unmapped"}  # fmt: skip
    # the CI each was mapped by (unmapped: its CI's name), what an unmapped record tells the check
    assert dict(good["entity"]) == {"INC0010001": "Checkout Service", "INC0010002": "payments service",
                                    "INC0010003": "Payments Service", "INC0010004": "Payments Service",
                                    "INC0010005": "Legacy Billing", "INC0010006": None}  # fmt: skip


def test_a_reference_object_is_read_as_its_value():
    record = incident(1, cmdb_ci={"link": f"{BASE}/api/now/table/cmdb_ci/{CI_CHECKOUT}", "value": CI_CHECKOUT})
    rows = incident_rows([record], SERVICES, {CI_CHECKOUT: "Checkout Service"}, {})
    assert rows.loc[0, "service"] == "checkout"


# --- vendor words and times to canonical records --------------------------------------------------------------


def test_times_are_read_as_utc_and_the_payload_is_the_record(api):
    record = incident(1, "2024-03-01T10:15:30Z", opened_at="2024-03-01 08:00:05", resolved_at="2024-03-01 09:59:59")
    serve(api, [record])
    batch = source().fetch("incidents", START, END)
    row = by_number(batch).loc["INC0010001"]
    assert row["opened_at"] == pd.Timestamp("2024-03-01T08:00:05Z")
    assert row["resolved_at"] == pd.Timestamp("2024-03-01T09:59:59Z")
    assert row["updated_at"] == pd.Timestamp("2024-03-01T10:15:30Z")
    assert str(batch.good["opened_at"].dtype) == "datetime64[ns, UTC]"
    assert (row["source"], row["title"], row["severity"]) == ("servicenow", "incident 1", "sev2")
    fields = "sys_id,number,short_description,priority,state,opened_at,resolved_at,closed_at,sys_updated_on,cmdb_ci,"
    asked = (fields + "business_service,caused_by").split(",")
    assert row["payload"] == {name: record[name] for name in asked}  # what ServiceNow sent for the fields asked


@pytest.mark.parametrize(("priority", "severity"), [("1", "sev1"), ("2", "sev2"), ("3", "sev3"), ("4", "sev4"),
                                                    ("5", "sev5"), ("", None)])  # fmt: skip
def test_priority_to_severity(priority, severity):
    rows = incident_rows([incident(1, priority=priority)], SERVICES, {}, {})
    assert rows.loc[0, "severity"] == severity


def test_an_unknown_priority_is_rejected_naming_the_config_path_and_the_rest_lands(api):
    serve(api, [incident(1, priority="9"), incident(2, priority="1")])
    batch = source().fetch("incidents", START, END)
    assert list(batch.good["source_id"]) == ["INC0010002"]
    (rejected,) = batch.rejected.to_dict("records")
    assert (rejected["source_id"], rejected["column"]) == ("INC0010001", "severity")
    assert "9 (not in sources.servicenow.severity_by_priority)" in rejected["reason"]


def test_a_configured_severity_map_replaces_the_default(api):
    serve(api, [incident(1, priority="1"), incident(2, priority="2"), incident(3, priority="3")])
    batch = source(severity_by_priority={1: "sev1", "2": "sev1"}).fetch("incidents", START, END)
    assert dict(zip(batch.good["source_id"], batch.good["severity"], strict=True)) == {
        "INC0010001": "sev1", "INC0010002": "sev1"}  # fmt: skip
    assert list(batch.rejected["source_id"]) == ["INC0010003"]


@pytest.mark.parametrize(
    ("state", "status"),
    [("1", "new"), ("2", "in_progress"), ("3", "on_hold"), ("6", "resolved"), ("7", "closed"), ("8", "canceled"),
     ("42", "42")],
)  # fmt: skip
def test_state_to_status_word(state, status):
    assert incident_rows([incident(1, state=state)], SERVICES, {}, {}).loc[0, "status"] == status


@pytest.mark.parametrize(
    ("state", "resolved_at", "closed_at", "expected"),
    [
        ("6", "2024-03-01 05:00:00", "", "2024-03-01T05:00:00Z"),
        ("7", "2024-03-01 05:00:00", "2024-03-01 09:00:00", "2024-03-01T05:00:00Z"),
        ("7", "", "2024-03-01 09:00:00", "2024-03-01T09:00:00Z"),  # closed without resolved_at: closed_at
        ("2", "2024-03-01 05:00:00", "", None),  # reopened: in progress again, not resolved
        ("1", "", "", None),
        ("8", "", "2024-03-01 09:00:00", "2024-03-01T09:00:00Z"),  # canceled: it ended then, not open for ever
        ("8", "", "", "2024-03-01T10:00:00Z"),  # canceled, neither time set: when it was last updated
    ],
)  # fmt: skip
def test_resolved_at_from_resolved_at_else_closed_at_once_resolved(state, resolved_at, closed_at, expected):
    record = incident(1, state=state, resolved_at=resolved_at, closed_at=closed_at) | {
        "sys_updated_on": "2024-03-01 10:00:00"}  # fmt: skip
    assert incident_rows([record], SERVICES, {}, {}).loc[0, "resolved_at"] == expected


def test_malformed_records_are_rejected_and_the_rest_of_the_page_lands(api):
    serve(api, [incident(1), incident(2, number=""), incident(3, opened_at="yesterday"),
                incident(4, opened_at="2024-02-30 10:00:00"), incident(5)])  # fmt: skip
    batch = source().fetch("incidents", START, END)
    assert sorted(batch.good["source_id"]) == ["INC0010001", "INC0010005"]
    rejected = batch.rejected.set_index("row")
    assert len(rejected) == 3
    assert pd.isna(rejected.loc[2, "source_id"])
    assert rejected.loc[2, ["column", "reason"]].tolist() == ["source_id", "missing"]
    assert rejected.loc[3, ["source_id", "column"]].tolist() == ["INC0010003", "opened_at"]
    assert rejected.loc[4, ["source_id", "column", "reason"]].tolist() == ["INC0010004", "opened_at",
                                                                          "not an ISO 8601 timestamp"]  # fmt: skip
    assert json.loads(rejected.loc[3, "payload"])["payload"]["opened_at"] == "yesterday"


def change_row(**fields) -> dict:
    records = [change(1, "2024-03-01T12:00:00Z", **fields)]
    return change_rows(records, SERVICES, {CI_CHECKOUT: "Checkout Service"}).iloc[0].to_dict()


@pytest.mark.parametrize(
    ("close_code", "outcome"),
    [("successful", "successful"), ("successful_issues", "successful"), ("unsuccessful", "failed"),
     ("Successful", "successful"), ("backed_out", "backed_out"), ("", "unknown")],
)  # fmt: skip
def test_a_closed_changes_outcome_from_its_close_code(close_code, outcome):
    row = change_row(close_code=close_code)
    assert (row["outcome"], row["implemented_at"], row["type"]) == (outcome, "2024-03-01T11:30:00Z", "normal")
    assert (row["service"], row["source_id"], row["updated_at"]) == ("checkout", "CHG0030001", "2024-03-01T12:00:00Z")


@pytest.mark.parametrize(
    ("fields", "implemented_at", "outcome"),
    [
        ({"work_end": "2024-03-01 10:00:00", "closed_at": "2024-03-01 12:00:00"}, "2024-03-01T10:00:00Z",
         "successful"),  # work_end first
        ({"work_end": "", "closed_at": "2024-03-01 12:00:00"}, "2024-03-01T12:00:00Z", "successful"),  # else closed_at
        ({"state": "4", "close_code": "successful"}, None, "unknown"),  # canceled
        ({"state": "-1", "work_end": "", "closed_at": "", "close_code": ""}, None, "unknown"),  # implementing
        ({"state": "-2", "work_end": "", "closed_at": "2024-03-01 12:00:00", "close_code": ""}, None, "unknown"),
    ],
)  # fmt: skip
def test_implemented_at_from_work_end_else_closed_at_and_none_for_a_canceled_or_unfinished_change(
    fields, implemented_at, outcome
):
    row = change_row(**fields)
    assert (row["implemented_at"], row["outcome"]) == (implemented_at, outcome)


@pytest.mark.parametrize(("kind", "expected"), [("standard", "standard"), ("Emergency", "emergency"), ("", None)])
def test_change_type(kind, expected):
    assert change_row(type=kind)["type"] == expected


def test_configured_close_codes_and_canceled_states(api):
    serve(api, changes=[
        change(1, close_code="backed_out"),
        change(2, close_code="successful"),
        change(3, close_code="rolled_forward"),  # not in the configured map: rejected
        change(4, state="-99", close_code="successful"),  # a configured canceled state
        change(5, state="4", close_code="successful"),  # "4" is no longer canceled: closed_at is not used, work_end is
        change(6, type="latent"),  # not a canonical type
    ])  # fmt: skip
    codes = {"successful": "successful", "unsuccessful": "failed", "backed_out": "backed_out"}
    batch = source(outcome_by_close_code=codes, canceled_states=[-99]).fetch("changes", START, END)
    good = by_number(batch)
    assert dict(good["outcome"]) == {"CHG0030001": "backed_out", "CHG0030002": "successful",
                                     "CHG0030004": "unknown", "CHG0030005": "successful"}  # fmt: skip
    assert pd.isna(good.loc["CHG0030004", "implemented_at"])
    assert good.loc["CHG0030005", "implemented_at"] == START + pd.Timedelta(minutes=5) - pd.Timedelta(minutes=30)
    reasons = dict(zip(batch.rejected["source_id"], batch.rejected["reason"], strict=True))
    assert "rolled_forward (not in sources.servicenow.outcome_by_close_code)" in reasons["CHG0030003"]
    assert "'latent' is not one of standard/normal/emergency" in reasons["CHG0030006"]
    assert good.loc["CHG0030001", "payload"]["close_code"] == "backed_out"


def test_changes_land_with_their_service_and_times(api):
    serve(api, changes=[change(1, cmdb_ci="", business_service=BS_PAYMENTS), change(2, cmdb_ci=CI_LEGACY)])
    good = by_number(source().fetch("changes", START, END))
    assert dict(good["service"]) == {"CHG0030001": "payments", "CHG0030002": "unmapped"}
    assert good.loc["CHG0030001", "implemented_at"] == pd.Timestamp("2024-02-29T23:31:00Z")
    assert str(good["implemented_at"].dtype) == "datetime64[ns, UTC]"


# --- failures: retries, give-up, the pre-flight ---------------------------------------------------------------


def test_429_with_retry_after_then_success(api):
    api.add(responses.GET, TABLES, status=429, headers={"Retry-After": "7"})
    fake = serve(api, [incident(1)])
    sleeps: list[float] = []
    batch = source(sleeps=sleeps).fetch("incidents", START, END)
    assert sleeps == [7.0] and list(batch.good["source_id"]) == ["INC0010001"]
    assert len(fake.of("incident")) == 1


def test_giving_up_on_5xx_names_the_section_and_endpoint_and_no_credential(api):
    api.add(responses.GET, TABLES, status=503)
    sleeps: list[float] = []
    with pytest.raises(VendorHttpError) as raised:
        source(sleeps=sleeps).fetch("incidents", START, END)
    message = str(raised.value)
    assert message == f"sources.servicenow: GET {BASE}/api/now/table/incident: gave up after 6 attempts: HTTP 503"
    assert isinstance(raised.value, SourceError) and len(sleeps) == 5 and len(api.calls) == 6
    for secret in (PASSWORD, AUTH, AUTH.removeprefix("Basic ")):
        assert secret not in message and secret not in repr(raised.value)


@pytest.mark.parametrize("step", ["check", "fetch"])
def test_refused_credentials_name_the_section_and_variables_never_the_password(api, step):
    api.add(responses.GET, TABLES, status=401, json=UNAUTHENTICATED)
    built = source(environ={"SNOW_USER": USER, "SNOW_PASS": PASSWORD}, user_env="SNOW_USER", password_env="SNOW_PASS")
    with pytest.raises(SourceError) as raised:
        built.check() if step == "check" else built.fetch("incidents", START, END)
    message = str(raised.value)
    assert message == ("sources.servicenow: ServiceNow refused the user in SNOW_USER and the password in SNOW_PASS "
                       "(HTTP 401): check the account, its password and its read access to the incident and "
                       "change_request tables")  # fmt: skip
    assert "\n" not in message and len(api.calls) == 1
    for secret in (PASSWORD, AUTH.removeprefix("Basic ")):
        assert secret not in message and secret not in repr(raised.value)


def test_the_check_sends_one_cheap_authenticated_request(api):
    fake = serve(api, [incident(n) for n in range(5)])
    source().check()
    assert fake.requests == [("incident", {"sysparm_fields": "sys_id", "sysparm_limit": "1",
                                           "sysparm_display_value": "false",
                                           "sysparm_exclude_reference_link": "true"})]  # fmt: skip
    assert fake.headers[0]["Authorization"] == AUTH


def test_a_check_that_fails_otherwise_names_the_section_and_the_status(api):
    api.add(responses.GET, TABLES, status=404, json={"error": {"message": "Invalid table incident"}})
    expected = r"^sources\.servicenow: GET https://sn\.test/api/now/table/incident: HTTP 404$"
    with pytest.raises(SourceError, match=expected):
        source().check()


def test_the_factory_needs_both_variables():
    config = ServiceNowConfig(base_url=BASE)
    context = SourceContext(Path("."), SERVICES, ("production",))
    with pytest.raises(SourceError, match=r"SN_USER is not set \(sources\.servicenow\.user_env\)"):
        servicenow_source(config, context, {"SN_PASSWORD": PASSWORD})
    with pytest.raises(SourceError, match=r"SN_PASSWORD is not set \(sources\.servicenow\.password_env\)"):
        servicenow_source(config, context, {"SN_USER": USER})
    built = servicenow_source(config, context, ENV)
    assert built.name == "servicenow" and PASSWORD not in repr(built)


# --- the description, the config ------------------------------------------------------------------------------


def test_the_spec_check_refuses_what_the_description_does_not_declare():
    table = "/api/now/table/incident"
    assert spec_problems("GET", table, {"sysparm_limit": ["100"], "sysparm_display_value": ["false"]}) == []
    assert spec_problems("GET", table, {"sysparm_page": ["2"]}) == ["query parameter sysparm_page is not declared"]
    assert spec_problems("GET", table, {"sysparm_exclude_reference_link": ["yes"]}) == [
        "sysparm_exclude_reference_link=yes is not a boolean"]  # fmt: skip
    assert spec_problems("GET", "/api/now/tables/incident", {}) == ["no path /api/now/tables/incident"]
    assert spec_problems("PATCH", table, {}) == [f"no PATCH {table}"]


def test_the_client_queries_are_the_ones_the_fake_reads():
    assert window_query("2024-03-01 00:00:00", "2024-03-02 00:00:00") == (
        "sys_updated_on>=2024-03-01 00:00:00^sys_updated_on<2024-03-02 00:00:00^ORDERBYsys_updated_on^ORDERBYsys_id"
    )
    rows = [{"sys_updated_on": "2024-03-01 00:00:01", "sys_id": i} for i in "cab"]
    rows += [{"sys_updated_on": "2024-03-01 00:00:00", "sys_id": "z"}, {"sys_updated_on": "2024-03-01 00:00:02",
                                                                        "sys_id": "a"}]  # fmt: skip
    after = select(rows, keyset_query(("2024-03-01 00:00:01", "a"), "2024-03-01 00:00:02"))
    assert [(r["sys_updated_on"][-1], r["sys_id"]) for r in after] == [("1", "b"), ("1", "c")]


def test_the_client_needs_no_source_to_list_a_table(api):
    fake = serve(api, changes=[change(n) for n in range(3)])
    client = ServiceNowClient(BASE, USER, PASSWORD, page_size=2, sleep=lambda s: None)
    got = client.updated("change_request", ["number"], START, END)
    assert [record["number"] for record in got] == ["CHG0030000", "CHG0030001", "CHG0030002"]
    assert fake.of("change_request")[0]["sysparm_fields"] == "number,sys_updated_on,sys_id"


def test_config_defaults_and_limits():
    config = ServiceNowConfig(base_url=BASE)
    assert (config.user_env, config.password_env, config.page_size) == ("SN_USER", "SN_PASSWORD", 1000)
    assert config.severity_by_priority == {"1": "sev1", "2": "sev2", "3": "sev3", "4": "sev4", "5": "sev5"}
    assert config.outcome_by_close_code == {"successful": "successful", "successful_issues": "successful",
                                            "unsuccessful": "failed", "backed_out": "backed_out"}  # fmt: skip
    assert (config.canceled_states, config.incident_table, config.change_table) == (["4"], "incident",
                                                                                     "change_request")  # fmt: skip
    assert ServiceNowConfig(base_url=BASE, canceled_states=[4, "8"]).canceled_states == ["4", "8"]
    for wrong in (
        {"page_size": 0},
        {"page_size": 10_001},
        {"severity_by_priority": {"1": "critical"}},
        {"outcome_by_close_code": {"x": "great"}},
        {"password_env": "hunter2"},
        {"table": "incident"},
    ):
        with pytest.raises(ValidationError):
            ServiceNowConfig(base_url=BASE, **wrong)
