"""`sources.pagerduty`: PagerDuty services whose incidents to read, and how PagerDuty's words map to severities.

`severity_by_priority` maps an incident's priority (its summary, e.g. "P1"; compared case-insensitively) to a
severity; `severity_by_urgency` is the fallback for an incident without a priority. A configured map replaces
the default one whole. `max_range_days` is the longest creation range one listing asks for: PagerDuty refuses a
`since`/`until` range over six months.
"""

from __future__ import annotations

from pydantic import Field

from connectors.limits import VendorConfig
from scoring.config import BaseUrl, EnvVarName, Severity, Text

DEFAULT_SEVERITY_BY_PRIORITY: dict[str, str] = {f"P{n}": f"sev{n}" for n in range(1, 6)}
DEFAULT_SEVERITY_BY_URGENCY: dict[str, str] = {"high": "sev2", "low": "sev4"}
MAX_RANGE_DAYS = 180  # under six months, whichever six


class PagerDutyConfig(VendorConfig):
    base_url: BaseUrl = "https://api.pagerduty.com"
    token_env: EnvVarName = "PAGERDUTY_TOKEN"
    services: list[Text] = []  # PagerDuty service ids; none: every service the token can see
    severity_by_priority: dict[Text, Severity] = Field(default_factory=lambda: dict(DEFAULT_SEVERITY_BY_PRIORITY))
    severity_by_urgency: dict[Text, Severity] = Field(default_factory=lambda: dict(DEFAULT_SEVERITY_BY_URGENCY))
    max_range_days: int = Field(MAX_RANGE_DAYS, ge=1, le=MAX_RANGE_DAYS)
