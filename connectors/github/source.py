"""The `github` source: deployments and merged pull requests of `sources.github.repos`, read through GraphQL.

Per repository and window [start, end):
- deployments: only to the production environments (`sources.github.production_environments`, else
  `metrics.production_environments`), read newest created first, since GitHub has no "updated since" filter
  for them; reading stops after the first page whose oldest deployment was created before start minus
  `lookback_days`, so a status that arrives in the window for a deployment created shortly before it is
  picked up, and, per environment, after the newest deployment that went live before the window when one went live
  in it (`SupersededReach`): GitHub posts INACTIVE on that one then, however long ago it was created. Kept: the
  deployments whose updated_at (their latest status's time) is in the window.
- pull requests: merged ones, most recently updated first, up to the first page reaching before the window.
  Kept: those updated in the window.
A repository no service claims under `services:` lands as "unmapped". Each window is read from GitHub as it is
now; the cursor returned is `connectors.base.read_through` (how far the source has read, for sync_state).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import pandas as pd

from connectors.base import (
    SourceBatch,
    SourceContext,
    SourceError,
    credential,
    empty_batch,
    in_window,
    record_times,
    records_read_through,
    utc,
)
from connectors.github import extract
from connectors.github.client import SOURCE, GithubClient, reaches, timestamp
from connectors.github.config import DEFAULT_CHANGE_PATTERN, GithubConfig
from connectors.http import VendorAuthError, pause
from connectors.records import normalise
from connectors.services import Services, service_names, vendor_record_services

KINDS = ("deployments", "pull_requests")
T = TypeVar("T")


@dataclass
class GithubSource:
    """One GitHub (or GitHub Enterprise) account's repositories; see the module docstring."""

    client: GithubClient
    repos: tuple[str, ...]
    environments: tuple[str, ...]
    services: Services = field(default_factory=dict)
    token_env: str = "GITHUB_TOKEN"
    lookback: pd.Timedelta = pd.Timedelta(days=3)
    change_pattern: re.Pattern[str] = re.compile(DEFAULT_CHANGE_PATTERN)
    name: str = "github"

    def check(self) -> None:
        """One cheap authenticated request: a refused token stops the run before anything is written."""
        self._read(self.client.viewer)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds this source reads."""
        return KINDS

    @records_read_through
    def fetch(self, kind: str, start: pd.Timestamp, end: pd.Timestamp, cursor: str | None = None) -> SourceBatch:
        """The repos' records of `kind` updated in [start, end); the cursor returned says how far it has read."""
        if kind not in KINDS or not self.repos or (kind == "deployments" and not self.environments):
            return empty_batch(kind)
        start, end = utc(start), utc(end)
        if end <= start:
            return empty_batch(kind)
        rows = self._read(lambda: self._deployment_rows(start, end) if kind == "deployments" else self._pr_rows(start))
        if not rows:
            return empty_batch(kind)
        columns = extract.DEPLOYMENT_COLUMNS if kind == "deployments" else extract.PULL_REQUEST_COLUMNS
        raw = pd.DataFrame(rows, columns=columns)
        stamps = record_times(raw, kind)
        raw = raw[in_window(stamps, start, end) | stamps.isna()]  # a row that cannot be placed is reported
        if raw.empty:
            return empty_batch(kind)
        result = normalise(kind, raw, self._known_services())
        return SourceBatch(result.good, result.rejected, result.conflicting_duplicates)

    def _deployment_rows(self, start: pd.Timestamp, end: pd.Timestamp) -> list[dict]:
        reach = SupersededReach(start.to_pydatetime(), end.to_pydatetime(), (start - self.lookback).to_pydatetime())
        pages = self.client.deployments(self.repos, list(self.environments), reach)
        services = self._services()
        return [extract.deployment_row(repo, services[repo], node, self.change_pattern)
                for repo, nodes in pages for node in nodes]  # fmt: skip

    def _pr_rows(self, start: pd.Timestamp) -> list[dict]:
        services = self._services()
        pages = self.client.pull_requests(self.repos, start.to_pydatetime())
        return [extract.pull_request_row(repo, services[repo], node) for repo, nodes in pages for node in nodes]

    def _services(self) -> dict[str, str]:
        """Each repository's service name (UNMAPPED when no service claims it)."""
        return dict(zip(self.repos, service_names(self.services, "github_repos", pd.Series(self.repos)), strict=True))

    def _known_services(self) -> set[str] | None:
        return vendor_record_services(self.services)

    def _read(self, read: Callable[[], T]) -> T:
        """`read()`, with a refused credential said in terms of the config: the variable, never the token."""
        try:
            return read()
        except VendorAuthError as error:
            status = re.search(r"HTTP (\d{3})", str(error))
            raise SourceError(f"{SOURCE}: GitHub refused the token in {self.token_env}"
                              f"{f' (HTTP {status.group(1)})' if status else ''}: check the token, its scopes and "
                              f"its SSO authorisation for the organisation ({SOURCE}.token_env)") from None  # fmt: skip


@dataclass
class SupersededReach:
    """Whether to read a repository's next page of deployments (newest created first): while the page does not reach
    before `created_since` (the look-back, for statuses that arrive late), and while an environment has a deployment
    that went live in [start, end) but none yet that went live before `start`. That one was the environment's live
    deployment when the window began: GitHub marked it INACTIVE in the window (auto-inactive), however long ago it
    was created, so it is updated in the window. (Deployments to one environment that overlap, a newer one going live
    first, are covered by the look-back only.)"""

    start: datetime
    end: datetime
    created_since: datetime
    waiting: dict[str, set[str]] = field(default_factory=dict)  # repo -> environments still to reach back in
    reached: dict[str, set[str]] = field(default_factory=dict)  # repo -> environments reached back in

    def __call__(self, repo: str, nodes: list) -> bool:
        waiting, reached = self.waiting.setdefault(repo, set()), self.reached.setdefault(repo, set())
        for node in nodes:
            live, environment = timestamp(extract.went_live(node)), extract.environment(node)
            if live is None or environment in reached:
                continue
            if live < self.start:
                reached.add(environment)
                waiting.discard(environment)
            elif live < self.end:
                waiting.add(environment)
        return bool(waiting) or not reaches(nodes, "createdAt", self.created_since)


def github_source(
    section: GithubConfig,
    context: SourceContext,
    environ: Mapping[str, str] | None = None,
    *,
    sleep: Callable[[float], None] = pause,
) -> GithubSource:
    """The source of `sources.github`; raises SourceError when its token variable is not set."""
    token = credential(section.token_env, f"{SOURCE}.token_env", environ)
    return GithubSource(
        client=GithubClient(section.base_url, token, sleep=sleep, limits=section.limits),
        repos=tuple(section.repos),
        environments=tuple(section.production_environments or context.production_environments),
        services=context.services,
        token_env=section.token_env,
        lookback=pd.Timedelta(days=section.lookback_days),
        change_pattern=re.compile(section.change_pattern),
    )


