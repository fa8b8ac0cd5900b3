"""`/deliveries` and `/dead-letters`: every message notify planned, with each attempt and its error; the dead
letters (deliveries that used up their attempts, or that a provider refused for good) and their replay.

Addresses are shown masked only (`138****5678`); bodies are what was sent. The centre's admins, supervisors
and hall managers read their centre's deliveries (`center_id` required unless the caller spans every
centre); the centre's admins and the system admin replay."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import dispatcher
from services.notify.models import Delivery, DeliveryAttempt
from shared.auth import Principal, Role, require
from shared.db import SessionDep
from shared.errors import BadRequest, Conflict, NotFound

router = APIRouter(tags=["deliveries"])

Reader = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.HALL_MANAGER, Role.CENTER_ADMIN,
                                              Role.SYSTEM_ADMIN))]
Replayer = Annotated[Principal, Depends(require(Role.CENTER_ADMIN, Role.SYSTEM_ADMIN))]
Status = Literal["pending", "held", "sending", "sent", "dead"]
ChannelName = Literal["sms", "email", "webhook", "feed"]
CenterQuery = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9]{2,32}$",
                                          description="the centre (required unless the caller spans every centre)")]


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    provider_id: str | None
    error: str | None


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    key: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    center_id: str | None
    recipient_key: str
    recipient_id: int | None
    channel: str
    template_key: str
    address_masked: str | None
    subject: str | None
    body: str
    urgent: bool
    status: str
    attempts: int
    next_attempt_at: datetime
    held_until: datetime | None
    provider_id: str | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    dead_at: datetime | None
    attempt_log: list[AttemptOut] = []


def _scope(user: Principal, center_id: str | None) -> None:
    if center_id is None:
        if not user.spans_all_centers:
            raise BadRequest("center_id is required for a caller of one centre", field="center_id",
                             code="center_required")
        return
    user.check_center(center_id)


async def _with_attempts(session: AsyncSession, deliveries: list[Delivery]) -> list[DeliveryOut]:
    ids = [d.id for d in deliveries]
    attempts: dict[int, list[AttemptOut]] = {i: [] for i in ids}
    if ids:
        rows = (await session.execute(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(ids))
                                      .order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.number))).scalars()
        for a in rows:
            attempts[a.delivery_id].append(AttemptOut.model_validate(a))
    out = []
    for d in deliveries:
        item = DeliveryOut.model_validate(d)
        item.attempt_log = attempts[d.id]
        out.append(item)
    return out


@router.get("/deliveries", response_model=list[DeliveryOut])
async def list_deliveries(
        session: SessionDep, user: Reader, center_id: CenterQuery = None, status: Status | None = None,
        recipient: Annotated[str | None, Query(max_length=120, description="a recipient key, e.g. user:u1")] = None,
        event_id: uuid.UUID | None = None, channel: ChannelName | None = None,
        before: Annotated[int | None, Query(ge=1, description="only ids below this (the next page)")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[DeliveryOut]:
    """Deliveries, newest first, with each attempt and its error."""
    _scope(user, center_id)
    query = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
    if center_id is not None:
        query = query.where(Delivery.center_id == center_id)
    for column, value in ((Delivery.status, status), (Delivery.recipient_key, recipient),
                          (Delivery.event_id, event_id), (Delivery.channel, channel)):
        if value is not None:
            query = query.where(column == value)
    if before is not None:
        query = query.where(Delivery.id < before)
    return await _with_attempts(session, list((await session.execute(query)).scalars()))


async def _load(session: AsyncSession, user: Principal, delivery_id: int, *, for_update: bool = False) -> Delivery:
    delivery = await session.get(Delivery, delivery_id, with_for_update=for_update)
    if delivery is None:
        raise NotFound(f"delivery {delivery_id} does not exist", field="delivery_id")
    if delivery.center_id is None:
        if not user.spans_all_centers:
            raise NotFound(f"delivery {delivery_id} does not exist", field="delivery_id")
    else:
        user.check_center(delivery.center_id)
    return delivery


@router.get("/deliveries/{delivery_id}", response_model=DeliveryOut)
async def get_delivery(delivery_id: int, session: SessionDep, user: Reader) -> DeliveryOut:
    return (await _with_attempts(session, [await _load(session, user, delivery_id)]))[0]


@router.get("/dead-letters", response_model=list[DeliveryOut])
async def list_dead_letters(
        session: SessionDep, user: Reader, center_id: CenterQuery = None, channel: ChannelName | None = None,
        before: Annotated[int | None, Query(ge=1)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[DeliveryOut]:
    """Deliveries that used up their attempts or were refused for good, newest first."""
    return await list_deliveries(session, user, center_id=center_id, status="dead", recipient=None, event_id=None,
                                 channel=channel, before=before, limit=limit)


@router.post("/dead-letters/{delivery_id}/replay", response_model=DeliveryOut)
async def replay_dead_letter(delivery_id: int, session: SessionDep, user: Replayer) -> DeliveryOut:
    """Send a dead delivery again now: a fresh retry budget, the same idempotency key (a provider that did
    accept it before drops the repeat)."""
    delivery = await _load(session, user, delivery_id, for_update=True)
    if delivery.status != "dead":
        raise Conflict(f"delivery {delivery_id} is {delivery.status}, not a dead letter", field="delivery_id",
                       code="not_dead")
    await dispatcher.replay(session, delivery_id)
    return (await _with_attempts(session, [delivery]))[0]
