"""generation jobs: owner, attempts, heartbeat, cancel, idempotency; image slots

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 14:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("request_hash", sa.String(length=64), nullable=True))
        batch_op.create_foreign_key(
            "fk_generations_owner_id_users", "users", ["owner_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_index(batch_op.f("ix_generations_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index("ix_generations_status", ["status"], unique=False)
        batch_op.create_index(
            "uq_generations_idempotency", ["owner_id", "idempotency_key"], unique=True
        )
    # Generations made before this revision belong to their video's project's owner.
    op.execute(
        "UPDATE generations SET owner_id = (SELECT projects.owner_id FROM videos "
        "JOIN projects ON projects.id = videos.project_id WHERE videos.id = generations.video_id)"
    )
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slot", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_column("slot")
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_index("uq_generations_idempotency")
        batch_op.drop_index("ix_generations_status")
        batch_op.drop_index(batch_op.f("ix_generations_owner_id"))
        batch_op.drop_constraint("fk_generations_owner_id_users", type_="foreignkey")
        for column in (
            "request_hash",
            "idempotency_key",
            "cancel_requested",
            "heartbeat_at",
            "attempts",
            "owner_id",
        ):
            batch_op.drop_column(column)
