"""Alembic, one tree per service, run under a PostgreSQL advisory lock so that ten processes starting at
once apply each migration exactly once.

A service's tree is its own revisions (services/<svc>/migrations/versions, ids `<svc>_NNNN`, branch label
`<svc>`) plus the shared branches it is built on, each one folder of shared/migrations included through
Alembic's `version_locations` (SHARED_BRANCHES below):

- `platform` (platform_NNNN): the tables of shared/tables.py, which every service has: counters,
  idempotency keys, outbox, inbox, dead letters, timers, periodic jobs, calendar tables, audit log;
- `center_copy` (center_copy_NNNN): the read copy of the queue's centres (shared/readcopy.py), for the
  services that keep one; not queue, which owns the centres and migrates its own table.

A service's first revision `depends_on` the shared revisions its tables come after, so those are applied
first and downgraded last; `upgrade` goes to every head, so a new platform revision reaches every service
at its next upgrade without a change to its tree. A new service, identity say, gets the platform tables by
depending on the branch: `"identity": ("platform",)` in SHARED_BRANCHES, an env.py like the others', and
as the first revision of services/identity/migrations/versions

    revision = "identity_0001"
    down_revision = None
    branch_labels = ("identity",)
    depends_on = "platform_0003"  # the platform head it is written against

Later revisions: `command.revision(alembic_config("identity", url), "users", autogenerate=True,
head="identity@head")` writes the next one into the service's folder; `head="platform@head"` writes one
into shared/migrations/platform (after a change to shared/tables.py).

Until issue 17 each service's tree held its own copies of the platform revisions under the ids 0001-0004,
so the databases they migrated record those ids. LEGACY_REVISIONS says which revisions of the new layout
hold the same schema; `run_env` rewrites `alembic_version` to them, under the migration lock and in the
migration's transaction, before Alembic reads it. No table is touched, so no row can be lost.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared.db import advisory_key

ROOT = Path(__file__).resolve().parent.parent
SHARED_MIGRATIONS = ROOT / "shared" / "migrations"

# the shared branches (folders of shared/migrations) each service's tree is built on
SHARED_BRANCHES: dict[str, tuple[str, ...]] = {
    "queue": ("platform",),
    "cases": ("platform", "center_copy"),
    "monitor": ("platform", "center_copy"),
    "notify": ("platform", "center_copy"),
    "identity": ("platform",),
}
SERVICES_WITH_DB = tuple(SHARED_BRANCHES)

# alembic_version of a database migrated by a tree before issue 17 -> the rows that record the same schema
# (as Alembic writes them: a revision that another applied revision depends on is not listed)
LEGACY_REVISIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "queue": {"0001": ("queue_0001",), "0002": ("platform_0002", "queue_0001"),
              "0003": ("platform_0003", "queue_0001")},
    **{service: {"0001": ("platform_0001",), "0002": ("platform_0002",), "0003": ("platform_0003",),
                 "0004": (f"{service}_0001",)} for service in ("cases", "monitor", "notify")},
}


def alembic_config(service: str, url: str) -> Config:
    cfg = Config()
    migrations = ROOT / "services" / service / "migrations"
    locations = [migrations / "versions", *(SHARED_MIGRATIONS / branch for branch in SHARED_BRANCHES[service])]
    cfg.set_main_option("script_location", str(migrations))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(str(p).replace("%", "%%") for p in locations))
    cfg.attributes["url"] = url  # attributes, not the ini option: no %-interpolation of passwords
    cfg.attributes["service"] = service
    return cfg


def upgrade(service: str, url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(service, url), revision)


def downgrade(service: str, url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(service, url), revision)


def check(service: str, url: str) -> None:
    """Raise if the models and the migrations disagree (alembic check)."""
    command.check(alembic_config(service, url))


async def upgrade_async(service: str, url: str) -> None:
    await asyncio.to_thread(upgrade, service, url)


def adopt_legacy_revision(connection: Connection, service: str, script: ScriptDirectory) -> None:
    """Rewrite an `alembic_version` written by the service's tree before issue 17 to the same schema's
    revisions in this layout. Ids this tree knows (the old trees themselves, in tests) are left alone."""
    legacy = LEGACY_REVISIONS.get(service, {})
    if not legacy or not inspect(connection).has_table("alembic_version"):
        return
    current = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    known = {revision.revision for revision in script.walk_revisions()}
    if len(current) != 1 or current[0] not in legacy or current[0] in known:
        return
    connection.execute(text("DELETE FROM alembic_version"))
    connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
                       [{"v": v} for v in legacy[current[0]]])


def run_env(target_metadata: MetaData | list[MetaData]) -> None:
    """Body of every service's migrations/env.py."""
    from alembic import context

    url = context.config.attributes["url"]
    service = context.config.attributes.get("service", "")
    lock = advisory_key(f"hall:migrate:{service}")

    def _run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True,
                          compare_server_default=True)
        with context.begin_transaction():
            # held until this transaction commits: a second process waits, then finds nothing to do
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})
            adopt_legacy_revision(connection, service, context.script)
            context.run_migrations()

    async def _main() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                await conn.run_sync(_run)
                await conn.commit()
        finally:
            await engine.dispose()

    asyncio.run(_main())


def main() -> None:
    """`python -m shared.migrate upgrade|downgrade|check [service ...]`, each URL from `<SVC>_DATABASE_URL` (no
    other setting is needed: compose's `migrate` and Kubernetes' `hall-migrate` hold only the URLs)."""
    import importlib
    import sys

    from shared.settings import database_url_of

    action = sys.argv[1] if len(sys.argv) > 1 else "upgrade"
    services = sys.argv[2:] or list(SERVICES_WITH_DB)
    for service in services:
        url = database_url_of(importlib.import_module(f"services.{service}.config").Settings)
        from shared.db import ensure_database

        asyncio.run(ensure_database(url))
        {"upgrade": upgrade, "downgrade": downgrade, "check": check}[action](service, url)
        print(f"{service}: {action} ok")


if __name__ == "__main__":
    main()
