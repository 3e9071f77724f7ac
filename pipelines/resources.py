"""Dagster resources: the scorecard configuration, the warehouse and a progress reporter.

Secrets never sit in the definitions: the warehouse URL (which may carry a password) comes from
SCORECARD_WAREHOUSE_URL through `EnvVar`, or from scorecard.yaml's `warehouse.url`; source
credentials are environment variables named by scorecard.yaml and read by the sources.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from connectors.base import Source
from connectors.files.source import values_path
from connectors.registry import configured_sources
from pipelines.config import Config, read_config
from pipelines.settings import source_context
from warehouse import Warehouse

CONFIG_ENV = "SCORECARD_CONFIG"
WAREHOUSE_URL_ENV = "SCORECARD_WAREHOUSE_URL"
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


class ProgressReporter:
    """Steps of a run report here; the CLI swaps in one that drives a progress bar. Does nothing by default."""

    def step_started(self, step: str) -> None:
        pass

    def step_done(self, step: str, **counts: int) -> None:
        pass
