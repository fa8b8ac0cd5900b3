"""centre read copy: centres as published by the queue service (center.upserted)

The `center_copy` branch: the table of shared/readcopy.py's CenterCopyColumns, for the services that keep
a read copy of the queue's centres (not queue, which owns them). Until issue 17 cases, monitor and notify
each carried a copy of it as their own 0004.

Revision ID: center_copy_0001
Revises:
Create Date: 2026-11-26 00:57:07.249503
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'center_copy_0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ('center_copy',)
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
