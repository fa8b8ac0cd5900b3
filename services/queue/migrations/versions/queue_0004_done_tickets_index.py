"""tickets: a partial index on the served tickets of a service by end time, which the wait estimate of
every issued ticket reads (the median service time of the last two hours): without it the estimate
scanned all of the service's tickets of every day

Revision ID: queue_0004
Revises: queue_0003
Create Date: 2026-12-02 10:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'queue_0004'
down_revision: str | None = 'queue_0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_tickets_done', 'tickets', ['center_id', 'service_code', 'ended_at'], unique=False,
                    postgresql_where=sa.text("status = 'done'"))


def downgrade() -> None:
    op.drop_index('ix_tickets_done', table_name='tickets', postgresql_where=sa.text("status = 'done'"))
