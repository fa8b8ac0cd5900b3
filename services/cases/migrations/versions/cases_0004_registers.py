"""one-time notices, inquiries, agency

Revision ID: cases_0004
Revises: cases_0003
Create Date: 2026-12-03 06:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'cases_0004'
down_revision: str | None = 'cases_0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # written by hand from services/cases/registers/models.py
    op.create_table('notices',
    sa.Column('notice_no', sa.String(length=48), nullable=False,
              comment='<center>-YC-<yyyymmdd>-<4-digit daily sequence>'),
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('item_code', sa.String(length=32), nullable=False),
    sa.Column('item_name', sa.String(length=200), nullable=False, comment="the item's name when issued"),
    sa.Column('department', sa.String(length=32), nullable=False),
    sa.Column('missing', postgresql.JSONB(astext_type=sa.Text()), nullable=False,
              comment="[{code: the item's material code or null, name}] everything missing, at once"),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False, comment="the local date, the number's day"),
    sa.Column('issued_by', sa.String(length=32), nullable=False),
    sa.Column('issued_by_name', sa.String(length=100), nullable=False),
    sa.Column('window', sa.String(length=16), nullable=True),
    sa.Column('applicant_name_masked', sa.String(length=100), nullable=False),
    sa.Column('applicant_name_encrypted', sa.LargeBinary(), nullable=False),
    sa.Column('applicant_hash', sa.String(length=64), nullable=False, comment='keyed hash of the ID number'),
    sa.Column('id_number_masked', sa.String(length=32), nullable=False),
    sa.Column('id_number_encrypted', sa.LargeBinary(), nullable=False),
    sa.Column('phone_masked', sa.String(length=16), nullable=True),
    sa.Column('phone_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('case_no', sa.String(length=48), nullable=True, comment='the case accepted on this notice, once'),
    sa.ForeignKeyConstraint(['center_id', 'item_code'], ['items.center_id', 'items.code'],
                            name=op.f('fk_notices_center_id_items')),
    sa.PrimaryKeyConstraint('notice_no', name=op.f('pk_notices')),
    sa.UniqueConstraint('case_no', name=op.f('uq_notices_case_no'))
    )
    op.create_index('ix_notices_center_day', 'notices', ['center_id', 'issued_on', 'notice_no'], unique=False)

    op.create_table('inquiries',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False, comment='on_site | phone | email'),
    sa.Column('item_code', sa.String(length=32), nullable=True),
    sa.Column('department', sa.String(length=32), nullable=True, comment="the item's department"),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False, comment='answered | referred | pending'),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('referred_window', sa.String(length=16), nullable=True),
    sa.Column('promised_reply_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('taken_by', sa.String(length=32), nullable=False, comment='the person first asked (首问责任人)'),
    sa.Column('taken_by_name', sa.String(length=100), nullable=False),
    sa.Column('window', sa.String(length=16), nullable=True, comment="the taker's window, if signed in at one"),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_by', sa.String(length=32), nullable=True),
    sa.Column('on_time', sa.Boolean(), nullable=True, comment='a pending one, answered by its promise'),
    sa.Column('contact_kind', sa.String(length=8), nullable=True, comment='phone | email'),
    sa.Column('contact_masked', sa.String(length=120), nullable=True),
    sa.Column('contact_encrypted', sa.LargeBinary(), nullable=True),
    sa.CheckConstraint("status IN ('answered', 'referred', 'pending')", name=op.f('ck_inquiries_status_known')),
    sa.CheckConstraint("status <> 'pending' OR promised_reply_at IS NOT NULL",
                       name=op.f('ck_inquiries_pending_has_promise')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inquiries'))
    )
    op.create_index('ix_inquiries_center_registered', 'inquiries', ['center_id', 'registered_at', 'id'],
                    unique=False)
    op.create_index('ix_inquiries_pending_promise', 'inquiries', ['center_id', 'promised_reply_at'], unique=False,
                    postgresql_where=sa.text("status = 'pending'"))

    op.create_table('case_agencies',
    sa.Column('case_no', sa.String(length=48), nullable=False),
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('mandator_masked', sa.String(length=200), nullable=False, comment='who mandates (委托人), masked'),
    sa.Column('mandator_encrypted', sa.LargeBinary(), nullable=False),
    sa.Column('mandate_reference', sa.String(length=64), nullable=False,
              comment="the mandate's number (委托书编号)"),
    sa.Column('mandate_signed_on', sa.Date(), nullable=False),
    sa.Column('mandate_scope', sa.Text(), nullable=False, comment='what the agent may do (委托事项)'),
    sa.Column('agent_id', sa.String(length=32), nullable=False),
    sa.Column('agent_name', sa.String(length=100), nullable=False),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('assigned_by', sa.String(length=32), nullable=False),
    sa.Column('handed_back_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('handed_back_by', sa.String(length=32), nullable=True),
    sa.Column('fees_settled', sa.String(length=200), nullable=True, comment='as on the 承办单: 免费, or an amount'),
    sa.Column('hand_back_note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['case_no'], ['cases.case_no'], name=op.f('fk_case_agencies_case_no_cases')),
    sa.PrimaryKeyConstraint('case_no', name=op.f('pk_case_agencies'))
    )


def downgrade() -> None:
    op.drop_table('case_agencies')
    op.drop_index('ix_inquiries_pending_promise', table_name='inquiries',
                  postgresql_where=sa.text("status = 'pending'"))
    op.drop_index('ix_inquiries_center_registered', table_name='inquiries')
    op.drop_table('inquiries')
    op.drop_index('ix_notices_center_day', table_name='notices')
    op.drop_table('notices')
