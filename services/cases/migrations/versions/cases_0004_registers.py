"""one-time notices, inquiries, agency

Revision ID: cases_0004
Revises: cases_0003
Create Date: 2026-12-03 06:30:00
"""
from collections.abc import Sequence

revision: str = 'cases_0004'
down_revision: str | None = 'cases_0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
