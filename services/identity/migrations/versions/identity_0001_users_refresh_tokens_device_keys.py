"""users, failed logins, refresh tokens, device keys: the identity service's first tables

First revision of identity's own tree, on the platform tables (platform_0003, the head it is written
against).

Revision ID: identity_0001
Revises:
Create Date: 2026-12-01 21:50:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'identity_0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ('identity',)
depends_on: str | Sequence[str] | None = 'platform_0003'


def upgrade() -> None:
    # reviewed by hand
    op.create_table('users',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('post_title', sa.String(length=100), nullable=True),
    sa.Column('photo_url', sa.String(length=500), nullable=True),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('centers', postgresql.ARRAY(sa.String(length=32)), nullable=False),
    sa.Column('department', sa.String(length=64), nullable=True),
    sa.Column('email_masked', sa.String(length=200), nullable=True),
    sa.Column('email_encrypted', sa.String(length=500), nullable=True),
    sa.Column('phone_masked', sa.String(length=20), nullable=True),
    sa.Column('phone_encrypted', sa.String(length=500), nullable=True),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('device_keys',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('window', sa.String(length=32), nullable=True),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('key_prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_device_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_device_keys_key_hash'))
    )
    op.create_index(op.f('ix_device_keys_center_id'), 'device_keys', ['center_id'], unique=False)
    op.create_table('login_failures',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_login_failures_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    op.create_index('ix_login_failures_user_id_failed_at', 'login_failures', ['user_id', 'failed_at'], unique=False)
    op.create_table('refresh_tokens',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('family_id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_refresh_tokens_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refresh_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_refresh_tokens_token_hash'))
    )
    op.create_index(op.f('ix_refresh_tokens_family_id'), 'refresh_tokens', ['family_id'], unique=False)
    op.create_index(op.f('ix_refresh_tokens_user_id'), 'refresh_tokens', ['user_id'], unique=False)


def downgrade() -> None:
    # reviewed by hand
    op.drop_index(op.f('ix_refresh_tokens_user_id'), table_name='refresh_tokens')
    op.drop_index(op.f('ix_refresh_tokens_family_id'), table_name='refresh_tokens')
    op.drop_table('refresh_tokens')
    op.drop_index('ix_login_failures_user_id_failed_at', table_name='login_failures')
    op.drop_table('login_failures')
    op.drop_index(op.f('ix_device_keys_center_id'), table_name='device_keys')
    op.drop_table('device_keys')
    op.drop_table('users')
