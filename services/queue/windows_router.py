"""Endpoints of windows at work: away and back (去向留言), close, the terminal's heartbeat, the hall status a
supervisor watches, clerks' leave and attendance."""

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from services.queue import repository, windows
from services.queue.models import Window
from services.queue.router import CenterDep
from services.queue.schemas import WindowOut
from services.queue.setup import window_out
from services.queue.tickets import clerk_sign
from shared import clock
from shared.auth import Principal, Role, require
from shared.calendar.store import CalendarDep
from shared.db import SessionDep
from shared.errors import NotFound
from shared.events.catalog import Clerk

router = APIRouter(tags=["windows"])
AtWindow = Annotated[Principal, Depends(require(Role.CLERK, Role.CHIEF_REP))]
Closer = Annotated[Principal, Depends(require(Role.CLERK, Role.CHIEF_REP, *windows.MANAGERS))]
Terminal = Annotated[Principal, Depends(require(Role.TERMINAL, Role.CLERK, Role.CHIEF_REP))]
Watcher = Annotated[Principal, Depends(require(Role.CLERK, Role.CHIEF_REP, Role.HALL_MANAGER, Role.SUPERVISOR,
                                               Role.CENTER_ADMIN, Role.SYSTEM_ADMIN))]
Manager = Annotated[Principal, Depends(require(*windows.MANAGERS))]


async def _locked_window(number: str, center: CenterDep, session: SessionDep) -> Window:
    """The window, locked for this request (a call at it waits, and so does this for a call)."""
    window = await repository.get_window(session, center.id, number, for_update=True)
    if window is None:
        raise NotFound(f"centre {center.id} has no window {number}", field="number")
    return window


LockedWindow = Annotated[Window, Depends(_locked_window)]


class AwayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=100, description="去向留言: what the display shows",
                         examples=["3分钟内返回"])


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, min_length=1, max_length=200, examples=["业务学习"],
                               description="required of the hall manager; the clerk's own close: 下班")


class BeatOut(BaseModel):
    window: str
    state: str
    at: datetime
    restored: bool = Field(description="this beat ended a lost heartbeat")
    next_beat_s: int = int(windows.HEARTBEAT_EVERY.total_seconds())


@router.post("/centers/{center_id}/windows/{number}/away", response_model=WindowOut,
             responses={409: {"description": "not signed in here, away already, or a ticket is active"}})
async def away(body: AwayIn, user: AtWindow, window: LockedWindow, session: SessionDep) -> WindowOut:
    """Step away from the window (暂离) with the message the display shows (去向留言)."""
    return await window_out(session, await windows.away(session, window, user, body.message))


@router.post("/centers/{center_id}/windows/{number}/back", response_model=WindowOut,
             responses={409: {"description": "not signed in here, or not away"}})
async def back(user: AtWindow, window: LockedWindow, session: SessionDep) -> WindowOut:
    """Back at the window: it is open again."""
    return await window_out(session, await windows.back(session, window, user))


@router.post("/centers/{center_id}/windows/{number}/close", response_model=WindowOut,
             responses={409: {"description": "closed already, or a ticket is active"}})
async def close(user: Closer, window: LockedWindow, session: SessionDep, body: CloseIn | None = None) -> WindowOut:
    """Close the window with a reason (its clerk at day end, or the hall manager); its clerk is signed out."""
    return await window_out(session, await windows.close(session, window, user, body.reason if body else None))


@router.post("/centers/{center_id}/windows/{number}/heartbeat", response_model=BeatOut)
async def heartbeat(user: Terminal, center: CenterDep, number: str, session: SessionDep) -> BeatOut:
    """The window terminal's beat (every 30 s); after 90 s of silence the window's heartbeat is lost."""
    window = await repository.get_window(session, center.id, number)
    if window is None:
        raise NotFound(f"centre {center.id} has no window {number}", field="number")
    beat = await windows.heartbeat(session, window, user)
    return BeatOut(window=beat.window, state=beat.state, at=beat.at, restored=beat.restored)


# the hall status

class TicketBrief(BaseModel):
    id: int
    number: str
    service_code: str
    status: str


class VacancyOut(BaseModel):
    reason: str = Field(description="away | silent")
    since: datetime
    counted_s: int = Field(description="opening-hours seconds since `since`")
    limit_s: int
    over_limit: bool
    vacant: bool = Field(description="over the limit while tickets wait for the window (空岗)")


class WindowStatusOut(BaseModel):
    number: str
    name: str
    state: str
    clerk: Clerk | None
    post: str | None
    a_clerk: str | None
    b_clerk: str | None
    since: datetime | None
    away_message: str | None
    closed_reason: str | None
    current_ticket: TicketBrief | None
    heartbeat_age_s: int | None = Field(description="seconds since the last beat of a signed-in window")
    silent: bool = Field(description="signed in and 90 s without a beat")
    in_opening_hours: bool
    waiting: int = Field(description="tickets waiting that this window could call")
    vacancy: VacancyOut | None
    vacant: bool
    a_post_on_leave: bool
    uncovered: bool = Field(description="the A post is on leave and nobody holds the window in opening hours")


class ServiceStatusOut(BaseModel):
    code: str
    name: str
    waiting: int
    longest_wait_s: int
    open_windows: int


class HallStatusOut(BaseModel):
    center_id: str
    business_date: date
    at: datetime
    vacancy_minutes: int
    services: list[ServiceStatusOut]
    windows: list[WindowStatusOut]


@router.get("/centers/{center_id}/status", response_model=HallStatusOut)
async def status(center: CenterDep, _: Watcher, session: SessionDep, calendar: CalendarDep) -> HallStatusOut:
    """The hall now: per service waiting and longest wait; per window state, clerk, post, ticket, heartbeat,
    vacancy (空岗) and uncovered leave."""
    hall = await windows.hall_status(session, calendar, center)
    out = []
    for s in hall.windows:
        w = s.window
        staff = await repository.get_staff(session, w.clerk_id) if w.clerk_id else None
        v = s.vacancy
        out.append(WindowStatusOut(
            number=w.number, name=w.name, state=w.state, clerk=clerk_sign(w.clerk_id, staff) if w.clerk_id else None,
            post=w.post, a_clerk=w.a_clerk, b_clerk=w.b_clerk, since=w.state_since, away_message=w.away_message,
            closed_reason=w.closed_reason,
            current_ticket=TicketBrief(id=s.current.id, number=s.current.number, service_code=s.current.service_code,
                                       status=s.current.status) if s.current else None,
            heartbeat_age_s=s.heartbeat_age_s, silent=s.silent, in_opening_hours=s.in_hours, waiting=s.waiting,
            vacancy=VacancyOut(reason=v.reason, since=v.since, counted_s=v.counted_s, limit_s=v.limit_s,
                               over_limit=v.over_limit, vacant=v.vacant) if v else None,
            vacant=v.vacant if v else False, a_post_on_leave=s.a_post_on_leave, uncovered=s.uncovered))
    return HallStatusOut(center_id=hall.center_id, business_date=hall.business_date, at=hall.at,
                         vacancy_minutes=hall.vacancy_minutes,
                         services=[ServiceStatusOut(code=x.code, name=x.name, waiting=x.waiting,
                                                    longest_wait_s=x.longest_wait_s, open_windows=x.open_windows)
                                   for x in hall.services], windows=out)


# leave and attendance

class LeaveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clerk_id: str = Field(min_length=1, max_length=32, description="the identity user id of the clerk")
    starts_on: date
    ends_on: date
    reason: str | None = Field(None, max_length=200, examples=["年休假"])


class LeaveOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    center_id: str
    clerk_id: str
    starts_on: date
    ends_on: date
    reason: str | None
    recorded_by: str
    recorded_at: datetime


@router.post("/centers/{center_id}/leave", status_code=201, response_model=LeaveOut)
async def record_leave(body: LeaveIn, center: CenterDep, user: Manager, session: SessionDep) -> LeaveOut:
    """Record a clerk's leave (hall manager): the windows whose A post they hold expect the B post."""
    leave = await windows.record_leave(session, center, user, clerk_id=body.clerk_id, starts_on=body.starts_on,
                                       ends_on=body.ends_on, reason=body.reason)
    return LeaveOut.model_validate(leave)


class AttendanceOut(BaseModel):
    clerk_id: str
    first_sign_in: datetime | None
    last_sign_out: datetime | None
    signed_in_s: int
    away_s: int
    aways: int
    windows: list[str]
    still_signed_in: bool
    on_leave: bool


class DayAttendanceOut(BaseModel):
    center_id: str
    date: date
    clerks: list[AttendanceOut]


@router.get("/centers/{center_id}/attendance", response_model=DayAttendanceOut)
async def attendance(center: CenterDep, _: Watcher, session: SessionDep,
                     day: Annotated[date | None, Query(alias="date", description="local date; today")] = None,
                     clerk: Annotated[str | None, Query(max_length=32)] = None) -> DayAttendanceOut:
    """Sign-in, sign-out and away time per clerk of a day (考勤), from the window events."""
    day = day or clock.today_local()
    found = await windows.attendance(session, center, day, clerk)
    return DayAttendanceOut(center_id=center.id, date=day, clerks=[AttendanceOut(
        clerk_id=a.clerk_id, first_sign_in=a.first_sign_in, last_sign_out=a.last_sign_out, signed_in_s=a.signed_in_s,
        away_s=a.away_s, aways=a.aways, windows=a.windows, still_signed_in=a.still_signed_in, on_leave=a.on_leave)
        for a in found])
