"""The `files` source: canonical records from CSV or JSON-lines exports.

Rows become typed records in bulk through `records.normalise_frame`; rows that cannot be read
(bad JSON, a missing timestamp, resolved before opened, ...) come back as rejected rows with the
file's line number and a one-line reason, and the good rows of the same file still land.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from connectors.records import REJECTED_COLUMNS, normalise_frame

JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json")


class InputFileError(ValueError):
    """A file that cannot be read at all (absent, wrong columns, not CSV/JSON)."""


@dataclass
class FileRecords:
    kind: str
    path: Path
    good: pd.DataFrame
    rejected: pd.DataFrame  # REJECTED_COLUMNS; `row` is the file's line number

    def rejection_lines(self, limit: int = 5) -> list[str]:
        shown = self.rejected.head(limit)
        lines = [f"{self.path.name} line {r.row}: {r.column}: {r.reason}" for r in shown.itertuples()]
        if len(self.rejected) > limit:
            lines.append(f"{self.path.name}: ... and {len(self.rejected) - limit} more rejected rows")
        return lines


def read_records(kind: str, path: str | Path, known_services: set[str] | None = None) -> FileRecords:
    """Read one file of canonical `kind` records (CSV, or JSON lines for .jsonl/.ndjson/.json)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{kind} file not found: {path}")
    if path.suffix.lower() in JSON_LINES_SUFFIXES:
        raw, line_numbers, unreadable = _read_json_lines(path)
    else:
        raw, line_numbers, unreadable = _read_csv(path), None, _no_rejections()
    if raw.empty and not len(raw.columns) and unreadable.empty:
        raise InputFileError(f"{path}: the file is empty (expected a header row of {kind} columns)")
    try:
        good, rejected = normalise_frame(kind, raw, known_services, row_numbers=line_numbers)
    except ValueError as error:
        raise InputFileError(f"{path}: {error}") from None
    if line_numbers is None:
        rejected["row"] = rejected["row"] + 1  # header is line 1, first data row is line 2
    if len(unreadable):
        rejected = pd.concat([unreadable, rejected], ignore_index=True)
    return FileRecords(kind, path, good, rejected)


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InputFileError(f"{path}: not a readable CSV file ({str(error).splitlines()[0]})") from None


def _read_json_lines(path: Path) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return _read_json_array(path, text)
    objects, numbers, bad = [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            bad.append(_unreadable(number, f"bad JSON ({error.msg} at column {error.colno})", line))
            continue
        if not isinstance(value, dict):
            bad.append(_unreadable(number, "bad JSON (a line must hold one object)", line))
            continue
        objects.append(value)
        numbers.append(number)
    unreadable = pd.DataFrame(bad, columns=REJECTED_COLUMNS) if bad else _no_rejections()
    return pd.DataFrame.from_records(objects), pd.Series(numbers, dtype="int64"), unreadable


def _read_json_array(path: Path, text: str) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputFileError(f"{path}: bad JSON ({error.msg} at line {error.lineno})") from None
    if not all(isinstance(v, dict) for v in values):
        raise InputFileError(f"{path}: a JSON array must hold one object per record")
    return pd.DataFrame.from_records(values), pd.Series(range(1, len(values) + 1), dtype="int64"), _no_rejections()


def _unreadable(line_number: int, reason: str, line: str) -> dict:
    return {"row": line_number, "source": None, "source_id": None, "column": "", "reason": reason, "payload": line}


def _no_rejections() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in REJECTED_COLUMNS})
