"""sign-ins at a window terminal (its device, centre and window on the refresh tokens), users' photos

Revision ID: identity_0002
Revises: identity_0001
Create Date: 2026-12-03 10:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'identity_0002'
down_revision: str | None = 'identity_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # reviewed by hand
    op.create_table('user_photos',
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_photos_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_user_photos'))
    )
    # nullable: the sign-ins made before (and every plain one) were at no terminal
    op.add_column('refresh_tokens', sa.Column('device_id', sa.String(length=32), nullable=True))
    op.add_column('refresh_tokens', sa.Column('center_id', sa.String(length=32), nullable=True))
    op.add_column('refresh_tokens', sa.Column('window', sa.String(length=32), nullable=True))


def downgrade() -> None:
    # reviewed by hand
    op.drop_column('refresh_tokens', 'window')
    op.drop_column('refresh_tokens', 'center_id')
    op.drop_column('refresh_tokens', 'device_id')
    op.drop_table('user_photos')
