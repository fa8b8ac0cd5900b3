"""Hall notices (公告) and the rest of the display's scrolling area: the notices, the complaint phone (投诉电话)
and the items' time limits and fees from the case registry's catalogue (its item.upserted, copied here).
Each change publishes `center.notices_changed` with the whole area. The rules; they never commit.

Decisions where DOMAIN.md is silent (for the queue service's README):

- A notice has a text, an optional period of local dates (inclusive; open-ended when a bound is missing)
  and a position (the scrolling order, then the order of creation). The event carries every notice not yet
  ended, with its period, so that a screen shows those of its day without another event at midnight; the
  board (`GET .../display`) returns today's.
- The scrolling area is published again when a notice is added, changed or deleted, when the centre's
  complaint phone changes, and when an item of the centre's catalogue arrives (item.upserted); inactive
  items are left out.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from services.queue import repository, setup
from services.queue.models import Center, ItemCopy, Notice
from shared import clock
from shared.auth import Principal
from shared.errors import AppError
from shared.events.catalog import CenterNoticesChanged, ItemLimits, ItemUpserted, NoticeFacts
from shared.events.consumer import ConsumerSpec, upsert_read_copy
from shared.events.envelope import Envelope
from shared.events.outbox import publish
from shared.events.topics import topic_for

PRODUCER = "queue"


def _items_table() -> Table:
    table = ItemCopy.__table__
    if not isinstance(table, Table):  # a declarative class with a __tablename__ is always mapped to a Table
        raise TypeError("ItemCopy is not mapped to a table")
    return table


ITEMS = _items_table()


def facts(notice: Notice) -> NoticeFacts:
    return NoticeFacts(id=notice.id, text=notice.text, starts_on=notice.starts_on, ends_on=notice.ends_on,
                       position=notice.position)


def shown_on(notice: NoticeFacts | Notice, day: date) -> bool:
    return (notice.starts_on is None or notice.starts_on <= day) and (notice.ends_on is None or day <= notice.ends_on)


def _check_period(starts_on: date | None, ends_on: date | None) -> None:
    if starts_on is not None and ends_on is not None and ends_on < starts_on:
        raise AppError("a notice cannot end before it starts", field="ends_on", status=422, code="validation_failed")


async def scroll(session: AsyncSession, center: Center) -> CenterNoticesChanged:
    """The scrolling area now: the notices not yet ended, the complaint phone, the centre's items."""
    today = clock.today_local()
    notices = [facts(n) for n in await repository.list_notices(session, center.id)
               if n.ends_on is None or n.ends_on >= today]
    items = [ItemLimits(code=i.code, name=i.name, promised_limit_days=i.promised_limit_days,
                        legal_limit_days=i.legal_limit_days, fees=i.fees)
             for i in await repository.list_items(session, center.id)]
    return CenterNoticesChanged(center_id=center.id, notices=notices,
                                complaint_hotline=setup.settings_of(center).complaint_hotline, items=items)


async def publish_scroll(session: AsyncSession, center: Center) -> None:
    await session.flush()
    await publish(session, PRODUCER, await scroll(session, center), subject=f"notices:{center.id}",
                  center_id=center.id)


async def create(session: AsyncSession, center: Center, principal: Principal, *, text: str, starts_on: date | None,
                 ends_on: date | None, position: int) -> Notice:
    _check_period(starts_on, ends_on)
    now = clock.now()
    # one change of a centre's notices at a time: each event holds every change committed before it
    await repository.get_center_for_update(session, center.id)
    notice = Notice(center_id=center.id, text=text, starts_on=starts_on, ends_on=ends_on, position=position,
                    created_by=principal.subject, created_at=now, updated_at=now)
    session.add(notice)
    await publish_scroll(session, center)
    return notice


async def update(session: AsyncSession, center: Center, notice: Notice, changes: dict[str, Any]) -> Notice:
    for name in ("text", "position"):
        if name in changes and changes[name] is None:
            raise AppError(f"{name} cannot be null", field=name, status=422, code="validation_failed")
    _check_period(changes.get("starts_on", notice.starts_on), changes.get("ends_on", notice.ends_on))
    await repository.get_center_for_update(session, center.id)
    for name, value in changes.items():
        setattr(notice, name, value)
    notice.updated_at = clock.now()
    await publish_scroll(session, center)
    return notice


async def delete(session: AsyncSession, center: Center, notice: Notice) -> None:
    await repository.get_center_for_update(session, center.id)
    await session.delete(notice)
    await publish_scroll(session, center)


async def copy_item(session: AsyncSession, envelope: Envelope) -> None:
    """item.upserted -> the item copy (unless a newer event of the item was applied); the centre's scrolling
    area is published again with it."""
    item = envelope.payload()
    assert isinstance(item, ItemUpserted)
    if envelope.sequence is None:
        raise ValueError("item.upserted carries no outbox sequence: cannot order it")
    written = await upsert_read_copy(session, ITEMS, {
        "center_id": item.center_id, "code": item.code, "name": item.name, "department": item.department,
        "promised_limit_days": item.promised_limit_days, "legal_limit_days": item.legal_limit_days,
        "fees": item.fees, "active": item.active, "updated_at": envelope.occurred_at,
        "last_event_sequence": envelope.sequence})
    center = await repository.get_center_for_update(session, item.center_id)
    if written and center is not None:
        await publish_scroll(session, center)


def items_consumer() -> ConsumerSpec:
    """The consumer that keeps `items` equal to the case registry's catalogue (its limits and fees)."""
    return ConsumerSpec("items", (topic_for("cases").name,), {"item.upserted": copy_item})
