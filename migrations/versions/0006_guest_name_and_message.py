"""guest name and message on uploads; per-link setting for them

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 17:30:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('upload', schema=None) as batch_op:
        batch_op.add_column(sa.Column('guest_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('guest_message', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False,
                                      server_default=''))
    with op.batch_alter_table('invite', schema=None) as batch_op:
        batch_op.add_column(sa.Column('guest_fields', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False,
                                      server_default='optional'))


def downgrade() -> None:
    with op.batch_alter_table('invite', schema=None) as batch_op:
        batch_op.drop_column('guest_fields')
    with op.batch_alter_table('upload', schema=None) as batch_op:
        batch_op.drop_column('guest_message')
        batch_op.drop_column('guest_name')
