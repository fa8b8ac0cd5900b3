"""staff copy: photo_url and department as wide as identity's users (500 and 64), so that no user.upserted
identity accepts is refused by the copy (a refused event would be dead-lettered and the clerk's sign stale)

Revision ID: queue_0003
Revises: queue_0002
Create Date: 2026-12-02 00:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'queue_0003'
down_revision: str | None = 'queue_0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # written by hand
    op.alter_column('staff', 'photo_url', existing_type=sa.String(length=300), type_=sa.String(length=500),
                    existing_nullable=True)
    op.alter_column('staff', 'department', existing_type=sa.String(length=32), type_=sa.String(length=64),
                    existing_nullable=True)


def downgrade() -> None:
    # written by hand: a longer value is cut (the copy is rebuilt from identity's events anyway)
    op.alter_column('staff', 'department', existing_type=sa.String(length=64), type_=sa.String(length=32),
                    existing_nullable=True, postgresql_using='left(department, 32)')
    op.alter_column('staff', 'photo_url', existing_type=sa.String(length=500), type_=sa.String(length=300),
                    existing_nullable=True, postgresql_using='left(photo_url, 300)')
