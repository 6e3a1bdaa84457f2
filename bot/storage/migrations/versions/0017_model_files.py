"""trained models stored in the database (PostgreSQL): one row per model file, its bytes in chunks

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_files",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_model_files")),
    )
    op.create_table(
        "model_chunks",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["fingerprint"],
            ["model_files.fingerprint"],
            name=op.f("fk_model_chunks_fingerprint_model_files"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("fingerprint", "number", name=op.f("pk_model_chunks")),
    )


def downgrade() -> None:
    op.drop_table("model_chunks")
    op.drop_table("model_files")
