"""connectors.http: the one HTTP client of every vendor connector (session reuse, retries, rate limits, no secrets).

Every test injects `sleep=` (a recorder), so nothing sleeps for real; the only use of the clock is to build an
epoch reset header relative to `time.time()`.
"""

from __future__ import annotations

import json
import logging
import shutil
import ssl
import subprocess
import threading
import time
import traceback
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import responses

from connectors.http import (
    DEFAULT_TIMEOUT,
    MAX_WAIT_SECONDS,
    Page,
    Stop,
    VendorAuthError,
    VendorClient,
    VendorHttpError,
    endpoint,
    pause,
    reset_wait,
)
from connectors.limits import Limits

BASE = "https://api.example.com"
TOKEN = "ghp_FAKE_TOKEN_123"
HEADERS = {"Authorization": f"token {TOKEN}", "Accept": "application/json"}
GITHUB_LIMIT = reset_wait("x-ratelimit-remaining", "x-ratelimit-reset", reset_is_epoch=True)
PAGERDUTY_LIMIT = reset_wait("ratelimit-remaining", "ratelimit-reset", reset_is_epoch=False)


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def slept() -> list[float]:
    return []


def client(slept: list[float], **kwargs) -> VendorClient:
    kwargs.setdefault("attempts", 6)
    return VendorClient(kwargs.pop("source", "github"), kwargs.pop("base_url", BASE),
                        kwargs.pop("headers", HEADERS), sleep=slept.append, **kwargs)  # fmt: skip


def add(mocked: responses.RequestsMock, status: int = 200, body=None, headers=None, method=responses.GET,
        path: str = "/items") -> None:  # fmt: skip
    if body is None:
        body = json.dumps({"ok": True})
    mocked.add(method, BASE + path, status=status, body=body, headers=headers or {},
               content_type="application/json")  # fmt: skip


def secret_free(text: str) -> None:
    assert TOKEN not in text
    assert "access_token" not in text


def chain_free(error: BaseException) -> None:
    """No secret in the error, its traceback, or any exception it carries as __cause__ or __context__
    (an error reporter may show them all). The traceback shows test source, so only the token is checked there."""
    assert TOKEN not in "".join(traceback.format_exception(error))
    seen = error
    while seen is not None:
        secret_free(f"{seen!s} {seen!r}")
        seen = seen.__cause__ or seen.__context__


# --- the session -------------------------------------------------------------------------------------------


def test_one_session_is_reused_and_its_headers_go_with_every_request(mocked, slept, monkeypatch):
    add(mocked, body='{"n": 1}')
    add(mocked, path="/other", body='{"n": 2}')
    vendor = client(slept)
    session = vendor.session
    through_session: list[str] = []
    real_request = session.request

    def spy(method, url, **kwargs):
        through_session.append(url)
        return real_request(method, url, **kwargs)

    monkeypatch.setattr(session, "request", spy)

    first, second = vendor.get("/items"), vendor.get("other")
    assert (first.body, second.body) == ({"n": 1}, {"n": 2})
    assert vendor.session is session
    assert through_session == [f"{BASE}/items", f"{BASE}/other"]
    assert [call.request.headers["Authorization"] for call in mocked.calls] == [f"token {TOKEN}"] * 2
    assert all(call.request.headers["Accept"] == "application/json" for call in mocked.calls)
    assert slept == []


def test_proxy_settings_of_the_environment_are_read_once_for_the_vendor_host(slept, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "bypassed.example.org")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/company.pem")
    proxied, bypassed = client(slept), client(slept, base_url="https://bypassed.example.org/api")
    assert proxied.session.proxies.get("https") == "http://proxy.internal:3128"
    assert "https" not in bypassed.session.proxies
    assert proxied.session.verify == "/etc/ssl/company.pem"
    assert proxied.session.trust_env is False  # not re-read per request


def test_a_netrc_entry_for_the_vendor_host_does_not_replace_the_credential(mocked, slept, monkeypatch, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.example.com login someone password other-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    add(mocked)
    client(slept).get("/items")
    assert mocked.calls[0].request.headers["Authorization"] == f"token {TOKEN}"


def test_page_carries_body_headers_and_status(mocked, slept):
    add(mocked, body='{"incidents": [1, 2]}', headers={"Link": '<https://api.example.com/items?page=2>; rel="next"'})
    page = client(slept).get("/items", params={"page": 1})
    assert isinstance(page, Page)
    assert page.body == {"incidents": [1, 2]}
    assert page.status == 200
    assert "page=2" in page.headers["link"]  # case-insensitive headers
    assert mocked.calls[0].request.url == f"{BASE}/items?page=1"


def test_every_request_has_the_timeout(mocked, slept):
    add(mocked)
    client(slept).get("/items")
    assert mocked.calls[0].request.req_kwargs["timeout"] == DEFAULT_TIMEOUT


def test_base_url_trailing_slash_and_absolute_urls(mocked, slept):
    add(mocked)
    add(mocked, path="/next")
    vendor = client(slept, base_url=BASE + "/")
    vendor.get("items")
    vendor.get(f"{BASE}/next")  # a pagination link is followed as given
    assert [call.request.url for call in mocked.calls] == [f"{BASE}/items", f"{BASE}/next"]


def test_post_sends_json(mocked, slept):
    add(mocked, method=responses.POST, path="/graphql", body='{"data": {"x": 1}}')
    page = client(slept).post("/graphql", json={"query": "{ x }"})
    assert page.body == {"data": {"x": 1}}
    assert json.loads(mocked.calls[0].request.body) == {"query": "{ x }"}


# --- retries -----------------------------------------------------------------------------------------------


def test_429_with_retry_after_seconds_retries_once_after_that_wait(mocked, slept):
    add(mocked, status=429, headers={"Retry-After": "7"})
    add(mocked, body='{"done": true}')
    vendor = client(slept)
    assert vendor.get("/items").body == {"done": True}
    assert slept == [7.0]
    assert vendor.requests_sent == 2


def test_retry_after_as_an_http_date(mocked, slept):
    add(mocked, status=503, headers={"Retry-After": formatdate(time.time() + 20, usegmt=True)})
    add(mocked)
    client(slept).get("/items")
    assert len(slept) == 1
    assert 17.0 <= slept[0] <= 20.0  # whole seconds in the header, and the test takes a moment


def test_retry_after_in_the_past_still_retries(mocked, slept):
    add(mocked, status=429, headers={"Retry-After": formatdate(time.time() - 60, usegmt=True)})
    add(mocked)
    vendor = client(slept, backoff_seconds=0.5)
    vendor.get("/items")
    assert vendor.requests_sent == 2
    assert len(slept) == 1 and 0.0 <= slept[0] <= 1.0


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_server_errors_are_retried(mocked, slept, status):
    add(mocked, status=status)
    add(mocked)
    vendor = client(slept)
    assert vendor.get("/items").body == {"ok": True}
    assert vendor.requests_sent == 2
    assert len(slept) == 1


def test_5xx_backoff_grows_exponentially_with_jitter_within_bounds(mocked, slept):
    for status in (502, 503, 502, 503):
        add(mocked, status=status)
    add(mocked)
    vendor = client(slept, backoff_seconds=0.5)
    vendor.get("/items")
    assert vendor.requests_sent == 5
    assert len(slept) == 4
    for n, seconds in enumerate(slept):
        base = 0.5 * 2**n
        assert base <= seconds <= base + 0.5, (n, seconds)
    assert slept == sorted(slept) and len(set(slept)) == 4


def test_backoff_has_jitter(slept):
    """The same failure, retried by many clients, must not wait the same time (no thundering herd)."""
    waits = []
    for _ in range(8):
        recorder: list[float] = []
        with responses.RequestsMock() as rsps:
            add(rsps, status=503)
            add(rsps)
            client(recorder, backoff_seconds=1.0).get("/items")
        waits.append(recorder[0])
    assert all(1.0 <= w <= 2.0 for w in waits)
    assert len(set(waits)) > 1


@pytest.mark.parametrize("error", [requests.ConnectionError("connection reset by peer"),
                                   requests.Timeout("read timed out"),
                                   requests.exceptions.ChunkedEncodingError("connection broken")])  # fmt: skip
def test_dropped_connection_or_timeout_then_success(mocked, slept, error):
    mocked.add(responses.GET, f"{BASE}/items", body=error)
    add(mocked, body='{"after": "drop"}')
    vendor = client(slept)
    assert vendor.get("/items").body == {"after": "drop"}
    assert vendor.requests_sent == 2
    assert len(slept) == 1


@pytest.mark.parametrize("body", ['{"incidents": [', "<html>502 Bad Gateway</html>", ""])
def test_body_cut_short_or_not_json_is_retried(mocked, slept, body):
    mocked.add(responses.GET, f"{BASE}/items", status=200, body=body)
    add(mocked, body='{"incidents": []}')
    vendor = client(slept)
    assert vendor.get("/items").body == {"incidents": []}
    assert vendor.requests_sent == 2


def test_requests_sent_counts_every_attempt_across_requests(mocked, slept):
    add(mocked, status=503)
    add(mocked, status=502)
    add(mocked)
    add(mocked, path="/other")
    vendor = client(slept)
    assert vendor.requests_sent == 0
    vendor.get("/items")
    assert vendor.requests_sent == 3
    vendor.get("/other")
    assert vendor.requests_sent == 4
    assert len(mocked.calls) == 4


# --- giving up, and what the error shows -------------------------------------------------------------------


def test_give_up_after_attempts_names_source_method_endpoint_status_and_no_secret(mocked, slept, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    mocked.add(responses.GET, "https://bot:hunter2@api.example.com:8443/repos/acme/app/issues", status=503)
    vendor = client(slept, attempts=3, base_url="https://bot:hunter2@api.example.com:8443",
                    headers={"Authorization": f"token {TOKEN}", "X-Test": "sent"})  # fmt: skip

    with pytest.raises(VendorHttpError) as caught:
        vendor.get(f"/repos/acme/app/issues?access_token={TOKEN}&page=2")

    error = caught.value
    message = str(error)
    assert not isinstance(error, VendorAuthError)
    assert message.startswith("github: GET https://api.example.com:8443/repos/acme/app/issues:")
    assert "HTTP 503" in message
    assert "3 attempts" in message
    assert vendor.requests_sent == 3 and len(slept) == 2
    assert mocked.calls[0].request.headers["x-test"] == "sent"  # the request did go out, token and all
    chain_free(error)
    for text in (message, repr(error), caplog.text):
        secret_free(text)
        assert "?" not in text and "page=2" not in text  # no query string at all
        assert "hunter2" not in text and "bot:" not in text and "bot@" not in text


def test_give_up_after_connection_errors_does_not_carry_the_urllib3_message(mocked, slept):
    # A real ConnectionError's text names the URL with its query (urllib3's "Max retries exceeded with url: ...").
    dropped = requests.ConnectionError(f"Max retries exceeded with url: /items?access_token={TOKEN}")
    mocked.add(responses.GET, f"{BASE}/items", body=dropped)
    with pytest.raises(VendorHttpError) as caught:
        client(slept, attempts=2).get(f"/items?access_token={TOKEN}")
    assert str(caught.value) == "github: GET https://api.example.com/items: gave up after 2 attempts: ConnectionError"
    chain_free(caught.value)


def test_a_request_that_cannot_be_sent_is_a_vendor_error_without_the_url_query(slept):
    """requests' own URL errors (no scheme, bad URL) quote the whole URL, query and all."""
    vendor = client(slept, base_url="api.example.com")  # a config mistake: no scheme
    with pytest.raises(VendorHttpError) as caught:
        vendor.get(f"/items?access_token={TOKEN}")
    assert str(caught.value).startswith("github: GET api.example.com/items:")
    assert "MissingSchema" in str(caught.value)
    chain_free(caught.value)
    assert vendor.requests_sent == 1 and slept == []


def test_a_body_that_is_not_json_does_not_carry_the_decode_error(mocked, slept):
    mocked.add(responses.GET, f"{BASE}/items", status=200, body=f'{{"echo": "{TOKEN}", ')
    with pytest.raises(VendorHttpError, match="2 attempts: HTTP 200 with a body that is not JSON") as caught:
        client(slept, attempts=2).get("/items")
    chain_free(caught.value)
    seen, chain = caught.value, []
    while seen is not None:
        chain.append(type(seen))
        seen = seen.__cause__ or seen.__context__
    assert not any(issubclass(kind, ValueError) for kind in chain)  # JSONDecodeError keeps the whole body (.doc)


class _JsonHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep the server quiet
        pass


@pytest.fixture
def local_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JsonHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_urllib3_debug_log_does_not_carry_a_query_secret(local_server, slept, caplog):
    """Over a real socket urllib3 logs every request line at DEBUG; the query (a token) must not be in it."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    vendor = client(slept, base_url=local_server)
    assert vendor.get(f"/repos/acme/app/issues?access_token={TOKEN}&page=2").body == {"ok": True}
    assert '"GET /repos/acme/app/issues' in caplog.text  # urllib3 did log the request line
    secret_free(caplog.text)
    vendor.close()


# --- refused, missing ----------------------------------------------------------------------------------------


def test_401_is_an_auth_error_at_once(mocked, slept):
    add(mocked, status=401, body='{"message": "Bad credentials"}')
    vendor = client(slept)
    with pytest.raises(VendorAuthError) as caught:
        vendor.get(f"/items?access_token={TOKEN}")
    assert "credential was refused" in str(caught.value)
    assert str(caught.value).startswith("github: GET https://api.example.com/items: HTTP 401")
    secret_free(str(caught.value))
    assert vendor.requests_sent == 1 and slept == []


def test_403_that_is_not_a_rate_limit_is_an_auth_error_at_once(mocked, slept):
    add(mocked, status=403, headers={"x-ratelimit-remaining": "4999", "x-ratelimit-reset": str(int(time.time()) + 60)})
    vendor = client(slept, rate_limit=GITHUB_LIMIT)
    with pytest.raises(VendorAuthError, match="HTTP 403: the credential was refused"):
        vendor.get("/items")
    assert vendor.requests_sent == 1 and slept == []


def test_404_is_a_vendor_error_at_once(mocked, slept):
    add(mocked, status=404, body='{"message": "Not Found"}')
    vendor = client(slept)
    with pytest.raises(VendorHttpError) as caught:
        vendor.get("/items")
    assert not isinstance(caught.value, VendorAuthError)
    assert str(caught.value) == "github: GET https://api.example.com/items: HTTP 404"
    assert vendor.requests_sent == 1 and slept == []


# --- vendor rate limits ---------------------------------------------------------------------------------------


def github_headers(remaining: int, reset_in: float) -> dict[str, str]:
    return {"x-ratelimit-remaining": str(remaining), "x-ratelimit-reset": str(int(time.time() + reset_in))}


def test_github_403_with_spent_budget_waits_for_the_reset_then_retries(mocked, slept):
    add(mocked, status=403, headers=github_headers(0, 30))
    add(mocked, body='{"after": "reset"}', headers=github_headers(4999, 3600))
    vendor = client(slept, rate_limit=GITHUB_LIMIT)
    assert vendor.get("/items").body == {"after": "reset"}
    assert len(slept) == 1
    assert 29.0 <= slept[0] <= 31.0  # reset + 1 s for clock skew, less the moment the test took
    assert vendor.requests_sent == 2


def test_github_403_secondary_rate_limit_with_retry_after_is_retried(mocked, slept):
    """GitHub's secondary limit: a 403 with Retry-After while the primary budget is not spent."""
    add(mocked, status=403, headers={"Retry-After": "60", **github_headers(4000, 3600)})
    add(mocked)
    vendor = client(slept, rate_limit=GITHUB_LIMIT)
    assert vendor.get("/items").body == {"ok": True}
    assert slept == [60.0]


def test_github_200_with_spent_budget_returns_then_waits_for_the_reset(mocked, slept):
    add(mocked, body='{"last": "before reset"}', headers=github_headers(0, 30))
    vendor = client(slept, rate_limit=GITHUB_LIMIT)
    page = vendor.get("/items")
    assert page.body == {"last": "before reset"}
    assert vendor.requests_sent == 1  # no second request burnt the budget
    assert len(slept) == 1 and 29.0 <= slept[0] <= 31.0


def test_github_budget_left_means_no_wait(mocked, slept):
    add(mocked, headers=github_headers(1, 30))
    vendor = client(slept, rate_limit=GITHUB_LIMIT)
    vendor.get("/items")
    assert slept == []


def test_pagerduty_429_waits_seconds_from_now(mocked, slept):
    add(mocked, status=429, headers={"ratelimit-remaining": "0", "ratelimit-reset": "12"})
    add(mocked, headers={"ratelimit-remaining": "900", "ratelimit-reset": "60"})
    vendor = client(slept, source="pagerduty", rate_limit=PAGERDUTY_LIMIT)
    vendor.get("/items")
    assert slept == [13.0]


def test_pagerduty_200_with_spent_budget_waits_after_returning(mocked, slept):
    add(mocked, headers={"ratelimit-remaining": "0", "ratelimit-reset": "5"})
    vendor = client(slept, source="pagerduty", rate_limit=PAGERDUTY_LIMIT)
    assert vendor.get("/items").body == {"ok": True}
    assert slept == [6.0] and vendor.requests_sent == 1


def test_the_longer_of_retry_after_and_the_budget_reset_is_waited(mocked, slept):
    """Coming back at Retry-After while the budget is still spent would burn a request on another 429."""
    add(mocked, status=429, headers={"Retry-After": "3", "ratelimit-remaining": "0", "ratelimit-reset": "50"})
    add(mocked, status=429, headers={"Retry-After": "80", "ratelimit-remaining": "0", "ratelimit-reset": "5"})
    add(mocked)
    client(slept, rate_limit=PAGERDUTY_LIMIT).get("/items")
    assert slept == [51.0, 80.0]


def test_a_url_on_another_host_is_not_sent_with_the_credential(mocked, slept):
    with pytest.raises(VendorHttpError, match="not sent: the host is not github's"):
        client(slept).get("https://elsewhere.example.com/repos?page=2")
    assert client(slept).requests_sent == 0


def test_204_is_an_empty_answer_not_a_broken_body(mocked, slept):
    add(mocked, status=204, body="")
    assert client(slept).get("/items").body is None
    assert slept == []


def _response(headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.headers.update(headers)
    return response


@pytest.mark.parametrize(("headers", "expected"), [
    ({}, None),
    ({"ratelimit-remaining": "0"}, None),
    ({"ratelimit-reset": "10"}, None),
    ({"ratelimit-remaining": "3", "ratelimit-reset": "10"}, None),
    ({"ratelimit-remaining": "0", "ratelimit-reset": "10"}, 11.0),
    ({"ratelimit-remaining": "0.0", "ratelimit-reset": "2.5"}, 3.5),
    ({"ratelimit-remaining": "0", "ratelimit-reset": "-4"}, 1.0),
    ({"ratelimit-remaining": "soon", "ratelimit-reset": "10"}, None),
    ({"ratelimit-remaining": "0", "ratelimit-reset": "later"}, None),
])  # fmt: skip
def test_reset_wait_seconds_from_now(headers, expected):
    assert PAGERDUTY_LIMIT(_response(headers)) == expected


def test_reset_wait_epoch_in_the_past_is_one_second():
    assert GITHUB_LIMIT(_response({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1000"})) == 1.0


def graphql_rate_limit(body, headers):
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors and any(error.get("type") == "RATE_LIMITED" for error in errors):
        return 42.0
    return None


def test_body_rate_limit_in_a_200_is_retried_after_the_returned_wait(mocked, slept):
    add(mocked, method=responses.POST, path="/graphql", body='{"errors": [{"type": "RATE_LIMITED"}]}')
    add(mocked, method=responses.POST, path="/graphql", body='{"data": {"viewer": {"login": "bot"}}}')
    seen = []

    def limit(body, headers):
        seen.append(headers["Content-Type"])
        return graphql_rate_limit(body, headers)

    vendor = client(slept, body_rate_limit=limit)
    page = vendor.post("/graphql", json={"query": "{ viewer { login } }"})
    assert page.body == {"data": {"viewer": {"login": "bot"}}}
    assert slept == [42.0]
    assert vendor.requests_sent == 2
    assert seen == ["application/json"] * 2


def test_body_rate_limit_every_time_gives_up_with_the_reason(mocked, slept):
    add(mocked, method=responses.POST, path="/graphql", body='{"errors": [{"type": "RATE_LIMITED"}]}')
    vendor = client(slept, attempts=2, body_rate_limit=graphql_rate_limit)
    with pytest.raises(VendorHttpError, match=r"gave up after 2 attempts: HTTP 200: rate limited \(said in the body\)"):
        vendor.post("/graphql", json={})
    assert slept == [42.0]


# --- the cap on waits ---------------------------------------------------------------------------------------


def test_retry_after_is_capped(mocked, slept):
    add(mocked, status=429, headers={"Retry-After": "86400"})
    add(mocked)
    client(slept).get("/items")
    assert slept == [MAX_WAIT_SECONDS]


def test_rate_limit_reset_is_capped_on_retry_and_after_a_page(mocked, slept):
    add(mocked, status=403, headers=github_headers(0, 86400))
    add(mocked, headers=github_headers(0, 86400))
    client(slept, rate_limit=GITHUB_LIMIT).get("/items")
    assert slept == [MAX_WAIT_SECONDS, MAX_WAIT_SECONDS]


def test_body_rate_limit_wait_is_capped(mocked, slept):
    add(mocked, body='{"errors": [{"type": "RATE_LIMITED"}]}')
    add(mocked)
    client(slept, body_rate_limit=lambda body, headers: 1e9 if "errors" in body else None).get("/items")
    assert slept == [MAX_WAIT_SECONDS]


def test_exponential_backoff_is_capped(mocked, slept):
    add(mocked, status=503)
    add(mocked)
    client(slept, backoff_seconds=MAX_WAIT_SECONDS * 4).get("/items")
    assert slept == [MAX_WAIT_SECONDS]


# --- endpoint() -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "shown"), [
    ("https://api.github.com/repos/a/b/pulls?state=all&page=2", "https://api.github.com/repos/a/b/pulls"),
    (f"https://api.github.com/repos?access_token={TOKEN}#frag", "https://api.github.com/repos"),
    ("https://user:secret@acme.service-now.com/api/now/table/incident?x=1",
     "https://acme.service-now.com/api/now/table/incident"),
    ("https://token@api.pagerduty.com:8443/incidents?limit=100", "https://api.pagerduty.com:8443/incidents"),
    ("http://localhost:8080/x", "http://localhost:8080/x"),
    ("https://API.Example.com/Path", "https://api.example.com/Path"),
    ("http://[::1]:8080/v1/items?key=1", "http://[::1]:8080/v1/items"),
    ("/relative/path?token=1", "/relative/path"),
    ("https://host:notaport/x?token=1", "https://host/x"),
])  # fmt: skip
def test_endpoint_strips_query_and_credentials(url, shown):
    assert endpoint(url) == shown


# --- answers that are no data: too large, or from another host -----------------------------------------------


def test_an_answer_larger_than_the_limit_is_refused_not_read(mocked, slept):
    add(mocked, body=json.dumps({"items": ["x" * 1_100_000]}))
    vendor = client(slept, limits=Limits(max_body_mb=1))
    with pytest.raises(VendorHttpError) as caught:
        vendor.get("/items")
    assert str(caught.value) == ("github: GET https://api.example.com/items: HTTP 200: the answer is larger than "
                                 "1 MB (limits.max_body_mb): not read (a vendor fault)")
    assert vendor.requests_sent == 1 and slept == []  # a fault, not worth another try
    assert client(slept, limits=Limits(max_body_mb=2)).get("/items").body == {"items": ["x" * 1_100_000]}


class _Redirecting(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(302)
        self.send_header("Location", self.target + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_an_answer_from_another_host_after_a_redirect_is_not_data(local_server, slept):
    class Redirecting(_Redirecting):
        target = local_server.replace("127.0.0.1", "localhost")  # the same server under another host name

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        vendor = client(slept, base_url=f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.raises(VendorHttpError, match="redirected to another host \\(http://localhost:[0-9]+\\): its "
                                                  "answer is not taken as the source's data") as caught:
            vendor.get(f"/items?access_token={TOKEN}")
        secret_free(str(caught.value))
    finally:
        server.shutdown()
        server.server_close()


# --- a request has a deadline, a source a time budget --------------------------------------------------------


class _Dripping(BaseHTTPRequestHandler):
    """Sends its answer one byte every `interval` seconds, in the headers or in the body: a read timeout never
    fires, since every read gets a byte."""

    interval = 0.05
    in_headers = True
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's name)
        body = json.dumps({"items": list(range(2000))}).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        self.wfile.write(head[:12] if self.in_headers else head)
        try:
            for byte in (head[12:] if self.in_headers else b"") + body:
                time.sleep(self.interval)
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
        except OSError:
            pass  # the client hung up: what the deadline does

    def log_message(self, *args):
        pass


@pytest.fixture
def dripping():
    servers = []

    def serve(in_headers: bool) -> str:
        handler = type("Drip", (_Dripping,), {"in_headers": in_headers})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("in_headers", [True, False], ids=["dripping headers", "dripping body"])
def test_a_request_that_drips_is_ended_at_its_deadline_and_retried(dripping, slept, in_headers):
    vendor = client(slept, base_url=dripping(in_headers), attempts=2, limits=Limits(request_deadline_seconds=0.5))
    started = time.monotonic()
    with pytest.raises(VendorHttpError) as caught:
        vendor.get(f"/items?access_token={TOKEN}")
    assert str(caught.value) == (f"github: GET {vendor.base_url}/items: gave up after 2 attempts: no whole answer "
                                 "within 0.5 s (limits.request_deadline_seconds)")
    assert vendor.requests_sent == 2 and len(slept) == 1
    assert time.monotonic() - started < 10  # two deadlines of 0.5 s, not the 2,000 s the answer would take


@pytest.fixture
def tls_certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1 (cert, key), made with the openssl command."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)  # fmt: skip
    return cert, key


@pytest.mark.parametrize("in_headers", [True, False], ids=["dripping headers", "dripping body"])
def test_a_request_that_drips_over_tls_is_ended_at_its_deadline(tls_certificate, slept, monkeypatch, in_headers):
    cert, key = tls_certificate
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Drip", (_Dripping,), {"in_headers": in_headers}))
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    try:
        vendor = client(slept, base_url=f"https://127.0.0.1:{server.server_address[1]}", attempts=2,
                        limits=Limits(request_deadline_seconds=0.5))  # fmt: skip
        with pytest.raises(VendorHttpError, match=r"gave up after 2 attempts: no whole answer within 0\.5 s"):
            vendor.get("/items")
    finally:
        server.shutdown()
        server.server_close()


def test_a_deadline_that_passes_unused_ends_nothing(local_server, slept):
    vendor = client(slept, base_url=local_server, limits=Limits(request_deadline_seconds=0.2))
    assert vendor.get("/first").body == {"ok": True}
    time.sleep(0.3)  # past the first request's deadline: its connection, back in the pool, must still serve
    assert vendor.get("/second").body == {"ok": True}
    assert vendor.requests_sent == 2


def test_the_time_budget_stops_a_source_before_its_next_request(mocked, slept):
    now = [0.0]
    add(mocked, status=503)
    add(mocked)
    vendor = client(slept, limits=Limits(time_budget_minutes=1), clock=lambda: now[0])
    assert vendor.get("/items").body == {"ok": True}  # a 503 then the answer: within the minute
    now[0] = 59.9
    assert vendor.get("/items").body == {"ok": True}
    now[0] = 60.0
    with pytest.raises(VendorHttpError) as caught:
        vendor.get("/items")
    assert str(caught.value) == ("github: GET https://api.example.com/items: not sent: 3 requests have spent the "
                                 "time budget of 1 minutes (limits.time_budget_minutes): the vendor answers too slowly")
    assert vendor.requests_sent == 3


def test_a_retry_never_waits_past_the_time_budget(mocked, slept):
    now = [0.0]
    add(mocked, status=429, headers={"Retry-After": "600"})
    vendor = client(slept, limits=Limits(time_budget_minutes=2), clock=lambda: now[0], attempts=2)

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    vendor.sleep = sleep
    with pytest.raises(VendorHttpError) as caught:
        vendor.get("/items")
    assert str(caught.value) == ("github: GET https://api.example.com/items: not sent: 1 requests have spent the time "
                                 "budget of 2 minutes (limits.time_budget_minutes): the vendor answers too slowly; the "
                                 "last attempt: HTTP 429")
    assert slept == [120.0]  # the vendor asked for 600 s; the budget had 120 left


# --- a Stop ends the requests of the threads that read under it -----------------------------------------------


class _Hanging(BaseHTTPRequestHandler):
    """Takes a request and answers nothing until `release` is set."""

    arrived: threading.Event
    release: threading.Event
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.arrived.set()
        self.release.wait(60)
        self.close_connection = True

    def log_message(self, *args):
        pass


class _WatchedStop(Stop):
    """A Stop that says when a thread began to wait on it."""

    def __init__(self):
        super().__init__()
        self.waiting = threading.Event()

    def wait(self, seconds: float) -> None:
        self.waiting.set()
        super().wait(seconds)


def read_under(stop: Stop, vendor: VendorClient) -> tuple[threading.Thread, dict[str, str]]:
    """vendor.get('/items') in a thread of its own under `stop`; the dict gets the error it ends with."""
    outcome: dict[str, str] = {}

    def read() -> None:
        with stop.applied():
            try:
                vendor.get("/items")
            except VendorHttpError as error:
                outcome["error"] = str(error)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, outcome


def test_a_stop_ends_the_request_under_way_at_once_and_sends_no_other(slept):
    arrived, release = threading.Event(), threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Hang", (_Hanging,), {"arrived": arrived, "release": release}))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # an hour's deadline: only the stop can end this request while the test waits
        vendor = client(slept, base_url=f"http://127.0.0.1:{server.server_address[1]}",
                        limits=Limits(request_deadline_seconds=3600))  # fmt: skip
        stop = Stop()
        thread, outcome = read_under(stop, vendor)
        assert arrived.wait(30)
        stop.set()
        thread.join(30)
        assert not thread.is_alive()
        assert outcome["error"] == f"github: GET {vendor.base_url}/items: stopped: the reads of this thread were ended"
        assert (vendor.requests_sent, slept) == (1, [])  # not retried
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_stop_ends_a_wait_for_the_vendor_and_the_request_after_it_is_not_sent(mocked):
    add(mocked, status=429, headers={"Retry-After": "600"})
    vendor = VendorClient("github", BASE, HEADERS)  # waits with `pause`: the default
    stop = _WatchedStop()
    thread, outcome = read_under(stop, vendor)
    assert stop.waiting.wait(30)  # the 429's ten minutes
    stop.set()
    thread.join(30)
    assert not thread.is_alive()
    assert outcome["error"] == f"github: GET {BASE}/items: stopped: the reads of this thread were ended"
    assert vendor.requests_sent == 1


def test_without_a_stop_pause_sleeps_and_a_set_stop_sends_nothing(mocked, slept):
    add(mocked)
    vendor = client(slept)
    assert vendor.get("/items").body == {"ok": True}  # no Stop in this thread: as always
    stop = Stop()
    stop.set()
    with stop.applied(), pytest.raises(VendorHttpError, match="stopped"):
        vendor.get("/items")
    assert vendor.requests_sent == 1
    assert Stop.of_thread() is None
    pause(0)
