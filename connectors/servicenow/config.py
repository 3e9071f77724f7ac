"""`sources.servicenow`: ServiceNow incidents and change requests."""

from __future__ import annotations

from scoring.config import EnvVarName, Model, Text


class ServiceNowConfig(Model):
    base_url: Text
    user_env: EnvVarName = "SN_USER"
    password_env: EnvVarName = "SN_PASSWORD"
