"""The `files` source: `sources.files` paths read as canonical records and sliced per window."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from connectors.base import SourceBatch, SourceContext, SourceError, empty_batch, in_window, record_times, utc
from connectors.files.config import FilesConfig
from connectors.files.read import FileRecords, InputFileError, read_records
from connectors.records import KINDS
from connectors.services import known_services


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

    @property
    def kinds(self) -> tuple[str, ...]:
        """The record kinds it reads: those with a file."""
        return tuple(kind for kind in KINDS if kind in self.paths)

    def fetch(self, kind: str, start: pd.Timestamp, end: pd.Timestamp, cursor: str | None = None) -> SourceBatch:
        """The file's records updated in the window; files need no cursor (each run reads the whole file).

        A file's history starts on its records' own first day: the window is covered from then on."""
        if kind not in self.paths:
            return empty_batch(kind)
        records = self._records(kind)
        times = record_times(records.good, kind)
        good = records.good[in_window(times, start, end)]
        # the file's count, whatever the window: the export holds them, and the later row was kept
        batch = SourceBatch(good.reset_index(drop=True), _rejected_in_window(records.rejected, kind, start, end),
                            records.conflicting_duplicates)  # fmt: skip
        first_day = times.min().floor("D") if times.notna().any() else utc(start)
        if utc(end) > max(utc(start), first_day):
            batch.covered = (max(utc(start), first_day), utc(end))
        return batch

    def _records(self, kind: str) -> FileRecords:
        path = self.paths[kind]
        try:
            stat = path.stat()
            services = tuple(sorted(self.services)) if self.services is not None else None
            return _read_unchanged(kind, str(path), stat.st_mtime_ns, stat.st_size, services)
        except (InputFileError, OSError) as error:
            raise SourceError(f"sources.files.{kind}: {_file_problem(error, path)}") from None


def files_source(
    section: FilesConfig, context: SourceContext, environ: Mapping[str, str] | None = None
) -> FilesSource:
    """The source of `sources.files`; raises SourceError naming a path that is not a file. It needs no credential:
    `environ` is taken only to match the other factories."""
    paths = {name: resolve(getattr(section, name), context.base_dir)
             for name in (*KINDS, "values") if getattr(section, name)}  # fmt: skip
    missing = [f"sources.files.{name}: {_not_a_file(path)}" for name, path in paths.items() if not path.is_file()]
    if missing:
        raise SourceError(missing[0] + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    paths.pop("values", None)  # manual KPI values are read by the scoring step (`values_path`)
    return FilesSource(paths, known_services(context.services))


def values_path(section: FilesConfig | None, base_dir: Path) -> Path | None:
    """The manual KPI values CSV (`sources.files.values`), if configured."""
    return resolve(section.values, base_dir) if section is not None and section.values else None


def resolve(path: str, base_dir: Path) -> Path:
    """Paths in scorecard.yaml are relative to the file's own folder."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else base_dir / candidate


def _not_a_file(path: Path) -> str:
    return f"{path} is a directory, not a file" if path.is_dir() else f"file not found: {path}"


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
