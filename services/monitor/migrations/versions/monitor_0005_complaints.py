"""complaints, ratings and bad-rating follow-ups

Revision ID: monitor_0005
Revises: monitor_0004
Create Date: 2026-12-03 07:05:00
"""
from collections.abc import Sequence

revision: str = 'monitor_0005'
down_revision: str | None = 'monitor_0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
