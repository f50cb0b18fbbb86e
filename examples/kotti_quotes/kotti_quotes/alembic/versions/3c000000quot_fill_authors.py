"""Fill the authors of existing quotes

Quotes added before 2b000000quot have no author: they were all by the
site's editor, whose name was the quote's description.

Revision ID: 3c000000quot
Revises: 2b000000quot
"""
from alembic import op

revision = "3c000000quot"
down_revision = "2b000000quot"


def upgrade():
    op.execute(
        "UPDATE quotes SET author = "
        "(SELECT COALESCE(contents.description, 'Anonymous') FROM contents WHERE contents.id = quotes.id) "
        "WHERE author IS NULL"
    )


def downgrade():
    pass  # the data stays: the column is still there at 2b000000quot
