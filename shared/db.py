"""PostgreSQL access: one async engine per process with explicit pool sizes, and a request session that
commits before the response is sent (a failed commit is a 5xx, never a 201 for nothing)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import MetaData, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.errors import NotFound

T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 5, pool_timeout: float = 10.0,
                pre_ping: bool = True, application_name: str = "hall") -> AsyncEngine:
    """The process's engine. `pre_ping` tests each connection as it leaves the pool (one more round trip
    per transaction); without it a connection the server dropped fails the one request that meets it, and
    SQLAlchemy then replaces the whole pool's connections."""
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=pre_ping,
        connect_args={"server_settings": {"application_name": application_name, "timezone": "UTC"}},
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work. scope="function" runs the commit before the response is sent."""
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with maker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under `session`, inside the session's transaction, for the few statements
    a busy route sends straight to the driver: a prepared asyncpg statement costs about a fifth of the
    CPU of the same statement through the ORM (bench/queue_bench.py's profile). What is sent here commits
    or rolls back with the session; the ORM's identity map does not see it, so its caller does not mix
    the two on the same rows.

    SQLAlchemy sends its BEGIN with its first statement; when none has been sent yet it is begun here,
    through the adapter, so that the session's commit or rollback ends it. What the session holds unflushed
    is flushed first, so that a statement sent here sees it."""
    await session.flush()
    conn = await session.connection()
    fairy = await conn.get_raw_connection()
    adapted = fairy.dbapi_connection
    if adapted._transaction is None:  # type: ignore[union-attr]  # SQLAlchemy's asyncpg adapter
        await adapted._start_transaction()  # type: ignore[union-attr]
    return fairy.driver_connection  # type: ignore[return-value]


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock from a readable name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


async def try_advisory_lock(conn: AsyncConnection, name: str) -> bool:
    return bool((await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": advisory_key(name)})).scalar())


async def database_ready(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def asyncpg_dsn(url: str, database: str | None = None) -> str:
    """The plain libpq DSN asyncpg takes, from a SQLAlchemy URL (optionally for another database)."""
    u = make_url(url).set(drivername="postgresql")
    if database is not None:
        u = u.set(database=database)
    return u.render_as_string(hide_password=False)


async def ensure_database(url: str) -> bool:
    """Create the URL's database on its server if it is missing (dev and test set-up). True if created."""
    name = make_url(url).database
    assert name, "database URL names no database"
    conn = await asyncpg.connect(asyncpg_dsn(url, "postgres"))
    try:
        # several processes may start at once: serialise creation on the server
        await conn.execute("SELECT pg_advisory_lock($1)", advisory_key("hall:create-database"))
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.execute("SELECT pg_advisory_unlock($1)", advisory_key("hall:create-database"))
        return not exists
    finally:
        await conn.close()


async def get_or_404(session: AsyncSession, model: type[T], key: Any, *, field: str, what: str | None = None,
                     for_update: bool = False) -> T:
    """The row of `model` with primary key `key` (locked `FOR UPDATE` if asked), or a 404 problem naming
    `field`."""
    found = await session.get(model, key, with_for_update=for_update)
    if found is None:
        raise NotFound(f"no {what or model.__name__.lower()} {key}", field=field)
    return found
