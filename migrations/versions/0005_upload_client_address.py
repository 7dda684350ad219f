"""upload: the address that created it, for the public page's per-address quotas

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 17:20:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('upload', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client_address', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('upload', schema=None) as batch_op:
        batch_op.drop_column('client_address')
