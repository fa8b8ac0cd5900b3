"""complaints, ratings and bad-rating follow-ups

Revision ID: monitor_0005
Revises: monitor_0004
Create Date: 2026-12-03 07:05:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'monitor_0005'
down_revision: str | None = 'monitor_0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # written by hand (services/monitor/complaints/models.py)
    op.create_table('ratings',
    sa.Column('evaluation_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('ticket_id', sa.BigInteger(), nullable=False),
    sa.Column('window', sa.String(length=16), nullable=True),
    sa.Column('clerk_id', sa.String(length=32), nullable=True),
    sa.Column('post', sa.String(length=1), nullable=True),
    sa.Column('department', sa.String(length=32), nullable=True),
    sa.Column('service_code', sa.String(length=32), nullable=False),
    sa.Column('rating', sa.SmallInteger(), nullable=False, comment='5 非常满意 … 1 非常不满意'),
    sa.Column('case_no', sa.String(length=48), nullable=True),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False, comment='local date of the service (or of submitted_at)'),
    sa.PrimaryKeyConstraint('evaluation_id', name=op.f('pk_ratings')),
    comment="Read copy of queue's evaluations, from evaluation.submitted (never written here)"
    )
    op.create_index('ix_ratings_center_submitted', 'ratings', ['center_id', 'submitted_at'], unique=False)
    op.create_table('followups',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('evaluation_id', sa.BigInteger(), nullable=False),
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('ticket_id', sa.BigInteger(), nullable=False),
    sa.Column('rating', sa.SmallInteger(), nullable=False),
    sa.Column('window', sa.String(length=16), nullable=True),
    sa.Column('clerk_id', sa.String(length=32), nullable=True),
    sa.Column('department', sa.String(length=32), nullable=True),
    sa.Column('service_code', sa.String(length=32), nullable=False),
    sa.Column('case_no', sa.String(length=48), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False, comment='when the rating was submitted'),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False, comment='15 working days, 23:59:59 local'),
    sa.Column('status', sa.String(length=8), nullable=False, comment='open | done'),
    sa.Column('overdue', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('done_by', sa.String(length=32), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_followups')),
    sa.UniqueConstraint('evaluation_id', name=op.f('uq_followups_evaluation_id'))
    )
    op.create_index('ix_followups_center_status', 'followups', ['center_id', 'status', 'id'], unique=False)
    op.create_table('complaints',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=False),
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False, comment='phone | mailbox | public | in_person'),
    sa.Column('category', sa.String(length=50), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False, comment='simple | general | major'),
    sa.Column('window', sa.String(length=16), nullable=True),
    sa.Column('department', sa.String(length=32), nullable=True),
    sa.Column('case_no', sa.String(length=48), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('contact_kind', sa.String(length=8), nullable=True, comment='phone | email'),
    sa.Column('contact_hash', sa.String(length=64), nullable=True),
    sa.Column('contact_masked', sa.String(length=100), nullable=True),
    sa.Column('contact_encrypted', sa.Text(), nullable=True),
    sa.Column('contact_sealed', sa.Text(), nullable=True, comment='sealed for notify alone'),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=32), nullable=True, comment='None from the public page'),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False, comment='open | resolved | upheld | dismissed'),
    sa.Column('outcome', sa.Text(), nullable=True, comment='what the complainant is told'),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.String(length=32), nullable=True),
    sa.Column('on_time', sa.Boolean(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_complaints')),
    sa.UniqueConstraint('number', name=op.f('uq_complaints_number'))
    )
    op.create_index('ix_complaints_center_status', 'complaints', ['center_id', 'status', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_complaints_center_status', table_name='complaints')
    op.drop_table('complaints')
    op.drop_index('ix_followups_center_status', table_name='followups')
    op.drop_table('followups')
    op.drop_index('ix_ratings_center_submitted', table_name='ratings')
    op.drop_table('ratings')
