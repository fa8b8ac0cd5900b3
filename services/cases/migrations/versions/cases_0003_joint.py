"""joint cases: sub-tasks, opinions, joint reviews

Revision ID: cases_0003
Revises: cases_0002
Create Date: 2026-12-03 06:30:00
"""
from collections.abc import Sequence

revision: str = 'cases_0003'
down_revision: str | None = 'cases_0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
