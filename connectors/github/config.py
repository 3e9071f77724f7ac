"""`sources.github`: GitHub (api.github.com or GitHub Enterprise) repositories to read."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from connectors.limits import VendorConfig
from scoring.config import BaseUrl, EnvVarName, Text

_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
# A ServiceNow change number (CHG0030001) or a Jira key (OPS-123) in a deployment's description.
DEFAULT_CHANGE_PATTERN = r"\b(?:CHG\d+|[A-Z][A-Z0-9]+-\d+)\b"


def _repo(value: str) -> str:
    if not _REPO.match(value):
        raise ValueError(f"'{value}' is not a repository: write it as owner/name (e.g. acme/checkout)")
    return value


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as error:
        raise ValueError(f"not a regular expression: {error}") from None
    return value


Repo = Annotated[Text, AfterValidator(_repo)]
Pattern = Annotated[Text, AfterValidator(_regex)]


class GithubConfig(VendorConfig):
    base_url: BaseUrl = "https://api.github.com"
    token_env: EnvVarName = "GITHUB_TOKEN"
    repos: list[Repo] = []
    production_environments: list[Text] | None = None  # None: metrics.production_environments
    # Deployments are listed newest-created first with no "updated since" filter: read this many days before
    # the window too, so a status that arrives late for an older deployment is picked up.
    lookback_days: Annotated[int, Field(ge=0, le=365)] = 3
    # Where no change id is in a deployment's payload: the first match of this in its description.
    change_pattern: Pattern = DEFAULT_CHANGE_PATTERN
