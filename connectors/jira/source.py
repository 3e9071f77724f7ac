"""The `jira` source: Jira Cloud issues updated in a window, as canonical incident and change records.

`fetch(kind, start, end)` reads the issues the configured JQL of the kind selects (`incident_jql` for
"incidents", `change_jql` for "changes"; none configured: no records of that kind, and no request), bounded to
those updated in [start, end) by epoch milliseconds (zone-free: a date would be read in the API user's time
zone) and ordered by updated, key: `(<jql>) AND updated >= <ms> AND updated < <ms> ORDER BY updated ASC, key ASC`.
The search asks only for the fields extract.py maps, with the changelog embedded, and is paged by token to its
last page. Where a done issue has no resolutiondate and its embedded changelog is cut short, the full status
histories of all such issues are fetched in batch (one bulkfetch request per 1,000 issues). A configured field
*name* (`change_type_field`, `service_field`) is turned into its id with one request of the field list per
source object (the run); an id (`customfield_10042`) needs none.
What comes back is filtered again by the half-open window on `updated` (a row whose updated cannot be read is
kept, for `normalise` to reject with its reason), mapped (extract.py) and normalised: a malformed issue is
rejected, the rest of its page lands.

Each fetch reads the window afresh; the cursor returned is `connectors.base.read_through` (how far it has read).
Requests per window and kind: one per `page_size` issues (at least one; more when Jira answers short pages),
plus one bulkfetch per 1,000 done issues with a cut-short changelog and no resolutiondate (usually none), plus
the field list once per run when a field is configured by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

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
from connectors.jira.client import JiraClient, UnknownField, window_jql
from connectors.jira.config import JiraConfig
from connectors.jira.extract import change_rows, incident_rows, needs_full_changelog, search_fields
from connectors.records import normalise, parse_utc
from connectors.services import Services, vendor_record_services

SECTION = "sources.jira"
KINDS = ("incidents", "changes")


@dataclass
class JiraSource:
    """Jira incidents and change tickets; see the module docstring."""

    section: JiraConfig
    client: JiraClient
    services: Services
    name: str = "jira"
    _field_ids: dict[str, str] = field(default_factory=dict, repr=False)

    def check(self) -> None:
        """One authenticated request (`myself`): refused credentials stop the run before anything is written."""
        try:
            self.client.myself()
        except VendorAuthError as error:
            raise self._refused(error) from None
        except VendorHttpError as error:
            raise in_section(error, SECTION) from None

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds this source reads: those with a JQL configured."""
        return tuple(kind for kind in KINDS if self._jql(kind) is not None)

    def _jql(self, kind: str) -> str | None:
        return {"incidents": self.section.incident_jql, "changes": self.section.change_jql}.get(kind)

    @records_read_through
    def fetch(self, kind: str, start: pd.Timestamp, end: pd.Timestamp, cursor: str | None = None) -> SourceBatch:
        """Incidents or changes updated in [start, end) (module docstring); other kinds: none."""
        jql = self._jql(kind)
        if jql is None:
            return empty_batch(kind)
        start, end = utc(start), utc(end)
        if end <= start:
            return empty_batch(kind)
        try:
            service_field = self._field_id("service_field") if self.section.service_field else None
            type_field = self._field_id("change_type_field") if kind == "changes" else None
            fields = search_fields(kind, change_type_field=type_field, service_field=service_field)
            issues = self.client.search(window_jql(jql, start, end), fields)
            cut_short = needs_full_changelog(issues, kind, self.section)
            histories = self.client.status_histories(cut_short) if cut_short else {}
        except VendorAuthError as error:
            raise self._refused(error) from None
        except VendorHttpError as error:
            raise in_section(error, SECTION) from None
        if kind == "incidents":
            rows = incident_rows(issues, self.services, self.section, histories, service_field=service_field)
        else:
            rows = change_rows(issues, self.services, self.section, type_field or "", histories,
                               service_field=service_field)  # fmt: skip
        rows = rows[updated_in_window(rows, start, end)]
        if rows.empty:
            return empty_batch(kind)
        known = vendor_record_services(self.services)
        result = normalise(kind, rows, known)
        return SourceBatch(result.good, result.rejected, result.conflicting_duplicates)

    def _field_id(self, setting: str) -> str:
        """The id of the field `sources.jira.<setting>` names (the field list is read once, for both settings)."""
        if setting not in self._field_ids:
            try:
                self._field_ids[setting] = self.client.field_id(getattr(self.section, setting))
            except UnknownField as error:
                raise SourceError(f"{SECTION}.{setting}: {error}") from None
        return self._field_ids[setting]

    def _refused(self, error: VendorAuthError) -> SourceError:
        status = http_status(error)
        return SourceError(f"{SECTION}: Jira refused the credentials in {self.section.email_env} and "
                           f"{self.section.token_env} (HTTP {status}): check the account's email address, its "
                           "API token and its access to the projects")  # fmt: skip


def jira_source(
    section: JiraConfig,
    context: SourceContext,
    environ: Mapping[str, str] | None = None,
    *,
    sleep: Callable[[float], None] = pause,
) -> JiraSource:
    """The source of `sources.jira`, its email and API token read from the variables `email_env` and `token_env`
    name."""
    email = credential(section.email_env, f"{SECTION}.email_env", environ)
    token = credential(section.token_env, f"{SECTION}.token_env", environ)
    client = JiraClient(section.base_url, email, token, page_size=section.page_size, sleep=sleep,
                        limits=section.limits)
    return JiraSource(section, client, context.services)


def updated_in_window(rows: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Rows updated in [start, end), and rows whose updated cannot be read (to be rejected or kept undated)."""
    stamps = parse_utc(rows["updated_at"])
    return in_window(stamps, start, end).fillna(False).astype(bool) | stamps.isna()

