"""Turning the sections of `scorecard.yaml` into what the engine and the sources take."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from connectors import services
from connectors.base import SourceContext
from connectors.files.source import resolve
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
                      warehouse_url: str | None = None, services: dict | None = None) -> Path:
    """Write a copy of the config at `config_path` to `out_path` whose only source is `files` (kind -> path), and
    `services` as its services when given.

    Used by `scorecard generate --write-config` so the demo runs the real pipeline on generated files
    without vendor credentials.
    """
    return write_config_copy(config_path, out_path, {"files": files_section(files, out_path)}, services=services,
                             warehouse_url=warehouse_url, written_by="scorecard generate")  # fmt: skip


def files_section(files: dict[str, Path], out_path: str | Path) -> dict[str, str]:
    """`sources.files` for a config written at `out_path`: paths relative to its folder, as sources read them."""
    folder = Path(out_path).resolve().parent
    return {kind: os.path.relpath(Path(path).resolve(), folder) for kind, path in files.items()}


def _moved(section: dict, config_path: Path, out_path: Path) -> dict:
    """A section of paths relative to `config_path`'s folder, made relative to `out_path`'s folder."""
    paths = {key: resolve(str(path), config_path.resolve().parent) for key, path in section.items() if path}
    return {**section, **files_section(paths, out_path)}


def write_config_copy(
    config_path: str | Path,
    out_path: str | Path,
    sources: dict,
    *,
    services: dict | None = None,
    warehouse_url: str | None = None,
    review: dict | None = None,
    written_by: str,
) -> Path:
    """A copy of the config at `config_path` with other `sources` (and `services`, `warehouse.url`, `review` files),
    validated, written to `out_path` in one step (a reader never sees half a file). The review files of the original
    are kept, their paths made relative to the copy, unless `review` replaces them."""
    data = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    data["sources"] = sources
    if review is not None or isinstance(data.get("review"), dict):
        data["review"] = review if review is not None else _moved(data["review"], Path(config_path), out_path)
    if services is not None:
        data["services"] = services
    if warehouse_url is not None:
        data["warehouse"] = {"url": warehouse_url}
    parse_config(data)  # what is written must be valid
    header = f"# Written by `{written_by}` from {config_path}: the same scorecard, fed by other sources.\n"
    partial = out_path.with_name(out_path.name + ".partial")
    partial.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    partial.replace(out_path)
    return out_path
