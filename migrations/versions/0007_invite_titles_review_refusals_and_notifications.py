"""invite titles, review before the timeline, refused uploads, owner notifications

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify_urls_enc', sqlmodel.sql.sqltypes.AutoString(length=16384),
                                      nullable=False, server_default=''))
    with op.batch_alter_table('invite', schema=None) as batch_op:
        batch_op.add_column(sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('archive', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('digest_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('closed_noticed', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table('inviterefusal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invite_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('guest_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('inviterefusal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inviterefusal_invite_id'), ['invite_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('inviterefusal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inviterefusal_invite_id'))
    op.drop_table('inviterefusal')
    with op.batch_alter_table('invite', schema=None) as batch_op:
        batch_op.drop_column('closed_noticed')
        batch_op.drop_column('digest_until')
        batch_op.drop_column('archive')
        batch_op.drop_column('title')
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_column('notify_urls_enc')
