"""diagnostic runs: the diagnostics' checks run as a job for a user

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 21:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "diagnostic_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("suite", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("allow_paid", sa.Boolean(), nullable=False),
        sa.Column("placeholder", sa.Boolean(), nullable=False),
        sa.Column("estimated_cost_usd", sa.Float(), nullable=False),
        sa.Column(
            "checks", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("diagnostic_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_diagnostic_runs_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index("ix_diagnostic_runs_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("diagnostic_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_diagnostic_runs_status")
        batch_op.drop_index(batch_op.f("ix_diagnostic_runs_owner_id"))
    op.drop_table("diagnostic_runs")
