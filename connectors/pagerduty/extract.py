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

from connectors.pagerduty.config import DEFAULT_SEVERITY_BY_PRIORITY, DEFAULT_SEVERITY_BY_URGENCY
from connectors.services import UNMAPPED, Services, service_names

SOURCE = "pagerduty"
OPEN_STATUSES = ("triggered", "acknowledged")
ROW_COLUMNS = ["source", "source_id", "service", "severity", "title", "status", "opened_at", "resolved_at",
               "caused_by_change", "updated_at", "payload"]  # fmt: skip


def incident_rows(
    incidents: Sequence[Any],
    services: Services,
    severity_by_priority: Mapping[str, str] | None = None,
    severity_by_urgency: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Canonical incident rows (ROW_COLUMNS, text as sent) for PagerDuty incident dicts, in their order."""
    by_priority = _folded(DEFAULT_SEVERITY_BY_PRIORITY if severity_by_priority is None else severity_by_priority)
    by_urgency = _folded(DEFAULT_SEVERITY_BY_URGENCY if severity_by_urgency is None else severity_by_urgency)
    rows = []
    for incident in incidents:
        fields = incident if isinstance(incident, dict) else {}
        rows.append({
            "source": SOURCE,
            "source_id": _text(fields.get("id")),
            "severity": severity(fields, by_priority, by_urgency),
            "title": _text(fields.get("title")) or _text(fields.get("summary")),
            "status": _text(fields.get("status")),
            "opened_at": _text(fields.get("created_at")),
            "resolved_at": resolved_time(fields),
            "caused_by_change": None,
            "updated_at": updated_time(fields),
            "payload": incident,
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=[c for c in ROW_COLUMNS if c != "service"]).astype(object)
    frame = frame.where(frame.notna(), None)
    frame.insert(2, "service", pd.Series(_services(incidents, services), index=frame.index, dtype=object))
    return frame


def severity(incident: Mapping[str, Any], by_priority: Mapping[str, str], by_urgency: Mapping[str, str]) -> str | None:
    """The incident's severity word (maps keyed in lower case); a word the map lacks, marked for rejection."""
    priority = incident.get("priority")
    word = _text(priority.get("summary") or priority.get("name")) if isinstance(priority, dict) else None
    if word is not None:
        return by_priority.get(word.lower(), f"{word} (not in sources.pagerduty.severity_by_priority)")
    urgency = _text(incident.get("urgency"))
    if urgency is not None:
        return by_urgency.get(urgency.lower(), f"{urgency} (not in sources.pagerduty.severity_by_urgency)")
    return None


def resolved_time(incident: Mapping[str, Any]) -> str | None:
    """resolved_at, else last_status_change_at once resolved; None while open."""
    status = _text(incident.get("status"))
    if status is not None and status.lower() in OPEN_STATUSES:
        return None
    resolved = _text(incident.get("resolved_at"))
    if resolved is None and status is not None and status.lower() == "resolved":
        return _text(incident.get("last_status_change_at"))
    return resolved


def updated_time(incident: Mapping[str, Any]) -> str | None:
    """updated_at, else last_status_change_at, else created_at."""
    for field in ("updated_at", "last_status_change_at", "created_at"):
        value = _text(incident.get(field))
        if value is not None:
            return value
    return None


def newest_per_id(incidents: Sequence[Any]) -> list[Any]:
    """One incident per id: the newest updated_time (an undated one counting as the oldest; between equals, the
    later one), in first-seen order. Incidents without an id are all kept (`normalise` rejects them)."""
    kept: dict[str, tuple[pd.Timestamp | None, Any]] = {}
    order: list[tuple[str | None, Any]] = []  # (id, None) for a kept id, (None, incident) for one without
    for incident in incidents:
        key = _text(incident.get("id")) if isinstance(incident, dict) else None
        if key is None:
            order.append((None, incident))
            continue
        stamp = _stamp(updated_time(incident))
        if key in kept:
            newest = kept[key][0]
            if newest is not None and (stamp is None or stamp < newest):
                continue
        else:
            order.append((key, None))
        kept[key] = (stamp, incident)
    return [kept[key][1] if key is not None else incident for key, incident in order]


def _services(incidents: Sequence[Any], services: Services) -> list[str | None]:
    """The service name of each incident's PagerDuty service: by id, else by name; None with neither."""
    refs = [(incident.get("service") if isinstance(incident, dict) else None) for incident in incidents]
    refs = [ref if isinstance(ref, dict) else {} for ref in refs]
    ids = pd.Series([_text(ref.get("id")) for ref in refs], dtype=object)
    names = pd.Series([_text(ref.get("summary")) or _text(ref.get("name")) for ref in refs], dtype=object)
    by_id = service_names(services, "pagerduty_services", ids)
    by_name = service_names(services, "pagerduty_services", names)
    mapped = by_id.where(by_id != UNMAPPED, by_name).tolist()
    return [name if known else None for name, known in zip(mapped, ids.notna() | names.notna(), strict=True)]


def _folded(mapping: Mapping[str, str]) -> dict[str, str]:
    return {str(key).strip().lower(): value for key, value in mapping.items()}


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def _stamp(value: str | None) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if pd.isna(stamp):
        return None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
