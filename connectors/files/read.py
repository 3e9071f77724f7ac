"""The `files` source: canonical records from CSV or JSON-lines exports.

Rows become typed records in bulk through `records.normalise`; rows that cannot be read
(bad JSON, a missing timestamp, resolved before opened, ...) come back as rejected rows with the
file's line number and a one-line reason, and the good rows of the same file still land.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from connectors.records import REJECTED_COLUMNS, empty_frame, normalise

JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json")


class InputFileError(ValueError):
    """A file that cannot be read at all (absent, wrong columns, not CSV/JSON)."""


@dataclass
class FileRecords:
    kind: str
    path: Path
    good: pd.DataFrame
    rejected: pd.DataFrame  # REJECTED_COLUMNS; `row` is the file's line number
    conflicting_duplicates: int = 0  # see records.Normalised: same key and updated_at, other content, last row kept

    def rejection_lines(self, limit: int = 5) -> list[str]:
        shown = self.rejected.head(limit)
        lines = [f"{self.path.name} line {r.row}: {_column_part(r.column)}{r.reason}" for r in shown.itertuples()]
        if len(self.rejected) > limit:
            lines.append(f"{self.path.name}: ... and {len(self.rejected) - limit} more rejected rows")
        return lines


def _column_part(column: object) -> str:
    """`column: ` before the reason, or nothing for a line that has no column (bad JSON)."""
    return f"{column}: " if isinstance(column, str) and column else ""


def read_records(kind: str, path: str | Path, known_services: set[str] | None = None) -> FileRecords:
    """Read one file of canonical `kind` records (CSV, or JSON lines for .jsonl/.ndjson/.json)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{kind} file not found: {path}")
    raw, line_numbers, unreadable = _read_raw(path)
    if raw.empty and not len(raw.columns):
        if unreadable.empty:
            raise InputFileError(f"{path}: the file is empty (expected a header row of {kind} columns)")
        return FileRecords(kind, path, empty_frame(kind), unreadable)  # every line is bad JSON
    try:
        result = normalise(kind, raw, known_services, row_numbers=line_numbers)
    except ValueError as error:
        raise InputFileError(f"{path}: {error}") from None
    rejected = result.rejected
    if line_numbers is None:
        rejected["row"] = rejected["row"] + 1  # header is line 1, first data row is line 2
    if len(unreadable):
        rejected = pd.concat([unreadable, rejected], ignore_index=True)
    return FileRecords(kind, path, result.good, rejected, result.conflicting_duplicates)


def _read_raw(path: Path) -> tuple[pd.DataFrame, pd.Series | None, pd.DataFrame]:
    """(raw rows, their line numbers (None: CSV data row i is line i + 2), unreadable lines)."""
    if path.suffix.lower() in JSON_LINES_SUFFIXES:
        return _read_json_lines(path)
    return _read_csv(path), None, _no_rejections()


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InputFileError(f"{path}: not a readable CSV file ({str(error).splitlines()[0]})") from None


def _read_json_lines(path: Path) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    text = _read_text(path)
    if text.lstrip().startswith("["):
        return _read_json_array(path, text)
    objects, numbers, bad = [], [], []
    # Lines end at \n only: str.splitlines() would also cut at U+2028 and others, valid inside JSON strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            bad.append(_unreadable(number, f"bad JSON: {error.msg} at column {error.colno}", line))
            continue
        if not isinstance(value, dict):
            bad.append(_unreadable(number, f"bad JSON: a line must hold one object, not {_json_type(value)}", line))
            continue
        objects.append(value)
        numbers.append(number)
    unreadable = pd.DataFrame(bad, columns=REJECTED_COLUMNS) if bad else _no_rejections()
    return pd.DataFrame.from_records(objects), pd.Series(numbers, dtype="int64"), unreadable


def _read_text(path: Path) -> str:
    """The file as text; utf-8-sig, since a byte order mark would make the first line bad JSON."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputFileError(f"{path}: not UTF-8 text (byte {error.start + 1}: {error.reason})") from None


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "true or false", int: "a number", float: "a number"}
    return names.get(type(value), "null")


def _read_json_array(path: Path, text: str) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputFileError(f"{path}: bad JSON: {error.msg} at line {error.lineno}, column {error.colno}") from None
    if not all(isinstance(v, dict) for v in values):
        raise InputFileError(f"{path}: a JSON array must hold one object per record")
    return pd.DataFrame.from_records(values), pd.Series(range(1, len(values) + 1), dtype="int64"), _no_rejections()


def _unreadable(line_number: int, reason: str, line: str) -> dict:
    return {"row": line_number, "source": None, "source_id": None, "column": "", "reason": reason, "payload": line}


def _no_rejections() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in REJECTED_COLUMNS})
