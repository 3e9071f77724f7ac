"""The one service vocabulary (`services:` in scorecard.yaml) and each source's names for a service.

Every connector maps its vendor entity — a GitHub repo, a PagerDuty service, a ServiceNow CI, a Jira
component — to a service name here; an entity no service claims maps to UNMAPPED (kept, out of the
metrics, counted by a check).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from scoring.config import Model, Text

UNMAPPED = "unmapped"
# Each vendor source's field of a ServiceMapping: where an entity of that source is mapped to a service.
MAPPING_OF_SOURCE = {"github": "github_repos", "pagerduty": "pagerduty_services", "servicenow": "servicenow_cis",
                     "jira": "jira_components"}  # fmt: skip
# The extra column of a vendor record naming the entity its service was mapped from (a repo, a PagerDuty service
# id, a CI name, a Jira component); it is kept in the fact's raw, so an unmapped record tells which mapping to add.
ENTITY = "entity"
# The mappings that name an incident source: a service mapped by one of them is monitored.
INCIDENT_SOURCE_MAPPINGS = ("pagerduty_services", "servicenow_cis", "jira_components")


class ServiceMapping(Model):
    """One service's names in each source."""

    github_repos: list[Text] = []
    pagerduty_services: list[Text] = []
    servicenow_cis: list[Text] = []
    jira_components: list[Text] = []


Services = Mapping[str, ServiceMapping]


def known_services(services: Services) -> set[str] | None:
    """The service vocabulary records must use, or None when none is declared (any name goes)."""
    return set(services) or None


def vendor_record_services(services: Services) -> set[str] | None:
    """The service names a vendor record may carry: the configured ones and UNMAPPED (None: no services declared,
    any name goes)."""
    return set(services) | {UNMAPPED} if services else None


def monitored_services(services: Services) -> list[str] | None:
    """The services availability and MTBF are figures of: those mapped to an incident source.

    None when no service maps an incident source at all: the metric engine then takes the services
    with any incident record.
    """
    mapped = [name for name, mapping in services.items()
              if any(getattr(mapping, field) for field in INCIDENT_SOURCE_MAPPINGS)]  # fmt: skip
    return sorted(mapped) or None


def service_names(services: Services, mapping: str, entities: pd.Series) -> pd.Series:
    """The service each vendor entity belongs to (`mapping` is a ServiceMapping field, e.g. "github_repos"),
    UNMAPPED for an entity no service claims (compared case-insensitively: repo names are not case-sensitive)."""
    owners = {name.lower(): service for service, entry in services.items() for name in getattr(entry, mapping)}
    return entities.astype(object).str.lower().map(owners).astype(object).fillna(UNMAPPED)
