"""platform tables

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 00:41:30.252613
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # reviewed by hand
    op.create_table('daily_counters',
    sa.Column('scope', sa.String(length=120), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'business_date', name=op.f('pk_daily_counters')),
    comment='Gap-free per-day sequences (ticket, case and notice numbers), local business dates'
    )
    op.create_table('idempotency_keys',
    sa.Column('scope', sa.String(length=300), nullable=False, comment='caller + method + route'),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('body', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'key', name=op.f('pk_idempotency_keys')),
    comment='First answers to POSTs retried with the same Idempotency-Key'
    )
    op.create_index(op.f('ix_idempotency_keys_created_at'), 'idempotency_keys', ['created_at'], unique=False)


def downgrade() -> None:
    # reviewed by hand
    op.drop_index(op.f('ix_idempotency_keys_created_at'), table_name='idempotency_keys')
    op.drop_table('idempotency_keys')
    op.drop_table('daily_counters')
