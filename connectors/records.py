"""Canonical records: what every source emits and what the metric engine reads.

Two faces of one schema:
- pydantic models (`Incident`, `Change`, `Deployment`, `PullRequest`) for connectors that build
  records one at a time from vendor payloads;
- `normalise_frame(kind, frame)`, the vectorised equivalent for bulk input (files, pages of API
  results), which returns the good rows as a typed DataFrame and the bad ones with a reason;
  `normalise(kind, frame)` returns the same with a count of conflicting duplicates too.
Both use the same vocabularies below, and a test holds them to the same verdicts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator, model_validator

KINDS = ("incidents", "changes", "deployments", "pull_requests")

SEVERITIES = ("sev1", "sev2", "sev3", "sev4", "sev5")
SEVERITY_ALIASES: dict[str, str] = {
    **{f"sev{n}": f"sev{n}" for n in range(1, 6)},
    **{f"sev-{n}": f"sev{n}" for n in range(1, 6)},
    **{f"sev {n}": f"sev{n}" for n in range(1, 6)},
    **{f"s{n}": f"sev{n}" for n in range(1, 6)},
    **{f"p{n}": f"sev{n}" for n in range(1, 6)},
    **{str(n): f"sev{n}" for n in range(1, 6)},
    "critical": "sev1", "highest": "sev1",
    "high": "sev2", "major": "sev2",
    "medium": "sev3", "moderate": "sev3",
    "low": "sev4", "minor": "sev4",
    "lowest": "sev5", "planning": "sev5", "info": "sev5",
}
CHANGE_TYPES = ("standard", "normal", "emergency")
CHANGE_OUTCOMES = ("successful", "failed", "backed_out", "unknown")
OUTCOME_ALIASES: dict[str, str] = {
    **{o: o for o in CHANGE_OUTCOMES},
    "success": "successful", "succeeded": "successful",
    "failure": "failed", "fail": "failed", "unsuccessful": "failed",
    "backed out": "backed_out", "backout": "backed_out", "rolled_back": "backed_out",
    "rollback": "backed_out",
}
DEPLOYMENT_STATUSES = ("success", "failure", "error", "inactive", "in_progress", "queued")
DEPLOYMENT_FINAL_STATUSES = ("success", "failure", "error", "inactive")
STATUS_ALIASES: dict[str, str] = {
    **{s: s for s in DEPLOYMENT_STATUSES},
    "successful": "success", "succeeded": "success",
    "failed": "failure", "pending": "queued", "in progress": "in_progress",
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: Literal["text", "timestamp", "severity", "change_type", "outcome", "status"]
    required: bool = False


_KEY = [Column("source", "text", True), Column("source_id", "text", True)]
SCHEMAS: dict[str, list[Column]] = {
    "incidents": _KEY + [
        Column("service", "text", True),
        Column("severity", "severity"),
        Column("title", "text"),
        Column("status", "text"),
        Column("opened_at", "timestamp", True),
        Column("resolved_at", "timestamp"),
        Column("caused_by_change", "text"),
        Column("updated_at", "timestamp"),
    ],
    "changes": _KEY + [
        Column("service", "text", True),
        Column("type", "change_type"),
        Column("implemented_at", "timestamp"),
        Column("outcome", "outcome"),
        Column("updated_at", "timestamp"),
    ],
    "deployments": _KEY + [
        Column("service", "text", True),
        Column("environment", "text", True),
        Column("sha", "text"),
        Column("deployed_at", "timestamp", True),
        Column("status", "status", True),
        Column("change_id", "text"),
        Column("updated_at", "timestamp"),
    ],
    "pull_requests": _KEY + [
        Column("service", "text", True),
        Column("created_at", "timestamp", True),
        Column("first_commit_at", "timestamp"),
        Column("merged_at", "timestamp"),
        Column("merge_commit_sha", "text"),
        Column("updated_at", "timestamp"),
    ],
}
# Pairs (earlier, later) that must not be out of order.
ORDERED_TIMESTAMPS: dict[str, list[tuple[str, str]]] = {
    "incidents": [("opened_at", "resolved_at")],
    "changes": [],
    "deployments": [],
    "pull_requests": [("created_at", "merged_at"), ("first_commit_at", "merged_at")],
}
_VOCABULARIES = {
    "severity": (SEVERITY_ALIASES, "sev1..sev5 (or P1..P5, 1..5, critical/high/medium/low)"),
    "change_type": ({t: t for t in CHANGE_TYPES}, "/".join(CHANGE_TYPES)),
    "outcome": (OUTCOME_ALIASES, "/".join(CHANGE_OUTCOMES)),
    "status": (STATUS_ALIASES, "/".join(DEPLOYMENT_STATUSES)),
}
# A time of day followed by Z or a numeric offset; a bare date has no offset to read.
_OFFSET_AT_END = re.compile(r"[T ]\d{2}[\d:.,]*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$")

# The reasons a row is rejected for, each worded once: `rejection_reasons()` lists them for the README.
MISSING = "missing"
NO_OFFSET = "timestamp has no UTC offset (add Z or +HH:MM)"
NOT_A_TIMESTAMP = "not an ISO 8601 timestamp"
# What a timestamp can hold (nanoseconds in 64 bits); a vendor's 9999-12-31 or 0001-01-01 is no event time.
EARLIEST, LATEST = pd.Timestamp.min.ceil("D").tz_localize("UTC"), pd.Timestamp.max.floor("D").tz_localize("UTC")
OUT_OF_RANGE = f"timestamp out of range (from {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d})"


# What str.splitlines() (and so a log or a terminal) breaks a line at.
_LINE_BREAK = re.compile(r"[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")


def one_line(text: object) -> str:
    """Text for a one-line reason or message: each line break in it written as its escape (a newline as \\n), so that
    a value quoted from a file cannot break the line."""
    return _LINE_BREAK.sub(lambda found: ascii(found.group())[1:-1], str(text))


def not_in_vocabulary(value: object, kind: str) -> str:
    return f"'{one_line(value)}' is not one of {_VOCABULARIES[kind][1]}"


def out_of_order(earlier: str) -> str:
    return f"before {earlier}"


def unknown_service(name: object) -> str:
    return f"unknown service '{one_line(name)}' (add it under services: in scorecard.yaml)"


def normalise_word(value: str | None, kind: str) -> str | None:
    """Map a vocabulary word (any case, aliases allowed) to its canonical form; None for empty."""
    if value is None or str(value).strip() == "":
        return None
    aliases = _VOCABULARIES[kind][0]
    word = str(value).strip().lower()
    if word not in aliases:
        raise ValueError(not_in_vocabulary(value, kind))
    return aliases[word]


# ---------------------------------------------------------------------------------------------
# Record models, for connectors that build records one by one.


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)
    KIND: ClassVar[str]

    source: str
    source_id: str
    service: str
    updated_at: AwareDatetime | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip() == "" else value

    @field_validator("*", mode="after")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        return value.astimezone(UTC) if isinstance(value, datetime) else value

    @model_validator(mode="after")
    def _ordered(self) -> _Record:
        for earlier, later in ORDERED_TIMESTAMPS[self.KIND]:
            first, second = getattr(self, earlier), getattr(self, later)
            if first is not None and second is not None and second < first:
                raise ValueError(f"{later} is {out_of_order(earlier)}")
        return self

    def canonical(self) -> dict[str, Any]:
        """The record as a flat dict of canonical columns plus extras."""
        return self.model_dump()


def _word_validator(kind: str):
    def check(value: Any) -> Any:
        return normalise_word(value, kind)

    return check


class Incident(_Record):
    KIND: ClassVar[str] = "incidents"
    severity: str | None = None
    title: str | None = None
    status: str | None = None
    opened_at: AwareDatetime
    resolved_at: AwareDatetime | None = None
    caused_by_change: str | None = None

    _severity = field_validator("severity")(_word_validator("severity"))


class Change(_Record):
    KIND: ClassVar[str] = "changes"
    type: str | None = None
    implemented_at: AwareDatetime | None = None
    outcome: str | None = "unknown"

    _type = field_validator("type")(_word_validator("change_type"))
    _outcome = field_validator("outcome")(lambda v: normalise_word(v, "outcome") or "unknown")


class Deployment(_Record):
    KIND: ClassVar[str] = "deployments"
    environment: str
    sha: str | None = None
    deployed_at: AwareDatetime
    status: str
    change_id: str | None = None

    _status = field_validator("status")(_word_validator("status"))


class PullRequest(_Record):
    KIND: ClassVar[str] = "pull_requests"
    created_at: AwareDatetime
    first_commit_at: AwareDatetime | None = None
    merged_at: AwareDatetime | None = None
    merge_commit_sha: str | None = None


MODELS: dict[str, type[_Record]] = {
    "incidents": Incident,
    "changes": Change,
    "deployments": Deployment,
    "pull_requests": PullRequest,
}


def records_to_frame(kind: str, records: list[_Record]) -> pd.DataFrame:
    """Validated models to the typed frame `normalise_frame` produces (they are already good)."""
    rows = pd.DataFrame([r.canonical() for r in records])
    good, rejected = normalise_frame(kind, rows if len(rows) else empty_frame(kind).astype(object))
    assert rejected.empty, "validated records cannot be rejected"
    return good


# ---------------------------------------------------------------------------------------------
# Vectorised normalisation, for bulk input.

REJECTED_COLUMNS = ["row", "source", "source_id", "column", "reason", "payload"]


@dataclass(frozen=True)
class RejectionReason:
    """A reason a row can be rejected for, as `rejected_records.reason` holds it (`<value>`: the value read)."""

    reason: str
    kind: str  # a record kind, or the file format whose lines it concerns
    columns: tuple[str, ...]  # as `rejected_records.column_name` holds them; none for a line that is no record


def rejection_reasons() -> list[RejectionReason]:
    """Every reason `normalise` rejects a row for, by kind and the columns it concerns."""
    checks = [
        (MISSING, lambda kind: [c.name for c in SCHEMAS[kind] if c.required]),
        (NO_OFFSET, lambda kind: [c.name for c in SCHEMAS[kind] if c.kind == "timestamp"]),
        (NOT_A_TIMESTAMP, lambda kind: [c.name for c in SCHEMAS[kind] if c.kind == "timestamp"]),
        (OUT_OF_RANGE, lambda kind: [c.name for c in SCHEMAS[kind] if c.kind == "timestamp"]),
    ]
    reasons = [RejectionReason(reason, kind, tuple(columns(kind))) for reason, columns in checks for kind in KINDS]
    reasons += [RejectionReason(not_in_vocabulary("<value>", c.kind), kind, (c.name,))
                for kind in KINDS for c in SCHEMAS[kind] if c.kind in _VOCABULARIES]  # fmt: skip
    reasons += [RejectionReason(out_of_order(earlier), kind, (later,))
                for kind in KINDS for earlier, later in ORDERED_TIMESTAMPS[kind]]  # fmt: skip
    reasons += [RejectionReason(unknown_service("<value>"), kind, ("service",)) for kind in KINDS]
    return reasons


def rejection_table(reasons: list[RejectionReason]) -> str:
    """The reasons as the README's markdown table."""
    lines = ["| reason | kind | column |", "| --- | --- | --- |"]
    lines += [f"| `{r.reason}` | {r.kind} | {', '.join(r.columns) or '—'} |" for r in reasons]
    return "\n".join(lines)


def empty_frame(kind: str) -> pd.DataFrame:
    """A typed frame with the kind's canonical columns and no rows."""
    columns = {}
    for col in SCHEMAS[kind]:
        if col.kind == "timestamp":
            columns[col.name] = pd.Series([], dtype="datetime64[ns, UTC]")
        else:
            columns[col.name] = pd.Series([], dtype=object)
    return pd.DataFrame(columns)


NUL = "\x00"  # PostgreSQL refuses it in text: removed from every text a file or a vendor gives


def _text(series: pd.Series) -> pd.Series:
    """Strings stripped, with empty strings, NaN, NaT and None all as None; NUL characters removed."""
    missing = series.isna().to_numpy()
    values = [None if gone else (str(value).replace(NUL, "").strip() or None)
              for value, gone in zip(series, missing, strict=True)]  # fmt: skip
    return pd.Series(values, index=series.index, dtype=object)


def out_of_range(stamps: pd.Series) -> pd.Series:
    """Which parsed UTC times (of any unit) lie outside what a datetime64[ns] holds."""
    return stamps.notna() & ((stamps < EARLIEST) | (stamps > LATEST))


def in_range(stamps: pd.Series) -> pd.Series:
    """Parsed UTC times as datetime64[ns, UTC], NaT where one lies outside what that holds (a 9999-12-31)."""
    return stamps.where(~out_of_range(stamps)).dt.as_unit("ns")


def parse_utc(values: pd.Series) -> pd.Series:
    """ISO 8601 times as UTC datetime64[ns]: NaT where a value is none, or outside what a timestamp holds (a
    vendor's 9999-12-31): such a record is then rejected by `normalise`, naming it, instead of stopping a run."""
    return in_range(pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601"))


def _parse_timestamps(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(UTC timestamps, error message per row or None) for ISO 8601 text that must carry an offset."""
    present = text.notna()
    errors = pd.Series(None, index=text.index, dtype=object)
    if not present.any():
        return pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]"), errors
    values = text[present].astype(str)
    no_offset = ~values.str.contains(_OFFSET_AT_END)
    parsed = pd.to_datetime(values.where(~no_offset), utc=True, format="ISO8601", errors="coerce")
    unparsable = parsed.isna() & ~no_offset
    outside = out_of_range(parsed)
    errors[no_offset[no_offset].index] = NO_OFFSET
    errors[unparsable[unparsable].index] = NOT_A_TIMESTAMP
    errors[outside[outside].index] = OUT_OF_RANGE
    stamps = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    stamps[present] = in_range(parsed)
    return stamps, errors


def _normalise_words(text: pd.Series, kind: str) -> tuple[pd.Series, pd.Series]:
    words = text.map(lambda v: v.lower(), na_action="ignore")
    mapped = words.map(_VOCABULARIES[kind][0])
    bad = text.notna() & mapped.isna()
    errors = pd.Series(None, index=text.index, dtype=object)
    errors[bad] = text[bad].map(lambda v: not_in_vocabulary(v, kind))
    return mapped.astype(object).where(mapped.notna(), None), errors


@dataclass(frozen=True)
class Normalised:
    """`normalise`'s result."""

    good: pd.DataFrame  # typed canonical columns plus extras, one row per (source, source_id)
    rejected: pd.DataFrame  # REJECTED_COLUMNS, one reason per row
    conflicting_duplicates: int  # rows that lost a same-updated_at tie to the kept row, with other content


def normalise_frame(
    kind: str,
    raw: pd.DataFrame,
    known_services: set[str] | None = None,
    row_numbers: pd.Series | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`normalise`'s (good, rejected), for callers that need no duplicate count."""
    result = normalise(kind, raw, known_services, row_numbers)
    return result.good, result.rejected


def normalise(
    kind: str,
    raw: pd.DataFrame,
    known_services: set[str] | None = None,
    row_numbers: pd.Series | None = None,
) -> Normalised:
    """Validate and type a frame of raw rows of one record kind.

    `good` has the canonical columns typed (timestamps UTC) plus any extra columns, one row per
    (source, source_id): the one with the newest `updated_at`, an undated row counting as the
    oldest. Between rows of the same updated_at (or all undated) the later row wins, silently
    but counted: `conflicting_duplicates` is the number of rows that lost such a tie to the
    kept row with different content (identical repeats are not counted). `rejected` has
    REJECTED_COLUMNS with one reason per row (the first problem found).
    Raises ValueError when a required column is absent altogether.
    """
    schema = SCHEMAS[kind]
    missing = [c.name for c in schema if c.required and c.name not in raw.columns]
    if missing:
        raise ValueError(f"missing column(s) {', '.join(missing)} for {kind}")
    raw = raw.reset_index(drop=True)
    rows = row_numbers.reset_index(drop=True) if row_numbers is not None else pd.Series(raw.index + 1)
    out = pd.DataFrame(index=raw.index)
    first_error = pd.Series(None, index=raw.index, dtype=object)

    def note(errors: pd.Series, column: str) -> None:
        if not errors.notna().any():
            return
        fresh = errors.notna() & first_error.isna()
        first_error[fresh] = column + ": " + errors[fresh].astype(str)

    for col in schema:
        text = _text(raw[col.name]) if col.name in raw.columns else pd.Series(None, index=raw.index, dtype=object)
        if col.kind == "timestamp":
            value, errors = _parse_timestamps(text)
        elif col.kind == "text":
            value, errors = text, pd.Series(None, index=raw.index, dtype=object)
        else:
            value, errors = _normalise_words(text, col.kind)
        if col.required:
            errors = errors.where(text.notna(), MISSING)
        note(errors, col.name)
        out[col.name] = value if col.kind == "timestamp" else value.astype(object).where(value.notna(), None)
    if kind == "changes":
        out["outcome"] = out["outcome"].where(out["outcome"].notna(), "unknown")
    for earlier, later in ORDERED_TIMESTAMPS[kind]:
        note(pd.Series(np.where(out[later] < out[earlier], out_of_order(earlier), None), index=raw.index), later)
    if known_services is not None:
        unknown = out["service"].notna() & ~out["service"].isin(known_services)
        note(out.loc[unknown, "service"].map(unknown_service).reindex(raw.index), "service")
    extras = [c for c in raw.columns if c not in out.columns]
    for name in extras:
        out[name] = raw[name]

    bad = first_error.notna()
    rejected = _rejected_rows(raw[bad], out[bad], rows[bad], first_error[bad])
    good = _newest_per_key(out[~bad])
    conflicts = _conflicting_duplicates(out[~bad], good.index)
    return Normalised(good.reset_index(drop=True), rejected, conflicts)


def _rejected_rows(raw: pd.DataFrame, typed: pd.DataFrame, rows: pd.Series, reasons: pd.Series) -> pd.DataFrame:
    if raw.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in REJECTED_COLUMNS})
    column = reasons.str.split(":", n=1).str[0]
    reason = reasons.str.split(": ", n=1).str[1]
    payload = [json.dumps(rec, default=str) for rec in raw.astype(object).where(raw.notna(), None).to_dict("records")]
    return pd.DataFrame(
        {
            "row": rows.to_numpy(),
            "source": typed["source"].to_numpy(),
            "source_id": typed["source_id"].to_numpy(),
            "column": column.to_numpy(),
            "reason": reason.to_numpy(),
            "payload": payload,
        }
    )


def _newest_per_key(frame: pd.DataFrame) -> pd.DataFrame:
    """The newest row per (source, source_id), undated as oldest, ties to the later row; index kept."""
    ordered = frame.sort_values("updated_at", kind="stable", na_position="first")
    return ordered.drop_duplicates(["source", "source_id"], keep="last").sort_index()


_TIE = ["source", "source_id", "updated_at"]


def _conflicting_duplicates(rows: pd.DataFrame, kept: pd.Index) -> int:
    """Rows not `kept` with the key and updated_at (or none) of a kept row, and other content."""
    tied = rows[rows.duplicated(_TIE, keep=False)]
    if tied.empty:
        return 0
    content = pd.Series(_json_lines(tied), index=tied.index)
    is_kept = tied.index.isin(kept)
    winners = tied.loc[is_kept, _TIE].assign(kept_content=content[is_kept])
    losers = tied.loc[~is_kept, _TIE].assign(content=content[~is_kept])
    matched = losers.merge(winners, on=_TIE, how="inner")
    return int((matched["content"] != matched["kept_content"]).sum())


def _json_lines(frame: pd.DataFrame) -> list[str]:
    """Each row as one JSON line, to compare rows whose extras may hold lists or dicts."""
    text = frame.to_json(orient="records", lines=True, date_format="iso", date_unit="ns", default_handler=str)
    return text.rstrip("\n").split("\n")
