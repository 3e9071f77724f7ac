"""`sources.jira`: Jira Cloud incidents and change tickets, by JQL."""

from __future__ import annotations

from scoring.config import EnvVarName, Model, Text


class JiraConfig(Model):
    base_url: Text
    email_env: EnvVarName = "JIRA_EMAIL"
    token_env: EnvVarName = "JIRA_TOKEN"
    incident_jql: Text | None = None
    change_jql: Text | None = None
