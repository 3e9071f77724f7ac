"""Dagster resources: the scorecard configuration, the warehouse, the alert webhook and a progress reporter.

Secrets never sit in the definitions: the warehouse URL (which may carry a password) comes from
SCORECARD_WAREHOUSE_URL through `EnvVar`, or from scorecard.yaml's `warehouse.url`; the alert webhook's URL
from SCORECARD_ALERT_WEBHOOK_URL through `EnvVar` (or the variable `alerts.webhook_url_env` names); source
credentials are environment variables named by scorecard.yaml and read by the sources.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from connectors.base import Source
from connectors.files.review import Review, read_review
from connectors.files.source import resolve, values_path
from connectors.registry import configured_sources
from pipelines.config import AlertsConfig, Config, read_config
from pipelines.settings import source_context
from warehouse import Warehouse

CONFIG_ENV = "SCORECARD_CONFIG"
WAREHOUSE_URL_ENV = "SCORECARD_WAREHOUSE_URL"
ALERT_WEBHOOK_URL_ENV = AlertsConfig().webhook_url_env  # SCORECARD_ALERT_WEBHOOK_URL
DEFAULT_CONFIG = "scorecard.yaml"


class ScorecardConfigResource(ConfigurableResource):
    """scorecard.yaml: `path`, else $SCORECARD_CONFIG, else ./scorecard.yaml. Paths inside it are relative to it."""

    path: str | None = Field(default=None, description="Path to scorecard.yaml (default: $SCORECARD_CONFIG).")

    @property
    def config_path(self) -> Path:
        return Path(self.path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)

    def load(self) -> Config:
        """The validated config; raises scoring.config.ConfigError."""
        return read_config(self.config_path)

    def sources(self, config: Config) -> list[Source]:
        """The configured sources, checked; raises SourceError for one that cannot run."""
        return configured_sources(config.sources, source_context(config, self.config_path.resolve().parent))

    def values_path(self, config: Config) -> Path | None:
        return values_path(config.sources.files, self.config_path.resolve().parent)

    def review(self, config: Config) -> Review:
        """The commentary and action log of `review:` (no rows for a path not set); raises ReviewFileError."""
        base_dir = self.config_path.resolve().parent
        comments, actions = (resolve(path, base_dir) if path else None
                             for path in (config.review.comments, config.review.actions))  # fmt: skip
        return read_review(comments, actions, config.scorecard)


class WarehouseResource(ConfigurableResource):
    """The warehouse: `url` (set from SCORECARD_WAREHOUSE_URL), else scorecard.yaml's warehouse.url."""

    url: str | None = Field(default=None, description="SQLAlchemy URL; default: warehouse.url in scorecard.yaml.")

    def resolve_url(self, config: Config) -> str:
        return self.url or os.environ.get(WAREHOUSE_URL_ENV) or config.warehouse.url

    def connect(self, config: Config) -> Warehouse:
        """Open (and create or migrate) the warehouse; raises WarehouseError with the password masked."""
        return Warehouse.connect(self.resolve_url(config))


def warehouse_resource() -> WarehouseResource:
    """The resource as deployed: the URL via EnvVar when SCORECARD_WAREHOUSE_URL is set (never shown in the UI)."""
    if os.environ.get(WAREHOUSE_URL_ENV):
        return WarehouseResource(url=EnvVar(WAREHOUSE_URL_ENV))
    return WarehouseResource()


class AlertWebhookResource(ConfigurableResource):
    """Where escalation alerts are posted: `url` (set from $SCORECARD_ALERT_WEBHOOK_URL through EnvVar), else the
    variable scorecard.yaml's alerts.webhook_url_env names. None of them set: alerts are recorded, not posted.

    The URL is a secret (a Slack webhook's path carries its token): nothing shows more of it than scheme and host.
    """

    url: str | None = Field(default=None, description="The webhook URL; set it through EnvVar, it is a secret.")

    def resolve_url(self, config: Config) -> str | None:
        """The URL to post to, or None when no webhook is configured. A config naming its own variable reads that
        one: `url` stands for the default variable."""
        named = config.alerts.webhook_url_env
        if named == ALERT_WEBHOOK_URL_ENV and self.url:
            return self.url
        return os.environ.get(named) or None


def alert_webhook_resource() -> AlertWebhookResource:
    """The resource as deployed: the URL via EnvVar when SCORECARD_ALERT_WEBHOOK_URL is set (never shown in the UI)."""
    if os.environ.get(ALERT_WEBHOOK_URL_ENV):
        return AlertWebhookResource(url=EnvVar(ALERT_WEBHOOK_URL_ENV))
    return AlertWebhookResource()


class ProgressReporter:
    """Steps of a run report here; the CLI swaps in one that drives a progress bar. Does nothing by default.

    `step_done` is called once for each of pipelines.cli.runner.STEPS (the facts step: once per record kind, as its
    last batch lands); `step_started` names what is under way."""

    def step_started(self, step: str) -> None:
        pass

    def step_done(self, step: str, **counts: int) -> None:
        pass
