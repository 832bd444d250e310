"""composer: tags, notes, first comment and draft targets on posts

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-26 04:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0003"
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


def downgrade() -> None:
    op.drop_column("posts", "draft_targets")
    op.drop_column("posts", "first_comment")
    op.drop_column("posts", "notes")
    op.drop_column("posts", "tags")
