"""A hostile vendor for the tests: the simulator's own answers, bent the way a broken or malicious vendor bends them.

`serving(app, misbehaviour)` serves a SimulatorApp and misbehaves on every *listing* request of each vendor (a
request that pages through records); the pre-flight's probes and other lookups are answered as the simulator
answers them, so a run gets as far as reading records:

- `endless_pages`: another page is always promised. Jira answers every `nextPageToken` with the first page under a
  token it never sent before; GitHub moves `endCursor` on every page while the pages come back empty; PagerDuty
  answers every offset with the first page and `more: true`; ServiceNow answers every keyset page with the first
  page and a `rel="next"` link;
- `drip`: the answer goes out one byte every DRIP_SECONDS, status line and headers included;
- `huge`: an answer of HUGE_BYTES, chunked (no Content-Length: it must be read to be measured);
- `redirect`: a 302 to another host, whose answer is a 200 with `{}`.

And one that must not stop a run: `far_future` answers every listing page as the simulator does, but with the first
record's event time (FAR_FUTURE: no warehouse column holds it) and a NUL in its title, as a vendor's bad row.

`holding(app)` never answers a listing at all: the request is held until the harness closes (only a deadline, or
the run's own end, ends it), and the test learns when one has arrived.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

from connectors.simulator.server import SimulatorApp
from connectors.simulator.web import Response

MISBEHAVIOURS = ("endless_pages", "drip", "huge", "redirect")  # each stops a run
FAR_FUTURE = "9999-12-31T23:59:59Z"
# Where each vendor's listing page keeps its records, and the event-time and title fields of one, as (list key, time
# fields, title field); GitHub's pages are per repository connection (below).
_RECORDS = {"jira": ("issues", ("created", "resolutiondate"), "summary"),
            "pagerduty": ("incidents", ("created_at",), "title"),
            "servicenow": ("result", ("opened_at", "work_start"), "short_description")}  # fmt: skip
DRIP_SECONDS = 0.05
HUGE_BYTES = 3 * 1024 * 1024
_LISTING_TABLES = ("incident", "change_request")


def is_listing(method: str, target: str, body: bytes) -> bool:
    """Whether a request pages through a vendor's records (what the harness misbehaves on)."""
    parts = urlsplit(target)
    prefix, _, path = parts.path.lstrip("/").partition("/")
    query = dict(parse_qsl(parts.query))
    if prefix == "jira":
        return path == "rest/api/3/search/jql"
    if prefix == "github":
        return method == "POST" and (b"deployments(" in body or b"pullRequests(" in body)
    if prefix == "pagerduty":
        return path == "incidents" and query.get("limit") != "1"
    if prefix == "servicenow":
        table = path.removeprefix("api/now/table/")
        return (table in _LISTING_TABLES and query.get("sysparm_limit") != "1"
                and not query.get("sysparm_query", "").startswith("sys_idIN"))  # fmt: skip
    return False


class _Endless:
    """Rewrites a listing request so the simulator serves its first page, and its answer so another page is
    always promised (module docstring)."""

    def __init__(self, app: SimulatorApp):
        self.app = app
        self.tokens = itertools.count(1)
        self.first_pages: dict[str, Response] = {}  # a ServiceNow table -> the answer to its first listing page
        self.lock = threading.Lock()

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes, host: str) -> Response:
        parts = urlsplit(target)
        prefix, _, path = parts.path.lstrip("/").partition("/")
        query = dict(parse_qsl(parts.query))
        if prefix == "servicenow":
            return self._servicenow(method, target, headers, body, host, path, query)
        if prefix == "jira":
            query.pop("nextPageToken", None)
        if prefix == "pagerduty":
            query["offset"] = "0"
        if prefix == "github":
            request = json.loads(body)
            request["variables"] = {name: None if name.endswith("_cursor") else value
                                    for name, value in request["variables"].items()}  # fmt: skip
            body = json.dumps(request).encode()
        target = f"{parts.path}?{urlencode(query)}"
        response = self.app.handle(method, target, headers, body, host).response
        answer = json.loads(response.body)
        token = f"endless-{next(self.tokens)}"
        if prefix == "jira":
            answer |= {"nextPageToken": token, "isLast": False}
        elif prefix == "pagerduty":
            answer["more"] = True
        else:  # github: every repository's connection, emptied, with a cursor that moves
            for key, repository in (answer.get("data") or {}).items():
                for connection in (repository or {}).values() if key[1:].isdigit() else ():  # r0, r1, ...
                    connection |= {"nodes": [], "pageInfo": {"hasNextPage": True, "endCursor": token}}
        return Response(response.status, json.dumps(answer).encode(), {"Content-Type": "application/json"})

    def _servicenow(self, method, target, headers, body, host, path, query) -> Response:
        with self.lock:
            first = self.first_pages.get(path) if "^NQ" in query.get("sysparm_query", "") else None
        if first is None:
            first = self.app.handle(method, target, headers, body, host).response
            with self.lock:
                self.first_pages[path] = first
        link = f'<http://{host}/servicenow/{path}?sysparm_offset=0>;rel="next"'
        return Response(first.status, first.body, {**first.headers, "Link": link})


def far_future(target: str, response: Response) -> Response:
    """The listing page `response`, its first record bent as the module docstring says."""
    prefix = urlsplit(target).path.lstrip("/").partition("/")[0]
    answer = json.loads(response.body)
    if prefix == "github":
        pages = [connection for key, repository in (answer.get("data") or {}).items() if key[1:].isdigit()
                 for connection in (repository or {}).values()]  # fmt: skip
        records = [page["nodes"][0] for page in pages if page.get("nodes")]
        for record in records:
            record |= {"mergedAt": FAR_FUTURE} if "mergedAt" in record else {"createdAt": FAR_FUTURE}
    else:
        key, times, title = _RECORDS[prefix]
        records = (answer.get(key) or [])[:1]
        for record in records:
            fields = record.get("fields", record)  # a Jira issue keeps its values under `fields`
            stamp = FAR_FUTURE.replace("T", " ").removesuffix("Z") if prefix == "servicenow" else FAR_FUTURE
            fields |= {name: stamp for name in times} | {title: f"bad\x00row {fields.get(title)}"}
    return Response(response.status, json.dumps(answer).encode(), response.headers)


def _handler(app: SimulatorApp, misbehaviour: str, elsewhere: str,
             held: tuple[threading.Event, threading.Event] | None = None) -> type[BaseHTTPRequestHandler]:  # fmt: skip
    endless = _Endless(app)

    class Hostile(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            headers, host = dict(self.headers.items()), self.headers.get("Host") or ""
            if not is_listing(self.command, self.path, body):
                self._send(app.handle(self.command, self.path, headers, body, host).response)
            elif misbehaviour == "endless_pages":
                self._send(endless.answer(self.command, self.path, headers, body, host))
            elif misbehaviour == "drip":
                self._drip(app.handle(self.command, self.path, headers, body, host).response)
            elif misbehaviour == "huge":
                self._huge()
            elif misbehaviour == "redirect":
                self._send(Response(302, b"", {"Location": elsewhere + self.path}))
            elif misbehaviour == "far_future":
                self._send(far_future(self.path, app.handle(self.command, self.path, headers, body, host).response))
            elif misbehaviour == "hold" and held is not None:
                arrived, release = held
                arrived.set()
                release.wait()
                self.close_connection = True

        do_GET = do_POST = _serve

        def _send(self, response: Response) -> None:
            self.send_response(response.status)
            for name, value in response.headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        def _drip(self, response: Response) -> None:
            head = f"HTTP/1.1 {response.status} OK\r\nContent-Length: {len(response.body)}\r\n\r\n".encode()
            try:
                for byte in head + response.body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(DRIP_SECONDS)
            except OSError:
                self.close_connection = True  # the client gave up on it: what a deadline does

        def _huge(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b" " * 65536  # JSON whitespace: a body a parser would take, once it has all of it
            try:
                self.wfile.write(b"1\r\n{\r\n")
                for _ in range(HUGE_BYTES // len(chunk)):
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.write(b"1\r\n}\r\n0\r\n\r\n")
            except OSError:
                pass  # the client stopped reading: what a size limit does
            self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    return Hostile


class _Elsewhere(BaseHTTPRequestHandler):
    """Another host: answers anything with an empty JSON object."""

    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = _serve

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):  # not a client that hung up
            super().handle_error(request, client_address)


@contextmanager
def _listening(handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1") -> Iterator[str]:
    server = _Server((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serving(app: SimulatorApp, misbehaviour: str) -> Iterator[str]:
    """The hostile vendor's base URL (`http://127.0.0.1:PORT`, the vendors under their prefixes, as the simulator)
    for the `with` block; a redirect goes to another server (another port: another host to a client)."""
    if misbehaviour not in (*MISBEHAVIOURS, "far_future"):
        raise ValueError(f"unknown misbehaviour {misbehaviour!r}: one of {', '.join(MISBEHAVIOURS)}, far_future")
    with _listening(_Elsewhere) as elsewhere, _listening(_handler(app, misbehaviour, elsewhere)) as base_url:
        yield base_url


@contextmanager
def holding(app: SimulatorApp) -> Iterator[tuple[str, threading.Event]]:
    """The simulator's base URL, where no listing is ever answered, and an event set once a listing has arrived;
    the requests held are let go when the block ends."""
    arrived, release = threading.Event(), threading.Event()
    with _listening(_handler(app, "hold", "", (arrived, release))) as base_url:
        try:
            yield base_url, arrived
        finally:
            release.set()
