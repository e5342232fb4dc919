"""The first schema: logged predictions and the feedback that joins them.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("text_hash", sa.String(64)),
        sa.Column("text", sa.Text),
        sa.Column("label", sa.String(200)),
        sa.Column("labels", sa.JSON),
        sa.Column("score", sa.Float),
        sa.Column("confidence", sa.Float),
        sa.Column("probabilities", sa.JSON),
        sa.Column("stage", sa.String(200)),
        sa.Column("latency_ms", sa.Float, nullable=False),
    )
    op.create_index("ix_predictions_text_hash", "predictions", ["text_hash"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prediction_id", sa.String(32), sa.ForeignKey("predictions.id")),
        sa.Column("text", sa.Text),
        sa.Column("labels", sa.JSON),
        sa.Column("rating", sa.Integer),
        sa.Column("comment", sa.Text),
        sa.Column("idempotency_key", sa.String(200), unique=True),
    )
    op.create_index("ix_feedback_prediction_id", "feedback", ["prediction_id"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("predictions")
