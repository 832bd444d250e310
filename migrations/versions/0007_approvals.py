"""approvals and agency access: per-workspace approval policy, requests bound to a post revision, decisions,
comments, review links; staff assignments to clients, the audit log, the client mode, management invitations,
client connect links

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 04:56:48.255747

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "approval_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "mode",
            sa.Enum(
                "none",
                "optional",
                "required",
                name="approval_mode",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("steps", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_approval_policies_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_policies")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_approval_policies_tenant_id")),
    )
    op.create_index(op.f("ix_approval_policies_tenant_id"), "approval_policies", ["tenant_id"], unique=False)
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=254), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("agency_name", sa.String(length=120), nullable=True),
        sa.Column("action", sa.String(length=200), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_audit_entries_actor_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["tenants.id"], name=op.f("fk_audit_entries_agency_id_tenants"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_audit_entries_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
    )
    op.create_index("ix_audit_entries_tenant_created", "audit_entries", ["tenant_id", "created_at"], unique=False)
    op.create_index(op.f("ix_audit_entries_tenant_id"), "audit_entries", ["tenant_id"], unique=False)
    op.create_table(
        "connect_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_connect_links_created_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_connect_links_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connect_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_connect_links_token_hash")),
    )
    op.create_index("ix_connect_links_tenant_created", "connect_links", ["tenant_id", "created_at"], unique=False)
    op.create_index(op.f("ix_connect_links_tenant_id"), "connect_links", ["tenant_id"], unique=False)
    op.create_table(
        "management_invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("invited_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["tenants.id"], name=op.f("fk_management_invitations_client_id_tenants"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["invited_by_id"],
            ["users.id"],
            name=op.f("fk_management_invitations_invited_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_management_invitations_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_management_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_management_invitations_token_hash")),
    )
    op.create_index(
        "ix_management_invitations_tenant_created", "management_invitations", ["tenant_id", "created_at"], unique=False
    )
    op.create_index(op.f("ix_management_invitations_tenant_id"), "management_invitations", ["tenant_id"], unique=False)
    op.create_table(
        "review_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("post_ids", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_review_links_created_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_review_links_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_review_links_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_review_links_token_hash")),
    )
    op.create_index("ix_review_links_tenant_created", "review_links", ["tenant_id", "created_at"], unique=False)
    op.create_index(op.f("ix_review_links_tenant_id"), "review_links", ["tenant_id"], unique=False)
    op.create_table(
        "staff_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("assigned_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assigned_by_id"],
            ["users.id"],
            name=op.f("fk_staff_assignments_assigned_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["tenants.id"], name=op.f("fk_staff_assignments_client_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_staff_assignments_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_staff_assignments_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_assignments")),
        sa.UniqueConstraint(
            "tenant_id", "client_id", "user_id", name=op.f("uq_staff_assignments_tenant_id_client_id_user_id")
        ),
    )
    op.create_index(op.f("ix_staff_assignments_client_id"), "staff_assignments", ["client_id"], unique=False)
    op.create_index(op.f("ix_staff_assignments_tenant_id"), "staff_assignments", ["tenant_id"], unique=False)
    op.create_index(op.f("ix_staff_assignments_user_id"), "staff_assignments", ["user_id"], unique=False)
    op.create_table(
        "approval_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("steps", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "changes_requested",
                "approved",
                "superseded",
                name="approval_request_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("submitted_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["submitted_by_id"],
            ["users.id"],
            name=op.f("fk_approval_requests_submitted_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "post_id"],
            ["posts.tenant_id", "posts.id"],
            name=op.f("fk_approval_requests_tenant_id_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_approval_requests_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_requests")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_approval_requests_tenant_id_id")),
    )
    op.create_index(op.f("ix_approval_requests_tenant_id"), "approval_requests", ["tenant_id"], unique=False)
    op.create_index("ix_approval_requests_tenant_post", "approval_requests", ["tenant_id", "post_id"], unique=False)
    op.create_index(
        "uq_approval_requests_open",
        "approval_requests",
        ["post_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('pending', 'changes_requested')"),
    )
    op.create_table(
        "post_comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("author_name", sa.String(length=254), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("internal", sa.Boolean(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_post_comments_author_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "parent_id"],
            ["post_comments.tenant_id", "post_comments.id"],
            name=op.f("fk_post_comments_tenant_id_parent_id_post_comments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "post_id"],
            ["posts.tenant_id", "posts.id"],
            name=op.f("fk_post_comments_tenant_id_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_post_comments_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post_comments")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_post_comments_tenant_id_id")),
    )
    op.create_index(op.f("ix_post_comments_tenant_id"), "post_comments", ["tenant_id"], unique=False)
    op.create_index("ix_post_comments_tenant_post", "post_comments", ["tenant_id", "post_id"], unique=False)
    op.create_table(
        "approval_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("reviewer_name", sa.String(length=254), nullable=False),
        sa.Column(
            "verdict",
            sa.Enum(
                "approved",
                "changes_requested",
                name="approval_verdict",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("via_link", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "request_id"],
            ["approval_requests.tenant_id", "approval_requests.id"],
            name=op.f("fk_approval_decisions_tenant_id_request_id_approval_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_approval_decisions_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_approval_decisions_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_decisions")),
    )
    op.create_index(op.f("ix_approval_decisions_tenant_id"), "approval_decisions", ["tenant_id"], unique=False)
    op.create_index(
        "ix_approval_decisions_tenant_request", "approval_decisions", ["tenant_id", "request_id"], unique=False
    )
    op.add_column(
        "tenants",
        sa.Column(
            "client_mode",
            sa.Enum("managed", "self_serve", name="client_mode", native_enum=False, create_constraint=True, length=20),
            server_default="managed",
            nullable=False,
        ),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("tenants", "client_mode")
    op.drop_index("ix_approval_decisions_tenant_request", table_name="approval_decisions")
    op.drop_index(op.f("ix_approval_decisions_tenant_id"), table_name="approval_decisions")
    op.drop_table("approval_decisions")
    op.drop_index("ix_post_comments_tenant_post", table_name="post_comments")
    op.drop_index(op.f("ix_post_comments_tenant_id"), table_name="post_comments")
    op.drop_table("post_comments")
    op.drop_index(
        "uq_approval_requests_open",
        table_name="approval_requests",
        postgresql_where=sa.text("status IN ('pending', 'changes_requested')"),
    )
    op.drop_index("ix_approval_requests_tenant_post", table_name="approval_requests")
    op.drop_index(op.f("ix_approval_requests_tenant_id"), table_name="approval_requests")
    op.drop_table("approval_requests")
    op.drop_index(op.f("ix_staff_assignments_user_id"), table_name="staff_assignments")
    op.drop_index(op.f("ix_staff_assignments_tenant_id"), table_name="staff_assignments")
    op.drop_index(op.f("ix_staff_assignments_client_id"), table_name="staff_assignments")
    op.drop_table("staff_assignments")
    op.drop_index(op.f("ix_review_links_tenant_id"), table_name="review_links")
    op.drop_index("ix_review_links_tenant_created", table_name="review_links")
    op.drop_table("review_links")
    op.drop_index(op.f("ix_management_invitations_tenant_id"), table_name="management_invitations")
    op.drop_index("ix_management_invitations_tenant_created", table_name="management_invitations")
    op.drop_table("management_invitations")
    op.drop_index(op.f("ix_connect_links_tenant_id"), table_name="connect_links")
    op.drop_index("ix_connect_links_tenant_created", table_name="connect_links")
    op.drop_table("connect_links")
    op.drop_index(op.f("ix_audit_entries_tenant_id"), table_name="audit_entries")
    op.drop_index("ix_audit_entries_tenant_created", table_name="audit_entries")
    op.drop_table("audit_entries")
    op.drop_index(op.f("ix_approval_policies_tenant_id"), table_name="approval_policies")
    op.drop_table("approval_policies")
