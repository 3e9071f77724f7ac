"""Review commentary and the action log: the files (CSV and YAML) and every problem in them, when an action is
overdue, the kpi_comments and actions tables on SQLite and PostgreSQL, the assets and their overdue_actions check,
the run's pre-flight, and the review files of the examples and of the demo config."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from dagster import AssetCheckSeverity, DagsterInstance, materialize
from demo_files import write_config
from typer.testing import CliRunner

from connectors.files.review import (
    ReviewFileError,
    empty_actions,
    empty_comments,
    read_actions,
    read_comments,
    read_review,
)
from connectors.simulator.review import latest_ended_period
from pipelines.assets.review import review_log
from pipelines.cli import app
from pipelines.cli.app import _write_simulator_config
from pipelines.clock import NOW_ENV
from pipelines.config import parse_config_text, read_config
from pipelines.resources import WAREHOUSE_URL_ENV, ProgressReporter, ScorecardConfigResource, WarehouseResource
from pipelines.settings import write_config_copy
from scoring.config import TOO_LONG_NUMBER
from scoring.review import ACTION_COLUMNS, ACTION_STATUSES, COMMENT_COLUMNS, OPEN_ACTION_STATUSES, overdue
from warehouse import Warehouse, WarehouseError

ROOT = Path(__file__).resolve().parents[1]
SCORECARD = read_config(ROOT / "scorecard.yaml").scorecard
WEEKLY = SCORECARD.model_copy(update={"review_period": "week"})
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
UTC_DAY = "datetime64[ns, UTC]"
runner = CliRunner()


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(reader, path: Path, scorecard=SCORECARD) -> list[str]:
    with pytest.raises(ReviewFileError) as raised:
        reader(path, scorecard)
    return raised.value.problems


COMMENTS_CSV = """kpi_id,period,comment,author
mttr,2026-11,"Two long sev1 incidents waited for a manual failover, so MTTR rose.",incident-manager
availability, 2026-11-17 ,Payments outage.,
"""
COMMENTS_YAML = """
- kpi_id: mttr
  period: 2026-11
  comment: >
    Two long sev1 incidents waited for a manual failover,
    so MTTR rose.
  author: incident-manager
- kpi_id: availability
  period: 2026-11-17      # a YAML date: any day of the month
  comment: Payments outage.
"""
ACTIONS_CSV = """id,kpi_id,objective_id,action,owner,due,status
A-1,mttr,,Automate the failover runbook,incident-manager,2026-11-20,open
A-2,,reliable_services,Storage refresh,head-of-infrastructure,2027-01-31,In progress
A-3,change_failure_rate,,Config changes through the pipeline,release-manager,2026-11-01,DONE
"""
ACTIONS_YAML = """
- {id: A-1, kpi_id: mttr, action: Automate the failover runbook, owner: incident-manager, due: 2026-11-20,
   status: open}
- id: A-2
  objective_id: reliable_services
  action: Storage refresh
  owner: head-of-infrastructure
  due: 2027-01-31
  status: in_progress
- id: A-3
  kpi_id: change_failure_rate
  action: Config changes through the pipeline
  owner: release-manager
  due: 2026-11-01
  status: done
"""


# ---------------------------------------------------------------------------------------------
# Reading the files: CSV and YAML give the same typed frames


def as_read(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as objects (None for missing), as the readers and the warehouse give them."""
    text = [name for name in frame.columns if name not in ("period_start", "due")]
    return frame.assign(**{name: frame[name].astype(object).where(frame[name].notna(), None) for name in text})


def expected_comments() -> pd.DataFrame:
    return as_read(pd.DataFrame({
        "kpi_id": ["mttr", "availability"],
        "period_start": pd.Series([utc("2026-11-01")] * 2, dtype=UTC_DAY),
        "comment": ["Two long sev1 incidents waited for a manual failover, so MTTR rose.", "Payments outage."],
        "author": ["incident-manager", None],
    }))


def expected_actions() -> pd.DataFrame:
    return as_read(pd.DataFrame({
        "action_id": ["A-1", "A-2", "A-3"],
        "kpi_id": ["mttr", None, "change_failure_rate"],
        "objective_id": [None, "reliable_services", None],
        "action": ["Automate the failover runbook", "Storage refresh", "Config changes through the pipeline"],
        "owner": ["incident-manager", "head-of-infrastructure", "release-manager"],
        "due": pd.Series([utc("2026-11-20"), utc("2027-01-31"), utc("2026-11-01")], dtype=UTC_DAY),
        "status": ["open", "in_progress", "done"],
    }))


@pytest.mark.parametrize(("name", "text"), [("comments.csv", COMMENTS_CSV), ("comments.yaml", COMMENTS_YAML),
                                            ("comments.YML", COMMENTS_YAML)])  # fmt: skip
def test_comments_are_read_from_csv_or_yaml_with_the_period_stored_as_its_start(tmp_path, name, text):
    comments = read_comments(write(tmp_path, name, text), SCORECARD)
    assert list(comments.columns) == COMMENT_COLUMNS
    pd.testing.assert_frame_equal(comments, expected_comments())


@pytest.mark.parametrize(("name", "text"), [("actions.csv", ACTIONS_CSV), ("actions.yaml", ACTIONS_YAML)])
def test_actions_are_read_from_csv_or_yaml_with_the_due_day_at_midnight_utc(tmp_path, name, text):
    actions = read_actions(write(tmp_path, name, text), SCORECARD)
    assert list(actions.columns) == ACTION_COLUMNS
    pd.testing.assert_frame_equal(actions, expected_actions())


def test_a_week_review_period_floors_dates_and_iso_weeks_to_their_monday(tmp_path):
    path = write(tmp_path, "comments.csv", "kpi_id,period,comment\nmttr,2026-11-18,a\navailability,2026-W47,b\n"
                 "change_failure_rate,2026-11-22T23:30:00-02:00,c\ndeployment_frequency,2026-11-23,d\n")
    starts = read_comments(path, WEEKLY)["period_start"]
    # 2026-11-22 23:30 at UTC-2 is Monday 2026-11-23 01:30 UTC: the next week
    assert starts.tolist() == [utc("2026-11-16"), utc("2026-11-16"), utc("2026-11-23"), utc("2026-11-23")]
    monthly = read_comments(path, SCORECARD)["period_start"]
    assert set(monthly) == {utc("2026-11-01")}


def test_a_nul_in_a_csv_comment_is_removed_as_postgresql_refuses_it(tmp_path):
    path = write(tmp_path, "comments.csv", "kpi_id,period,comment,author\nmttr,2026-11,disk\x00 full,ops\x00\n")
    comments = read_comments(path, SCORECARD)
    assert comments[["comment", "author"]].values.tolist() == [["disk full", "ops"]]


def test_two_dates_in_one_week_are_one_review_period_twice(tmp_path):
    path = write(tmp_path, "comments.csv", "kpi_id,period,comment\nmttr,2026-11-16,a\nmttr,2026-11-22,b\n"
                 "mttr,2026-11-23,c\n")
    assert problems_of(read_comments, path, WEEKLY) == [
        f"{path} line 3, period: a second comment on 'mttr' for the week starting 2026-11-16 (the first is on line "
        "2): merge them into one"]
    assert len(read_comments(path, SCORECARD.model_copy(update={"review_period": "day"}))) == 3


def test_blank_lines_and_values_over_several_lines_keep_the_line_numbers_of_the_file(tmp_path):
    path = write(tmp_path, "comments.csv", 'kpi_id,period,comment\n\nmttr,2026-11,"What changed:\n\nwhy."\n\n'
                 "nope,2026-11,b\n")  # fmt: skip
    assert problems_of(read_comments, path)[0].startswith(f"{path} line 7, kpi_id: unknown KPI 'nope'")
    path.write_text(path.read_text().replace("nope", "mtbf"))
    assert read_comments(path, SCORECARD)["comment"].tolist() == ["What changed:\n\nwhy.", "b"]


def test_a_header_only_file_has_no_rows_and_absent_files_give_empty_typed_frames(tmp_path):
    header_only = write(tmp_path, "comments.csv", "kpi_id,period,comment,author\n")
    empty_yaml = write(tmp_path, "actions.yaml", "# nothing decided yet\n")
    review = read_review(header_only, empty_yaml, SCORECARD)
    pd.testing.assert_frame_equal(review.comments, empty_comments())
    pd.testing.assert_frame_equal(review.actions, empty_actions())
    none = read_review(None, None, SCORECARD)
    assert list(none.comments.columns) == COMMENT_COLUMNS and list(none.actions.columns) == ACTION_COLUMNS
    assert str(none.actions["due"].dtype) == UTC_DAY and str(none.comments["period_start"].dtype) == UTC_DAY


# ---------------------------------------------------------------------------------------------
# Every problem: one line naming the file, the line and the column, and what to do

KNOWN_KPIS = ", ".join(kpi.id for _, _, kpi in SCORECARD.iter_kpis())
KNOWN_OBJECTIVES = ", ".join(objective.id for _, objective in SCORECARD.objectives())
COMMENT_PROBLEMS = [
    ("nope,2026-11,a", "kpi_id", f"unknown KPI 'nope' (not in scorecard.yaml; known: {KNOWN_KPIS})"),
    (",2026-11,a", "kpi_id", "missing: give the id of a KPI in scorecard.yaml"),
    ("mttr,November,a", "period", "'November' is not a date (give 2026-11 or 2026-11-01)"),
    ("mttr,2026-13,a", "period", "'2026-13' is not a date (give 2026-11 or 2026-11-01)"),
    ("mttr,,a", "period", "missing: give a date inside the review period (2026-11 or 2026-11-01)"),
    ("mttr,2026-11,", "comment", "missing: say what changed, why, and what is recommended"),
]
ACTION_PROBLEMS = [
    (",mttr,,x,o,2026-12-01,open", "id", "missing: give every action an id of its own (e.g. A-12)"),
    ("A-9,nope,,x,o,2026-12-01,open", "kpi_id", f"unknown KPI 'nope' (not in scorecard.yaml; known: {KNOWN_KPIS})"),
    ("A-9,,nope,x,o,2026-12-01,open", "objective_id",
     f"unknown objective 'nope' (not in scorecard.yaml; known: {KNOWN_OBJECTIVES})"),
    ("A-9,mttr,fast_flow,x,o,2026-12-01,open", "kpi_id", "both kpi_id 'mttr' and objective_id 'fast_flow' are given: "
     "an action is for one KPI or one objective, keep one"),
    ("A-9,,,x,o,2026-12-01,open", "kpi_id",
     "neither kpi_id nor objective_id: name the KPI or the objective the action is for"),
    ("A-9,mttr,,,o,2026-12-01,open", "action", "missing: say what was decided or what will be done"),
    ("A-9,mttr,,x,,2026-12-01,open", "owner", "missing: name who owns the action"),
    ("A-9,mttr,,x,o,,open", "due", "missing: give the due day as YYYY-MM-DD"),
    ("A-9,mttr,,x,o,2026-12-1,open", "due", "'2026-12-1' is not a day YYYY-MM-DD"),
    ("A-9,mttr,,x,o,01/12/2026,open", "due", "'01/12/2026' is not a day YYYY-MM-DD"),
    ("A-9,mttr,,x,o,2026-02-30,open", "due", "'2026-02-30' is not a day YYYY-MM-DD"),
    ("A-9,mttr,,x,o,2026-12-01T10:00:00Z,open", "due", "'2026-12-01T10:00:00Z' is not a day YYYY-MM-DD"),
    ("A-9,mttr,,x,o,2026-12-01,closed", "status",
     f"'closed' is not an action status (one of {', '.join(ACTION_STATUSES)})"),
    ("A-9,mttr,,x,o,2026-12-01,", "status", f"missing: give one of {', '.join(ACTION_STATUSES)}"),
]


@pytest.mark.parametrize(("row", "column", "message"), COMMENT_PROBLEMS)
def test_each_comment_problem_is_one_line_naming_file_line_and_column(tmp_path, row, column, message):
    path = write(tmp_path, "comments.csv", f"kpi_id,period,comment\nmttr,2026-10,fine\n{row}\n")
    assert problems_of(read_comments, path) == [f"{path} line 3, {column}: {message}"]


@pytest.mark.parametrize(("row", "column", "message"), ACTION_PROBLEMS)
def test_each_action_problem_is_one_line_naming_file_line_and_column(tmp_path, row, column, message):
    path = write(tmp_path, "actions.csv", f"id,kpi_id,objective_id,action,owner,due,status\n"
                 f"A-1,mttr,,fine,o,2026-12-01,open\n{row}\n")  # fmt: skip
    assert problems_of(read_actions, path) == [f"{path} line 3, {column}: {message}"]


def test_a_duplicate_id_and_a_second_comment_in_one_period_name_the_first_line(tmp_path):
    actions = write(tmp_path, "actions.csv", "id,kpi_id,action,owner,due,status\nA-1,mttr,x,o,2026-12-01,open\n"
                    "A-2,mttr,x,o,2026-12-01,open\nA-1,mtbf,y,o,2026-12-01,done\n")
    assert problems_of(read_actions, actions) == [
        f"{actions} line 4, id: 'A-1' is the id of the action on line 2 too: give each action an id of its own"]
    comments = write(tmp_path, "comments.csv", "kpi_id,period,comment\nmttr,2026-11-03,a\nmttr,2026-11,b\n")
    assert problems_of(read_comments, comments) == [
        f"{comments} line 3, period: a second comment on 'mttr' for the month starting 2026-11-01 (the first is on "
        "line 2): merge them into one"]


def test_a_yaml_problem_names_the_line_of_the_value(tmp_path):
    path = write(tmp_path, "actions.yaml", ACTIONS_YAML.replace("  status: in_progress", "  status: closed")
                 .replace("due: 2026-11-01", "due: 1 Nov"))  # fmt: skip
    assert problems_of(read_actions, path) == [
        f"{path} line 9, status: 'closed' is not an action status (one of {', '.join(ACTION_STATUSES)})",
        f"{path} line 14, due: '1 Nov' is not a day YYYY-MM-DD"]
    missing = write(tmp_path, "comments.yaml", "- kpi_id: mttr\n  period: 2026-11\n")
    assert problems_of(read_comments, missing) == [
        f"{missing} line 1, comment: missing: say what changed, why, and what is recommended"]


def test_every_problem_of_both_files_is_found_at_once_and_the_message_is_the_first(tmp_path):
    comments = write(tmp_path, "comments.csv", "kpi_id,period,comment\nnope,2026-11,a\nmttr,bad,\n")
    actions = write(tmp_path, "actions.yaml", "- {id: A-1, kpi_id: mttr, action: x, owner: o, due: 2026-12-01, "
                    "status: open, colour: red}\n")
    with pytest.raises(ReviewFileError) as raised:
        read_review(comments, actions, SCORECARD)
    problems = raised.value.problems
    assert [re.sub(r" line \d+, (\w+):.*", r" \1", line.removeprefix(str(tmp_path) + "/")) for line in problems] == [
        "comments.csv kpi_id", "comments.csv period", "comments.csv comment", "actions.yaml colour"]
    assert problems[-1] == (f"{actions} line 1, colour: unknown column (the columns are id, kpi_id, objective_id, "
                            "action, owner, due, status)")  # fmt: skip
    assert str(raised.value) == f"{problems[0]} (and 3 more)"


@pytest.mark.parametrize(("name", "text", "problem"), [
    ("comments.csv", "kpi_id,comment\nmttr,a\n",
     " line 1: missing column(s) period (the columns are kpi_id, period, comment, author)"),
    ("actions.csv", "id,action,owner,due,status\nA-1,x,o,2026-12-01,open\n",
     " line 1: missing column(s) kpi_id or objective_id (the columns are id, kpi_id, objective_id, action, owner, "
     "due, status)"),
    ("comments.csv", "", ": the file is empty (expected a header row: kpi_id,period,comment,author)"),
    ("comments.yaml", "kpi_id: mttr\n", ": expected a list of mappings, one `- key: value` item per row"),
    ("comments.yaml", "- mttr\n", " line 1: expected a mapping of column: value (one `- key: value` item per row)"),
    ("comments.yaml", "- kpi_id: [mttr, mtbf]\n  period: 2026-11\n  comment: a\n",
     " line 1, kpi_id: expected one value, not a list or mapping"),
    ("comments.yaml", "- kpi_id: mttr\n  comment: 'a\n", ": not valid YAML (line 3, column 1: while scanning a "
                                                           "quoted scalar; found unexpected end of stream)"),
    ("comments.txt", "kpi_id,period,comment\n", ": a review file is CSV (.csv) or YAML (.yaml, .yml), not '.txt' "
                                                 "(rename it and review.comments)"),
])  # fmt: skip
def test_a_file_that_cannot_be_read_is_one_line(tmp_path, name, text, problem):
    path = write(tmp_path, name, text)
    reader = read_comments if name.startswith("comments") else read_actions
    assert problems_of(reader, path) == [f"{path}{problem}"]


def test_a_missing_file_names_the_setting(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    assert problems_of(read_actions, missing) == [
        f"{missing}: file not found (fix review.actions in scorecard.yaml; paths are relative to it)"]


# ---------------------------------------------------------------------------------------------
# overdue(): open and due before today's UTC day


def test_overdue_is_open_and_due_before_today():
    actions = pd.DataFrame({
        "status": ["open", "in_progress", "open", "done", "dropped", "open"],
        "due": pd.Series([utc("2026-11-14"), utc("2026-11-01"), utc("2026-11-15"), utc("2026-11-01"),
                          utc("2026-11-01"), utc("2026-11-16")], dtype=UTC_DAY),
    })  # fmt: skip
    expected = [True, True, False, False, False, False]  # due today is not overdue; done and dropped never are
    for today in (utc("2026-11-15"), utc("2026-11-15 23:59:59"), pd.Timestamp("2026-11-15 12:00")):
        assert overdue(actions, today).tolist() == expected
    # 01:00 at UTC+2 on the 16th is still the 15th in UTC: the action due on the 15th is not overdue yet
    assert overdue(actions, pd.Timestamp("2026-11-16 01:00", tz="Europe/Athens")).tolist() == expected
    assert overdue(actions, pd.Timestamp("2026-11-16 02:00", tz="Europe/Athens")).tolist()[2] is True
    assert overdue(actions, utc("2030-01-01")).tolist() == [True, True, True, False, False, True]


def test_overdue_of_no_actions_is_an_empty_boolean_series():
    late = overdue(empty_actions(), utc("2026-11-15"))
    assert late.empty and late.dtype == bool
    assert set(OPEN_ACTION_STATUSES) < set(ACTION_STATUSES)


# ---------------------------------------------------------------------------------------------
# The warehouse: one transaction replaces a scorecard's rows of both tables


def test_replace_review_stores_the_rows_and_a_rerun_changes_nothing(warehouse):
    comments, actions = expected_comments(), expected_actions()
    assert warehouse.replace_review("Other", comments.head(1), actions.head(1)) == (1, 1)
    assert warehouse.replace_review("IT", comments, actions) == (2, 3)
    first = {name: warehouse.read_table(name) for name in ("kpi_comments", "actions")}
    stored = first["actions"][first["actions"]["scorecard"] == "IT"].drop(columns=["scorecard", "loaded_at"])
    pd.testing.assert_frame_equal(stored.sort_values("action_id", ignore_index=True), actions)
    assert warehouse.replace_review("IT", comments, actions) == (2, 3)
    for name, before in first.items():
        pd.testing.assert_frame_equal(warehouse.read_table(name), before)  # loaded_at too


def test_replace_review_rewrites_changed_rows_and_removes_the_rows_no_longer_in_the_files(warehouse):
    comments, actions = expected_comments(), expected_actions()
    warehouse.replace_review("Other", comments, actions)
    warehouse.replace_review("IT", comments, actions)
    before = warehouse.read_table("actions").set_index(["scorecard", "action_id"])
    changed = actions.drop(index=1).assign(status=["done", "done"])  # A-2 removed, A-1 done
    assert warehouse.replace_review("IT", comments.head(1), changed) == (1, 2)
    after = warehouse.read_table("actions").set_index(["scorecard", "action_id"])
    assert after.loc["IT", "status"].to_dict() == {"A-1": "done", "A-3": "done"}
    assert after.loc[("IT", "A-3"), "loaded_at"] == before.loc[("IT", "A-3"), "loaded_at"]
    assert after.loc[("IT", "A-1"), "loaded_at"] > before.loc[("IT", "A-1"), "loaded_at"]
    assert set(warehouse.read_table("kpi_comments").groupby("scorecard").size().items()) == {("IT", 1), ("Other", 2)}
    assert warehouse.replace_review("IT", empty_comments(), empty_actions()) == (0, 0)
    assert set(warehouse.read_table("actions")["scorecard"]) == {"Other"}


def test_replace_review_refuses_a_bad_frame_and_writes_nothing(warehouse):
    warehouse.replace_review("IT", expected_comments(), expected_actions())
    before = warehouse.read_table("actions")
    with pytest.raises(WarehouseError, match=r"actions: 1 rows repeat a key \(scorecard, action_id\)"):
        warehouse.replace_review("IT", empty_comments(), pd.concat([expected_actions()] + [expected_actions().head(1)]))
    with pytest.raises(WarehouseError, match="kpi_comments: missing column"):
        warehouse.replace_review("IT", expected_comments().drop(columns=["author"]), empty_actions())
    pd.testing.assert_frame_equal(warehouse.read_table("actions"), before)
    assert len(warehouse.read_table("kpi_comments")) == 2


# ---------------------------------------------------------------------------------------------
# The assets kpi_comments and actions, and the overdue_actions check


def review_config(folder: Path, data_dir: Path, **review: str) -> Path:
    return write_config(folder, data_dir, review=review) if review else write_config(folder, data_dir)


def materialize_review(config_path: Path, warehouse_url: str, raise_on_error: bool = True):
    resources = {"scorecard": ScorecardConfigResource(path=str(config_path)),
                 "warehouse": WarehouseResource(url=warehouse_url), "progress": ProgressReporter()}  # fmt: skip
    return materialize([review_log], resources=resources, instance=DagsterInstance.ephemeral(), run_config=QUIET,
                       raise_on_error=raise_on_error)  # fmt: skip


def review_tables(warehouse_url: str) -> dict[str, pd.DataFrame]:
    with Warehouse.connect(warehouse_url) as warehouse:
        return {name: warehouse.read_table(name) for name in ("kpi_comments", "actions")}


def test_the_assets_write_the_files_warn_of_overdue_actions_and_a_rerun_keeps_the_rows(
    tmp_path, data_dir, warehouse_url, monkeypatch
):
    monkeypatch.setenv(NOW_ENV, "2026-11-21T06:00:00Z")
    write(tmp_path, "comments.csv", COMMENTS_CSV)
    write(tmp_path, "actions.yaml", ACTIONS_YAML)
    config_path = review_config(tmp_path, data_dir, comments="comments.csv", actions="actions.yaml")
    result = materialize_review(config_path, warehouse_url)
    assert result.success
    tables = review_tables(warehouse_url)
    assert set(tables["kpi_comments"]["scorecard"]) == set(tables["actions"]["scorecard"]) == {SCORECARD.name}
    assert tables["actions"]["action_id"].tolist() == ["A-1", "A-2", "A-3"]
    assert tables["kpi_comments"]["period_start"].tolist() == [utc("2026-11-01")] * 2
    metadata = {key: value.value for key, value in result.asset_materializations_for_node("review_log")[1].metadata
                .items()}  # fmt: skip
    assert metadata == {"rows": 3, "file": "actions.yaml", "overdue": 1, "open": 1, "in_progress": 1, "done": 1,
                        "dropped": 0}  # fmt: skip
    [check] = result.get_asset_check_evaluations()
    assert (check.check_name, check.asset_key.to_user_string(), check.passed, check.severity) == (
        "overdue_actions", "actions", False, AssetCheckSeverity.WARN)
    assert check.description == ('1 overdue action(s) as of 2026-11-21: A-1 for mttr ("Automate the failover '
                                 'runbook", owner incident-manager, due 2026-11-20)')  # fmt: skip
    assert materialize_review(config_path, warehouse_url).success
    for name, before in tables.items():
        pd.testing.assert_frame_equal(review_tables(warehouse_url)[name], before)  # loaded_at too


def test_rows_removed_from_the_files_disappear_and_no_review_files_leave_no_rows(
    tmp_path, data_dir, warehouse_url, monkeypatch
):
    monkeypatch.setenv(NOW_ENV, "2026-11-01T06:00:00Z")
    write(tmp_path, "actions.csv", ACTIONS_CSV)
    config_path = review_config(tmp_path, data_dir, actions="actions.csv")
    result = materialize_review(config_path, warehouse_url)
    [check] = result.get_asset_check_evaluations()
    assert check.passed and check.description == "no open action is overdue as of 2026-11-01"
    write(tmp_path, "actions.csv", "\n".join(ACTIONS_CSV.splitlines()[:2]) + "\n")
    assert materialize_review(config_path, warehouse_url).success
    assert review_tables(warehouse_url)["actions"]["action_id"].tolist() == ["A-1"]
    assert review_tables(warehouse_url)["kpi_comments"].empty
    assert materialize_review(review_config(tmp_path, data_dir), warehouse_url).success
    assert review_tables(warehouse_url)["actions"].empty


def test_the_job_run_by_the_cli_writes_the_review_tables_and_warns(tmp_path, data_dir, warehouse_url, monkeypatch):
    monkeypatch.setenv(NOW_ENV, "2026-11-21T06:00:00Z")
    monkeypatch.setenv(WAREHOUSE_URL_ENV, warehouse_url)
    write(tmp_path, "comments.yaml", COMMENTS_YAML)
    write(tmp_path, "actions.csv", ACTIONS_CSV)
    config_path = review_config(tmp_path, data_dir, comments="comments.yaml", actions="actions.csv")
    result = runner.invoke(app, ["run", "--config", str(config_path), "--from", "2024-03-12"])
    assert result.exit_code == 0, result.output
    assert "actions:overdue_actions" in result.stdout.split("checks")[1].splitlines()[0]
    tables = review_tables(warehouse_url)
    assert len(tables["kpi_comments"]) == 2 and len(tables["actions"]) == 3


@pytest.mark.parametrize("command", [["run", "--from", "2024-03-12"], ["backfill", "--from", "2024-03-01",
                                                                       "--to", "2024-03-05"]])  # fmt: skip
def test_a_bad_review_file_stops_the_run_in_the_pre_flight_with_nothing_written(tmp_path, data_dir, command):
    actions = write(tmp_path, "actions.csv", ACTIONS_CSV.replace("In progress", "waiting"))
    config_path = review_config(tmp_path, data_dir, actions="actions.csv")
    result = runner.invoke(app, [*command, "--config", str(config_path)])
    assert (result.exit_code, result.stderr.count("\n")) == (2, 1), result.output
    assert result.stderr == (f"error: {actions} line 3, status: 'waiting' is not an action status (one of "
                             f"{', '.join(ACTION_STATUSES)})\n")  # fmt: skip
    assert not (tmp_path / "warehouse.db").exists()


def test_a_bad_review_file_leaves_the_stored_rows_as_they_were(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv(NOW_ENV, "2024-03-21T06:00:00Z")
    write(tmp_path, "comments.csv", COMMENTS_CSV)
    config_path = review_config(tmp_path, data_dir, comments="comments.csv")
    assert runner.invoke(app, ["run", "--config", str(config_path), "--from", "2024-03-12"]).exit_code == 0
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    before = review_tables(url)
    write(tmp_path, "comments.csv", COMMENTS_CSV + "mttr,2026-11-30,again\n")
    result = runner.invoke(app, ["run", "--config", str(config_path), "--from", "2024-03-12"])
    assert result.exit_code == 2 and "line 4, period: a second comment on 'mttr'" in result.stderr
    for name, table in before.items():
        pd.testing.assert_frame_equal(review_tables(url)[name], table)
    assert not materialize_review(config_path, url, raise_on_error=False).success  # the asset's own read stops it
    for name, table in before.items():
        pd.testing.assert_frame_equal(review_tables(url)[name], table)


# ---------------------------------------------------------------------------------------------
# The examples and the demo config


def test_the_example_files_fit_the_root_scorecard_and_its_commented_review_block(tmp_path, monkeypatch):
    text = (ROOT / "scorecard.yaml").read_text(encoding="utf-8")
    block = re.search(r"^# review:\n(?:#   .*\n)+", text, re.MULTILINE)
    assert block, "scorecard.yaml shows a commented review: block"
    live = parse_config_text(text.replace(block[0], re.sub(r"^# ?", "", block[0], flags=re.MULTILINE)))
    assert (live.review.comments, live.review.actions) == ("examples/review/comments.csv",
                                                           "examples/review/actions.yaml")  # fmt: skip
    review = read_review(ROOT / live.review.comments, ROOT / live.review.actions, live.scorecard)
    assert len(review.comments) >= 5 and set(review.comments["period_start"]) == {utc("2026-11-01")}
    assert {"open", "in_progress", "done", "dropped"} == set(review.actions["status"])
    assert review.actions["objective_id"].notna().any() and review.actions["kpi_id"].notna().any()
    monkeypatch.chdir(tmp_path)
    validated = runner.invoke(app, ["validate", "--config", str(ROOT / "scorecard.yaml")])
    assert validated.exit_code == 0 and "valid" in validated.stdout


@pytest.mark.parametrize("end", ["2026-12-02", "2026-12-01", "2026-11-30"])
def test_the_simulator_config_carries_review_files_that_fit_its_window(tmp_path, monkeypatch, end):
    out = tmp_path / "demo" / "scorecard.yaml"
    _write_simulator_config(ROOT / "scorecard.yaml", out, "http://127.0.0.1:9", utc(end), 7, 30, 10,
                            f"sqlite:///{tmp_path / 'scorecard.db'}")  # fmt: skip
    config = read_config(out)
    assert (config.review.comments, config.review.actions) == ("simulated-files/comments.csv",
                                                               "simulated-files/actions.csv")  # fmt: skip
    monkeypatch.chdir(ROOT)  # the paths are the copy's own, wherever the command runs
    review = ScorecardConfigResource(path=str(out)).review(config)
    latest = latest_ended_period(utc(end), "month")
    assert latest == (utc("2026-11-01") if end != "2026-11-30" else utc("2026-10-01"))
    assert set(review.comments["period_start"]) == {latest} and len(review.comments) >= 3
    late = overdue(review.actions, utc(end))
    assert late.sum() >= 1 and (review.actions["status"] == "done").any()
    assert (review.actions.loc[~late, "status"].isin(OPEN_ACTION_STATUSES)).any()  # and one still to do
    assert runner.invoke(app, ["validate", "--config", str(out)]).exit_code == 0


def test_the_simulator_review_files_fit_any_scorecard(tmp_path):
    out = tmp_path / "scorecard.yaml"
    _write_simulator_config(ROOT / "tests" / "data" / "mini_scorecard.yaml", out, "http://127.0.0.1:9",
                            utc("2026-12-02"), 7, 30, 2, None)  # fmt: skip
    review = ScorecardConfigResource(path=str(out)).review(read_config(out))
    assert len(review.comments) == 1 and overdue(review.actions, utc("2026-12-02")).sum() == 1


def test_a_copy_of_a_config_keeps_its_review_files_reachable(tmp_path, data_dir):
    (tmp_path / "orig").mkdir()
    write(tmp_path / "orig", "comments.csv", COMMENTS_CSV)
    original = write(tmp_path / "orig", "scorecard.yaml", yaml.safe_dump(
        {**yaml.safe_load((ROOT / "scorecard.yaml").read_text()), "review": {"comments": "comments.csv"}}))
    copy = write_config_copy(original, tmp_path / "elsewhere" / "deep" / "scorecard.yaml", {}, written_by="test")
    config = read_config(copy)
    assert config.review.comments == "../../orig/comments.csv" and config.review.actions is None
    assert len(ScorecardConfigResource(path=str(copy)).review(config).comments) == 2


def test_a_day_or_period_no_timestamp_holds_is_one_problem_line_not_a_traceback(tmp_path):
    actions = write(tmp_path, "actions.csv", "id,kpi_id,action,owner,due,status\nA-1,mttr,Fix it,sre,9999-01-01,open\n")
    found = problems_of(read_actions, actions, SCORECARD)
    assert [line.split(", due: ")[0] for line in found] == [f"{actions} line 2"], found
    comments = write(tmp_path, "comments.csv", "kpi_id,period,comment\nmttr,9999-01,far\n")
    assert [line.split(", period: ")[0] for line in problems_of(read_comments, comments, SCORECARD)] == [
        f"{comments} line 2"]


def test_yaml_keys_read_as_other_than_their_text_are_unknown_columns_not_a_traceback(tmp_path):
    path = write(tmp_path, "comments.yaml", "- kpi_id: mttr\n  period: 2026-11\n  comment: a\n  null: x\n"
                 "  yes: y\n  0x10: z\n")  # fmt: skip
    columns = "(the columns are kpi_id, period, comment, author)"
    assert problems_of(read_comments, path) == [
        f"{path} line 4, None: unknown column {columns}",
        f"{path} line 5, True: unknown column {columns}",
        f"{path} line 6, 16: unknown column {columns}",
    ]
    nested = write(tmp_path, "actions.yaml", "- id: A-1\n  ~: [x]\n")
    assert problems_of(read_actions, nested) == [f"{nested} line 2, None: expected one value, not a list or mapping"]


def test_a_yaml_day_no_calendar_has_is_a_problem_of_its_line_not_a_traceback(tmp_path):
    path = write(tmp_path, "actions.yaml", ACTIONS_YAML.replace("due: 2026-11-01", "due: 2026-02-30"))
    assert problems_of(read_actions, path) == [f"{path} line 14, due: '2026-02-30' is not a day YYYY-MM-DD"]
    dates = write(tmp_path, "comments.yaml", COMMENTS_YAML.replace("2026-11-17", "2026-11-17 10:00:00+05:00"))
    pd.testing.assert_frame_equal(read_comments(dates, SCORECARD), expected_comments())


@pytest.mark.parametrize(("text", "problem"), [
    ("- comment: \x1b[31m\n", "not valid YAML (unacceptable character #x001b: special characters are not allowed in "
                              '"<unicode string>", position 11)'),
    ("- kpi_id: " + "1" * 5000 + "\n", f"not valid YAML ({TOO_LONG_NUMBER}, or quote it)"),
    ("- " + "[" * 5000 + "]" * 5000 + "\n", "not valid YAML (lists or mappings nested too deep to read)"),
])  # fmt: skip
def test_yaml_that_cannot_be_read_is_one_problem_not_a_traceback(tmp_path, text, problem):
    path = write(tmp_path, "comments.yaml", text)
    assert problems_of(read_comments, path) == [f"{path}: {problem}"]


def test_a_value_quoted_in_a_problem_cannot_break_its_line(tmp_path):
    path = write(tmp_path, "comments.csv", 'kpi_id,period,comment\n"mt\ntr",2026-11,a\nmttr,"2026\r\n11",b\n')
    assert [line.split(": ", 1)[1][:24] for line in problems_of(read_comments, path)] == [
        "unknown KPI 'mt\\ntr' (no",
        "'2026\\r\\n11' is not a da",
    ]
