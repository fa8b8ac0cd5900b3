"""Dead letters: list them, replay a poison event and the events parked behind it, or discard one.

A consumer (shared.events.consumer) writes a poison event as a `dead_letters` row of kind "poison" and,
while that row is open, every later event of the same key as kind "parked". Replaying works per key: it
re-applies the key's open rows in their original order (by id), each at most once (the inbox), and
marks each `resolved_at` as it goes, one transaction per row. If a row still fails, it stops there and
keeps that row (now the key's poison) open with the new error; the rows behind it stay parked.
Replaying by the id of any row of a key replays the whole key from its first open row, because applying
a parked event before the poison ahead of it would break the key's order.

Replay runs wherever it is asked for (the admin endpoint in the API process, a script), concurrently
with the running consumer: both lock the key's open rows (the consumer share-locks them before
parking; a replay locks the row it resolves, and takes an advisory lock on the key against a second
replay), so an event arriving during a replay is either parked and then replayed, or applied after it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import clock
from shared.auth import Principal, Role, require
from shared.db import SessionDep, advisory_key
from shared.errors import Conflict, NotFound, ServiceUnavailable
from shared.events.consumer import ConsumerSpec, Handler, claim, describe_error, is_transient, refresh_gauges
from shared.events.envelope import Envelope
from shared.tables import dead_letters

HandlerRegistry = Mapping[str, Mapping[str, Handler]]
"""consumer id (`<service>.<name>`) -> event type -> handler: what a replay applies events with."""


def handler_registry(service: str, specs: Iterable[ConsumerSpec]) -> dict[str, Mapping[str, Handler]]:
    """The registry of a service's consumers, e.g. `handler_registry("cases", consumers.CONSUMERS)`."""
    return {f"{service}.{spec.name}": spec.handlers for spec in specs}


@dataclass(frozen=True)
class DeadLetter:
    id: int
    consumer: str
    key: str
    event_id: uuid.UUID
    kind: str
    envelope: dict[str, Any]
    error: str | None
    created_at: datetime
    resolved_at: datetime | None

    @property
    def type(self) -> str | None:
        return self.envelope.get("type")


@dataclass
class ReplayResult:
    consumer: str
    key: str
    applied: list[int] = field(default_factory=list)  # dead-letter ids resolved by this replay, in order
    failed_id: int | None = None  # the row that failed again (and stays open), if any
    error: str | None = None

    @property
    def resolved(self) -> bool:
        return self.failed_id is None


class DeadLetterNotFound(LookupError):
    """No dead letter with that id (404 over HTTP)."""


class AlreadyResolved(Exception):
    """The dead letter was replayed or discarded already (409 over HTTP)."""


# --- reading ---------------------------------------------------------------------------------------------

def _dead_letter(row: Any) -> DeadLetter:
    return DeadLetter(id=row.id, consumer=row.consumer, key=row.key, event_id=row.event_id, kind=row.kind,
                      envelope=row.envelope, error=row.error, created_at=row.created_at,
                      resolved_at=row.resolved_at)


async def get_dead_letter(session: AsyncSession, dead_letter_id: int) -> DeadLetter | None:
    row = (await session.execute(select(dead_letters).where(dead_letters.c.id == dead_letter_id))).first()
    return _dead_letter(row) if row is not None else None


async def list_dead_letters(session: AsyncSession, *, consumer: str | None = None, key: str | None = None,
                            include_resolved: bool = False, limit: int = 100,
                            before_id: int | None = None) -> list[DeadLetter]:
    """Dead letters, newest first; open ones only unless `include_resolved`. Page with `before_id`."""
    stmt = select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)
    if consumer is not None:
        stmt = stmt.where(dead_letters.c.consumer == consumer)
    if key is not None:
        stmt = stmt.where(dead_letters.c.key == key)
    if not include_resolved:
        stmt = stmt.where(dead_letters.c.resolved_at.is_(None))
    if before_id is not None:
        stmt = stmt.where(dead_letters.c.id < before_id)
    return [_dead_letter(row) for row in (await session.execute(stmt)).all()]


# --- replaying -------------------------------------------------------------------------------------------

async def _lock_key(session: AsyncSession, consumer: str, key: str) -> None:
    """One replay of a key at a time (until the transaction ends)."""
    lock = advisory_key(f"hall:dead-letters:{consumer}:{key}")
    await session.execute(select(func.pg_advisory_xact_lock(lock)))


async def _first_open(session: AsyncSession, consumer: str, key: str) -> Any:
    stmt = (select(dead_letters)
            .where(dead_letters.c.consumer == consumer, dead_letters.c.key == key,
                   dead_letters.c.resolved_at.is_(None))
            .order_by(dead_letters.c.id).limit(1).with_for_update())
    return (await session.execute(stmt)).first()


async def replay_key(sessionmaker: async_sessionmaker[AsyncSession], handlers: HandlerRegistry,
                     consumer: str, key: str) -> ReplayResult:
    """Re-apply the open dead letters of (consumer, key) in order, each once; stop at the first that fails.

    Transient failures (the database away) are raised, leaving the rest open for a later replay.
    """
    if consumer not in handlers:
        raise LookupError(f"no handlers known for consumer {consumer!r}")
    by_type = handlers[consumer]
    result = ReplayResult(consumer, key)
    while True:
        row: Any = None
        try:
            async with sessionmaker() as session, session.begin():
                await _lock_key(session, consumer, key)
                row = await _first_open(session, consumer, key)
                if row is None:
                    break
                envelope = Envelope.model_validate(row.envelope)
                if await claim(session, consumer, envelope.id):  # already applied: only resolve the row
                    handler = by_type.get(envelope.type)
                    if handler is not None:
                        await handler(session, envelope)
                await session.execute(update(dead_letters).where(dead_letters.c.id == row.id)
                                      .values(resolved_at=clock.now()))
            result.applied.append(row.id)
        except Exception as exc:
            if row is None or is_transient(exc):
                raise
            result.failed_id, result.error = row.id, describe_error(exc)
            async with sessionmaker() as session, session.begin():
                await session.execute(update(dead_letters).where(dead_letters.c.id == row.id)
                                      .values(kind="poison", error=result.error))
            break
    async with sessionmaker() as session:
        await refresh_gauges(session, consumer)
    return result


async def replay(sessionmaker: async_sessionmaker[AsyncSession], handlers: HandlerRegistry,
                 dead_letter_id: int) -> ReplayResult:
    """Replay the key of this dead letter (from the key's first open row, so its order holds).

    Raises DeadLetterNotFound for an unknown id and AlreadyResolved for a row already resolved.
    """
    async with sessionmaker() as session:
        dead = await get_dead_letter(session, dead_letter_id)
    if dead is None:
        raise DeadLetterNotFound(f"dead letter {dead_letter_id} does not exist")
    if dead.resolved_at is not None:
        raise AlreadyResolved(f"dead letter {dead_letter_id} was resolved at {dead.resolved_at.isoformat()}")
    return await replay_key(sessionmaker, handlers, dead.consumer, dead.key)


async def discard(sessionmaker: async_sessionmaker[AsyncSession], dead_letter_id: int, *,
                  by: str) -> DeadLetter:
    """Resolve a dead letter WITHOUT applying it (an event that can never apply, e.g. not an envelope).

    Its event id is recorded in the inbox, so a later re-send of it is ignored too. The rows parked
    behind it stay open: replay the key to apply them.
    """
    async with sessionmaker() as session, session.begin():
        row = (await session.execute(select(dead_letters).where(dead_letters.c.id == dead_letter_id)
                                     .with_for_update())).first()
        if row is None:
            raise DeadLetterNotFound(f"dead letter {dead_letter_id} does not exist")
        if row.resolved_at is not None:
            raise AlreadyResolved(f"dead letter {dead_letter_id} was resolved at "
                                  f"{row.resolved_at.isoformat()}")
        now = clock.now()
        await claim(session, row.consumer, row.event_id)
        note = f"[discarded by {by} at {now.isoformat()}]"
        await session.execute(update(dead_letters).where(dead_letters.c.id == row.id).values(
            resolved_at=now, error=f"{row.error}\n{note}" if row.error else note))
        dead = await get_dead_letter(session, dead_letter_id)
    async with sessionmaker() as session:
        await refresh_gauges(session, row.consumer)
    assert dead is not None
    return dead


# --- HTTP ------------------------------------------------------------------------------------------------

class DeadLetterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    consumer: str
    key: str
    event_id: uuid.UUID
    kind: str
    type: str | None
    error: str | None
    created_at: datetime
    resolved_at: datetime | None
    envelope: dict[str, Any]


class ReplayOut(BaseModel):
    consumer: str
    key: str
    applied: list[int]
    resolved: bool


SystemAdmin = Annotated[Principal, Depends(require(Role.SYSTEM_ADMIN))]


def dead_letters_router(handlers: HandlerRegistry) -> APIRouter:
    """`GET /admin/dead-letters`, `POST /admin/dead-letters/{id}/replay` and `.../discard` (system admin)."""
    router = APIRouter(prefix="/admin/dead-letters", tags=["dead letters"])

    @router.get("", response_model=list[DeadLetterOut])
    async def list_open(session: SessionDep, _: SystemAdmin, consumer: str | None = None,
                        key: str | None = None, include_resolved: bool = False,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                        before_id: int | None = None) -> list[DeadLetter]:
        """Dead letters of this service's consumers, newest first (open ones unless include_resolved)."""
        return await list_dead_letters(session, consumer=consumer, key=key, include_resolved=include_resolved,
                                       limit=limit, before_id=before_id)

    @router.post("/{dead_letter_id}/replay", response_model=ReplayOut,
                 responses={404: {"description": "no such dead letter"},
                            409: {"description": "already resolved, or the poison event still fails"}})
    async def replay_one(dead_letter_id: int, request: Request, _: SystemAdmin) -> ReplayOut:
        """Re-apply the poison event of this dead letter's key, then the events parked behind it, in order."""
        try:
            result = await replay(request.app.state.sessionmaker, handlers, dead_letter_id)
        except DeadLetterNotFound as exc:
            raise NotFound(str(exc), field="dead_letter_id") from exc
        except AlreadyResolved as exc:
            raise Conflict(str(exc), code="already_resolved") from exc
        except LookupError as exc:
            raise Conflict(str(exc), code="unknown_consumer") from exc
        except Exception as exc:
            if is_transient(exc):
                raise ServiceUnavailable("the database is not reachable; nothing was lost, replay again "
                                         "later", code="db_unavailable") from exc
            raise
        if not result.resolved:
            raise Conflict(f"dead letter {result.failed_id} still fails; it and the events behind it stay "
                           "open",
                           code="replay_failed", dead_letter_id=result.failed_id, applied=result.applied,
                           error=result.error.strip().splitlines()[-1] if result.error else None)
        return ReplayOut(consumer=result.consumer, key=result.key, applied=result.applied, resolved=True)

    @router.post("/{dead_letter_id}/discard", response_model=DeadLetterOut,
                 responses={404: {"description": "no such dead letter"},
                            409: {"description": "already resolved"}})
    async def discard_one(dead_letter_id: int, request: Request, admin: SystemAdmin) -> DeadLetter:
        """Resolve a dead letter without applying it (its later re-sends are ignored too)."""
        try:
            return await discard(request.app.state.sessionmaker, dead_letter_id, by=admin.subject)
        except DeadLetterNotFound as exc:
            raise NotFound(str(exc), field="dead_letter_id") from exc
        except AlreadyResolved as exc:
            raise Conflict(str(exc), code="already_resolved") from exc

    return router
