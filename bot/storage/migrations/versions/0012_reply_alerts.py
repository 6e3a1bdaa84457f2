"""reply-time alerts: a customer's unanswered stretch and the reminder, note and holding message sent in it

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

COLUMNS = ("waiting_since", "reminded_at", "noted_at", "held_at")


def upgrade() -> None:
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
