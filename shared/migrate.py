"""Alembic, one tree per service (services/<svc>/migrations), run under a PostgreSQL advisory lock so
that ten processes starting at once apply each migration exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared.db import advisory_key

ROOT = Path(__file__).resolve().parent.parent
SERVICES_WITH_DB = ("queue", "cases", "monitor", "notify")


def alembic_config(service: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "services" / service / "migrations"))
    cfg.attributes["url"] = url  # attributes, not the ini option: no %-interpolation of passwords
    cfg.attributes["service"] = service
    return cfg


def upgrade(service: str, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(service, url), revision)


def downgrade(service: str, url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(service, url), revision)


def check(service: str, url: str) -> None:
    """Raise if the models and the migrations disagree (alembic check)."""
    command.check(alembic_config(service, url))


async def upgrade_async(service: str, url: str) -> None:
    await asyncio.to_thread(upgrade, service, url)


def run_env(target_metadata: MetaData | list[MetaData]) -> None:
    """Body of every service's migrations/env.py."""
    from alembic import context

    url = context.config.attributes["url"]
    lock = advisory_key(f"hall:migrate:{context.config.attributes.get('service', '')}")

    def _run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True,
                          compare_server_default=True)
        with context.begin_transaction():
            # held until this transaction commits: a second process waits, then finds nothing to do
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})
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
    """`python -m shared.migrate upgrade|downgrade|check [service ...]`, URLs from each service's settings."""
    import importlib
    import sys

    action = sys.argv[1] if len(sys.argv) > 1 else "upgrade"
    services = sys.argv[2:] or list(SERVICES_WITH_DB)
    for service in services:
        settings = importlib.import_module(f"services.{service}.config").get_settings()
        from shared.db import ensure_database

        asyncio.run(ensure_database(settings.database_url))
        {"upgrade": upgrade, "downgrade": downgrade, "check": check}[action](service, settings.database_url)
        print(f"{service}: {action} ok")


if __name__ == "__main__":
    main()
