"""row-level security: every table with a tenant_id admits only the rows of the transaction's app.tenant_id

Revision ID: 0012_rls
Revises: 0011_hardening
Create Date: 2026-11-26 06:10:00

Later migrations that create a tenant table call `saas.rls.enable_tenant_rls(table)`;
tests/test_rls.py fails for a tenant table without it.
"""

from collections.abc import Sequence

from saas.rls import BILLING_RELATIVES, disable_tenant_rls, enable_tenant_rls

revision: str = "0012_rls"
down_revision: str | Sequence[str] | None = "0011_hardening"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tenant tables at this revision (every table with a tenant_id column but `tenants`, which has none).
TENANT_TABLES = (
    "api_idempotent_responses",
    "api_tokens",
    "approval_decisions",
    "approval_policies",
    "approval_requests",
    "audit_entries",
    "calendar_feeds",
    "channels",
    "connect_links",
    "invitations",
    "management_invitations",
    "media_imports",
    "media_items",
    "memberships",
    "notifications",
    "post_comments",
    "post_targets",
    "posting_slots",
    "posts",
    "publish_attempts",
    "review_links",
    "staff_assignments",
    "webhook_attempts",
    "webhook_deliveries",
    "webhook_endpoints",
    "webhook_events",
)


def upgrade() -> None:
    for table in TENANT_TABLES:
        enable_tenant_rls(table)
    # An agency and its managed clients read (never write) each other's row: the agency's plan covers them.
    enable_tenant_rls("subscriptions", also_readable=BILLING_RELATIVES)


def downgrade() -> None:
    for table in (*TENANT_TABLES, "subscriptions"):
        disable_tenant_rls(table)
