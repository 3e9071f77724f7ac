"""The one rule that makes every vendor listing end: `Listing.next_page` is asked before each page after the first.

A vendor's page tells whether another follows (a token, a cursor, `more`, a Link header), and a faulty vendor can
say so for ever: a Jira `nextPageToken` new every page over the same issues, a GitHub `endCursor` that moves while
the pages come back empty, a PagerDuty offset answered with the same page again. A listing stops, with a
`PagingError` naming the source, the request and what the vendor did, when another page is promised after

- a page that repeats the one before it,
- a page that brings no record not read before (an empty page included), or
- the ceiling: `connectors.limits.page_ceiling` pages (the configured `max_pages`, lower where the vendor
  reported how many records the listing holds).

Records are told apart by a key (their id); a record without one counts as new.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

from connectors.http import VendorHttpError
from connectors.limits import page_ceiling


class PagingError(VendorHttpError):
    """A listing that does not end the way its vendor says it will: `source: METHOD endpoint: what it did`."""


def record_id(field: str) -> Callable[[Any], Hashable | None]:
    """A record's key: its `field` as text, None for a record without one (or not a mapping)."""

    def key(record: Any) -> Hashable | None:
        value = record.get(field) if isinstance(record, dict) else None
        return None if value is None or value == "" else str(value)

    return key


class Listing:
    """Accounts one listing's pages; `where` is `source: METHOD endpoint` (what messages start with)."""

    def __init__(self, where: str, max_pages: int, key: Callable[[Any], Hashable | None], *, noun: str = "records"):
        self.where = where
        self.ceiling = max_pages
        self.max_pages = max_pages
        self.key = key
        self.noun = noun
        self.pages = 0
        self.seen: set[Hashable] = set()
        self._last: list[Hashable | None] | None = None
        self._stuck: str | None = None

    def total(self, records: Any, page_size: int) -> None:
        """The vendor said how many records the listing holds: lower the ceiling to what they need."""
        if isinstance(records, int) and not isinstance(records, bool):
            self.ceiling = page_ceiling(self.max_pages, records, page_size)

    def read(self, page: Iterable[Any]) -> None:
        """Account a page that was read (whether or not another follows)."""
        self.pages += 1
        keys = [self.key(record) for record in page]
        repeated = bool(keys) and None not in keys and keys == self._last
        fresh = [key for key in keys if key is None or key not in self.seen]
        self.seen.update(key for key in keys if key is not None)
        self._last = keys
        page_number = self.pages
        self._stuck = (f"page {page_number} repeated page {page_number - 1}" if repeated
                       else f"page {page_number} was empty" if not keys
                       else f"page {page_number} held only {self.noun} read before ({len(keys)})" if not fresh
                       else None)  # fmt: skip

    def next_page(self) -> None:
        """Before asking for the page after the last one read: raises PagingError when the listing must stop."""
        if self._stuck:
            raise PagingError(f"{self.where}: {self._stuck}, yet the vendor promises another: the listing does not "
                              "advance; stopped")  # fmt: skip
        if self.pages >= self.ceiling:
            because = ("more than the vendor's own total of records needs" if self.ceiling < self.max_pages
                       else "the most one listing may take (raise limits.max_pages for a listing truly that long)")
            raise PagingError(f"{self.where}: the vendor still promises more after {self.pages:,} pages of "
                              f"{len(self.seen):,} {self.noun}, {because}; stopped")  # fmt: skip
