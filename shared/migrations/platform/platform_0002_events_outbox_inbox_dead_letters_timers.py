"""platform tables: events outbox, inbox, dead letters, timers

Until issue 17 each service's tree carried a copy of it as its own 0002.

Revision ID: platform_0002
Revises: platform_0001
Create Date: 2026-11-26 00:43:53.857924
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'platform_0002'
down_revision: str | None = 'platform_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # reviewed by hand
    op.create_table('dead_letters',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('consumer', sa.String(length=100), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False, comment='poison | parked (waits behind a poison event of its key)'),
    sa.Column('envelope', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dead_letters')),
    comment='Poison events and the later events of their key parked behind them; replayable'
    )
    op.create_index('ix_dead_letters_open', 'dead_letters', ['consumer', 'key', 'id'], unique=False, postgresql_where=sa.text('resolved_at IS NULL'))
    op.create_table('inbox',
    sa.Column('consumer', sa.String(length=100), nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('consumer', 'event_id', name=op.f('pk_inbox')),
    comment='Event ids each consumer has applied (redeliveries change nothing)'
    )
    op.create_index(op.f('ix_inbox_applied_at'), 'inbox', ['applied_at'], unique=False)
    op.create_table('outbox',
    sa.Column('sequence', sa.BigInteger(), sa.Identity(always=True), nullable=False, comment="this service's event sequence: relay order, SSE id"),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('topic', sa.String(length=100), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False, comment='Kafka key: centre (queue) or subject (cases)'),
    sa.Column('reference_key', sa.String(length=200), nullable=True, comment='set for reference data; the latest per key is kept for ever'),
    sa.Column('envelope', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('sequence', name=op.f('pk_outbox')),
    sa.UniqueConstraint('id', name=op.f('uq_outbox_id')),
    comment='Transactional outbox: written with the state change, relayed to Kafka'
    )
    op.create_index('ix_outbox_reference', 'outbox', ['reference_key', 'sequence'], unique=False, postgresql_where=sa.text('reference_key IS NOT NULL'))
    op.create_index('ix_outbox_unsent', 'outbox', ['sequence'], unique=False, postgresql_where=sa.text('sent_at IS NULL'))
    op.create_table('periodic_jobs',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('last_due_at', sa.DateTime(timezone=True), nullable=True, comment='the last scheduled moment that has run'),
    sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_periodic_jobs')),
    comment='Where each periodic job is, so a restart catches up instead of skipping or repeating'
    )
    op.create_table('platform_state',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('value', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_platform_state')),
    comment='Small named state of the platform (e.g. the broker cluster id the relay last saw)'
    )
    op.create_table('timers',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('kind', sa.String(length=100), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_timers')),
    sa.UniqueConstraint('kind', 'key', name=op.f('uq_timers_kind_key')),
    comment='Durable one-shot timers, fired exactly once at due_at by the shared clock'
    )
    op.create_index('ix_timers_due', 'timers', ['due_at'], unique=False, postgresql_where=sa.text('fired_at IS NULL'))


def downgrade() -> None:
    # reviewed by hand
    op.drop_index('ix_timers_due', table_name='timers', postgresql_where=sa.text('fired_at IS NULL'))
    op.drop_table('timers')
    op.drop_table('platform_state')
    op.drop_table('periodic_jobs')
    op.drop_index('ix_outbox_unsent', table_name='outbox', postgresql_where=sa.text('sent_at IS NULL'))
    op.drop_index('ix_outbox_reference', table_name='outbox', postgresql_where=sa.text('reference_key IS NOT NULL'))
    op.drop_table('outbox')
    op.drop_index(op.f('ix_inbox_applied_at'), table_name='inbox')
    op.drop_table('inbox')
    op.drop_index('ix_dead_letters_open', table_name='dead_letters', postgresql_where=sa.text('resolved_at IS NULL'))
    op.drop_table('dead_letters')
