"""the hall read model: windows, tickets, services, appointment requests, inquiries

Revision ID: monitor_0004
Revises: monitor_0003
Create Date: 2026-12-03 07:05:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'monitor_0004'
down_revision: str | None = 'monitor_0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # written by hand (rendered from the models, reviewed)
    op.create_table('hall_services',
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('department', sa.String(length=32), nullable=True),
    sa.Column('wait_threshold_minutes', sa.SmallInteger(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_event_sequence', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('center_id', 'code', name=op.f('pk_hall_services')),
    comment="Read copy of queue's services, from service.upserted (never written here)"
    )
    op.create_table('hall_windows',
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('number', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=True),
    sa.Column('department', sa.String(length=32), nullable=True),
    sa.Column('services', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False, comment='service code -> weight (0: reserve)'),
    sa.Column('duty', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('a_clerk', sa.String(length=32), nullable=True),
    sa.Column('b_clerk', sa.String(length=32), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('setup_sequence', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('state', sa.String(length=12), server_default='signed_out', nullable=False, comment='signed_out | open | away | closed'),
    sa.Column('clerk_id', sa.String(length=32), nullable=True),
    sa.Column('clerk_name', sa.String(length=100), nullable=True),
    sa.Column('post', sa.String(length=1), nullable=True),
    sa.Column('state_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('away_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('away_message', sa.String(length=200), nullable=True),
    sa.Column('last_beat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('silent', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('state_sequence', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('vacancy_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('vacancy_episode', sa.DateTime(timezone=True), nullable=True, comment='when the uninterrupted absence began (the alert\'s cause)'),
    sa.Column('vacancy_pending', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('center_id', 'number', name=op.f('pk_hall_windows')),
    comment="Read model of queue's windows, from window.* events (never written by a route)"
    )
    op.create_index('ix_hall_windows_pending', 'hall_windows', ['center_id'], unique=False, postgresql_where=sa.text('vacancy_pending'))
    op.create_table('hall_tickets',
    sa.Column('ticket_id', sa.BigInteger(), nullable=False),
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('service_code', sa.String(length=32), nullable=False),
    sa.Column('department', sa.String(length=32), nullable=True),
    sa.Column('number', sa.String(length=12), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('duty_only', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False, comment='waiting | called | serving | done | no_show | cancelled | expired'),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('effective_arrival', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window', sa.String(length=16), nullable=True, comment='the window that called it last'),
    sa.Column('clerk_id', sa.String(length=32), nullable=True),
    sa.Column('post', sa.String(length=1), nullable=True),
    sa.Column('called_at', sa.DateTime(timezone=True), nullable=True, comment='first call'),
    sa.Column('recalls', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('wait_s', sa.Integer(), nullable=True, comment="the queue's wait at the (last) call or start"),
    sa.Column('service_s', sa.Integer(), server_default='0', nullable=False, comment='served seconds, transfers summed'),
    sa.Column('requeues', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('transferred_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('transferred_to_window', sa.String(length=16), nullable=True),
    sa.Column('transferred_to_service', sa.String(length=32), nullable=True),
    sa.Column('long_wait_alerted', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_event_sequence', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('ticket_id', name=op.f('pk_hall_tickets')),
    comment="Read model of queue's tickets, from ticket.* events (never written by a route)"
    )
    op.create_index('ix_hall_tickets_day', 'hall_tickets', ['center_id', 'business_date'], unique=False)
    op.create_index('ix_hall_tickets_waiting', 'hall_tickets', ['center_id', 'business_date'], unique=False, postgresql_where=sa.text("status = 'waiting'"))
    op.create_table('hall_appointment_requests',
    sa.Column('request_id', sa.BigInteger(), nullable=False),
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('service_code', sa.String(length=32), nullable=False),
    sa.Column('department', sa.String(length=32), nullable=True),
    sa.Column('channel', sa.String(length=12), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('phone_masked', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=True, comment='confirmed | declined (None: unanswered)'),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('on_time', sa.Boolean(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_event_sequence', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('request_id', name=op.f('pk_hall_appointment_requests')),
    comment="Read model of queue's appointment requests (never written by a route)"
    )
    op.create_index(op.f('ix_hall_appointment_requests_center_id'), 'hall_appointment_requests', ['center_id'], unique=False)
    op.create_table('hall_inquiries',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('item_code', sa.String(length=32), nullable=True),
    sa.Column('department', sa.String(length=32), nullable=True),
    sa.Column('taken_by_id', sa.String(length=32), nullable=False),
    sa.Column('taken_by_name', sa.String(length=100), nullable=False),
    sa.Column('window', sa.String(length=16), nullable=True),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False, comment='answered | referred | pending'),
    sa.Column('promised_reply_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('on_time', sa.Boolean(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_event_sequence', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hall_inquiries')),
    comment="Read model of cases' inquiries (never written by a route)"
    )
    op.create_index(op.f('ix_hall_inquiries_center_id'), 'hall_inquiries', ['center_id'], unique=False)
    # ### end Alembic commands ###


def downgrade() -> None:
    op.drop_table('hall_inquiries')
    op.drop_table('hall_appointment_requests')
    op.drop_table('hall_tickets')
    op.drop_table('hall_windows')
    op.drop_table('hall_services')
