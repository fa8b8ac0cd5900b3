"""the monitor tree starts on the platform tables and the centre read copy (no tables of its own yet)

Where this service's own revisions begin (the next one revises monitor_0001). The schema it stands for is
that of the tree before issue 17 at its 0004.

Revision ID: monitor_0001
Revises:
Depends on: platform_0003, center_copy_0001
Create Date: 2026-11-26 00:57:07.249503
"""
from collections.abc import Sequence

revision: str = 'monitor_0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ('monitor',)
depends_on: str | Sequence[str] | None = ('platform_0003', 'center_copy_0001')


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
