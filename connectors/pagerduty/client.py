"""PagerDuty's REST API v2 incident listings (the collect step): raw incident dicts, nothing of canonical records.

Every request is `GET {base_url}/incidents` through the one `VendorClient` (retries, Retry-After and PagerDuty's
`ratelimit-remaining`/`ratelimit-reset`), with `Authorization: Token token=<key>`, PagerDuty's v2 `Accept`,
`time_zone=UTC`, `service_ids[]` (the configured services; none: every service) and `limit=100`.

PagerDuty's quirks handled here:
- Classic offset pagination (`offset`, `more`), where `offset + limit` may not pass 10,000 (a 400 beyond). A
  listing that would go past it is never cut short: a creation listing halves its time range and reads each
  half (its first page asks `total=true`, so an oversized range is split after one request, not after 100);
  a listing over every creation time (resolved, open) is split by service ids. What cannot be split further
  (one second of creations, one service) raises `ListingTooLarge`.
- `since`/`until` filter on creation and a range over six months is refused: creation listings are read in
  chunks of at most `max_range_days`.
- `date_range=all` ignores `since`/`until`: the resolved listing (`statuses[]=resolved`,
  `sort_by=resolved_at:desc`) pages from the newest resolution back until a page ends before `start`.
  `resolved_since_by_creation` is its stand-in that can always be split by time (the source's fallback): the
  incidents created in the `max_range_days` before `start` and resolved now (`since`/`until` with
  `statuses[]=resolved`), those resolved at or after `start` kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from connectors.base import utc
from connectors.http import Page, VendorClient, VendorHttpError, http_status, pause, reset_wait
from connectors.limits import Limits
from connectors.paging import Listing, record_id

SOURCE = "pagerduty"
ACCEPT = "application/vnd.pagerduty+json;version=2"
PATH = "incidents"
PAGE_LIMIT = 100  # PagerDuty's maximum
OFFSET_CAP = 10_000  # offset + limit may not pass it
ONE_SECOND = pd.Timedelta(seconds=1)
OPEN_STATUSES = ("triggered", "acknowledged")

Incident = dict[str, Any]


class ListingTooLarge(VendorHttpError):
    """A listing longer than PagerDuty's 10,000 offset cap that cannot be split any further."""


class _Capped(Exception):
    """The listing reached the offset cap with more to read: split it and read the parts."""


class PagerDutyClient:
    """Pages of raw PagerDuty incidents for a window; see the module docstring."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        service_ids: Sequence[str] = (),
        max_range_days: int = 180,
        sleep: Callable[[float], None] = pause,
        attempts: int = 6,
        limits: Limits | None = None,
    ):
        headers = {"Authorization": f"Token token={token}", "Accept": ACCEPT}
        rate_limit = reset_wait("ratelimit-remaining", "ratelimit-reset", reset_is_epoch=False)
        self.limits = limits or Limits()
        self.http = VendorClient(SOURCE, base_url, headers, rate_limit=rate_limit, sleep=sleep, attempts=attempts,
                                 limits=self.limits)  # fmt: skip
        self.service_ids = list(service_ids)
        self.max_range = pd.Timedelta(days=max_range_days)

    def probe(self) -> Page:
        """One cheap authenticated request (the pre-flight): raises VendorAuthError for a refused token."""
        return self.http.get(PATH, {"limit": 1, "time_zone": "UTC"})

    def created(self, start: pd.Timestamp, end: pd.Timestamp, statuses: Sequence[str] = ()) -> list[Incident]:
        """Every incident created in [start, end) (widened to whole seconds), oldest first per chunk; with
        `statuses`, only those whose status is one of them now."""
        start, end = utc(start).floor("s"), utc(end).ceil("s")
        incidents: list[Incident] = []
        while start < end:
            stop = min(start + self.max_range, end)
            incidents += self._created(start, stop, list(statuses))
            start = stop
        return incidents

    def resolved_since(self, start: pd.Timestamp) -> list[Incident]:
        """Resolved incidents, newest resolution first, down to the first page whose last one resolved before
        `start` (so: every incident resolved at or after `start`, some before it, whatever their creation)."""
        start = utc(start)
        params = {"date_range": "all", "statuses[]": ["resolved"], "sort_by": "resolved_at:desc"}
        return self._by_services(params, f"resolved since {iso(start)}", lambda page: _resolved_before(page[-1], start))

    def resolved_since_by_creation(self, start: pd.Timestamp) -> list[Incident]:
        """Incidents created in the `max_range_days` before `start` and resolved at or after it: read by creation,
        so splittable by time (the stand-in for `resolved_since` when that passes the offset cap). Blind to an
        incident created earlier still."""
        start = utc(start)
        older = self.created(start - self.max_range, start, ["resolved"])
        return [incident for incident in older if not _resolved_before(incident, start)]

    def open_incidents(self) -> list[Incident]:
        """Every incident triggered or acknowledged now, whatever its creation."""
        params = {"date_range": "all", "statuses[]": list(OPEN_STATUSES), "sort_by": "created_at:asc"}
        return self._by_services(params, "open", None)

    def close(self) -> None:
        self.http.close()

    def _created(self, since: pd.Timestamp, until: pd.Timestamp, statuses: list[str]) -> list[Incident]:
        scope = self._scope(self.service_ids)
        params = {"since": iso(since), "until": iso(until), "sort_by": "created_at:asc", **scope}
        if statuses:
            params["statuses[]"] = statuses
        try:
            return self._listing(params, None)
        except _Capped:
            middle = (since + (until - since) / 2).floor("s")
            if middle <= since:
                what = f"{'/'.join(statuses)} incidents" if statuses else "incidents"
                raise ListingTooLarge(f"{SOURCE}: GET {self._endpoint()}: more than {OFFSET_CAP:,} {what} created "
                                      f"in [{iso(since)}, {iso(until)}): PagerDuty pages no further than offset "
                                      f"{OFFSET_CAP:,} and one second cannot be split") from None  # fmt: skip
            return self._created(since, middle, statuses) + self._created(middle, until, statuses)

    def _by_services(
        self, params: dict[str, Any], what: str, stop: Callable[[list[Incident]], bool] | None
    ) -> list[Incident]:
        """A listing over all creation times, split by service ids when it would pass the offset cap."""

        def read(ids: list[str]) -> list[Incident]:
            try:
                return self._listing({**params, **self._scope(ids)}, stop)
            except _Capped:
                if len(ids) <= 1:
                    scope = f"of service {ids[0]}" if ids else "of all services (configure sources.pagerduty.services)"
                    raise ListingTooLarge(f"{SOURCE}: GET {self._endpoint()}: more than {OFFSET_CAP:,} incidents "
                                          f"{what} {scope}: PagerDuty pages no further than offset "
                                          f"{OFFSET_CAP:,}") from None  # fmt: skip
                half = len(ids) // 2
                return read(ids[:half]) + read(ids[half:])

        return read(self.service_ids)

    def _listing(self, params: Mapping[str, Any], stop: Callable[[list[Incident]], bool] | None) -> list[Incident]:
        """All pages of one listing (or up to the page `stop` accepts); raises _Capped at the offset cap, PagingError
        (connectors.paging) for a listing that does not advance."""
        incidents: list[Incident] = []
        listing = Listing(f"{SOURCE}: GET {self._endpoint()}", self.limits.max_pages, record_id("id"),
                          noun="incidents")  # fmt: skip
        offset = 0
        while True:
            limit = min(PAGE_LIMIT, OFFSET_CAP - offset)
            if limit <= 0:
                raise _Capped
            query = {**params, "time_zone": "UTC", "limit": limit, "offset": offset}
            if offset == 0 and stop is None:
                query["total"] = "true"  # tells at once whether the whole listing fits under the cap
            try:
                body = self.http.get(PATH, query).body
            except VendorHttpError as error:
                if offset > 0 and http_status(error) == 400:  # the cap, said the vendor's way
                    raise _Capped from None
                raise
            page = body.get("incidents") if isinstance(body, dict) else None
            if not isinstance(page, list):
                raise VendorHttpError(f"{SOURCE}: GET {self._endpoint()}: the answer holds no incidents list")
            incidents += page
            listing.read(page)
            total = body.get("total")
            if offset == 0:  # only the first page is asked for the total
                if stop is None and isinstance(total, int) and total > OFFSET_CAP:
                    raise _Capped
                listing.total(total, PAGE_LIMIT)
            if not body.get("more") or not page or (stop is not None and stop(page)):
                return incidents
            listing.next_page()
            offset += len(page)

    def _scope(self, ids: list[str]) -> dict[str, Any]:
        return {"service_ids[]": list(ids)} if ids else {}

    def _endpoint(self) -> str:
        return f"{self.http.base_url}/{PATH}"


def iso(stamp: pd.Timestamp) -> str:
    """A whole-second UTC timestamp as PagerDuty's `since`/`until` take it."""
    return utc(stamp).strftime("%Y-%m-%dT%H:%M:%SZ")


def _resolved_before(incident: Any, start: pd.Timestamp) -> bool:
    """Whether an incident of the resolved listing resolved before `start` (unreadable: no)."""
    if not isinstance(incident, dict):
        return False
    value = incident.get("resolved_at") or incident.get("last_status_change_at")
    try:
        return bool(value) and utc(value) < start
    except (TypeError, ValueError):
        return False
