"""Appointments (预约): a service's bookable slots, booking under a per-slot lock so that a slot's capacity
holds under concurrency, check-in at the kiosk (a ticket), and cancelling. The business rules; they write
state and outbox rows and never commit.

Decisions where DOMAIN.md is silent (for the queue service's README):

- A slot instance is [start + k*minutes, +minutes) inside [start, end) of a service's `AppointmentSlot`,
  on a local date, identified by its start instant; its capacity is per instance. Two slot rules giving
  the same start: the first one counts. A booking names the slot by its start as an aware ISO 8601
  datetime (`2026-02-12T09:30:00+08:00`; any offset naming the same instant does); a naive one is a 422.
- Which weekday's slots a date has follows the hours the hall keeps that day (`schedule.day_plan`): a
  调休 Saturday or Sunday opens with Monday's hours and so offers Monday's slots; a holiday kept as a
  weekend offers its weekend day's (Saturday's on a weekday); a dated exception its own weekday's. A
  slot is bookable only if the hall is open at its start (a period, or noon service): a closed day, or
  an hour the hall is shut, is `hall_closed`.
- Slots can be booked from now (a slot that has started is `slot_past`) to the end of the 7th local day
  (today included) whatever the channel, the window the public booking page shows; a slot of a day the
  hall manager has closed is `day_closed`.
- Capacity is counted under a transaction-level advisory lock per slot instance (centre, service,
  start), held to the commit: concurrent bookings of one slot queue there, each counts what committed
  before it, so a slot never holds more than its capacity. Booked and checked-in appointments hold
  their place; a cancelled one gives it back.
- The per-person daily limit of the service (by ID-card or phone hash, any channel that gives one)
  counts that local day's tickets (not cancelled) and the appointments still booked for it, under a
  per-person advisory lock; a checked-in appointment counts once, as its ticket.
- Check-in: from 60 minutes before the slot start to 20 minutes after it, both ends included, a ticket
  of kind "appointment" (the service's next number of the day, effective arrival = check-in time);
  it is issued while the hall is open (check-ins run to closing, past the walk-in cut-off). More than
  20 minutes late: an ordinary walk-in ticket under the walk-in rules of the moment (cut-off,
  appointment-only days, duty windows on appointment-first days), with a message saying so; the
  appointment is used up either way (checked_in, linked to its ticket). More than 60 minutes early:
  409 `too_early` naming when check-in opens. The daily limit is not counted again at check-in.
- Cancelling: staff of the centre, while the appointment is booked, at any time; the person online
  with the code and the phone it was booked with (a wrong phone is the same 404 as an unknown code).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.queue import metrics, repository, setup, tickets
from services.queue.models import Appointment, Center, Service, Ticket
from shared import clock, schedule
from shared.auth import Principal
from shared.counters import next_number
from shared.db import advisory_key
from shared.errors import AppError, Conflict, NotFound
from shared.events.catalog import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentCheckedIn,
    AppointmentFacts,
    AppointmentSlot,
    Channel,
    TicketIssued,
)
from shared.events.outbox import publish

PRODUCER = tickets.PRODUCER
CHECK_IN_BEFORE = timedelta(minutes=60)
CHECK_IN_AFTER = timedelta(minutes=20)
BOOKING_DAYS = 7  # today and the next 6 local days
CODE_LENGTH = 8  # 32^8 ≈ 10^12 codes: not guessable behind the gateway's rate limit


# slots: pure functions of a service's slot rules and the day's plan

@dataclass(frozen=True, slots=True)
class SlotInstance:
    """One bookable slot of a service on a local date (UTC instants)."""

    start: datetime
    end: datetime
    capacity: int


def slot_weekday(plan: schedule.DayPlan) -> int:
    """The ISO weekday whose slots the plan's date offers: the weekday whose hours the hall keeps that day."""
    own = plan.day.isoweekday()
    if plan.source == "adjusted_working":
        return 1  # a 调休 weekend day works Monday's hours
    if plan.source == "holiday":
        return own if own >= 6 else 6  # a holiday kept as a weekend: its weekend day's (Saturday's) hours
    return own


def slot_instances(slots: Iterable[AppointmentSlot], plan: schedule.DayPlan) -> list[SlotInstance]:
    """The slots of the plan's date from the service's rules, whether or not the hall is open then."""
    weekday = slot_weekday(plan)
    found: dict[datetime, SlotInstance] = {}
    for rule in slots:
        if rule.weekday != weekday:
            continue
        step = timedelta(minutes=rule.minutes)
        start = _local(plan.day, rule.start)
        end = _local(plan.day, rule.end)
        while start + step <= end:
            found.setdefault(start, SlotInstance(start.astimezone(UTC), (start + step).astimezone(UTC),
                                                 rule.capacity))
            start += step
    return [found[k] for k in sorted(found)]


def hall_open_at(plan: schedule.DayPlan, instant: datetime) -> bool:
    """Whether the hall serves at that instant of the plan's date (an opening period, or noon service)."""
    local = instant.astimezone(clock.LOCAL_TZ)
    if plan.mode == "closed" or local.date() != plan.day:
        return False
    at = local.time().replace(tzinfo=None)
    return plan.in_period(at) or plan.in_noon_service(at)


def bookable_slots(slots: Iterable[AppointmentSlot], plan: schedule.DayPlan, now: datetime) -> list[SlotInstance]:
    """The slots of the plan's date one may book at `now`: the hall open at their start, not started yet."""
    return [s for s in slot_instances(slots, plan) if s.start > now and hall_open_at(plan, s.start)]


def _local(day: date, at: time) -> datetime:
    return datetime.combine(day, at.replace(tzinfo=None), tzinfo=clock.LOCAL_TZ)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC instants a local date starts and ends at."""
    start = datetime.combine(day, time(0), tzinfo=clock.LOCAL_TZ)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def _hm(instant: datetime) -> str:
    return instant.astimezone(clock.LOCAL_TZ).strftime("%H:%M")


def _md_hm(instant: datetime) -> str:
    local = instant.astimezone(clock.LOCAL_TZ)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def slot_rules(service: Service) -> list[AppointmentSlot]:
    return [AppointmentSlot.model_validate(rule) for rule in service.slots]


def plan_of(ctx: tickets.Context, center: Center, day: date) -> schedule.DayPlan:
    return schedule.day_plan(setup.schedule_of(center), day, tickets.day_kind(ctx.calendar, center.id, day))


def appointment_facts(appointment: Appointment) -> AppointmentFacts:
    return AppointmentFacts(
        appointment_id=appointment.id, code=appointment.code, center_id=appointment.center_id,
        service_code=appointment.service_code, slot_start=appointment.slot_start,
        channel=appointment.channel,
        id_number_hash=appointment.id_number_hash, id_number_masked=appointment.id_number_masked,
        phone_hash=appointment.phone_hash, phone_masked=appointment.phone_masked)


# booking

async def book(ctx: tickets.Context, session: AsyncSession, center: Center, service: Service, *,
               slot_start: datetime, channel: Channel, id_number: str | None = None,
               phone: str | None = None) -> Appointment:
    """Book the service's slot starting at `slot_start` (aware) if it exists, lies ahead, the hall is open
    then and a place is free; publishes appointment.booked."""
    if slot_start.tzinfo is None:
        raise AppError("give the slot start with its UTC offset, e.g. 2026-02-12T09:30:00+08:00",
                       field="slot_start", status=422, code="validation_failed")
    now = clock.now()
    if not service.active:
        raise Conflict(f"{service.name}暂停办理", field="service_code", code="service_inactive")
    person = tickets._person(ctx.pii, id_number, phone)
    # past and too far first: the calendar is asked only about the days one may book
    if slot_start <= now:
        raise Conflict("该预约时段已开始或已过，请选择以后的时段", field="slot_start", code="slot_past")
    today = clock.local_date(now)
    if slot_start - now > timedelta(days=BOOKING_DAYS + 1) or (clock.local_date(slot_start) - today).days >= BOOKING_DAYS:
        raise Conflict(f"只能预约{BOOKING_DAYS}天内的时段", field="slot_start", code="slot_too_far")
    day = clock.local_date(slot_start)
    plan = plan_of(ctx, center, day)
    if plan.mode == "closed":
        raise Conflict(f"{day.month}月{day.day}日大厅不办公，不能预约", field="slot_start", code="hall_closed")
    slot = next((s for s in slot_instances(slot_rules(service), plan) if s.start == slot_start), None)
    if slot is None:
        raise Conflict(f"{service.name}没有{_md_hm(slot_start)}开始的预约时段", field="slot_start",
                       code="no_such_slot")
    if not hall_open_at(plan, slot.start):
        raise Conflict(f"{_md_hm(slot.start)}不在大厅办公时间内，不能预约", field="slot_start", code="hall_closed")
    if day == today and await repository.day_closed(session, center.id, today):
        raise Conflict("今日业务已结束，不能预约今日时段", field="slot_start", code="day_closed")
    if service.daily_limit_per_person is not None and (person.id_hash or person.phone_hash):
        await _check_daily_limit(session, center, service, day, person.id_hash, person.phone_hash)
    await repository.lock_for_transaction(session, advisory_key(
        f"queue.slot:{center.id}:{service.code}:{slot.start.isoformat()}"))
    if await repository.slot_bookings(session, center.id, service.code, slot.start) >= slot.capacity:
        raise Conflict(f"{_md_hm(slot.start)}的{service.name}预约已满，请选择其他时段", field="slot_start",
                       code="slot_full", capacity=slot.capacity)
    appointment = Appointment(
        code=await _new_code(session), center_id=center.id, service_code=service.code, slot_start=slot.start,
        slot_end=slot.end, status="booked", channel=channel, id_number_hash=person.id_hash,
        id_number_masked=person.id_masked, phone_hash=person.phone_hash, phone_masked=person.phone_masked,
        phone_encrypted=person.phone_encrypted.encode() if person.phone_encrypted else None,
        booked_at=now, updated_at=now)
    session.add(appointment)
    await session.flush()
    await publish(session, PRODUCER, AppointmentBooked(appointment=appointment_facts(appointment),
                                                       phone_sealed=person.phone_sealed),
                  subject=f"appointment:{appointment.id}", center_id=center.id)
    return appointment


async def _check_daily_limit(session: AsyncSession, center: Center, service: Service, day: date,
                             id_hash: str | None, phone_hash: str | None) -> None:
    """The person's tickets and still-booked appointments of the service that day stay under its limit."""
    for each in sorted(h for h in (id_hash, phone_hash) if h):  # in one order: two bookings never deadlock
        await repository.lock_for_transaction(session, advisory_key(f"queue.person:{center.id}:{service.code}:{each}"))
    start, end = day_bounds(day)
    taken = (await repository.tickets_of_person(session, center.id, service.code, day, id_hash, phone_hash)
             + await repository.booked_appointments_of_person(session, center.id, service.code, start, end,
                                                              id_hash, phone_hash))
    limit = service.daily_limit_per_person
    if limit is not None and taken >= limit:
        raise Conflict(f"{day.month}月{day.day}日{service.name}每人限{limit}次，已约满",
                       field="id_number" if id_hash else "phone", code="daily_limit_reached")


async def _new_code(session: AsyncSession) -> str:
    while True:  # a repeat is a one-in-10^12 event: drawing again is cheaper than a unique violation
        code = "".join(secrets.choice(tickets.LOOKUP_ALPHABET) for _ in range(CODE_LENGTH))
        if not await repository.appointment_code_taken(session, code):
            return code


# the booking page: free places per slot

@dataclass(frozen=True, slots=True)
class FreeSlot:
    start: datetime
    end: datetime
    capacity: int
    free: int


async def free_slots(ctx: tickets.Context, session: AsyncSession, center: Center,
                     services: Sequence[Service]) -> dict[str, list[FreeSlot]]:
    """Per service, its bookable slots from now to the end of the 7th local day with their free places."""
    now = clock.now()
    today = clock.local_date(now)
    days = [today + timedelta(days=i) for i in range(BOOKING_DAYS)]
    if await repository.day_closed(session, center.id, today):
        days = days[1:]
    plans = [plan_of(ctx, center, day) for day in days]
    taken = await repository.bookings_by_slot(session, center.id, day_bounds(today)[0],
                                              day_bounds(today + timedelta(days=BOOKING_DAYS))[0])
    return {service.code: [FreeSlot(s.start, s.end, s.capacity, max(0, s.capacity - taken.get((service.code, s.start), 0)))
                           for plan in plans for s in bookable_slots(slot_rules(service), plan, now)]
            for service in services}


# check-in at the kiosk

@dataclass(frozen=True)
class CheckedIn:
    issued: tickets.Issued
    on_time: bool
    message: str


async def check_in(ctx: tickets.Context, session: AsyncSession, appointment: Appointment,
                   principal: Principal) -> CheckedIn:
    """The appointment becomes a ticket: an appointment ticket within −60/+20 minutes of its slot start,
    an ordinary walk-in ticket later (and says so), 409 earlier. Publishes ticket.issued,
    appointment.checked_in and the waiting counts."""
    principal.check_center(appointment.center_id)
    if appointment.status == "cancelled":
        raise Conflict("该预约已取消，不能签到", field="code", code="appointment_cancelled")
    if appointment.status == "checked_in":
        raise Conflict("该预约已签到取号，请勿重复签到", field="code", code="already_checked_in",
                       ticket_id=appointment.ticket_id)
    now = clock.now()
    opens = appointment.slot_start - CHECK_IN_BEFORE
    if now < opens:
        raise Conflict(f"尚未到签到时间，{_md_hm(opens)}起可签到", field="code", code="too_early",
                       opens_at=opens.astimezone(clock.LOCAL_TZ).isoformat())
    on_time = now <= appointment.slot_start + CHECK_IN_AFTER
    center = await repository.get_center(session, appointment.center_id)
    service = await repository.get_service(session, appointment.center_id, appointment.service_code)
    if center is None or service is None:
        raise NotFound(f"the service {appointment.service_code} of appointment {appointment.code} is gone",
                       field="code")
    today, local_now = clock.local_date(now), now.astimezone(clock.LOCAL_TZ).time().replace(tzinfo=None)
    if local_now >= setup.settings_of(center).day_close_time or await repository.day_closed(session, center.id,
                                                                                           today):
        raise Conflict("今日业务已结束，暂停取号", code="day_closed", field="center_id")
    decision = schedule.issuing_decision(plan_of(ctx, center, today), local_now, appointment=on_time)
    decision.raise_if_refused()
    if not service.active:
        raise Conflict(f"{service.name}暂停办理", field="service_code", code="service_inactive")
    seq = await next_number(session, f"ticket:{center.id}:{service.code}", today)
    ticket = Ticket(
        center_id=center.id, business_date=today, service_code=service.code, seq=seq,
        number=f"{service.prefix}{seq:03d}", lookup_code=tickets._lookup_code(),
        kind="appointment" if on_time else "walk_in", channel=tickets.channel_of(principal), status="waiting",
        duty_only=decision.duty_only, issued_at=now, effective_arrival=now,
        id_number_hash=appointment.id_number_hash, id_number_masked=appointment.id_number_masked,
        phone_hash=appointment.phone_hash, phone_masked=appointment.phone_masked,
        phone_encrypted=appointment.phone_encrypted, appointment_id=appointment.id,
        slot_start=appointment.slot_start if on_time else None, checked_in_at=now if on_time else None)
    session.add(ticket)
    await session.flush()
    appointment.status, appointment.ticket_id, appointment.updated_at = "checked_in", ticket.id, now
    ahead, wait_s = await tickets.estimate(session, ticket, service, now)
    await publish(session, PRODUCER, TicketIssued(
        ticket=tickets.facts(ticket, service.department), people_ahead=ahead, estimated_wait_s=wait_s,
        id_number_hash=ticket.id_number_hash, id_number_masked=ticket.id_number_masked,
        phone_hash=ticket.phone_hash, phone_masked=ticket.phone_masked,
        phone_sealed=_sealed_phone(ctx, appointment), appointment_code=appointment.code),
        subject=f"ticket:{ticket.id}", center_id=center.id)
    await publish(session, PRODUCER, AppointmentCheckedIn(
        appointment=appointment_facts(appointment), ticket_id=ticket.id, number=ticket.number, on_time=on_time),
        subject=f"appointment:{appointment.id}", center_id=center.id)
    metrics.count(session, center.id, service.code, "issued")
    await tickets.publish_waiting_counts(session, center.id, today)
    message = "签到成功，请留意叫号" if on_time else \
        f"已超过预约时间{CHECK_IN_AFTER.seconds // 60}分钟，已为您取普通号，按到达顺序排队"
    return CheckedIn(tickets.Issued(ticket, ahead, wait_s), on_time, message)


def _sealed_phone(ctx: tickets.Context, appointment: Appointment) -> str | None:
    """The booked phone sealed for notify (the "your turn is near" SMS): the authorised use of its clear form."""
    if appointment.phone_encrypted is None:
        return None
    return ctx.pii.seal_for_notify(ctx.pii.decrypt(appointment.phone_encrypted.decode()))


# cancelling

async def cancel(session: AsyncSession, appointment: Appointment, by: str | None) -> Appointment:
    """A booked appointment is cancelled and its place freed; publishes appointment.cancelled (`by`: the staff
    member, or None for the person themself)."""
    if appointment.status != "booked":
        what = "已取消" if appointment.status == "cancelled" else "已签到取号，不能取消"
        raise Conflict(f"该预约{what}", field="code", code="not_booked", status_now=appointment.status)
    appointment.status, appointment.updated_at = "cancelled", clock.now()
    await session.flush()
    await publish(session, PRODUCER, AppointmentCancelled(appointment=appointment_facts(appointment), by=by),
                  subject=f"appointment:{appointment.id}", center_id=appointment.center_id)
    return appointment


async def public_appointment(ctx: tickets.Context, session: AsyncSession, code: str, phone: str) -> Appointment:
    """The appointment with that code, if it was booked with that phone (else the same 404 as an unknown code:
    the code alone, printed on a slip, does not cancel)."""
    appointment = await repository.get_appointment_by_code(session, code, for_update=True)
    person = tickets._person(ctx.pii, None, phone)
    if appointment is None or appointment.phone_hash is None or \
            not secrets.compare_digest(appointment.phone_hash, person.phone_hash or ""):
        raise NotFound("没有这个预约，请核对预约码和手机号", field="code")
    return appointment
