"""Where canonical records come from: a small source interface and the sources configured in scorecard.yaml.

A source turns (kind, [start, end)) into the canonical records of that kind *updated* in the window,
already normalised (`good`) plus the rows it could not read (`rejected`). The `files` source reads
the canonical CSV / JSON-lines files under `sources.files`; the vendor connectors (github,
pagerduty, jira, servicenow) plug in as more entries of `SOURCE_FACTORIES`. Sources know nothing
about the warehouse: the Dagster assets write what they return.

`configured_sources` is also the pre-flight check of a run: it fails with `SourceError` before
anything is written on a configured source without a connector, a missing credential environment
variable, or a file that cannot be read at all (absent, empty, not CSV/JSON, a required column
missing). Bad *rows* are not a pre-flight error: they go to rejected_records.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import pandas as pd

from connectors.files import FileRecords, InputFileError, read_records
from connectors.records import KINDS, REJECTED_COLUMNS, empty_frame
from pipelines.settings import known_services
from scoring.config import Config

# When a record happened, newest first: a record without updated_at is placed by its event time.
RECORD_TIME_COLUMNS: dict[str, tuple[str, ...]] = {
    "incidents": ("updated_at", "opened_at"),
    "changes": ("updated_at", "implemented_at"),
    "deployments": ("updated_at", "deployed_at"),
    "pull_requests": ("updated_at", "merged_at", "created_at"),
}
VENDOR_SOURCES = ("github", "pagerduty", "jira", "servicenow")


class SourceError(Exception):
    """A source that cannot run: a missing file, a missing credential. The message names no secret."""


@dataclass
class SourceBatch:
    """What one source returned for one kind and window."""

    good: pd.DataFrame  # typed like normalise_frame's good output
    rejected: pd.DataFrame  # REJECTED_COLUMNS
    same_time_conflicts: int = 0  # rows that lost a tie on (source, source_id, updated_at) to other content

    @property
    def read(self) -> int:
        return len(self.good) + len(self.rejected)


class Source(Protocol):
    name: str

    def check(self) -> None:
        """Raise SourceError if the source cannot run at all (the pre-flight: before anything is written)."""
        ...

    def fetch(self, kind: str, start: pd.Timestamp, end: pd.Timestamp) -> SourceBatch:
        """Records of `kind` updated in [start, end) (UTC)."""
        ...


def empty_batch(kind: str) -> SourceBatch:
    return SourceBatch(empty_frame(kind), pd.DataFrame({c: pd.Series([], dtype=object) for c in REJECTED_COLUMNS}))


def record_times(frame: pd.DataFrame, kind: str) -> pd.Series:
    """Each record's time for windowing: updated_at, else its event time (UTC; NaT if none)."""
    stamps = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    for column in RECORD_TIME_COLUMNS[kind]:
        if column in frame.columns:
            parsed = pd.to_datetime(frame[column], utc=True, errors="coerce", format="ISO8601")
            stamps = stamps.fillna(parsed.dt.as_unit("ns"))
    return stamps


def in_window(stamps: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    return (stamps >= start) & (stamps < end)


# ---------------------------------------------------------------------------------------------
# The `files` source


@dataclass
class FilesSource:
    """Canonical-record files; each file is read once per process (while unchanged) and sliced per window."""

    paths: dict[str, Path]
    services: set[str] | None = None
    name: str = "files"

    def check(self) -> None:
        """Read every file: one that cannot be read at all stops the run before any asset writes."""
        for kind in self.paths:
            self._records(kind)

    def fetch(self, kind: str, start: pd.Timestamp, end: pd.Timestamp) -> SourceBatch:
        if kind not in self.paths:
            return empty_batch(kind)
        records = self._records(kind)
        good = records.good[in_window(record_times(records.good, kind), start, end)]
        # the file's count, whatever the window: the export holds them, and the later row was kept
        return SourceBatch(good.reset_index(drop=True), _rejected_in_window(records.rejected, kind, start, end),
                           records.conflicting_duplicates)  # fmt: skip

    def _records(self, kind: str) -> FileRecords:
        path = self.paths[kind]
        try:
            stat = path.stat()
            services = tuple(sorted(self.services)) if self.services is not None else None
            return _read_unchanged(kind, str(path), stat.st_mtime_ns, stat.st_size, services)
        except (InputFileError, OSError) as error:
            raise SourceError(f"sources.files.{kind}: {_file_problem(error, path)}") from None


def _file_problem(error: Exception, path: Path) -> str:
    if isinstance(error, InputFileError):
        return str(error)
    return f"cannot read {path}: {error.strerror or error}"


@lru_cache(maxsize=len(KINDS))
def _read_unchanged(kind: str, path: str, _mtime_ns: int, _size: int, services: tuple[str, ...] | None) -> FileRecords:
    """read_records, once per file version: the pre-flight and every asset step of a run share one read."""
    return read_records(kind, path, set(services) if services is not None else None)


def _rejected_in_window(rejected: pd.DataFrame, kind: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Rejected rows placed by the timestamps in their payload; a row with none readable is in every window."""
    payload = pd.DataFrame.from_records(rejected["payload"].map(_payload_fields).tolist(), index=rejected.index)
    stamps = record_times(payload, kind)
    keep = in_window(stamps, start, end) | stamps.isna()
    return rejected[keep].reset_index(drop=True)


def _payload_fields(payload: object) -> dict:
    try:
        value = json.loads(payload) if isinstance(payload, str) else None
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def files_source(config: Config, base_dir: Path) -> FilesSource:
    section = config.sources.files
    paths = {name: _resolve(getattr(section, name), base_dir) for name in (*KINDS, "values") if getattr(section, name)}
    missing = [f"sources.files.{name}: {_not_a_file(path)}" for name, path in paths.items() if not path.is_file()]
    if missing:
        raise SourceError(missing[0] + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    paths.pop("values", None)  # manual KPI values are read by the scoring step (`values_path`)
    return FilesSource(paths, known_services(config))


def _not_a_file(path: Path) -> str:
    return f"{path} is a directory, not a file" if path.is_dir() else f"file not found: {path}"


def values_path(config: Config, base_dir: Path) -> Path | None:
    """The manual KPI values CSV (`sources.files.values`), if configured."""
    files = config.sources.files
    return _resolve(files.values, base_dir) if files is not None and files.values else None


def _resolve(path: str, base_dir: Path) -> Path:
    """Paths in scorecard.yaml are relative to the file's own folder."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else base_dir / candidate


# ---------------------------------------------------------------------------------------------
# Configured sources

SourceFactory = Callable[[Config, Path], Source]
SOURCE_FACTORIES: dict[str, SourceFactory] = {"files": files_source}


def credential_env_names(config: Config) -> dict[str, str]:
    """`sources.<name>.<field>` -> environment variable name, for every credential a configured source names."""
    names = {}
    for source_name in configured_names(config):
        section = getattr(config.sources, source_name)
        if section is None:
            continue
        for field_name, value in section.model_dump().items():
            if field_name.endswith("_env") and value:
                names[f"sources.{source_name}.{field_name}"] = value
    return names


def check_credentials(config: Config, names: list[str], environ: Mapping[str, str] | None = None) -> None:
    """Every credential environment variable the named sources need is set (SourceError names the first missing)."""
    environ = os.environ if environ is None else environ
    needed = {path: env for path, env in credential_env_names(config).items() if path.split(".")[1] in names}
    missing = [(path, env) for path, env in needed.items() if not environ.get(env)]
    if missing:
        path, env = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise SourceError(f"environment variable {env} is not set ({path}){more}")


def configured_names(config: Config) -> list[str]:
    return [name for name in (*VENDOR_SOURCES, "files") if getattr(config.sources, name) is not None]


def configured_sources(config: Config, base_dir: Path, environ: Mapping[str, str] | None = None) -> list[Source]:
    """Every configured source, checked: raises SourceError before any work when one cannot run.

    A source that is configured but cannot be read must stop the run: going on without it would
    replace stored scores with emptier ones.
    """
    names = configured_names(config)
    missing = [name for name in names if name not in SOURCE_FACTORIES]
    if missing:
        raise SourceError(f"sources.{missing[0]}: no {missing[0]} connector in this release yet: remove the section, "
                          "or export its records as canonical files under sources.files")  # fmt: skip
    check_credentials(config, names, environ)
    sources = [SOURCE_FACTORIES[name](config, base_dir) for name in names]
    for source in sources:
        source.check()
    return sources
