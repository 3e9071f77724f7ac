"""The files source (CSV / JSON lines) and the manual KPI values loader."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from connectors.files.manual import read_manual_values
from connectors.files.read import LINE_REJECTIONS, InputFileError, read_records

HEADER = "source,source_id,service,severity,title,status,opened_at,resolved_at,caused_by_change,updated_at\n"
ROW = {"source": "pd", "source_id": "1", "service": "a", "opened_at": "2026-03-01T10:00:00Z"}


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_rows_become_typed_records_and_bad_rows_name_their_line(tmp_path):
    path = write(tmp_path, "incidents.csv", HEADER
                 + "pd,1,checkout,P1,down,resolved,2026-03-01T10:00:00Z,2026-03-01T11:00:00Z,,\n"
                 + "pd,2,checkout,P1,down,resolved,,2026-03-01T11:00:00Z,,\n"
                 + "pd,3,checkout,P2,slow,open,2026-03-02T10:00:00+01:00,,CHG1,\n")
    records = read_records("incidents", path)
    assert list(records.good["source_id"]) == ["1", "3"]
    assert records.good.loc[1, "opened_at"] == pd.Timestamp("2026-03-02T09:00:00Z")
    assert records.good.loc[1, "caused_by_change"] == "CHG1"
    assert (records.rejected.loc[0, "row"], records.rejected.loc[0, "column"]) == (3, "opened_at")
    assert records.rejection_lines() == ["incidents.csv line 3: opened_at: missing"]


def test_json_lines_with_a_bad_line_keep_the_good_ones(tmp_path):
    good_row = {"source": "pd", "source_id": "1", "service": "a", "opened_at": "2026-03-01T10:00:00Z", "tags": ["x"]}
    path = write(tmp_path, "incidents.jsonl", json.dumps(good_row) + "\n{not json\n\n"
                 + json.dumps(good_row | {"source_id": "2", "opened_at": "2026-03-01T10:00:00"}) + "\n")
    records = read_records("incidents", path)
    assert list(records.good["source_id"]) == ["1"]
    assert records.good.loc[0, "tags"] == ["x"]
    reasons = dict(zip(records.rejected["row"], records.rejected["reason"], strict=True))
    assert reasons[2] == "bad JSON: Expecting property name enclosed in double quotes at column 2"
    assert "no UTC offset" in reasons[4]


def test_bad_json_lines_give_the_decoders_message_and_no_empty_column(tmp_path):
    bad = ['{"source": "pd" "source_id": "2"}', "[1, 2]", "null"]
    lines = [json.dumps(ROW), *bad, json.dumps(ROW | {"opened_at": ""})]
    records = read_records("incidents", write(tmp_path, "incidents.jsonl", "\n".join(lines) + "\n"))
    assert records.rejection_lines() == [
        "incidents.jsonl line 2: bad JSON: Expecting ',' delimiter at column 17",
        "incidents.jsonl line 3: bad JSON: a line must hold one object, not an array",
        "incidents.jsonl line 4: bad JSON: a line must hold one object, not null",
        "incidents.jsonl line 5: opened_at: missing",
    ]


def test_json_lines_that_are_all_bad_are_rejected_lines_not_missing_columns(tmp_path):
    records = read_records("incidents", write(tmp_path, "incidents.jsonl", "{bad\n[1]\n"))
    assert records.good.empty and str(records.good["opened_at"].dtype) == "datetime64[ns, UTC]"
    assert records.rejection_lines() == [
        "incidents.jsonl line 1: bad JSON: Expecting property name enclosed in double quotes at column 2",
        "incidents.jsonl line 2: bad JSON: a line must hold one object, not an array",
    ]


def test_json_lines_of_empty_objects_are_records_without_the_columns_not_no_records(tmp_path):
    path = write(tmp_path, "incidents.jsonl", "0\n{}\n")
    with pytest.raises(InputFileError, match=r": missing column\(s\) source, source_id, service, opened_at for "):
        read_records("incidents", path)


def test_json_lines_split_at_newlines_only_and_a_byte_order_mark_is_ignored(tmp_path):
    # U+2028 is valid inside a JSON string; str.splitlines() would cut the record in two.
    first = json.dumps(ROW | {"title": "down\u2028again"}, ensure_ascii=False)
    path = write(tmp_path, "incidents.jsonl", "\ufeff" + first + "\n{bad\n")
    records = read_records("incidents", path)
    assert list(records.good["title"]) == ["down\u2028again"]
    assert records.rejection_lines() == [
        "incidents.jsonl line 2: bad JSON: Expecting property name enclosed in double quotes at column 2"
    ]


def test_json_lines_that_are_not_utf8_are_one_clear_error(tmp_path):
    path = tmp_path / "incidents.jsonl"
    path.write_bytes(b'{"title": "caf\xe9"}\n')  # Latin-1
    with pytest.raises(InputFileError, match=r"incidents.jsonl: not UTF-8 text \(byte 15: invalid continuation byte\)"):
        read_records("incidents", path)


def test_a_number_too_long_or_nesting_too_deep_to_read_is_a_rejected_line_not_a_traceback(tmp_path):
    lines = [
        json.dumps(ROW | {"title": 1}).replace("1}", "1" * 5000 + "}"),
        json.dumps(ROW | {"title": 1}).replace("1}", "[" * 100_000 + "]" * 100_000 + "}"),
        json.dumps(ROW),
    ]
    records = read_records("incidents", write(tmp_path, "incidents.jsonl", "\n".join(lines)))
    assert len(records.good) == 1
    assert records.rejection_lines() == [
        "incidents.jsonl line 1: bad JSON: a number with more digits than can be read",
        "incidents.jsonl line 2: bad JSON: arrays or objects nested too deep to read",
    ]
    with pytest.raises(InputFileError, match=r"incidents.json: bad JSON: a number with more digits than can be read$"):
        read_records("incidents", write(tmp_path, "incidents.json", "[" + lines[0] + "]"))


def test_a_json_number_is_read_as_written_when_another_line_has_none(tmp_path):
    # read as floats, the ids would be 9.007199254740992e+15 both: one record lost as the other's older row
    lines = [json.dumps(ROW | {"source_id": 2**53 + 1}), json.dumps(ROW | {"source_id": 2**53}),
             json.dumps(ROW | {"source_id": None})]  # fmt: skip
    records = read_records("incidents", write(tmp_path, "incidents.jsonl", "\n".join(lines)))
    assert list(records.good["source_id"]) == ["9007199254740993", "9007199254740992"]
    assert records.rejection_lines() == ["incidents.jsonl line 3: source_id: missing"]


def test_a_bad_json_array_names_line_and_column(tmp_path):
    path = write(tmp_path, "incidents.json", "[\n" + json.dumps(ROW) + ",\n]\n")
    with pytest.raises(InputFileError, match=r"incidents.json: bad JSON: Expecting value at line 3, column 1$"):
        read_records("incidents", path)


def test_same_time_duplicates_with_other_content_are_counted(tmp_path):
    row = "pd,1,checkout,P1,down,{status},2026-03-01T10:00:00Z,,,2026-03-01T12:00:00Z\n"
    path = write(tmp_path, "incidents.csv", HEADER + row.format(status="open") + row.format(status="resolved")
                 + row.format(status="resolved").replace("pd,1,", "pd,2,") * 2)
    records = read_records("incidents", path)
    assert list(records.good["status"]) == ["resolved", "resolved"]
    assert records.conflicting_duplicates == 1


def test_same_time_duplicates_in_json_lines_compare_nested_values(tmp_path):
    lines = [json.dumps(ROW | {"tags": ["x"]}), json.dumps(ROW | {"tags": ["x"]}),
             json.dumps(ROW | {"source_id": "2", "tags": ["x"]}), json.dumps(ROW | {"source_id": "2", "tags": ["y"]})]
    records = read_records("incidents", write(tmp_path, "incidents.jsonl", "\n".join(lines)))
    assert list(records.good["tags"]) == [["x"], ["y"]]
    assert records.conflicting_duplicates == 1


def test_a_column_named_twice_is_read_as_pandas_reads_it_past_the_names_the_header_has(tmp_path):
    text = "source,source_id,service,opened_at,tag,tag.1,tag\npd,1,a,2026-03-01T10:00:00Z,x,y,z\n"
    records = read_records("incidents", write(tmp_path, "incidents.csv", text))
    assert records.good[["tag", "tag.1", "tag.2"]].to_dict("records") == [{"tag": "x", "tag.1": "y", "tag.2": "z"}]


def test_json_array_is_accepted(tmp_path):
    rows = [{"source": "pd", "source_id": "1", "service": "a", "opened_at": "2026-03-01T10:00:00Z"}]
    records = read_records("incidents", write(tmp_path, "incidents.json", json.dumps(rows)))
    assert len(records.good) == 1


@pytest.mark.parametrize("content, message", [
    (None, "incidents file not found"),
    ("", "the file is empty"),
    ("source,source_id,service\npd,1,a\n", "missing column(s) opened_at for incidents"),
])
def test_unreadable_files_raise_one_clear_error(tmp_path, content, message):
    path = tmp_path / "incidents.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_records("incidents", path)


def test_manual_values_are_floored_to_the_review_period(tmp_path):
    path = write(tmp_path, "values.csv", "kpi_id,value,period\nit_spend,98.5,2026-10\nsatisfaction,41,2026-10-17\n"
                 "training,5%,2026-W44\nno_period,3,\n")
    default = pd.Timestamp("2026-11-01", tz="UTC")
    values = read_manual_values(path, "month", default)
    assert list(values["period_start"]) == [pd.Timestamp("2026-10-01", tz="UTC")] * 3 + [default]
    assert list(values["value"]) == [98.5, 41.0, 5.0, 3.0]


def test_manual_values_iso_week_period(tmp_path):
    path = write(tmp_path, "values.csv", "kpi_id,value,period\nk,1,2026-W44\n")
    values = read_manual_values(path, "week", pd.Timestamp("2026-11-01", tz="UTC"))
    assert values.loc[0, "period_start"] == pd.Timestamp("2026-10-26", tz="UTC")  # Monday of ISO week 44


def test_a_period_read_to_the_nanosecond_beside_a_week_no_timestamp_holds_is_one_problem_not_a_traceback(tmp_path):
    path = write(tmp_path, "values.csv", "kpi_id,value,period\na,1,2026-11-17T10:00:00.123456789Z\nb,2,9999-W52\n")
    with pytest.raises(InputFileError, match=r"values.csv line 3: period '9999-W52' is not a month, date or ISO week$"):
        read_manual_values(path, "month", pd.Timestamp("2026-11-01", tz="UTC"))


def test_manual_values_without_period_column_use_the_default(tmp_path):
    path = write(tmp_path, "values.csv", "kpi_id,value\nk,1.5\n")
    values = read_manual_values(path, "month", pd.Timestamp("2026-11-01", tz="UTC"))
    assert values.loc[0, "period_start"] == pd.Timestamp("2026-11-01", tz="UTC")


def test_a_manual_values_file_not_in_utf8_is_one_clear_error(tmp_path):
    path = tmp_path / "values.csv"
    path.write_bytes("kpi_id,value\ncoût,1\n".encode("latin-1"))
    with pytest.raises(InputFileError, match=r"values.csv: not a readable CSV of kpi_id,value\[,period\] \('utf-8'"):
        read_manual_values(path, "month", pd.Timestamp("2026-11-01", tz="UTC"))


def test_a_line_break_in_a_manual_value_is_written_as_its_escape_in_the_one_line_error(tmp_path):
    path = write(tmp_path, "values.csv", 'kpi_id,value\nk,"1\n2"\n')
    with pytest.raises(InputFileError) as error:
        read_manual_values(path, "month", pd.Timestamp("2026-11-01", tz="UTC"))
    assert str(error.value) == f"{path} line 2: value '1\\n2' is not a finite number"


def test_manual_value_empty_is_no_data_not_zero(tmp_path):
    path = write(tmp_path, "values.csv", "kpi_id,value\nk,\n")
    values = read_manual_values(path, "month", pd.Timestamp("2026-11-01", tz="UTC"))
    assert values["value"].isna().all()


@pytest.mark.parametrize("body, message", [
    ("kpi_id,value\nk,lots\n", "values.csv line 2: value 'lots' is not a finite number"),
    ("kpi_id,value\nk,nan\n", "values.csv line 2: value 'nan' is not a finite number"),
    ("kpi_id,value\nk,1\nk2,inf\n", "values.csv line 3: value 'inf' is not a finite number"),
    ("kpi_id,value\nk,-inf\n", "values.csv line 2: value '-inf' is not a finite number"),
    ("kpi_id,value\nk,1e400\n", "values.csv line 2: value '1e400' is not a finite number"),
    ("kpi_id,value,period\nk,1,October\n", "values.csv line 2: period 'October' is not a month"),
    ("kpi_id,value\n,1\n", "values.csv line 2: kpi_id is empty"),
    ("kpi_id,value\nk,1\nk,2\n", "values.csv line 3: a second value for kpi_id 'k'"),
    ("kpi,value\nk,1\n", "missing column(s) kpi_id"),
])
def test_manual_values_errors_name_file_and_line(tmp_path, body, message):
    path = write(tmp_path, "values.csv", body)
    with pytest.raises(InputFileError) as error:
        read_manual_values(path, "month", pd.Timestamp("2026-11-01", tz="UTC"))
    assert message in str(error.value)


# ---------------------------------------------------------------------------------------------
# One bad CSV line is rejected with its line number; the lines after it are still read.

GOOD = "pd,{id},checkout,P1,down,resolved,2026-03-01T10:00:00Z,2026-03-01T11:00:00Z,,\n"


def good(*ids) -> str:
    return "".join(GOOD.format(id=n) for n in ids)


def read_csv(tmp_path, text):
    records = read_records("incidents", write(tmp_path, "incidents.csv", text))
    return list(records.good["source_id"]), records.rejection_lines()


def test_a_csv_line_with_a_field_too_many_or_too_few_is_rejected_with_its_line(tmp_path):
    text = HEADER + good(1) + GOOD.format(id=2).replace(",,\n", ",,,x,y\n") + good(3) + "pd,4,checkout\n" + good(5)
    assert read_csv(tmp_path, text) == (["1", "3", "5"], ["incidents.csv line 3: line has 12 fields, the header has 10",
                                                         "incidents.csv line 5: line has 3 fields, the header has 10"])


def test_a_shifted_csv_row_fails_normalisation_on_its_line(tmp_path):
    # severity left out and an empty field added at the end: every field after service is one column off
    shifted = "pd,2,checkout,down,resolved,2026-03-01T10:00:00Z,2026-03-01T11:00:00Z,,,\n"
    assert read_csv(tmp_path, HEADER + good(1) + shifted + good(3)) == (
        ["1", "3"], ["incidents.csv line 3: severity: 'down' is not one of sev1..sev5 (or P1..P5, 1..5, "
                     "critical/high/medium/low)"])


def test_an_unterminated_quote_rejects_its_line_and_the_lines_after_it_are_read(tmp_path):
    unterminated = 'pd,2,checkout,P1,"down,resolved,2026-03-01T10:00:00Z,,,\n'
    assert read_csv(tmp_path, HEADER + good(1) + unterminated + good(3, 4)) == (
        ["1", "3", "4"], ["incidents.csv line 3: unterminated quote"])


def test_an_unterminated_quote_closed_by_a_later_stray_quote_rejects_only_its_own_line(tmp_path):
    unterminated = 'pd,2,checkout,P1,"down,resolved,2026-03-01T10:00:00Z,,,\n'
    # read from line 2 on, its quote closes one field later (9 fields); read alone, it is a literal quote
    stray = 'pd,5,checkout,P1,down,resolved",2026-03-01T10:00:00Z,,,\n'
    assert read_csv(tmp_path, HEADER + unterminated + good(3, 4) + stray + good(6)) == (
        ["3", "4", "5", "6"], ["incidents.csv line 2: unterminated quote"])


def test_an_unterminated_quote_on_the_last_line_is_rejected(tmp_path):
    assert read_csv(tmp_path, HEADER + good(1) + 'pd,2,checkout,P1,down,resolved,"2026-03-01T10:00:00Z,,,') == (
        ["1"], ["incidents.csv line 3: unterminated quote"])


def test_line_numbers_are_the_physical_line_a_record_starts_on(tmp_path):
    """A quoted title spans lines 2-4, line 5 is blank, line 6 has no offset: line 6 is named, not row 3."""
    spanning = 'pd,1,checkout,P1,"down\nand ""out""\nagain",resolved,2026-03-01T10:00:00Z,,,\n'
    no_offset = "pd,2,checkout,P1,down,resolved,2026-03-01T10:00:00,,,\n"
    records = read_records("incidents", write(tmp_path, "incidents.csv", HEADER + spanning + "\n" + no_offset))
    assert list(records.good["title"]) == ['down\nand "out"\nagain']
    assert records.rejection_lines() == ["incidents.csv line 6: opened_at: timestamp has no UTC offset (add Z or "
                                         "+HH:MM)"]


def test_a_quoted_value_keeps_its_line_ends_as_written(tmp_path):
    spanning = 'pd,1,checkout,P1,"down\r\nand\rout",resolved,2026-03-01T10:00:00Z,,,\n'  # lines 2 to 4
    no_offset = "pd,2,checkout,P1,down,resolved,2026-03-01T10:00:00,,,\n"
    records = read_records("incidents", write(tmp_path, "incidents.csv", HEADER + spanning + no_offset))
    assert list(records.good["title"]) == ["down\r\nand\rout"]
    assert records.rejection_lines() == ["incidents.csv line 5: opened_at: timestamp has no UTC offset (add Z or "
                                         "+HH:MM)"]  # fmt: skip


def test_crlf_line_endings_and_a_byte_order_mark_read_as_csv(tmp_path):
    text = ("\ufeff" + HEADER + good(1) + "pd,2,checkout\n").replace("\n", "\r\n")
    assert read_csv(tmp_path, text) == (["1"], ["incidents.csv line 3: line has 3 fields, the header has 10"])


def test_a_line_the_csv_module_cannot_read_is_rejected_alone(tmp_path):
    huge = GOOD.format(id=2).replace("down", '"' + "x" * 200_000 + '"')
    assert read_csv(tmp_path, HEADER + good(1) + huge + good(3)) == (
        ["1", "3"], ["incidents.csv line 3: not CSV: field larger than field limit (131072)"])


@pytest.mark.parametrize("content, message", [
    ('source,"source_id,service\n' + good(1), r'incidents.csv line 1: unterminated quote in the header row'),
    (b"\x89PNG\r\n\x1a\n\x00", r"incidents.csv: not UTF-8 text \(byte 1: invalid start byte\)"),
    ("opened_at\n2026-03-01T10:00:00Z\n", r"missing column\(s\) source, source_id, service for incidents"),
])
def test_a_file_that_is_not_csv_of_the_kind_still_stops_the_read(tmp_path, content, message):
    path = tmp_path / "incidents.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputFileError, match=message):
        read_records("incidents", path)


def test_every_reason_a_line_is_rejected_for_is_listed(tmp_path):
    """LINE_REJECTIONS (the README's table; `<...>` stands for a part that varies) holds every reason a line
    that is no record gets, and each of them is one these files give."""
    csv_text = (HEADER + good(1) + "pd,2,checkout\n" + GOOD.format(id=3).replace("down", '"' + "x" * 200_000 + '"')
                + 'pd,4,checkout,P1,"down,resolved,2026-03-01T10:00:00Z,,,\n')
    json_text = '{"source": "pd" "source_id": "2"}\n[1]\n"text"\n' + "1" * 5000 + "\n" + "[" * 100_000 + "\n"
    given = {reason for name, text in (("incidents.csv", csv_text), ("incidents.jsonl", json_text))
             for reason in read_records("incidents", write(tmp_path, name, text)).rejected["reason"]}
    patterns = [re.compile(re.sub(r"<[^>]*>", ".+", re.escape(r.reason))) for r in LINE_REJECTIONS]
    assert all(any(p.fullmatch(reason) for p in patterns) for reason in given), given
    assert all(any(p.fullmatch(reason) for reason in given) for p in patterns), given
