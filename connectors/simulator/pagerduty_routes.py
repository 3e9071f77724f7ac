"""PagerDuty's REST API v2 under `/pagerduty`, over the history's incidents.

Base URL `http://HOST:PORT/pagerduty`. Endpoints:
- `GET /incidents`: classic offset pagination (`limit`, default 25, at most 100; `offset`; `more`; `total`,
  null unless `total=true`), where `offset + limit` may not pass 10,000 (400, code 2001). Filters:
  `since`/`until` on created_at (default: the month up to now, "now" being the history's end; over
  6 months: 400), `date_range=all` (ignores since/until), `service_ids[]`, `statuses[]`, `urgencies[]`,
  `incident_key`; `sort_by` (`created_at`, `resolved_at`, `incident_number`, `urgency`, each `:asc` or
  `:desc`, up to two, comma-separated; default created_at:asc; an open incident sorts after every
  resolution); `time_zone` (IANA name, default UTC): times are written in it, with its offset.
- `GET /incidents/{id}`, `GET /services` (`query` filters by name), `GET /services/{id}`, `GET /priorities`.
Errors are PagerDuty's `{"error": {"message", "code", "errors"?}}`: 400 "Invalid Input Provided" (2001),
401 "Unauthorized" (2006) without `Authorization: Token token=<key>` (with `token` given to the simulator,
only that key), 404 "Not Found" (2100), 429 "Rate Limit Exceeded" (2020). Every answer carries
`ratelimit-limit`, `ratelimit-remaining` and `ratelimit-reset` (seconds to the window's end): 960
requests a minute.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from connectors.simulator.faults import Fault
from connectors.simulator.history import PRIORITIES, History, Incident, priority_id
from connectors.simulator.web import Budget, BudgetState, Request, RequestIds, Response, json_response, proxy_error

RATE_LIMIT = 960  # requests per minute
DEFAULT_LIMIT = 25
MAX_LIMIT = 100
OFFSET_CAP = 10_000
MAX_RANGE = pd.DateOffset(months=6)
DEFAULT_RANGE = pd.DateOffset(months=1)
SUBDOMAIN = "acme"
# `self` links name PagerDuty's API host, as PagerDuty's own do, whatever port the simulator listens on: the
# payload of a record (stored in the warehouse's raw column) is the same from one simulator run to the next.
SELF_BASE_URL = "https://api.pagerduty.com"
STATUSES = ("triggered", "acknowledged", "resolved")
URGENCIES = ("high", "low")
ESCALATION_POLICY_ID = "PDEFAULT"
_AUTH = re.compile(r"^\s*Token\s+token=(\S+)\s*$", re.IGNORECASE)
_SORT_FIELDS = ("created_at", "resolved_at", "incident_number", "urgency")


class InvalidInput(Exception):
    """A parameter PagerDuty refuses: 400 Invalid Input Provided, with this message among `errors`."""


def error_body(message: str, code: int, errors: Sequence[str] = ()) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "code": code}
    if errors:
        error["errors"] = list(errors)
    return {"error": error}


def _list(request: Request, name: str) -> list[str]:
    """A list parameter, sent as `name[]=a&name[]=b` (or `name=a,b`)."""
    values = list(request.query.get(f"{name}[]", []))
    for value in request.query.get(name, []):
        values += [part for part in value.split(",") if part]
    return values


def _zone(request: Request) -> ZoneInfo | None:
    name = request.param("time_zone")
    if name in (None, "", "UTC", "Etc/UTC"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"Time zone '{name}' is not a valid time zone.") from None


def local_time(moment: datetime | None, zone: ZoneInfo | None) -> str | None:
    """A UTC datetime as PagerDuty writes it: `Z` in UTC, else the zone's local time with its offset."""
    if moment is None:
        return None
    if zone is None:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.astimezone(zone).isoformat(timespec="seconds")


def _instant(request: Request, name: str, zone: ZoneInfo | None) -> pd.Timestamp | None:
    text = request.param(name)
    if text in (None, ""):
        return None
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise InvalidInput(f"{name.capitalize()} is not a valid date time.") from None
    if pd.isna(stamp):
        raise InvalidInput(f"{name.capitalize()} is not a valid date time.")
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(zone or "UTC")
    return stamp.tz_convert("UTC")


def _int(request: Request, name: str, default: int) -> int:
    text = request.param(name)
    if text in (None, ""):
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(f"{name.capitalize()} must be an integer.") from None


class PagerDutyApi:
    prefix = "pagerduty"

    def __init__(self, history: History, *, token: str | None = None, clock: Callable[[], float] = time.time):
        self.history = history
        self.token = token
        self.clock = clock
        self.budget = Budget(RATE_LIMIT, 60, clock)
        self.ids = RequestIds("")
        self.services = history.pagerduty_services  # id -> service name
        self.by_id = {incident.id: incident for incident in history.incidents}

    def _headers(self, state: BudgetState) -> dict[str, str]:
        return {
            "ratelimit-limit": str(state.limit),
            "ratelimit-remaining": str(state.remaining),
            "ratelimit-reset": str(max(int(round(state.reset - self.clock())), 0)),
            "x-request-id": self.ids.next(),
        }

    def _answer(self, status: int, payload: Any, state: BudgetState, extra: dict[str, str] | None = None) -> Response:
        return json_response(status, payload, {**self._headers(state), **(extra or {})})

    def fault_response(self, request: Request, fault: Fault) -> Response:
        state = self.budget.peek()
        if fault.status == 429:
            return self._answer(429, error_body("Rate Limit Exceeded", 2020), state,
                                {"Retry-After": str(fault.retry_after)})  # fmt: skip
        response = proxy_error(fault.status or 502)
        response.headers.update(self._headers(state))
        return response

    def handle(self, request: Request) -> Response:
        match = _AUTH.match(request.header("authorization") or "")
        if match is None or (self.token is not None and match[1] != self.token):
            return self._answer(401, error_body("Unauthorized", 2006), self.budget.peek())
        allowed, state = self.budget.spend(1)
        if not allowed:
            return self._answer(429, error_body("Rate Limit Exceeded", 2020), state)
        if request.method != "GET":
            return self._answer(404, error_body("Not Found", 2100), state)
        routes: list[tuple[str, Callable[..., Any]]] = [
            (r"^/incidents$", self._incidents), (r"^/incidents/([A-Z0-9]+)$", self._incident),
            (r"^/services$", self._services), (r"^/services/([A-Z0-9]+)$", self._service),
            (r"^/priorities$", self._priorities),
        ]  # fmt: skip
        for pattern, route in routes:
            found = re.match(pattern, request.path)
            if found:
                try:
                    payload = route(request, *found.groups())
                except InvalidInput as error:
                    return self._answer(400, error_body("Invalid Input Provided", 2001, [str(error)]), state)
                if payload is None:
                    return self._answer(404, error_body("Not Found", 2100), state)
                return self._answer(200, payload, state)
        return self._answer(404, error_body("Not Found", 2100), state)

    # -- listings

    def _paged(self, request: Request, key: str, items: Sequence[Any], to_json: Callable[[Any], Any]) -> dict:
        limit = min(max(_int(request, "limit", DEFAULT_LIMIT), 1), MAX_LIMIT)
        offset = _int(request, "offset", 0)
        if offset < 0:
            raise InvalidInput("Offset must be greater than or equal to 0.")
        if offset + limit > OFFSET_CAP:
            raise InvalidInput(f"Offset + limit must not be greater than {OFFSET_CAP}: classic pagination reaches the "
                               f"first {OFFSET_CAP} records only (narrow the query, e.g. since/until).")
        page = items[offset: offset + limit]
        total = len(items) if (request.param("total") or "").lower() == "true" else None
        return {key: [to_json(item) for item in page], "limit": limit, "offset": offset, "total": total,
                "more": offset + len(page) < len(items)}  # fmt: skip

    def _incidents(self, request: Request) -> dict:
        zone = _zone(request)
        items = list(self.history.incidents)
        date_range = request.param("date_range")
        if date_range not in (None, "", "all"):
            raise InvalidInput("Date range must be 'all'.")
        if date_range != "all":
            now = pd.Timestamp(self.history.end)
            until = _instant(request, "until", zone)
            since = _instant(request, "since", zone)
            until = until if until is not None else (now if since is None else max(now, since))
            since = since if since is not None else until - DEFAULT_RANGE
            if since > until:
                raise InvalidInput("Since must be before until.")
            if since + MAX_RANGE < until:
                raise InvalidInput("The date range between since and until may be at most 6 months.")
            low, high = since.to_pydatetime(), until.to_pydatetime()
            items = [i for i in items if low <= i.created_at < high]
        service_ids = _list(request, "service_ids")
        if service_ids:
            items = [i for i in items if i.service_id in set(service_ids)]
        statuses = _list(request, "statuses")
        for status in statuses:
            if status not in STATUSES:
                raise InvalidInput(f"Statuses must be one of {', '.join(STATUSES)}, not '{status}'.")
        if statuses:
            items = [i for i in items if i.status in set(statuses)]
        urgencies = _list(request, "urgencies")
        if urgencies:
            items = [i for i in items if i.urgency in set(urgencies)]
        key = request.param("incident_key")
        if key:
            items = [i for i in items if i.incident_key == key]
        items = _sorted(items, request.param("sort_by"))
        return self._paged(request, "incidents", items, lambda i: self.incident_json(SELF_BASE_URL, i, zone))

    def _incident(self, request: Request, incident_id: str) -> dict | None:
        incident = self.by_id.get(incident_id)
        if incident is None:
            return None
        return {"incident": self.incident_json(SELF_BASE_URL, incident, _zone(request))}

    def _services(self, request: Request) -> dict:
        query = (request.param("query") or "").lower()
        by_name = sorted(self.services.items(), key=lambda item: item[1])
        items = [(sid, name) for sid, name in by_name if query in name.lower()]
        return self._paged(request, "services", items, lambda item: self.service_json(SELF_BASE_URL, *item))

    def _service(self, request: Request, service_id: str) -> dict | None:
        name = self.services.get(service_id)
        return {"service": self.service_json(SELF_BASE_URL, service_id, name)} if name else None

    def _priorities(self, request: Request) -> dict:
        return self._paged(request, "priorities", list(PRIORITIES), lambda p: self.priority_json(SELF_BASE_URL, p))

    # -- shapes

    def _reference(self, base_url: str, kind: str, path: str, item_id: str, summary: str) -> dict[str, Any]:
        return {"id": item_id, "type": f"{kind}_reference", "summary": summary, "self": f"{base_url}/{path}/{item_id}",
                "html_url": f"https://{SUBDOMAIN}.pagerduty.com/{path}/{item_id}"}  # fmt: skip

    def service_json(self, base_url: str, service_id: str, name: str) -> dict[str, Any]:
        return {
            "id": service_id, "type": "service", "summary": name, "name": name, "description": f"The {name} service",
            "self": f"{base_url}/services/{service_id}",
            "html_url": f"https://{SUBDOMAIN}.pagerduty.com/service-directory/{service_id}",
            "status": "active", "created_at": local_time(self.history.start, None),
            "escalation_policy": self._reference(base_url, "escalation_policy", "escalation_policies",
                                                 ESCALATION_POLICY_ID, "Default"),
            "teams": [], "incident_urgency_rule": {"type": "constant", "urgency": "high"},
        }  # fmt: skip

    def priority_json(self, base_url: str, summary: str) -> dict[str, Any]:
        pid = priority_id(summary)
        return {"id": pid, "type": "priority", "summary": summary, "name": summary,
                "self": f"{base_url}/priorities/{pid}", "html_url": None, "description": "",
                "order": 500 - 100 * PRIORITIES.index(summary)}  # fmt: skip

    def incident_json(self, base_url: str, incident: Incident, zone: ZoneInfo | None) -> dict[str, Any]:
        """An incident as `GET /incidents` lists it; times in `zone` (None: UTC, written with Z)."""
        resolved = incident.status == "resolved"
        service = self._reference(base_url, "service", "services", incident.service_id, incident.service)
        service["html_url"] = f"https://{SUBDOMAIN}.pagerduty.com/service-directory/{incident.service_id}"
        priority = None
        if incident.priority is not None:
            pid = priority_id(incident.priority)
            priority = {"id": pid, "type": "priority_reference", "summary": incident.priority,
                        "self": f"{base_url}/priorities/{pid}", "html_url": None}  # fmt: skip
        acknowledgements = []
        if incident.status == "acknowledged":
            acknowledgements = [{"at": local_time(incident.updated_at, zone), "acknowledger": service}]
        return {
            "id": incident.id,
            "type": "incident",
            "summary": f"[#{incident.number}] {incident.title}",
            "self": f"{base_url}/incidents/{incident.id}",
            "html_url": f"https://{SUBDOMAIN}.pagerduty.com/incidents/{incident.id}",
            "incident_number": incident.number,
            "title": incident.title,
            "description": incident.title,
            "created_at": local_time(incident.created_at, zone),
            "updated_at": local_time(incident.updated_at, zone),
            "status": incident.status,
            "incident_key": incident.incident_key,
            "service": service,
            "assignments": [],
            "assigned_via": "escalation_policy",
            "last_status_change_at": local_time(incident.last_status_change_at, zone),
            "last_status_change_by": service,
            "resolved_at": local_time(incident.resolved_at, zone) if resolved else None,
            "first_trigger_log_entry": {
                "id": f"R{incident.id[1:]}", "type": "trigger_log_entry_reference",
                "summary": "Triggered through the API.", "self": f"{base_url}/log_entries/R{incident.id[1:]}",
                "html_url": f"https://{SUBDOMAIN}.pagerduty.com/incidents/{incident.id}/log_entries/R{incident.id[1:]}",
            },  # fmt: skip
            "alert_counts": {"all": 1, "triggered": 0 if resolved else 1, "resolved": 1 if resolved else 0},
            "is_mergeable": True,
            "escalation_policy": self._reference(base_url, "escalation_policy", "escalation_policies",
                                                 ESCALATION_POLICY_ID, "Default"),  # fmt: skip
            "teams": [],
            "pending_actions": [],
            "acknowledgements": acknowledgements,
            "alert_grouping": None,
            "priority": priority,
            "urgency": incident.urgency,
            "resolve_reason": None,
        }


def _sorted(items: list[Incident], sort_by: str | None) -> list[Incident]:
    """Incidents in `sort_by` order (PagerDuty's syntax); open incidents after every resolution."""
    keys = [part.strip() for part in (sort_by or "created_at").split(",") if part.strip()]
    if len(keys) > 2:
        raise InvalidInput("Sort by takes at most two fields.")
    parsed = []
    for key in keys:
        field, _, direction = key.partition(":")
        direction = direction or "asc"
        if field not in _SORT_FIELDS or direction not in ("asc", "desc"):
            raise InvalidInput(f"Sort by '{key}' is not one of {', '.join(_SORT_FIELDS)} with :asc or :desc.")
        parsed.append((field, direction == "desc"))
    ordered = sorted(items, key=lambda i: (i.created_at, i.number))
    for field, descending in reversed(parsed):
        if field == "resolved_at":
            done = sorted((i for i in ordered if i.resolved_at is not None), key=lambda i: i.resolved_at,
                          reverse=descending)  # fmt: skip
            ordered = done + [i for i in ordered if i.resolved_at is None]
        else:
            value: Callable[[Incident], Any] = {
                "created_at": lambda i: i.created_at, "incident_number": lambda i: i.number,
                "urgency": lambda i: URGENCIES.index(i.urgency),
            }[field]  # fmt: skip
            ordered = sorted(ordered, key=value, reverse=descending)
    return ordered
