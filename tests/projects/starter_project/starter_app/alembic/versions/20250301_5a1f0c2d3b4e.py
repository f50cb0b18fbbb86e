"""init

Revision ID: 5a1f0c2d3b4e
Revises:
Create Date: 2025-03-01 10:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '5a1f0c2d3b4e'
down_revision = None
branch_labels = None
depends_on = None

def upgrade():
    op.create_table('models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(), nullable=True),
    sa.Column('value', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_models'))
    )
    op.create_index('my_index', 'models', ['name'], unique=True, mysql_length=255)

def downgrade():
    op.drop_index('my_index', table_name='models')
    op.drop_table('models')
