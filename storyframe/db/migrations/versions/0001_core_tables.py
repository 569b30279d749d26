"""core tables

Revision ID: 0001
Revises:
Create Date: 2026-11-25 09:39:07.085482
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "videos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_videos_project_id"), ["project_id"], unique=False)

    op.create_table(
        "contexts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["video_id"], ["videos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("video_id"),
    )
    op.create_table(
        "frames",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("order", sa.Integer(), nullable=False),
        sa.Column("selected_image_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["video_id"], ["videos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("frames", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_frames_selected_image_id"), ["selected_image_id"], unique=False
        )
        batch_op.create_index("ix_frames_video_order", ["video_id", "order"], unique=True)

    op.create_table(
        "main_chats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["video_id"], ["videos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("main_chats", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_main_chats_video_id"), ["video_id"], unique=False)

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("frame_id", sa.Integer(), nullable=True),
        sa.Column("context_id", sa.Integer(), nullable=True),
        sa.Column("main_chat_id", sa.Integer(), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("with_context", sa.Boolean(), nullable=False),
        sa.Column("final_prompt", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(CASE WHEN frame_id IS NULL THEN 0 ELSE 1 END) + (CASE WHEN context_id IS NULL THEN 0 ELSE 1 END) + (CASE WHEN main_chat_id IS NULL THEN 0 ELSE 1 END) = 1",
            name="ck_messages_one_chat",
        ),
        sa.ForeignKeyConstraint(["context_id"], ["contexts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["frame_id"], ["frames.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["main_chat_id"], ["main_chats.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["video_id"], ["videos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messages_context_id"), ["context_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_messages_frame_id"), ["frame_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_messages_main_chat_id"), ["main_chat_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_messages_video_id"), ["video_id"], unique=False)

    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("storage_key", sa.String(length=300), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["video_id"], ["videos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_images_message_id"), ["message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_images_project_id"), ["project_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_images_video_id"), ["video_id"], unique=False)

    op.create_table(
        "image_placements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("frame_id", sa.Integer(), nullable=True),
        sa.Column("context_id", sa.Integer(), nullable=True),
        sa.Column("main_chat_id", sa.Integer(), nullable=True),
        sa.Column("gallery_project_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(CASE WHEN frame_id IS NULL THEN 0 ELSE 1 END) + (CASE WHEN context_id IS NULL THEN 0 ELSE 1 END) + (CASE WHEN main_chat_id IS NULL THEN 0 ELSE 1 END) + (CASE WHEN gallery_project_id IS NULL THEN 0 ELSE 1 END) = 1",
            name="ck_image_placements_one_place",
        ),
        sa.ForeignKeyConstraint(["context_id"], ["contexts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["frame_id"], ["frames.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["gallery_project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["main_chat_id"], ["main_chats.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("image_placements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_image_placements_image_id"), ["image_id"], unique=False
        )
        batch_op.create_index("uq_placement_context", ["context_id", "image_id"], unique=True)
        batch_op.create_index("uq_placement_frame", ["frame_id", "image_id"], unique=True)
        batch_op.create_index(
            "uq_placement_gallery", ["gallery_project_id", "image_id"], unique=True
        )
        batch_op.create_index("uq_placement_main_chat", ["main_chat_id", "image_id"], unique=True)

    op.create_table(
        "message_attachments",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id", "image_id"),
    )
    with op.batch_alter_table("message_attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_message_attachments_image_id"), ["image_id"], unique=False
        )

    # frames → images → messages → frames is a cycle: the selection's key comes last.
    with op.batch_alter_table("frames", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_frames_selected_image",
            "images",
            ["selected_image_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("frames", schema=None) as batch_op:
        batch_op.drop_constraint("fk_frames_selected_image", type_="foreignkey")
    with op.batch_alter_table("message_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_attachments_image_id"))

    op.drop_table("message_attachments")
    with op.batch_alter_table("image_placements", schema=None) as batch_op:
        batch_op.drop_index("uq_placement_main_chat")
        batch_op.drop_index("uq_placement_gallery")
        batch_op.drop_index("uq_placement_frame")
        batch_op.drop_index("uq_placement_context")
        batch_op.drop_index(batch_op.f("ix_image_placements_image_id"))

    op.drop_table("image_placements")
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_images_video_id"))
        batch_op.drop_index(batch_op.f("ix_images_project_id"))
        batch_op.drop_index(batch_op.f("ix_images_message_id"))

    op.drop_table("images")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_video_id"))
        batch_op.drop_index(batch_op.f("ix_messages_main_chat_id"))
        batch_op.drop_index(batch_op.f("ix_messages_frame_id"))
        batch_op.drop_index(batch_op.f("ix_messages_context_id"))

    op.drop_table("messages")
    with op.batch_alter_table("main_chats", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_main_chats_video_id"))

    op.drop_table("main_chats")
    with op.batch_alter_table("frames", schema=None) as batch_op:
        batch_op.drop_index("ix_frames_video_order")
        batch_op.drop_index(batch_op.f("ix_frames_selected_image_id"))

    op.drop_table("frames")
    op.drop_table("contexts")
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_videos_project_id"))

    op.drop_table("videos")
    op.drop_table("projects")
