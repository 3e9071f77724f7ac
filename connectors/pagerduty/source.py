"""The `pagerduty` source: PagerDuty incidents updated in a window, as canonical incident records.

`fetch("incidents", start, end)` reads two listings (client.py) and merges them:
(c) incidents open now (triggered or acknowledged): among them those opened in the window and not yet
    resolved, and those opened before it and acknowledged, or changed in priority or urgency, in it;
(b) incidents resolved at or after `start`, whatever their creation (one opened two months ago and resolved
    today): the resolved listing, newest resolution first, read back to the first page that ends before `start`.
Together they hold every incident created in the window (it is resolved since, or open now), every incident
resolved in it, and every open one: no blind spot, and no incident read twice, short of one resolved between
the two reads. (c) is read first, so that one is in both listings (kept once, at its newest), not in neither.
Fallback: (b) cannot be split by time, only by service; when it would pass PagerDuty's 10,000-offset cap even
for one service (`ListingTooLarge`: a backfill of an old window, with every later resolution to page through),
it is replaced by two creation listings, which can always be split by time:
(a) incidents created in [start, end): `since`/`until`, in chunks of at most `max_range_days`;
(a') incidents created in the `max_range_days` before `start` and resolved now (`statuses[]=resolved`), those
    resolved at or after `start` kept;
plus (c) as before. Its one blind spot: an incident opened more than `max_range_days` before the window and
resolved in it is missed, on the fallback path only: (a') looks back `max_range_days`, the longest creation
range PagerDuty serves in one request, and no further. What even the fallback cannot split (over 10,000
incidents created in one second) raises `ListingTooLarge`, never a truncated window.
Each incident is kept once (its newest updated_at), then the merged set is filtered by one rule: an incident
counts as updated in [start, end) when its opened_at, its resolved_at or its canonical updated_at (updated_at,
else last_status_change_at, else created_at) lies in the window. So an incident created or resolved in the
window is kept even when PagerDuty's updated_at has moved past the window since (a record fetched late is
still that record: the warehouse keeps the newest version), and one that only happens to share a listed page
(resolved just before `start`) is dropped unless it changed in the window. A row with no readable time at all
is kept, for `normalise` to reject with its reason.
Not covered (either path): a resolved incident edited after its resolution (a note; a priority, so its
severity) that is neither created nor resolved in the window: PagerDuty offers no listing by updated_at.

Each fetch reads the window afresh; the cursor returned is `connectors.base.read_through` (how far it has read).
Requests per window: one per 100 incidents resolved since `start` (at least one; one more when their count is
a whole number of pages and older resolutions exist: the listing stops at the first page ending before
`start`), one per 100 open incidents (at least one): two for a quiet day, and about the minimum the page size
allows plus one on a backfill. The
fallback costs the requests of (b) that reached the cap, then one per 100 incidents created in the window (at
least one per chunk of `max_range_days`), one per 100 resolved ones created in the `max_range_days` before it
(at least one) and those of (c).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd

from connectors.base import (
    SourceBatch,
    SourceContext,
    SourceError,
    credential,
    empty_batch,
    in_window,
    records_read_through,
    utc,
)
from connectors.http import VendorAuthError, VendorHttpError, http_status, in_section, pause
from connectors.pagerduty.client import Incident, ListingTooLarge, PagerDutyClient
from connectors.pagerduty.config import PagerDutyConfig
from connectors.pagerduty.extract import incident_rows
from connectors.records import normalise, parse_utc
from connectors.services import Services, vendor_record_services

SECTION = "sources.pagerduty"
WINDOW_COLUMNS = ("opened_at", "resolved_at", "updated_at")


@dataclass
class PagerDutySource:
    """PagerDuty incidents; see the module docstring."""

    section: PagerDutyConfig
    client: PagerDutyClient
    services: Services
    name: str = "pagerduty"

    def check(self) -> None:
        """One authenticated request: a refused token stops the run before anything is written."""
        try:
            self.client.probe()
        except VendorAuthError as error:
            status = http_status(error)
            raise SourceError(f"{SECTION}: PagerDuty refused the token in {self.section.token_env} "
                              f"(HTTP {status}): check the API key and its access") from None  # fmt: skip
        except VendorHttpError as error:
            raise in_section(error, SECTION) from None

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds this source reads."""
        return ("incidents",)

    @records_read_through
    def fetch(self, kind: str, start: pd.Timestamp, end: pd.Timestamp, cursor: str | None = None) -> SourceBatch:
        """Incidents updated in [start, end) (module docstring); other kinds: none."""
        if kind != "incidents":
            return empty_batch(kind)
        start, end = utc(start), utc(end)
        if end <= start:
            return empty_batch(kind)
        try:
            raw = self.client.open_incidents()  # first: an incident resolved meanwhile is then in both, not neither
            raw += self._resolved(start, end)
        except VendorHttpError as error:
            raise in_section(error, SECTION) from None
        rows = incident_rows(raw, self.services, self.section.severity_by_priority,
                             self.section.severity_by_urgency)  # fmt: skip
        rows = rows[touched_in_window(rows, start, end)]
        if rows.empty:
            return empty_batch(kind)
        known = vendor_record_services(self.services)
        result = normalise("incidents", rows, known)
        return SourceBatch(result.good, result.rejected, result.conflicting_duplicates)

    def _resolved(self, start: pd.Timestamp, end: pd.Timestamp) -> list[Incident]:
        """(b), else, when it passes the offset cap even split by service, (a) + (a') (module docstring)."""
        try:
            return self.client.resolved_since(start)
        except ListingTooLarge:
            return self.client.created(start, end) + self.client.resolved_since_by_creation(start)


def pagerduty_source(
    section: PagerDutyConfig,
    context: SourceContext,
    environ: Mapping[str, str] | None = None,
    *,
    sleep: Callable[[float], None] = pause,
) -> PagerDutySource:
    """The source of `sources.pagerduty`, its token read from the variable `token_env` names."""
    token = credential(section.token_env, f"{SECTION}.token_env", environ)
    client = PagerDutyClient(section.base_url, token, service_ids=section.services,
                             max_range_days=section.max_range_days, sleep=sleep, limits=section.limits)  # fmt: skip
    return PagerDutySource(section, client, context.services)


def touched_in_window(rows: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Rows opened, resolved or updated in [start, end), and rows with no readable time (to be rejected)."""
    inside = pd.Series(False, index=rows.index)
    readable = pd.Series(False, index=rows.index)
    for column in WINDOW_COLUMNS:
        stamps = parse_utc(rows[column])
        inside |= in_window(stamps, start, end).fillna(False).astype(bool)
        readable |= stamps.notna()
    return inside | ~readable

