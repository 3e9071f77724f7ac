"""The one HTTP client every vendor connector uses: a session per source, timeouts, retries, rate limits.

`VendorClient(source, base_url, headers, rate_limit=...)` keeps one `requests.Session` (connection
reuse) and retries, with exponential backoff and jitter (tenacity), on what is worth another try:
429, 5xx, a dropped or reset connection, a timeout, and a body that is cut short or is not JSON.
How long to wait comes from the vendor first: `Retry-After`, or the vendor's rate-limit headers
through `rate_limit` (GitHub's `x-ratelimit-remaining`/`x-ratelimit-reset`, PagerDuty's
`ratelimit-remaining`/`ratelimit-reset`), so a spent budget waits for its reset instead of burning
requests. When it gives up, `VendorHttpError` names the source, the endpoint (query values that
could be secrets are not shown) and the last status. Credentials live in the session's headers
only: no message, log line or stored payload of this module carries them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from connectors.base import SourceError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_TIMEOUT = (10.0, 60.0)  # (connect, read) seconds
MAX_WAIT_SECONDS = 900.0  # never sleep longer than this for one retry, whatever a header says

RateLimitWait = Callable[[requests.Response], float | None]  # seconds to wait before the next request, or None
# A vendor that reports a rate limit inside a 200 body (GitHub GraphQL): body, headers -> seconds to wait, or None.
BodyRateLimit = Callable[[Any, Mapping[str, str]], float | None]


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
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.source = source
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
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

    def request(self, method: str, path: str, **kwargs: Any) -> Page:
        """Send until a JSON answer or a final failure; raises VendorAuthError or VendorHttpError."""
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"
        retrying = Retrying(
            retry=retry_if_exception_type(_Retryable),
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            sleep=self.sleep,
            reraise=True,
        )
        try:
            return retrying(self._attempt, method, url, **kwargs)
        except _Retryable as failure:
            raise VendorHttpError(f"{self._where(method, url)}: gave up after {self.attempts} attempts: "
                                  f"{failure.what}") from None  # fmt: skip

    def close(self) -> None:
        self.session.close()

    def _attempt(self, method: str, url: str, **kwargs: Any) -> Page:
        self.requests_sent += 1
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as error:  # fmt: skip
            raise _Retryable(type(error).__name__) from None
        wait = self.rate_limit(response) if self.rate_limit is not None else None
        if response.status_code in RETRY_STATUSES or (wait is not None and response.status_code in (403, 429)):
            raise _Retryable(f"HTTP {response.status_code}", _retry_after(response) or wait)
        if response.status_code in (401, 403):
            raise VendorAuthError(f"{self._where(method, url)}: HTTP {response.status_code}: the credential was "
                                  f"refused (check the {self.source} token and its scopes)")  # fmt: skip
        if response.status_code >= 400:
            raise VendorHttpError(f"{self._where(method, url)}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise _Retryable(f"HTTP {response.status_code} with a body that is not JSON (cut short?)") from None
        limited = self.body_rate_limit(body, response.headers) if self.body_rate_limit is not None else None
        if limited is not None:
            raise _Retryable(f"HTTP {response.status_code}: rate limited (said in the body)", limited)
        if wait:  # the budget is spent: wait for its reset before the next request
            self.sleep(min(wait, MAX_WAIT_SECONDS))
        return Page(body, response.headers, response.status_code)

    def _wait(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        given = failure.wait if isinstance(failure, _Retryable) else None
        if given is not None:
            return min(given, MAX_WAIT_SECONDS)
        exponential = self.backoff_seconds * 2 ** (state.attempt_number - 1)
        return min(exponential + random.uniform(0, self.backoff_seconds), MAX_WAIT_SECONDS)

    def _where(self, method: str, url: str) -> str:
        return f"{self.source}: {method} {endpoint(url)}"


def endpoint(url: str) -> str:
    """The URL without its query string and user info: what a message may show of a request."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else parts.path


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
