"""`sources.jira`: Jira Cloud incidents and change tickets, by JQL, and how Jira's words map to canonical ones.

`incident_jql` / `change_jql` select the issues of each kind (e.g. `project = OPS AND issuetype = Incident`); a
kind with no JQL has no Jira records. The connector adds the window and the order itself (a trailing ORDER BY of
the configured JQL is dropped). `page_size` is the `maxResults` asked of each search page (Jira may answer with
fewer). Maps are compared case-insensitively and a configured map replaces the default one whole:
- `severity_by_priority`: an incident's priority name to a severity;
- `outcome_by_status`: a change's status name to an outcome; a change whose status is not in it (open, or
  Canceled, Declined) has no implemented_at and the outcome unknown;
- `done_statuses`: the status names a changelog transition resolves (or, for a change, implements) the issue into,
  read when the workflow sets no resolutiondate (a change's `outcome_by_status` names count too).
`change_type_field` is the field holding a change's type (Standard/Normal/Emergency), by name ("Change type") or
by id (`customfield_10042`); `service_field`, when set, the field naming an issue's service instead of its
components (by name or id as well). `caused_by_link` is the issue link type whose inward issue caused an incident.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from connectors.limits import VendorConfig
from scoring.config import BaseUrl, EnvVarName, Severity, Text

DEFAULT_SEVERITY_BY_PRIORITY: dict[str, str] = {"Highest": "sev1", "High": "sev2", "Medium": "sev3", "Low": "sev4",
                                                "Lowest": "sev5"}  # fmt: skip
DEFAULT_OUTCOME_BY_STATUS: dict[str, str] = {"Completed": "successful", "Done": "successful", "Closed": "successful",
                                             "Failed": "failed", "Backed out": "backed_out",
                                             "Rolled back": "backed_out"}  # fmt: skip
DEFAULT_DONE_STATUSES: tuple[str, ...] = ("Done", "Resolved", "Closed", "Completed")
DEFAULT_CHANGE_TYPE_FIELD = "Change type"
DEFAULT_CAUSED_BY_LINK = "Causes"
PAGE_SIZE = 100  # what Jira serves a page of issues with several fields at most
MAX_PAGE_SIZE = 5000  # the search's own ceiling (id/key only)

Outcome = Literal["successful", "failed", "backed_out", "unknown"]


class JiraConfig(VendorConfig):
    base_url: BaseUrl
    email_env: EnvVarName = "JIRA_EMAIL"
    token_env: EnvVarName = "JIRA_TOKEN"
    incident_jql: Text | None = None
    change_jql: Text | None = None
    page_size: int = Field(PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    service_field: Text | None = None  # None: the components, through services.<name>.jira_components
    severity_by_priority: dict[Text, Severity] = Field(default_factory=lambda: dict(DEFAULT_SEVERITY_BY_PRIORITY))
    change_type_field: Text = DEFAULT_CHANGE_TYPE_FIELD
    outcome_by_status: dict[Text, Outcome] = Field(default_factory=lambda: dict(DEFAULT_OUTCOME_BY_STATUS))
    done_statuses: list[Text] = Field(default_factory=lambda: list(DEFAULT_DONE_STATUSES))
    caused_by_link: Text = DEFAULT_CAUSED_BY_LINK
