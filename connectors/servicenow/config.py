"""`sources.servicenow`: ServiceNow incidents and change requests, and how ServiceNow's values map to canonical words.

The Table API is read with raw values (`sysparm_display_value=false`): choices are their stored values, so the
maps are keyed by those (compared as stripped text, case-insensitively; a YAML number is read as its text), and
a configured map replaces the default one whole:
- `severity_by_priority`: an incident's priority ("1".."5") to a severity; a priority the map lacks is rejected;
- `outcome_by_close_code`: a change's close code to an outcome (an instance's own codes go here;
  the default knows `backed_out` too); a closed change whose close code the map lacks is rejected, one with no
  close code has outcome unknown;
- `canceled_states`: the change states that mean canceled (no implemented_at, outcome unknown).
`page_size` is the `sysparm_limit` of each listing page (ServiceNow serves up to 10,000; large pages are slow on
a busy instance). `incident_table` / `change_table` name the tables read (an instance may extend them).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from connectors.limits import VendorConfig
from scoring.config import BaseUrl, EnvVarName, Severity, Text

DEFAULT_SEVERITY_BY_PRIORITY: dict[str, str] = {str(n): f"sev{n}" for n in range(1, 6)}
# backed_out: the close code of instances that record a back-out as one
DEFAULT_OUTCOME_BY_CLOSE_CODE: dict[str, str] = {"successful": "successful", "successful_issues": "successful",
                                                 "unsuccessful": "failed", "backed_out": "backed_out"}  # fmt: skip
DEFAULT_CANCELED_STATES: tuple[str, ...] = ("4",)
PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000  # the Table API's default sysparm_limit, and the most the simulator serves a page

Outcome = Literal["successful", "failed", "backed_out", "unknown"]


class ServiceNowConfig(VendorConfig):
    base_url: BaseUrl
    user_env: EnvVarName = "SN_USER"
    password_env: EnvVarName = "SN_PASSWORD"
    page_size: int = Field(PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    severity_by_priority: dict[Text, Severity] = Field(default_factory=lambda: dict(DEFAULT_SEVERITY_BY_PRIORITY))
    outcome_by_close_code: dict[Text, Outcome] = Field(default_factory=lambda: dict(DEFAULT_OUTCOME_BY_CLOSE_CODE))
    canceled_states: list[Text] = Field(default_factory=lambda: list(DEFAULT_CANCELED_STATES))
    incident_table: Text = "incident"
    change_table: Text = "change_request"

    @field_validator("severity_by_priority", "outcome_by_close_code", mode="before")
    @classmethod
    def _numeric_keys_as_text(cls, value: Any) -> Any:
        """`{1: sev1}` in YAML: the choice value "1"."""
        if isinstance(value, dict):
            return {str(key) if isinstance(key, int) and not isinstance(key, bool) else key: item
                    for key, item in value.items()}  # fmt: skip
        return value

    @field_validator("canceled_states", mode="before")
    @classmethod
    def _numeric_states_as_text(cls, value: Any) -> Any:
        """`[4]` in YAML: the state value "4"."""
        if isinstance(value, list):
            return [str(item) if isinstance(item, int) and not isinstance(item, bool) else item for item in value]
        return value
