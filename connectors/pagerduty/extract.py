"""PagerDuty incident dicts to canonical incident rows (the extract step): every vendor word is mapped here.

One row per incident, not yet validated (`connectors.records.normalise` does that):
- source "pagerduty", source_id the incident id, title the title (else its summary);
- service: the service that claims the incident's PagerDuty service id (else its name) under
  `services.<name>.pagerduty_services`, or "unmapped"; an incident naming no service has none (rejected);
- severity: the priority's summary through `severity_by_priority` (default P1..P5 -> sev1..sev5, compared
  case-insensitively); without a priority, the urgency through `severity_by_urgency` (default high -> sev2,
  low -> sev4); a word the map lacks (a "P9") is kept, marked, so `normalise` rejects the row with it; neither
  a priority nor an urgency: no severity;
- status: PagerDuty's own (triggered, acknowledged, resolved);
- opened_at = created_at; resolved_at = resolved_at, else last_status_change_at once resolved, empty while open;
- updated_at = updated_at, else last_status_change_at, else created_at; caused_by_change empty;
- payload: the incident dict as PagerDuty sent it (stored in the fact's `raw`).
Timestamps are passed through as sent (ISO 8601 with an offset); `normalise` turns them to UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from connectors.base import vendor_text
from connectors.pagerduty.config import DEFAULT_SEVERITY_BY_PRIORITY, DEFAULT_SEVERITY_BY_URGENCY
from connectors.records import parse_utc
from connectors.services import ENTITY, UNMAPPED, Services, service_names

SOURCE = "pagerduty"
OPEN_STATUSES = ("triggered", "acknowledged")
ROW_COLUMNS = ["source", "source_id", "service", "severity", "title", "status", "opened_at", "resolved_at",
               "caused_by_change", "updated_at", "payload", ENTITY]  # fmt: skip


FIELDS = ("id", "title", "summary", "status", "urgency", "created_at", "resolved_at", "last_status_change_at",
          "updated_at")  # fmt: skip
NESTED = {"priority": ("summary", "name"), "service": ("id", "summary", "name")}


def incident_rows(
    incidents: Sequence[Any],
    services: Services,
    severity_by_priority: Mapping[str, str] | None = None,
    severity_by_urgency: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Canonical incident rows (ROW_COLUMNS, text as sent) for PagerDuty incident dicts, one per incident id
    (`newest_per_id`), in their order."""
    by_priority = _folded(DEFAULT_SEVERITY_BY_PRIORITY if severity_by_priority is None else severity_by_priority)
    by_urgency = _folded(DEFAULT_SEVERITY_BY_URGENCY if severity_by_urgency is None else severity_by_urgency)
    fields = incident_fields(incidents)
    fields = fields.loc[newest_per_id(fields)]
    status = fields["status"].str.lower()
    frame = pd.DataFrame({
        "source": SOURCE,
        "source_id": fields["id"],
        "service": _services(fields, services),
        "severity": severities(fields, by_priority, by_urgency),
        "title": fields["title"].fillna(fields["summary"]),
        "status": fields["status"],
        "opened_at": fields["created_at"],
        "resolved_at": resolved_times(fields, status),
        "caused_by_change": None,
        "updated_at": updated_times(fields),
        "payload": pd.Series([incidents[position] for position in fields.index], index=fields.index, dtype=object),
        ENTITY: fields["service_id"].fillna(fields["service_summary"]).fillna(fields["service_name"]),
    }, columns=ROW_COLUMNS).reset_index(drop=True)  # fmt: skip
    return frame.astype(object).where(frame.notna(), None)


def incident_fields(incidents: Sequence[Any]) -> pd.DataFrame:
    """The fields read of each incident, as stripped text (None when absent or empty): FIELDS, plus
    `priority_summary`, `priority_name`, `service_id`, ... for the NESTED objects. Not a dict: all None."""
    dicts = [incident if isinstance(incident, dict) else {} for incident in incidents]
    columns = {name: [vendor_text(fields.get(name)) for fields in dicts] for name in FIELDS}
    for name, keys in NESTED.items():
        nested = [value if isinstance(value := fields.get(name), dict) else {} for fields in dicts]
        for key in keys:
            columns[f"{name}_{key}"] = [vendor_text(value.get(key)) for value in nested]
    return pd.DataFrame(columns, index=range(len(dicts)), dtype=object)


def severities(fields: pd.DataFrame, by_priority: Mapping[str, str], by_urgency: Mapping[str, str]) -> pd.Series:
    """Each incident's severity word (maps keyed in lower case): by priority, else by urgency; a word the map lacks,
    marked for rejection; neither a priority nor an urgency: None."""
    priority = fields["priority_summary"].fillna(fields["priority_name"])
    urgency = fields["urgency"]
    marked_priority = priority + " (not in sources.pagerduty.severity_by_priority)"
    marked_urgency = urgency + " (not in sources.pagerduty.severity_by_urgency)"
    by_urgency_word = urgency.str.lower().map(by_urgency).fillna(marked_urgency)
    return priority.str.lower().map(by_priority).fillna(marked_priority).where(priority.notna(), by_urgency_word)


def resolved_times(fields: pd.DataFrame, status: pd.Series) -> pd.Series:
    """resolved_at, else last_status_change_at once resolved; None while open."""
    resolved = fields["resolved_at"].where(fields["resolved_at"].notna() | (status != "resolved"),
                                           fields["last_status_change_at"])  # fmt: skip
    return resolved.where(~status.isin(OPEN_STATUSES))


def updated_times(fields: pd.DataFrame) -> pd.Series:
    """updated_at, else last_status_change_at, else created_at."""
    return fields["updated_at"].fillna(fields["last_status_change_at"]).fillna(fields["created_at"])


def newest_per_id(fields: pd.DataFrame) -> pd.Index:
    """The rows of `incident_fields` to keep, one per incident id: the newest updated time (an undated one counting
    as the oldest; between equals, the later one), in first-seen order of the ids. Rows without an id are all kept
    (`normalise` rejects them)."""
    stamps = parse_utc(updated_times(fields))
    ranked = pd.DataFrame({"id": fields["id"], "stamp": stamps}, index=fields.index)
    first_seen = pd.Series(fields.index, index=fields.index).groupby(fields["id"]).transform("min")
    ranked["first"] = first_seen.reindex(fields.index).fillna(pd.Series(fields.index, index=fields.index))
    ranked = ranked.sort_values("stamp", kind="stable", na_position="first")
    kept = ranked[ranked["id"].isna() | ~ranked.duplicated("id", keep="last")]
    return kept.sort_values("first", kind="stable").index


def _services(fields: pd.DataFrame, services: Services) -> pd.Series:
    """The service name of each incident's PagerDuty service: by id, else by name; None with neither."""
    names = fields["service_summary"].fillna(fields["service_name"])
    by_id = service_names(services, "pagerduty_services", fields["service_id"])
    by_name = service_names(services, "pagerduty_services", names)
    mapped = by_id.where(by_id != UNMAPPED, by_name)
    return mapped.where(fields["service_id"].notna() | names.notna())


def _folded(mapping: Mapping[str, str]) -> dict[str, str]:
    return {str(key).strip().lower(): value for key, value in mapping.items()}

