"""The `servicenow` source: ServiceNow incidents and change requests updated in a window, as canonical records.

`fetch("incidents", start, end)` reads the `incident_table` records whose `sys_updated_on` lies in [start, end),
`fetch("changes", ...)` those of `change_table` (client.py: plain UTC bounds, keyset paging), then resolves their
references in batches, each sys_id once per source object (the run):
- `cmdb_ci` and `business_service` to CI names (one `sys_idIN` lookup on cmdb_ci per 100 distinct CIs not seen
  before), for the service (`services.<name>.servicenow_cis`);
- an incident's `caused_by` to the change request's number (one lookup on `change_table` per 100 changes
  neither seen before nor listed by a `fetch("changes")` of this source object).
The records are mapped by extract.py and validated by `connectors.records.normalise`: a malformed record (no
number, an unreadable opened_at, a priority or close code the config does not map) is rejected with its reason,
the rest of its page lands. Other kinds: none, and nothing is sent.

Each fetch reads the window afresh; the cursor returned is `connectors.base.read_through` (how far it has read).
Requests per window and kind: one per `page_size` records updated in it (at least one; one more when their count
is a whole number of pages and the answers carry no Link header), plus the lookups above (none once every
referenced sys_id is known).
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
    records_read_through,
    utc,
)
from connectors.http import VendorAuthError, VendorHttpError, http_status, in_section, pause
from connectors.records import normalise
from connectors.servicenow.client import CI_TABLE, ServiceNowClient
from connectors.servicenow.config import ServiceNowConfig
from connectors.servicenow.extract import (
    CHANGE_FIELDS,
    CI_FIELDS,
    INCIDENT_FIELDS,
    change_rows,
    incident_rows,
    numbers_by_sys_id,
    reference_ids,
)
from connectors.services import Services, vendor_record_services

SECTION = "sources.servicenow"
KINDS = ("incidents", "changes")


@dataclass
class ServiceNowSource:
    """ServiceNow incidents and change requests; see the module docstring."""

    section: ServiceNowConfig
    client: ServiceNowClient
    services: Services
    name: str = "servicenow"

    def check(self) -> None:
        """One authenticated request: refused credentials stop the run before anything is written."""
        try:
            self.client.probe(self.section.incident_table)
        except VendorAuthError as error:
            raise self._refused(error) from None
        except VendorHttpError as error:
            raise in_section(error, SECTION) from None

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds this source reads."""
        return KINDS

    @records_read_through
    def fetch(self, kind: str, start: pd.Timestamp, end: pd.Timestamp, cursor: str | None = None) -> SourceBatch:
        """Incidents or changes updated in [start, end) (module docstring); other kinds: none."""
        if kind not in KINDS:
            return empty_batch(kind)
        start, end = utc(start), utc(end)
        if end <= start:
            return empty_batch(kind)
        try:
            rows = self._incidents(start, end) if kind == "incidents" else self._changes(start, end)
        except VendorAuthError as error:
            raise self._refused(error) from None
        except VendorHttpError as error:
            raise in_section(error, SECTION) from None
        if rows.empty:
            return empty_batch(kind)
        known = vendor_record_services(self.services)
        result = normalise(kind, rows, known)
        return SourceBatch(result.good, result.rejected, result.conflicting_duplicates)

    def _incidents(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        records = self.client.updated(self.section.incident_table, INCIDENT_FIELDS, start, end)
        ci_names = self.client.names(CI_TABLE, reference_ids(records, CI_FIELDS), "name")
        changes = self.client.names(self.section.change_table, reference_ids(records, ("caused_by",)), "number")
        return incident_rows(records, self.services, ci_names, changes, self.section.severity_by_priority)

    def _changes(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        records = self.client.updated(self.section.change_table, CHANGE_FIELDS, start, end)
        self.client.remember(self.section.change_table, "number", numbers_by_sys_id(records))
        ci_names = self.client.names(CI_TABLE, reference_ids(records, CI_FIELDS), "name")
        return change_rows(records, self.services, ci_names, self.section.outcome_by_close_code,
                           self.section.canceled_states)  # fmt: skip

    def _refused(self, error: VendorAuthError) -> SourceError:
        return SourceError(f"{SECTION}: ServiceNow refused the user in {self.section.user_env} and the password in "
                           f"{self.section.password_env} (HTTP {http_status(error)}): check the account, its "
                           f"password and its read access to the {self.section.incident_table} and "
                           f"{self.section.change_table} tables")  # fmt: skip


def servicenow_source(
    section: ServiceNowConfig,
    context: SourceContext,
    environ: Mapping[str, str] | None = None,
    *,
    sleep: Callable[[float], None] = pause,
) -> ServiceNowSource:
    """The source of `sources.servicenow`, its user and password read from the variables `user_env` and
    `password_env` name."""
    user = credential(section.user_env, f"{SECTION}.user_env", environ)
    password = credential(section.password_env, f"{SECTION}.password_env", environ)
    client = ServiceNowClient(section.base_url, user, password, page_size=section.page_size, sleep=sleep,
                              limits=section.limits)
    return ServiceNowSource(section, client, context.services)

