"""Initial warehouse schema: fact tables, derived tables, bookkeeping tables and the BI views.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Frozen on purpose: this file spells every table out instead of importing `warehouse.schema`, so
later edits there cannot change what 0001 creates. Later changes go in 0002, 0003, ...
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _text(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.Text(), nullable=nullable)


def _double(name: str) -> sa.Column:
    return sa.Column(name, sa.Double(), nullable=True)


FACTS: dict[str, tuple[Callable[[], list[sa.Column]], str]] = {
    # kind: (columns between the key and raw, the event time indexed with service)
    "incidents": (
        lambda: [_text("service", False), _text("severity"), _text("title"), _text("status"),
                 _ts("opened_at", False), _ts("resolved_at"), _text("caused_by_change"), _ts("updated_at")],
        "opened_at",
    ),
    "changes": (
        lambda: [_text("service", False), _text("type"), _ts("implemented_at"), _text("outcome"), _ts("updated_at")],
        "implemented_at",
    ),
    "deployments": (
        lambda: [_text("service", False), _text("environment", False), _text("sha"), _ts("deployed_at", False),
                 _text("status", False), _text("change_id"), _ts("updated_at")],
        "deployed_at",
    ),
    "pull_requests": (
        lambda: [_text("service", False), _ts("created_at", False), _ts("first_commit_at"), _ts("merged_at"),
                 _text("merge_commit_sha"), _ts("updated_at")],
        "merged_at",
    ),
}  # fmt: skip


def _create_fact_table(kind: str) -> None:
    columns, event_time = FACTS[kind]
    op.create_table(
        kind,
        _text("source", False),
        _text("source_id", False),
        *columns(),
        sa.Column("raw", sa.Text(), comment="extra input columns of the record, as a JSON object"),
        _ts("loaded_at", False),
        sa.PrimaryKeyConstraint("source", "source_id", name=f"pk_{kind}"),
    )
    op.create_index(f"ix_{kind}_updated_at", kind, ["updated_at"])
    op.create_index(f"ix_{kind}_service_{event_time}", kind, ["service", event_time])


def _create_metric_values() -> None:
    op.create_table(
        "metric_values",
        _text("metric", False), _text("service", False), _text("grain", False),
        _ts("period_start", False), _ts("period_end", False),
        _double("value"), _text("unit"), sa.Column("sample_size", sa.BigInteger(), nullable=False),
        _ts("computed_at", False),
        sa.PrimaryKeyConstraint("metric", "service", "grain", "period_start", name="pk_metric_values"),
    )  # fmt: skip
    op.create_index("ix_metric_values_grain_period_start", "metric_values", ["grain", "period_start"])
    op.create_index("ix_metric_values_service_period_start", "metric_values", ["service", "period_start"])


def _create_kpi_scores() -> None:
    op.create_table(
        "kpi_scores",
        _text("scorecard", False), _text("perspective_id"), _text("objective_id"), _text("kpi_id", False),
        _text("kpi_name"), _text("metric"), _text("unit"), _text("direction"), _text("indicator"),
        _ts("period_start", False), _ts("period_end"),
        _double("value"), _double("baseline"), _double("threshold"), _double("target"), _double("stretch"),
        _double("performance"), _text("status"), _double("previous_value"), _double("change"), _text("trend"),
        _text("dora_band"), _double("weight"), _text("owner"), _ts("computed_at", False),
        sa.PrimaryKeyConstraint("scorecard", "kpi_id", "period_start", name="pk_kpi_scores"),
    )  # fmt: skip
    op.create_index("ix_kpi_scores_kpi_id_period_start", "kpi_scores", ["kpi_id", "period_start"])
    op.create_index("ix_kpi_scores_scorecard_period_start", "kpi_scores", ["scorecard", "period_start"])


def _create_node_scores() -> None:
    op.create_table(
        "node_scores",
        _text("scorecard", False), _text("node_type", False), _text("node_id", False), _text("name"),
        _text("parent_id"), _ts("period_start", False), _ts("period_end"), _double("score"), _text("status"),
        _double("coverage"), sa.Column("kpis_scored", sa.BigInteger()), sa.Column("kpis_total", sa.BigInteger()),
        _double("weight"), _text("rollup"), _text("owner"), _ts("computed_at", False),
        sa.PrimaryKeyConstraint("scorecard", "node_type", "node_id", "period_start", name="pk_node_scores"),
    )  # fmt: skip
    op.create_index("ix_node_scores_scorecard_period_start", "node_scores", ["scorecard", "period_start"])


def _create_bookkeeping() -> None:
    op.create_table(
        "metric_dictionary",
        _text("name", False), _text("title"), _text("definition"), _text("unit"), _text("direction"),
        _text("source_fields"), sa.Column("dora", sa.Boolean()),
        sa.PrimaryKeyConstraint("name", name="pk_metric_dictionary"),
    )  # fmt: skip
    op.create_table(
        "rejected_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        _text("kind", False), _text("source"), _text("source_id"),
        sa.Column("row", sa.BigInteger(), comment="row number of the record in its input file or page"),
        _text("column_name"), _text("reason", False),
        sa.Column("payload", sa.Text(), comment="the record as received, a JSON object"),
        _ts("rejected_at", False),
        sa.PrimaryKeyConstraint("id", name="pk_rejected_records"),
    )  # fmt: skip
    op.create_index("ix_rejected_records_kind_source_source_id", "rejected_records", ["kind", "source", "source_id"])
    op.create_index("ix_rejected_records_rejected_at", "rejected_records", ["rejected_at"])
    op.create_table(
        "sync_state",
        _text("source", False), _text("kind", False), _text("cursor"), _ts("updated_at", False),
        sa.PrimaryKeyConstraint("source", "kind", name="pk_sync_state"),
    )  # fmt: skip


# Plain SQL that means the same on SQLite and PostgreSQL. max(period_start) is right on SQLite too:
# its timestamps are fixed-width UTC text, which sorts in time order.
KPI_COLUMNS = (
    "k.scorecard, k.perspective_id, k.objective_id, k.kpi_id, k.kpi_name, k.metric, k.unit, k.direction, "
    "k.indicator, k.period_start, k.period_end, k.value, k.baseline, k.threshold, k.target, k.stretch, "
    "k.performance, k.status, k.previous_value, k.change, k.trend, k.dora_band, k.weight, k.owner, k.computed_at"
)
KPI_HISTORY = f"CREATE VIEW kpi_history AS SELECT {KPI_COLUMNS} FROM kpi_scores k"


def _node_columns(alias: str, level: str) -> str:
    return ", ".join(f"{alias}.{field} AS {level}_{field}" for field in ("name", "score", "status", "coverage"))


def _node_join(alias: str, node_type: str, node_id: str | None) -> str:
    by_id = f" AND {alias}.node_id = {node_id}" if node_id else ""
    return (
        f"LEFT JOIN node_scores {alias} ON {alias}.scorecard = k.scorecard AND {alias}.period_start = k.period_start"
        f" AND {alias}.node_type = '{node_type}'{by_id}"
    )


SCORECARD_LATEST = f"""CREATE VIEW scorecard_latest AS
SELECT {KPI_COLUMNS},
       {_node_columns("p", "perspective")},
       {_node_columns("o", "objective")},
       {_node_columns("s", "scorecard")}
FROM kpi_scores k
{_node_join("p", "perspective", "k.perspective_id")}
{_node_join("o", "objective", "k.objective_id")}
{_node_join("s", "scorecard", None)}
WHERE k.period_start = (SELECT max(l.period_start) FROM kpi_scores l WHERE l.scorecard = k.scorecard)"""


def upgrade() -> None:
    for kind in FACTS:
        _create_fact_table(kind)
    _create_metric_values()
    _create_kpi_scores()
    _create_node_scores()
    _create_bookkeeping()
    op.execute(KPI_HISTORY)
    op.execute(SCORECARD_LATEST)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS scorecard_latest")
    op.execute("DROP VIEW IF EXISTS kpi_history")
    for table in ("sync_state", "rejected_records", "metric_dictionary", "node_scores", "kpi_scores",
                  "metric_values", *reversed(FACTS)):  # fmt: skip
        op.drop_table(table)
