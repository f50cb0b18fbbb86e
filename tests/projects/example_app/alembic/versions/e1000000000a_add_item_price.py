"""Add Item.price

Revision ID: e1000000000a
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "e1000000000a"
down_revision = None


def upgrade():
    op.add_column("items", sa.Column("price", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("items") as batch:
        batch.drop_column("price")
