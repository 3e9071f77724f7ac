"""ServiceNow's Table API (the collect step): raw record dicts of a table and the names behind reference sys_ids,
nothing of canonical records.

Every request is `GET {base_url}/api/now/table/{table}` through the one `VendorClient` (retries, Retry-After, 429
and 5xx), with Basic auth (`user:password`, in the session's header only), `Accept: application/json`,
`sysparm_display_value=false` (raw values: times as UTC `YYYY-MM-DD HH:MM:SS`, choices as their stored value such
as "1") and `sysparm_exclude_reference_link=true` (a reference is its plain sys_id, not a {link, value} object):
- a listing of the records updated in [start, end): `sysparm_query` bounds `sys_updated_on` by plain UTC datetimes,
  `sysparm_fields` names only the fields asked, `sysparm_limit` is `page_size`;
- a lookup of references: `sys_idINa,b,c` with `sysparm_fields=sys_id,<field>`, at most `LOOKUP_BATCH` ids a
  request, each id asked once per client (the answers, found or not, are kept for the run).

ServiceNow's quirks handled here:
- A date in an encoded query built with `javascript:gs.dateGenerate(...)` is read in the API user's time zone;
  a plain `YYYY-MM-DD HH:MM:SS` is compared with the stored UTC value, so the window is sent that way. Stored
  times are whole seconds: a record at second S is at or after `start` exactly when S >= ceil(start), and before
  `end` exactly when S < ceil(end), so both bounds are ceilings and the window needs no second filter.
- Offset paging (`sysparm_offset`) shifts the rows that follow a row updated during the scan: one row is skipped,
  or read twice. Pages are read by keyset instead, in the order `ORDERBYsys_updated_on^ORDERBYsys_id`: after a
  page ending at (T, id) the next asks `sys_updated_on>T^sys_updated_on<end^NQsys_updated_on=T^sys_id>id` (same
  order, `sysparm_offset=0`). A row updated meanwhile leaves its old place without moving the others, and is read
  again at its new place only if that is still in the window (the newer version: `normalise` keeps it).
- The last page: a page whose Link header names no rel="next" (the header is sent with every list answer); an
  answer without a Link header ends at its first page shorter than `sysparm_limit`. A short page with a next link
  is not the end: ServiceNow drops the rows that access controls hide after applying the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import requests

from connectors.base import utc
from connectors.http import Page, VendorClient, VendorHttpError, basic_auth_headers, pause
from connectors.limits import Limits
from connectors.paging import Listing, record_id

SOURCE = "servicenow"
TABLE_PATH = "api/now/table/{table}"
CI_TABLE = "cmdb_ci"  # every configuration item, business services (cmdb_ci_service) included
PAGE_SIZE = 1000
LOOKUP_BATCH = 100  # sys_ids per sys_idIN lookup: 100 ids of 32 characters keep the URL short
KEY_FIELDS = ("sys_updated_on", "sys_id")
ORDER = "ORDERBYsys_updated_on^ORDERBYsys_id"
RAW_VALUES = {"sysparm_display_value": "false", "sysparm_exclude_reference_link": "true"}
SN_TIME = "%Y-%m-%d %H:%M:%S"

Record = dict[str, Any]


class ServiceNowClient:
    """ServiceNow Table API listings and reference lookups; see the module docstring."""

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        *,
        page_size: int = PAGE_SIZE,
        sleep: Callable[[float], None] = pause,
        attempts: int = 6,
        limits: Limits | None = None,
    ):
        headers = basic_auth_headers(user, password)
        self.limits = limits or Limits()
        self.http = VendorClient(SOURCE, base_url, headers, sleep=sleep, attempts=attempts, limits=self.limits)
        self.page_size = page_size
        self._names: dict[tuple[str, str], dict[str, str | None]] = {}

    def probe(self, table: str) -> Page:
        """One cheap authenticated request (the pre-flight): raises VendorAuthError for refused credentials."""
        return self.http.get(table_path(table), {"sysparm_fields": "sys_id", "sysparm_limit": 1, **RAW_VALUES})

    def updated(self, table: str, fields: Sequence[str], start: pd.Timestamp, end: pd.Timestamp) -> list[Record]:
        """Every record of `table` updated in [start, end), oldest update first, with `fields` (and the keyset's
        sys_updated_on and sys_id), paged by keyset (module docstring)."""
        since, until = sn_time(start), sn_time(end)
        if since >= until:
            return []
        asked = ",".join(dict.fromkeys([*fields, *KEY_FIELDS]))
        query, after = window_query(since, until), None
        records: list[Record] = []
        listing = Listing(f"{SOURCE}: GET {self._endpoint(table)}", self.limits.max_pages, record_id("sys_id"))
        while True:
            params = {"sysparm_query": query, "sysparm_fields": asked, "sysparm_limit": self.page_size,
                      "sysparm_offset": 0, **RAW_VALUES}  # fmt: skip
            page = self.http.get(table_path(table), params)
            rows = self._result(page, table)
            records += rows
            listing.read(rows)
            if after is None:  # each keyset page counts what is left: the first one counts the listing
                listing.total(_total_count(page), self.page_size)
            if not _more(page, len(rows), self.page_size):
                return records
            listing.next_page()
            key = _key(rows[-1])
            stuck = ("the page's last record has no readable sys_updated_on and sys_id" if key is None
                     else "the page did not move past the one before" if after is not None and key <= after
                     else None)  # fmt: skip
            if stuck:
                raise VendorHttpError(f"{SOURCE}: GET {self._endpoint(table)}: cannot ask for the next page: {stuck}")
            query, after = keyset_query(key, until), key

    def names(self, table: str, ids: Iterable[str | None], field: str) -> dict[str, str]:
        """`field` (a CI's name, a change's number) of each record of `table` among `ids` that has one: the ids not
        asked before are looked up `LOOKUP_BATCH` at a time; an id that resolves to nothing is left out."""
        known = self._names.setdefault((table, field), {})
        wanted = [i for i in dict.fromkeys(ids) if isinstance(i, str) and i]
        missing = [i for i in wanted if i not in known]
        for offset in range(0, len(missing), LOOKUP_BATCH):
            batch = missing[offset : offset + LOOKUP_BATCH]
            params = {"sysparm_query": "sys_idIN" + ",".join(batch), "sysparm_fields": f"sys_id,{field}",
                      "sysparm_limit": len(batch), **RAW_VALUES}  # fmt: skip
            rows = self._result(self.http.get(table_path(table), params), table)
            found = {row.get("sys_id"): row.get(field) for row in rows if isinstance(row, dict)}
            for sys_id in batch:
                value = found.get(sys_id)
                known[sys_id] = (value.strip() or None) if isinstance(value, str) else None
        return {sys_id: name for sys_id in wanted if (name := known.get(sys_id))}

    def remember(self, table: str, field: str, names: Mapping[str, str]) -> None:
        """Keep `field` values already read (a listed change's number), so `names` never asks for them."""
        known = self._names.setdefault((table, field), {})
        known.update({sys_id: name for sys_id, name in names.items() if sys_id and name})

    def close(self) -> None:
        self.http.close()

    def _result(self, page: Page, table: str) -> list[Record]:
        result = page.body.get("result") if isinstance(page.body, dict) else None
        if not isinstance(result, list):
            raise VendorHttpError(f"{SOURCE}: GET {self._endpoint(table)}: the answer holds no result list")
        return result

    def _endpoint(self, table: str) -> str:
        return f"{self.http.base_url}/{table_path(table)}"


def table_path(table: str) -> str:
    return TABLE_PATH.format(table=table)


def sn_time(stamp: pd.Timestamp | str) -> str:
    """The first whole UTC second at or after `stamp`, as an encoded query compares it: `YYYY-MM-DD HH:MM:SS`."""
    return utc(stamp).ceil("s").strftime(SN_TIME)


def window_query(since: str, until: str) -> str:
    """The first page's encoded query: updated in [since, until), in keyset order."""
    return f"sys_updated_on>={since}^sys_updated_on<{until}^{ORDER}"


def keyset_query(after: tuple[str, str], until: str) -> str:
    """The next page's encoded query: after (sys_updated_on, sys_id) `after`, before `until`, in keyset order."""
    updated, sys_id = after
    return f"sys_updated_on>{updated}^sys_updated_on<{until}^NQsys_updated_on={updated}^sys_id>{sys_id}^{ORDER}"


def _key(record: Any) -> tuple[str, str] | None:
    """A record's place in the keyset order, (sys_updated_on, sys_id) as sent; None when it has none."""
    if not isinstance(record, dict):
        return None
    updated, sys_id = record.get("sys_updated_on"), record.get("sys_id")
    if not (isinstance(updated, str) and isinstance(sys_id, str) and updated and sys_id):
        return None
    try:
        datetime.strptime(updated, SN_TIME)
    except ValueError:
        return None
    return updated, sys_id


def _total_count(page: Page) -> int | None:
    """How many records the listing's query selects, from the X-Total-Count header the Table API sends."""
    value = page.headers.get("X-Total-Count", "")
    return int(value) if value.strip().isdigit() else None


def _more(page: Page, count: int, limit: int) -> bool:
    """Whether another page follows: the Link header's rel="next", else (no Link header) a full page."""
    link = page.headers.get("Link")
    if link is None:
        return count >= limit
    return any(part.get("rel") == "next" for part in requests.utils.parse_header_links(link))
