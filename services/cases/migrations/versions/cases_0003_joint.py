"""joint cases: sub-tasks, opinions, joint reviews; the windows' joint-approval flag

Revision ID: cases_0003
Revises: cases_0002
Create Date: 2026-12-03 06:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'cases_0003'
down_revision: str | None = 'cases_0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # written by hand, checked against the models with `alembic check`
    op.add_column('windows', sa.Column('joint_approval', sa.Boolean(), server_default=sa.text('false'),
                                       nullable=False, comment='联办: joint items are accepted here'))
    op.create_table('joint_reviews',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('case_no', sa.String(length=48), nullable=False),
    sa.Column('held_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('invited', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='department codes'),
    sa.Column('attended', postgresql.JSONB(astext_type=sa.Text()), nullable=False,
              comment='department codes present'),
    sa.Column('absent', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='invited and not present'),
    sa.Column('recorded_by', sa.String(length=32), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_no'], ['cases.case_no'], name=op.f('fk_joint_reviews_case_no_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_joint_reviews'))
    )
    op.create_index(op.f('ix_joint_reviews_case_no'), 'joint_reviews', ['case_no'], unique=False)
    op.create_table('joint_subtasks',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('case_no', sa.String(length=48), nullable=False),
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('department', sa.String(length=32), nullable=False),
    sa.Column('item_code', sa.String(length=32), nullable=True, comment='the department\'s item whose fees it bills'),
    sa.Column('limit_days', sa.Integer(), nullable=False, comment='working days from the dispatch date'),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dispatched_on', sa.Date(), nullable=False, comment='the local dispatch date (not counted)'),
    sa.Column('dispatched_by', sa.String(length=32), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False, comment="moved by the lead case's pauses"),
    sa.Column('status', sa.String(length=20), nullable=False, comment='pending | answered | deemed_consented'),
    sa.Column('opinion', sa.String(length=10), nullable=True, comment='agree | disagree, when answered'),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_by', sa.String(length=32), nullable=True, comment="the clerk, or 'system' when deemed"),
    sa.Column('on_time', sa.Boolean(), nullable=True),
    sa.Column('deemed_cause', sa.String(length=10), nullable=True, comment='timeout | absent, when deemed'),
    sa.Column('review_id', sa.BigInteger(), nullable=True, comment='the review it was absent from'),
    sa.CheckConstraint("status IN ('pending', 'answered', 'deemed_consented')",
                       name=op.f('ck_joint_subtasks_status_known')),
    sa.CheckConstraint("(status = 'answered') = (opinion IS NOT NULL)",
                       name=op.f('ck_joint_subtasks_answered_has_opinion')),
    sa.ForeignKeyConstraint(['case_no'], ['cases.case_no'], name=op.f('fk_joint_subtasks_case_no_cases')),
    sa.ForeignKeyConstraint(['center_id', 'department'], ['departments.center_id', 'departments.code'],
                            name=op.f('fk_joint_subtasks_center_id_departments')),
    sa.ForeignKeyConstraint(['center_id', 'item_code'], ['items.center_id', 'items.code'],
                            name=op.f('fk_joint_subtasks_center_id_items')),
    sa.ForeignKeyConstraint(['review_id'], ['joint_reviews.id'], name=op.f('fk_joint_subtasks_review_id_joint_reviews')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_joint_subtasks')),
    sa.UniqueConstraint('case_no', 'department', name=op.f('uq_joint_subtasks_case_no_department'))
    )
    op.create_index('ix_joint_subtasks_department', 'joint_subtasks', ['center_id', 'department', 'status'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_joint_subtasks_department', table_name='joint_subtasks')
    op.drop_table('joint_subtasks')
    op.drop_index(op.f('ix_joint_reviews_case_no'), table_name='joint_reviews')
    op.drop_table('joint_reviews')
    op.drop_column('windows', 'joint_approval')
