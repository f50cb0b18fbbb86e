"""Add recipes.servings

Revision ID: c3000000000c
Revises: c2000000000b
"""
import sqlalchemy as sa
from alembic import op

revision = "c3000000000c"
down_revision = "c2000000000b"


def upgrade():
    op.add_column("recipes", sa.Column("servings", sa.Integer()))


def downgrade():
    with op.batch_alter_table("recipes") as batch:
        batch.drop_column("servings")
