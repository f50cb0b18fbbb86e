"""Create tags

Revision ID: e2000000000b
Revises: e1000000000a
"""
import sqlalchemy as sa
from alembic import op

revision = "e2000000000b"
down_revision = "e1000000000a"


def upgrade():
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id"), nullable=False),
        sa.Column("label", sa.String(30), nullable=False),
    )


def downgrade():
    op.drop_table("tags")
