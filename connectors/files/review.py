"""The review's files: commentary (`kpi_id, period, comment[, author]`) and the action log (`id, kpi_id` or
`objective_id, action, owner, due, status`), each CSV (.csv) or YAML (.yaml/.yml: a list of mappings).

They are small and typed by hand, so a file is all or nothing: every problem in it is found at once, each one
line naming the file, its line and column and what to do, and they are raised together as a ReviewFileError.
KPI and objective ids are checked against the scorecard. A comment's `period` is any date inside its review
period and is stored as that period's start; an action's `due` is a day, stored as midnight UTC of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from connectors.files.manual import parse_periods
from connectors.files.read import InputFileError
from connectors.records import NUL, in_range, one_line
from scoring.config import TOO_LONG_NUMBER, ScorecardConfig, yaml_problem
from scoring.periods import period_start
from scoring.review import ACTION_COLUMNS, ACTION_STATUSES, COMMENT_COLUMNS

CSV_SUFFIXES = (".csv",)
YAML_SUFFIXES = (".yaml", ".yml")
COMMENT_FILE_COLUMNS = ("kpi_id", "period", "comment", "author")
ACTION_FILE_COLUMNS = ("id", "kpi_id", "objective_id", "action", "owner", "due", "status")
_PERIOD_EXAMPLES = {"day": "2026-11-03", "week": "2026-W45 or 2026-11-03", "month": "2026-11 or 2026-11-01"}


class ReviewFileError(InputFileError):
    """Problems of review files, one line each (`problems`); the message is the first and how many more."""

    def __init__(self, problems: Iterable[str]):
        self.problems = [one_line(problem) for problem in problems]  # a value quoted from the file may break a line
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(self.problems[0] + more)


@dataclass(frozen=True)
class Review:
    """The rows of both files, shaped for the kpi_comments and actions tables (without scorecard, loaded_at)."""

    comments: pd.DataFrame
    actions: pd.DataFrame


def empty_comments() -> pd.DataFrame:
    return _typed(pd.DataFrame({name: pd.Series([], dtype=object) for name in COMMENT_COLUMNS}))


def empty_actions() -> pd.DataFrame:
    return _typed(pd.DataFrame({name: pd.Series([], dtype=object) for name in ACTION_COLUMNS}))


def read_review(comments: Path | None, actions: Path | None, scorecard: ScorecardConfig) -> Review:
    """Both files (None: no rows); raises one ReviewFileError with the problems of both."""
    problems, frames = [], {}
    for name, path, reader in (("comments", comments, read_comments), ("actions", actions, read_actions)):
        try:
            frames[name] = reader(path, scorecard) if path is not None else None
        except ReviewFileError as error:
            problems += error.problems
    if problems:
        raise ReviewFileError(problems)
    return Review(_or_empty(frames["comments"], empty_comments), _or_empty(frames["actions"], empty_actions))


def read_comments(path: str | Path, scorecard: ScorecardConfig, setting: str = "review.comments") -> pd.DataFrame:
    """[kpi_id, period_start (UTC), comment, author] of a comments file; raises ReviewFileError."""
    rows = _read_rows(Path(path), setting, COMMENT_FILE_COLUMNS, required=("kpi_id", "period", "comment"))
    table = rows.table
    grain = scorecard.review_period
    _check_kpis(rows, table["kpi_id"], _kpi_ids(scorecard), required=True)
    periods = parse_periods(table["period"])
    rows.problem(table["period"] == "", "period", f"missing: give a date inside the review period "
                 f"({_PERIOD_EXAMPLES[grain]})")  # fmt: skip
    rows.problem(periods.isna() & (table["period"] != ""), "period",
                 "'" + table["period"] + f"' is not a date (give {_PERIOD_EXAMPLES[grain]})")
    rows.problem(table["comment"] == "", "comment", "missing: say what changed, why, and what is recommended")
    starts = period_start(periods, grain)
    first = _first_line(rows, [table["kpi_id"], starts])
    rows.problem(first.notna(), "period", "a second comment on '" + table["kpi_id"] + f"' for the {grain} starting "
                 + starts.dt.strftime("%Y-%m-%d") + " (the first is on line " + first.astype("string")
                 + "): merge them into one")  # fmt: skip
    rows.raise_problems()
    return _typed(pd.DataFrame({"kpi_id": table["kpi_id"], "period_start": starts, "comment": table["comment"],
                                "author": table["author"]}))  # fmt: skip


def read_actions(path: str | Path, scorecard: ScorecardConfig, setting: str = "review.actions") -> pd.DataFrame:
    """[action_id, kpi_id, objective_id, action, owner, due (midnight UTC), status] of an action log; raises
    ReviewFileError."""
    rows = _read_rows(Path(path), setting, ACTION_FILE_COLUMNS, required=("id", "action", "owner", "due", "status"),
                      one_of=("kpi_id", "objective_id"))  # fmt: skip
    table = rows.table
    rows.problem(table["id"] == "", "id", "missing: give every action an id of its own (e.g. A-12)")
    first = _first_line(rows, [table["id"].where(table["id"] != "")])
    rows.problem(first.notna(), "id", "'" + table["id"] + "' is the id of the action on line "
                 + first.astype("string") + " too: give each action an id of its own")  # fmt: skip
    kpi, objective = table["kpi_id"], table["objective_id"]
    rows.problem((kpi != "") & (objective != ""), "kpi_id", "both kpi_id '" + kpi + "' and objective_id '"
                 + objective + "' are given: an action is for one KPI or one objective, keep one")  # fmt: skip
    rows.problem((kpi == "") & (objective == ""), "kpi_id",
                 "neither kpi_id nor objective_id: name the KPI or the objective the action is for")
    _check_kpis(rows, kpi, _kpi_ids(scorecard), required=False)
    objectives = [node.id for _, node in scorecard.objectives()]
    rows.problem((objective != "") & ~objective.isin(objectives), "objective_id", "unknown objective '" + objective
                 + f"' (not in scorecard.yaml; known: {', '.join(objectives)})")  # fmt: skip
    rows.problem(table["action"] == "", "action", "missing: say what was decided or what will be done")
    rows.problem(table["owner"] == "", "owner", "missing: name who owns the action")
    due = _days(table["due"])
    rows.problem(table["due"] == "", "due", "missing: give the due day as YYYY-MM-DD")
    rows.problem(due.isna() & (table["due"] != ""), "due", "'" + table["due"] + "' is not a day YYYY-MM-DD")
    status = table["status"].str.lower().str.replace(r"[\s-]+", "_", regex=True)
    statuses = ", ".join(ACTION_STATUSES)
    rows.problem(status == "", "status", f"missing: give one of {statuses}")
    rows.problem((status != "") & ~status.isin(ACTION_STATUSES), "status",
                 "'" + table["status"] + f"' is not an action status (one of {statuses})")
    rows.raise_problems()
    return _typed(pd.DataFrame({"action_id": table["id"], "kpi_id": kpi, "objective_id": objective,
                                "action": table["action"], "owner": table["owner"], "due": due, "status": status}))


# --- reading a file into text cells ---------------------------------------------------------------


@dataclass
class _Rows:
    """A file's rows as stripped text cells ("" where absent), each cell's line in the file, and its problems."""

    path: Path
    table: pd.DataFrame
    lines: pd.DataFrame  # the line of each cell of table, and of each row (`~item`)
    found: list[pd.DataFrame] = field(default_factory=list)

    def problem(self, bad: pd.Series, column: str, message: pd.Series | str) -> None:
        """One problem line for every row where `bad` holds: `<file> line <n>, <column>: <message>`."""
        bad = bad.fillna(False).astype(bool)
        if not bad.any():
            return
        lines = self.lines.loc[bad, column]
        text = message[bad] if isinstance(message, pd.Series) else message
        self.found.append(pd.DataFrame({"line": lines, "text": f"{self.path} line " + lines.astype(str) + ", "
                                        + column + ": " + text}))  # fmt: skip

    def raise_problems(self) -> None:
        if self.found:
            found = pd.concat(self.found).sort_values("line", kind="stable")
            raise ReviewFileError(found["text"].tolist())


def _read_rows(path: Path, setting: str, columns: tuple[str, ...], required: tuple[str, ...],
               one_of: tuple[str, ...] = ()) -> _Rows:  # fmt: skip
    """The file's rows with every column of `columns`; raises ReviewFileError for a file that cannot be read, a
    CSV header without a `required` column (or any of `one_of`), and a column or key not in `columns`."""
    if not path.is_file():
        raise ReviewFileError([f"{path}: file not found (fix {setting} in scorecard.yaml; paths are relative to it)"])
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        table, lines, present = _read_csv(path, columns)
    elif suffix in YAML_SUFFIXES:
        table, lines, present = _read_yaml(path)
    else:
        raise ReviewFileError([f"{path}: a review file is CSV (.csv) or YAML (.yaml, .yml), not '{suffix or path.name}'"
                               f" (rename it and {setting})"])  # fmt: skip
    unknown = pd.DataFrame([(line, f"{path} line {line}, {key}: unknown column (the columns are {', '.join(columns)})")
                            for key, line in present if key not in columns], columns=["line", "text"])  # fmt: skip
    if suffix in CSV_SUFFIXES:  # a column missing from the header: every row would say so, say it once
        header = {key for key, _ in present}
        missing = [name for name in required if name not in header]
        missing += [" or ".join(one_of)] if one_of and not header.intersection(one_of) else []
        if missing:
            raise ReviewFileError([f"{path} line 1: missing column(s) {', '.join(missing)} (the columns are "
                                   f"{', '.join(columns)})", *unknown["text"]])  # fmt: skip
    cell_lines = {name: (lines[name].fillna(lines["~item"]) if name in lines else lines["~item"]).astype("int64")
                  for name in ("~item", *columns)}  # fmt: skip
    return _Rows(path, table.reindex(columns=list(columns), fill_value=""), pd.DataFrame(cell_lines, index=table.index),
                 [unknown] if len(unknown) else [])


def _read_csv(path: Path, columns: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame, list[tuple[str, int]]]:
    try:  # blank lines are read (and dropped below) so that every row keeps its line number
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, skip_blank_lines=False,
                          encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise ReviewFileError([f"{path}: the file is empty (expected a header row: {','.join(columns)})"]) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ReviewFileError([f"{path}: not a readable CSV file ({str(error).splitlines()[0]})"]) from None
    names = [str(name).strip() for name in raw.columns]
    table = pd.DataFrame({name: raw[column].str.replace(NUL, "").str.strip()
                          for name, column in zip(names, raw.columns, strict=True)}, index=raw.index)  # fmt: skip
    # the header is line 1; a quoted value may span lines, which the rows after it count too
    spans = 1 + sum((raw[column].str.count("\n") for column in raw.columns), pd.Series(0, index=raw.index))
    item_lines = 2 + spans.cumsum() - spans
    filled = table.ne("").any(axis=1)
    table, item_lines = table[filled].reset_index(drop=True), item_lines[filled].reset_index(drop=True)
    lines = pd.DataFrame({name: item_lines for name in ["~item", *names]}, index=table.index)
    return table, lines, [(name, 1) for name in names]


def _read_yaml(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[tuple[str, int]]]:
    """A YAML list of mappings as text cells, with the line of each value (and of each item, as `~item`)."""
    try:
        loader = _Loader(path.read_text(encoding="utf-8-sig"))  # it refuses a control character here already
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else []
        finally:
            loader.dispose()
    except UnicodeDecodeError as error:
        raise ReviewFileError([f"{path}: not UTF-8 text (byte {error.start + 1}: {error.reason})"]) from None
    except yaml.YAMLError as error:
        raise ReviewFileError([f"{path}: not valid YAML ({yaml_problem(error)})"]) from None
    except ValueError:
        raise ReviewFileError([f"{path}: not valid YAML ({TOO_LONG_NUMBER}, or quote it)"]) from None
    except RecursionError:
        raise ReviewFileError([f"{path}: not valid YAML (lists or mappings nested too deep to read)"]) from None
    if not isinstance(data, list):
        raise ReviewFileError([f"{path}: expected a list of mappings, one `- key: value` item per row"])
    cells, lines, present, problems = [], [], [], []
    for item_node, item in zip(node.value if data else [], data, strict=True):
        item_line = item_node.start_mark.line + 1
        if not isinstance(item, dict):
            problems.append(f"{path} line {item_line}: expected a mapping of column: value (one `- key: value` item "
                            "per row)")  # fmt: skip
            continue
        # each key as read (`null:` is None, `0x10:` is 16), as the item has it
        key_lines = {str(loader.construct_object(key)): value.start_mark.line + 1 for key, value in item_node.value}
        present += [(str(key), key_lines[str(key)]) for key in item]
        problems += [f"{path} line {key_lines[str(key)]}, {key}: expected one value, not a list or mapping"
                     for key, value in item.items() if isinstance(value, list | dict)]  # fmt: skip
        cells.append({str(key): _text(value) for key, value in item.items()})
        lines.append({"~item": item_line, **key_lines})
    if problems:
        raise ReviewFileError(problems)
    lines_frame = pd.DataFrame(lines) if lines else pd.DataFrame({"~item": pd.Series([], dtype="int64")})
    return pd.DataFrame(cells, dtype=object).fillna(""), lines_frame, list(dict.fromkeys(present))


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, but a date or time stays the text it is, as in a CSV cell: the checks read it (and
    2026-02-30 is a problem of its line, where PyYAML would raise a ValueError)."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_scalar)


def _text(value: object) -> str:
    """A YAML scalar as the text a CSV cell would hold."""
    return "" if value is None else str(value).strip()


# --- checks and shapes --------------------------------------------------------------------------


def _kpi_ids(scorecard: ScorecardConfig) -> list[str]:
    return [kpi.id for _, _, kpi in scorecard.iter_kpis()]


def _check_kpis(rows: _Rows, kpi: pd.Series, known: list[str], required: bool) -> None:
    if required:
        rows.problem(kpi == "", "kpi_id", "missing: give the id of a KPI in scorecard.yaml")
    rows.problem((kpi != "") & ~kpi.isin(known), "kpi_id", "unknown KPI '" + kpi + "' (not in scorecard.yaml; "
                 f"known: {', '.join(known)})")  # fmt: skip


def _first_line(rows: _Rows, key: list[pd.Series]) -> pd.Series:
    """For each row whose key (no part missing) an earlier row has already: that row's line; else NA."""
    item_lines = rows.lines["~item"]
    first = item_lines.groupby(key, dropna=True).transform("first")
    return first.where(first.ne(item_lines)).astype("Int64")


def _days(text: pd.Series) -> pd.Series:
    """YYYY-MM-DD as midnight UTC of that day; NaT for anything else, and for a day no timestamp holds (9999-01-01)."""
    exact = text.where(text.str.fullmatch(r"\d{4}-\d{2}-\d{2}"))
    return in_range(pd.to_datetime(exact, format="%Y-%m-%d", errors="coerce", utc=True))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as objects with None for empty, timestamp columns as UTC: the frame the warehouse stores."""
    frame = frame.reset_index(drop=True)
    for name in frame.columns:
        if name in ("period_start", "due"):
            frame[name] = pd.to_datetime(frame[name], utc=True).astype("datetime64[ns, UTC]")
        else:
            frame[name] = frame[name].astype(object).where(frame[name].notna() & frame[name].ne(""), None)
    return frame


def _or_empty(frame: pd.DataFrame | None, empty) -> pd.DataFrame:
    return empty() if frame is None else frame
