"""The review tables: kpi_comments (commentary), actions (the action log) and alerts_sent (escalations).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

Frozen on purpose, as 0001: every column is spelled out here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True, comment: str | None = None) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, comment=comment)


def _text(name: str, nullable: bool = True, comment: str | None = None) -> sa.Column:
    return sa.Column(name, sa.Text(), nullable=nullable, comment=comment)


def upgrade() -> None:
    op.create_table(
        "kpi_comments",
        _text("scorecard", False), _text("kpi_id", False),
        _ts("period_start", False, "the review period the comment is about"),
        _text("comment", False, "what changed, why, and what is recommended"), _text("author"),
        _ts("loaded_at", False),
        sa.PrimaryKeyConstraint("scorecard", "kpi_id", "period_start", name="pk_kpi_comments"),
    )
    op.create_table(
        "actions",
        _text("scorecard", False), _text("action_id", False),
        _text("kpi_id", comment="the KPI the action is for (or objective_id)"),
        _text("objective_id", comment="the objective the action is for (or kpi_id)"),
        _text("action", False, "the decision or action agreed at the review"), _text("owner", False),
        _ts("due", False, "due date, midnight UTC of that day"),
        _text("status", False, "open, in_progress, done or dropped"), _ts("loaded_at", False),
        sa.PrimaryKeyConstraint("scorecard", "action_id", name="pk_actions"),
    )
    op.create_index("ix_actions_kpi_id", "actions", ["kpi_id"])
    op.create_table(
        "alerts_sent",
        _text("scorecard", False), _text("kpi_id", False),
        _ts("period_start", False, "the review period whose status fired it"),
        _text("rule", False, "red, drop or no_data"), _text("status", comment="the KPI's status in that period"),
        _text("previous_status"), sa.Column("value", sa.Double()), sa.Column("target", sa.Double()),
        _text("owner"), _text("message", False), _ts("fired_at", False),
        _ts("delivered_at", comment="when the webhook accepted it; empty: not posted (yet)"),
        _text("delivery_error", comment="why the last post failed (the next run retries); empty when delivered or "
              "when no webhook was configured (then it is never posted)"),
        sa.PrimaryKeyConstraint("scorecard", "kpi_id", "period_start", "rule", name="pk_alerts_sent"),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_actions_kpi_id", table_name="actions")
    for table in ("alerts_sent", "actions", "kpi_comments"):
        op.drop_table(table)
