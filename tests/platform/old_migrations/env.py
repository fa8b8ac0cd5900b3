"""Alembic environment of the service trees as they were before issue 17, frozen for the migration tests.

The revision files are copies of services/<svc>/migrations/versions at commit c6049d7, unchanged but for
their Create Date line in some: `all/` was in every tree, `queue/` in queue's, `read_copies/` in cases',
monitor's and notify's (those three trees were the same). tests/platform/test_migrations.py checks them
against that commit when the clone has it. Upgrade and downgrade only: no models are needed.
"""

from shared.migrate import run_env

run_env([])
