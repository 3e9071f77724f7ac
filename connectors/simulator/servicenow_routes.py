"""ServiceNow's Table API under `/servicenow`, over the history's ServiceNow incidents, change requests and CIs.

Base URL `http://HOST:PORT/servicenow` (as `https://acme.service-now.com` would be). Endpoints:
- `GET /api/now/table/{table}` for `incident`, `change_request`, `cmdb_ci` and `cmdb_ci_service` (the same
  CIs): `sysparm_query` (an encoded query, below), `sysparm_fields` (comma list; fields the table lacks are
  left out), `sysparm_limit` (default and most MAX_LIMIT), `sysparm_offset`, `sysparm_display_value`
  (false, the default: stored values; true: display values; all: both), `sysparm_exclude_reference_link`
  (true: a reference is its sys_id; else `{"link", "value"}`), `sysparm_no_count`,
  `sysparm_suppress_pagination_header`. The answer is `{"result": [...]}` with `X-Total-Count` (the rows the
  query matches) and a `Link` header (rel first, prev, next, last, by offset);
- `GET /api/now/table/{table}/{sys_id}`: `{"result": {...}}`.
Every value is a string: times "YYYY-MM-DD HH:MM:SS" in UTC, choices their stored value ("1".."5", "-5".."8"),
"" when empty (an empty reference too, whatever exclude_reference_link says).

Encoded queries (`parse_query`): conditions `field=v`, `!=`, `>`, `>=`, `<`, `<=`, `fieldINa,b`, `NOT IN`,
`ISEMPTY`, `ISNOTEMPTY`, `STARTSWITH`, `LIKE`, joined by `^` (and) and `^OR` (or with the condition before),
groups joined by `^NQ` (or), and `ORDERBYfield` / `ORDERBYDESCfield` (in order; ties in order of
sys_updated_on, then sys_id). Integer fields (priority, state) compare as numbers, the others as text (so
UTC times compare in time order); a comparison never matches an empty value. A condition on a field the
table does not have, or one the simulator cannot read, matches no row (as an instance with
`glide.invalid_query.returns_no_rows` does). `^EQ` is ignored.

Auth: Basic `user:password`, any non-empty pair (with `token` given to the simulator, that password only);
401 otherwise. Errors are ServiceNow's `{"error": {"message", "detail"}, "status": "failure"}`.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from connectors.simulator.faults import Fault
from connectors.simulator.history import History
from connectors.simulator.web import Request, RequestIds, Response, json_response, proxy_error

MAX_LIMIT = 10_000
# Reference links name the instance's host, whatever port the simulator listens on (stable payloads).
SELF_BASE_URL = "https://acme.service-now.com"
_BASIC = re.compile(r"^\s*Basic\s+(\S+)\s*$", re.IGNORECASE)
_CONDITION = re.compile(r"^([a-z0-9_.]+)(ISNOTEMPTY|ISEMPTY|NOT IN|IN|STARTSWITH|ENDSWITH|NOT LIKE|LIKE|!=|>=|<=|=|>|<)"
                        r"(.*)$", re.DOTALL)  # fmt: skip
_DATE_GENERATE = re.compile(r"^javascript:gs\.dateGenerate\('(\d{4}-\d\d-\d\d)','(\d\d:\d\d:\d\d)'\)$")
INCIDENT_STATES = {"1": "New", "2": "In Progress", "3": "On Hold", "6": "Resolved", "7": "Closed", "8": "Canceled"}
CHANGE_STATES = {"-5": "New", "-4": "Assess", "-3": "Authorize", "-2": "Scheduled", "-1": "Implement", "0": "Review",
                 "3": "Closed", "4": "Canceled"}  # fmt: skip
PRIORITY_LABELS = {"1": "1 - Critical", "2": "2 - High", "3": "3 - Moderate", "4": "4 - Low", "5": "5 - Planning"}
CLOSE_CODE_LABELS = {"successful": "Successful", "successful_issues": "Successful with issues",
                     "unsuccessful": "Unsuccessful", "backed_out": "Backed out"}  # fmt: skip
TYPE_LABELS = {"standard": "Standard", "normal": "Normal", "emergency": "Emergency"}


def error_body(message: str, detail: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "detail": detail}, "status": "failure"}


def sn_time(moment: datetime | None) -> str:
    """A UTC datetime as the Table API stores it: 2026-03-05 10:15:30 (empty: "")."""
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: str


@dataclass(frozen=True)
class EncodedQuery:
    groups: tuple[tuple[tuple[Condition, ...], ...], ...]  # OR of groups; a group: AND of (OR of conditions)
    order: tuple[tuple[str, bool], ...]  # (field, descending)


def parse_query(text: str) -> EncodedQuery:
    """An encoded query as groups of conditions and its ORDERBYs (see the module docstring)."""
    text = text.replace("^^", "\x00")  # an escaped caret inside a value
    groups, order = [], []
    for group_text in text.split("^NQ"):
        terms: list[list[Condition]] = []
        for term in group_text.split("^"):
            term = term.replace("\x00", "^")
            if term in ("", "EQ"):
                continue
            if term.startswith("ORDERBYDESC"):
                order.append((term[len("ORDERBYDESC"):], True))
                continue
            if term.startswith("ORDERBY"):
                order.append((term[len("ORDERBY"):], False))
                continue
            alternative = term.startswith("OR") and bool(terms)
            condition = _condition(term[2:] if alternative else term)
            if alternative:
                terms[-1].append(condition)
            else:
                terms.append([condition])
        if terms:
            groups.append(tuple(tuple(alternatives) for alternatives in terms))
    return EncodedQuery(tuple(groups), tuple(order))


def _condition(term: str) -> Condition:
    match = _CONDITION.match(term)
    if match is None:
        return Condition(term, "invalid", "")
    return Condition(match[1], match[2], match[3])


@dataclass(frozen=True)
class FieldType:
    kind: str  # string, datetime, integer, reference, boolean
    table: str | None = None  # the referenced table
    labels: dict[str, str] | None = None  # a choice's display values


class Table:
    """One table's rows as columns, in the base order (sys_updated_on, then sys_id)."""

    def __init__(self, name: str, types: dict[str, FieldType], rows: list[dict[str, str]]):
        self.name = name
        self.types = types
        self.fields = tuple(types)
        rows = sorted(rows, key=lambda row: (row["sys_updated_on"], row["sys_id"]))
        self.rows = rows
        self.by_sys_id = {row["sys_id"]: row for row in rows}
        self.text = {field: np.array([row[field] for row in rows], dtype=str) for field in self.fields}
        self.numbers = {field: np.array([float(v) if v != "" else np.nan for v in self.text[field]], dtype=float)
                        for field, kind in types.items() if kind.kind == "integer"}  # fmt: skip

    def __len__(self) -> int:
        return len(self.rows)

    def mask(self, query: EncodedQuery) -> np.ndarray:
        if not query.groups:
            return np.ones(len(self), dtype=bool)
        out = np.zeros(len(self), dtype=bool)
        for group in query.groups:
            matched = np.ones(len(self), dtype=bool)
            for alternatives in group:
                either = np.zeros(len(self), dtype=bool)
                for condition in alternatives:
                    either |= self._condition(condition)
                matched &= either
            out |= matched
        return out

    def _condition(self, condition: Condition) -> np.ndarray:
        field, op, value = condition.field, condition.op, condition.value
        kind = self.types.get(field)
        if kind is None or op == "invalid":
            return np.zeros(len(self), dtype=bool)
        column = self.text[field]
        present = column != ""
        if op == "ISEMPTY":
            return ~present
        if op == "ISNOTEMPTY":
            return present
        if op in ("IN", "NOT IN"):
            found = np.isin(column, np.array(value.split(","), dtype=str))
            return found if op == "IN" else present & ~found
        if op in ("STARTSWITH", "ENDSWITH", "LIKE", "NOT LIKE"):
            test = {"STARTSWITH": np.char.startswith, "ENDSWITH": np.char.endswith}.get(op)
            if test is not None:
                return test(np.char.lower(column), value.lower())
            found = np.char.find(np.char.lower(column), value.lower()) >= 0
            return found if op == "LIKE" else ~found
        if kind.kind == "integer":
            try:
                number = float(value)
            except ValueError:
                return np.zeros(len(self), dtype=bool)
            return _compare(self.numbers[field], op, number) & present
        if kind.kind == "datetime":
            value = _datetime_value(value)
        return _compare(column, op, value) & present

    def order(self, selected: np.ndarray, order: tuple[tuple[str, bool], ...]) -> np.ndarray:
        keys = [np.arange(len(selected))]
        for field, descending in reversed(order):
            if field not in self.types:
                continue
            if field in self.numbers:
                values = np.nan_to_num(self.numbers[field][selected], nan=-np.inf)
            else:
                values = np.unique(self.text[field][selected], return_inverse=True)[1].astype(np.float64)
            keys.append(-values if descending else values)
        return selected[np.lexsort(keys)] if len(keys) > 1 else selected


def _datetime_value(value: str) -> str:
    generated = _DATE_GENERATE.match(value)
    if generated:
        return f"{generated[1]} {generated[2]}"
    return f"{value} 00:00:00" if re.fullmatch(r"\d{4}-\d\d-\d\d", value) else value


def _compare(column: np.ndarray, op: str, value: Any) -> np.ndarray:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "<":
        return column < value
    return column <= value


def _tables(history: History) -> dict[str, Table]:
    ci = FieldType("reference", "cmdb_ci")
    service = FieldType("reference", "cmdb_ci_service")
    string, stamp = FieldType("string"), FieldType("datetime")
    boolean = FieldType("boolean")
    incident_types = {
        "sys_id": string, "number": string, "short_description": string,
        "priority": FieldType("integer", labels=PRIORITY_LABELS), "state": FieldType("integer", labels=INCIDENT_STATES),
        "active": boolean, "opened_at": stamp, "resolved_at": stamp, "closed_at": stamp, "sys_created_on": stamp,
        "sys_updated_on": stamp, "cmdb_ci": ci, "business_service": service,
        "caused_by": FieldType("reference", "change_request"),
    }  # fmt: skip
    incidents = [{
        "sys_id": i.sys_id, "number": i.number, "short_description": i.short_description, "priority": i.priority,
        "state": i.state, "active": "true" if i.state in ("1", "2", "3") else "false",
        "opened_at": sn_time(i.opened_at), "resolved_at": sn_time(i.resolved_at), "closed_at": sn_time(i.closed_at),
        "sys_created_on": sn_time(i.opened_at), "sys_updated_on": sn_time(i.updated_at), "cmdb_ci": i.cmdb_ci,
        "business_service": i.business_service, "caused_by": i.caused_by,
    } for i in history.servicenow_incidents]  # fmt: skip
    change_types = {
        "sys_id": string, "number": string, "short_description": string,
        "type": FieldType("string", labels=TYPE_LABELS), "state": FieldType("integer", labels=CHANGE_STATES),
        "close_code": FieldType("string", labels=CLOSE_CODE_LABELS), "active": boolean, "opened_at": stamp,
        "work_start": stamp, "work_end": stamp, "closed_at": stamp, "sys_created_on": stamp, "sys_updated_on": stamp,
        "cmdb_ci": ci, "business_service": service,
    }  # fmt: skip
    changes = [{
        "sys_id": c.sys_id, "number": c.number, "short_description": c.short_description, "type": c.type,
        "state": c.state, "close_code": c.close_code, "active": "false" if c.state in ("3", "4") else "true",
        "opened_at": sn_time(c.opened_at), "work_start": sn_time(c.work_start), "work_end": sn_time(c.work_end),
        "closed_at": sn_time(c.closed_at), "sys_created_on": sn_time(c.opened_at),
        "sys_updated_on": sn_time(c.updated_at), "cmdb_ci": c.cmdb_ci, "business_service": c.business_service,
    } for c in history.servicenow_changes]  # fmt: skip
    ci_types = {"sys_id": string, "name": string, "sys_class_name": string, "operational_status": string,
                "sys_created_on": stamp, "sys_updated_on": stamp}  # fmt: skip
    created = sn_time(history.start)
    cis = [{"sys_id": c.sys_id, "name": c.name, "sys_class_name": "cmdb_ci_service", "operational_status": "1",
            "sys_created_on": created, "sys_updated_on": created} for c in history.servicenow_cis]  # fmt: skip
    return {
        "incident": Table("incident", incident_types, incidents),
        "change_request": Table("change_request", change_types, changes),
        "cmdb_ci": Table("cmdb_ci", ci_types, cis),
        "cmdb_ci_service": Table("cmdb_ci_service", ci_types, cis),
    }


def _flag(request: Request, name: str) -> bool:
    return (request.param(name) or "").strip().lower() == "true"


class ServiceNowApi:
    prefix = "servicenow"

    def __init__(self, history: History, *, token: str | None = None, clock: Callable[[], float] = time.time):
        self.history = history
        self.token = token
        self.clock = clock
        self.ids = RequestIds("")
        self.tables = _tables(history)
        self.display = {  # a reference's display value: the referenced row's name or number
            name: {row["sys_id"]: row.get("name") or row.get("number", "") for row in table.rows}
            for name, table in self.tables.items()
        }

    def _answer(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> Response:
        return json_response(status, payload, {"X-Is-Logged-In": "true" if status != 401 else "false",
                                               "X-Transaction-ID": self.ids.next(), **(extra or {})})  # fmt: skip

    def fault_response(self, request: Request, fault: Fault) -> Response:
        if fault.status == 429:
            return self._answer(429, error_body("Rate limit exceeded", "The rate limit for this user is exceeded."),
                                {"Retry-After": str(fault.retry_after), "X-RateLimit-Limit": "1000",
                                 "X-RateLimit-Remaining": "0"})  # fmt: skip
        return proxy_error(fault.status or 502)

    def _authorised(self, request: Request) -> bool:
        match = _BASIC.match(request.header("authorization") or "")
        if match is None:
            return False
        try:
            user, colon, password = base64.b64decode(match[1], validate=True).decode().partition(":")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return False
        return bool(colon and user and password) and (self.token is None or password == self.token)

    def handle(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._answer(401, error_body("User Not Authenticated", "Required to provide Auth information"),
                                {"WWW-Authenticate": 'BASIC realm="Service-now"'})  # fmt: skip
        found = re.fullmatch(r"/api/now/(?:v\d+/)?table/([A-Za-z0-9_]+)(?:/([0-9a-f]{32}|[^/]+))?", request.path)
        if found is None:
            return self._answer(400, error_body("Requested URI does not represent any resource",
                                                f"{request.path}"))  # fmt: skip
        if request.method != "GET":
            return self._answer(405, error_body("Method not Supported", "The simulator serves GET only"))
        table = self.tables.get(found[1])
        if table is None:
            return self._answer(400, error_body(f"Invalid table {found[1]}"))
        fields = [f.strip() for f in (request.param("sysparm_fields") or "").split(",") if f.strip()]
        fields = [f for f in fields if f in table.types] if fields else list(table.fields)
        mode = (request.param("sysparm_display_value") or "false").strip().lower()
        links = not _flag(request, "sysparm_exclude_reference_link")
        if found[2] is not None:
            row = table.by_sys_id.get(found[2])
            if row is None:
                return self._answer(404, error_body("No Record found",
                                                    "Record doesn't exist or ACL restricts the record retrieval"))
            return self._answer(200, {"result": self.row_json(table, row, fields, mode, links)})
        try:
            limit = int(request.param("sysparm_limit") or MAX_LIMIT)
            offset = int(request.param("sysparm_offset") or 0)
        except ValueError:
            return self._answer(400, error_body("Invalid sysparm_limit or sysparm_offset: not a number"))
        limit, offset = min(max(limit, 1), MAX_LIMIT), max(offset, 0)
        query = parse_query(request.param("sysparm_query") or "")
        positions = table.order(np.flatnonzero(table.mask(query)), query.order)
        page = positions[offset: offset + limit]
        result = [self.row_json(table, table.rows[int(p)], fields, mode, links) for p in page]
        headers = {}
        if not _flag(request, "sysparm_suppress_pagination_header"):
            headers["Link"] = self._link_header(request, offset, limit, len(positions))
        if not _flag(request, "sysparm_no_count"):
            headers["X-Total-Count"] = str(len(positions))
        return self._answer(200, {"result": result}, headers)

    def _link_header(self, request: Request, offset: int, limit: int, total: int) -> str:
        last = max((total - 1) // limit * limit, 0)
        parts = [("first", 0)]
        if offset > 0:
            parts.append(("prev", max(offset - limit, 0)))
        if offset + limit < total:
            parts.append(("next", offset + limit))
        parts.append(("last", last))
        return ",".join(f'<{request.url_with(sysparm_limit=limit, sysparm_offset=at)}>;rel="{rel}"'
                        for rel, at in parts)  # fmt: skip

    def row_json(self, table: Table, row: dict[str, str], fields: list[str], mode: str, links: bool) -> dict:
        out: dict[str, Any] = {}
        for field in fields:
            value, kind = row[field], table.types[field]
            if kind.kind == "reference":
                shown = self.display[kind.table].get(value, "") if value else ""
                link = {"link": f"{SELF_BASE_URL}/api/now/table/{kind.table}/{value}", "value": value}
                if mode == "all":
                    out[field] = {"display_value": shown, **({"link": link["link"]} if links and value else {}),
                                  "value": value}  # fmt: skip
                elif mode == "true":
                    out[field] = {"display_value": shown, "link": link["link"]} if links and value else shown
                else:
                    out[field] = link if links and value else value
                continue
            shown = kind.labels.get(value, value) if kind.labels else value
            out[field] = {"display_value": shown, "value": value} if mode == "all" else shown if mode == "true" \
                else value  # fmt: skip
        return out
