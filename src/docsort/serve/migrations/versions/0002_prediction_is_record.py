"""Predictions say whether their input was a record (logged as canonical JSON) or a text, so
``docsort feedback export`` writes a record's fields as columns again.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # rows logged before this revision were texts unless their text is a JSON object: those
    # can only be told apart where the text was stored, and are left as texts
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(
            sa.Column("is_record", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("is_record")
