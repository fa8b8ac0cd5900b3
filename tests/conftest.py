"""Session-wide test infrastructure: a real PostgreSQL (embedded 18, or HALL_TEST_DATABASE_URL), fresh
secrets, per-service databases migrated once and truncated per test, apps over ASGI, token minting."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import asyncpg
import httpx
import pytest

from shared import clock as clock_module
from shared import devsecrets
from shared.auth import mint_token
from shared.db import asyncpg_dsn, ensure_database
from shared.devinfra.kafka import EmbeddedKafka
from shared.devinfra.postgres import EmbeddedPostgres, free_port
from shared.migrate import upgrade

pytest_plugins = [
    "tests.plugins.secret_scan",  # fails the run if a log line holds a secret
    "tests.plugins.pii_scan",  # fails it if a row of notify's holds a phone or ID number in clear
]

ROOT = Path(__file__).resolve().parent.parent
RUN_ID = f"{os.getpid()}"



@pytest.fixture(scope="session")
def secrets() -> dict[str, str]:
    """Fresh development secrets for this run, exported to the environment (settings read them there)."""
    values = devsecrets.generate()
    os.environ.update(values)
    return values


@pytest.fixture(scope="session")
def pg_server(secrets: dict[str, str]) -> Iterator[str]:
    """URL of the PostgreSQL server under test (no database part kept)."""
    external = os.environ.get("HALL_TEST_DATABASE_URL")
    if external:
        yield external
        return
    data = ROOT / "var" / f"test-pg-{RUN_ID}"
    server = EmbeddedPostgres(data, free_port(), fast_unsafe=True)
    server.start()
    try:
        yield server.url()
    finally:
        server.destroy()


def database_url(server_url: str, name: str) -> str:
    return server_url.rsplit("/", 1)[0] + "/" + name


async def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(asyncpg_dsn(url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run blocking set-up (which may call asyncio.run) off the test's event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


class ServiceDatabase:
    """One migrated database of a service for the whole session; `reset()` empties its tables."""

    before_emptied: ClassVar[list[Callable[[ServiceDatabase], Awaitable[None]]]] = []
    """Run with the database before its rows go, at each `reset()` and before the session drops it (the
    personal-data scan, tests/plugins/pii_scan.py, reads notify's rows there)."""

    def __init__(self, service: str, url: str) -> None:
        self.service = service
        self.url = url
        self.dsn = asyncpg_dsn(url)

    async def reset(self) -> None:
        for hook in self.before_emptied:
            await hook(self)
        conn = await asyncpg.connect(self.dsn)
        try:
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")
            if tables:
                names = ", ".join(f'"{r["tablename"]}"' for r in tables)
                # an append-only table's trigger refuses TRUNCATE (cases' case_history); a test's reset is the
                # one caller that may empty it, as a superuser with triggers set aside for this session
                await conn.execute("SET session_replication_role = replica")
                await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()

    async def drop(self) -> None:
        for hook in self.before_emptied:
            await hook(self)
        await drop_database(self.url)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()


@pytest.fixture(scope="session")
def service_databases(pg_server: str) -> Iterator[Callable[[str], ServiceDatabase]]:
    """`service_databases("queue")`: that service's test database, created and migrated on first use."""
    made: dict[str, ServiceDatabase] = {}

    def create(service: str) -> ServiceDatabase:
        url = database_url(pg_server, f"t{RUN_ID}_{service}")
        asyncio.run(drop_database(url))
        asyncio.run(ensure_database(url))
        upgrade(service, url)
        return ServiceDatabase(service, url)

    def get(service: str) -> ServiceDatabase:
        if service not in made:
            # tests call this from inside a running loop; alembic's env runs its own: use a thread
            made[service] = in_thread(create, service)
        return made[service]

    yield get
    for db in made.values():
        in_thread(lambda d: asyncio.run(d.drop()), db)


@pytest.fixture
def fixed_clock() -> Iterator[clock_module.FixedClock]:
    """A fixed clock at Thu 2026-02-12 09:00 Asia/Shanghai, installed as the process clock."""
    fixed = clock_module.FixedClock(datetime(2026, 2, 12, 1, 0, tzinfo=UTC))
    previous = clock_module.set_clock(fixed)
    yield fixed
    clock_module.set_clock(previous)


class Tokens:
    def __init__(self, private_key: str) -> None:
        self.private_key = private_key

    def mint(self, role: str, centers: list[str] | None = None, *, ttl: timedelta = timedelta(minutes=15),
             **claims: Any) -> str:
        return mint_token(self.private_key, subject=claims.pop("subject", f"test-{role}"), role=role,
                          centers=centers, ttl=ttl, **claims)

    def headers(self, role: str, centers: list[str] | None = None, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.mint(role, centers, **claims)}"}


@pytest.fixture(scope="session")
def tokens(secrets: dict[str, str]) -> Tokens:
    return Tokens(secrets["GATEWAY_JWT_PRIVATE_KEY"])


DATABASELESS = frozenset({"terminals"})


def service_settings(service: str, db: ServiceDatabase, **overrides: Any) -> Any:
    import importlib

    config = importlib.import_module(f"services.{service}.config")
    return config.Settings(database_url=db.url, migrate_on_start=False, **overrides)


@asynccontextmanager
async def running_app(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An app with its lifespan run, behind an httpx client over ASGI."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # see the 500, as a client would
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
def service_client(service_databases: Callable[[str], ServiceDatabase], fixed_clock: clock_module.FixedClock):
    """`async with service_client("queue") as client:` a fresh (emptied) service over ASGI, fixed clock."""

    @asynccontextmanager
    async def make(service: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        import importlib

        main = importlib.import_module(f"services.{service}.main")
        if service in DATABASELESS:  # the terminals' pages: nothing to reset or migrate
            db = None
            config = importlib.import_module(f"services.{service}.config")
            app = main.create_app(config.Settings(**overrides), clock=fixed_clock)
        else:
            db = service_databases(service)
            await db.reset()
            app = main.create_app(service_settings(service, db, **overrides), clock=fixed_clock)
        async with running_app(app) as client:
            client.app = app  # type: ignore[attr-defined]
            client.db = db  # type: ignore[attr-defined]
            yield client

    return make


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for stale in (ROOT / "var").glob(f"test-pg-{RUN_ID}"):
        shutil.rmtree(stale, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka() -> Iterator[EmbeddedKafka]:
    """A real Tansu broker on a free port for the session. `kafka.restart()` empties it (new cluster id)."""
    broker = EmbeddedKafka(free_port(), ROOT / "var" / f"test-kafka-{RUN_ID}.log")
    (ROOT / "var").mkdir(exist_ok=True)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
