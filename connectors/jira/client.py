"""Jira Cloud's platform REST API v3 (the collect step): raw issue dicts, status histories and the field list,
nothing of canonical records.

Every request goes through the one `VendorClient` (retries, Retry-After, 429 and 5xx), with Basic auth
(`email:api_token`, in the session's header only) and `Accept: application/json`:
- `GET /rest/api/3/myself`: the pre-flight (one cheap authenticated request; it also tells the user's time zone);
- `GET /rest/api/3/field`: every field the user can see, read once per client, to turn a configured field *name*
  into its id (a `customfield_NNNNN` id is used as is, without the request);
- `GET /rest/api/3/search/jql`: issues by JQL, with `fields` (only those asked), `maxResults` (`page_size`),
  `expand=changelog`, paged by `nextPageToken` only: Jira may answer with fewer issues than asked (it does when
  many fields are asked), so a short page says nothing; the last page has no token (or `isLast`). The old
  `/rest/api/3/search` (startAt/total) is gone (410) and never used;
- `POST /rest/api/3/changelog/bulkfetch`: the status histories of up to 1,000 issues a request (`fieldIds`
  ["status"], `maxResults` 10,000, paged by the body's `nextPageToken`), for the issues whose embedded changelog
  is cut short (the search embeds only the most recent histories).

Jira's quirks handled here:
- JQL dates without a zone are read in the API *user's* time zone (an account in Pacific/Auckland reads
  "2026-03-05" as 2026-03-04T11:00Z): `window_jql` bounds `updated` by epoch milliseconds, which are zone-free,
  floor of `start` and ceiling of `end` (the source filters the half-open window again on what comes back).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from connectors.base import utc
from connectors.http import VendorClient, VendorHttpError, basic_auth_headers, pause
from connectors.limits import Limits
from connectors.paging import Listing, record_id

SOURCE = "jira"
MYSELF = "rest/api/3/myself"
FIELD = "rest/api/3/field"
SEARCH = "rest/api/3/search/jql"
BULK_CHANGELOG = "rest/api/3/changelog/bulkfetch"
BULK_ISSUES = 1000  # issueIdsOrKeys: maxItems
BULK_HISTORIES = 10_000  # maxResults: maximum
CUSTOM_FIELD_ID = re.compile(r"^customfield_\d+$")
# A trailing ORDER BY of a configured JQL (no quote after it): the window's own order replaces it.
_ORDER_BY = re.compile(r"\s*\border\s+by\b[^\"']*$", re.IGNORECASE)

Issue = dict[str, Any]
History = dict[str, Any]


class UnknownField(LookupError):
    """A configured field name that no field of `GET /rest/api/3/field` has (or more than one has)."""


class JiraClient:
    """Jira Cloud issues, histories and fields; see the module docstring."""

    def __init__(
        self,
        base_url: str,
        email: str,
        token: str,
        *,
        page_size: int = 100,
        sleep: Callable[[float], None] = pause,
        attempts: int = 6,
        limits: Limits | None = None,
    ):
        headers = basic_auth_headers(email, token)
        self.limits = limits or Limits()
        self.http = VendorClient(SOURCE, base_url, headers, sleep=sleep, attempts=attempts, limits=self.limits)
        self.page_size = page_size
        self._fields: list[dict[str, Any]] | None = None

    def myself(self) -> dict[str, Any]:
        """The API user (one cheap authenticated request): raises VendorAuthError for refused credentials."""
        body = self.http.get(MYSELF).body
        if not isinstance(body, dict):
            raise VendorHttpError(f"{SOURCE}: GET {self._endpoint(MYSELF)}: the answer is not a user")
        return body

    def fields(self) -> list[dict[str, Any]]:
        """Every field the user can see (`id`, `name`, `custom`, ...), read once per client."""
        if self._fields is None:
            body = self.http.get(FIELD).body
            if not isinstance(body, list):
                raise VendorHttpError(f"{SOURCE}: GET {self._endpoint(FIELD)}: the answer holds no list of fields")
            self._fields = [field for field in body if isinstance(field, dict)]
        return self._fields

    def field_id(self, configured: str) -> str:
        """The id of a field named `configured` (compared case-insensitively), or `configured` itself when it is a
        custom field id or the id of a listed field; UnknownField when no field or several have that name."""
        configured = configured.strip()
        if CUSTOM_FIELD_ID.match(configured):
            return configured
        listed = self.fields()
        if any(field.get("id") == configured for field in listed):
            return configured
        named = [str(field.get("id")) for field in listed
                 if str(field.get("name") or "").strip().lower() == configured.lower() and field.get("id")]  # fmt: skip
        if len(named) == 1:
            return named[0]
        if named:
            raise UnknownField(f"{len(named)} Jira fields are named '{configured}' ({', '.join(named)}): "
                               "give the id of the one to read")  # fmt: skip
        raise UnknownField(f"no Jira field is named '{configured}' (GET {self._endpoint(FIELD)} lists "
                           f"{len(listed)}): name a field the API user can see, or give its id "
                           "(customfield_NNNNN)")  # fmt: skip

    def search(self, jql: str, fields: Sequence[str], *, expand: str | None = "changelog") -> list[Issue]:
        """Every issue `jql` selects, with only `fields`, page after page by `nextPageToken` (connectors.paging:
        the search reports no total, so `limits.max_pages` is its ceiling)."""
        params: dict[str, Any] = {"jql": jql, "fields": ",".join(fields), "maxResults": self.page_size}
        if expand:
            params["expand"] = expand
        issues: list[Issue] = []
        listing = Listing(f"{SOURCE}: GET {self._endpoint(SEARCH)}", self.limits.max_pages, record_id("id"),
                          noun="issues")  # fmt: skip
        token: str | None = None
        while True:
            body = self.http.get(SEARCH, {**params, "nextPageToken": token} if token else params).body
            page = body.get("issues") if isinstance(body, dict) else None
            if not isinstance(page, list):
                raise VendorHttpError(f"{SOURCE}: GET {self._endpoint(SEARCH)}: the answer holds no issues list")
            issues += page
            listing.read(page)
            token = body.get("nextPageToken") or None
            if token is None or body.get("isLast") is True:
                return issues
            listing.next_page()

    def status_histories(self, issues: Sequence[str]) -> dict[str, list[History]]:
        """The full status history of each issue (ids or keys), keyed by the issue id Jira answers with: one
        request per 1,000 issues (more only when Jira pages their histories)."""
        histories: dict[str, list[History]] = {}
        wanted = list(dict.fromkeys(issues))
        for first in range(0, len(wanted), BULK_ISSUES):
            request: dict[str, Any] = {"issueIdsOrKeys": wanted[first : first + BULK_ISSUES], "fieldIds": ["status"],
                                       "maxResults": BULK_HISTORIES}  # fmt: skip
            listing = Listing(f"{SOURCE}: POST {self._endpoint(BULK_CHANGELOG)}", self.limits.max_pages,
                              _history_key, noun="histories")  # fmt: skip
            while True:
                body = self.http.post(BULK_CHANGELOG, request).body
                logs = body.get("issueChangeLogs") if isinstance(body, dict) else None
                if not isinstance(logs, list):
                    raise VendorHttpError(f"{SOURCE}: POST {self._endpoint(BULK_CHANGELOG)}: the answer holds no "
                                          "issueChangeLogs list")  # fmt: skip
                page = []
                for log in logs:
                    if isinstance(log, dict) and log.get("issueId") is not None:
                        changes = log.get("changeHistories")
                        kept = [history for history in changes if isinstance(history, dict)] if isinstance(
                            changes, list) else []  # fmt: skip
                        histories.setdefault(str(log["issueId"]), []).extend(kept)
                        page += [(str(log["issueId"]), history.get("id")) for history in kept]
                listing.read(page)
                token = body.get("nextPageToken") or None
                if token is None:
                    break
                listing.next_page()
                request = {**request, "nextPageToken": token}
        return histories

    def close(self) -> None:
        self.http.close()

    def _endpoint(self, path: str) -> str:
        return f"{self.http.base_url}/{path}"


def _history_key(issue_and_history: tuple[str, Any]) -> tuple[str, str] | None:
    """A status history's key on a bulkfetch page: (issue id, history id); None without a history id."""
    issue, history = issue_and_history
    return None if history is None else (issue, str(history))


def window_jql(jql: str, start: pd.Timestamp, end: pd.Timestamp) -> str:
    """`jql` bounded to issues updated in [start, end), by epoch milliseconds (zone-free), oldest first."""
    selection = _ORDER_BY.sub("", jql.strip())
    return (f"({selection}) AND updated >= {epoch_ms(start)} AND updated < {epoch_ms(end, ceiling=True)} "
            "ORDER BY updated ASC, key ASC")  # fmt: skip


def epoch_ms(stamp: pd.Timestamp, *, ceiling: bool = False) -> int:
    """Milliseconds since the epoch of a timestamp (naive: UTC), rounded down (or up)."""
    nanoseconds = utc(stamp).value
    return -(-nanoseconds // 1_000_000) if ceiling else nanoseconds // 1_000_000


