"""The one HTTP client every vendor connector uses: a session per source, timeouts, retries, rate limits.

`VendorClient(source, base_url, headers, rate_limit=..., limits=...)` keeps one `requests.Session` (connection
reuse) and retries, with exponential backoff and jitter (tenacity), on what is worth another try:
429, 5xx, a dropped or reset connection, a timeout, and a body that is cut short or is not JSON.
How long to wait comes from the vendor first: `Retry-After`, or the vendor's rate-limit headers
through `rate_limit` (GitHub's `x-ratelimit-remaining`/`x-ratelimit-reset`, PagerDuty's
`ratelimit-remaining`/`ratelimit-reset`), so a spent budget waits for its reset instead of burning
requests. Within the source's `limits` (connectors/limits.py): a request still unanswered after
`request_deadline_seconds` is ended (a `_Deadline` shuts its socket) and retried like a timeout; an answer over
`max_body_mb` is refused unread; once the source has spent `time_budget_minutes`, no request is sent (waits
included). When it gives up, `VendorHttpError` names the source, the endpoint (query values that
could be secrets are not shown) and the last status. Credentials live in the session's headers
only: no message, log line or stored payload of this module carries them, no exception it raises
carries a requests error as its context (their text quotes the URL, query and all), and urllib3's
own DEBUG request lines lose their query strings (a filter this module puts on those loggers).

A receiver whose URL path is the secret (a chat webhook: Slack's carries its token in the path) gets a client with
`secret_path=True`: its messages show scheme and host only, and urllib3's log lines lose that path too.
`deliver` posts to a receiver that answers in its own words (a webhook's plain `ok`) rather than JSON.

A caller that reads sources in threads of its own ends them with a `Stop`: each thread reads under it
(`with stop.applied():`), and once it is set no request of those threads is sent, the one under way ends at once
(its socket shut, as a deadline does) and a wait through `pause` ends early. A thread blocked on a vendor would
otherwise outlive the read it serves, and keep the process alive.
"""

from __future__ import annotations

import base64
import logging
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from connectors.base import SourceError
from connectors.limits import Limits

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_TIMEOUT = (10.0, 60.0)  # (connect, read) seconds
MAX_WAIT_SECONDS = 900.0  # never sleep longer than this for one retry, whatever a header says
_CHUNK_BYTES = 1 << 16

RateLimitWait = Callable[[requests.Response], float | None]  # seconds to wait before the next request, or None
# A vendor that reports a rate limit inside a 200 body (GitHub GraphQL): body, headers -> seconds to wait, or None.
BodyRateLimit = Callable[[Any, Mapping[str, str]], float | None]


_DROPPED = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError)  # fmt: skip


class VendorHttpError(SourceError):
    """A request that failed for good: `source: METHOD endpoint: what happened`. No secret in it."""


class VendorAuthError(VendorHttpError):
    """401/403 that is not a rate limit: the credential is missing, wrong or lacks a scope."""


class _Retryable(Exception):
    """A failed attempt worth another: carries what to report if it was the last, and a vendor-given wait."""

    def __init__(self, what: str, wait: float | None = None):
        super().__init__(what)
        self.what = what
        self.wait = wait


class Stop:
    """Ends the requests of the threads that read under it (the module docstring). Thread-safe."""

    _current = threading.local()  # the Stop the thread reads under

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._under_way: set[_Deadline] = set()

    def set(self) -> None:
        with self._lock:
            self._event.set()
            under_way = list(self._under_way)
        for deadline in under_way:
            deadline.end()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> None:
        self._event.wait(seconds)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The block's requests, in this thread, end when this Stop is set."""
        previous = Stop.of_thread()
        Stop._current.stop = self
        try:
            yield
        finally:
            Stop._current.stop = previous

    @classmethod
    def of_thread(cls) -> Stop | None:
        return getattr(cls._current, "stop", None)

    def _watch(self, deadline: _Deadline) -> None:
        with self._lock:
            if not self._event.is_set():
                self._under_way.add(deadline)
                return
        deadline.end()  # set meanwhile: the request ends as soon as it has a connection

    def _unwatch(self, deadline: _Deadline) -> None:
        with self._lock:
            self._under_way.discard(deadline)


def pause(seconds: float) -> None:
    """time.sleep, ended early when the thread's Stop is set: every connector's default `sleep`."""
    stop = Stop.of_thread()
    if stop is None:
        time.sleep(seconds)
    else:
        stop.wait(seconds)


@dataclass
class Page:
    """One decoded response: its JSON body and headers (pagination links live there for some vendors)."""

    body: Any
    headers: Mapping[str, str]
    status: int


class VendorClient:
    """JSON over HTTP for one source, with the retry policy of the module docstring."""

    def __init__(
        self,
        source: str,
        base_url: str,
        headers: Mapping[str, str],
        *,
        rate_limit: RateLimitWait | None = None,
        body_rate_limit: BodyRateLimit | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        attempts: int = 6,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = pause,
        secret_path: bool = False,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.source = source
        self.limits = limits or Limits()
        self.clock = clock
        self._budget_ends: float | None = None  # the clock's time the source's budget is spent: set on first use
        self._last_failure = ""  # what the last attempt worth another failed with, for the budget's message
        self.base_url = base_url.rstrip("/")
        self.secret_path = secret_path
        if secret_path:
            _hide_path_in_urllib3_logs(urlsplit(self.base_url).path)
        self.session = _session(self.base_url)
        self.session.headers.update(headers)
        self.rate_limit = rate_limit
        self.body_rate_limit = body_rate_limit
        self.timeout = timeout
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep
        self.requests_sent = 0  # every attempt, retries included (benchmarks print it)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Page:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None) -> Page:
        return self.request("POST", path, json=json)

    def deliver(self, path: str, json: Any) -> int:
        """POST `json` to a receiver that answers in its own words (a webhook's `ok`), with the same retries: the
        status of its 2xx answer, whose body is not read. Raises VendorAuthError or VendorHttpError."""
        return self.request("POST", path, json=json, decode=False).status

    def request(self, method: str, path: str, *, decode: bool = True, **kwargs: Any) -> Page:
        """Send until a JSON answer (any 2xx answer when not `decode`: its body is left unread) or a final failure;
        raises VendorAuthError or VendorHttpError."""
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"
        retrying = Retrying(
            retry=retry_if_exception_type(_Retryable),
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            sleep=self.sleep,
            reraise=True,
        )
        try:
            return retrying(self._attempt, method, url, decode, **kwargs)
        except _Retryable as failure:
            what = failure.what
        finally:
            self._last_failure = ""
        raise VendorHttpError(f"{self._where(method, url)}: gave up after {self.attempts} attempts: {what}")

    def close(self) -> None:
        self.session.close()

    def _attempt(self, method: str, url: str, decode: bool, **kwargs: Any) -> Page:
        if urlsplit(url).netloc != urlsplit(self.base_url).netloc:  # e.g. a "next" link: the token stays home
            raise VendorHttpError(f"{self._where(method, url)}: not sent: the host is not {self.source}'s "
                                  f"({self._shown(self.base_url)}): it would carry the credential")  # fmt: skip
        self._unless_stopped(method, url)
        deadline = _Deadline(min(self.limits.request_deadline_seconds, self._budget_left(method, url)))
        self.requests_sent += 1
        response, failed, retryable, home = None, "", False, False
        try:
            with deadline:
                response = self.session.request(method, url, timeout=self.timeout, stream=True, **kwargs)
                home = urlsplit(response.url).netloc == urlsplit(self.base_url).netloc  # else a redirect took it
                content = self._body(method, url, response) if home and decode and response.status_code < 400 else b""
        except _DROPPED as error:
            failed, retryable = type(error).__name__, True
        except requests.RequestException as error:  # a URL requests cannot send: its message quotes the whole URL
            failed = type(error).__name__
        except Exception:
            if not deadline.expired:  # else whatever a socket shut under a read raised (the deadline says why)
                raise
        finally:
            if response is not None:
                response.close()  # streamed: the connection goes back to the pool only once closed
        # Raised here, not in the except blocks: the requests error (its text has the URL and query) must not
        # ride along as __context__ of what this module raises.
        if deadline.expired:
            self._unless_stopped(method, url)
            failed, retryable = (f"no whole answer within {deadline.seconds:g} s (limits.request_deadline_seconds)"
                                 if deadline.seconds >= self.limits.request_deadline_seconds
                                 else "no whole answer before the time budget ran out"), True  # fmt: skip
        if retryable:
            raise self._again(failed)
        if failed or response is None:  # also a body whose reading failed for a reason not worth another try
            raise VendorHttpError(f"{self._where(method, url)}: {failed}")
        if not home:
            raise VendorHttpError(f"{self._where(method, url)}: redirected to another host "
                                  f"({endpoint(response.url, with_path=False)}): its answer is not taken as "
                                  "the source's data (check base_url)")  # fmt: skip
        wait = self.rate_limit(response) if self.rate_limit is not None else None
        retry_after = _retry_after(response)
        # A 403/429 is a rate limit when the budget headers say spent or the vendor says when to come back
        # (GitHub's secondary rate limit is a 403 with Retry-After while the primary budget is not spent).
        limited = wait is not None or retry_after is not None
        if response.status_code in RETRY_STATUSES or (limited and response.status_code in (403, 429)):
            waits = [seconds for seconds in (retry_after, wait) if seconds is not None]
            raise self._again(f"HTTP {response.status_code}", max(waits) if waits else None)
        if response.status_code in (401, 403):
            raise VendorAuthError(f"{self._where(method, url)}: HTTP {response.status_code}: the credential was "
                                  f"refused (check the {self.source} token and its scopes)")  # fmt: skip
        if response.status_code >= 400:
            raise VendorHttpError(f"{self._where(method, url)}: HTTP {response.status_code}")
        body, decoded = None, True
        if decode and response.status_code != 204:
            try:
                body = orjson.loads(content)
            except ValueError:
                decoded = False
        if not decoded:
            raise self._again(f"HTTP {response.status_code} with a body that is not JSON (cut short?)")
        limited = self.body_rate_limit(body, response.headers) if self.body_rate_limit is not None else None
        if limited is not None:
            raise self._again(f"HTTP {response.status_code}: rate limited (said in the body)", limited)
        if wait:  # the budget is spent: wait for its reset before the next request
            self.sleep(min(wait, MAX_WAIT_SECONDS, self._budget_left(method, url)))
        return Page(body, response.headers, response.status_code)

    def _unless_stopped(self, method: str, url: str) -> None:
        stop = Stop.of_thread()
        if stop is not None and stop.is_set():
            raise VendorHttpError(f"{self._where(method, url)}: stopped: the reads of this thread were ended")

    def _again(self, what: str, wait: float | None = None) -> _Retryable:
        """A failed attempt worth another, remembered for the time budget's message."""
        self._last_failure = what
        return _Retryable(what, wait)

    def _budget_left(self, method: str, url: str) -> float:
        """Seconds left of the source's time budget (limits.time_budget_minutes); VendorHttpError once it is spent."""
        now = self.clock()
        if self._budget_ends is None:
            self._budget_ends = now + self.limits.time_budget_seconds
        left = self._budget_ends - now
        if left <= 0:
            last = f"; the last attempt: {self._last_failure}" if self._last_failure else ""
            raise VendorHttpError(f"{self._where(method, url)}: not sent: {self.requests_sent:,} requests have spent "
                                  f"the time budget of {self.limits.time_budget_minutes:g} minutes "
                                  f"(limits.time_budget_minutes): the vendor answers too slowly{last}")  # fmt: skip
        return left

    def _body(self, method: str, url: str, response: requests.Response) -> bytes:
        """The answer's body, read up to limits.max_body_mb: a larger one is refused before it fills the memory."""
        most = self.limits.max_body_bytes
        declared = response.headers.get("Content-Length", "")
        chunks, size = [], int(declared) if declared.isdigit() else 0
        for chunk in [] if size > most else response.iter_content(_CHUNK_BYTES):
            size += len(chunk)
            if size > most:
                break
            chunks.append(chunk)
        if size > most:
            raise VendorHttpError(f"{self._where(method, url)}: HTTP {response.status_code}: the answer is larger "
                                  f"than {self.limits.max_body_mb:,} MB (limits.max_body_mb): not read (a vendor "
                                  "fault)")  # fmt: skip
        return b"".join(chunks)

    def _wait(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        given = failure.wait if isinstance(failure, _Retryable) else None
        if given is None:
            exponential = self.backoff_seconds * 2 ** (state.attempt_number - 1)
            given = exponential + random.uniform(0, self.backoff_seconds)
        # Never wait past the budget: the next attempt then says it is spent.
        return max(min(given, MAX_WAIT_SECONDS, self._budget_ends - self.clock()), 0.0)

    def _where(self, method: str, url: str) -> str:
        return f"{self.source}: {method} {self._shown(url)}"

    def _shown(self, url: str) -> str:
        return endpoint(url, with_path=not self.secret_path)


def _session(base_url: str) -> requests.Session:
    """A session for one vendor host, with the environment's proxy and CA bundle read once, here, whose
    connections a `_Deadline` can end.

    requests would re-read them (and ~/.netrc) on every request: costly at thousands of pages, and a netrc
    entry for the vendor's host would replace the credential header the connector sets."""
    session = requests.Session()
    for prefix in ("https://", "http://"):
        session.mount(prefix, _WatchedAdapter())
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return session


def basic_auth_headers(user: str, secret: str) -> dict[str, str]:
    """The headers of a JSON API with HTTP Basic credentials (Jira's email + API token, ServiceNow's user)."""
    encoded = base64.b64encode(f"{user}:{secret}".encode()).decode("ascii")
    return {"Authorization": f"Basic {encoded}", "Accept": "application/json"}


def in_section(error: VendorHttpError, section: str) -> VendorHttpError:
    """The client's error (same class), naming the config section (`sources.jira`) instead of the bare source."""
    _, said, rest = str(error).partition(": ")
    return type(error)(f"{section}: {rest if said else error}")


def http_status(error: VendorHttpError) -> int | None:
    """The HTTP status a VendorHttpError reports, if any."""
    found = re.findall(r"\bHTTP (\d{3})\b", str(error))
    return int(found[-1]) if found else None


def endpoint(url: str, *, with_path: bool = True) -> str:
    """The URL without its query string and user info: what a message may show of a request. Without its path
    too (`with_path=False`) when the path is a secret: scheme and host only."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a number: the message must still be made
        port = ""
    if not parts.scheme:
        return parts.path if with_path else "(not a URL)"
    return f"{parts.scheme}://{host}{port}{parts.path if with_path else ''}"


def _retry_after(response: requests.Response) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date), None without one."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


_SECRET_PATHS: set[str] = set()  # URL paths that are secrets (webhooks): hidden in urllib3's log lines
HIDDEN_PATH = "/***"


class _NoQueryInLogs(logging.Filter):
    """urllib3 logs every request line at DEBUG (`"GET /path?access_token=... HTTP/1.1" 200`), and a URL on a
    retry warning: drop query strings from those records, where a token passed in the URL would be, and the paths
    of secret-path clients."""

    _QUERY = re.compile(r"\?[^\s\"'#]*")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = [path for path in _SECRET_PATHS if path in message]
        if "?" in message or hidden:
            for path in sorted(hidden, key=len, reverse=True):
                message = message.replace(path, HIDDEN_PATH)
            record.msg, record.args = self._QUERY.sub("", message), ()
        return True


def _hide_queries_in_urllib3_logs() -> None:
    # A logger's filters see only the records made on that logger: name the ones that log URLs.
    for name in ("urllib3.connectionpool", "urllib3.util.retry"):
        logger = logging.getLogger(name)
        if not any(isinstance(existing, _NoQueryInLogs) for existing in logger.filters):
            logger.addFilter(_NoQueryInLogs())


_hide_queries_in_urllib3_logs()


def _hide_path_in_urllib3_logs(path: str) -> None:
    if path.strip("/"):
        _SECRET_PATHS.add(path)


def reset_wait(remaining_header: str, reset_header: str, *, reset_is_epoch: bool) -> RateLimitWait:
    """A `rate_limit` for vendors that send the remaining budget and its reset: the seconds until the reset
    once the budget is spent (remaining 0), else None. `reset_is_epoch`: reset is a Unix time (GitHub),
    else seconds from now (PagerDuty, the IETF RateLimit headers)."""

    def wait(response: requests.Response) -> float | None:
        remaining, reset = response.headers.get(remaining_header), response.headers.get(reset_header)
        if remaining is None or reset is None:
            return None
        try:
            if int(float(remaining)) > 0:
                return None
            seconds = float(reset) - time.time() if reset_is_epoch else float(reset)
        except ValueError:
            return None
        return max(seconds, 0.0) + 1.0  # one second past the reset: clocks differ

    return wait


class _Deadline:
    """Ends a request still running `seconds` after it was sent (or once its thread's Stop is set): a per-read
    timeout restarts at every byte, so a server that drips its answer holds a request for ever. Shutting the
    connection's socket down wakes the blocked read (plain or TLS alike); the request then fails as a dropped
    connection, and `expired` says why."""

    _current = threading.local()  # the deadline of the request this thread is sending

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._connection: HTTPConnection | None = None
        self._ended = False
        self._lock = threading.Lock()
        self._stop: Stop | None = None
        self._timer = threading.Timer(seconds, self.end)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        _Deadline._current.deadline = self
        self._stop = Stop.of_thread()
        if self._stop is not None:
            self._stop._watch(self)
        self._timer.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        with self._lock:
            self._ended = True
        self._timer.cancel()
        if self._stop is not None:
            self._stop._unwatch(self)
        _Deadline._current.deadline = None

    @classmethod
    def watch(cls, connection: HTTPConnection) -> None:
        """Called by a connection as it sends (and once connected): the current request's deadline may end it."""
        deadline = getattr(cls._current, "deadline", None)
        if deadline is not None:
            with deadline._lock:
                deadline._connection = connection
                if deadline.expired and not deadline._ended:
                    _shut(connection)

    def end(self) -> None:
        """End the request now (its time is up, or its thread's Stop was set)."""
        with self._lock:
            if self._ended:
                return
            self.expired = True
            if self._connection is not None:
                _shut(self._connection)


def _shut(connection: HTTPConnection) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


class _Watched:
    """A urllib3 connection that tells the current request's `_Deadline` about itself."""

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _Deadline.watch(self)  # type: ignore[arg-type]

    def request(self, *args: Any, **kwargs: Any) -> None:
        _Deadline.watch(self)  # type: ignore[arg-type]
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter, whose connections tell the request's `_Deadline` about themselves."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):  # a SOCKS manager's pools have their own connection classes
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager
