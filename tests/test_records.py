"""Canonical records: the pydantic models and the vectorised normaliser agree on every verdict."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from connectors.records import (
    MISSING,
    MODELS,
    NO_OFFSET,
    NOT_A_TIMESTAMP,
    OUT_OF_RANGE,
    SCHEMAS,
    Change,
    Deployment,
    Incident,
    empty_frame,
    normalise,
    normalise_frame,
    records_to_frame,
    rejection_reasons,
)

UTC = "UTC"


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).fillna("")


def incident(**overrides) -> dict:
    row = {"source": "pagerduty", "source_id": "P1", "service": "checkout", "severity": "sev1", "title": "down",
           "status": "resolved", "opened_at": "2026-03-01T10:00:00Z", "resolved_at": "2026-03-01T12:00:00Z",
           "caused_by_change": "", "updated_at": "2026-03-01T12:00:00Z"}
    return row | overrides


def test_offsets_are_converted_to_utc():
    good, rejected = normalise_frame("incidents", frame([incident(opened_at="2026-01-31T23:30:00-02:00",
                                                                  resolved_at="2026-02-01T03:00:00+01:00")]))
    assert rejected.empty
    assert good.loc[0, "opened_at"] == pd.Timestamp("2026-02-01T01:30:00", tz=UTC)
    assert good.loc[0, "resolved_at"] == pd.Timestamp("2026-02-01T02:00:00", tz=UTC)
    assert str(good["opened_at"].dtype) == "datetime64[ns, UTC]"


@pytest.mark.parametrize("stamp", ["2026-03-01T10:00:00", "2026-03-01", "2026-03-01 10:00"])
def test_timestamp_without_offset_is_rejected_not_guessed(stamp):
    good, rejected = normalise_frame("incidents", frame([incident(opened_at=stamp, resolved_at="")]))
    assert good.empty
    assert rejected.loc[0, "column"] == "opened_at"
    assert "no UTC offset" in rejected.loc[0, "reason"]


def test_unparsable_timestamp_is_rejected():
    _, rejected = normalise_frame("incidents", frame([incident(opened_at="yesterday at 10Z")]))
    assert rejected.loc[0, "reason"] == "not an ISO 8601 timestamp"


@pytest.mark.parametrize("word, expected", [("SEV1", "sev1"), ("P2", "sev2"), ("3", "sev3"), ("critical", "sev1"),
                                            ("Low", "sev4"), ("sev-5", "sev5"), ("", None)])
def test_severities_are_normalised(word, expected):
    good, _ = normalise_frame("incidents", frame([incident(severity=word)]))
    assert good.loc[0, "severity"] == expected
    assert Incident(**incident(severity=word)).severity == expected


def test_unknown_severity_is_rejected_with_reason():
    _, rejected = normalise_frame("incidents", frame([incident(severity="apocalyptic")]))
    assert rejected.loc[0, "column"] == "severity"
    assert "'apocalyptic' is not one of sev1..sev5" in rejected.loc[0, "reason"]


def test_a_value_quoted_in_a_reason_cannot_break_its_line():
    rows = [incident(source_id="A", severity="P1\nP2"), incident(source_id="B", service="check\u2028out")]
    _, rejected = normalise_frame("incidents", frame(rows), {"checkout"})
    assert list(rejected["reason"]) == [
        "'P1\\nP2' is not one of sev1..sev5 (or P1..P5, 1..5, critical/high/medium/low)",
        "unknown service 'check\\u2028out' (add it under services: in scorecard.yaml)",
    ]
    with pytest.raises(ValidationError, match=r"'P1\\r\\nP2' is not one of"):
        Incident(**incident(severity="P1\r\nP2"))


def test_resolved_before_opened_is_rejected_and_good_rows_still_land():
    rows = [incident(source_id="A"), incident(source_id="B", resolved_at="2026-03-01T09:00:00Z")]
    good, rejected = normalise_frame("incidents", frame(rows))
    assert list(good["source_id"]) == ["A"]
    assert rejected.loc[0, "source_id"] == "B"
    assert (rejected.loc[0, "row"], rejected.loc[0, "column"], rejected.loc[0, "reason"]) == (
        2, "resolved_at", "before opened_at")
    assert '"source_id": "B"' in rejected.loc[0, "payload"]


def test_duplicates_keep_the_newest_updated_at_whatever_the_row_order():
    rows = [
        {"source": "github", "source_id": "d1", "service": "a", "environment": "production", "sha": "abc",
         "deployed_at": "2026-03-01T10:00:00Z", "status": "success", "updated_at": "2026-03-01T10:05:00Z"},
        {"source": "github", "source_id": "d1", "service": "a", "environment": "production", "sha": "abc",
         "deployed_at": "2026-03-01T10:00:00Z", "status": "in_progress", "updated_at": "2026-03-01T10:01:00Z"},
        {"source": "other", "source_id": "d1", "service": "a", "environment": "production", "sha": "abc",
         "deployed_at": "2026-03-01T10:00:00Z", "status": "failure", "updated_at": "2026-03-01T10:00:00Z"},
    ]
    good, _ = normalise_frame("deployments", frame(rows))
    assert len(good) == 2
    assert good.set_index("source").loc["github", "status"] == "success"


def test_duplicates_without_updated_at_keep_the_later_row():
    rows = [incident(updated_at="", status="open"), incident(updated_at="", status="resolved")]
    good, _ = normalise_frame("incidents", frame(rows))
    assert list(good["status"]) == ["resolved"]


def test_same_time_duplicates_keep_the_later_row_and_are_counted_when_they_differ():
    rows = [incident(status="open"), incident(status="resolved"), incident(source_id="P2"), incident(source_id="P2")]
    result = normalise("incidents", frame(rows))
    assert list(zip(result.good["source_id"], result.good["status"], strict=True)) == [
        ("P1", "resolved"), ("P2", "resolved")]
    assert result.conflicting_duplicates == 1  # P1's open row; P2's rows are the same record twice


@pytest.mark.parametrize(
    ("rows", "count"),
    [
        # three rows of one time: the first differs from the kept third, the second is the same as it
        ([incident(title="a"), incident(title="b"), incident(title="b")], 1),
        ([incident(title="a"), incident(title="b"), incident(title="c")], 2),
        # a tie at an older time than the kept row is no conflict: the newest row wins plainly
        ([incident(title="a"), incident(title="b"), incident(title="c", updated_at="2026-03-01T13:00:00Z")], 0),
        # the same values once normalised (P1 is sev1, +01:00 the same instant) are the same record
        ([incident(severity="P1", opened_at="2026-03-01T11:00:00+01:00"), incident()], 0),
        # undated rows tie too: the later row wins
        ([incident(updated_at="", title="a"), incident(updated_at="", title="b")], 1),
        # a rejected later row does not take part: the good row is kept, alone
        ([incident(title="a"), incident(title="b", severity="P9")], 0),
        # extras are content too
        ([incident(team="sre"), incident(team="payments")], 1),
    ],
)  # fmt: skip
def test_conflicting_duplicates_count_the_rows_that_lost_a_tie_with_other_content(rows, count):
    assert normalise("incidents", frame(rows)).conflicting_duplicates == count


def test_normalise_frame_is_normalise_as_a_pair():
    rows = [incident(status="open"), incident(status="resolved"), incident(source_id="P2", severity="P9")]
    good, rejected = normalise_frame("incidents", frame(rows))
    result = normalise("incidents", frame(rows))
    pd.testing.assert_frame_equal(good, result.good)
    pd.testing.assert_frame_equal(rejected, result.rejected)


def test_extra_columns_are_kept():
    good, _ = normalise_frame("incidents", frame([incident(team="payments-sre")]))
    assert good.loc[0, "team"] == "payments-sre"


def test_missing_required_column_is_an_error_naming_it():
    raw = frame([incident()]).drop(columns=["opened_at"])
    with pytest.raises(ValueError, match="missing column.*opened_at"):
        normalise_frame("incidents", raw)


def test_unknown_service_is_rejected_when_a_vocabulary_is_given():
    good, rejected = normalise_frame("incidents", frame([incident(service="checkout"), incident(source_id="P2",
                                                                                               service="chekout")]),
                                     known_services={"checkout"})
    assert list(good["service"]) == ["checkout"]
    assert "unknown service 'chekout'" in rejected.loc[0, "reason"]


def test_change_outcome_defaults_to_unknown_and_aliases_map():
    rows = [{"source": "sn", "source_id": "C1", "service": "a", "type": "Emergency",
             "implemented_at": "2026-03-01T10:00:00Z", "outcome": ""},
            {"source": "sn", "source_id": "C2", "service": "a", "type": "normal",
             "implemented_at": "2026-03-01T10:00:00Z", "outcome": "Backed Out"}]
    good, _ = normalise_frame("changes", frame(rows))
    assert list(good["outcome"]) == ["unknown", "backed_out"]
    assert list(good["type"]) == ["emergency", "normal"]


CASES = {
    "incidents": [incident(), incident(severity="P9"), incident(opened_at="2026-03-01T10:00:00"),
                  incident(resolved_at="2026-02-01T00:00:00Z"), incident(opened_at=""), incident(severity="")],
    "deployments": [
        {"source": "gh", "source_id": "1", "service": "a", "environment": "prod", "deployed_at": "2026-03-01T10:00Z",
         "status": "succeeded"},
        {"source": "gh", "source_id": "2", "service": "a", "environment": "prod", "deployed_at": "2026-03-01T10:00Z",
         "status": "exploded"},
        {"source": "gh", "source_id": "3", "service": "a", "environment": "", "deployed_at": "2026-03-01T10:00Z",
         "status": "success"},
    ],
    "pull_requests": [
        {"source": "gh", "source_id": "1", "service": "a", "created_at": "2026-03-01T10:00Z",
         "merged_at": "2026-03-01T09:00Z"},
        {"source": "gh", "source_id": "2", "service": "a", "created_at": "2026-03-01T10:00Z",
         "first_commit_at": "2026-02-28T10:00+05:30", "merged_at": "2026-03-02T09:00Z"},
    ],
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_model_and_vectorised_paths_give_the_same_verdicts(kind):
    raw = frame(CASES[kind])
    good, rejected = normalise_frame(kind, raw)
    for position, row in enumerate(CASES[kind], start=1):
        try:
            MODELS[kind](**row)
            model_ok = True
        except ValidationError:
            model_ok = False
        assert model_ok == (position not in set(rejected["row"])), (kind, position)
    models = [MODELS[kind](**row) for row in CASES[kind] if _valid(kind, row)]
    pd.testing.assert_frame_equal(records_to_frame(kind, models)[list(good.columns)], good, check_dtype=False)


def _valid(kind: str, row: dict) -> bool:
    try:
        MODELS[kind](**row)
        return True
    except ValidationError:
        return False


def test_models_convert_to_utc_and_keep_extras():
    deployment = Deployment(source="gh", source_id="1", service="a", environment="production",
                            deployed_at="2026-03-01T10:00:00+02:00", status="Success", run_url="https://x")
    assert deployment.deployed_at.isoformat() == "2026-03-01T08:00:00+00:00"
    assert deployment.status == "success"
    assert deployment.canonical()["run_url"] == "https://x"
    assert Change(source="sn", source_id="C", service="a").outcome == "unknown"


def test_empty_frame_is_typed():
    empty = empty_frame("incidents")
    assert empty.empty and str(empty["opened_at"].dtype) == "datetime64[ns, UTC]"


# ---------------------------------------------------------------------------------------------
# Every reason the README lists (generated from `rejection_reasons`) is one `normalise` gives.

GOOD_ROWS = {
    "incidents": incident(),
    "changes": {"source": "sn", "source_id": "C1", "service": "checkout", "type": "normal",
                "implemented_at": "2026-03-01T10:00:00Z", "outcome": "successful",
                "updated_at": "2026-03-01T10:00:00Z"},
    "deployments": {"source": "gh", "source_id": "D1", "service": "checkout", "environment": "production",
                    "sha": "abc", "deployed_at": "2026-03-01T10:00:00Z", "status": "success", "change_id": "",
                    "updated_at": "2026-03-01T10:00:00Z"},
    "pull_requests": {"source": "gh", "source_id": "R1", "service": "checkout", "created_at": "2026-03-01T08:00:00Z",
                      "first_commit_at": "2026-03-01T07:00:00Z", "merged_at": "2026-03-01T10:00:00Z",
                      "merge_commit_sha": "abc", "updated_at": "2026-03-01T10:00:00Z"},
}
SPOILED = {MISSING: "", NO_OFFSET: "2026-03-01T10:00:00", NOT_A_TIMESTAMP: "2026-13-45T25:00:00Z",
           OUT_OF_RANGE: "9999-12-31T00:00:00Z"}


def _spoil(kind: str, reason: str, column: str) -> tuple[dict, str]:
    """(a good row spoiled so that `column` is rejected for `reason`, the reason expected)."""
    row = dict(GOOD_ROWS[kind])
    if reason in SPOILED:
        return row | {column: SPOILED[reason]}, reason
    if reason.startswith("before "):  # the earlier timestamp moves past the later one
        return row | {reason.removeprefix("before "): "2099-01-01T00:00:00Z"}, reason
    return row | {column: "zzz"}, reason.replace("<value>", "zzz")  # a word no vocabulary knows, an unknown service


@pytest.mark.parametrize("listed", rejection_reasons(), ids=lambda r: f"{r.kind}:{r.reason[:30]}")
def test_every_listed_rejection_reason_is_what_normalise_gives(listed):
    assert set(listed.columns) <= {c.name for c in SCHEMAS[listed.kind]}
    for column in listed.columns:
        row, reason = _spoil(listed.kind, listed.reason, column)
        good, rejected = normalise_frame(listed.kind, frame([GOOD_ROWS[listed.kind], row]), {"checkout"})
        assert len(good) == 1, (column, rejected.to_dict("records"))
        assert rejected[["row", "column", "reason"]].to_dict("records") == [
            {"row": 2, "column": column, "reason": reason}]
