"""labels and performance: predictions log, pending labels, window performance, finding revisions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("prediction_id", sa.String(100), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("window_kind", sa.String(30), nullable=False),
        sa.Column("window_index", sa.BigInteger(), nullable=False),
        sa.Column("y_pred", sa.String(200), nullable=True),
        sa.Column("y_pred_value", sa.Float(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("sensitive", sa.JSON(), nullable=False),
        sa.Column("y_true", sa.String(200), nullable=True),
        sa.Column("y_true_value", sa.Float(), nullable=True),
        sa.Column("labelled_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_predictions_log"),
        sa.UniqueConstraint("model", "prediction_id", name="uq_predictions_log_model"),
    )
    op.create_index("ix_predictions_log_model_time", "predictions_log", ["model", "model_version", "occurred_at"])
    op.create_index("ix_predictions_log_prediction_id", "predictions_log", ["prediction_id"])
    op.create_table(
        "pending_labels",
        sa.Column("prediction_id", sa.String(100), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("y_true", sa.String(200), nullable=True),
        sa.Column("y_true_value", sa.Float(), nullable=True),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("prediction_id", name="pk_pending_labels"),
    )
    op.create_table(
        "window_performance",
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("window_index", sa.BigInteger(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("n_predictions", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("model", "model_version", "kind", "window_index", name="pk_window_performance"),
    )
    with op.batch_alter_table("findings") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("updated_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("findings") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("revision")
    op.drop_table("window_performance")
    op.drop_table("pending_labels")
    op.drop_index("ix_predictions_log_prediction_id", table_name="predictions_log")
    op.drop_index("ix_predictions_log_model_time", table_name="predictions_log")
    op.drop_table("predictions_log")
