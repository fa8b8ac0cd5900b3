"""what the KPIs count of a case: its item's limits and its outcome (case.completed)

Revision ID: monitor_0006
Revises: monitor_0005
Create Date: 2026-12-03 07:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'monitor_0006'
down_revision: str | None = 'monitor_0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # written by hand
    op.add_column('case_clocks', sa.Column('promised_limit_days', sa.SmallInteger(), nullable=True))
    op.add_column('case_clocks', sa.Column('legal_limit_days', sa.SmallInteger(), nullable=True))
    op.add_column('case_clocks', sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('case_clocks', sa.Column('result', sa.String(length=10), nullable=True,
                                           comment='approved | refused'))
    op.add_column('case_clocks', sa.Column('completed_late', sa.Boolean(), nullable=True))
    op.add_column('case_clocks', sa.Column('overdue_working_days', sa.Integer(), nullable=True))
    op.create_index('ix_case_clocks_accepted', 'case_clocks', ['center_id', 'accepted_at'], unique=False)
    op.create_index('ix_case_clocks_completed', 'case_clocks', ['center_id', 'completed_at'], unique=False,
                    postgresql_where=sa.text('completed_at IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_case_clocks_completed', table_name='case_clocks',
                  postgresql_where=sa.text('completed_at IS NOT NULL'))
    op.drop_index('ix_case_clocks_accepted', table_name='case_clocks')
    for column in ('overdue_working_days', 'completed_late', 'result', 'completed_at', 'legal_limit_days',
                   'promised_limit_days'):
        op.drop_column('case_clocks', column)
