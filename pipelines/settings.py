"""Reading `scorecard.yaml` from disk, and turning its sections into engine settings."""

from __future__ import annotations

import os
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


# The mappings of `services:` that name an incident source: a service mapped by one of them is monitored.
INCIDENT_SOURCE_MAPPINGS = ("pagerduty_services", "servicenow_cis", "jira_components")


def monitored_services(config: Config | None) -> list[str] | None:
    """The services availability and MTBF are figures of: those mapped to an incident source in `services:`.

    None when `services:` maps no incident source at all: the metric engine then takes the services
    with any incident record.
    """
    if config is None:
        return None
    mapped = [name for name, mapping in config.services.items()
              if any(getattr(mapping, field) for field in INCIDENT_SOURCE_MAPPINGS)]  # fmt: skip
    return sorted(mapped) or None


def known_services(config: Config | None) -> set[str] | None:
    """The service vocabulary records must use, or None when the config declares none."""
    if config is None or not config.services:
        return None
    return set(config.services)


def with_files_source(config_path: str | Path, files: dict[str, Path], out_path: str | Path,
                      warehouse_url: str | None = None) -> Path:
    """Write a copy of the config at `config_path` to `out_path` whose only source is `files` (kind -> path).

    Used by `scorecard generate --write-config` so the demo runs the real pipeline on generated files
    without vendor credentials. Paths are written relative to the new config's folder, as sources read them.
    """
    data = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    folder = out_path.resolve().parent
    data["sources"] = {"files": {kind: os.path.relpath(Path(path).resolve(), folder) for kind, path in files.items()}}
    if warehouse_url is not None:
        data["warehouse"] = {"url": warehouse_url}
    parse_config(data)  # what is written must be valid
    header = f"# Written by `scorecard generate` from {config_path}: the same scorecard, fed by the generated files.\n"
    out_path.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out_path
