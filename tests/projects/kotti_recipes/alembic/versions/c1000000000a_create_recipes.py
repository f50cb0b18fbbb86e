"""Create recipes

Revision ID: c1000000000a
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "c1000000000a"
down_revision = None


def upgrade():
    op.create_table(
        "recipes",
        sa.Column("id", sa.Integer(), sa.ForeignKey("contents.id"), primary_key=True),
    )


def downgrade():
    op.drop_table("recipes")
