"""Property-based tests of the file readers: whatever text, numbers, timestamps and structure a canonical-record
file, a review file or a manual values file holds, reading it gives rows (and rejected rows), or stops with one
error of one line; nothing else escapes.

Hypothesis runs many examples in one call of a test, so each property writes its file into a folder of the module
(a function's tmp_path would be shared by the examples anyway). The runs are derandomised and use no example
database: every run tests the same examples, so a suite that passes today passes tomorrow.
"""

from __future__ import annotations

import io
import json
import math
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.files.manual import read_manual_values
from connectors.files.read import InputFileError, read_records
from connectors.files.review import (
    ACTION_FILE_COLUMNS,
    COMMENT_FILE_COLUMNS,
    ReviewFileError,
    read_actions,
    read_comments,
)
from connectors.records import (
    CHANGE_OUTCOMES,
    CHANGE_TYPES,
    DEPLOYMENT_STATUSES,
    EARLIEST,
    KINDS,
    LATEST,
    ORDERED_TIMESTAMPS,
    OUTCOME_ALIASES,
    REJECTED_COLUMNS,
    SCHEMAS,
    SEVERITIES,
    SEVERITY_ALIASES,
    STATUS_ALIASES,
)
from pipelines.config import read_config
from scoring.review import ACTION_COLUMNS, ACTION_STATUSES, COMMENT_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
SCORECARD = read_config(ROOT / "scorecard.yaml").scorecard
SCORECARDS = [SCORECARD.model_copy(update={"review_period": grain}) for grain in ("month", "week", "day")]
KPI_IDS = [kpi.id for _, _, kpi in SCORECARD.iter_kpis()]
OBJECTIVE_IDS = [node.id for _, node in SCORECARD.objectives()]

# The same examples every run (derandomize, no example database), few enough for a slow machine; big files are the
# point, so the health checks about slow or large examples are off.
PROPERTY = settings(max_examples=100, deadline=None, derandomize=True, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
LINE = "test_line"  # an extra column holding the line each record starts on, to account for every record
MINUTE = timedelta(minutes=1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("properties")


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def one_in(count: int) -> st.SearchStrategy[bool]:
    """True about once in `count` draws (hypothesis leans to the first of a sample: False)."""
    return st.sampled_from([False] * (count - 1) + [True])


def is_one_line(text: object) -> bool:
    """Non-empty text without any line break (as str.splitlines() and a terminal see them)."""
    return isinstance(text, str) and text.strip() != "" and text.splitlines() == [text]


def either(*strategies: st.SearchStrategy) -> st.SearchStrategy:
    """One of the strategies, each as likely: st.one_of weighs each branch of a nested one_of as much as a
    strategy, so text (three kinds) would crowd out a number written as 5000 digits."""
    return st.sampled_from(strategies).flatmap(lambda strategy: strategy)


# ---------------------------------------------------------------------------------------------
# Cells: arbitrary text, numbers written as text, and timestamps, valid or not.

ODD_CHARS = ["\x00", "\n", "\r", "\r\n", "\t", "\x0b", "\x0c", "\x1b[31m", "\x7f", "\x85", "\u2028", "\u2029", '"', "'",
       '""', ",", ";", " ", "\\", "\ufeff", "\u200b", "{", "}", "[", "]", ":", "- ", "#", "%", "&a", "*a", "!!",
       "é", "日本", "🙂", "ǅ", "ß", "\u0301"]  # fmt: skip
texts = st.one_of(
    st.text(max_size=12),
    st.lists(st.one_of(st.text(max_size=4), st.sampled_from(ODD_CHARS)), max_size=6).map("".join),
    st.builds(lambda head, char, count: head + char * count, st.text(max_size=3),
              st.sampled_from(["x", "é", "\x00", '"', "\n", " ", ","]), st.sampled_from([255, 4097, 20_000])),
)  # fmt: skip
NUMBERS = ["1" * 5000, "-" + "9" * 400, "1e400", "-1e400", "1e-400", "NaN", "nan", "Infinity", "-Infinity", "inf",
           "-inf", "1_000", "0x10", "1,5", "٣", "+0", "-0", "00012", ".5", "5.", "5%", "%", "1e", "—1"]  # fmt: skip
number_texts = either(st.integers().map(str), st.integers(-(2**70), 2**70).map(str), st.floats().map(repr),
                      st.sampled_from(NUMBERS))  # fmt: skip

offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda minutes: timezone(minutes * MINUTE))
odd_offsets = st.timedeltas(-timedelta(hours=23, minutes=59, seconds=59), timedelta(hours=23, minutes=59, seconds=59))


@st.composite
def stamps(draw, earliest=datetime(1, 1, 1), latest=datetime(9999, 12, 31, 23, 59, 59), zones=None) -> str:
    """An ISO 8601 time with an offset (+HH:MM, Z, or stranger), years 0001-9999 unless limited."""
    zones = zones if zones is not None else st.one_of(offsets, st.just(UTC), odd_offsets.map(timezone))
    moment = draw(st.datetimes(earliest, latest, timezones=zones))
    spec = draw(st.sampled_from(["auto", "minutes", "seconds", "milliseconds", "microseconds", "nanoseconds"]))
    text = moment.isoformat(sep=draw(st.sampled_from("T ")), timespec=spec.replace("nano", "micro"))
    if spec == "nanoseconds":  # which pandas reads to the nanosecond (its other times, to the microsecond)
        text = text[: text.index(".") + 7] + draw(st.from_regex(r"\A\d{3}\Z")) + text[text.index(".") + 7 :]
    if text.endswith("+00:00") and draw(st.booleans()):
        text = text[: -len("+00:00")] + draw(st.sampled_from(["Z", "z", "+0000", "+00"]))
    return text


# Times a timestamp holds, with an offset: what a good record has.
good_stamps = stamps(datetime(1678, 1, 1), datetime(2261, 12, 31), offsets)
EDGE_STAMPS = [
    "1677-09-21T00:12:43.145224193Z", "1677-09-21T00:12:43.145224192Z", "1677-09-22T00:00:00Z",
    "1677-09-22T00:00:00+23:59", "2262-04-11T23:47:16.854775807Z", "2262-04-11T00:00:00Z", "2262-04-12T00:00:00Z",
    "2262-04-11T23:00:00-05:00", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+00:00", "1970-01-01T00:00:00-23:59",
    "+12026-01-01T00:00:00Z", "-0001-01-01T00:00:00Z", "2026-03-01T10:00:00+24:00", "2026-03-01T24:00:00Z",
    "2026-02-30T10:00:00Z", "2026-13-01T10:00:00Z", "2026-03-01T10:00:00.1234567890123Z", "2026-03-01T10:00Z",
    "2026-03-01 10:00:00 +01:00", "2026-03-01T10:00:00+01:00:30", "20260301T100000Z", "2026-W10-1T10:00:00Z",
    "2026-060T10:00:00Z", "T10:00:00Z", "10:00Z", "2026-03-01T10:00:00\x00Z", "２０２６-03-01T10:00:00Z",
]  # fmt: skip
any_stamps = st.one_of(
    stamps(),
    st.datetimes().map(datetime.isoformat),  # no offset
    st.dates().map(date.isoformat),
    st.sampled_from(EDGE_STAMPS),
    st.from_regex(r"\A\d{1,5}-\d{1,2}-\d{1,2}[T ]\d{1,2}:\d{2}(:\d{2}(\.\d{1,12})?)?([zZ]|[+-]\d{2}(:?\d{2})?)?\Z"),
)
cells = either(texts, number_texts, any_stamps)


def words(aliases: dict[str, str]) -> st.SearchStrategy[str]:
    """A vocabulary word or alias as typed: any case, padded."""
    return st.builds(lambda word, upper, pad: pad + (word.upper() if upper else word) + pad,
                     st.sampled_from(sorted(aliases)), st.booleans(), st.sampled_from(["", " ", "\t"]))  # fmt: skip


# Text that is not read as missing: any text around a character that is no space (nor NUL).
filled_texts = st.tuples(texts, st.characters(codec="utf-8", categories=["L", "N", "P", "S"]), texts).map("".join)


VALID = {
    "timestamp": good_stamps,
    "severity": words(SEVERITY_ALIASES),
    "change_type": words({t: t for t in CHANGE_TYPES}),
    "outcome": words(OUTCOME_ALIASES),
    "status": words(STATUS_ALIASES),
    "text": filled_texts,
}
KEYS = ["pd", " pd ", "pd\x00", "1", "2"]  # a few, so that keys repeat
CANONICAL = {"severity": SEVERITIES, "change_type": CHANGE_TYPES, "outcome": CHANGE_OUTCOMES,
             "status": DEPLOYMENT_STATUSES}  # fmt: skip


def column_values(column, clean: bool) -> st.SearchStrategy[str]:
    """A clean row has each column as its kind wants it (any text in a text column), a messy one any cell anywhere;
    an optional column may be empty, and keys repeat."""
    strategy = VALID[column.kind] if clean else cells
    if column.name in ("source", "source_id"):
        strategy = st.one_of(st.sampled_from(KEYS), strategy)
    return strategy if column.required else st.one_of(st.just(""), strategy)


def key_of(value: object) -> str | None:
    """The text a key cell is read as: stripped, without NUL; None when there is none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value).replace("\x00", "").strip() or None


# ---------------------------------------------------------------------------------------------
# Canonical records, CSV: well-formed CSV of arbitrary cells, every record accounted for.


def csv_field(text: str, quote: bool) -> str:
    """A CSV field, quoted when it must be (or when asked); the csv module's writer leaves a lone \\r unquoted."""
    if quote or any(char in text for char in ',"\r\n') or text != text.lstrip(" "):
        return '"' + text.replace('"', '""') + '"'
    return text


def header_names(kind: str) -> st.SearchStrategy[str]:
    """Extra column names: any text on one line, or one that repeats a name of the kind (source, source.1)."""
    names = [c.name for c in SCHEMAS[kind]]
    return st.one_of(
        st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=8),
        st.sampled_from(names + [f"{name}.1" for name in names]),
    ).filter(lambda name: name != LINE)


@st.composite
def canonical_csv(draw, kind: str) -> tuple[str, dict[int, tuple], bool]:
    """(file text, {line a record starts on: the key it would be read with}, whether the header has every required
    column); LINE holds the line a record starts on."""
    schema = SCHEMAS[kind]
    columns = [c for c in schema if c.required or draw(st.booleans())]
    if draw(one_in(20)):  # now and then a required column is left out: the file cannot be read
        columns.remove(draw(st.sampled_from([c for c in columns if c.required])))
    extras = draw(st.lists(header_names(kind), max_size=2))
    for name in draw(st.lists(st.sampled_from([c.name for c in columns]), max_size=2)):  # a column twice (or more)
        extras += [name] + draw(st.lists(st.sampled_from([f"{name}.1", f"{name}.2"]), max_size=2))
    header = draw(st.permutations([c.name for c in columns] + extras + [LINE]))
    by_name = {c.name: c for c in columns}
    end = draw(st.sampled_from(["\n", "\r\n"]))
    quote = draw(st.booleans())
    text = ",".join(csv_field(name, quote) for name in header) + end
    starts: dict[int, tuple] = {}
    for _ in range(draw(st.integers(0, 6))):
        text += draw(st.sampled_from(["", "", "\n", "\r\n"]))  # blank lines between records
        line = physical_lines(text) + 1
        clean = draw(st.booleans())
        values = {name: (draw(column_values(by_name[name], clean)) if name in by_name else draw(cells))
                  for name in dict.fromkeys(header) if name != LINE}  # fmt: skip
        values[LINE] = str(line)
        text += ",".join(csv_field(values[name], draw(st.booleans())) for name in header) + end
        first = {name: values[name] for name in header}  # the first column of a repeated name is the one read
        starts[line] = (key_of(first.get("source")), key_of(first.get("source_id")))
    if text.endswith(end) and draw(st.booleans()):
        text = text[: -len(end)]  # no line end after the last record
    return text, starts, all(c.required <= (c.name in header) for c in schema)


def physical_lines(text: str) -> int:
    """Lines as the readers number them: each ends at \\n, \\r\\n or \\r (inside quotes too)."""
    return len(list(io.StringIO(text, newline="")))


def check_good(kind: str, good: pd.DataFrame) -> None:
    """Typed canonical columns: UTC times a timestamp holds, text without NUL or padding, canonical words,
    required values present, times in order, one row per key."""
    for column in SCHEMAS[kind]:
        values = good[column.name]
        present = values.dropna()
        if column.required:
            assert len(present) == len(values), column.name
        if column.kind == "timestamp":
            assert str(values.dtype) == "datetime64[ns, UTC]", column.name
            assert ((present >= EARLIEST) & (present <= LATEST)).all(), column.name
        elif column.kind in CANONICAL:
            assert present.isin(CANONICAL[column.kind]).all(), column.name
        else:
            assert all(isinstance(v, str) and v and "\x00" not in v and v == v.strip() for v in present), column.name
    for earlier, later in ORDERED_TIMESTAMPS[kind]:
        assert not (good[later] < good[earlier]).any()
    assert not good.duplicated(["source", "source_id"]).any()


def check_rejected(rejected: pd.DataFrame, lines: int) -> None:
    """Each rejected row names a line of the file (one line once) and says why in one line."""
    assert list(rejected.columns) == REJECTED_COLUMNS
    rows = list(rejected["row"])
    assert all(isinstance(row, int | np.integer) and 1 <= row <= lines for row in rows), rows
    assert len(set(rows)) == len(rows), rows
    assert all(is_one_line(reason) for reason in rejected["reason"]), list(rejected["reason"])


def check_accounting(records, starts: dict[int, tuple]) -> None:
    """Every record is rejected (on its line), good (its LINE, with the key it was written with) or an older row of
    a good row's key."""
    rejected = {int(row) for row in records.rejected["row"]}
    good_lines = [int(line) for line in records.good[LINE]] if LINE in records.good else []
    assert len(set(good_lines)) == len(good_lines)
    assert not rejected & set(good_lines)
    assert rejected | set(good_lines) <= set(starts), (rejected, good_lines, set(starts))
    kept = list(zip(records.good["source"], records.good["source_id"], strict=True))
    assert kept == [starts[line] for line in good_lines], (kept, {line: starts[line] for line in good_lines})
    superseded = set(starts) - rejected - set(good_lines)
    assert all(starts[line] in kept for line in superseded), {line: starts[line] for line in superseded}


def read_or_refuse(kind: str, path: Path, readable: bool = False):
    """The file's records, or None when it is refused with one line (which a `readable` one is not)."""
    try:
        return read_records(kind, path)
    except InputFileError as error:
        assert is_one_line(str(error)), str(error)
        assert not readable, str(error)
        return None


@PROPERTY
@given(data=st.data(), kind=st.sampled_from(KINDS))
def test_any_cells_in_a_csv_file_are_good_or_rejected_records_or_one_line(folder, data, kind):
    text, starts, readable = data.draw(canonical_csv(kind))
    records = read_or_refuse(kind, write(folder, f"{kind}.csv", text), readable)
    if records is None:
        return
    check_good(kind, records.good)
    check_rejected(records.rejected, physical_lines(text))
    check_accounting(records, starts)


# ---------------------------------------------------------------------------------------------
# Canonical records, JSON lines: objects of arbitrary values, and lines that are no object.


class Raw(str):
    """A JSON token written as it is (a number json.dumps cannot write, 5000 digits long)."""


def dumps(value: object) -> str:
    """JSON text of the value on one line, Raw tokens as they are."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


JSON_NUMBERS = [Raw("1e400"), Raw("-1e400"), Raw("-0.0"), Raw("1E-400"), 0, -1, 2**53 + 1, 2**63, 2**64, -(2**63) - 1,
                1.5, math.nan, math.inf, -math.inf]  # fmt: skip
TOO_LONG = [Raw("1" * 5000), Raw("-" + "9" * 4400)]  # more digits than int() reads
json_numbers = either(st.integers(), st.integers(-(2**70), 2**70), st.floats(), st.sampled_from(JSON_NUMBERS),
                      st.sampled_from(TOO_LONG))  # fmt: skip
json_scalars = either(cells, json_numbers, st.none(), st.booleans())
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                  st.dictionaries(texts, inner, max_size=3)),
                           max_leaves=6)  # fmt: skip
ABSENT = object()


def json_column_values(column, clean: bool) -> st.SearchStrategy[object]:
    """As column_values, a messy row with any JSON value; keys may be numbers; an optional column (any column of a
    messy row) may also be null or absent."""
    strategy = column_values(column, clean) if clean else json_values
    if column.name in ("source", "source_id"):
        strategy = st.one_of(st.sampled_from([*KEYS, 1, 2, 2**53, 2**53 + 1, 2**64]), strategy)
    return strategy if column.required and clean else st.one_of(st.just(ABSENT), st.none(), strategy)


NOT_JSON = ["{", "{}", '{"source": }', "[1, 2", "NaN", "-Infinity", "\ufeff{}", '{"a": 1} {"b": 2}', "[" * 100_000,
            '{"a": ' * 5000 + "1" + "}" * 5000]  # fmt: skip
not_objects = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=20),
    st.lists(json_scalars, max_size=3).map(dumps),
    json_scalars.map(dumps).filter(lambda text: "\n" not in text and "\r" not in text),
    st.sampled_from(NOT_JSON),
).filter(str.strip)  # a blank line is no line to reject


@st.composite
def json_objects(draw, kind: str, line: int) -> tuple[dict, tuple]:
    """An object of arbitrary (or, in a clean row, fitting) values, LINE holding `line`, and its key as read."""
    clean = draw(st.booleans())
    obj = {c.name: draw(json_column_values(c, clean)) for c in SCHEMAS[kind]}
    obj = {name: value for name, value in obj.items() if value is not ABSENT}
    obj.update(draw(st.dictionaries(texts.filter(lambda name: name != LINE), json_values, max_size=2)))
    obj[LINE] = line
    order = draw(st.permutations(list(obj)))
    return {name: obj[name] for name in order}, (key_of(obj.get("source")), key_of(obj.get("source_id")))


@st.composite
def canonical_json_lines(draw, kind: str) -> tuple[str, dict[int, tuple]]:
    """(file text, {line of each record: its key as read, or None for a line that is no object})."""
    lines, starts = [], {}
    for _ in range(draw(st.integers(0, 6))):
        lines += draw(st.lists(st.sampled_from(["", "  ", "\r", "\t"]), max_size=1))  # blank lines
        number = len(lines) + 1
        if draw(one_in(4)):
            line = draw(not_objects)
            starts[number] = None
        else:
            obj, starts[number] = draw(json_objects(kind, number))
            line = dumps(obj)
        lines.append(line + draw(st.sampled_from(["", "", " ", "\r"])))
    text = "\n".join(lines) + draw(st.sampled_from(["", "\n"]))
    return text, starts


@PROPERTY
@given(data=st.data(), kind=st.sampled_from(KINDS), suffix=st.sampled_from([".jsonl", ".ndjson", ".json"]))
def test_any_values_in_a_json_lines_file_are_good_or_rejected_records_or_one_line(folder, data, kind, suffix):
    text, starts = data.draw(canonical_json_lines(kind))
    records = read_or_refuse(kind, write(folder, kind + suffix, text))
    if records is None:
        return
    check_good(kind, records.good)
    check_rejected(records.rejected, physical_lines(text))
    check_accounting(records, starts)


@PROPERTY
@given(data=st.data(), kind=st.sampled_from(KINDS))
def test_any_json_array_is_good_or_rejected_records_or_one_line(folder, data, kind):
    values, starts = [], {}
    for number, anything in enumerate(data.draw(st.lists(one_in(8), max_size=5)), start=1):
        if anything:  # any value: not an object, the array is refused; an object, it is a record like any
            values.append(data.draw(json_values))
            starts[number] = None
        else:
            obj, starts[number] = data.draw(json_objects(kind, number))
            values.append(obj)
    text = "[" + ",\n ".join(dumps(value) for value in values) + "]"
    records = read_or_refuse(kind, write(folder, f"{kind}.json", text))
    if records is None:
        return
    check_good(kind, records.good)
    check_rejected(records.rejected, len(values))
    check_accounting(records, starts)


# ---------------------------------------------------------------------------------------------
# Canonical records: any text at all, CSV or JSON lines under a good header.

line_ends = st.sampled_from(["\n", "\r\n", "\r"])
raw_lines = st.one_of(
    cells,
    st.lists(st.one_of(cells, st.sampled_from(['"', '""', '"x"', ",", "\n"])), max_size=8).map(",".join),
    st.builds(lambda head, tail: head + '"' + "x" * 131_073 + tail, st.sampled_from(["", '"', "a,"]),
              st.sampled_from(["", '"', '"\nx', "\ny,z"])),  # a field larger than the csv module reads
)  # fmt: skip


@PROPERTY
@given(data=st.data(), kind=st.sampled_from(KINDS), suffix=st.sampled_from([".csv", ".jsonl"]))
def test_any_text_under_a_header_is_records_rejected_lines_or_one_line(folder, data, kind, suffix):
    latin = data.draw(one_in(10))  # now and then bytes that are no UTF-8
    header = ",".join(c.name for c in SCHEMAS[kind]) if suffix == ".csv" else ""
    body = data.draw(st.lists(st.tuples(raw_lines, line_ends), max_size=8))
    text = header + "\n" + "".join(line + end for line, end in body)
    content = text.encode("utf-8") + (
        data.draw(st.sampled_from([b"\xe9t\xe9", b"\xff\xfe", b"\x80"])) if latin else b""
    )
    records = read_or_refuse(kind, write(folder, kind + suffix, content))
    if records is None:
        return
    check_good(kind, records.good)
    check_rejected(records.rejected, physical_lines(text))
    filled = sum(1 for line in io.StringIO(text, newline="") if line.strip("\r\n"))
    assert len(records.good) + len(records.rejected) <= filled


# ---------------------------------------------------------------------------------------------
# Review files: comments and actions, CSV or YAML, all or nothing.

PERIODS = ["2026-11", "2026-11-17", "2026-W45", "2026W45", "2026-W00", "2026-W53", "2020-W53", "2026-W54", "9999-12",
           "9999-W52", "0001-01", "0001-W01", "1677-09", "2262-04", "2262-04-12", "2026-13", "2026-02-30",
           "2026-11-17T10:00:00+05:00", "2026-11-17T10:00:00.123456789Z", "November", " 2026-11 ", "٢٠٢٦-W٤٥",
           "２０２６-11"]  # fmt: skip
DAYS = ["2026-11-20", "9999-12-31", "0001-01-01", "1677-09-21", "2262-04-12", "2026-02-30", "2026-1-5", "٢٠٢٦-١١-٢٠",
        "2026-11-20T00:00:00Z", "20261120"]  # fmt: skip
STATUS_WORDS = [*ACTION_STATUSES, "In progress", "in-progress", "DONE", " open ", "in  progress"]
days = st.dates(date(1700, 1, 1), date(2200, 12, 31))
FITTING = {  # what a column takes
    "kpi_id": st.sampled_from(KPI_IDS),
    "objective_id": st.sampled_from(OBJECTIVE_IDS),
    "period": st.one_of(days.map(date.isoformat), days.map("{:%Y-%m}".format), days.map("{:%G-W%V}".format),
                        good_stamps),
    "due": days.map(date.isoformat),
    "status": st.sampled_from(STATUS_WORDS),
}  # fmt: skip
ODD_VALUES = {  # and what it may be given instead
    "period": either(st.sampled_from(PERIODS), st.dates().map("{:%G-W%V}".format), any_stamps),
    "due": st.one_of(st.sampled_from(DAYS), st.dates().map(date.isoformat)),
    "status": st.sampled_from(["closed", "open!", "in_progress_"]),
    "id": st.sampled_from(["A-1", " A-1", "a-1"]),
}


@st.composite
def review_rows(draw, columns: tuple[str, ...], clean: bool) -> list[dict[str, str]]:
    """Rows of a review file: clean ones fit (each action has an id of its own and a KPI or an objective), others
    have fitting, odd, empty or arbitrary cells."""
    rows = []
    for number in range(draw(st.integers(0, 5))):
        if clean:
            row = {name: draw(FITTING.get(name, filled_texts)) for name in columns}
            if "id" in row:
                row["id"] = f"A-{number}"
                row[draw(st.sampled_from(["kpi_id", "objective_id"]))] = ""
            if "author" in row and draw(st.booleans()):
                row["author"] = ""
        else:
            row = {name: draw(either(FITTING.get(name, filled_texts), ODD_VALUES.get(name, cells), st.just(""),
                                     cells)) for name in columns}  # fmt: skip
        rows.append(row)
    return rows


@st.composite
def review_csv(draw, columns: tuple[str, ...]) -> str:
    """A clean file (every column, fitting rows) or not: a header of some of the columns and others, rows of any
    cells, blank lines, and now and then a line of any text at all."""
    clean, garbage = draw(st.booleans()), draw(one_in(5))
    names = list(columns) if clean else [name for name in columns if not draw(one_in(6))]
    names += [] if clean else draw(st.lists(st.one_of(st.sampled_from(columns), st.text(max_size=6)), max_size=2))
    header = draw(st.permutations(names))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [",".join(csv_field(name, draw(st.booleans())) for name in header)]
    for row in draw(review_rows(columns, clean)):
        if garbage and not clean and draw(st.booleans()):
            lines.append(draw(raw_lines))
        cell = {name: row[name] if name in row else draw(st.one_of(st.just(""), cells)) for name in header}
        lines.append(",".join(csv_field(cell[name], draw(st.booleans())) for name in header))
        lines += draw(st.lists(st.just(""), max_size=1))
    return end.join(lines) + draw(st.sampled_from(["", end]))


YAML_KEYS = st.one_of(st.text(max_size=6), st.integers(), st.none(), st.booleans(), st.dates(), st.floats())
yaml_scalars = either(cells, st.integers(), st.floats(), st.none(), st.booleans(), st.dates(),
                      st.datetimes(timezones=st.one_of(st.none(), offsets)), st.binary(max_size=4))  # fmt: skip
yaml_values = st.recursive(yaml_scalars, lambda inner: st.one_of(st.lists(inner, max_size=2),
                                                                 st.dictionaries(YAML_KEYS, inner, max_size=2)),
                           max_leaves=4)  # fmt: skip
# YAML that safe_dump does not write: keys and scalars that are read as something other than their text, anchors,
# merges, tags, documents that are no list, and numbers and nesting beyond what can be read.
YAML_ITEMS = [
    "- {kpi_id: mttr, period: 2026-11, comment: a}", "- {0x10: a, yes: b, ~: c, 1_000: d, 010: e, 1:20: f, .5: g}",
    "- {2001-12-14t21:59:43.10-05:00: a, 2026-11-17: b, .inf: c, .NaN: d, +1: e}", "- kpi_id: " + "1" * 5000,
    "- &a {kpi_id: mttr, period: 2026-11, comment: a}", "- *a", "- {<<: *a, comment: b}", "- <<: {kpi_id: mttr}",
    "- !!binary aGVsbG8=", "- {kpi_id: !foo x}", "- {kpi_id: !!python/object:os.system x}", '- {comment: "a\\0b"}',
    '- {comment: "line\\nbreak", period: "2026-11\\n"}', "- ? [a, b]\n  : c", "- ? {a: b}\n  : c",
    "- {kpi_id: mttr, kpi_id: mtbf}", "- [" * 2000 + "]" * 2000, "- {a: " * 2000 + "b" + "}" * 2000,
    "- due: 2026-11-20\n  status: open\n  id: A-1", "- due: 9999-12-31", "- due: 0001-01-01 00:00:00",
    "- due: 2026-02-30", "- period: 2026-13-01", "- \t", "-", "- ''", "- {}", "- []", "- null", "- 12",
    "- kpi_id: \"\\u2028\"\n  comment: \"\\x85\"",
]  # fmt: skip
YAML_DOCUMENTS = ["", "# nothing\n", "~", "{}", "12", "kpi_id: mttr", "'text'", "--- []\n--- []", "%YAML 1.1\n---\n[]",
                  "- a: b\n - c", "\t- a", "[", "- a: 'b", "\x85", "- \ufeffa: b"]  # fmt: skip


@st.composite
def review_yaml(draw, columns: tuple[str, ...]) -> str:
    """A list of mappings written by safe_dump: clean rows (days as YAML dates), or rows of any values (nested ones
    too) under the columns and other keys, and items that are no mapping; or hand-written items; or a document
    that is no list."""
    shape = draw(st.sampled_from(["clean", "dumped", "written", "document"]))
    if shape == "document":
        return draw(st.one_of(st.sampled_from(YAML_DOCUMENTS), yaml_values.map(yaml.safe_dump), st.text()))
    if shape == "written":
        return "\n".join(draw(st.lists(st.sampled_from(YAML_ITEMS), max_size=4)))
    items: list[object] = []
    for row in draw(review_rows(columns, shape == "clean")):
        if shape == "clean":
            due = row.get("due")
            items.append(row | ({"due": date.fromisoformat(due)} if due and draw(st.booleans()) else {}))
        elif draw(one_in(6)):
            items.append(draw(yaml_values))
        else:
            item = {name: draw(st.one_of(st.just(value), yaml_scalars, yaml_values)) for name, value in row.items()
                    if not draw(one_in(5))}  # fmt: skip
            items.append(item | draw(st.dictionaries(YAML_KEYS, yaml_values, max_size=2)))
    return yaml.safe_dump(items, sort_keys=False, allow_unicode=draw(st.booleans()),
                          default_flow_style=draw(st.sampled_from([False, True, None])))  # fmt: skip


def read_review_file(reader, path: Path, scorecard):
    """The reader's frame, or None when it raised ReviewFileError of one-line problems."""
    try:
        return reader(path, scorecard)
    except ReviewFileError as error:
        assert error.problems and all(is_one_line(problem) for problem in error.problems), error.problems
        assert is_one_line(str(error)), str(error)
        return None


def check_review_frame(frame: pd.DataFrame, columns: list[str], day: str) -> None:
    """Typed as the warehouse stores it: UTC days a timestamp holds, text or None, known KPIs."""
    assert list(frame.columns) == columns
    assert str(frame[day].dtype) == "datetime64[ns, UTC]"
    assert frame[day].notna().all() and frame[day].between(EARLIEST, LATEST).all()
    assert (frame[day] == frame[day].dt.floor("D")).all()
    assert frame["kpi_id"].dropna().isin(KPI_IDS).all()
    for name in columns:
        if name != day:
            assert all(value is None or (isinstance(value, str) and value) for value in frame[name]), name


@PROPERTY
@given(data=st.data(), suffix=st.sampled_from([".csv", ".yaml"]), scorecard=st.sampled_from(SCORECARDS))
def test_any_comments_file_is_read_or_refused_with_one_line_problems(folder, data, suffix, scorecard):
    text = data.draw(review_csv(COMMENT_FILE_COLUMNS) if suffix == ".csv" else review_yaml(COMMENT_FILE_COLUMNS))
    comments = read_review_file(read_comments, write(folder, "comments" + suffix, text), scorecard)
    if comments is not None:
        check_review_frame(comments, COMMENT_COLUMNS, "period_start")
        assert comments["comment"].notna().all()
        assert not comments.duplicated(["kpi_id", "period_start"]).any()


@PROPERTY
@given(data=st.data(), suffix=st.sampled_from([".csv", ".yml"]))
def test_any_actions_file_is_read_or_refused_with_one_line_problems(folder, data, suffix):
    text = data.draw(review_csv(ACTION_FILE_COLUMNS) if suffix == ".csv" else review_yaml(ACTION_FILE_COLUMNS))
    actions = read_review_file(read_actions, write(folder, "actions" + suffix, text), SCORECARD)
    if actions is not None:
        check_review_frame(actions, ACTION_COLUMNS, "due")
        assert actions["status"].isin(ACTION_STATUSES).all() and actions["action_id"].is_unique
        assert (actions["kpi_id"].isna() != actions["objective_id"].isna()).all()
        assert actions["objective_id"].dropna().isin(OBJECTIVE_IDS).all()


# ---------------------------------------------------------------------------------------------
# Manual KPI values: a CSV of kpi_id,value[,period], all or nothing, and no value that is not finite.

VALUES = st.one_of(number_texts, st.floats(allow_nan=False, allow_infinity=False).map(str),
                   st.integers(-1000, 1000).map(lambda n: f"{n}%"), st.just(""), cells)  # fmt: skip
finite_values = st.one_of(st.floats(allow_nan=False, allow_infinity=False).map(repr),
                          st.integers(-(10**20), 10**20).map(str), st.integers(-1000, 1000).map(" {}% ".format),
                          st.just(""))  # fmt: skip


@st.composite
def values_csv(draw) -> tuple[str, list[bool] | None]:
    """(A clean file (kpi_id,value[,period] with a KPI once per period, finite values or none, periods that fit) or
    not: some of the columns and others, any cells, and now and then a line of any text at all; for a clean one,
    which rows have no value)."""
    clean, garbage = draw(st.booleans()), draw(one_in(5))
    names = ["kpi_id", "value"] + (["period"] if draw(st.booleans()) else [])
    if not clean:
        names = [name for name in names if not draw(one_in(8))] + draw(st.lists(st.text(max_size=6), max_size=1))
    header = draw(st.permutations(names))
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    lines, empty = [",".join(csv_field(name, draw(st.booleans())) for name in header)], []
    for number in range(draw(st.integers(0, 5))):
        if clean:
            row = {"kpi_id": f"k{number}", "value": draw(finite_values), "period": draw(st.one_of(
                st.just(""), FITTING["period"]))}  # fmt: skip
        else:
            row = {
                "kpi_id": draw(st.one_of(st.sampled_from(["it_spend", "staff_enps", " k "]), cells)),
                "value": draw(VALUES),
                "period": draw(either(FITTING["period"], ODD_VALUES["period"], cells)),
            }
        if garbage and not clean and draw(st.booleans()):
            lines.append(draw(raw_lines))
        cell = {name: row[name] if name in row else draw(cells) for name in header}
        lines.append(",".join(csv_field(cell[name], draw(st.booleans())) for name in header))
        empty.append(row["value"].strip() == "")
    return end.join(lines) + draw(st.sampled_from(["", end])), empty if clean else None


@PROPERTY
@given(data=st.data(), grain=st.sampled_from(["month", "week", "day"]))
def test_any_values_file_is_finite_values_or_one_line(folder, data, grain):
    latin = data.draw(one_in(10))  # now and then a file saved as Latin-1, which is no UTF-8
    text, empty = data.draw(values_csv())
    content = text.encode("latin-1", errors="replace") + b"\xe9" if latin else text.encode("utf-8")
    default = pd.Timestamp("2026-11-01", tz="UTC")
    try:
        values = read_manual_values(write(folder, "values.csv", content), grain, default)
    except InputFileError as error:
        assert is_one_line(str(error)), str(error)
        return
    assert list(values.columns) == ["kpi_id", "period_start", "value"]
    assert str(values["value"].dtype) == "float64" and not np.isinf(values["value"]).any()
    if empty is not None and not latin:  # no value is no data (NaN), and NaN is no value but that
        assert values["value"].isna().tolist() == empty
    assert str(values["period_start"].dtype) == "datetime64[ns, UTC]"
    assert values["period_start"].between(EARLIEST, LATEST).all()
    assert (values["kpi_id"] != "").all() and not values.duplicated(["kpi_id", "period_start"]).any()
