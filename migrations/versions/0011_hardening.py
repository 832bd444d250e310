"""media imports from a URL; the audit log's kind of change (for filtering) and its words for people

Revision ID: 0011_hardening
Revises: 0010_webhooks
Create Date: 2026-11-26 06:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_hardening"
down_revision: str | Sequence[str] | None = "0010_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "media_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("alt", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "queued",
                "fetching",
                "done",
                "failed",
                name="media_import_state",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("media_id", sa.Integer(), nullable=True),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_media_imports_requested_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_media_imports_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "media_id"],
            ["media_items.tenant_id", "media_items.id"],
            name=op.f("fk_media_imports_tenant_id_media_items"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_imports")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_media_imports_tenant_id_id")),
    )
    op.create_index(op.f("ix_media_imports_tenant_id"), "media_imports", ["tenant_id"], unique=False)
    op.create_index("ix_media_imports_tenant_created", "media_imports", ["tenant_id", "created_at"], unique=False)
    op.add_column("audit_entries", sa.Column("kind", sa.String(length=40), server_default="other", nullable=False))
    op.add_column("audit_entries", sa.Column("detail", sa.String(length=500), nullable=True))
    op.create_index(
        "ix_audit_entries_tenant_kind_created", "audit_entries", ["tenant_id", "kind", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_audit_entries_tenant_kind_created", table_name="audit_entries")
    op.drop_column("audit_entries", "detail")
    op.drop_column("audit_entries", "kind")
    op.drop_index("ix_media_imports_tenant_created", table_name="media_imports")
    op.drop_index(op.f("ix_media_imports_tenant_id"), table_name="media_imports")
    op.drop_table("media_imports")
