"""What every vendor module of the simulator speaks: a parsed request, a response, a rate budget."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

from connectors.simulator.faults import Fault

JSON_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # inside the vendor's prefix: "/repos/acme/checkout/deployments", "/incidents"
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: bytes
    base_url: str  # the vendor's base URL as the client reached it: "http://127.0.0.1:8080/github"
    raw_query: str = ""

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def url_with(self, **changes: Any) -> str:
        """This request's URL with the given query parameters set (others kept, in their order)."""
        pairs = [(k, v) for k, v in parse_qsl(self.raw_query, keep_blank_values=True) if k not in changes]
        pairs += [(k, str(v)) for k, v in changes.items()]
        return f"{self.base_url}{self.path}?{urlencode(pairs)}"


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, body, {"Content-Type": JSON_TYPE, **(headers or {})})


def proxy_error(status: int) -> Response:
    """What a load balancer in front of a vendor answers for a 502 or 503: HTML, not the vendor's JSON."""
    reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}.get(status, "Error")
    page = f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1>"
    page += "</center>\r\n</body>\r\n</html>\r\n"
    return Response(status, page.encode(), {"Content-Type": "text/html"})


def iso_z(moment: datetime) -> str:
    """A UTC datetime as GitHub and PagerDuty write it: 2026-01-31T09:15:00Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Vendor(Protocol):
    prefix: str  # the first path segment: "github", "pagerduty"

    def handle(self, request: Request) -> Response:
        """The vendor's answer to a request (auth, rate limits and errors included)."""
        ...

    def fault_response(self, request: Request, fault: Fault) -> Response:
        """The answer for a status fault (rate_limited: 429 with Retry-After; bad_gateway/unavailable: 502/503)."""
        ...


@dataclass(frozen=True)
class BudgetState:
    limit: int
    used: int
    reset: float  # Unix time the window ends

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)


class Budget:
    """A request (or point) budget per fixed window, as vendors count them; thread-safe."""

    def __init__(self, limit: int, window_seconds: float, clock: Callable[[], float] = time.time):
        self.limit = limit
        self.window_seconds = window_seconds
        self.clock = clock
        self._window_end: float | None = None
        self._used = 0
        self._lock = threading.Lock()

    def _roll(self) -> None:
        now = self.clock()
        if self._window_end is None or now >= self._window_end:
            self._window_end = float(int(now + self.window_seconds))
            self._used = 0

    def spend(self, cost: int = 1) -> tuple[bool, BudgetState]:
        """(whether the budget had room for `cost`, the state after spending it or not)."""
        with self._lock:
            self._roll()
            allowed = self._used + cost <= self.limit
            if allowed:
                self._used += cost
            return allowed, BudgetState(self.limit, self._used, self._window_end)

    def peek(self) -> BudgetState:
        with self._lock:
            self._roll()
            return BudgetState(self.limit, self._used, self._window_end)


class RequestIds:
    """Sequential request ids for a vendor's request-id header."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self._next = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._next += 1
            return f"{self.prefix}{self._next:08X}"
