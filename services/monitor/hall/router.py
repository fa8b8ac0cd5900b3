"""Routes of supervision II (hall): the supervision board's view of the hall, from the read model only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from services.monitor import hours, ladder, schemas
from services.monitor.hall.models import HallService, HallTicket, HallWindow
from services.monitor.hall.rules import vacancy_start
from shared import clock, schedule
from shared.auth import Principal, Role, require
from shared.db import SessionDep

router = APIRouter(tags=["supervision"])

Center = Annotated[str, Query(pattern=schemas.CENTER)]
BoardReader = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.HALL_MANAGER, Role.CENTER_ADMIN,
                                                   Role.SYSTEM_ADMIN))]


class VacancyOut(BaseModel):
    reason: Literal["away", "silent"]
    since: datetime
    counted_s: int = Field(description="opening seconds of today since `since` (the window's hours)")
    limit_s: int
    over_limit: bool
    vacant: bool = Field(description="over the limit while tickets wait for the window (空岗)")


class WindowOut(BaseModel):
    number: str
    name: str | None
    department: str | None
    state: str = Field(description="signed_out | open | away | closed")
    clerk_id: str | None
    clerk_name: str | None
    post: str | None
    state_since: datetime | None
    away_since: datetime | None
    away_message: str | None
    last_beat_at: datetime | None
    silent: bool
    in_hours: bool
    waiting: int = Field(description="the waiting tickets this window could call")
    vacancy: VacancyOut | None


class ServiceOut(BaseModel):
    code: str
    name: str
    waiting: int
    longest_wait_s: int = Field(description="since the longest-waiting ticket's effective arrival (wall clock)")


class HallStatusOut(BaseModel):
    center: str
    at: datetime
    vacancy_minutes: int
    windows: list[WindowOut]
    services: list[ServiceOut]


def _could_call(w: HallWindow, t: HallTicket) -> bool:
    """The queue's waiting_for rule: a ticket this window could call."""
    if t.transferred_to_window is not None:
        return t.transferred_to_window == w.number
    if t.transferred_to_service is not None:
        return t.transferred_to_service in w.services
    return t.service_code in w.services and (w.duty or not t.duty_only)


@router.get("/hall/status", response_model=HallStatusOut)
async def hall_status(session: SessionDep, user: BoardReader, center: Center) -> HallStatusOut:
    """The hall as supervision sees it from the queue's events: each window's state, clerk and post, its
    last known beat, the tickets it could call and its vacancy (空岗); per service the waiting count and the
    longest wait."""
    user.check_center(center)
    now = clock.now()
    today = clock.local_date(now)
    settings, hall = await hours.hall_of(session, center)
    calendar = await ladder.CALENDARS.get(session)
    plan = hours.plan(hall, calendar, center, now)
    local_now = now.astimezone(clock.LOCAL_TZ).time().replace(tzinfo=None)
    limit = settings.vacancy_minutes * 60
    windows = (await session.scalars(select(HallWindow).where(HallWindow.center_id == center, HallWindow.active)
                                     .order_by(HallWindow.number))).all()
    waiting = (await session.scalars(select(HallTicket).where(
        HallTicket.center_id == center, HallTicket.business_date == today, HallTicket.status == "waiting"))).all()
    out: list[WindowOut] = []
    for w in windows:
        count = sum(1 for t in waiting if _could_call(w, t))
        since = vacancy_start(w)
        vacancy = None
        if since is not None:
            counted = schedule.opening_seconds(plan, w.number, since, now)
            reason: Literal["away", "silent"] = "away" if w.state == "away" and w.away_since == since else "silent"
            vacancy = VacancyOut(reason=reason, since=since, counted_s=counted, limit_s=limit,
                                 over_limit=counted > limit, vacant=counted > limit and count > 0)
        out.append(WindowOut(
            number=w.number, name=w.name, department=w.department, state=w.state, clerk_id=w.clerk_id,
            clerk_name=w.clerk_name, post=w.post, state_since=w.state_since, away_since=w.away_since,
            away_message=w.away_message, last_beat_at=w.last_beat_at, silent=w.silent,
            in_hours=schedule.window_open(plan, w.number, local_now), waiting=count, vacancy=vacancy))
    services = (await session.scalars(select(HallService).where(HallService.center_id == center,
                                                                HallService.active).order_by(HallService.code))).all()
    lines = []
    for s in services:
        mine = [t for t in waiting if t.service_code == s.code]
        longest = max((int((now - t.effective_arrival).total_seconds()) for t in mine), default=0)
        lines.append(ServiceOut(code=s.code, name=s.name, waiting=len(mine), longest_wait_s=max(0, longest)))
    return HallStatusOut(center=center, at=now, vacancy_minutes=settings.vacancy_minutes, windows=out,
                         services=lines)
