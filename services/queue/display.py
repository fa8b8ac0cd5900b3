"""The hall display's board (综合屏): what a screen shows when it starts (windows with their away messages,
calls, waiting counts, the scrolling area), and the event id its feed goes on from, so that a screen opening
now misses nothing and shows nothing twice."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.queue import notices, repository, setup, tickets
from services.queue.feeds import DISPLAY_ROLES
from services.queue.models import Center, Ticket
from services.queue.router import CenterDep
from shared import clock
from shared.auth import Principal, require
from shared.db import SessionDep
from shared.events.catalog import Clerk, ItemLimits, NoticeFacts
from shared.tables import outbox

router = APIRouter(tags=["feeds"])
Viewer = Annotated[Principal, Depends(require(*DISPLAY_ROLES))]
RECENT_CALLS = 10


class Call(BaseModel):
    number: str
    window: str
    called_at: datetime
    recalls: int
    announcement: str


class WindowSign(BaseModel):
    """A window as its public sign shows it (岗位公示): who serves there, and what it is calling."""

    number: str
    name: str
    state: str
    post: str | None
    clerk: Clerk | None
    current: Call | None
    away_message: str | None = None
    closed_reason: str | None = None


class DisplayBoard(BaseModel):
    center_id: str
    business_date: date
    last_event_id: int | None
    windows: list[WindowSign]
    waiting: dict[str, int]
    recent_calls: list[Call]
    notices: list[NoticeFacts] = Field(description="today's notices, in scrolling order")
    complaint_hotline: str | None = None
    items: list[ItemLimits] = Field(description="the items' time limits and fees (事项, 时限, 收费)")


@router.get("/centers/{center_id}/display", response_model=DisplayBoard)
async def display_board(center: CenterDep, _: Viewer, session: SessionDep) -> DisplayBoard:
    """The board now: each window's sign and current call, the waiting counts, the last calls, and the
    event id the display feed continues from (send it as Last-Event-ID)."""
    return await board(session, center)


async def board(session: AsyncSession, center: Center) -> DisplayBoard:
    # the event id first, with no outbox write in flight: a sequence is taken before its transaction commits,
    # so a call still committing could have a lower id than one already committed, and would be neither on
    # the board nor after its id. SHARE mode waits for those writers and holds new ones back for the moment
    # this board takes to read (a screen reads it once, when it starts).
    await session.execute(text("LOCK TABLE outbox IN SHARE MODE"))
    last_event_id = await session.scalar(select(func.max(outbox.c.sequence)))
    today = clock.today_local()
    template = setup.settings_of(center).announcement_template

    def call(ticket: Ticket) -> Call:
        assert ticket.window is not None and ticket.called_at is not None
        return Call(number=ticket.number, window=ticket.window, called_at=ticket.called_at, recalls=ticket.recalls,
                    announcement=tickets.announce(template, ticket.number, ticket.window))

    windows = await repository.list_windows(session, center.id)
    current = {t.id: t for t in await repository.tickets_by_id(
        session, [w.active_ticket_id for w in windows if w.active_ticket_id is not None])}
    signs = []
    for w in windows:
        if not w.active:
            continue
        staff = await repository.get_staff(session, w.clerk_id) if w.clerk_id else None
        active = current.get(w.active_ticket_id) if w.active_ticket_id is not None else None
        signs.append(WindowSign(number=w.number, name=w.name, state=w.state, post=w.post,
                                clerk=tickets.clerk_sign(w.clerk_id, staff) if w.clerk_id else None,
                                current=call(active) if active is not None and active.called_at else None,
                                away_message=w.away_message if w.state == "away" else None,
                                closed_reason=w.closed_reason if w.state == "closed" else None))
    recent = await repository.recent_calls(session, center.id, today, RECENT_CALLS)
    area = await notices.scroll(session, center)
    return DisplayBoard(center_id=center.id, business_date=today, last_event_id=last_event_id, windows=signs,
                        waiting=await repository.waiting_counts(session, center.id, today),
                        recent_calls=[call(t) for t in recent],
                        notices=[n for n in area.notices if notices.shown_on(n, today)],
                        complaint_hotline=area.complaint_hotline, items=area.items)
