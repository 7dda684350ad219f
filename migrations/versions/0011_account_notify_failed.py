"""account: the last notification's addresses that did not take it, and when

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 07:20:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify_failed', sqlmodel.sql.sqltypes.AutoString(length=4096), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('notify_failed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_column('notify_failed_at')
        batch_op.drop_column('notify_failed')
