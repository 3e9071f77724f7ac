"""The whole `scorecard.yaml`: warehouse, sources, services, metrics and scorecard, composed from the sections
their owners define (connectors/ for sources and services, scoring/ for metrics and the scorecard).

`parse_config(data)` validates the file at once and raises `ConfigError` listing every problem, one
`path: message` line each. Secrets never live in the file: source sections name the environment
variables that hold them, and a warehouse URL with a password is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError, field_validator, model_validator

from connectors.registry import SourcesConfig
from connectors.services import ServiceMapping
from scoring.config import (
    TOO_LONG_NUMBER,
    ConfigError,
    EnvVarName,
    Kpi,
    MetricsConfig,
    Model,
    Objective,
    Perspective,
    ScorecardConfig,
    Text,
    duplicate_id_problems,
    format_errors,
    scope_problems,
    supports_problems,
    yaml_problem,
)
from warehouse.urls import secret_query_keys

_PASSWORD_ADVICE = "put the URL in SCORECARD_WAREHOUSE_URL or the password in PGPASSWORD/.pgpass"


class WarehouseConfig(Model):
    url: Text = "sqlite:///scorecard.db"

    @field_validator("url")
    @classmethod
    def _no_password(cls, url: str) -> str:
        # scheme://user:password@host or ?password=...: a secret in the file; never echo it.
        if re.match(r"^[\w+.-]+://[^/@:]*:[^/@]*@", url):
            raise ValueError(f"holds a password: {_PASSWORD_ADVICE}")
        secret_keys = secret_query_keys(url)
        if secret_keys:
            raise ValueError(f"holds a password (query parameter {', '.join(secret_keys)}): {_PASSWORD_ADVICE}")
        return url


class ReviewConfig(Model):
    """The review's own files, relative to scorecard.yaml: commentary (kpi_id, period, comment[, author]) and
    the action log (id, kpi_id or objective_id, action, owner, due, status); CSV or YAML."""

    comments: Text | None = None
    actions: Text | None = None


class AlertsConfig(Model):
    """Escalations post to a webhook (Slack-compatible) when the variable this names holds its URL."""

    webhook_url_env: EnvVarName = "SCORECARD_ALERT_WEBHOOK_URL"


class ReportConfig(Model):
    """Where every run writes the HTML report, relative to scorecard.yaml."""

    dir: Text = "reports"


class Config(Model):
    warehouse: WarehouseConfig = WarehouseConfig()
    sources: SourcesConfig = SourcesConfig()
    services: dict[str, ServiceMapping] = {}
    metrics: MetricsConfig = MetricsConfig()
    review: ReviewConfig = ReviewConfig()
    alerts: AlertsConfig = AlertsConfig()
    report: ReportConfig = ReportConfig()
    scorecard: ScorecardConfig

    @model_validator(mode="before")
    @classmethod
    def _empty_sections_default(cls, data: Any) -> Any:
        # `sources:` with only comments under it loads as None: take it as "use the defaults".
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if not (value is None and key != "scorecard")}
        return data

    @field_validator("services")
    @classmethod
    def _service_names(cls, services: dict[str, ServiceMapping]) -> dict[str, ServiceMapping]:
        if "all" in services:  # the leading `all: ` puts the line on `services.all`
            raise ValueError("all: 'all' is reserved for the organisation-wide rows; rename that service")
        return services

    @model_validator(mode="after")
    def _scoped_services_exist(self) -> Config:
        problems = scope_problems(self.scorecard, list(self.services))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def iter_kpis(self) -> Iterator[tuple[Perspective, Objective, Kpi]]:
        return self.scorecard.iter_kpis()


def parse_config(data: Any) -> Config:
    """Validate a loaded scorecard.yaml; raises ConfigError listing every problem found."""
    if data is None:
        raise ConfigError(["config: the file is empty (expected sections such as scorecard:)"])
    if not isinstance(data, dict):
        raise ConfigError([f"config: expected a mapping of sections, got {type(data).__name__}"])
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        lines = format_errors(error) + _raw_cross_check_problems(data)
        raise ConfigError(list(dict.fromkeys(lines))) from None


def _raw_cross_check_problems(data: dict[str, Any]) -> list[str]:
    """Duplicate ids and unknown scope services, read from the raw file data (reported even when other
    parts of the file fail validation)."""
    scorecard = data.get("scorecard")
    if not isinstance(scorecard, dict):
        return []
    services = data.get("services")
    service_names = [str(name) for name in services] if isinstance(services, dict) else []
    edges = duplicate_id_problems(scorecard) + supports_problems(scorecard)
    return [f"scorecard.{line}" for line in edges] + scope_problems(scorecard, service_names)


def parse_config_text(text: str) -> Config:
    """`parse_config` over YAML text; YAML syntax errors become a ConfigError too."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError([f"config: not valid YAML: {yaml_problem(error)}"]) from None
    except ValueError:  # int() of a number longer than Python will convert
        raise ConfigError([f"config: not valid YAML: {TOO_LONG_NUMBER}"]) from None
    return parse_config(data)


def read_config(path: str | Path) -> Config:
    """Load and validate a scorecard.yaml; every problem is raised as one ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([f"{path}: config file not found (pass --config PATH)"])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError([f"{path}{where}: not valid YAML ({problem})"]) from None
    except ValueError:  # int() of a number longer than Python will convert
        raise ConfigError([f"{path}: not valid YAML ({TOO_LONG_NUMBER})"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: expected a mapping with a scorecard: section"])
    return parse_config(data)
