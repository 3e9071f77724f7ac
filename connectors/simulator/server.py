"""One HTTP server for every simulated vendor, each under its own path prefix.

    http://HOST:PORT/github       GitHub REST base; GraphQL at /github/graphql   (github_routes)
    http://HOST:PORT/pagerduty    PagerDuty REST API v2 base                     (pagerduty_routes)
    http://HOST:PORT/jira         Jira Cloud platform REST API v3 base           (jira_routes)
    http://HOST:PORT/servicenow   ServiceNow instance base (Table API)           (servicenow_routes)

A vendor is a module with a `Vendor` (web.Vendor), listed in `make_app`. The server is the standard
library's ThreadingHTTPServer (HTTP/1.1, keep-alive), which lets a fault drop a connection or cut a body
short at the socket.

For tests: `with running(history, port=0) as base_url: ...` (a background thread, a free port).
For the CLI: `serve(port, history, ...)` serves until interrupted; `on_ready(base_url)` is called once it
listens. The truth files are written above this package (pipelines/truth.py).
"""

from __future__ import annotations

import hashlib
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from connectors.simulator.faults import Fault, FaultPlan
from connectors.simulator.github_graphql import github_schema
from connectors.simulator.github_routes import GithubApi
from connectors.simulator.history import JIRA_PROJECT, History
from connectors.simulator.jira_routes import JiraApi
from connectors.simulator.pagerduty_routes import PagerDutyApi
from connectors.simulator.servicenow_routes import ServiceNowApi
from connectors.simulator.web import Request, Response, Vendor, json_response

Tokens = str | Mapping[str, str] | None  # one token for every vendor, or per vendor prefix


def vendor_urls(base_url: str) -> dict[str, str]:
    """Each vendor's base URL under the server's base URL."""
    base = base_url.rstrip("/")
    return {"github": f"{base}/github", "github_graphql": f"{base}/github/graphql", "pagerduty": f"{base}/pagerduty",
            "jira": f"{base}/jira", "servicenow": f"{base}/servicenow"}  # fmt: skip


def source_sections(base_url: str, mapping: Mapping[str, Mapping[str, list[str]]]) -> dict[str, dict]:
    """`sources:` of a scorecard.yaml fed by the simulator at `base_url`, for the services of `mapping`
    (`history.service_mapping`): every vendor it serves, naming each connector's default credential variables
    (the simulator takes any non-empty value: `credential_envs` lists them)."""
    urls = vendor_urls(base_url)

    def entities(field: str) -> list[str]:
        return [name for entry in mapping.values() for name in entry.get(field, [])]

    issues = f"project = {JIRA_PROJECT} AND issuetype ="
    return {
        "github": {"base_url": urls["github"], "token_env": "GITHUB_TOKEN", "repos": entities("github_repos")},
        "pagerduty": {"base_url": urls["pagerduty"], "token_env": "PAGERDUTY_TOKEN",
                      "services": entities("pagerduty_services")},
        "jira": {"base_url": urls["jira"], "email_env": "JIRA_EMAIL", "token_env": "JIRA_TOKEN",
                 "incident_jql": f"{issues} Incident", "change_jql": f"{issues} Change"},
        "servicenow": {"base_url": urls["servicenow"], "user_env": "SN_USER", "password_env": "SN_PASSWORD"},
    }  # fmt: skip


def credential_envs(sections: Mapping[str, Mapping[str, object]]) -> list[str]:
    """The credential environment variables `sources:` sections name (their `*_env` keys), in order."""
    return [str(value) for section in sections.values() for key, value in section.items() if key.endswith("_env")]


@dataclass(frozen=True)
class Outcome:
    response: Response
    fault: Fault | None  # a transport fault still to apply (dropped, truncated, cut_json, slow)


class SimulatorApp:
    """Routes a request to its vendor, after the fault plan has had its say. Thread-safe. `delay`: the seconds the
    server waits before answering each request (a vendor's latency)."""

    def __init__(self, history: History, vendors: Iterable[Vendor], faults: FaultPlan, delay: float = 0.0):
        self.history = history
        self.vendors = {vendor.prefix: vendor for vendor in vendors}
        self.faults = faults
        self.delay = delay

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes, host: str) -> Outcome:
        parts = urlsplit(target)
        prefix, _, rest = parts.path.lstrip("/").partition("/")
        vendor = self.vendors.get(prefix)
        if vendor is None:
            known = ", ".join(f"/{name}" for name in self.vendors)
            return Outcome(json_response(404, {"message": f"Not Found: the vendors are under {known}"}), None)
        request = Request(
            method=method.upper(),
            path="/" + rest.rstrip("/") if rest.rstrip("/") else "/",
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in headers.items()},
            body=body,
            base_url=f"http://{host}/{prefix}",
            raw_query=parts.query,
        )
        key = f"{request.method} {parts.path}?{parts.query} {hashlib.sha1(body).hexdigest()}"
        fault = self.faults.decide(key)
        if fault is not None and fault.status is not None:
            return Outcome(vendor.fault_response(request, fault), None)
        try:
            response = vendor.handle(request)
        except Exception as error:  # a simulator bug: answer it rather than drop the connection
            traceback.print_exc(file=sys.stderr)
            response = json_response(500, {"message": f"simulator error: {type(error).__name__}: {error}"})
        return Outcome(response, fault)


def make_app(history: History, fault_rate: float = 0.0, seed: int | None = None, *, token: Tokens = None,
             keep_fault_log: bool = False, delay: float = 0.0) -> SimulatorApp:  # fmt: skip
    """The simulator over `history`: faults at `fault_rate` per request, drawn from `seed` (default: the
    history's seed); `token`, if given, is the only credential accepted (one for all, or per vendor prefix; for
    Jira the api token of `email:token`, for ServiceNow the password of `user:password`); `delay` seconds before
    every answer."""

    def token_of(prefix: str) -> str | None:
        return token.get(prefix) if isinstance(token, Mapping) else token

    vendors = [GithubApi(history, token=token_of("github")), PagerDutyApi(history, token=token_of("pagerduty")),
               JiraApi(history, token=token_of("jira")), ServiceNowApi(history, token=token_of("servicenow"))]
    plan = FaultPlan(fault_rate, history.seed if seed is None else seed, keep_log=keep_fault_log)
    return SimulatorApp(history, vendors, plan, delay)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "VendorSimulator/1"
    timeout = 60  # an idle keep-alive connection is closed after this many seconds
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall
    server: _HttpServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
        if self.server.app.delay:
            time.sleep(self.server.app.delay)
        outcome = self.server.app.handle(self.command, self.path, dict(self.headers.items()), body, host)
        response, kind = outcome.response, outcome.fault.kind if outcome.fault else None
        if kind == "slow":
            time.sleep(outcome.fault.delay)
        if kind == "dropped":
            self.close_connection = True  # closed without a byte of response
            return
        payload = response.body
        if kind == "cut_json":
            payload = payload[: len(payload) // 2]
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if kind == "truncated":
            payload = payload[: len(payload) // 2]
            self.close_connection = True
        self.wfile.write(payload)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: object) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: SimulatorApp, verbose: bool):
        self.app = app
        self.verbose = verbose
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return  # a client that went away
        super().handle_error(request, client_address)


class SimulatorServer:
    """The app listening on (host, port); `port=0` takes a free one (see `port`, `base_url`)."""

    def __init__(self, app: SimulatorApp, *, host: str = "127.0.0.1", port: int = 0, verbose: bool = False):
        self.app = app
        self.host = host
        self.httpd = _HttpServer((host, port), app, verbose)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> SimulatorServer:
        """Serve in a background (daemon) thread."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"simulator:{self.port}", daemon=True)  # fmt: skip
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()


@contextmanager
def running(history_or_app: History | SimulatorApp, *, port: int = 0, host: str = "127.0.0.1",
            fault_rate: float = 0.0, seed: int | None = None, token: Tokens = None, delay: float = 0.0,
            verbose: bool = False) -> Iterator[str]:  # fmt: skip
    """Serve in a background thread for the `with` block; yields the base URL (`http://127.0.0.1:PORT`).
    Given a History, the app is `make_app(history, fault_rate, seed, token=token, delay=delay)`."""
    app = history_or_app if isinstance(history_or_app, SimulatorApp) else \
        make_app(history_or_app, fault_rate, seed, token=token, delay=delay)  # fmt: skip
    server = SimulatorServer(app, host=host, port=port, verbose=verbose).start()
    try:
        yield server.base_url
    finally:
        server.close()


def serve(
    port: int,
    history: History,
    *,
    fault_rate: float = 0.0,
    seed: int | None = None,
    host: str = "127.0.0.1",
    token: Tokens = None,
    delay: float = 0.0,
    verbose: bool = True,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """What `scorecard simulate` runs: `history` (build_history) served on `port` (0: a free one) until
    interrupted (Ctrl-C or SIGTERM), `delay` seconds before every answer. `on_ready(base_url)` is called once the
    server listens."""
    github_schema()  # built now (about a second), not on the first GraphQL request
    app = make_app(history, fault_rate, seed, token=token, delay=delay)
    server = SimulatorServer(app, host=host, port=port, verbose=verbose)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        if on_ready is not None:
            on_ready(server.base_url)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops `serve` as Ctrl-C does
