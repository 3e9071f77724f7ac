"""The `files` source: canonical records from CSV or JSON-lines exports.

Rows become typed records in bulk through `records.normalise`; rows that cannot be read
(bad JSON, a missing timestamp, resolved before opened, ...) come back as rejected rows with the
file's line number and a one-line reason, and the good rows of the same file still land.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from connectors.records import REJECTED_COLUMNS, RejectionReason, empty_frame, normalise, one_line

JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json")
UNTERMINATED_QUOTE = "unterminated quote"
NOT_CSV = "not CSV: "
BAD_JSON = "bad JSON: "


NOT_AN_OBJECT = BAD_JSON + "a line must hold one object, not "
# What the decoder refuses without saying where: a number longer than int() reads (sys.get_int_max_str_digits),
# and arrays or objects nested deeper than it recurses.
NUMBER_TOO_LONG = BAD_JSON + "a number with more digits than can be read"
NESTED_TOO_DEEP = BAD_JSON + "arrays or objects nested too deep to read"


def field_count_mismatch(fields: int | str, header: int | str) -> str:
    return f"line has {fields} fields, the header has {header}"


# The reasons a line is rejected for before it is a record (column_name empty), for the README.
LINE_REJECTIONS = [
    RejectionReason(field_count_mismatch("<n>", "<m>"), "CSV", ()),
    RejectionReason(UNTERMINATED_QUOTE, "CSV", ()),
    RejectionReason(NOT_CSV + "<the csv module's message, e.g. field larger than field limit (131072)>", "CSV", ()),
    RejectionReason(BAD_JSON + "<the decoder's message> at column <n>", "JSON lines", ()),
    RejectionReason(NOT_AN_OBJECT + "<an array, a string, a number, true or false, null>", "JSON lines", ()),
    RejectionReason(NUMBER_TOO_LONG, "JSON lines", ()),
    RejectionReason(NESTED_TOO_DEEP, "JSON lines", ()),
]


class InputFileError(ValueError):
    """A file that cannot be read at all (absent, wrong columns, not CSV/JSON), said in one line."""

    def __init__(self, message: str):
        super().__init__(one_line(message))


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
    if raw.shape == (0, 0):  # no row and no column; a JSON line {} is a row, of no column
        if unreadable.empty:
            raise InputFileError(f"{path}: the file is empty (expected a header row of {kind} columns)")
        return FileRecords(kind, path, empty_frame(kind), unreadable)  # every line is bad JSON
    try:
        result = normalise(kind, raw, known_services, row_numbers=line_numbers)
    except ValueError as error:
        raise InputFileError(f"{path}: {error}") from None
    rejected = result.rejected
    if len(unreadable):
        rejected = pd.concat([unreadable, rejected], ignore_index=True)
    return FileRecords(kind, path, result.good, rejected, result.conflicting_duplicates)


def _read_raw(path: Path) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """(raw rows, the line number each starts on, unreadable lines)."""
    if path.suffix.lower() in JSON_LINES_SUFFIXES:
        return _read_json_lines(path)
    return _read_csv(path)


def _read_csv(path: Path) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """The rows under the header; a line that is no row of it (a field too many or too few, an unterminated
    quote) is an unreadable line, and the lines after it are still read."""
    lines = list(io.StringIO(_read_text(path, newline=""), newline=""))  # each ends at \n, \r\n or \r, as csv reads it
    header, position = _csv_header(lines, path)
    if header is None:
        return pd.DataFrame(), pd.Series([], dtype="int64"), _no_rejections()
    rows, numbers, bad = [], [], []
    while position < len(lines):
        position = _csv_rows(lines, position, len(header), rows, numbers, bad)
    unreadable = pd.DataFrame(bad, columns=REJECTED_COLUMNS) if bad else _no_rejections()
    return pd.DataFrame(rows, columns=_unique(header), dtype=object), pd.Series(numbers, dtype="int64"), unreadable


def _csv_header(lines: list[str], path: Path) -> tuple[list[str] | None, int]:
    """The first record that is not a blank line (None: there is none) and the index of the line after it."""
    reader = csv.reader(lines, skipinitialspace=True)
    end = 0
    try:
        for fields in reader:
            start, end = end + 1, reader.line_num
            if fields in ([], [""]):
                continue
            if start != end or lines[start - 1].count('"') % 2:  # a header is one line
                raise InputFileError(f"{path} line {start}: {UNTERMINATED_QUOTE} in the header row")
            return fields, end
    except csv.Error as error:
        raise InputFileError(f"{path} line {end + 1}: {NOT_CSV}{error} in the header row") from None
    return None, len(lines)


def _csv_rows(lines: list[str], position: int, width: int, rows: list, numbers: list, bad: list) -> int:
    """Read the records from line index `position` on: a row of `width` fields and the physical line it starts
    on go to rows and numbers, an unreadable line to bad. Returns where reading resumes: past the end, or the
    line after the first line of a record that ran into a quote never closed (it would swallow the lines
    after it, or the next stray quote would close it) or that the csv module cannot read at all.
    """
    reader = csv.reader(lines[position:], skipinitialspace=True)
    start = end = position
    try:
        for fields in reader:
            start, end = end + 1, position + reader.line_num
            if len(fields) == width:  # a quoted field may span lines
                rows.append(fields)
                numbers.append(start)
            elif fields not in ([], [""]):
                problem = _csv_problem(lines[start - 1], len(fields), width)
                bad.append(_unreadable(start, problem, "".join(lines[start - 1:end]).rstrip("\r\n")))
                if problem == UNTERMINATED_QUOTE:
                    return start
    except csv.Error as error:
        start = end + 1
        first_line = lines[start - 1]
        problem = UNTERMINATED_QUOTE if first_line.count('"') % 2 else f"{NOT_CSV}{error}"
        bad.append(_unreadable(start, problem, first_line.rstrip("\r\n")))
        return start
    return _ended_in_quotes(lines, start, rows, numbers, bad)


def _csv_problem(first_line: str, fields: int, width: int) -> str:
    """Why a record of a width other than the header's is no row."""
    if first_line.count('"') % 2:
        return UNTERMINATED_QUOTE  # its first line opens a quote it does not close: the record ran on past it
    return field_count_mismatch(fields, width)


def _ended_in_quotes(lines: list[str], last: int, rows: list, numbers: list, bad: list) -> int:
    """Whether the file's last record, on line `last` on, ended inside quotes never closed: then it is its first
    line alone, unreadable, and reading resumes on the line after it. Returns where reading resumes."""
    if not numbers or numbers[-1] != last or "".join(lines[last - 1:]).count('"') % 2 == 0:
        return len(lines)
    start = numbers.pop()
    rows.pop()
    bad.append(_unreadable(start, UNTERMINATED_QUOTE, lines[start - 1].rstrip("\r\n")))
    return start


def _unique(header: list[str]) -> list[str]:
    """Header names, a repeated one suffixed .1, .2, ..., past the names the header has already (a, a.1, a reads
    as a, a.1, a.2), as pandas reads them."""
    taken, seen = set(header), {}
    names = []
    for name in header:
        unique = name
        if name in seen:
            while (unique := f"{name}.{seen[name]}") in taken:
                seen[name] += 1
            taken.add(unique)
        names.append(unique)
        seen[name] = seen.get(name, 0) + 1
    return names


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
            bad.append(_unreadable(number, f"{BAD_JSON}{error.msg} at column {error.colno}", line))
            continue
        except (ValueError, RecursionError) as error:
            bad.append(_unreadable(number, _unplaced(error), line))
            continue
        if not isinstance(value, dict):
            bad.append(_unreadable(number, NOT_AN_OBJECT + _json_type(value), line))
            continue
        objects.append(value)
        numbers.append(number)
    unreadable = pd.DataFrame(bad, columns=REJECTED_COLUMNS) if bad else _no_rejections()
    return _rows(objects), pd.Series(numbers, dtype="int64"), unreadable


def _read_text(path: Path, newline: str | None = None) -> str:
    """The file as text; utf-8-sig, since a byte order mark would make the first line bad JSON. Its line ends read
    as \\n, unless `newline` is "": then they stay as they are (as the csv module wants, so that a quoted value
    keeps its \\r\\n)."""
    try:
        with path.open(encoding="utf-8-sig", newline=newline) as file:
            return file.read()
    except UnicodeDecodeError as error:
        raise InputFileError(f"{path}: not UTF-8 text (byte {error.start + 1}: {error.reason})") from None


def _unplaced(error: ValueError | RecursionError) -> str:
    """Why json.loads refused a text, when it is no JSONDecodeError (which says where)."""
    return NUMBER_TOO_LONG if isinstance(error, ValueError) else NESTED_TOO_DEEP


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "true or false", int: "a number", float: "a number"}
    return names.get(type(value), "null")


def _rows(objects: list[dict]) -> pd.DataFrame:
    """JSON objects as rows of the values the decoder gave: with types inferred, a column of numbers that a line
    lacks would be float, an id 1 read as '1.0' and 2**53 + 1 as 2**53."""
    return pd.DataFrame(objects, dtype=object)


def _read_json_array(path: Path, text: str) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputFileError(f"{path}: bad JSON: {error.msg} at line {error.lineno}, column {error.colno}") from None
    except (ValueError, RecursionError) as error:
        raise InputFileError(f"{path}: {_unplaced(error)}") from None
    if not all(isinstance(v, dict) for v in values):
        raise InputFileError(f"{path}: a JSON array must hold one object per record")
    return _rows(values), pd.Series(range(1, len(values) + 1), dtype="int64"), _no_rejections()


def _unreadable(line_number: int, reason: str, line: str) -> dict:
    return {"row": line_number, "source": None, "source_id": None, "column": "", "reason": reason, "payload": line}


def _no_rejections() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in REJECTED_COLUMNS})
