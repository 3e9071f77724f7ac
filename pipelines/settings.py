"""Reading `scorecard.yaml` from disk, and turning its sections into engine settings."""

from __future__ import annotations

from pathlib import Path

import yaml

from scoring.config import Config, ConfigError, parse_config
from scoring.metrics import MetricSettings


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
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: expected a mapping with a scorecard: section"])
    return parse_config(data)


def metric_settings(config: Config | None) -> MetricSettings:
    if config is None:
        return MetricSettings()
    section = config.metrics
    return MetricSettings(
        failure_severities=tuple(section.failure_severities),
        change_failure_window=section.window,
        production_environments=tuple(section.production_environments),
    )


def known_services(config: Config | None) -> set[str] | None:
    """The service vocabulary records must use, or None when the config declares none."""
    if config is None or not config.services:
        return None
    return set(config.services)
