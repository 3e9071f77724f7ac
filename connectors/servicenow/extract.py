"""ServiceNow incident and change_request records to canonical rows (the extract step): every vendor word is mapped
here.

Records come as the Table API sends raw values: every value a string, "" for empty, times as UTC
`YYYY-MM-DD HH:MM:SS` (turned into ISO 8601 with `Z` here, so `connectors.records.normalise` reads them; any
other text is passed on as sent, for `normalise` to reject), choices as their stored value, references as
sys_ids (a {link, value} reference object is read as its value). One row per record, in their order, not yet
validated (`normalise` does that, and keeps one row per number):
- source "servicenow", source_id the record's `number` (INC0010001, CHG0030001);
- service: the service whose `services.<name>.servicenow_cis` names the record's `cmdb_ci` (by the CI's name,
  compared case-insensitively), else its `business_service`; neither claimed (or none, or a sys_id that resolves
  to nothing): "unmapped";
- payload: the record dict as ServiceNow sent it (stored in the fact's `raw`).
Incidents:
- severity: the priority through `severity_by_priority` (default "1".."5" -> sev1..sev5); a priority the map
  lacks is kept, marked, so `normalise` rejects the row naming the config path; no priority: no severity;
- title = short_description; status: the state's word (`INCIDENT_STATES`: new, in_progress, on_hold, resolved,
  closed, canceled; a state not listed there is kept as its value);
- opened_at = opened_at; resolved_at = resolved_at, else closed_at, for a resolved, closed or canceled incident
  (state 6, 7 or 8: a canceled one ends then, else it would count as an outage open for ever), else, for those
  states, sys_updated_on; empty otherwise; updated_at = sys_updated_on;
- caused_by_change: the number of the change request `caused_by` refers to (empty when it resolves to none).
Changes:
- type: standard / normal / emergency (lower-cased; another word is rejected by `normalise`);
- implemented_at = work_end, else closed_at for a closed change (state 3); a canceled change
  (`canceled_states`, default "4") or an unfinished one (no work_end, not closed): empty;
- outcome: the close code through `outcome_by_close_code` (default successful, successful_issues -> successful,
  unsuccessful -> failed) for an implemented change; a close code the map lacks is kept, marked, so `normalise`
  rejects the row naming the config path; no close code, or not implemented: unknown;
- updated_at = sys_updated_on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from connectors.records import SCHEMAS
from connectors.servicenow.config import (
    DEFAULT_CANCELED_STATES,
    DEFAULT_OUTCOME_BY_CLOSE_CODE,
    DEFAULT_SEVERITY_BY_PRIORITY,
)
from connectors.services import ENTITY, UNMAPPED, Services, service_names

SOURCE = "servicenow"
SECTION = "sources.servicenow"
INCIDENT_FIELDS = ("sys_id", "number", "short_description", "priority", "state", "opened_at", "resolved_at",
                   "closed_at", "sys_updated_on", "cmdb_ci", "business_service", "caused_by")  # fmt: skip
CHANGE_FIELDS = ("sys_id", "number", "type", "state", "close_code", "work_end", "closed_at", "sys_updated_on",
                 "cmdb_ci", "business_service")  # fmt: skip
CI_FIELDS = ("cmdb_ci", "business_service")  # references to cmdb_ci (business_service: its cmdb_ci_service class)
TIME_FIELDS = ("opened_at", "resolved_at", "closed_at", "work_end", "sys_updated_on")
INCIDENT_STATES = {"1": "new", "2": "in_progress", "3": "on_hold", "6": "resolved", "7": "closed", "8": "canceled"}
ENDED_INCIDENT_STATES = ("6", "7", "8")  # resolved, closed, canceled
CLOSED_CHANGE_STATES = ("3",)
INCIDENT_COLUMNS = [column.name for column in SCHEMAS["incidents"]] + ["payload", ENTITY]
CHANGE_COLUMNS = [column.name for column in SCHEMAS["changes"]] + ["payload", ENTITY]
_SN_TIME = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"


def incident_rows(
    records: Sequence[Any],
    services: Services,
    ci_names: Mapping[str, str],
    change_numbers: Mapping[str, str],
    severity_by_priority: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Canonical incident rows (INCIDENT_COLUMNS, text as `normalise` reads it) for ServiceNow incident records;
    `ci_names` maps CI sys_ids to names, `change_numbers` change_request sys_ids to numbers."""
    by_priority = _folded(DEFAULT_SEVERITY_BY_PRIORITY if severity_by_priority is None else severity_by_priority)
    fields = record_fields(records, INCIDENT_FIELDS)
    state = fields["state"]
    ended = fields["resolved_at"].fillna(fields["closed_at"]).fillna(fields["sys_updated_on"])
    resolved = ended.where(state.isin(ENDED_INCIDENT_STATES))
    mapped = services_of(fields, services, ci_names)
    frame = pd.DataFrame({
        "source": SOURCE,
        "source_id": fields["number"],
        "service": mapped["service"],
        "severity": severities(fields["priority"], by_priority),
        "title": fields["short_description"],
        "status": state.map(INCIDENT_STATES).fillna(state),
        "opened_at": fields["opened_at"],
        "resolved_at": resolved,
        "caused_by_change": fields["caused_by"].map(dict(change_numbers)),
        "updated_at": fields["sys_updated_on"],
        "payload": _payloads(records, fields.index),
        ENTITY: mapped[ENTITY],
    }, columns=INCIDENT_COLUMNS)  # fmt: skip
    return frame.astype(object).where(frame.notna(), None)


def change_rows(
    records: Sequence[Any],
    services: Services,
    ci_names: Mapping[str, str],
    outcome_by_close_code: Mapping[str, str] | None = None,
    canceled_states: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Canonical change rows (CHANGE_COLUMNS, text as `normalise` reads it) for ServiceNow change_request records;
    `ci_names` maps CI sys_ids to names."""
    by_code = _folded(DEFAULT_OUTCOME_BY_CLOSE_CODE if outcome_by_close_code is None else outcome_by_close_code)
    canceled = [str(state).strip() for state in (DEFAULT_CANCELED_STATES if canceled_states is None
                                                  else canceled_states)]  # fmt: skip
    fields = record_fields(records, CHANGE_FIELDS)
    state = fields["state"]
    implemented = fields["work_end"].fillna(fields["closed_at"].where(state.isin(CLOSED_CHANGE_STATES)))
    implemented = implemented.where(~state.isin(canceled))
    mapped = services_of(fields, services, ci_names)
    frame = pd.DataFrame({
        "source": SOURCE,
        "source_id": fields["number"],
        "service": mapped["service"],
        "type": fields["type"].str.lower(),
        "implemented_at": implemented,
        "outcome": outcomes(fields["close_code"], by_code).where(implemented.notna(), "unknown"),
        "updated_at": fields["sys_updated_on"],
        "payload": _payloads(records, fields.index),
        ENTITY: mapped[ENTITY],
    }, columns=CHANGE_COLUMNS)  # fmt: skip
    return frame.astype(object).where(frame.notna(), None)


def record_fields(records: Sequence[Any], names: Sequence[str]) -> pd.DataFrame:
    """The fields `names` of each record as stripped text (None when absent or empty; a reference object as its
    value), the TIME_FIELDS among them in ISO 8601 (`utc_times`). Not a dict: all None."""
    dicts = [record if isinstance(record, dict) else {} for record in records]
    fields = pd.DataFrame({name: [_text(record.get(name)) for record in dicts] for name in names},
                          index=range(len(dicts)), columns=list(names), dtype=object)  # fmt: skip
    for name in TIME_FIELDS:
        if name in fields.columns:
            fields[name] = utc_times(fields[name])
    return fields


def utc_times(text: pd.Series) -> pd.Series:
    """ServiceNow's UTC `YYYY-MM-DD HH:MM:SS` as ISO 8601 with `Z` (`2024-03-01T10:15:30Z`); any other text as sent
    (`normalise` rejects it), None as None."""
    present = text.notna()
    readable = present & text.astype(str).str.match(_SN_TIME)
    converted = text.where(~readable, text.str.slice(0, 10) + "T" + text.str.slice(11) + "Z")
    return converted.where(present, None)


def reference_ids(records: Sequence[Any], names: Sequence[str]) -> list[str]:
    """The distinct sys_ids the records' reference fields `names` hold, in first-seen order."""
    fields = record_fields(records, names)
    return list(dict.fromkeys(value for name in names for value in fields[name] if value is not None))


def numbers_by_sys_id(records: Sequence[Any]) -> dict[str, str]:
    """Each record's number by its sys_id (a listed change's number, for the incidents that name it)."""
    fields = record_fields(records, ("sys_id", "number"))
    both = fields.dropna()
    return dict(zip(both["sys_id"], both["number"], strict=True))


def severities(priority: pd.Series, by_priority: Mapping[str, str]) -> pd.Series:
    """Each priority's severity (the map keyed in lower case); a priority the map lacks, marked for rejection; no
    priority: None."""
    marked = priority + f" (not in {SECTION}.severity_by_priority)"
    return priority.str.lower().map(by_priority).fillna(marked).where(priority.notna(), None)


def outcomes(close_code: pd.Series, by_code: Mapping[str, str]) -> pd.Series:
    """Each close code's outcome (the map keyed in lower case); a code the map lacks, marked for rejection; no close
    code: unknown."""
    marked = close_code + f" (not in {SECTION}.outcome_by_close_code)"
    return close_code.str.lower().map(by_code).fillna(marked).where(close_code.notna(), "unknown")


def services_of(fields: pd.DataFrame, services: Services, ci_names: Mapping[str, str]) -> pd.DataFrame:
    """The service claiming each record's cmdb_ci name, else its business_service name, else UNMAPPED; and the CI
    it was mapped by (unmapped: the cmdb_ci's name, else the business_service's, else a sys_id no name was found
    for; None without either), columns `service` and ENTITY."""
    names = dict(ci_names)
    ci = fields["cmdb_ci"].map(names).astype(object)
    business_service = fields["business_service"].map(names).astype(object)
    by_ci = service_names(services, "servicenow_cis", ci)
    by_business_service = service_names(services, "servicenow_cis", business_service)
    entity = ci.where(by_ci != UNMAPPED, business_service.where(by_business_service != UNMAPPED))
    entity = entity.fillna(ci).fillna(business_service).fillna(fields["cmdb_ci"]).fillna(fields["business_service"])
    return pd.DataFrame({"service": by_ci.where(by_ci != UNMAPPED, by_business_service),
                         ENTITY: entity.astype(object).where(entity.notna(), None)}, index=fields.index)  # fmt: skip


def _payloads(records: Sequence[Any], index: pd.Index) -> pd.Series:
    return pd.Series(list(records), index=index, dtype=object)


def _folded(mapping: Mapping[str, str]) -> dict[str, str]:
    return {str(key).strip().lower(): value for key, value in mapping.items()}


def _text(value: Any) -> str | None:
    """A vendor value as stripped text (a reference object as its value); None for None and empty text."""
    if isinstance(value, dict):
        value = value.get("value")
    if value is None or isinstance(value, dict | list):
        return None
    return str(value).strip() or None
