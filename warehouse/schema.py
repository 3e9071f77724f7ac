"""The warehouse tables and views as SQLAlchemy Core objects: the live definition the code reads and writes.

Table and column names are a public API for BI tools (warehouse/README.md). The
database itself is created and changed only by the alembic migrations in `warehouse/migrations`;
a test holds the migrated schema and these definitions to each other, so a change here needs a
new migration.

Every timestamp is stored in UTC with microsecond precision: `TIMESTAMP WITH TIME ZONE` on
PostgreSQL, and on SQLite text in SQLAlchemy's fixed-width format `YYYY-MM-DD HH:MM:SS.ffffff`
(UTC, no offset), which sorts and compares correctly as text.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from connectors.records import KINDS, SCHEMAS

FACT_KEY = ("source", "source_id")
# The time each fact table's BI queries filter on, indexed with `service`.
FACT_EVENT_TIME = {
    "incidents": "opened_at",
    "changes": "implemented_at",
    "deployments": "deployed_at",
    "pull_requests": "merged_at",
}


class UTCDateTime(sa.TypeDecorator):
    """A timezone-aware UTC datetime on both databases (SQLite has no timestamp type of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):  # a raw value, e.g. from a view column SQLite has no type for
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Text = sa.Text
Double = sa.Double
BigInt = sa.BigInteger

metadata = sa.MetaData()


def _now() -> datetime:
    return datetime.now(UTC)


def _fact_columns(kind: str) -> list[sa.Column]:
    columns = []
    for col in SCHEMAS[kind]:
        column_type = UTCDateTime() if col.kind == "timestamp" else Text()
        columns.append(sa.Column(col.name, column_type, nullable=not col.required))
    return columns


def _fact_table(kind: str) -> sa.Table:
    return sa.Table(
        kind,
        metadata,
        *_fact_columns(kind),
        sa.Column("raw", Text, comment="extra input columns of the record, as a JSON object"),
        sa.Column("loaded_at", UTCDateTime(), nullable=False, default=_now),
        sa.PrimaryKeyConstraint(*FACT_KEY, name=f"pk_{kind}"),
        sa.Index(f"ix_{kind}_updated_at", "updated_at"),
        sa.Index(f"ix_{kind}_service_{FACT_EVENT_TIME[kind]}", "service", FACT_EVENT_TIME[kind]),
    )


FACT_TABLES: dict[str, sa.Table] = {kind: _fact_table(kind) for kind in KINDS}


def _completeness_columns() -> list[sa.Column]:
    """What a derived row's period covers (scoring.completeness): added by migration 0004, so after computed_at."""
    return [
        sa.Column("complete", sa.Boolean, comment="true when the period had ended and every source's loaded history "
                  "covered all of it; false: running or partial"),
        sa.Column("data_from", UTCDateTime(), comment="first instant of the period the loaded data covers, UTC"),
        sa.Column("data_to", UTCDateTime(), comment="end of what the loaded data covers in the period, UTC "
                  "(the period's end once covered to it; the run's as-of instant while it runs)"),
    ]


metric_values = sa.Table(
    "metric_values",
    metadata,
    sa.Column("metric", Text, nullable=False),
    sa.Column("service", Text, nullable=False),
    sa.Column("grain", Text, nullable=False),
    sa.Column("period_start", UTCDateTime(), nullable=False),
    sa.Column("period_end", UTCDateTime(), nullable=False),
    sa.Column("value", Double),
    sa.Column("unit", Text),
    sa.Column("sample_size", BigInt, nullable=False),
    sa.Column("computed_at", UTCDateTime(), nullable=False),
    *_completeness_columns(),
    sa.PrimaryKeyConstraint("metric", "service", "grain", "period_start", name="pk_metric_values"),
    sa.Index("ix_metric_values_grain_period_start", "grain", "period_start"),
    sa.Index("ix_metric_values_service_period_start", "service", "period_start"),
)

kpi_scores = sa.Table(
    "kpi_scores",
    metadata,
    sa.Column("scorecard", Text, nullable=False),
    sa.Column("perspective_id", Text),
    sa.Column("objective_id", Text),
    sa.Column("kpi_id", Text, nullable=False),
    sa.Column("kpi_name", Text),
    sa.Column("metric", Text),
    sa.Column("unit", Text),
    sa.Column("direction", Text),
    sa.Column("indicator", Text),
    sa.Column("period_start", UTCDateTime(), nullable=False),
    sa.Column("period_end", UTCDateTime()),
    sa.Column("value", Double),
    sa.Column("baseline", Double),
    sa.Column("threshold", Double),
    sa.Column("target", Double),
    sa.Column("stretch", Double),
    sa.Column("performance", Double),
    sa.Column("status", Text),
    sa.Column("previous_value", Double),
    sa.Column("change", Double),
    sa.Column("trend", Text),
    sa.Column("dora_band", Text),
    sa.Column("weight", Double),
    sa.Column("owner", Text),
    sa.Column("computed_at", UTCDateTime(), nullable=False),
    *_completeness_columns(),
    sa.PrimaryKeyConstraint("scorecard", "kpi_id", "period_start", name="pk_kpi_scores"),
    sa.Index("ix_kpi_scores_kpi_id_period_start", "kpi_id", "period_start"),
    sa.Index("ix_kpi_scores_scorecard_period_start", "scorecard", "period_start"),
)

node_scores = sa.Table(
    "node_scores",
    metadata,
    sa.Column("scorecard", Text, nullable=False),
    sa.Column("node_type", Text, nullable=False),
    sa.Column("node_id", Text, nullable=False),
    sa.Column("name", Text),
    sa.Column("parent_id", Text),
    sa.Column("period_start", UTCDateTime(), nullable=False),
    sa.Column("period_end", UTCDateTime()),
    sa.Column("score", Double),
    sa.Column("status", Text),
    sa.Column("coverage", Double),
    sa.Column("kpis_scored", BigInt),
    sa.Column("kpis_total", BigInt),
    sa.Column("weight", Double),
    sa.Column("rollup", Text),
    sa.Column("owner", Text),
    sa.Column("computed_at", UTCDateTime(), nullable=False),
    *_completeness_columns(),
    sa.PrimaryKeyConstraint("scorecard", "node_type", "node_id", "period_start", name="pk_node_scores"),
    sa.Index("ix_node_scores_scorecard_period_start", "scorecard", "period_start"),
)

metric_dictionary = sa.Table(
    "metric_dictionary",
    metadata,
    sa.Column("name", Text, nullable=False),
    sa.Column("title", Text),
    sa.Column("definition", Text),
    sa.Column("unit", Text),
    sa.Column("direction", Text),
    sa.Column("source_fields", Text),
    sa.Column("dora", sa.Boolean),
    sa.PrimaryKeyConstraint("name", name="pk_metric_dictionary"),
)

rejected_records = sa.Table(
    "rejected_records",
    metadata,
    sa.Column("id", BigInt().with_variant(sa.Integer(), "sqlite"), autoincrement=True),
    sa.Column("kind", Text, nullable=False),
    sa.Column("source", Text),
    sa.Column("source_id", Text),
    sa.Column("row", BigInt, comment="row number of the record in its input file or page"),
    sa.Column("column_name", Text),
    sa.Column("reason", Text, nullable=False),
    sa.Column("payload", Text, comment="the record as received, a JSON object"),
    sa.Column("rejected_at", UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("id", name="pk_rejected_records"),
    sa.Index("ix_rejected_records_kind_source_source_id", "kind", "source", "source_id"),
    sa.Index("ix_rejected_records_rejected_at", "rejected_at"),
)

sync_state = sa.Table(
    "sync_state",
    metadata,
    sa.Column("source", Text, nullable=False),
    sa.Column("kind", Text, nullable=False),
    sa.Column("cursor", Text),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("covered", Text, comment="the windows read so far, merged: a JSON list of [start, end) UTC pairs"),
    sa.PrimaryKeyConstraint("source", "kind", name="pk_sync_state"),
)


# --- the review: commentary, the action log, and the escalation alerts sent --------------------

kpi_comments = sa.Table(
    "kpi_comments",
    metadata,
    sa.Column("scorecard", Text, nullable=False),
    sa.Column("kpi_id", Text, nullable=False),
    sa.Column("period_start", UTCDateTime(), nullable=False, comment="the review period the comment is about"),
    sa.Column("comment", Text, nullable=False, comment="what changed, why, and what is recommended"),
    sa.Column("author", Text),
    sa.Column("loaded_at", UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("scorecard", "kpi_id", "period_start", name="pk_kpi_comments"),
)

actions = sa.Table(
    "actions",
    metadata,
    sa.Column("scorecard", Text, nullable=False),
    sa.Column("action_id", Text, nullable=False),
    sa.Column("kpi_id", Text, comment="the KPI the action is for (or objective_id)"),
    sa.Column("objective_id", Text, comment="the objective the action is for (or kpi_id)"),
    sa.Column("action", Text, nullable=False, comment="the decision or action agreed at the review"),
    sa.Column("owner", Text, nullable=False),
    sa.Column("due", UTCDateTime(), nullable=False, comment="due date, midnight UTC of that day"),
    sa.Column("status", Text, nullable=False, comment="open, in_progress, done or dropped"),
    sa.Column("loaded_at", UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("scorecard", "action_id", name="pk_actions"),
    sa.Index("ix_actions_kpi_id", "kpi_id"),
)

alerts_sent = sa.Table(
    "alerts_sent",
    metadata,
    sa.Column("scorecard", Text, nullable=False),
    sa.Column("kpi_id", Text, nullable=False),
    sa.Column("period_start", UTCDateTime(), nullable=False, comment="the review period whose status fired it"),
    sa.Column("rule", Text, nullable=False, comment="red, drop or no_data"),
    sa.Column("status", Text, comment="the KPI's status in that period"),
    sa.Column("previous_status", Text),
    sa.Column("value", Double),
    sa.Column("target", Double),
    sa.Column("owner", Text),
    sa.Column("message", Text, nullable=False),
    sa.Column("fired_at", UTCDateTime(), nullable=False),
    sa.Column("delivered_at", UTCDateTime(), comment="when the webhook accepted it; empty: not posted (yet)"),
    sa.Column("delivery_error", Text, comment="why the last post failed (the next run retries); empty when "
              "delivered or when no webhook was configured (then it is never posted)"),
    sa.PrimaryKeyConstraint("scorecard", "kpi_id", "period_start", "rule", name="pk_alerts_sent"),
)


def _view(name: str, columns: list[sa.Column], *more: tuple[str, sa.types.TypeEngine]) -> sa.TableClause:
    """A view as a typed table clause (views are created by the migrations, not by `metadata`)."""
    return sa.table(name, *(sa.column(c.name, c.type) for c in columns), *(sa.column(n, t) for n, t in more))


COMPLETENESS = ("complete", "data_from", "data_to")
_KPI_COLUMNS = [c for c in kpi_scores.columns if c.name not in COMPLETENESS]
_METRIC_COLUMNS = [c for c in metric_values.columns if c.name not in COMPLETENESS]
_NODE_FIELDS = [(f"{level}_{field}", column_type) for level in ("perspective", "objective", "scorecard")
                for field, column_type in (("name", Text()), ("score", Double()), ("status", Text()),
                                           ("coverage", Double()))]  # fmt: skip
_PERIOD_STATE = [("period_ended", sa.Boolean()), ("periods_ago", BigInt())]
_COMPLETE = [("complete", sa.Boolean()), ("data_from", UTCDateTime()), ("data_to", UTCDateTime())]  # last: 0004


def _typed(table: sa.Table, names: str) -> list[tuple[str, sa.types.TypeEngine]]:
    return [(name, table.c[name].type) for name in names.split()]


_HEALTH_FIGURES = [
    *((name, Double()) for name in ("deployment_frequency", "deployment_frequency_per_day", "lead_time_for_changes",
                                    "change_failure_rate")),
    ("changes", BigInt()),
    *((name, Double()) for name in ("failed_deployment_recovery_time", "mttr", "availability", "mtbf",
                                    "open_failure_incidents", "deployment_rework_rate")),
]  # fmt: skip

# Views for BI (warehouse/README.md, docs/bi.md); created by the migrations (0001, 0003, 0004), columns in their order.
VIEWS: dict[str, sa.TableClause] = {
    "kpi_history": _view("kpi_history", _KPI_COLUMNS, *_COMPLETE),
    "scorecard_latest": _view("scorecard_latest", _KPI_COLUMNS, *_NODE_FIELDS, *_COMPLETE),
    "scorecard_periods": _view("scorecard_periods", [], *_typed(kpi_scores, "scorecard period_start period_end"),
                               *_PERIOD_STATE, ("computed_at", UTCDateTime()), *_COMPLETE),
    "metric_periods": _view("metric_periods", [], *_typed(metric_values, "grain period_start period_end"),
                            *_PERIOD_STATE, ("computed_at", UTCDateTime()), *_COMPLETE),
    "metric_latest": _view("metric_latest", _METRIC_COLUMNS, *_COMPLETE),
    "service_health_history": _view("service_health_history", [],
                                    *_typed(metric_values, "service grain period_start period_end"), *_PERIOD_STATE,
                                    *_HEALTH_FIGURES, *_COMPLETE),
    "service_health": _view("service_health", [], *_typed(metric_values, "service grain period_start period_end"),
                            _PERIOD_STATE[0], *_HEALTH_FIGURES, *_COMPLETE),
    "kpi_status_history": _view("kpi_status_history", _KPI_COLUMNS, *_PERIOD_STATE, ("status_rank", BigInt()),
                                *_COMPLETE),
    "dora_band_history": _view("dora_band_history", [],
                               *_typed(kpi_scores, "scorecard kpi_id kpi_name metric unit period_start period_end"),
                               *_PERIOD_STATE, *_typed(kpi_scores, "value status dora_band"),
                               ("dora_band_rank", BigInt()), *_typed(kpi_scores, "owner"), *_COMPLETE),
}
# The order `Warehouse.read_table` gives each view's rows in (a view has no primary key of its own).
VIEW_KEYS: dict[str, list[str]] = {
    "kpi_history": ["scorecard", "kpi_id", "period_start"],
    "scorecard_latest": ["scorecard", "kpi_id", "period_start"],
    "scorecard_periods": ["scorecard", "period_start"],
    "metric_periods": ["grain", "period_start"],
    "metric_latest": ["metric", "service", "grain", "period_start"],
    "service_health_history": ["service", "grain", "period_start"],
    "service_health": ["service", "grain"],
    "kpi_status_history": ["scorecard", "kpi_id", "period_start"],
    "dora_band_history": ["scorecard", "kpi_id", "period_start"],
}
TABLES: dict[str, sa.Table] = dict(metadata.tables)
