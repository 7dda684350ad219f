"""accounts, admin sessions and invites

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 21:18:17.836804
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('account',
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('api_key_enc', sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
    sa.Column('api_key_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('key_valid', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('adminsession',
    sa.Column('id_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('immich_token_enc', sqlmodel.sql.sqltypes.AutoString(length=4096), nullable=False),
    sa.Column('csrf_token', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id_hash')
    )
    with op.batch_alter_table('adminsession', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_adminsession_user_id'), ['user_id'], unique=False)

    op.create_table('invite',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('token_enc', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('owner_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('album_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('album_name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('max_uses', sa.Integer(), nullable=True),
    sa.Column('uses', sa.Integer(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('max_file_size', sa.BigInteger(), nullable=True),
    sa.Column('max_total_bytes', sa.BigInteger(), nullable=True),
    sa.Column('max_files', sa.Integer(), nullable=True),
    sa.Column('media_kind', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('files', sa.Integer(), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('last_upload_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('deleted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('invite', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invite_owner_id'), ['owner_id'], unique=False)

    op.create_table('inviteguest',
    sa.Column('invite_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('session_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('unlocked', sa.Boolean(), nullable=False),
    sa.Column('claimed', sa.Boolean(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('invite_id', 'session_id')
    )


def downgrade() -> None:
    op.drop_table('inviteguest')
    with op.batch_alter_table('invite', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invite_owner_id'))

    op.drop_table('invite')
    with op.batch_alter_table('adminsession', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_adminsession_user_id'))

    op.drop_table('adminsession')
    op.drop_table('account')
