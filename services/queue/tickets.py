"""Tickets (号票): issuing with gap-free daily numbers, calling the next one by the rule, and what a window
does with it after. The business rules; they write state and outbox rows and never commit.

A call is one transaction: the window's row is locked (one call at a time per window, and its N:1 streak
read and written under that lock), the waiting tickets are read as a snapshot, the pure rule
(`calling.choose_next`) picks one, and that ticket is taken with `FOR UPDATE SKIP LOCKED`: a ticket another
window is taking at this instant is skipped and the rule picks again from the same snapshot without it,
so two windows never get the same ticket and neither waits for the other."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from services.queue import calling, metrics, repository, setup, statements, windows
from services.queue.models import Center, Service, Staff, Ticket, Window
from shared import clock, schedule
from shared.auth import Principal, Role
from shared.calendar.engine import WorkCalendar
from shared.db import driver_connection
from shared.errors import AppError, Conflict, Forbidden, NotFound
from shared.events.catalog import (
    CallFacts,
    Channel,
    Clerk,
    QueueSettings,
    TicketCalled,
    TicketCancelled,
    TicketExpired,
    TicketFacts,
    TicketFinished,
    TicketIssued,
    TicketRecalled,
    TicketRequeued,
    TicketSkipped,
    TicketStarted,
    TicketTransferred,
    TicketTurnNear,
    WaitingCounts,
    WindowSignedIn,
    WindowSignedOut,
)
from shared.events.outbox import Outgoing, publish, publish_all
from shared.pii import PersonalData, PersonalDataError

PRODUCER = "queue"
log = logging.getLogger("services.queue.tickets")
LOOKUP_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a slip and typed on a phone
ESTIMATE_WINDOW = timedelta(hours=2)


@dataclass(frozen=True)
class Context:
    """What the rules need besides the session: the personal-data keys and the calendar snapshot."""

    pii: PersonalData
    calendar: WorkCalendar


day_kind = schedule.day_kind


def channel_of(principal: Principal | None) -> Channel:
    if principal is None:
        return "online"
    return "kiosk" if principal.role == Role.KIOSK else "staff"


def facts(ticket: Ticket, department: str | None = None) -> TicketFacts:
    return TicketFacts(ticket_id=ticket.id, center_id=ticket.center_id, business_date=ticket.business_date,
                       service_code=ticket.service_code, department=department, number=ticket.number,
                       kind=ticket.kind, channel=ticket.channel, issued_at=ticket.issued_at,
                       duty_only=ticket.duty_only)


# issuing

@dataclass(frozen=True)
class Issued:
    ticket: Ticket
    people_ahead: int
    estimated_wait_s: int


async def issue_ticket(ctx: Context, session: AsyncSession, center_id: str, service_code: str, *, kind: str,
                       channel: Channel, id_number: str | None = None, phone: str | None = None) -> Issued:
    """A walk-in or green-channel ticket now, if the hall issues now; its number is the service's next of
    the local business day. (The caller has checked that it may act for the centre.)"""
    db = await driver_connection(session)
    now = clock.now()
    today, local_now = clock.local_date(now), now.astimezone(clock.LOCAL_TZ).time().replace(tzinfo=None)
    found = await statements.issue_context(db, center_id, service_code, today)
    if found.center is None:
        raise NotFound(f"centre {center_id} does not exist", field="center_id")
    center, service = found.center, found.service
    if service is None:
        raise AppError(f"centre {center_id} has no service {service_code}", field="service_code", status=422,
                       code="unknown_service")
    if local_now >= center.settings.day_close_time or found.day_closed:
        raise Conflict("今日业务已结束，暂停取号", code="day_closed", field="center_id")
    plan = schedule.day_plan(center.schedule or setup.DEFAULT_SCHEDULE, today,
                             day_kind(ctx.calendar, center.id, today))
    decision = schedule.issuing_decision(plan, local_now, appointment=False)
    decision.raise_if_refused()
    if not service.active:
        raise Conflict(f"{service.name}暂停办理", field="service_code", code="service_inactive")
    person = _person(ctx.pii, id_number, phone)
    if service.daily_limit_per_person is not None and (person.id_hash or person.phone_hash):
        taken = await repository.tickets_of_person(session, center.id, service.code, today,
                                                   person.id_hash, person.phone_hash)
        if taken >= service.daily_limit_per_person:
            raise Conflict(f"今日{service.name}每人限取{service.daily_limit_per_person}号，已取满",
                           field="id_number" if person.id_hash else "phone", code="daily_limit_reached")
    # the estimate first, the number last: the counter's row stays locked from its increment to the commit
    ahead = await statements.ahead_of_new_ticket(db, center.id, today, service.code, kind, now)
    wait_s = await wait_for(db, center.id, service, ahead, now)
    ticket = await statements.insert_ticket(
        db, center_id=center.id, day=today, service=service, lookup_code=_lookup_code(), kind=kind, channel=channel,
        duty_only=decision.duty_only, now=now, id_hash=person.id_hash, id_masked=person.id_masked,
        phone_hash=person.phone_hash, phone_masked=person.phone_masked,
        phone_encrypted=person.phone_encrypted.encode() if person.phone_encrypted else None)
    issued = Outgoing(TicketIssued(
        ticket=facts(ticket, service.department), people_ahead=ahead, estimated_wait_s=wait_s,
        id_number_hash=person.id_hash, id_number_masked=person.id_masked, phone_hash=person.phone_hash,
        phone_masked=person.phone_masked, phone_sealed=person.phone_sealed),
        subject=f"ticket:{ticket.id}", center_id=center.id)
    await publish_all(session, PRODUCER, [issued, await waiting_counts(session, center.id, today)])
    metrics.count(session, center.id, service.code, "issued")
    return Issued(ticket, ahead, wait_s)


@dataclass(frozen=True)
class _Person:
    id_hash: str | None = None
    id_masked: str | None = None
    phone_hash: str | None = None
    phone_masked: str | None = None
    phone_encrypted: str | None = None
    phone_sealed: str | None = None


def _person(pii: PersonalData, id_number: str | None, phone: str | None) -> _Person:
    try:
        ident = pii.id_card(id_number) if id_number else None
    except PersonalDataError as exc:
        raise AppError(exc.reason, field="id_number", status=422, code="invalid_personal_data") from exc
    try:
        tel = pii.phone(phone) if phone else None
    except PersonalDataError as exc:
        raise AppError(exc.reason, field="phone", status=422, code="invalid_personal_data") from exc
    return _Person(id_hash=ident["hash"] if ident else None, id_masked=ident["masked"] if ident else None,
                   phone_hash=tel["hash"] if tel else None, phone_masked=tel["masked"] if tel else None,
                   phone_encrypted=tel["encrypted"] if tel else None,
                   phone_sealed=tel["sealed_for_notify"] if tel else None)


def _lookup_code() -> str:
    return "".join(secrets.choice(LOOKUP_ALPHABET) for _ in range(6))


def candidate(ticket: Ticket) -> calling.Candidate:
    return calling.Candidate(
        ticket_id=ticket.id, service_code=ticket.service_code, kind=ticket.kind,  # type: ignore[arg-type]
        effective_arrival=ticket.effective_arrival, duty_only=ticket.duty_only,
        transferred_at=ticket.transferred_at, transferred_to_window=ticket.transferred_to_window,
        transferred_to_service=ticket.transferred_to_service,
        slot_start=ticket.slot_start if ticket.kind == "appointment" else None, checked_in_at=ticket.checked_in_at)


async def estimate(session: AsyncSession, ticket: Ticket, service: Service, now: datetime) -> tuple[int, int]:
    """People ahead (whom call-next would take first if nothing else arrived) and the estimated wait."""
    waiting = await repository.waiting_tickets(session, ticket.center_id, ticket.business_date)
    ahead = calling.people_ahead(candidate(ticket), [candidate(t) for t in waiting], now)
    return ahead, await wait_for(await driver_connection(session), ticket.center_id, service, ahead, now)


async def wait_for(db: asyncpg.Connection, center_id: str, service: Service, ahead: int, now: datetime) -> int:
    """The estimated wait of a ticket with `ahead` people before it: that many times the service's median
    service time over the last two hours (its default without data), divided by the open windows serving it
    with a weight above 0 (one, if none is open yet)."""
    median, windows = await statements.service_pace(db, center_id, service.code, now - ESTIMATE_WINDOW)
    per_person = median if median is not None else service.default_service_minutes * 60
    return round(ahead * per_person / max(1, windows))


async def waiting_counts(session: AsyncSession, center_id: str, day: date) -> Outgoing:
    """The centre's absolute waiting counts as of this transaction, as an event to publish with the change.
    Read under a per-centre lock held to the commit, so each count event reflects every change committed
    before it: applied in order (or twice), a display ends at the right counts."""
    db = await driver_connection(session)
    await statements.lock_waiting_counts(db, center_id)
    counts = await statements.waiting_counts(db, center_id, day)
    return Outgoing(WaitingCounts(center_id=center_id, business_date=day, waiting=counts),
                    subject=f"waiting:{center_id}", center_id=center_id)


async def publish_waiting_counts(session: AsyncSession, center_id: str, day: date) -> None:
    await publish_all(session, PRODUCER, [await waiting_counts(session, center_id, day)])


# windows: who is at them

async def sign_in(session: AsyncSession, window: Window, principal: Principal) -> Window:
    """The clerk takes the window's A or B post (AB角), as the window's assignment says. The B post may step in
    for an A post who is away or silent (the A post's session ends there); a sign-in counts as a heartbeat of
    the window's terminal."""
    windows.check_at_terminal(principal, window)
    if window.a_clerk is None and window.b_clerk is None:
        post = "A"  # a window nobody is assigned to yet: whoever signs in at its terminal holds it
    elif principal.subject == window.a_clerk:
        post = "A"
    elif principal.subject == window.b_clerk:
        post = "B"
    else:
        raise Forbidden(f"user {principal.subject} holds neither post of window {window.number}",
                        code="not_assigned")
    now = clock.now()
    holder = window.clerk_id if window.state in windows.SIGNED_IN else None
    replaced = None
    if holder not in (None, principal.subject):
        stands_in = post == "B" and window.post == "A" and (window.state == "away" or windows.silent(window, now))
        if not stands_in:
            raise Conflict(f"window {window.number} is held by {holder}: they sign out first", field="window",
                           code="window_taken")
        if window.active_ticket_id is not None:
            raise Conflict(f"ticket {window.active_ticket_id} is still active at window {window.number}",
                           field="window", code="ticket_active", ticket_id=window.active_ticket_id)
        replaced = holder
        await windows.end_session_for_takeover(session, window, holder, "B岗接替", now)
    window.state, window.clerk_id, window.post, window.device = "open", principal.subject, post, principal.device
    window.state_since, window.away_message, window.closed_reason, window.updated_at = now, None, None, now
    await windows.restore_at_sign_in(session, window, now)
    await session.flush()
    windows.log(session, window, "signed_in", now, clerk_id=principal.subject, post=post)
    staff = await repository.get_staff(session, principal.subject)
    await publish(session, PRODUCER, WindowSignedIn(
        center_id=window.center_id, window=window.number, post=post,
        clerk=clerk_sign(principal.subject, staff), device=principal.device, replaces=replaced),
        subject=f"window:{window.center_id}:{window.number}", center_id=window.center_id)
    return window


async def sign_out(session: AsyncSession, window: Window, principal: Principal) -> Window:
    windows.check_at_terminal(principal, window)
    if window.clerk_id != principal.subject or window.state not in windows.SIGNED_IN:
        raise Conflict(f"user {principal.subject} is not signed in at window {window.number}", field="window",
                       code="not_signed_in")
    windows.no_active_ticket(window, "signing out")
    now = clock.now()
    post = window.post
    window.state, window.clerk_id, window.post, window.device = "signed_out", None, None, None
    window.state_since, window.away_message, window.heartbeat_lost_at, window.updated_at = now, None, None, now
    await session.flush()
    windows.log(session, window, "signed_out", now, clerk_id=principal.subject, post=post)
    await publish(session, PRODUCER, WindowSignedOut(center_id=window.center_id, window=window.number,
                                                     clerk_id=principal.subject),
                  subject=f"window:{window.center_id}:{window.number}", center_id=window.center_id)
    return window


def clerk_sign(user_id: str, staff: Staff | None) -> Clerk:
    if staff is None:  # the read copy has not seen the user yet: the sign shows no name rather than a wrong one
        return Clerk(id=user_id, display_name="")
    return Clerk(id=user_id, display_name=staff.display_name, post_title=staff.post_title, photo_url=staff.photo_url)


# calling

async def call_next(session: AsyncSession, center_id: str, window_number: str, principal: Principal,
                    pii: PersonalData) -> Ticket | None:
    """The ticket the rule gives this window now, called; None when nothing waits for it. The line it left
    has moved up: a ticket now near its turn is told (`pii` seals its phone for notify)."""
    principal.check_center(center_id)
    db = await driver_connection(session)
    center = await statements.center(db, center_id)
    if center is None:
        raise NotFound(f"centre {center_id} does not exist", field="center_id")
    at = await statements.window_for_call(db, center_id, window_number)
    if at is None:
        raise NotFound(f"centre {center_id} has no window {window_number}", field="window")
    window = at.window
    windows.check_at_terminal(principal, window)
    if window.clerk_id != principal.subject or window.state != "open":
        raise Conflict(f"sign in at window {window.number} first", field="window", code="not_signed_in")
    if window.active_ticket_id is not None:
        raise Conflict(f"window {window.number} is serving {at.active_number or window.active_ticket_id}: "
                       "finish, skip or transfer it first", field="window", code="ticket_active",
                       ticket_id=window.active_ticket_id)
    now = clock.now()
    today = clock.local_date(now)
    view = calling.WindowView(number=window.number, weights=at.weights, priority_streak=window.priority_streak,
                              duty=window.duty)
    candidates = await statements.call_candidates(db, center_id, today, list(at.weights), window.number)
    ranking = calling.Ranking(view, candidates, now)
    gone: set[int] = set()
    while (choice := ranking.choose(center.settings.green_channel_n)) is not None:
        taken = await statements.take_for_call(db, choice.ticket_id, window=window.number, clerk_id=principal.subject,
                                               post=window.post, now=now)
        gone.add(choice.ticket_id)
        if taken is not None:
            break
        ranking.drop(choice.ticket_id)  # another window is taking it right now (or has): the next best
    else:
        return None
    ticket, department = taken
    await statements.window_called(db, window, ticket.id, choice.new_streak, now)
    clerk = Clerk(id=principal.subject, **at.clerk) if at.clerk else clerk_sign(principal.subject, None)
    call = CallFacts(window=window.number, clerk=clerk, post=window.post, wait_s=_waited(ticket, now),
                     tier=choice.tier, announcement=announce(center.settings.announcement_template, ticket.number,
                                                             window.number))
    called = Outgoing(TicketCalled(ticket=facts(ticket, department), call=call, priority_streak=choice.new_streak),
                      subject=f"ticket:{ticket.id}", center_id=center_id)
    await publish_all(session, PRODUCER, [called, await waiting_counts(session, center_id, today)])
    metrics.count(session, center_id, ticket.service_code, "called")
    metrics.waited(session, center_id, ticket.service_code, call.wait_s)
    line = calling.line_of(next(c for c in candidates if c.ticket_id == ticket.id))
    await tell_turn_near(pii, session, center_id, center.settings.turn_near_threshold, line,
                         [c for c in candidates if c.ticket_id not in gone], now)
    return ticket


async def tell_turn_near(pii: PersonalData, session: AsyncSession, center_id: str, threshold: int,
                         line: tuple[str, str], waiting: list[calling.Candidate], now: datetime) -> None:
    """The line moved up (a call, a cancel): each ticket of it with a phone whose people ahead are now at most
    the centre's threshold is told its turn is near (ticket.turn_near, sealed for notify), once."""
    first = calling.first_in_line(line, waiting, now, threshold + 1)
    if not first:
        return
    db = await driver_connection(session)
    told = await statements.mark_turn_near(db, center_id, {c.ticket_id: i for i, c in enumerate(first)}, now)
    events = []
    for near in told:
        t = near.ticket
        assert t.phone_encrypted is not None
        median, windows_open = await statements.service_pace(
            db, center_id, t.transferred_to_service or t.service_code, now - ESTIMATE_WINDOW)
        per_person = median if median is not None else near.default_minutes * 60
        events.append(Outgoing(TicketTurnNear(
            ticket=facts(t, near.department), people_ahead=near.people_ahead,
            estimated_wait_s=round(near.people_ahead * per_person / max(1, windows_open)),
            phone_hash=t.phone_hash, phone_masked=t.phone_masked,
            phone_sealed=pii.seal_for_notify(pii.decrypt(t.phone_encrypted.decode()))),
            subject=f"ticket:{t.id}", center_id=center_id))
    await publish_all(session, PRODUCER, events)


def _waited(ticket: Ticket, now: datetime) -> int:
    return max(0, int((now - ticket.effective_arrival).total_seconds()))


def announce(template: str, number: str, window: str) -> str:
    return template.replace("{number}", number).replace("{window}", window)


async def _call_facts(session: AsyncSession, ticket: Ticket, window: Window, principal: Principal,
                      settings: QueueSettings, now: datetime, *, tier: int) -> CallFacts:
    """Where, by whom and after what wait a ticket is called (or recalled: tier 0), with its announcement."""
    staff = await repository.get_staff(session, principal.subject)
    return CallFacts(window=window.number, clerk=clerk_sign(principal.subject, staff),
                     post=window.post,
                     wait_s=_waited(ticket, now), tier=tier,
                     announcement=announce(settings.announcement_template, ticket.number, window.number))


async def ticket_facts(session: AsyncSession, ticket: Ticket) -> TicketFacts:
    """The ticket as its events describe it, with its service's department (the monitor's unit)."""
    service = await repository.get_service(session, ticket.center_id, ticket.service_code)
    return facts(ticket, service.department if service else None)


# after the call

async def _my_ticket(session: AsyncSession, ticket: Ticket, principal: Principal) -> Window:
    window = await repository.get_window(session, ticket.center_id, ticket.window or "", for_update=True)
    if window is None or ticket.window is None:
        raise Conflict(f"ticket {ticket.number} is not at a window", field="ticket_id", code="not_called")
    windows.check_at_terminal(principal, window)
    return window


async def _ticket_at_my_window(db: asyncpg.Connection, ticket_id: int,
                                principal: Principal) -> tuple[Ticket, str | None, Window]:
    """The ticket and its window, both locked (the ticket first, as every action after the call locks them),
    with its service's department; the caller is the clerk signed in at that window's terminal."""
    found = await statements.ticket_for_update(db, ticket_id)
    if found is None:
        raise NotFound(f"no ticket {ticket_id}", field="ticket_id")
    ticket, department = found
    window = await statements.window_for_update(db, ticket.center_id, ticket.window) if ticket.window else None
    if window is None:
        principal.check_center(ticket.center_id)
        raise Conflict(f"ticket {ticket.number} is not at a window", field="ticket_id", code="not_called")
    windows.check_at_terminal(principal, window)
    return ticket, department, window


async def start(session: AsyncSession, ticket_id: int, principal: Principal) -> Ticket:
    """The called person has come to the window: service begins."""
    db = await driver_connection(session)
    ticket, department, window = await _ticket_at_my_window(db, ticket_id, principal)
    if ticket.status != "called" or window.active_ticket_id != ticket.id:
        raise Conflict(f"ticket {ticket.number} is {ticket.status}, not called at window {window.number}",
                       field="ticket_id", code="not_called")
    now = clock.now()
    await statements.ticket_started(db, ticket.id, now)
    ticket.status, ticket.started_at = "serving", now
    await publish(session, PRODUCER, TicketStarted(
        ticket=facts(ticket, department), window=window.number, clerk_id=principal.subject,
        wait_s=_waited(ticket, now)), subject=f"ticket:{ticket.id}", center_id=ticket.center_id)
    return ticket


async def finish(session: AsyncSession, ticket_id: int, principal: Principal) -> Ticket:
    """Service ended: the window is free for its next call."""
    db = await driver_connection(session)
    ticket, department, window = await _ticket_at_my_window(db, ticket_id, principal)
    if ticket.status != "serving" or window.active_ticket_id != ticket.id:
        raise Conflict(f"ticket {ticket.number} is {ticket.status}: only a ticket in service can finish",
                       field="ticket_id", code="not_serving")
    now = clock.now()
    started = ticket.started_at
    assert started is not None
    await statements.ticket_finished(db, ticket, now)
    ticket.status, ticket.ended_at = "done", now
    await publish(session, PRODUCER, TicketFinished(
        ticket=facts(ticket, department), window=window.number, clerk_id=principal.subject,
        wait_s=max(0, int(((ticket.called_at or started) - ticket.effective_arrival).total_seconds())),
        service_s=ticket.served_s + max(0, int((now - started).total_seconds()))),
        subject=f"ticket:{ticket.id}", center_id=ticket.center_id)
    metrics.count(session, ticket.center_id, ticket.service_code, "finished")
    metrics.served(session, ticket.center_id, ticket.service_code, (now - started).total_seconds())
    return ticket


async def recall(session: AsyncSession, center: Center, ticket: Ticket, principal: Principal) -> Ticket:
    """Call the called ticket again (重呼), up to the centre's recall limit; after it, the clerk skips it."""
    window = await _my_ticket(session, ticket, principal)
    if ticket.status != "called" or window.active_ticket_id != ticket.id:
        raise Conflict(f"ticket {ticket.number} is {ticket.status}: only a called ticket is recalled",
                       field="ticket_id", code="not_called")
    settings = setup.settings_of(center)
    if ticket.recalls >= settings.recall_limit:
        raise Conflict(f"{ticket.number}号已重呼{ticket.recalls}次，请按过号处理", field="ticket_id",
                       code="recall_limit_reached")
    now = clock.now()
    ticket.recalls += 1
    await session.flush()
    call = await _call_facts(session, ticket, window, principal, settings, now, tier=0)
    await publish(session, PRODUCER, TicketRecalled(ticket=await ticket_facts(session, ticket),
                                                    call=call, recalls=ticket.recalls),
                  subject=f"ticket:{ticket.id}", center_id=ticket.center_id)
    return ticket


async def skip(session: AsyncSession, ticket: Ticket, principal: Principal) -> Ticket:
    """The called person did not come (过号): a no-show; the window is free again."""
    window = await _my_ticket(session, ticket, principal)
    if ticket.status != "called" or window.active_ticket_id != ticket.id:
        raise Conflict(f"ticket {ticket.number} is {ticket.status}: only a called ticket is skipped",
                       field="ticket_id", code="not_called")
    now = clock.now()
    ticket.status = "no_show"
    window.active_ticket_id, window.updated_at = None, now
    await session.flush()
    await publish(session, PRODUCER, TicketSkipped(ticket=await ticket_facts(session, ticket),
                                                   window=window.number, clerk_id=principal.subject),
                  subject=f"ticket:{ticket.id}", center_id=ticket.center_id)
    metrics.count(session, ticket.center_id, ticket.service_code, "no_show")
    return ticket


def _check_staff_of(principal: Principal, center_id: str) -> None:
    principal.check_center(center_id)
    if principal.role not in STAFF_ON_FLOOR:
        raise Forbidden(f"a {principal.role} does not manage tickets", code="wrong_role")


STAFF_ON_FLOOR = (Role.CLERK, Role.CHIEF_REP, Role.HALL_MANAGER, Role.CENTER_ADMIN, Role.SYSTEM_ADMIN)


async def requeue(session: AsyncSession, center: Center, ticket: Ticket, principal: Principal) -> Ticket:
    """A no-show who came back goes into the line again, once (过号顺延): behind the next K tickets of the
    same service and kind then waiting; its effective arrival becomes just after the K-th of them (or now,
    if fewer wait)."""
    _check_staff_of(principal, ticket.center_id)
    if ticket.status != "no_show":
        raise Conflict(f"ticket {ticket.number} is {ticket.status}: only a no-show is requeued", field="ticket_id",
                       code="not_no_show")
    if ticket.requeues >= 1:
        raise Conflict(f"{ticket.number}号已顺延过一次", field="ticket_id", code="requeued_already")
    k = setup.settings_of(center).requeue_k
    now = clock.now()
    ahead = await repository.next_waiting_of(session, ticket.center_id, ticket.business_date, ticket.service_code,
                                             ticket.kind, k)
    arrival = ahead[-1].effective_arrival + timedelta(microseconds=1) if len(ahead) >= k and k > 0 else now
    ticket.status, ticket.effective_arrival, ticket.requeues = "waiting", arrival, ticket.requeues + 1
    ticket.window = ticket.clerk_id = ticket.post = None
    ticket.called_at, ticket.recalls = None, 0
    await session.flush()
    await publish(session, PRODUCER, TicketRequeued(ticket=await ticket_facts(session, ticket),
                                                    effective_arrival=arrival, behind=len(ahead) if k else 0),
                  subject=f"ticket:{ticket.id}", center_id=ticket.center_id)
    metrics.count(session, ticket.center_id, ticket.service_code, "requeued")
    await publish_waiting_counts(session, ticket.center_id, ticket.business_date)
    return ticket


async def cancel(session: AsyncSession, ticket: Ticket, principal: Principal, pii: PersonalData) -> Ticket:
    """A waiting ticket is given up (the person left, or asked at the desk); the line behind it moves up."""
    _check_staff_of(principal, ticket.center_id)
    if ticket.status != "waiting":
        raise Conflict(f"ticket {ticket.number} is {ticket.status}: only a waiting ticket is cancelled",
                       field="ticket_id", code="not_waiting")
    now = clock.now()
    line = calling.line_of(candidate(ticket))
    ticket.status, ticket.ended_at = "cancelled", now
    await session.flush()
    waiting = [candidate(t) for t in await repository.waiting_tickets(session, ticket.center_id, ticket.business_date)]
    center = await repository.get_center(session, ticket.center_id)
    assert center is not None  # a ticket's centre is never deleted
    await tell_turn_near(pii, session, ticket.center_id, setup.settings_of(center).turn_near_threshold, line,
                         waiting, now)
    await publish(session, PRODUCER, TicketCancelled(ticket=await ticket_facts(session, ticket),
                                                     by=principal.subject),
                  subject=f"ticket:{ticket.id}", center_id=ticket.center_id)
    metrics.count(session, ticket.center_id, ticket.service_code, "cancelled")
    await publish_waiting_counts(session, ticket.center_id, ticket.business_date)
    return ticket


async def transfer(session: AsyncSession, ticket: Ticket, principal: Principal, *, to_service_code: str | None,
                   to_window: str | None) -> Ticket:
    """A ticket in service moves to another window or service: it keeps its number and waits there first in
    line (tiers 1 and 2 of the rule)."""
    window = await _my_ticket(session, ticket, principal)
    if ticket.status != "serving" or window.active_ticket_id != ticket.id:
        raise Conflict(f"ticket {ticket.number} is {ticket.status}: only a ticket in service is transferred",
                       field="ticket_id", code="not_serving")
    if (to_service_code is None) == (to_window is None):
        raise AppError("give exactly one of to_service_code and to_window", field="to_service_code", status=422,
                       code="validation_failed")
    if to_window is not None:
        if to_window == window.number:
            raise AppError("a ticket is not transferred to its own window", field="to_window", status=422,
                           code="validation_failed")
        if await repository.get_window(session, ticket.center_id, to_window) is None:
            raise AppError(f"centre {ticket.center_id} has no window {to_window}", field="to_window", status=422,
                           code="unknown_window")
    if to_service_code is not None and await repository.get_service(session, ticket.center_id,
                                                                    to_service_code) is None:
        raise AppError(f"centre {ticket.center_id} has no service {to_service_code}", field="to_service_code",
                       status=422, code="unknown_service")
    now = clock.now()
    assert ticket.started_at is not None
    served = max(0, int((now - ticket.started_at).total_seconds()))
    ticket.status, ticket.served_s = "waiting", ticket.served_s + served
    ticket.transferred_at, ticket.transferred_to_window, ticket.transferred_to_service = now, to_window, to_service_code
    ticket.started_at = ticket.called_at = None
    ticket.recalls = 0
    window.active_ticket_id, window.updated_at = None, now
    await session.flush()
    await publish(session, PRODUCER, TicketTransferred(
        ticket=await ticket_facts(session, ticket), from_window=window.number,
        clerk_id=principal.subject, to_window=to_window, to_service_code=to_service_code, service_s=served),
        subject=f"ticket:{ticket.id}", center_id=ticket.center_id)
    metrics.count(session, ticket.center_id, ticket.service_code, "transferred")
    metrics.served(session, ticket.center_id, ticket.service_code, served)
    await publish_waiting_counts(session, ticket.center_id, ticket.business_date)
    return ticket


# the day

async def close_day(session: AsyncSession, center: Center, principal: Principal | None, day: date) -> int:
    """End the business day (the hall manager, or the day-close job): issuing stops and every ticket still
    waiting, or a no-show not requeued, expires; nothing carries over. Returns how many expired."""
    now = clock.now()
    await repository.mark_day(session, center.id, day, closed_at=now, by=principal.subject if principal else None)
    expired = await repository.tickets_to_expire(session, center.id, day)
    services = {s.code: s for s in await repository.list_services(session, center.id)}
    for ticket in expired:
        before = ticket.status
        ticket.status, ticket.ended_at = "expired", now
        await session.flush()
        service = services.get(ticket.service_code)  # read once for the whole close
        await publish(session, PRODUCER, TicketExpired(ticket=facts(ticket, service.department if service else None),
                                                       status_before=before),
                      subject=f"ticket:{ticket.id}", center_id=center.id)
        metrics.count(session, center.id, ticket.service_code, "expired")
    await publish_waiting_counts(session, center.id, day)
    return len(expired)


async def open_day(session: AsyncSession, center: Center, principal: Principal, day: date) -> None:
    """Open again a day the manager closed (issuing resumes, as the schedule allows)."""
    await repository.mark_day(session, center.id, day, opened_at=clock.now(), by=principal.subject)


async def close_due_days(session: AsyncSession, due: datetime) -> None:
    """The day-close job: every centre whose day-close time has come expires what still waits, of that day
    and of any earlier one (a day the job did not see close)."""
    for center in await repository.list_centers(session, None):
        settings = setup.settings_of(center)
        day = clock.local_date(due)
        last_open_day = day if due >= schedule.day_close_at(settings, day) else day - timedelta(days=1)
        for stale_day in await repository.days_with_open_tickets(session, center.id, last_open_day):
            expired = await close_day(session, center, None, stale_day)
            log.info("day closed", extra={"event": "day_closed", "center_id": center.id,
                                          "business_date": stale_day.isoformat(), "expired": expired})
