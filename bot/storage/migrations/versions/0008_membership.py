"""agents' membership of the agents' group, as Telegram last told it

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Agents on record were members when they registered: they stay agents until Telegram says otherwise.
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("in_group", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column("membership_checked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("membership_checked_at")
        batch_op.drop_column("in_group")
