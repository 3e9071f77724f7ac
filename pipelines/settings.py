"""Turning the sections of `scorecard.yaml` into what the engine and the sources take."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from connectors import services
from connectors.base import SourceContext
from pipelines.config import Config, parse_config
from scoring.metrics import MetricSettings


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
    return services.known_services(config.services) if config is not None else None


def monitored_services(config: Config | None) -> list[str] | None:
    """The services availability and MTBF are figures of (connectors.services.monitored_services)."""
    return services.monitored_services(config.services) if config is not None else None


def source_context(config: Config, base_dir: Path) -> SourceContext:
    """What every source factory gets besides its section: paths start at `base_dir` (the config's folder)."""
    return SourceContext(base_dir, config.services, tuple(config.metrics.production_environments))


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
