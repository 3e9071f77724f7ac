"""Glue from the `files` and `manual` sources to the pure engine: load, derive, score."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from connectors.files.read import FileRecords, read_records
from connectors.records import KINDS, empty_frame
from pipelines.config import Config
from pipelines.settings import metric_settings, monitored_services
from scoring.metrics import derive_metrics
from scoring.periods import floor_to_period, utc
from scoring.scorecard import kpi_values_from_metrics, score

EVENT_COLUMNS = {
    "incidents": "opened_at",
    "changes": "implemented_at",
    "deployments": "deployed_at",
    "pull_requests": "merged_at",
}


@dataclass
class LoadedRecords:
    frames: dict[str, pd.DataFrame]
    files: list[FileRecords] = field(default_factory=list)

    def earliest_event(self) -> pd.Timestamp | None:
        firsts = [frame[EVENT_COLUMNS[kind]].min() for kind, frame in self.frames.items() if len(frame)]
        firsts = [f for f in firsts if pd.notna(f)]
        return min(firsts) if firsts else None


def load_record_files(paths: dict[str, Path | None], known_services: set[str] | None) -> LoadedRecords:
    """Read the given canonical files; kinds without a file get an empty typed frame."""
    loaded = LoadedRecords(frames={kind: empty_frame(kind) for kind in KINDS})
    for kind, path in paths.items():
        if path is None:
            continue
        file_records = read_records(kind, path, known_services)
        loaded.frames[kind] = file_records.good
        loaded.files.append(file_records)
    return loaded


def reporting_window(
    loaded: LoadedRecords, start: pd.Timestamp | None, end: pd.Timestamp | None, as_of: pd.Timestamp, grain: str
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) to report: given bounds, else from the first record's period to `as_of`."""
    end = utc(end) if end is not None else as_of
    if start is None:
        first = loaded.earliest_event()
        start = first if first is not None else end - pd.Timedelta(days=1)
    return utc(start), end


def derive(
    frames: dict[str, pd.DataFrame],
    *,
    grain: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    as_of: pd.Timestamp,
    config: Config | None,
) -> pd.DataFrame:
    """Every metric over the record frames (kind -> frame), with the config's metrics settings, services and
    monitored services: the one place a config becomes the metric engine's arguments."""
    return derive_metrics(
        frames["incidents"], frames["changes"], frames["deployments"], frames["pull_requests"],
        grain=grain, start=start, end=end, as_of=as_of, settings=metric_settings(config),
        services=sorted(config.services) if config is not None else None, monitored=monitored_services(config),
    )


def score_scorecard(
    config: Config, metric_values: pd.DataFrame, manual_values: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    values = kpi_values_from_metrics(config.scorecard, metric_values, manual_values)
    return score(config.scorecard, values)


def current_period_start(as_of: pd.Timestamp, grain: str) -> pd.Timestamp:
    return pd.Timestamp(floor_to_period(pd.DatetimeIndex([utc(as_of)]), grain)[0], tz="UTC")

