"""`sources.pagerduty`: PagerDuty services whose incidents to read."""

from __future__ import annotations

from scoring.config import EnvVarName, Model, Text


class PagerDutyConfig(Model):
    base_url: Text = "https://api.pagerduty.com"
    token_env: EnvVarName = "PAGERDUTY_TOKEN"
    services: list[Text] = []
