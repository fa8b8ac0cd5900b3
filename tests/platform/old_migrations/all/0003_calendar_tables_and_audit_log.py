"""calendar tables and audit log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 00:50:49.966694
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # reviewed by hand
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('entity', sa.String(length=60), nullable=False),
    sa.Column('entity_id', sa.String(length=200), nullable=False),
    sa.Column('center_id', sa.String(length=32), nullable=True),
    sa.Column('before', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('after', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log')),
    comment='Append-only: who changed what, when, from which state to which, and why'
    )
    op.create_index('ix_audit_log_entity', 'audit_log', ['entity', 'entity_id', 'id'], unique=False)
    op.create_table('calendar_overrides',
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('working', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('center_id', 'day', name=op.f('pk_calendar_overrides')),
    comment="A centre's own holiday (typhoon closure) or working day (weekend opening)"
    )
    op.create_table('calendar_scopes',
    sa.Column('scope', sa.String(length=60), nullable=False, comment='center:<id> | year:<yyyy> | package'),
    sa.Column('version', sa.BigInteger(), nullable=False, comment='the calendar version that last set this scope'),
    sa.Column('fingerprint', sa.String(length=64), nullable=True, comment='package scope: which official years the package carries'),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('scope', name=op.f('pk_calendar_scopes')),
    comment="Each calendar scope's latest version; max(version) tells a process its cache is stale"
    )
    op.create_table('calendar_years',
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('days', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='[{"date", "kind": holiday|working, "name"}]'),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('year', name=op.f('pk_calendar_years')),
    comment="A whole year's official schedule imported for a year the package does not carry"
    )


def downgrade() -> None:
    # reviewed by hand
    op.drop_table('calendar_years')
    op.drop_table('calendar_scopes')
    op.drop_table('calendar_overrides')
    op.drop_index('ix_audit_log_entity', table_name='audit_log')
    op.drop_table('audit_log')
