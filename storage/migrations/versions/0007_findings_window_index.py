"""An index on findings.window_id: pruning windows asks, per window, whether a finding names it

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # without it, `opsloop prune --windows-older-than` (NOT EXISTS per window) and PostgreSQL's foreign-key
    # check on each deleted window would scan the findings table once per window
    op.create_index("ix_findings_window_id", "findings", ["window_id"])


def downgrade() -> None:
    op.drop_index("ix_findings_window_id", table_name="findings")
