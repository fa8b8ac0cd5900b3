"""The hall's read model and its alerts: windows, tickets, services, staff appointment requests and inquiries
kept from the queue's and the case registry's events, and the moments that may raise an alert armed as
durable timers (shared.timers), never found by a scan.

- Vacant window (空岗): a window with a clerk signed in (open or away) that is away, or silent since its last
  beat (`window.heartbeat_lost`), is watched from that moment (the earlier, when both): the queue's
  `vacancy_of` rule. A timer is armed for the instant its count, in the window's opening seconds of the day
  (the periods, and the noon service for a noon window; the count restarts each local day), passes the
  centre's vacancy minutes. When it fires the window is checked again (the same episode, still over the
  limit); with tickets waiting that the window could call (its services, reserve ones included, transfers
  to it) the alert is raised under `vacant:<centre>:<window>:<episode>`; with none waiting the window is
  marked pending and checked again when a ticket arrives in the centre. The episode is the uninterrupted
  absence: away and silent overlapping (a beat restored while still away) move the count's start, not the
  cause. Back with a beat, a sign-out, a close or a sign-in (the B post stepping in) ends the episode: its
  timer is cancelled and its alert resolved.
- Long wait: a ticket issued (or requeued) arms a timer at its effective arrival plus its service's wait
  threshold counted in the centre's opening time; when it fires and the ticket still waits from the same
  arrival, `long_wait:<ticket>` is raised. A call, cancel, expiry (any status but waiting) cancels it, and
  resolves an alert already raised.
- A staff appointment request arms a timer at its `due_at`, an inquiry with a promise at its
  `promised_reply_at`; unanswered when it fires: `appointment_request:<id>`, `inquiry:<id>`. An answer
  cancels it and resolves a late alert.

Ticket events are the hot path (thousands a centre a day): each is one upsert with its timer change in the
same statement, straight to the driver, plus one read at issue (the service's threshold, the centre's hours,
whether a window waits for a ticket). Every row keeps the producer's outbox sequence: an older or repeated
event changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.monitor import alerts, hours, ladder
from services.monitor.alerts import NewAlert
from services.monitor.hall.models import (
    HallAppointmentRequest,
    HallInquiry,
    HallService,
    HallTicket,
    HallWindow,
)
from services.monitor.models import Alert
from shared import clock, schedule, timers
from shared.calendar.engine import WorkCalendar
from shared.db import driver_connection
from shared.events.catalog import (
    AppointmentConfirmed,
    AppointmentDeclined,
    AppointmentRequested,
    HallSchedule,
    Handler,
    InquiryAnswered,
    InquiryRegistered,
    ServiceUpserted,
    WindowAway,
    WindowBack,
    WindowClosed,
    WindowHeartbeatLost,
    WindowHeartbeatRestored,
    WindowSignedIn,
    WindowSignedOut,
    WindowUpserted,
)
from shared.events.envelope import Envelope

VACANCY = "monitor.hall.vacancy"
WAIT = "monitor.hall.wait"
REQUEST = "monitor.hall.request"
INQUIRY = "monitor.hall.inquiry"
DEFAULT_WAIT_MINUTES = 30
SIGNED_IN = ("open", "away")
MAX_DAYS_AHEAD = hours.MAX_DAYS_AHEAD


def _sequence(envelope: Envelope) -> int:
    if envelope.sequence is None:
        raise ValueError(f"{envelope.type} carries no outbox sequence: cannot order it")
    return envelope.sequence


def _same(at: datetime, iso: object) -> bool:
    """Whether a timer's payload names this instant (the payload keeps an ISO string of any offset)."""
    return isinstance(iso, str) and datetime.fromisoformat(iso) == at


def _hm(at: datetime) -> str:
    return at.astimezone(clock.LOCAL_TZ).strftime("%H:%M")


# --- services ------------------------------------------------------------------------------------------

async def copy_service(session: AsyncSession, envelope: Envelope) -> None:
    data = envelope.payload()
    assert isinstance(data, ServiceUpserted)
    stmt = pg_insert(HallService).values(
        center_id=data.center_id, code=data.code, name=data.name, department=data.department,
        wait_threshold_minutes=data.wait_threshold_minutes, active=data.active, updated_at=envelope.occurred_at,
        last_event_sequence=_sequence(envelope))
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[HallService.center_id, HallService.code],
        set_={c: stmt.excluded[c] for c in ("name", "department", "wait_threshold_minutes", "active", "updated_at",
                                            "last_event_sequence")},
        where=HallService.last_event_sequence < stmt.excluded.last_event_sequence))


# --- windows -------------------------------------------------------------------------------------------

async def copy_window(session: AsyncSession, envelope: Envelope) -> None:
    """window.upserted (reference data): the set-up only; the state columns are the state events'."""
    data = envelope.payload()
    assert isinstance(data, WindowUpserted)
    stmt = pg_insert(HallWindow).values(
        center_id=data.center_id, number=data.number, name=data.name,
        department=data.department, services={s.service_code: s.weight for s in data.services}, duty=data.duty,
        a_clerk=data.a_clerk, b_clerk=data.b_clerk, active=data.active, setup_sequence=_sequence(envelope),
        updated_at=envelope.occurred_at)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[HallWindow.center_id, HallWindow.number],
        set_={c: stmt.excluded[c] for c in ("name", "department", "services", "duty", "a_clerk", "b_clerk",
                                            "active", "setup_sequence", "updated_at")},
        where=HallWindow.setup_sequence < stmt.excluded.setup_sequence))


def vacancy_start(w: HallWindow) -> datetime | None:
    """When the window's vacancy count starts (the queue's vacancy_of): away since, or its last beat when
    silent, the earlier; None unless a clerk is signed in, open or away."""
    if w.clerk_id is None or w.state not in SIGNED_IN:
        return None
    starts: list[datetime] = []
    if w.state == "away" and w.away_since is not None:
        starts.append(w.away_since)
    if w.silent:
        starts.append(w.last_beat_at or w.state_since or w.updated_at)
    return min(starts) if starts else None


def window_spans(plan: schedule.DayPlan, window: str) -> list[tuple[time, time]]:
    spans = [(p.start, p.end) for p in plan.periods]
    if plan.noon_service is not None and window in plan.noon_windows:
        spans.append((plan.noon_service.start, plan.noon_service.end))
    return sorted(spans)


def vacancy_moment(hall: HallSchedule, calendar: WorkCalendar, center_id: str, window: str, since: datetime,
                   limit_s: int, from_day: date | None = None) -> datetime:
    """The first instant, on `from_day` (default: the day of `since`) or later, at which the window's opening
    seconds of that day counted from `since` are over `limit_s` (the count restarts every local day, as the
    queue counts: nothing before the day began)."""
    day = from_day or clock.local_date(since)
    for _ in range(MAX_DAYS_AHEAD):
        plan = schedule.day_plan(hall, day, schedule.day_kind(calendar, center_id, day))
        left = float(limit_s)
        for a, b in window_spans(plan, window):
            lo, hi = max(since, clock.local_instant(day, a)), clock.local_instant(day, b)
            if hi <= lo:
                continue
            span = (hi - lo).total_seconds()
            if span > left:
                return lo + timedelta(seconds=left + 1)
            left -= span
        day += timedelta(days=1)
    raise ValueError(f"no opening hours within {MAX_DAYS_AHEAD} days of {since.isoformat()} at {center_id}")


async def _window(session: AsyncSession, center_id: str, number: str, at: datetime) -> HallWindow:
    """The window's row, locked (created bare when its state event comes before its set-up)."""
    await session.execute(pg_insert(HallWindow).values(center_id=center_id, number=number, updated_at=at)
                          .on_conflict_do_nothing(index_elements=[HallWindow.center_id, HallWindow.number]))
    row = await session.get(HallWindow, (center_id, number), with_for_update=True, populate_existing=True)
    assert row is not None
    return row


STATE_EVENTS = ("window.signed_in", "window.signed_out", "window.away", "window.back", "window.closed",
                "window.heartbeat_lost", "window.heartbeat_restored")


async def apply_window_event(session: AsyncSession, envelope: Envelope) -> None:
    """A window.* state event: the window's state follows it (unless an event of a later sequence already
    wrote it), then its vacancy episode: ended (timer cancelled, alert resolved) or (re)armed."""
    data = envelope.payload()
    sequence = _sequence(envelope)
    w = await _window(session, data.center_id, data.window, envelope.occurred_at)  # type: ignore[attr-defined]
    if w.state_sequence >= sequence:
        return
    before = w.vacancy_since
    note = _apply_state(w, data, envelope.occurred_at)
    w.state_sequence, w.updated_at = sequence, envelope.occurred_at
    await follow_vacancy(session, w, before, note)
    await session.flush()


def _apply_state(w: HallWindow, data: Any, at: datetime) -> str:
    """Write the event into the row; returns the note an ended vacancy is resolved with."""
    if isinstance(data, WindowSignedIn):
        w.state, w.clerk_id, w.clerk_name, w.post = "open", data.clerk.id, data.clerk.display_name, data.post
        w.state_since, w.away_since, w.away_message, w.last_beat_at, w.silent = at, None, None, at, False
        return "B岗人员已到岗签到" if data.post == "B" else "窗口人员已签到"
    if isinstance(data, WindowSignedOut):
        if w.clerk_id not in (None, data.clerk_id):
            return "窗口人员已签退"  # the B post replaced them: their sign-in follows and is the state
        w.state, w.clerk_id, w.clerk_name, w.post = "signed_out", None, None, None
        w.state_since, w.away_since, w.away_message, w.silent = at, None, None, False
        return "窗口人员已签退"
    if isinstance(data, WindowClosed):
        w.state, w.clerk_id, w.clerk_name, w.post = "closed", None, None, None
        w.state_since, w.away_since, w.away_message, w.silent = data.at, None, data.reason, False
        return f"窗口已关闭（{data.reason}）" if data.reason else "窗口已关闭"
    if isinstance(data, WindowAway):
        w.state, w.away_since, w.away_message = "away", data.at, data.message
        w.clerk_id = w.clerk_id or data.clerk_id
        w.post = w.post or data.post
        return "窗口人员已返回"
    if isinstance(data, WindowBack):
        w.state, w.away_since, w.away_message = "open", None, None
        w.clerk_id = w.clerk_id or data.clerk_id
        return "窗口人员已返回"
    if isinstance(data, WindowHeartbeatLost):
        w.silent, w.last_beat_at = True, data.last_heartbeat_at
        if w.clerk_id is None and data.clerk_id is not None and w.state in SIGNED_IN:
            w.clerk_id = data.clerk_id
        return "窗口终端心跳已恢复"
    if isinstance(data, WindowHeartbeatRestored):
        w.silent, w.last_beat_at = False, data.at
        return "窗口终端心跳已恢复"
    raise ValueError(f"not a window state event: {type(data).__name__}")


async def follow_vacancy(session: AsyncSession, w: HallWindow, before: datetime | None, note: str) -> None:
    """The vacancy count after a state event: ended (the absence is over: timer cancelled, alert resolved),
    begun, or moved within the same absence (away and silent overlapping: one episode, one alert)."""
    since = vacancy_start(w)
    if since == before:
        return
    key = f"{w.center_id}:{w.number}"
    w.vacancy_since, w.vacancy_pending = since, False
    if since is None:
        w.vacancy_episode = None
        await timers.cancel(session, VACANCY, key)
        await resolve_vacancy(session, w, note)
        return
    if before is None or w.vacancy_episode is None:
        w.vacancy_episode = since
    settings, hall = await hours.hall_of(session, w.center_id)
    calendar = await ladder.CALENDARS.get(session)
    moment = vacancy_moment(hall, calendar, w.center_id, w.number, since, settings.vacancy_minutes * 60)
    await timers.schedule(session, VACANCY, key, moment, {"since": since.isoformat()}, rearm=True)


async def resolve_vacancy(session: AsyncSession, w: HallWindow, note: str) -> int:
    found = (await session.scalars(select(Alert).where(
        Alert.kind == "vacant_window", Alert.center_id == w.center_id, Alert.window == w.number,
        Alert.status != "resolved").with_for_update())).all()
    for alert in found:
        await alerts.resolve(session, alert, alerts.SYSTEM, note)
    return len(found)


_WAITING_FOR = """
    SELECT count(*) FROM hall_tickets t
    WHERE t.center_id = $1 AND t.business_date = $2 AND t.status = 'waiting' AND (
        t.transferred_to_window = $3
        OR (t.transferred_to_window IS NULL AND t.transferred_to_service IS NOT NULL
            AND t.transferred_to_service = ANY($4::text[]))
        OR (t.transferred_to_window IS NULL AND t.transferred_to_service IS NULL
            AND t.service_code = ANY($4::text[]) AND ($5 OR NOT t.duty_only)))
"""


async def waiting_for(session: AsyncSession, w: HallWindow, day: date) -> int:
    """The day's waiting tickets this window could call (the queue's waiting_for): of its services, reserve
    ones too (a duty-only walk-in at a duty window only), transferred to one of them, or to this window."""
    db = await driver_connection(session)
    return int(await db.fetchval(_WAITING_FOR, w.center_id, day, w.number, list(w.services), w.duty))


async def evaluate_vacancy(session: AsyncSession, w: HallWindow, due_moment: datetime | None = None) -> None:
    """The window's vacancy now: over the limit with tickets waiting -> the alert; over it with nothing
    waiting -> pending (checked again when a ticket arrives); not over it (yet, or again on a new day) ->
    the timer re-armed for the moment it will be."""
    since = w.vacancy_since
    if since is None:
        w.vacancy_pending = False
        return
    now = clock.now()
    settings, hall = await hours.hall_of(session, w.center_id)
    calendar = await ladder.CALENDARS.get(session)
    plan = hours.plan(hall, calendar, w.center_id, now)
    limit = settings.vacancy_minutes * 60
    counted = schedule.opening_seconds(plan, w.number, since, now)
    if counted <= limit:
        w.vacancy_pending = False
        moment = vacancy_moment(hall, calendar, w.center_id, w.number, since, limit, clock.local_date(now))
        await timers.schedule(session, VACANCY, f"{w.center_id}:{w.number}", max(moment, now + timedelta(seconds=1)),
                              {"since": since.isoformat()}, rearm=True)
        return
    waiting = await waiting_for(session, w, clock.local_date(now))
    if waiting == 0:
        w.vacancy_pending = True
        return
    w.vacancy_pending = False
    reason = "away" if w.state == "away" and w.away_since == since else "silent"
    what = f"暂离（{w.away_message}）" if reason == "away" and w.away_message else \
        "暂离" if reason == "away" else "终端无心跳"
    post = f"，{w.post}岗" if w.post else ""
    who = f"（{w.clerk_name or w.clerk_id}{post}）" if w.clerk_id else ""
    await alerts.raise_alert(session, NewAlert(
        cause_key=f"vacant:{w.center_id}:{w.number}:{(w.vacancy_episode or since).astimezone(UTC):%Y%m%dT%H%M%SZ}",
        kind="vacant_window",
        center_id=w.center_id, window=w.number, department=w.department,
        handler=Handler(id=w.clerk_id, display_name=w.clerk_name or w.clerk_id) if w.clerk_id else None,
        due_moment=due_moment or now - timedelta(seconds=counted - limit),
        details={"since": since.isoformat(), "reason": reason, "post": w.post, "waiting": waiting,
                 "counted_s": counted, "limit_s": limit},
        text=(f"空岗：{w.number}号窗口{who}自{_hm(since)}起{what}，在岗时间内已超过{settings.vacancy_minutes}分钟，"
              f"仍有{waiting}人等候该窗口办理，且无B岗顶岗。")))


async def on_vacancy(session: AsyncSession, payload: dict[str, Any], timer: timers.Timer) -> None:
    center_id, number = timer.key.split(":", 1)
    w = await session.get(HallWindow, (center_id, number), with_for_update=True, populate_existing=True)
    if w is None or w.vacancy_since is None or not _same(w.vacancy_since, payload.get("since")):
        return  # the episode ended or another began
    await evaluate_vacancy(session, w, timer.due_at)
    await session.flush()


async def recheck_pending(session: AsyncSession, center_id: str) -> None:
    """A ticket arrived: the centre's windows over the limit with nothing waiting are checked again."""
    rows = (await session.scalars(select(HallWindow).where(
        HallWindow.center_id == center_id, HallWindow.vacancy_pending).with_for_update()
        .execution_options(populate_existing=True))).all()
    for w in rows:
        await evaluate_vacancy(session, w)
    await session.flush()


# --- tickets -------------------------------------------------------------------------------------------

_COLUMNS = ("ticket_id", "center_id", "business_date", "service_code", "department", "number", "kind", "channel",
            "duty_only", "status", "issued_at", "effective_arrival", "window", "clerk_id", "post", "called_at",
            "started_at", "ended_at", "wait_s", "service_s", "transferred_at", "transferred_to_window",
            "transferred_to_service", "recalls", "requeues", "updated_at", "last_event_sequence")
_ALWAYS = ("status", "department", "updated_at", "last_event_sequence")
# what each event sets on a row it finds (besides _ALWAYS); an expression of t (the row) and excluded
_SETS: dict[str, dict[str, str]] = {
    "ticket.issued": {c: f'excluded."{c}"' for c in _COLUMNS if c not in ("ticket_id",) + _ALWAYS},
    "ticket.called": {"window": 'excluded."window"', "clerk_id": "excluded.clerk_id", "post": "excluded.post",
                      "called_at": "coalesce(t.called_at, excluded.called_at)", "wait_s": "excluded.wait_s"},
    "ticket.recalled": {"window": 'excluded."window"', "clerk_id": "excluded.clerk_id", "post": "excluded.post",
                        "recalls": "excluded.recalls"},
    "ticket.started": {"window": 'excluded."window"', "clerk_id": "excluded.clerk_id",
                       "started_at": "coalesce(t.started_at, excluded.started_at)", "wait_s": "excluded.wait_s"},
    "ticket.finished": {"window": 'excluded."window"', "clerk_id": "excluded.clerk_id", "ended_at": "excluded.ended_at",
                        "wait_s": "excluded.wait_s", "service_s": "excluded.service_s"},
    "ticket.transferred": {"transferred_at": "excluded.transferred_at",
                           "transferred_to_window": "excluded.transferred_to_window",
                           "transferred_to_service": "excluded.transferred_to_service",
                           "service_s": "t.service_s + excluded.service_s"},
    "ticket.requeued": {"effective_arrival": "excluded.effective_arrival", "requeues": "t.requeues + 1"},
    "ticket.skipped": {"window": 'excluded."window"', "clerk_id": "excluded.clerk_id"},
    "ticket.cancelled": {"ended_at": "excluded.ended_at"},
    "ticket.expired": {"ended_at": "excluded.ended_at"},
}
TICKET_EVENTS = tuple(_SETS)
_ARMS = frozenset({"ticket.issued", "ticket.requeued"})
_ARRIVALS = frozenset({"ticket.issued", "ticket.requeued", "ticket.transferred"})


def _ticket_sql(event_type: str) -> str:
    sets = {**{c: f"excluded.{c}" for c in _ALWAYS}, **_SETS[event_type]}
    cols = ", ".join(f'"{c}"' for c in _COLUMNS)
    params = ", ".join(f"${i}" for i in range(1, len(_COLUMNS) + 1))
    n = len(_COLUMNS)
    if event_type in _ARMS:  # the long-wait timer armed (again) for the new arrival
        timer = f"""
        , armed AS (
            INSERT INTO timers (kind, key, due_at, payload, created_at, attempts)
            SELECT '{WAIT}', $1::bigint::text, ${n + 1}, ${n + 2}::jsonb, ${n + 3}, 0 FROM up WHERE up.status = 'waiting'
            ON CONFLICT (kind, key) DO UPDATE SET due_at = excluded.due_at, payload = excluded.payload, attempts = 0,
                last_error = NULL, fired_at = NULL
        )"""
    elif event_type == "ticket.transferred":
        timer = ""
    else:  # the ticket no longer waits: its long-wait moment is gone
        timer = f"""
        , gone AS (
            DELETE FROM timers WHERE kind = '{WAIT}' AND key = $1::bigint::text AND fired_at IS NULL
                AND EXISTS (SELECT 1 FROM up WHERE up.status <> 'waiting')
        )"""
    return f"""
        WITH up AS (
            INSERT INTO hall_tickets AS t ({cols}) VALUES ({params})
            ON CONFLICT (ticket_id) DO UPDATE SET {", ".join(f'"{c}" = {e}' for c, e in sets.items())}
            WHERE t.last_event_sequence < excluded.last_event_sequence
            RETURNING t.status, t.long_wait_alerted
        ){timer}
        SELECT * FROM up"""


_TICKET_SQL = {event_type: _ticket_sql(event_type) for event_type in TICKET_EVENTS}
_STATUS = {"ticket.issued": "waiting", "ticket.called": "called", "ticket.recalled": "called",
           "ticket.started": "serving", "ticket.finished": "done", "ticket.transferred": "waiting",
           "ticket.requeued": "waiting", "ticket.skipped": "no_show", "ticket.cancelled": "cancelled",
           "ticket.expired": "expired"}

_AT_ISSUE = """
    SELECT (SELECT wait_threshold_minutes FROM hall_services WHERE center_id = $1 AND code = $2) AS threshold,
           EXISTS (SELECT 1 FROM hall_windows WHERE center_id = $1 AND vacancy_pending) AS pending,
           (SELECT schedule FROM hall_copies WHERE center_id = $1) AS schedule,
           (SELECT schedule_sequence FROM hall_copies WHERE center_id = $1) AS schedule_sequence
"""
_SCHEDULES: dict[tuple[str, int], HallSchedule] = {}


def _schedule_of(center_id: str, raw: Any, sequence: int | None) -> HallSchedule:
    """The centre's schedule parsed once per version (a ticket is issued every few seconds)."""
    if raw is None:
        return schedule.DEFAULT_SCHEDULE
    key = (center_id, sequence or 0)
    found = _SCHEDULES.get(key)
    if found is None:
        if len(_SCHEDULES) > 1000:
            _SCHEDULES.clear()
        found = _SCHEDULES[key] = HallSchedule.model_validate(json.loads(raw) if isinstance(raw, str) else raw)
    return found


async def apply_ticket_event(session: AsyncSession, envelope: Envelope) -> None:
    data: Any = envelope.payload()
    facts = data.ticket
    at = envelope.occurred_at
    kind = envelope.type
    call = getattr(data, "call", None)
    values: dict[str, Any] = {c: None for c in _COLUMNS}
    values.update(
        ticket_id=facts.ticket_id, center_id=facts.center_id, business_date=facts.business_date,
        service_code=facts.service_code, department=facts.department, number=facts.number, kind=facts.kind,
        channel=facts.channel, duty_only=facts.duty_only, status=_STATUS[kind], issued_at=facts.issued_at,
        effective_arrival=getattr(data, "effective_arrival", facts.issued_at), service_s=0, recalls=0, requeues=0,
        updated_at=at, last_event_sequence=_sequence(envelope))
    if call is not None:
        values.update(window=call.window, clerk_id=call.clerk.id if call.clerk else None, post=call.post,
                      wait_s=call.wait_s, called_at=at)
    if kind == "ticket.recalled":
        values["recalls"] = data.recalls
    if kind in ("ticket.started", "ticket.finished", "ticket.skipped"):
        values.update(window=data.window, clerk_id=data.clerk_id)
    if kind == "ticket.started":
        values.update(started_at=at, wait_s=data.wait_s)
    if kind == "ticket.finished":
        values.update(ended_at=at, wait_s=data.wait_s, service_s=data.service_s)
    if kind == "ticket.transferred":
        values.update(transferred_at=at, transferred_to_window=data.to_window,
                      transferred_to_service=data.to_service_code, service_s=data.service_s)
    if kind in ("ticket.cancelled", "ticket.expired"):
        values["ended_at"] = at
    args = [values[c] for c in _COLUMNS]
    db = await driver_connection(session)
    pending = False
    if kind in _ARMS:
        first = await db.fetchrow(_AT_ISSUE, facts.center_id, facts.service_code)
        assert first is not None
        pending = bool(first["pending"])
        threshold = first["threshold"] or DEFAULT_WAIT_MINUTES
        hall = _schedule_of(facts.center_id, first["schedule"], first["schedule_sequence"])
        calendar = await ladder.CALENDARS.get(session)
        arrival = values["effective_arrival"]
        due = hours.add_opening_time(hall, calendar, facts.center_id, arrival, threshold * 60)
        args += [due, json.dumps({"arrival": arrival.isoformat(), "threshold_minutes": threshold}), clock.now()]
    elif kind in _ARRIVALS:
        pending = bool(await db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM hall_windows WHERE center_id = $1 AND vacancy_pending)", facts.center_id))
    row = await db.fetchrow(_TICKET_SQL[kind], *args)
    if row is None:
        return  # an older or repeated event
    if row["long_wait_alerted"] and row["status"] != "waiting":
        await _resolve_by_cause(session, f"long_wait:{facts.ticket_id}", "已叫号" if row["status"] in (
            "called", "serving", "done") else "号票已取消或过期")
    if pending:
        await recheck_pending(session, facts.center_id)


async def _resolve_by_cause(session: AsyncSession, cause_key: str, note: str) -> None:
    alert = await session.scalar(select(Alert).where(Alert.cause_key == cause_key, Alert.status != "resolved")
                                 .with_for_update())
    if alert is not None:
        await alerts.resolve(session, alert, alerts.SYSTEM, note)


async def on_wait(session: AsyncSession, payload: dict[str, Any], timer: timers.Timer) -> None:
    t = await session.get(HallTicket, int(timer.key), with_for_update=True, populate_existing=True)
    if t is None or t.status != "waiting" or not _same(t.effective_arrival, payload.get("arrival")):
        return
    threshold = int(payload.get("threshold_minutes", DEFAULT_WAIT_MINUTES))
    service = await session.get(HallService, (t.center_id, t.service_code))
    name = service.name if service is not None else t.service_code
    alert = await alerts.raise_alert(session, NewAlert(
        cause_key=f"long_wait:{t.ticket_id}", kind="long_wait", center_id=t.center_id, department=t.department,
        item_name=name, due_moment=timer.due_at,
        details={"ticket_id": t.ticket_id, "number": t.number, "service_code": t.service_code,
                 "arrival": t.effective_arrival.isoformat(), "threshold_minutes": threshold},
        text=(f"等候超时：{t.number}号（{name}）自{_hm(t.effective_arrival)}起等候，按服务时间计已超过{threshold}分钟，"
              f"仍未叫号。")))
    if alert is not None:
        t.long_wait_alerted = True
        await session.flush()


# --- staff appointment requests ------------------------------------------------------------------------

async def apply_request_event(session: AsyncSession, envelope: Envelope) -> None:
    data = envelope.payload()
    assert isinstance(data, AppointmentRequested | AppointmentConfirmed | AppointmentDeclined)
    r = data.request
    answered = not isinstance(data, AppointmentRequested)
    values: dict[str, Any] = dict(
        request_id=r.request_id, center_id=r.center_id, service_code=r.service_code, department=r.department,
        channel=r.channel, requested_at=r.requested_at, due_at=r.due_at, phone_masked=r.phone_masked,
        outcome=None, answered_at=None, on_time=None, updated_at=envelope.occurred_at,
        last_event_sequence=_sequence(envelope))
    if isinstance(data, AppointmentConfirmed | AppointmentDeclined):
        values.update(outcome="confirmed" if isinstance(data, AppointmentConfirmed) else "declined",
                      answered_at=data.answered_at, on_time=data.on_time)
    stmt = pg_insert(HallAppointmentRequest).values(**values)
    written = (await session.execute(stmt.on_conflict_do_update(
        index_elements=[HallAppointmentRequest.request_id],
        set_={c: stmt.excluded[c] for c in values if c != "request_id"},
        where=HallAppointmentRequest.last_event_sequence < stmt.excluded.last_event_sequence)
        .returning(HallAppointmentRequest.request_id))).first()
    if written is None:
        return
    key = str(r.request_id)
    if answered:
        await timers.cancel(session, REQUEST, key)
        await _resolve_by_cause(session, f"appointment_request:{r.request_id}", "预约申请已答复")
    else:
        await timers.schedule(session, REQUEST, key, r.due_at, {"due_at": r.due_at.isoformat()})


async def on_request(session: AsyncSession, payload: dict[str, Any], timer: timers.Timer) -> None:
    r = await session.get(HallAppointmentRequest, int(timer.key), populate_existing=True)
    if r is None or r.answered_at is not None:
        return
    service = await session.get(HallService, (r.center_id, r.service_code))
    name = service.name if service is not None else r.service_code
    words = {"in_person": "当面", "phone": "电话", "letter": "信函"}.get(r.channel, "")
    await alerts.raise_alert(session, NewAlert(
        cause_key=f"appointment_request:{r.request_id}", kind="appointment_request", center_id=r.center_id,
        department=r.department, item_name=name, due_at=r.due_at, due_moment=timer.due_at,
        details={"request_id": r.request_id, "channel": r.channel, "phone_masked": r.phone_masked},
        text=(f"预约申请未答复：{clock.local_date(r.requested_at):%m月%d日}受理的{words}预约申请（{name}，"
              f"联系电话{r.phone_masked}）已超过答复时限（{r.due_at.astimezone(clock.LOCAL_TZ):%m月%d日%H:%M}），"
              f"尚未答复。")))


# --- inquiries -----------------------------------------------------------------------------------------

async def apply_inquiry_event(session: AsyncSession, envelope: Envelope) -> None:
    data = envelope.payload()
    assert isinstance(data, InquiryRegistered | InquiryAnswered)
    q = data.inquiry
    values: dict[str, Any] = dict(
        id=q.id, center_id=q.center_id, channel=q.channel, item_code=q.item_code, department=q.department,
        taken_by_id=q.taken_by.id, taken_by_name=q.taken_by.display_name, window=q.window,
        registered_at=q.registered_at, status=q.status, promised_reply_at=q.promised_reply_at,
        answered_at=None, on_time=None, updated_at=envelope.occurred_at, last_event_sequence=_sequence(envelope))
    if isinstance(data, InquiryAnswered):
        values.update(status="answered", answered_at=data.answered_at, on_time=data.on_time)
    elif q.status == "answered":
        values["answered_at"] = q.registered_at  # answered at once
    stmt = pg_insert(HallInquiry).values(**values)
    written = (await session.execute(stmt.on_conflict_do_update(
        index_elements=[HallInquiry.id], set_={c: stmt.excluded[c] for c in values if c != "id"},
        where=HallInquiry.last_event_sequence < stmt.excluded.last_event_sequence)
        .returning(HallInquiry.id))).first()
    if written is None:
        return
    key = str(q.id)
    if values["answered_at"] is not None:
        await timers.cancel(session, INQUIRY, key)
        await _resolve_by_cause(session, f"inquiry:{q.id}", "咨询已答复")
    elif q.promised_reply_at is not None:
        await timers.schedule(session, INQUIRY, key, q.promised_reply_at,
                              {"promised_reply_at": q.promised_reply_at.isoformat()})


async def on_inquiry(session: AsyncSession, payload: dict[str, Any], timer: timers.Timer) -> None:
    q = await session.get(HallInquiry, int(timer.key), populate_existing=True)
    if q is None or q.answered_at is not None or q.promised_reply_at is None:
        return
    where = f"（{q.window}号窗口）" if q.window else ""
    await alerts.raise_alert(session, NewAlert(
        cause_key=f"inquiry:{q.id}", kind="inquiry", center_id=q.center_id, window=q.window,
        department=q.department, handler=Handler(id=q.taken_by_id, display_name=q.taken_by_name),
        due_at=q.promised_reply_at, due_moment=timer.due_at, details={"inquiry_id": q.id, "channel": q.channel},
        text=(f"咨询未按时答复：首问责任人{q.taken_by_name}{where}"
              f"{clock.local_date(q.registered_at):%m月%d日}登记的咨询承诺于"
              f"{q.promised_reply_at.astimezone(clock.LOCAL_TZ):%m月%d日%H:%M}前答复，至今未答复。")))
