"""Jira issue dicts to canonical incident and change rows (the extract step): every vendor word is mapped here.

One row per issue, not yet validated (`connectors.records.normalise` does that); source "jira", source_id the
issue key (an issue without one is rejected), updated_at = `updated`, payload the issue dict as Jira sent it.
Both kinds:
- service: the first of the issue's components that a service claims under `services.<name>.jira_components`,
  else "unmapped" (a component no service claims, or no component at all: the issue still lands); with
  `service_field` set, that field's value(s) instead, by `jira_components` and else by the service's own name;
- "done" at a changelog transition: when the workflow sets no `resolutiondate`, the time of the last transition
  (status history) into a status of `done_statuses` (for a change, of `outcome_by_status` too) from one that is
  not (Resolved -> Closed later is not the resolution), read from the
  embedded changelog, or from the full one (`needs_full_changelog` says which issues need it fetched).
Incidents: title = summary; status = the status name; severity = the priority name through
`severity_by_priority` (case-insensitive; a name the map lacks is kept, marked, so `normalise` rejects the row
naming the config path; no priority: no severity); opened_at = created; resolved_at = resolutiondate, else the
done transition, only while the status is done (category `done`, or a name in `done_statuses`): empty while
open, reopened included; caused_by_change = the key of the inward issue of the first link of type
`caused_by_link` ("Causes": this issue "is caused by" it).
Changes: type = the change type field's value (an option's `value`, or text) in lower case; a word that is not
standard/normal/emergency is kept, marked with the config path, to be rejected; outcome = the status name through
`outcome_by_status`; implemented_at = resolutiondate, else the done transition, only for a status in that map: a
change open, or closed otherwise (Canceled, Declined), has no implemented_at and the outcome unknown.
Timestamps are passed through as Jira sends them (`2026-03-05T10:15:30.000+1300`: an offset without a colon,
which `normalise` reads) and turned to UTC there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from connectors.base import vendor_text
from connectors.jira.config import JiraConfig
from connectors.records import CHANGE_TYPES, parse_utc
from connectors.services import ENTITY, UNMAPPED, Services, service_names

SOURCE = "jira"
SECTION = "sources.jira"
INCIDENT_COLUMNS = ["source", "source_id", "service", "severity", "title", "status", "opened_at", "resolved_at",
                    "caused_by_change", "updated_at", "payload", ENTITY]  # fmt: skip
CHANGE_COLUMNS = ["source", "source_id", "service", "type", "implemented_at", "outcome", "updated_at", "payload",
                  ENTITY]  # fmt: skip
# The fields each kind reads (besides the configured change type and service fields).
INCIDENT_FIELDS = ("summary", "status", "priority", "components", "created", "updated", "resolutiondate",
                   "issuelinks")  # fmt: skip
CHANGE_FIELDS = ("status", "components", "created", "updated", "resolutiondate")

Histories = Mapping[str, Sequence[Any]]  # issue id (or key) -> its full status history


def search_fields(kind: str, *, change_type_field: str | None = None, service_field: str | None = None) -> list[str]:
    """The `fields=` of a search for `kind`: only those mapped (ids); components only without a service field."""
    fields = list(INCIDENT_FIELDS if kind == "incidents" else CHANGE_FIELDS)
    if service_field is not None:
        fields = [field for field in fields if field != "components"] + [service_field]
    if kind == "changes" and change_type_field is not None:
        fields.append(change_type_field)
    return list(dict.fromkeys(fields))


def incident_rows(
    issues: Sequence[Any],
    services: Services,
    config: JiraConfig,
    histories: Histories | None = None,
    *,
    service_field: str | None = None,
) -> pd.DataFrame:
    """Canonical incident rows (INCIDENT_COLUMNS, text as sent) for Jira issue dicts, in their order."""
    fields = issue_fields(issues, service_field=service_field)
    done_names = _folded_names(config.done_statuses)
    status = fields["status"].str.lower()
    done = (fields["category"].str.lower() == "done") | status.isin(done_names)
    transition = done_transitions(issues, fields, done & fields["resolutiondate"].isna(), done_names, histories)
    by_priority = _folded(config.severity_by_priority)
    marked = fields["priority"] + f" (not in {SECTION}.severity_by_priority)"
    severity = fields["priority"].str.lower().map(by_priority).fillna(marked).where(fields["priority"].notna())
    mapped = _services(issues, fields, services, service_field)
    frame = pd.DataFrame({
        "source": SOURCE,
        "source_id": fields["key"],
        "service": mapped["service"],
        "severity": severity,
        "title": fields["summary"],
        "status": fields["status"],
        "opened_at": fields["created"],
        "resolved_at": fields["resolutiondate"].fillna(transition).where(done),
        "caused_by_change": caused_by(issues, config.caused_by_link),
        "updated_at": fields["updated"],
        "payload": _payloads(issues, fields.index),
        ENTITY: mapped[ENTITY],
    }, columns=INCIDENT_COLUMNS)  # fmt: skip
    return frame.astype(object).where(frame.notna(), None)


def change_rows(
    issues: Sequence[Any],
    services: Services,
    config: JiraConfig,
    change_type_field: str,
    histories: Histories | None = None,
    *,
    service_field: str | None = None,
) -> pd.DataFrame:
    """Canonical change rows (CHANGE_COLUMNS, text as sent) for Jira issue dicts, in their order; `change_type_field`
    is the id of the field holding the change type."""
    fields = issue_fields(issues, service_field=service_field, change_type_field=change_type_field)
    by_status = _folded(config.outcome_by_status)
    outcome = fields["status"].str.lower().map(by_status)
    finished = outcome.notna()
    done_names = _folded_names(config.done_statuses) | set(by_status)
    transition = done_transitions(issues, fields, finished & fields["resolutiondate"].isna(), done_names, histories)
    words = fields["change_type"].str.lower()
    marked = fields["change_type"] + f" (from {SECTION}.change_type_field '{config.change_type_field}')"
    change_type = words.where(words.isin(CHANGE_TYPES), marked)
    mapped = _services(issues, fields, services, service_field)
    frame = pd.DataFrame({
        "source": SOURCE,
        "source_id": fields["key"],
        "service": mapped["service"],
        "type": change_type,
        "implemented_at": fields["resolutiondate"].fillna(transition).where(finished),
        "outcome": outcome.fillna("unknown"),
        "updated_at": fields["updated"],
        "payload": _payloads(issues, fields.index),
        ENTITY: mapped[ENTITY],
    }, columns=CHANGE_COLUMNS)  # fmt: skip
    return frame.astype(object).where(frame.notna(), None)


def issue_fields(
    issues: Sequence[Any], *, service_field: str | None = None, change_type_field: str | None = None
) -> pd.DataFrame:
    """The values read of each issue as stripped text (None when absent or empty): key, id, summary, status,
    category (the status category key), priority, created, updated, resolutiondate, change_type (the option value
    of `change_type_field`). Not a dict: all None."""
    dicts = [issue if isinstance(issue, dict) else {} for issue in issues]
    inner = [fields if isinstance(fields := issue.get("fields"), dict) else {} for issue in dicts]
    status = [_dict(fields.get("status")) for fields in inner]
    columns = {
        "key": [vendor_text(issue.get("key")) for issue in dicts],
        "id": [vendor_text(issue.get("id")) for issue in dicts],
        "summary": [vendor_text(fields.get("summary")) for fields in inner],
        "status": [vendor_text(value.get("name")) for value in status],
        "category": [vendor_text(_dict(value.get("statusCategory")).get("key")) for value in status],
        "priority": [vendor_text(_dict(fields.get("priority")).get("name")) for fields in inner],
        "created": [vendor_text(fields.get("created")) for fields in inner],
        "updated": [vendor_text(fields.get("updated")) for fields in inner],
        "resolutiondate": [vendor_text(fields.get("resolutiondate")) for fields in inner],
        "change_type": [_option(fields.get(change_type_field)) if change_type_field else None for fields in inner],
    }
    return pd.DataFrame(columns, index=range(len(dicts)), dtype=object)


def needs_full_changelog(issues: Sequence[Any], kind: str, config: JiraConfig) -> list[str]:
    """The keys (else ids) of the issues whose done transition must be read from their full changelog: done (an
    incident) or finished (a change) without a resolutiondate, whose embedded changelog is cut short (its `total`
    above the histories it holds) or absent."""
    fields = issue_fields(issues)
    status = fields["status"].str.lower()
    if kind == "incidents":
        wanted = (fields["category"].str.lower() == "done") | status.isin(_folded_names(config.done_statuses))
    else:
        wanted = status.isin(set(_folded(config.outcome_by_status)))
    wanted &= fields["resolutiondate"].isna() & (fields["key"].notna() | fields["id"].notna())
    cut = [_truncated(issues[position]) for position in fields.index]
    wanted &= pd.Series(cut, index=fields.index, dtype=bool)
    return fields.loc[wanted, "key"].fillna(fields.loc[wanted, "id"]).tolist()


def done_transitions(
    issues: Sequence[Any], fields: pd.DataFrame, wanted: pd.Series, done_names: set[str], histories: Histories | None
) -> pd.Series:
    """For the `wanted` issues, the `created` text of the last status history into one of `done_names` (lower
    case) from a status that is not one (a later move between done statuses, Resolved -> Closed days after, does
    not move the resolution; an issue with only such moves takes its last one): from `histories` (the full
    changelog, by issue id, else key) where given, else the embedded changelog. None where there is none."""
    histories = histories or {}
    found: list[tuple[int, Any, Any, Any]] = []  # (position, created, status it went to, status it came from)
    for position in fields.index[wanted.to_numpy(dtype=bool)]:
        issue_id, key = fields.at[position, "id"], fields.at[position, "key"]
        full = histories.get(issue_id) if issue_id is not None else None
        full = histories.get(key) if full is None and key is not None else full
        entries = full if full is not None else _embedded(issues[position])
        for history in entries:
            if isinstance(history, dict):
                found += [(position, history.get("created"), item.get("toString"), item.get("fromString"))
                          for item in _status_items(history)]  # fmt: skip
    empty = pd.Series(None, index=fields.index, dtype=object)
    if not found:
        return empty
    moves = pd.DataFrame(found, columns=["position", "created", "to", "from"])
    moves["to"] = moves["to"].map(vendor_text, na_action="ignore").str.lower()
    moves["entering"] = ~moves["from"].map(vendor_text, na_action="ignore").str.lower().isin(done_names)
    moves["stamp"] = parse_utc(moves["created"].map(vendor_text))
    moves = moves[moves["to"].isin(done_names) & moves["stamp"].notna()]
    if moves.empty:
        return empty
    last = moves.sort_values(["entering", "stamp"], kind="stable").groupby("position").tail(1)
    times = pd.Series(last["created"].map(vendor_text).to_numpy(), index=last["position"].to_numpy(), dtype=object)
    return times.reindex(fields.index)


def caused_by(issues: Sequence[Any], link_type: str) -> pd.Series:
    """The key of the inward issue of each issue's first link of type `link_type` (case-insensitive), else None."""
    wanted = link_type.strip().lower()
    keys = []
    for issue in issues:
        fields = _dict(_dict(issue).get("fields"))
        links = fields.get("issuelinks")
        keys.append(next((key for link in (links if isinstance(links, list) else [])
                          if str(_dict(_dict(link).get("type")).get("name") or "").strip().lower() == wanted
                          and (key := vendor_text(_dict(_dict(link).get("inwardIssue")).get("key")))),
                         None))  # fmt: skip
    return pd.Series(keys, index=range(len(issues)), dtype=object)


def _services(
    issues: Sequence[Any], fields: pd.DataFrame, services: Services, service_field: str | None
) -> pd.DataFrame:
    """The service of each issue: its first entity a service claims, else UNMAPPED (no entity at all too); and that
    entity (else the issue's first one; None without any), columns `service` and ENTITY."""
    if service_field is None:
        entities = [_names(_dict(_dict(issue).get("fields")).get("components")) for issue in issues]
    else:
        entities = [_names(_dict(_dict(issue).get("fields")).get(service_field)) for issue in issues]
    exploded = pd.Series(entities, index=fields.index, dtype=object).explode().dropna()
    mapped = service_names(services, "jira_components", exploded)
    if service_field is not None:  # a field may hold the service's own name
        own = {name.lower(): name for name in services}
        mapped = mapped.where(mapped != UNMAPPED, exploded.str.lower().map(own).fillna(UNMAPPED))
    claimed = mapped != UNMAPPED
    service = mapped[claimed].groupby(level=0).first().reindex(fields.index).astype(object).fillna(UNMAPPED)
    entity = exploded[claimed].groupby(level=0).first().reindex(fields.index)
    entity = entity.fillna(exploded.groupby(level=0).first().reindex(fields.index)).astype(object)
    return pd.DataFrame({"service": service, ENTITY: entity.where(entity.notna(), None)}, index=fields.index)


def _names(value: Any) -> list[str]:
    """Entity names of a field value: components ([{"name"}]), an option ({"value"}), text, or a list of those."""
    values = value if isinstance(value, list) else [value]
    return [name for item in values if (name := _option(item)) is not None]


def _option(value: Any) -> str | None:
    """A select option's `value` (else `name`), or the text of a plain value."""
    if isinstance(value, dict):
        return vendor_text(value.get("value")) or vendor_text(value.get("name"))
    return vendor_text(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else None


def _status_items(history: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = history.get("items")
    return [item for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict) and (item.get("fieldId") or item.get("field")) == "status"
            and item.get("fieldtype", "jira") != "custom"]  # fmt: skip


def _embedded(issue: Any) -> list[Any]:
    histories = _dict(_dict(issue).get("changelog")).get("histories")
    return histories if isinstance(histories, list) else []


def _truncated(issue: Any) -> bool:
    """Whether the issue's embedded changelog holds fewer histories than it has (or is absent)."""
    changelog = _dict(issue).get("changelog")
    if not isinstance(changelog, dict) or not isinstance(changelog.get("histories"), list):
        return True
    total = changelog.get("total")
    return isinstance(total, int) and not isinstance(total, bool) and total > len(changelog["histories"])


def _payloads(issues: Sequence[Any], index: pd.Index) -> pd.Series:
    return pd.Series([issues[position] for position in index], index=index, dtype=object)


def _folded(mapping: Mapping[str, str]) -> dict[str, str]:
    return {str(key).strip().lower(): value for key, value in mapping.items()}


def _folded_names(names: Iterable[str]) -> set[str]:
    return {str(name).strip().lower() for name in names}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}

