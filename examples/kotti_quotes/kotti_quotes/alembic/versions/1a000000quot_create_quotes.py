"""Create quotes

Revision ID: 1a000000quot
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "1a000000quot"
down_revision = None


def upgrade():
    op.create_table(
        "quotes",
        sa.Column("id", sa.Integer(), sa.ForeignKey("contents.id"), primary_key=True),
        sa.Column("text", sa.Text()),
    )


def downgrade():
    op.drop_table("quotes")
