"""Add Note.body

Revision ID: a1b2c3d4e5f6
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "a1b2c3d4e5f6"
down_revision = None


def upgrade():
    op.add_column("notes", sa.Column("body", sa.Text()))


def downgrade():
    with op.batch_alter_table("notes") as batch:
        batch.drop_column("body")
