"""Jira Cloud's platform REST API v3 under `/jira`, over the history's Jira issues (project OPS).

Base URL `http://HOST:PORT/jira` (as `https://acme.atlassian.net` would be). Endpoints:
- `GET /rest/api/3/myself`: the API user, whose time zone is USER_ZONE (Pacific/Auckland);
- `GET /rest/api/3/field`: the fields, among them `customfield_10042` "Change type";
- `GET|POST /rest/api/3/search/jql`: issues by JQL (`jql`, `fields`, `maxResults` default 50, `nextPageToken`,
  `expand=changelog`), paged by token only: the response has `issues`, `isLast` and, unless it is the last
  page, `nextPageToken`. A page holds at most MAX_RESULTS_FEW_FIELDS issues (MAX_RESULTS_MANY_FIELDS when
  more than MANY_FIELDS fields are asked, MAX_RESULTS_ID_ONLY with id/key only), whatever maxResults asks.
  The embedded changelog holds the JIRA_EMBEDDED_HISTORIES most recent histories, newest first (`total` says
  how many there are). The old `/rest/api/3/search` answers 410 Gone;
- `GET /rest/api/3/issue/{idOrKey}` (`fields`, `expand`);
- `POST /rest/api/3/changelog/bulkfetch`: the histories of up to 1,000 issues (`issueIdsOrKeys`), oldest first,
  only the items of `fieldIds` when given, at most `maxResults` (default 1,000, at most 10,000) histories a page,
  paged by the body's `nextPageToken`.
Times are written in the user's zone with Jira's offset: `2026-03-05T10:15:30.000+1300`.

JQL (the subset `parse_jql` reads): clauses `field = v`, `!=`, `>`, `>=`, `<`, `<=`, `in (a, b)`, `not in (...)`,
`is [not] empty`, joined by AND / OR / NOT with parentheses, then `ORDER BY f [ASC|DESC], ...`. Fields:
project, issuetype (type), status, key (issuekey), created, updated, resolved (resolutiondate). A date is epoch
milliseconds or "yyyy/MM/dd HH:mm", "yyyy-MM-dd HH:mm", "yyyy/MM/dd", "yyyy-MM-dd", quoted or bare, read in the
user's time zone. Without ORDER BY: updated, then key, ascending. A query without a restriction is refused (400).

Auth: Basic `email:api_token`; any non-empty pair, or, with `token` given to the simulator, that api token only.
Errors are Jira's `{"errorMessages": [...], "errors": {}}`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from connectors.simulator.faults import Fault
from connectors.simulator.history import (
    JIRA_CHANGE_TYPE_FIELD,
    JIRA_EMBEDDED_HISTORIES,
    JIRA_PROJECT,
    JIRA_STATUSES,
    History,
    JiraHistory,
    JiraIssue,
)
from connectors.simulator.web import Request, RequestIds, Response, json_response, proxy_error

USER_ZONE = "Pacific/Auckland"
# `self` links name Jira's host, whatever port the simulator listens on: a record's payload is the same each run.
SELF_BASE_URL = "https://acme.atlassian.net"
DEFAULT_MAX_RESULTS = 50
MAX_RESULTS_ID_ONLY = 5000
MAX_RESULTS_FEW_FIELDS = 100
MAX_RESULTS_MANY_FIELDS = 50
MANY_FIELDS = 8
BULK_MAX_ISSUES = 1000
BULK_MAX_RESULTS = 10_000
BULK_DEFAULT_RESULTS = 1000
PROJECT = {"id": "10000", "key": JIRA_PROJECT, "name": "Operations", "projectTypeKey": "software"}
ACCOUNT_ID = "712020:5f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b"
BOT = {"accountId": "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077", "displayName": "Automation for Jira",
       "accountType": "app", "active": True, "timeZone": USER_ZONE}  # fmt: skip
ISSUE_TYPES = {"Incident": "10004", "Change": "10005"}
PRIORITIES = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
CHANGE_TYPE_OPTIONS = {"Standard": "10100", "Normal": "10101", "Emergency": "10102"}
CATEGORIES = {"new": ("2", "To Do", "blue-gray"), "indeterminate": ("4", "In Progress", "yellow"),
              "done": ("3", "Done", "green")}  # fmt: skip
LINK_TYPES = {"Causes": ("10002", "is caused by", "causes"), "Relates": ("10003", "relates to", "relates to")}
# (id, name, custom, schema) of GET /field
FIELDS = (
    ("summary", "Summary", False, {"type": "string", "system": "summary"}),
    ("issuetype", "Issue Type", False, {"type": "issuetype", "system": "issuetype"}),
    ("status", "Status", False, {"type": "status", "system": "status"}),
    ("priority", "Priority", False, {"type": "priority", "system": "priority"}),
    ("components", "Components", False, {"type": "array", "items": "component", "system": "components"}),
    ("created", "Created", False, {"type": "datetime", "system": "created"}),
    ("updated", "Updated", False, {"type": "datetime", "system": "updated"}),
    ("resolutiondate", "Resolved", False, {"type": "datetime", "system": "resolutiondate"}),
    ("resolution", "Resolution", False, {"type": "resolution", "system": "resolution"}),
    ("issuelinks", "Linked Issues", False, {"type": "array", "items": "issuelinks", "system": "issuelinks"}),
    ("labels", "Labels", False, {"type": "array", "items": "string", "system": "labels"}),
    ("project", "Project", False, {"type": "project", "system": "project"}),
    (JIRA_CHANGE_TYPE_FIELD, "Change type", True, {
        "type": "option", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:select", "customId": 10042}),
    ("customfield_10043", "Change risk", True, {
        "type": "option", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:select", "customId": 10043}),
)  # fmt: skip
FIELD_IDS = tuple(field[0] for field in FIELDS)
_BASIC = re.compile(r"^\s*Basic\s+(\S+)\s*$", re.IGNORECASE)


class JqlError(ValueError):
    """A JQL query Jira refuses (400), with Jira's message."""


def error_body(*messages: str) -> dict[str, Any]:
    return {"errorMessages": list(messages), "errors": {}}


def jira_time(moment: datetime | None, zone: ZoneInfo) -> str | None:
    """A UTC datetime as Jira writes it, in the user's zone: 2026-03-05T10:15:30.000+1300."""
    if moment is None:
        return None
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + local.strftime("%z")


def _millis(moment: datetime | None) -> int:
    return -1 if moment is None else int(round(moment.timestamp() * 1000))


# ---------------------------------------------------------------------------------------------
# JQL: tokens, a parsed tree, evaluation over column arrays

_TOKEN = re.compile(r"""\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>!=|>=|<=|!~|=|>|<|~)|"""
                    r"""(?P<punct>[(),])|(?P<word>[^\s=!<>~(),"']+))""")  # fmt: skip
_FIELD_ALIASES = {"project": "project", "issuetype": "issuetype", "type": "issuetype", "status": "status",
                  "key": "key", "issuekey": "key", "id": "key", "created": "created", "createddate": "created",
                  "updated": "updated", "updateddate": "updated", "resolved": "resolved",
                  "resolutiondate": "resolved"}  # fmt: skip
DATE_FIELDS = ("created", "updated", "resolved")
_TIME_OF_DAY = re.compile(r"^\d{1,2}:\d{2}$")
_DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")


@dataclass(frozen=True)
class Token:
    kind: str  # string, op, punct, word
    text: str

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.lower() in words


@dataclass(frozen=True)
class Clause:
    field: str  # a canonical field name (project, issuetype, status, key, created, updated, resolved)
    op: str  # =, !=, >, >=, <, <=, in, not in, is, is not
    values: tuple[str, ...]  # the values' text (for is / is not: "empty")
    quoted: tuple[bool, ...]


@dataclass(frozen=True)
class Node:
    op: str  # and, or, not
    children: tuple[Any, ...]  # Node | Clause


@dataclass(frozen=True)
class Jql:
    where: Node | Clause | None
    order: tuple[tuple[str, bool], ...]  # (field, descending)


def _tokens(text: str) -> list[Token]:
    tokens, at = [], 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise JqlError(f"Error in the JQL Query: The character '{text[at:].strip()[:1]}' is a reserved JQL "
                           f"character. You must enclose it in a string or use the escape '\\u0022' instead. "
                           f"(line 1, character {at + 1})")  # fmt: skip
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append(Token(kind, value))
        at = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise JqlError("Error in the JQL Query: Expecting more of the query at the end.")
        self.at += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text.lower() != text:
            raise JqlError(f"Error in the JQL Query: Expecting '{text}' but got '{token.text}'.")

    def query(self) -> Jql:
        where = None
        token = self.peek()
        if token is not None and not token.is_word("order"):
            where = self.or_expression()
        order: list[tuple[str, bool]] = []
        token = self.peek()
        if token is not None:
            if not token.is_word("order"):
                raise JqlError(f"Error in the JQL Query: Expecting either 'OR' or 'AND' but got '{token.text}'.")
            self.take()
            self.expect("by")
            while True:
                name = self.take()
                field = _field(name.text)
                descending = False
                following = self.peek()
                if following is not None and following.is_word("asc", "desc"):
                    descending = self.take().text.lower() == "desc"
                order.append((field, descending))
                following = self.peek()
                if following is None:
                    break
                if following.text != ",":
                    raise JqlError(f"Error in the JQL Query: Expecting ',' but got '{following.text}'.")
                self.take()
        if len(order) > 7:
            raise JqlError("The ORDER BY clause may name at most 7 fields.")
        return Jql(where, tuple(order))

    def or_expression(self) -> Node | Clause:
        parts = [self.and_expression()]
        while (token := self.peek()) is not None and token.is_word("or"):
            self.take()
            parts.append(self.and_expression())
        return parts[0] if len(parts) == 1 else Node("or", tuple(parts))

    def and_expression(self) -> Node | Clause:
        parts = [self.not_expression()]
        while (token := self.peek()) is not None and token.is_word("and"):
            self.take()
            parts.append(self.not_expression())
        return parts[0] if len(parts) == 1 else Node("and", tuple(parts))

    def not_expression(self) -> Node | Clause:
        token = self.peek()
        if token is not None and token.is_word("not"):
            self.take()
            return Node("not", (self.not_expression(),))
        if token is not None and token.text == "(" and token.kind == "punct":
            self.take()
            inner = self.or_expression()
            self.expect(")")
            return inner
        return self.clause()

    def clause(self) -> Clause:
        name = self.take()
        if name.kind not in ("word", "string"):
            raise JqlError(f"Error in the JQL Query: Expecting a field name but got '{name.text}'.")
        field = _field(name.text)
        op_token = self.take()
        op = op_token.text.lower()
        if op_token.kind == "word" and op == "not":
            self.expect("in")
            op = "not in"
        elif op_token.kind == "word" and op == "is":
            following = self.take()
            if following.is_word("not"):
                op, following = "is not", self.take()
            if not following.is_word("empty", "null"):
                raise JqlError(f"Error in the JQL Query: Expecting 'EMPTY' but got '{following.text}'.")
            return Clause(field, op, ("empty",), (False,))
        elif op_token.kind != "op" and op != "in":
            raise JqlError(f"Error in the JQL Query: Expecting operator but got '{op_token.text}'.")
        if op in ("~", "!~"):
            raise JqlError(f"The operator '{op}' is not supported by the '{name.text}' field.")
        if op in ("in", "not in"):
            self.expect("(")
            values, quoted = [], []
            while True:
                value = self.value()
                values.append(value.text)
                quoted.append(value.kind == "string")
                separator = self.take()
                if separator.text == ")":
                    break
                if separator.text != ",":
                    raise JqlError(f"Error in the JQL Query: Expecting ',' or ')' but got '{separator.text}'.")
            return Clause(field, op, tuple(values), tuple(quoted))
        value = self.value()
        if value.kind == "word" and field in DATE_FIELDS:  # a bare "yyyy-MM-dd HH:mm": the time is another word
            following = self.peek()
            if following is not None and following.kind == "word" and _TIME_OF_DAY.match(following.text):
                value = Token("word", f"{value.text} {self.take().text}")
        return Clause(field, op, (value.text,), (value.kind == "string",))

    def value(self) -> Token:
        token = self.take()
        if token.kind not in ("word", "string"):
            raise JqlError(f"Error in the JQL Query: Expecting a value but got '{token.text}'.")
        return token


def _field(name: str) -> str:
    field = _FIELD_ALIASES.get(name.lower())
    if field is None:
        raise JqlError(f"Field '{name}' does not exist or you do not have permission to view it.")
    return field


def parse_jql(text: str) -> Jql:
    """The parsed query (the subset in the module docstring); JqlError with Jira's message when it is not."""
    return _Parser(text).query()


def jql_instant(text: str, field: str, zone: ZoneInfo) -> int:
    """A JQL date value as epoch milliseconds: a number is epoch ms, a date text is read in `zone`."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    for pattern in _DATE_FORMATS:
        try:
            local = datetime.strptime(text, pattern)
        except ValueError:
            continue
        return int(pd.Timestamp(local).tz_localize(zone, ambiguous=True, nonexistent="shift_forward").value // 10**6)
    raise JqlError(f"Date value '{text}' for field '{field}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
                   "'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'.")


class IssueTable:
    """The issues as columns, in the base order (updated, then key number, ascending): what JQL is evaluated on."""

    def __init__(self, issues: tuple[JiraIssue, ...], zone: ZoneInfo):
        self.zone = zone
        self.issues = sorted(issues, key=lambda i: (i.updated, i.number))
        self.number = np.array([i.number for i in self.issues], dtype=np.int64)
        self.dates = {
            "created": np.array([_millis(i.created) for i in self.issues], dtype=np.int64),
            "updated": np.array([_millis(i.updated) for i in self.issues], dtype=np.int64),
            "resolved": np.array([_millis(i.resolutiondate) for i in self.issues], dtype=np.int64),
        }
        self.text = {
            "project": np.array([JIRA_PROJECT.lower()] * len(self.issues), dtype=object),
            "issuetype": np.array([i.issuetype.lower() for i in self.issues], dtype=object),
            "status": np.array([i.status.lower() for i in self.issues], dtype=object),
        }
        self.ids = {
            "project": {PROJECT["id"]: PROJECT["key"].lower(), PROJECT["name"].lower(): PROJECT["key"].lower()},
            "issuetype": {number: name.lower() for name, number in ISSUE_TYPES.items()},
            "status": {number: name.lower() for name, (number, _) in JIRA_STATUSES.items()},
        }

    def __len__(self) -> int:
        return len(self.issues)

    def mask(self, node: Node | Clause | None) -> np.ndarray:
        if node is None:
            return np.ones(len(self), dtype=bool)
        if isinstance(node, Node):
            masks = [self.mask(child) for child in node.children]
            if node.op == "not":
                return ~masks[0]
            return np.logical_and.reduce(masks) if node.op == "and" else np.logical_or.reduce(masks)
        return self._clause(node)

    def _clause(self, clause: Clause) -> np.ndarray:
        field, op = clause.field, clause.op
        if op in ("is", "is not"):
            empty = self.dates["resolved"] < 0 if field == "resolved" else np.zeros(len(self), dtype=bool)
            return empty if op == "is" else ~empty
        if field in DATE_FIELDS:
            column = self.dates[field]
            present = column >= 0
            values = [jql_instant(value, field, self.zone) for value in clause.values]
            return present & _compare(column, op, values, field)
        if field == "key":
            numbers = []
            for value in clause.values:
                project, _, number = value.upper().rpartition("-")
                if value.isdigit():  # an issue id
                    numbers.append(int(value) - 10_000)
                elif project == JIRA_PROJECT and number.isdigit():
                    numbers.append(int(number))
                elif op in ("=", "in"):
                    numbers.append(-1)  # another project's key: matches nothing
                else:
                    raise JqlError(f"The issue key '{value}' for field 'key' is invalid.")
            return _compare(self.number, op, numbers, field)
        if op not in ("=", "!=", "in", "not in"):
            raise JqlError(f"The operator '{op}' is not supported by the '{field}' field.")
        known = self.ids[field]
        words = [known.get(value.lower(), value.lower()) for value in clause.values]
        return _compare(self.text[field], op, words, field)

    def order(self, selected: np.ndarray, order: tuple[tuple[str, bool], ...]) -> np.ndarray:
        """The positions `selected` (base order) sorted by ORDER BY (ties keep the base order)."""
        if not order or order == (("updated", False), ("key", False)):
            return selected
        keys = [np.arange(len(selected))]
        for field, descending in reversed(order):
            if field in DATE_FIELDS:
                values = self.dates[field][selected].astype(np.float64)
                values[values < 0] = np.inf  # an empty date sorts last ascending
            elif field == "key":
                values = self.number[selected].astype(np.float64)
            else:
                values = np.unique(self.text[field][selected], return_inverse=True)[1].astype(np.float64)
            keys.append(-values if descending else values)
        return selected[np.lexsort(keys)]


def _compare(column: np.ndarray, op: str, values: list, field: str) -> np.ndarray:
    if op in ("in", "not in"):
        found = np.isin(column, np.array(values, dtype=column.dtype))
        return found if op == "in" else ~found
    if len(values) != 1:
        raise JqlError(f"The operator '{op}' takes one value for the '{field}' field.")
    value = values[0]
    comparisons: dict[str, Callable[[], np.ndarray]] = {
        "=": lambda: column == value, "!=": lambda: column != value, ">": lambda: column > value,
        ">=": lambda: column >= value, "<": lambda: column < value, "<=": lambda: column <= value,
    }  # fmt: skip
    return comparisons[op]()


# ---------------------------------------------------------------------------------------------
# The vendor


def _token(payload: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _untoken(text: str) -> list[Any] | None:
    try:
        payload = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error):
        return None
    return payload if isinstance(payload, list) and len(payload) == 2 and isinstance(payload[0], int) else None


def _fingerprint(text: str) -> int:
    return zlib.crc32(text.encode())


class JiraApi:
    prefix = "jira"

    def __init__(self, history: History, *, token: str | None = None, clock: Callable[[], float] = time.time):
        self.history = history
        self.token = token
        self.clock = clock
        self.zone = ZoneInfo(USER_ZONE)
        self.ids = RequestIds("")
        self.table = IssueTable(history.jira_issues, self.zone)
        self.by_key = {issue.key: issue for issue in history.jira_issues}
        self.by_key.update({issue.id: issue for issue in history.jira_issues})
        self._fields: dict[str, dict[str, Any]] = {}  # key -> every field's JSON, built on first use

    # -- the shared parts of every answer

    def _answer(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> Response:
        reason = "AUTHENTICATED_FAILED" if status == 401 else "OK"
        headers = {"X-AREQUESTID": self.ids.next(), "X-Seraph-LoginReason": reason}
        return json_response(status, payload, {**headers, **(extra or {})})

    def fault_response(self, request: Request, fault: Fault) -> Response:
        if fault.status == 429:
            return self._answer(429, error_body("Rate limit exceeded."), {
                "Retry-After": str(fault.retry_after), "RateLimit-Reason": "jira-burst-based",
                "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0"})  # fmt: skip
        return proxy_error(fault.status or 502)

    def _user(self, request: Request) -> str | None:
        """The email of a request with acceptable Basic credentials, else None."""
        match = _BASIC.match(request.header("authorization") or "")
        if match is None:
            return None
        try:
            email, colon, secret = base64.b64decode(match[1], validate=True).decode().partition(":")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
        if not colon or not email or not secret or (self.token is not None and secret != self.token):
            return None
        return email

    def handle(self, request: Request) -> Response:
        email = self._user(request)
        if email is None:
            return self._answer(401, error_body("Client must be authenticated to access this resource."),
                                {"WWW-Authenticate": 'Basic realm="protected-area"'})  # fmt: skip
        path, method = request.path, request.method
        if path in ("/rest/api/3/search", "/rest/api/2/search"):
            return self._answer(410, error_body(
                "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full "
                "migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"))
        try:
            if path == "/rest/api/3/myself" and method == "GET":
                return self._answer(200, self.myself_json(email))
            if path == "/rest/api/3/field" and method == "GET":
                return self._answer(200, [self.field_json(*field) for field in FIELDS])
            if path == "/rest/api/3/search/jql" and method in ("GET", "POST"):
                return self._answer(200, self._search(self._search_params(request)))
            if path == "/rest/api/3/changelog/bulkfetch" and method == "POST":
                return self._answer(200, self._bulkfetch(_json_body(request)))
            found = re.fullmatch(r"/rest/api/3/issue/([A-Za-z0-9-]+)", path)
            if found and method == "GET":
                issue = self.by_key.get(found[1].upper())
                if issue is None:
                    return self._answer(404, error_body("Issue does not exist or you do not have permission to "
                                                        "see it."))
                fields = _field_list(request.query.get("fields", [])) or ["*all"]
                return self._answer(200, self.issue_json(issue, _selected(fields), _expand(request.param("expand"))))
        except JqlError as error:
            return self._answer(400, error_body(str(error)))
        return self._answer(404, error_body("null for uri: " + f"{SELF_BASE_URL}{path}"))

    # -- endpoints

    def _search_params(self, request: Request) -> dict[str, Any]:
        if request.method == "POST":
            body = _json_body(request)
            fields = body.get("fields") or []
            return {"jql": body.get("jql") or "", "fields": fields if isinstance(fields, list) else [str(fields)],
                    "maxResults": body.get("maxResults"), "nextPageToken": body.get("nextPageToken"),
                    "expand": body.get("expand")}  # fmt: skip
        return {"jql": request.param("jql") or "", "fields": _field_list(request.query.get("fields", [])),
                "maxResults": request.param("maxResults"), "nextPageToken": request.param("nextPageToken"),
                "expand": request.param("expand")}  # fmt: skip

    def _search(self, params: dict[str, Any]) -> dict[str, Any]:
        jql = str(params["jql"])
        parsed = parse_jql(jql)
        if parsed.where is None:
            raise JqlError("Unbounded JQL queries are not allowed here. Please add a search restriction to your "
                           "query.")  # fmt: skip
        try:
            asked = DEFAULT_MAX_RESULTS if params["maxResults"] in (None, "") else int(params["maxResults"])
        except (TypeError, ValueError):
            raise JqlError("The value of maxResults must be an integer.") from None
        if asked < 0:
            raise JqlError("The value of maxResults must not be negative.")
        fields = params["fields"] or ["id"]
        selected = _selected(fields)
        if set(fields) <= {"id", "key"}:
            ceiling = MAX_RESULTS_ID_ONLY
        elif len(selected) > MANY_FIELDS or any(f.startswith("*") for f in fields):
            ceiling = MAX_RESULTS_MANY_FIELDS
        else:
            ceiling = MAX_RESULTS_FEW_FIELDS
        size = min(max(asked, 1), ceiling)
        offset = 0
        token = params["nextPageToken"]
        if token:
            decoded = _untoken(str(token))
            if decoded is None or decoded[1] != _fingerprint(jql):
                raise JqlError("The provided next page token is invalid or expired.")
            offset = decoded[0]
        positions = self.table.order(np.flatnonzero(self.table.mask(parsed.where)), parsed.order)
        page = positions[offset: offset + size]
        expand = _expand(params["expand"])
        out: dict[str, Any] = {"issues": [self.issue_json(self.table.issues[int(p)], selected, expand) for p in page]}
        last = offset + len(page) >= len(positions)
        if not last:
            out["nextPageToken"] = _token([offset + len(page), _fingerprint(jql)])
        out["isLast"] = last
        return out

    def _bulkfetch(self, body: dict[str, Any]) -> dict[str, Any]:
        wanted = body.get("issueIdsOrKeys")
        if not isinstance(wanted, list) or not wanted or not all(isinstance(k, str) for k in wanted):
            raise JqlError("issueIdsOrKeys must be a list of 1 to 1000 issue ids or keys.")
        if len(wanted) > BULK_MAX_ISSUES:
            raise JqlError(f"issueIdsOrKeys takes at most {BULK_MAX_ISSUES} issues.")
        field_ids = body.get("fieldIds") or []
        if not isinstance(field_ids, list) or len(field_ids) > 10:
            raise JqlError("fieldIds must be a list of at most 10 field ids.")
        size = body.get("maxResults", BULK_DEFAULT_RESULTS)
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= BULK_MAX_RESULTS:
            raise JqlError(f"maxResults must be between 1 and {BULK_MAX_RESULTS}.")
        request_print = _fingerprint(json.dumps([wanted, field_ids, size]))
        offset = 0
        if body.get("nextPageToken"):
            decoded = _untoken(str(body["nextPageToken"]))
            if decoded is None or decoded[1] != request_print:
                raise JqlError("The provided next page token is invalid or expired.")
            offset = decoded[0]
        kept = set(field_ids)
        flat: list[tuple[JiraIssue, JiraHistory]] = []
        seen: set[str] = set()
        for name in wanted:
            issue = self.by_key.get(name.upper())
            if issue is None or issue.key in seen:
                continue
            seen.add(issue.key)
            flat += [(issue, h) for h in issue.histories if not kept or any(i.field in kept for i in h.items)]
        logs: list[dict[str, Any]] = []
        for issue, entry in flat[offset: offset + size]:
            if not logs or logs[-1]["issueId"] != issue.id:
                logs.append({"issueId": issue.id, "changeHistories": []})
            logs[-1]["changeHistories"].append(self.history_json(entry, kept))
        out: dict[str, Any] = {"issueChangeLogs": logs}
        if offset + size < len(flat):
            out["nextPageToken"] = _token([offset + size, request_print])
        return out

    # -- shapes

    def myself_json(self, email: str) -> dict[str, Any]:
        return {
            "self": f"{SELF_BASE_URL}/rest/api/3/user?accountId={ACCOUNT_ID}", "accountId": ACCOUNT_ID,
            "accountType": "atlassian", "emailAddress": email, "displayName": email.split("@")[0],
            "active": True, "timeZone": USER_ZONE, "locale": "en_NZ",
            "avatarUrls": {size: f"https://avatar-management.services.atlassian.com/{ACCOUNT_ID}/{size}"
                           for size in ("48x48", "24x24", "16x16", "32x32")},
            "groups": {"size": 1, "items": []}, "applicationRoles": {"size": 1, "items": []},
            "expand": "groups,applicationRoles",
        }  # fmt: skip

    @staticmethod
    def field_json(field_id: str, name: str, custom: bool, schema: dict[str, Any]) -> dict[str, Any]:
        clause = [f"cf[{field_id.rsplit('_', 1)[1]}]", name] if custom else [field_id]
        return {"id": field_id, "key": field_id, "name": name, "custom": custom, "orderable": True,
                "navigable": True, "searchable": True, "clauseNames": clause, "schema": schema}  # fmt: skip

    def _status_json(self, name: str) -> dict[str, Any]:
        status_id, category = JIRA_STATUSES[name]
        category_id, category_name, colour = CATEGORIES[category]
        return {"self": f"{SELF_BASE_URL}/rest/api/3/status/{status_id}", "description": "", "name": name,
                "iconUrl": f"{SELF_BASE_URL}/images/icons/statuses/generic.png", "id": status_id,
                "statusCategory": {"self": f"{SELF_BASE_URL}/rest/api/3/statuscategory/{category_id}",
                                   "id": int(category_id), "key": category, "colorName": colour,
                                   "name": category_name}}  # fmt: skip

    def _issuetype_json(self, name: str) -> dict[str, Any]:
        type_id = ISSUE_TYPES[name]
        return {"self": f"{SELF_BASE_URL}/rest/api/3/issuetype/{type_id}", "id": type_id, "description": "",
                "iconUrl": f"{SELF_BASE_URL}/rest/api/2/universal_avatar/view/type/issuetype/avatar/10300",
                "name": name, "subtask": False, "hierarchyLevel": 0}  # fmt: skip

    def _link_json(self, issue: JiraIssue) -> list[dict[str, Any]]:
        links = []
        for link in issue.links:
            other = self.by_key.get(link.key)
            if other is None:
                continue
            type_id, inward, outward = LINK_TYPES[link.type]
            linked = {"id": other.id, "key": other.key, "self": f"{SELF_BASE_URL}/rest/api/3/issue/{other.id}",
                      "fields": {"summary": other.summary, "status": self._status_json(other.status),
                                 "issuetype": self._issuetype_json(other.issuetype)}}  # fmt: skip
            links.append({"id": link.id, "self": f"{SELF_BASE_URL}/rest/api/3/issueLink/{link.id}",
                          "type": {"id": type_id, "name": link.type, "inward": inward, "outward": outward,
                                   "self": f"{SELF_BASE_URL}/rest/api/3/issueLinkType/{type_id}"},
                          "inwardIssue" if link.inward else "outwardIssue": linked})  # fmt: skip
        return links

    def _all_fields(self, issue: JiraIssue) -> dict[str, Any]:
        cached = self._fields.get(issue.key)
        if cached is not None:
            return cached
        zone = self.zone
        labels = [item.to_string for h in issue.histories for item in h.items if item.field == "labels"]
        priority = None
        if issue.priority is not None:
            pid = PRIORITIES[issue.priority]
            priority = {"self": f"{SELF_BASE_URL}/rest/api/3/priority/{pid}", "name": issue.priority, "id": pid,
                        "iconUrl": f"{SELF_BASE_URL}/images/icons/priorities/{issue.priority.lower()}.svg"}  # fmt: skip
        change_type = None
        if issue.change_type is not None:
            option = CHANGE_TYPE_OPTIONS[issue.change_type]
            change_type = {"self": f"{SELF_BASE_URL}/rest/api/3/customFieldOption/{option}",
                           "value": issue.change_type, "id": option}  # fmt: skip
        resolution = None
        if issue.resolutiondate is not None:
            resolution = {"self": f"{SELF_BASE_URL}/rest/api/3/resolution/10000", "id": "10000", "name": "Done",
                          "description": "Work has been completed on this issue."}  # fmt: skip
        fields = {
            "summary": issue.summary,
            "issuetype": self._issuetype_json(issue.issuetype),
            "status": self._status_json(issue.status),
            "priority": priority,
            "components": [{"self": f"{SELF_BASE_URL}/rest/api/3/component/{_component_id(name)}",
                            "id": _component_id(name), "name": name} for name in issue.components],
            "created": jira_time(issue.created, zone),
            "updated": jira_time(issue.updated, zone),
            "resolutiondate": jira_time(issue.resolutiondate, zone),
            "resolution": resolution,
            "issuelinks": self._link_json(issue),
            "labels": labels[-1:] if labels else [],
            "project": {"self": f"{SELF_BASE_URL}/rest/api/3/project/{PROJECT['id']}", **PROJECT,
                        "simplified": False},
            JIRA_CHANGE_TYPE_FIELD: change_type,
            "customfield_10043": None,
        }  # fmt: skip
        self._fields[issue.key] = fields
        return fields

    def history_json(self, entry: JiraHistory, kept: set[str] | None = None) -> dict[str, Any]:
        items = []
        for item in entry.items:
            if kept and item.field not in kept:
                continue
            change = {"field": item.field, "fieldtype": "jira", "fieldId": item.field}
            for name, value in (("from", item.from_id), ("fromString", item.from_string), ("to", item.to_id),
                                ("toString", item.to_string)):  # fmt: skip
                if value is not None:
                    change[name] = value
            items.append(change)
        return {"id": entry.id, "author": {"self": f"{SELF_BASE_URL}/rest/api/3/user?accountId={BOT['accountId']}",
                                           **BOT}, "created": jira_time(entry.created, self.zone), "items": items}

    def issue_json(self, issue: JiraIssue, selected: list[str], expand: set[str]) -> dict[str, Any]:
        """An issue with the `selected` fields (ids, in FIELDS order); `expand` may hold "changelog"."""
        every = self._all_fields(issue)
        out: dict[str, Any] = {"expand": "renderedFields,names,schema,operations,editmeta,changelog,"
                                         "versionedRepresentations", "id": issue.id,
                               "self": f"{SELF_BASE_URL}/rest/api/3/issue/{issue.id}", "key": issue.key,
                               "fields": {name: every[name] for name in selected}}  # fmt: skip
        if "changelog" in expand:
            recent = issue.histories[-JIRA_EMBEDDED_HISTORIES:][::-1]  # the most recent, newest first
            out["changelog"] = {"startAt": 0, "maxResults": len(recent), "total": len(issue.histories),
                                "histories": [self.history_json(entry) for entry in recent]}  # fmt: skip
        return out


def _component_id(name: str) -> str:
    return str(10_000 + zlib.crc32(name.encode()) % 90_000)


def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise JqlError("Unexpected character in the request body: it is not JSON.") from None
    if not isinstance(body, dict):
        raise JqlError("The request body must be a JSON object.")
    return body


def _field_list(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _selected(fields: list[str]) -> list[str]:
    """The field ids `fields` asks for (`*all`, `*navigable`, names, `-name` to leave one out), in FIELDS order.
    Fields the simulator does not hold are left out, as Jira leaves out fields it does not know."""
    everything = any(f in ("*all", "*navigable") for f in fields) or (fields and all(f.startswith("-") for f in fields))
    wanted = set(FIELD_IDS) if everything else {f for f in fields if not f.startswith("-")}
    wanted -= {f[1:] for f in fields if f.startswith("-")}
    return [field for field in FIELD_IDS if field in wanted]


def _expand(text: str | None) -> set[str]:
    return {part.strip() for part in (text or "").split(",") if part.strip()}
