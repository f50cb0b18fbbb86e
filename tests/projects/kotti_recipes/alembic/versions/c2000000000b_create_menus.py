"""Create menus

Revision ID: c2000000000b
Revises: c1000000000a
"""
import sqlalchemy as sa
from alembic import op

revision = "c2000000000b"
down_revision = "c1000000000a"


def upgrade():
    op.create_table(
        "menus",
        sa.Column("id", sa.Integer(), sa.ForeignKey("contents.id"), primary_key=True),
        sa.Column("course", sa.String(50)),
    )


def downgrade():
    op.drop_table("menus")
