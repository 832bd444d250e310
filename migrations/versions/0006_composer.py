"""composer: tags, notes, first comment, draft targets, recurrence on posts; media library; posting slots

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 04:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "posts",
        sa.Column(
            "tags", postgresql.ARRAY(sa.String(length=40)), server_default=sa.text("'{}'::varchar[]"), nullable=False
        ),
    )
    op.add_column("posts", sa.Column("notes", sa.Text(), nullable=True))
    op.add_column("posts", sa.Column("first_comment", sa.Text(), nullable=True))
    op.add_column(
        "posts",
        sa.Column(
            "draft_targets",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )

    op.add_column("posts", sa.Column("recurrence", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("posts", sa.Column("series_id", sa.Integer(), nullable=True))
    op.add_column("posts", sa.Column("occurrence_no", sa.Integer(), nullable=True))
    op.create_index(
        "ix_posts_tenant_series",
        "posts",
        ["tenant_id", "series_id"],
        unique=False,
        postgresql_where=sa.text("series_id IS NOT NULL"),
    )
    op.add_column("post_targets", sa.Column("media_override", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("channels", sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("channels", sa.Column("timezone", sa.String(length=64), nullable=True))
    op.create_table(
        "media_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("storage_key", sa.String(length=255), nullable=False),
        sa.Column("mime_type", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("alt", sa.Text(), server_default="", nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_media_items_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by"], ["users.id"], name=op.f("fk_media_items_uploaded_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_items")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_media_items_tenant_id_id")),
    )
    op.create_index(op.f("ix_media_items_tenant_id"), "media_items", ["tenant_id"], unique=False)
    op.create_index("ix_media_items_tenant_created", "media_items", ["tenant_id", "created_at"], unique=False)
    op.create_table(
        "posting_slots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("local_time", sa.Time(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name=op.f("ck_posting_slots_weekday")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_posting_slots_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "channel_id"],
            ["channels.tenant_id", "channels.id"],
            name=op.f("fk_posting_slots_tenant_id_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posting_slots")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_posting_slots_tenant_id_id")),
        sa.UniqueConstraint(
            "tenant_id",
            "channel_id",
            "weekday",
            "local_time",
            name=op.f("uq_posting_slots_tenant_id_channel_id_weekday_local_time"),
        ),
    )
    op.create_index(op.f("ix_posting_slots_tenant_id"), "posting_slots", ["tenant_id"], unique=False)
    op.create_table(
        "calendar_feeds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_calendar_feeds_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_calendar_feeds_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_feeds")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_calendar_feeds_tenant_id_id")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_calendar_feeds_token_hash")),
    )
    op.create_index(op.f("ix_calendar_feeds_tenant_id"), "calendar_feeds", ["tenant_id"], unique=False)


def downgrade() -> None:
    op.drop_table("calendar_feeds")
    op.drop_table("posting_slots")
    op.drop_table("media_items")
    op.drop_column("channels", "timezone")
    op.drop_column("channels", "paused_at")
    op.drop_column("post_targets", "media_override")
    op.drop_index("ix_posts_tenant_series", table_name="posts")
    op.drop_column("posts", "occurrence_no")
    op.drop_column("posts", "series_id")
    op.drop_column("posts", "recurrence")
    op.drop_column("posts", "draft_targets")
    op.drop_column("posts", "first_comment")
    op.drop_column("posts", "notes")
    op.drop_column("posts", "tags")
