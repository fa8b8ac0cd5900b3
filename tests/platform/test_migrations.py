"""Every service's Alembic tree: upgrade head, downgrade base, upgrade head, and `alembic check` (models and
migrations agree); ten processes migrating one fresh database at once do not race."""

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from shared import migrate
from shared.db import ensure_database
from tests.conftest import RUN_ID, database_url, drop_database, in_thread

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.pg


def _fresh(pg_server: str, name: str) -> str:
    url = database_url(pg_server, f"t{RUN_ID}_{name}")

    def make() -> None:
        asyncio.run(drop_database(url))
        asyncio.run(ensure_database(url))

    in_thread(make)
    return url


def _tables(url: str) -> set[str]:
    import asyncpg

    from shared.db import asyncpg_dsn

    async def fetch() -> set[str]:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            return {r["tablename"] for r in rows}
        finally:
            await conn.close()

    return in_thread(lambda: asyncio.run(fetch()))


@pytest.mark.parametrize("service", migrate.SERVICES_WITH_DB)
def test_upgrade_downgrade_upgrade_and_check(pg_server, service):
    url = _fresh(pg_server, f"mig_{service}")
    try:
        in_thread(migrate.upgrade, service, url)
        assert {"outbox", "inbox", "daily_counters"} <= _tables(url)
        in_thread(migrate.check, service, url)
        in_thread(migrate.downgrade, service, url)
        assert _tables(url) <= {"alembic_version"}
        in_thread(migrate.upgrade, service, url)
        in_thread(migrate.check, service, url)
    finally:
        in_thread(lambda: asyncio.run(drop_database(url)))


def test_check_fails_when_a_model_has_no_migration(pg_server):
    from sqlalchemy import Column, Integer, Table

    from shared import tables

    url = _fresh(pg_server, "mig_drift")
    extra = Table("not_migrated", tables.metadata, Column("id", Integer, primary_key=True))
    try:
        in_thread(migrate.upgrade, "monitor", url)
        with pytest.raises(Exception, match="not_migrated|New upgrade operations"):
            in_thread(migrate.check, "monitor", url)
    finally:
        tables.metadata.remove(extra)
        in_thread(lambda: asyncio.run(drop_database(url)))


def test_ten_processes_migrating_at_once_do_not_race(pg_server):
    url = _fresh(pg_server, "mig_race")
    code = f"from shared.migrate import upgrade; upgrade('queue', {url!r})"
    try:
        procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
                 for _ in range(10)]
        outputs = [p.communicate(timeout=240)[0].decode() for p in procs]
        assert [p.returncode for p in procs] == [0] * 10, "\n".join(outputs)
        assert {"centers", "outbox"} <= _tables(url)
    finally:
        in_thread(lambda: asyncio.run(drop_database(url)))
