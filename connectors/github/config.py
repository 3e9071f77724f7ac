"""`sources.github`: GitHub (api.github.com or GitHub Enterprise) repositories to read."""

from __future__ import annotations

from scoring.config import EnvVarName, Model, Text


class GithubConfig(Model):
    base_url: Text = "https://api.github.com"
    token_env: EnvVarName = "GITHUB_TOKEN"
    repos: list[Text] = []
    production_environments: list[Text] | None = None  # None: metrics.production_environments
