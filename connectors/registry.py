"""The configured sources: `sources:` of scorecard.yaml as one section per connector, and the pre-flight.

`configured_sources` builds every configured source and checks it before any work: a section with
no connector, a credential environment variable that is not set, or a source whose own `check`
fails (a refused token, a file that cannot be read) raises SourceError naming the config path. A source
that is configured but cannot run must stop the run: going on without it would replace stored
scores with emptier ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from connectors.base import Source, SourceContext, SourceError, unset_message
from connectors.files.config import FilesConfig
from connectors.files.source import files_source
from connectors.github.config import GithubConfig
from connectors.github.source import github_source
from connectors.jira.config import JiraConfig
from connectors.jira.source import jira_source
from connectors.pagerduty.config import PagerDutyConfig
from connectors.pagerduty.source import pagerduty_source
from connectors.servicenow.config import ServiceNowConfig
from connectors.servicenow.source import servicenow_source
from scoring.config import Model

VENDOR_SOURCES = ("github", "pagerduty", "jira", "servicenow")


class SourcesConfig(Model):
    """`sources:`, one section per connector; an absent section is a source not configured."""

    github: GithubConfig | None = None
    pagerduty: PagerDutyConfig | None = None
    jira: JiraConfig | None = None
    servicenow: ServiceNowConfig | None = None
    files: FilesConfig | None = None


# (the source's config section, context, the environment its credentials are read from) -> source
SourceFactory = Callable[[Any, SourceContext, Mapping[str, str] | None], Source]
SOURCE_FACTORIES: dict[str, SourceFactory] = {
    "files": files_source,
    "github": github_source,
    "pagerduty": pagerduty_source,
    "jira": jira_source,
    "servicenow": servicenow_source,
}


def configured_names(sources: SourcesConfig) -> list[str]:
    return [name for name in (*VENDOR_SOURCES, "files") if getattr(sources, name) is not None]


def credential_env_names(sources: SourcesConfig) -> dict[str, str]:
    """`sources.<name>.<field>` -> environment variable name, for every credential a configured source names."""
    names = {}
    for source_name in configured_names(sources):
        for field_name, value in getattr(sources, source_name).model_dump().items():
            if field_name.endswith("_env") and value:
                names[f"sources.{source_name}.{field_name}"] = value
    return names


def check_credentials(sources: SourcesConfig, names: list[str], environ: Mapping[str, str] | None = None) -> None:
    """Every credential environment variable the named sources need is set (SourceError names the first missing)."""
    environ = os.environ if environ is None else environ
    needed = {path: env for path, env in credential_env_names(sources).items() if path.split(".")[1] in names}
    missing = [(path, env) for path, env in needed.items() if not environ.get(env)]
    if missing:
        path, env = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise SourceError(unset_message(env, path) + more)


def configured_sources(
    sources: SourcesConfig, context: SourceContext, environ: Mapping[str, str] | None = None
) -> list[Source]:
    """Every configured source, checked (see the module docstring); raises SourceError before any work."""
    names = configured_names(sources)
    missing = [name for name in names if name not in SOURCE_FACTORIES]
    if missing:
        raise SourceError(f"sources.{missing[0]}: no {missing[0]} connector: remove the section, "
                          "or export its records as canonical files under sources.files")  # fmt: skip
    check_credentials(sources, names, environ)
    built = [SOURCE_FACTORIES[name](getattr(sources, name), context, environ) for name in names]
    for source in built:
        source.check()
    return built
