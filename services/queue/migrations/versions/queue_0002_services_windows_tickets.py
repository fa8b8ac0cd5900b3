"""queue-calling: centres' queue settings and hall schedule, services, windows, tickets, appointments, and
the read copy of the staff (names, post titles and photos for the displays)

Revision ID: queue_0002
Revises: queue_0001
Create Date: 2026-12-01 23:44:45.265627
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'queue_0002'
down_revision: str | None = 'queue_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # reviewed by hand
    op.create_table('appointments',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('code', sa.String(length=12), nullable=False, comment='the check-in code given to the person'),
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('service_code', sa.String(length=32), nullable=False),
    sa.Column('slot_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('slot_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False, comment='booked | cancelled | checked_in'),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('id_number_hash', sa.String(length=64), nullable=True),
    sa.Column('id_number_masked', sa.String(length=32), nullable=True),
    sa.Column('phone_hash', sa.String(length=64), nullable=True),
    sa.Column('phone_masked', sa.String(length=16), nullable=True),
    sa.Column('phone_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('ticket_id', sa.BigInteger(), nullable=True),
    sa.Column('booked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appointments')),
    sa.UniqueConstraint('code', name=op.f('uq_appointments_code'))
    )
    op.create_index('ix_appointments_slot', 'appointments', ['center_id', 'service_code', 'slot_start'], unique=False)
    op.create_table('business_days',
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.String(length=32), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('opened_by', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('center_id', 'business_date', name=op.f('pk_business_days'))
    )
    op.create_table('staff',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('post_title', sa.String(length=100), nullable=True),
    sa.Column('photo_url', sa.String(length=300), nullable=True),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('centers', postgresql.ARRAY(sa.String(length=32)), nullable=False),
    sa.Column('department', sa.String(length=32), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_event_sequence', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff')),
    comment="Read copy of identity's users, from user.upserted (never written here)"
    )
    op.create_table('tickets',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('service_code', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=12), nullable=False),
    sa.Column('lookup_code', sa.String(length=12), nullable=False, comment="random; with the id, the holder's lookup"),
    sa.Column('kind', sa.String(length=16), nullable=False, comment='walk_in | green | appointment | transferred'),
    sa.Column('channel', sa.String(length=8), nullable=False, comment='kiosk | staff | online'),
    sa.Column('status', sa.String(length=16), nullable=False, comment='waiting | called | serving | done | no_show | cancelled | expired'),
    sa.Column('duty_only', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('effective_arrival', sa.DateTime(timezone=True), nullable=False, comment="issue, check-in or requeue place: the wait's start"),
    sa.Column('id_number_hash', sa.String(length=64), nullable=True),
    sa.Column('id_number_masked', sa.String(length=32), nullable=True),
    sa.Column('phone_hash', sa.String(length=64), nullable=True),
    sa.Column('phone_masked', sa.String(length=16), nullable=True),
    sa.Column('phone_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('appointment_id', sa.BigInteger(), nullable=True),
    sa.Column('slot_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('checked_in_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('transferred_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('transferred_to_window', sa.String(length=16), nullable=True),
    sa.Column('transferred_to_service', sa.String(length=32), nullable=True),
    sa.Column('window', sa.String(length=16), nullable=True, comment='the window that called it last'),
    sa.Column('clerk_id', sa.String(length=32), nullable=True),
    sa.Column('post', sa.String(length=1), nullable=True),
    sa.Column('called_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recalls', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('requeues', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True, comment='done, cancelled, expired or transferred away'),
    sa.Column('served_s', sa.Integer(), server_default=sa.text('0'), nullable=False, comment='service seconds before transfers (for the monitor)'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tickets')),
    sa.UniqueConstraint('center_id', 'service_code', 'business_date', 'seq', name=op.f('uq_tickets_center_id_service_code_business_date_seq'))
    )
    op.create_index('ix_tickets_waiting', 'tickets', ['center_id', 'business_date'], unique=False, postgresql_where=sa.text("status = 'waiting'"))
    op.create_table('services',
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=4), nullable=False, comment='the letters before the number: A in A001'),
    sa.Column('department', sa.String(length=32), nullable=True),
    sa.Column('wait_threshold_minutes', sa.Integer(), nullable=False),
    sa.Column('default_service_minutes', sa.Integer(), nullable=False),
    sa.Column('daily_limit_per_person', sa.Integer(), nullable=True),
    sa.Column('slots', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False, comment='[AppointmentSlot]'),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['center_id'], ['centers.id'], name=op.f('fk_services_center_id_centers')),
    sa.PrimaryKeyConstraint('center_id', 'code', name=op.f('pk_services')),
    sa.UniqueConstraint('center_id', 'prefix', name=op.f('uq_services_center_id_prefix'))
    )
    op.create_table('windows',
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('number', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('department', sa.String(length=32), nullable=True),
    sa.Column('duty', sa.Boolean(), server_default=sa.text('false'), nullable=False, comment='综合值班窗口'),
    sa.Column('joint_approval', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('a_clerk', sa.String(length=32), nullable=True, comment="the A post's user id (AB角)"),
    sa.Column('b_clerk', sa.String(length=32), nullable=True, comment="the B post's user id"),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('state', sa.String(length=16), server_default=sa.text("'signed_out'"), nullable=False, comment='signed_out | open | away | closed'),
    sa.Column('clerk_id', sa.String(length=32), nullable=True, comment='who is signed in now'),
    sa.Column('post', sa.String(length=1), nullable=True, comment='A | B: the post of the signed-in clerk'),
    sa.Column('device', sa.String(length=32), nullable=True, comment='the terminal the clerk signed in at'),
    sa.Column('priority_streak', sa.Integer(), server_default=sa.text('0'), nullable=False, comment='green calls in a row (the N:1 rule)'),
    sa.Column('active_ticket_id', sa.BigInteger(), nullable=True, comment='the called or serving ticket'),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['center_id'], ['centers.id'], name=op.f('fk_windows_center_id_centers')),
    sa.PrimaryKeyConstraint('center_id', 'number', name=op.f('pk_windows'))
    )
    op.create_table('window_services',
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('window', sa.String(length=16), nullable=False),
    sa.Column('service_code', sa.String(length=32), nullable=False),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['center_id', 'service_code'], ['services.center_id', 'services.code'], name=op.f('fk_window_services_center_id_services')),
    sa.ForeignKeyConstraint(['center_id', 'window'], ['windows.center_id', 'windows.number'], name=op.f('fk_window_services_center_id_windows'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('center_id', 'window', 'service_code', name=op.f('pk_window_services'))
    )
    op.add_column('centers', sa.Column('settings', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False, comment='QueueSettings (shared/events/catalog.py); {}: defaults'))
    op.add_column('centers', sa.Column('schedule', postgresql.JSONB(astext_type=sa.Text()), nullable=True, comment='HallSchedule (shared/events/catalog.py); null: the default schedule'))


def downgrade() -> None:
    # reviewed by hand
    op.drop_column('centers', 'schedule')
    op.drop_column('centers', 'settings')
    op.drop_table('window_services')
    op.drop_table('windows')
    op.drop_table('services')
    op.drop_index('ix_tickets_waiting', table_name='tickets', postgresql_where=sa.text("status = 'waiting'"))
    op.drop_table('tickets')
    op.drop_table('staff')
    op.drop_table('business_days')
    op.drop_index('ix_appointments_slot', table_name='appointments')
    op.drop_table('appointments')
