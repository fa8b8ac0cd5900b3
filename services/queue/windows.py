"""Windows at work (窗口): stepping away with a message (去向留言) and back, closing with a reason, the
terminal's heartbeat and its loss, vacancy (空岗), the hall status a supervisor watches, clerks' leave (AB角)
and attendance from the window log. The business rules; they write state, the window log and outbox rows
in the caller's transaction, and never commit.

Decisions where DOMAIN.md is silent (for the queue service's README):

- `away` needs the clerk signed in at the window, the window open and no ticket active there (the person at
  the window is not left waiting: finish, skip or transfer first, as for signing out). `back` ends it. A
  clerk who signs in again while away is back too.
- `close` ends the clerk's session at the window (attendance counts it as the sign-out) and leaves the
  window closed, with its reason on the display, until a clerk signs in there again. The clerk at the
  window may close it with no reason (it is then "下班", the day's end); the hall manager (or an admin)
  must give one. No ticket may be active.
- Heartbeats: a sign-in counts as a beat. A window is silent once a clerk is signed in (open or away) and
  90 s have passed since its last beat; the worker's job publishes `window.heartbeat_lost` once and the next
  beat (or sign-in) `window.heartbeat_restored`. A sign-out or close ends the session the silence was about
  (its own event says so): the flag is cleared without a restore.
- The B post steps in (AB角): the window's B post may sign in while its A post is signed in but away or
  silent; the A post's session ends there (`window.signed_out` with the reason, then `window.signed_in`
  with `replaces`), not while a ticket is active at the window. Otherwise a window held by one clerk is
  refused to the other until they sign out (so the A post comes back after the B post signs out).
- Vacancy (空岗): a window with a clerk signed in that is away, or silent, is counted from the moment it went
  away or from its last beat (the earlier, when both), in opening seconds only (the day's periods, and the
  noon service for a noon window; nothing before the local day began). It is vacant once that count is over
  the centre's vacancy minutes while tickets wait that the window could call (its services, reserve ones
  included, and transfers to it). A B post signing in ends it (the window is open again, with the B post).
- Leave (请假) is recorded for a clerk over local dates; a window whose A post is on leave today, that nobody
  holds (signed out, not closed by the manager) during its opening hours, is flagged `uncovered`.
- Attendance of a clerk and local day comes from the window log: the first sign-in, the last sign-out (or
  close, or being replaced), the seconds signed in and away, the number of times away. A session still open
  counts to now (today) or to the end of that day (an earlier day: no sign-out was recorded).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.queue import metrics, repository, setup
from services.queue.models import Center, ClerkLeave, Ticket, Window, WindowLogEntry
from shared import clock, schedule
from shared.auth import Principal, Role
from shared.calendar.engine import WorkCalendar
from shared.errors import AppError, Conflict, Forbidden
from shared.events.catalog import (
    WindowAway,
    WindowBack,
    WindowClosed,
    WindowHeartbeatLost,
    WindowHeartbeatRestored,
    WindowLeaveRecorded,
    WindowSignedOut,
)
from shared.events.outbox import Outgoing, publish, publish_all

PRODUCER = "queue"
HEARTBEAT_EVERY = timedelta(seconds=30)
HEARTBEAT_LOST_AFTER = timedelta(seconds=90)
# on a simulated clock running S times faster, a beat that a busy machine delays by 90/S real seconds would be
# "lost": a heartbeat is lost only after 90 s of clock time and at least this many real seconds (at speed 1
# the 90 s decide; at 200x, 2 real seconds are 400 simulated ones)
HEARTBEAT_MIN_REAL_SILENCE_S = 2.0


def heartbeat_lost_after() -> timedelta:
    """90 s of clock time, or more on a fast simulated clock (a demo day at 200x: 400 s, two real seconds)."""
    return max(HEARTBEAT_LOST_AFTER, timedelta(seconds=HEARTBEAT_MIN_REAL_SILENCE_S * clock.speed()))
DAY_END_REASON = "下班"
SIGNED_IN = ("open", "away")
MANAGERS = (Role.HALL_MANAGER, Role.CENTER_ADMIN, Role.SYSTEM_ADMIN)


def subject(window: Window) -> str:
    return f"window:{window.center_id}:{window.number}"


def log(session: AsyncSession, window: Window, kind: str, at: datetime, *, clerk_id: str | None,
        post: str | None, note: str | None = None) -> None:
    """One line of the window log (what attendance is counted from), in the caller's transaction."""
    session.add(WindowLogEntry(center_id=window.center_id, window=window.number, business_date=clock.local_date(at),
                               clerk_id=clerk_id, post=post, kind=kind, at=at, note=note))


def post_of(window: Window) -> Literal["A", "B"] | None:
    return "A" if window.post == "A" else "B" if window.post == "B" else None


def silent(window: Window, now: datetime) -> bool:
    """A signed-in window whose terminal has not beaten for 90 s (whether or not the job has flagged it)."""
    if window.clerk_id is None or window.state not in SIGNED_IN:
        return False
    last = window.last_heartbeat_at or window.state_since or window.updated_at
    return now - last >= heartbeat_lost_after()


def check_at_terminal(principal: Principal, window: Window) -> None:
    """A clerk acts at a window only from its terminal: the window in the token came from that device."""
    principal.check_center(window.center_id)
    if principal.role not in (Role.CLERK, Role.CHIEF_REP):
        raise Forbidden(f"a {principal.role} does not work at a window", code="wrong_role")
    if principal.window != window.number:
        raise Forbidden(f"signed in at window {principal.window or '(none)'}, not at window {window.number}",
                        field="window", code="wrong_window")


def check_clerk_at(principal: Principal, window: Window) -> None:
    """The clerk signed in at this window, acting from its terminal."""
    check_at_terminal(principal, window)
    if window.clerk_id != principal.subject or window.state not in SIGNED_IN:
        raise Conflict(f"user {principal.subject} is not signed in at window {window.number}", field="window",
                       code="not_signed_in")


def no_active_ticket(window: Window, what: str) -> None:
    if window.active_ticket_id is not None:
        raise Conflict(f"ticket {window.active_ticket_id} is still active at window {window.number}: finish, "
                       f"skip or transfer it before {what}", field="window", code="ticket_active",
                       ticket_id=window.active_ticket_id)


# stepping away and back

async def away(session: AsyncSession, window: Window, principal: Principal, message: str) -> Window:
    """The clerk steps away (暂离); the display shows `message` (去向留言) until they are back."""
    check_clerk_at(principal, window)
    if window.state == "away":
        raise Conflict(f"window {window.number} is away already", field="window", code="already_away")
    no_active_ticket(window, "stepping away")
    now = clock.now()
    window.state, window.state_since, window.away_message, window.updated_at = "away", now, message, now
    await session.flush()
    log(session, window, "away", now, clerk_id=principal.subject, post=window.post, note=message)
    await publish(session, PRODUCER, WindowAway(center_id=window.center_id, window=window.number,
                                                clerk_id=principal.subject, post=post_of(window), message=message,
                                                at=now), subject=subject(window), center_id=window.center_id)
    metrics.window_event(session, window.center_id, "away")
    return window


async def back(session: AsyncSession, window: Window, principal: Principal) -> Window:
    """The clerk is back at the window: it is open again."""
    check_clerk_at(principal, window)
    if window.state != "away":
        raise Conflict(f"window {window.number} is not away", field="window", code="not_away")
    now = clock.now()
    since, message = window.state_since or now, window.away_message
    window.state, window.state_since, window.away_message, window.updated_at = "open", now, None, now
    await session.flush()
    log(session, window, "back", now, clerk_id=principal.subject, post=window.post)
    await publish(session, PRODUCER, WindowBack(center_id=window.center_id, window=window.number,
                                                clerk_id=principal.subject, post=post_of(window), message=message,
                                                away_s=max(0, int((now - since).total_seconds())), at=now),
                  subject=subject(window), center_id=window.center_id)
    metrics.window_event(session, window.center_id, "back")
    return window


async def close(session: AsyncSession, window: Window, principal: Principal, reason: str | None) -> Window:
    """Close the window with a reason (业务学习, 系统故障 ...): its clerk at day end, or the hall manager."""
    principal.check_center(window.center_id)
    if principal.role in MANAGERS:
        if not reason:
            raise AppError("the hall manager closes a window with a reason (业务学习, 系统故障 ...)",
                           field="reason", status=422, code="validation_failed")
    elif principal.role in (Role.CLERK, Role.CHIEF_REP):
        check_clerk_at(principal, window)
        reason = reason or DAY_END_REASON
    else:
        raise Forbidden(f"a {principal.role} does not close windows", code="wrong_role")
    if window.state == "closed":
        raise Conflict(f"window {window.number} is closed already", field="window", code="already_closed")
    no_active_ticket(window, "closing")
    now = clock.now()
    clerk_id, post = window.clerk_id, post_of(window)
    window.state, window.state_since, window.closed_reason, window.updated_at = "closed", now, reason, now
    window.clerk_id = window.post = window.device = window.away_message = None
    window.heartbeat_lost_at = None
    await session.flush()
    log(session, window, "closed", now, clerk_id=clerk_id, post=post, note=reason)
    await publish(session, PRODUCER, WindowClosed(center_id=window.center_id, window=window.number, clerk_id=clerk_id,
                                                  post=post, by=principal.subject, reason=reason, at=now),
                  subject=subject(window), center_id=window.center_id)
    metrics.window_event(session, window.center_id, "closed")
    return window


# heartbeats

_BEAT = text("""
    WITH before AS (SELECT center_id, number, last_heartbeat_at, heartbeat_lost_at FROM windows
                    WHERE center_id = :center AND number = :number FOR UPDATE)
    UPDATE windows w SET last_heartbeat_at = :now, heartbeat_lost_at = NULL
    FROM before WHERE w.center_id = before.center_id AND w.number = before.number
    RETURNING before.last_heartbeat_at AS last, before.heartbeat_lost_at AS lost, w.clerk_id, w.post, w.state
""")


@dataclass(frozen=True)
class Beat:
    window: str
    state: str
    at: datetime
    restored: bool


async def heartbeat(session: AsyncSession, window: Window, principal: Principal) -> Beat:
    """The window's terminal (or the clerk signed in at it) is alive; a lost heartbeat is restored."""
    principal.check_center(window.center_id)
    if principal.role not in (Role.TERMINAL, Role.CLERK, Role.CHIEF_REP):
        raise Forbidden(f"a {principal.role} is no window terminal", code="wrong_role")
    if principal.window != window.number:
        raise Forbidden(f"the terminal of window {principal.window or '(none)'}, not of window {window.number}",
                        field="window", code="wrong_window")
    now = clock.now()
    row = (await session.execute(_BEAT, {"center": window.center_id, "number": window.number, "now": now})).one()
    if row.lost is not None:
        await _restored(session, window, row.clerk_id, row.post, lost_at=row.lost, last=row.last, now=now)
    return Beat(window.number, row.state, now, row.lost is not None)


async def _restored(session: AsyncSession, window: Window, clerk_id: str | None, post: str | None, *,
                    lost_at: datetime, last: datetime | None, now: datetime) -> None:
    log(session, window, "heartbeat_restored", now, clerk_id=clerk_id, post=post)
    await publish(session, PRODUCER, WindowHeartbeatRestored(
        center_id=window.center_id, window=window.number, clerk_id=clerk_id,
        post="A" if post == "A" else "B" if post == "B" else None, lost_at=lost_at,
        silent_s=max(0, int((now - (last or lost_at)).total_seconds())), at=now),
        subject=subject(window), center_id=window.center_id)
    metrics.window_event(session, window.center_id, "heartbeat_restored")


async def restore_at_sign_in(session: AsyncSession, window: Window, now: datetime) -> None:
    """A sign-in came from the window's terminal: it counts as a beat (and restores a lost heartbeat)."""
    lost, last = window.heartbeat_lost_at, window.last_heartbeat_at
    window.last_heartbeat_at, window.heartbeat_lost_at = now, None
    if lost is not None:
        await _restored(session, window, window.clerk_id, window.post, lost_at=lost, last=last, now=now)


_LOSE = text("""
    UPDATE windows SET heartbeat_lost_at = :due
    WHERE clerk_id IS NOT NULL AND state IN ('open', 'away') AND heartbeat_lost_at IS NULL
      AND coalesce(last_heartbeat_at, state_since, updated_at) <= :cutoff
    RETURNING center_id, number, clerk_id, post, coalesce(last_heartbeat_at, state_since, updated_at) AS last
""")

_COUNTS = text("""
    SELECT center_id, state, count(*) AS n, count(*) FILTER (WHERE heartbeat_lost_at IS NOT NULL) AS silent
    FROM windows WHERE active GROUP BY center_id, state
""")


async def detect_lost_heartbeats(session: AsyncSession, due: datetime) -> None:
    """The heartbeat job (every 10 s, under the worker's leader lock): every signed-in window silent for
    90 s at `due` publishes window.heartbeat_lost, once; then the windows gauges are set."""
    lost = (await session.execute(_LOSE, {"due": due, "cutoff": due - heartbeat_lost_after()})).all()
    events = []
    for row in lost:
        events.append(Outgoing(WindowHeartbeatLost(
            center_id=row.center_id, window=row.number, clerk_id=row.clerk_id,
            post="A" if row.post == "A" else "B" if row.post == "B" else None, last_heartbeat_at=row.last,
            silent_s=max(0, int((due - row.last).total_seconds()))),
            subject=f"window:{row.center_id}:{row.number}", center_id=row.center_id))
        session.add(WindowLogEntry(center_id=row.center_id, window=row.number, business_date=clock.local_date(due),
                                   clerk_id=row.clerk_id, post=row.post, kind="heartbeat_lost", at=due))
        metrics.window_event(session, row.center_id, "heartbeat_lost")
    await publish_all(session, PRODUCER, events)
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for row in (await session.execute(_COUNTS)).all():
        counts[row.center_id][row.state] = int(row.n)
        counts[row.center_id]["silent"] = counts[row.center_id].get("silent", 0) + int(row.silent)
    for center in await repository.list_centers(session, None):
        metrics.windows(session, center.id, counts.get(center.id, {}))


# vacancy (空岗)

@dataclass(frozen=True)
class Vacancy:
    """A window away or silent: since when, its opening seconds counted, the limit, and the tickets it leaves
    waiting; `vacant` once it is over the limit with tickets waiting (空岗)."""

    reason: Literal["away", "silent"]
    since: datetime
    counted_s: int
    limit_s: int
    waiting: int

    @property
    def over_limit(self) -> bool:
        return self.counted_s > self.limit_s

    @property
    def vacant(self) -> bool:
        return self.over_limit and self.waiting > 0


def vacancy_of(window: Window, plan: schedule.DayPlan, now: datetime, vacancy_minutes: int,
               waiting: int) -> Vacancy | None:
    """The window's vacancy now, if it is away or silent with a clerk signed in (else None)."""
    if window.clerk_id is None or window.state not in SIGNED_IN:
        return None
    starts: list[tuple[datetime, Literal["away", "silent"]]] = []
    if window.state == "away":
        starts.append((window.state_since or window.updated_at, "away"))
    if silent(window, now):
        starts.append((window.last_heartbeat_at or window.state_since or window.updated_at, "silent"))
    if not starts:
        return None
    since, reason = min(starts, key=lambda s: s[0])
    return Vacancy(reason, since, schedule.opening_seconds(plan, window.number, since, now), vacancy_minutes * 60, waiting)


def waiting_for(window: Window, weights: dict[str, int], waiting: list[Ticket]) -> int:
    """The waiting tickets this window could call: of its services (reserve ones too; a weekend walk-in for
    the duty windows only at a duty window), transferred to one of them, or to this window."""
    n = 0
    for t in waiting:
        if t.transferred_to_window is not None:
            n += t.transferred_to_window == window.number
        elif t.transferred_to_service is not None:
            n += t.transferred_to_service in weights
        elif t.service_code in weights and (window.duty or not t.duty_only):
            n += 1
    return n


# leave (请假)

async def record_leave(session: AsyncSession, center: Center, principal: Principal, *, clerk_id: str,
                       starts_on: date, ends_on: date, reason: str | None) -> ClerkLeave:
    """Record a clerk's leave; publishes window.leave_recorded naming the windows whose A post they hold."""
    if ends_on < starts_on:
        raise AppError("the leave cannot end before it starts", field="ends_on", status=422,
                       code="validation_failed")
    if (ends_on - starts_on).days > 366:
        raise AppError("a leave is recorded for at most a year at a time", field="ends_on", status=422,
                       code="validation_failed")
    leave = ClerkLeave(center_id=center.id, clerk_id=clerk_id, starts_on=starts_on, ends_on=ends_on, reason=reason,
                       recorded_by=principal.subject, recorded_at=clock.now())
    session.add(leave)
    await session.flush()
    posts = [w.number for w in await repository.list_windows(session, center.id) if w.a_clerk == clerk_id]
    await publish(session, PRODUCER, WindowLeaveRecorded(
        center_id=center.id, leave_id=leave.id, clerk_id=clerk_id, starts_on=starts_on, ends_on=ends_on,
        reason=reason, windows=posts, by=principal.subject), subject=f"leave:{center.id}:{leave.id}",
        center_id=center.id)
    return leave


# the hall status (what a supervisor sees)

@dataclass(frozen=True)
class ServiceLine:
    code: str
    name: str
    waiting: int
    longest_wait_s: int
    open_windows: int
    wait_threshold_s: int


@dataclass(frozen=True)
class WindowStatus:
    window: Window
    weights: dict[str, int]
    current: Ticket | None
    heartbeat_age_s: int | None
    silent: bool
    in_hours: bool
    waiting: int
    vacancy: Vacancy | None
    a_post_on_leave: bool
    uncovered: bool


@dataclass(frozen=True)
class HallStatus:
    center_id: str
    business_date: date
    at: datetime
    vacancy_minutes: int
    services: list[ServiceLine]
    windows: list[WindowStatus]


async def hall_status(session: AsyncSession, calendar: WorkCalendar, center: Center) -> HallStatus:
    """Per service its waiting count and longest wait; per window its state, clerk and post, current
    ticket, heartbeat age, the tickets it could call, its vacancy, and whether its A post's leave is
    uncovered."""
    from services.queue.tickets import day_kind  # tickets imports this module

    now = clock.now()
    today = clock.local_date(now)
    local_now = now.astimezone(clock.LOCAL_TZ).time().replace(tzinfo=None)
    plan = schedule.day_plan(setup.schedule_of(center), today, day_kind(calendar, center.id, today))
    settings = setup.settings_of(center)
    waiting = await repository.waiting_tickets(session, center.id, today)
    windows = [w for w in await repository.list_windows(session, center.id) if w.active]
    every_weight = await repository.center_window_weights(session, center.id)
    weights = {w.number: every_weight.get(w.number, {}) for w in windows}
    current = {t.id: t for t in await repository.tickets_by_id(
        session, [w.active_ticket_id for w in windows if w.active_ticket_id is not None])}
    on_leave = await repository.clerks_on_leave(session, center.id, today)
    statuses = []
    for w in windows:
        count = waiting_for(w, weights[w.number], waiting)
        beat = w.last_heartbeat_at if w.clerk_id is not None else None
        a_leave = w.a_clerk is not None and w.a_clerk in on_leave
        in_hours = schedule.window_open(plan, w.number, local_now)
        statuses.append(WindowStatus(
            window=w, weights=weights[w.number],
            current=current.get(w.active_ticket_id) if w.active_ticket_id is not None else None,
            heartbeat_age_s=int((now - beat).total_seconds()) if beat is not None else None,
            silent=silent(w, now), in_hours=in_hours, waiting=count,
            vacancy=vacancy_of(w, plan, now, settings.vacancy_minutes, count), a_post_on_leave=a_leave,
            uncovered=a_leave and w.state == "signed_out" and in_hours))
    lines = []
    for service in await repository.list_services(session, center.id):
        mine = [t for t in waiting if t.service_code == service.code]
        longest = max((now - t.effective_arrival for t in mine), default=timedelta(0))
        opened = sum(1 for w in windows if w.state == "open" and weights[w.number].get(service.code, 0) > 0)
        lines.append(ServiceLine(service.code, service.name, len(mine), max(0, int(longest.total_seconds())), opened,
                                 service.wait_threshold_minutes * 60))
    return HallStatus(center.id, today, now, settings.vacancy_minutes, lines, statuses)


# attendance (考勤)

@dataclass
class Attendance:
    clerk_id: str
    first_sign_in: datetime | None = None
    last_sign_out: datetime | None = None
    signed_in_s: int = 0
    away_s: int = 0
    aways: int = 0
    windows: list[str] = field(default_factory=list)
    still_signed_in: bool = False
    on_leave: bool = False


def attendance_of(entries: list[WindowLogEntry], day_end: datetime, now: datetime) -> dict[str, Attendance]:
    """Each clerk's attendance of one day from that day's window log, in order (a pure function)."""
    found: dict[str, Attendance] = {}
    session_start: dict[str, datetime] = {}
    away_start: dict[str, datetime] = {}

    def end_away(clerk: str, at: datetime) -> None:
        if clerk in away_start:
            found[clerk].away_s += int((at - away_start.pop(clerk)).total_seconds())

    for e in entries:
        if e.clerk_id is None:
            continue
        a = found.setdefault(e.clerk_id, Attendance(e.clerk_id))
        if e.kind == "signed_in":
            end_away(e.clerk_id, e.at)  # signing in again while away: back
            if e.clerk_id not in session_start:
                session_start[e.clerk_id] = e.at
            a.first_sign_in = a.first_sign_in or e.at
            if e.window not in a.windows:
                a.windows.append(e.window)
        elif e.kind in ("signed_out", "closed"):
            end_away(e.clerk_id, e.at)
            if e.clerk_id in session_start:
                a.signed_in_s += int((e.at - session_start.pop(e.clerk_id)).total_seconds())
            a.last_sign_out = e.at
        elif e.kind == "away":
            away_start.setdefault(e.clerk_id, e.at)
            a.aways += 1
        elif e.kind == "back":
            end_away(e.clerk_id, e.at)
    until = min(now, day_end)
    for clerk, start in session_start.items():
        end_away(clerk, until)
        found[clerk].signed_in_s += max(0, int((until - start).total_seconds()))
        found[clerk].still_signed_in = now < day_end
    return found


async def attendance(session: AsyncSession, center: Center, day: date, clerk_id: str | None) -> list[Attendance]:
    """The attendance of the day's clerks (or of one), from the window log; clerks on leave that day too."""
    entries = await repository.window_log(session, center.id, day, clerk_id)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=clock.LOCAL_TZ).astimezone(UTC)
    found = attendance_of(entries, end, clock.now())
    for leave in sorted(await repository.clerks_on_leave(session, center.id, day)):
        if clerk_id is None or leave == clerk_id:
            found.setdefault(leave, Attendance(leave)).on_leave = True
    return [found[k] for k in sorted(found)]


async def end_session_for_takeover(session: AsyncSession, window: Window, replaced: str, reason: str,
                                   now: datetime) -> None:
    """The B post steps in for the A post: the replaced clerk's session ends with a sign-out of their own."""
    log(session, window, "signed_out", now, clerk_id=replaced, post=window.post, note=reason)
    await publish(session, PRODUCER, WindowSignedOut(center_id=window.center_id, window=window.number,
                                                     clerk_id=replaced, reason=reason),
                  subject=subject(window), center_id=window.center_id)


async def count_hall(session: AsyncSession, _due: datetime) -> None:
    """The hall-gauges job (every 15 s, under the worker's leader lock): per centre and service the tickets
    waiting, the longest wait and its threshold; per centre the vacant windows (空岗). From the tables, as the
    hall display's status is, so the gauges and the supervisor's screen agree."""
    from shared.calendar.store import load_calendar

    calendar = await load_calendar(session)
    for center in await repository.list_centers(session, None):
        status = await hall_status(session, calendar, center)
        metrics.hall(session, center.id,
                     {line.code: (line.waiting, line.longest_wait_s, line.wait_threshold_s) for line in status.services},
                     sum(1 for w in status.windows if w.vacancy is not None and w.vacancy.vacant))
