"""centres: the queue service owns them (the other services keep read copies)

First revision of the queue's own tree; until issue 17 part of its 0001, next to the platform tables of
platform_0001 (hence the dependency: the same order as then).

Revision ID: queue_0001
Revises:
Create Date: 2026-11-26 00:41:30.098424
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'queue_0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ('queue',)
depends_on: str | Sequence[str] | None = 'platform_0001'


def upgrade() -> None:
    # reviewed by hand
    op.create_table('centers',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_centers'))
    )


def downgrade() -> None:
    # reviewed by hand
    op.drop_table('centers')
