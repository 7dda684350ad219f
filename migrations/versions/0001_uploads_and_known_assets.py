"""uploads and known assets

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 20:33:46.170146
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('knownasset',
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('checksum', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('asset_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('owner', 'checksum')
    )
    op.create_table('upload',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('session_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('target_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('target_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('filetype', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('last_modified_ms', sa.BigInteger(), nullable=True),
    sa.Column('tz_offset_minutes', sa.Integer(), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
    sa.Column('checksum', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('captured_at', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('asset_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('upload', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upload_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_upload_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_upload_target_id'), ['target_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('upload', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upload_target_id'))
        batch_op.drop_index(batch_op.f('ix_upload_state'))
        batch_op.drop_index(batch_op.f('ix_upload_session_id'))

    op.drop_table('upload')
    op.drop_table('knownasset')
