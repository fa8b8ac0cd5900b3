"""the service guide's fields, centre settings, imported cases

Revision ID: cases_0005
Revises: cases_0004
Create Date: 2026-12-03 06:30:00
"""
from collections.abc import Sequence

revision: str = 'cases_0005'
down_revision: str | None = 'cases_0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
