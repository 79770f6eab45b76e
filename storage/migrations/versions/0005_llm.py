"""LLM interactions kept for prompt-update and fine-tune jobs (redacted excerpts and keyed hashes only)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "llm_interactions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(100), nullable=False),
        sa.Column("application", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("window_kind", sa.String(30), nullable=False),
        sa.Column("window_index", sa.BigInteger(), nullable=False),
        sa.Column("kept_because", sa.String(30), nullable=False),
        sa.Column("prompt_excerpt", sa.Text(), nullable=False),
        sa.Column("response_excerpt", sa.Text(), nullable=False),
        sa.Column("prompt_hash", sa.String(64), nullable=False),
        sa.Column("response_hash", sa.String(64), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("user_rating", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_llm_interactions"),
        sa.UniqueConstraint("event_id", name="uq_llm_interactions_event_id"),
    )
    op.create_index("ix_llm_interactions_app_window", "llm_interactions",
                    ["application", "window_kind", "window_index"])
    op.create_index("ix_llm_interactions_app_time", "llm_interactions", ["application", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_llm_interactions_app_time", table_name="llm_interactions")
    op.drop_index("ix_llm_interactions_app_window", table_name="llm_interactions")
    op.drop_table("llm_interactions")
