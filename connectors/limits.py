"""`sources.<vendor>.limits`: how much a vendor may cost a run before the run stops (README "Bad input").

A vendor that misbehaves — pages that never end, an answer that drips one byte at a time, an answer of hundreds of
megabytes — stops its run with one line naming the source and what the vendor did, instead of hanging it or
filling the memory. The defaults are far above what a healthy vendor needs; raise one for a vendor that is
healthy and truly that large or slow (a first backfill of years of a big Jira). Every vendor section takes them:

- `max_pages`: the most pages one listing may take (a listing: one kind's records in a window, or one
  repository's). Where the vendor reports a total (PagerDuty `total`, GitHub `totalCount`, ServiceNow
  `X-Total-Count`) the ceiling is lower: what that total needs, twice over, plus `PAGE_SLACK` pages;
- `request_deadline_seconds`: the longest one request may take from sending it to the last byte of its answer
  (the read timeout alone lets a server that sends a byte every 30 s hold a request for ever); a request past it
  is abandoned and retried like a timeout;
- `time_budget_minutes`: the longest one source may spend on one step of a run (its pre-flight check and every
  record kind it reads over the run's window, in the facts step; retries and rate-limit waits included). The sources
  are read at once, so this bounds the whole night's sync as well;
- `max_body_mb`: the largest answer read (a vendor page of 100 records is a few MB).
"""

from __future__ import annotations

import math

from pydantic import Field

from scoring.config import Model

MAX_PAGES = 10_000
REQUEST_DEADLINE_SECONDS = 120.0
TIME_BUDGET_MINUTES = 120.0
MAX_BODY_MB = 64
PAGE_SLACK = 5  # pages past what a reported total needs (twice over), for records added while the listing is read


class Limits(Model):
    max_pages: int = Field(MAX_PAGES, ge=1, le=10_000_000)
    request_deadline_seconds: float = Field(REQUEST_DEADLINE_SECONDS, gt=0, le=86_400)
    time_budget_minutes: float = Field(TIME_BUDGET_MINUTES, gt=0, le=7 * 24 * 60)
    max_body_mb: int = Field(MAX_BODY_MB, ge=1, le=4096)

    @property
    def max_body_bytes(self) -> int:
        return self.max_body_mb * 1024 * 1024

    @property
    def time_budget_seconds(self) -> float:
        return self.time_budget_minutes * 60


class VendorConfig(Model):
    """What every vendor section has besides its own keys."""

    limits: Limits = Field(default_factory=Limits)


def page_ceiling(max_pages: int, total: int | None, page_size: int) -> int:
    """The most pages a listing may take: `max_pages`, or fewer when the vendor said how many records it holds."""
    if total is None or total < 0 or page_size < 1:
        return max_pages
    return min(max_pages, 2 * math.ceil(total / page_size) + PAGE_SLACK)
