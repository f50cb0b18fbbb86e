"""Add quotes.author

Revision ID: 2b000000quot
Revises: 1a000000quot
"""
import sqlalchemy as sa
from alembic import op

revision = "2b000000quot"
down_revision = "1a000000quot"


def upgrade():
    op.add_column("quotes", sa.Column("author", sa.String(100)))


def downgrade():
    with op.batch_alter_table("quotes") as batch:
        batch.drop_column("author")
