"""center read copy: centres as published by the queue service (center.upserted)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 00:57:07.249503
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # reviewed by hand
    op.create_table('centers',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False, comment='when the centre last changed at the source (occurred_at)'),
    sa.Column('last_event_sequence', sa.BigInteger(), nullable=False, comment="queue's outbox sequence of the event applied last; older events are ignored"),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_centers')),
    comment="Read copy of queue's centres, from center.upserted (never written by this service)"
    )


def downgrade() -> None:
    # reviewed by hand
    op.drop_table('centers')
