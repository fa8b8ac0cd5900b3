"""the hall read model: windows, tickets, services, appointment requests, inquiries

Revision ID: monitor_0004
Revises: monitor_0003
Create Date: 2026-12-03 07:05:00
"""
from collections.abc import Sequence

revision: str = 'monitor_0004'
down_revision: str | None = 'monitor_0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
