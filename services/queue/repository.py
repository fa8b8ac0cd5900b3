"""Every query of the queue service."""

from datetime import date, datetime

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.queue import calling
from services.queue.models import (
    Appointment,
    AppointmentRequest,
    BusinessDay,
    Center,
    ClerkLeave,
    Evaluation,
    ItemCopy,
    Notice,
    Service,
    Staff,
    Ticket,
    Window,
    WindowLogEntry,
    WindowService,
)


async def get_center(session: AsyncSession, center_id: str) -> Center | None:
    return await session.get(Center, center_id)


async def list_centers(session: AsyncSession, ids: tuple[str, ...] | None) -> list[Center]:
    stmt = select(Center).order_by(Center.id)
    if ids is not None:
        stmt = stmt.where(Center.id.in_(ids))
    return list((await session.scalars(stmt)).all())


async def get_center_for_update(session: AsyncSession, center_id: str) -> Center | None:
    return await session.get(Center, center_id, with_for_update=True)


# services and windows

async def get_service(session: AsyncSession, center_id: str, code: str) -> Service | None:
    return await session.get(Service, (center_id, code))


async def service_with_prefix(session: AsyncSession, center_id: str, prefix: str) -> Service | None:
    return await session.scalar(select(Service).where(Service.center_id == center_id, Service.prefix == prefix))


async def list_services(session: AsyncSession, center_id: str) -> list[Service]:
    return list((await session.scalars(
        select(Service).where(Service.center_id == center_id).order_by(Service.code))).all())


async def get_window(session: AsyncSession, center_id: str, number: str, *, for_update: bool = False) -> Window | None:
    return await session.get(Window, (center_id, number), with_for_update=for_update)


async def list_windows(session: AsyncSession, center_id: str) -> list[Window]:
    return list((await session.scalars(
        select(Window).where(Window.center_id == center_id).order_by(Window.number))).all())


async def window_weights(session: AsyncSession, center_id: str, number: str) -> dict[str, int]:
    rows = await session.execute(select(WindowService.service_code, WindowService.weight).where(
        WindowService.center_id == center_id, WindowService.window == number))
    return {code: weight for code, weight in rows.all()}


async def center_window_weights(session: AsyncSession, center_id: str) -> dict[str, dict[str, int]]:
    """Every window's weights of a centre in one query: window number → service code → weight."""
    rows = await session.execute(select(WindowService.window, WindowService.service_code, WindowService.weight)
                                 .where(WindowService.center_id == center_id))
    weights: dict[str, dict[str, int]] = {}
    for number, code, weight in rows.all():
        weights.setdefault(number, {})[code] = weight
    return weights


async def delete_window_services(session: AsyncSession, center_id: str, number: str) -> None:
    await session.execute(delete(WindowService).where(WindowService.center_id == center_id,
                                                      WindowService.window == number))


# tickets

async def day_closed(session: AsyncSession, center_id: str, day: date) -> bool:
    row = await session.get(BusinessDay, (center_id, day))
    return row is not None and row.closed_at is not None and (row.opened_at is None or row.opened_at < row.closed_at)


async def tickets_of_person(session: AsyncSession, center_id: str, service_code: str, day: date,
                            id_hash: str | None, phone_hash: str | None) -> int:
    """Tickets of the day and service held by the same person (by ID card or phone), cancelled ones aside."""
    same = [Ticket.id_number_hash == id_hash] if id_hash else []
    same += [Ticket.phone_hash == phone_hash] if phone_hash else []
    stmt = select(func.count()).select_from(Ticket).where(
        Ticket.center_id == center_id, Ticket.service_code == service_code, Ticket.business_date == day,
        Ticket.status != "cancelled", or_(*same))
    return int(await session.scalar(stmt) or 0)


async def waiting_tickets(session: AsyncSession, center_id: str, day: date) -> list[Ticket]:
    """The centre's waiting tickets of the day: the snapshot call-next chooses from."""
    return list((await session.scalars(select(Ticket).where(
        Ticket.center_id == center_id, Ticket.business_date == day, Ticket.status == "waiting"))).all())


async def take_waiting_ticket(session: AsyncSession, ticket_id: int) -> Ticket | None:
    """The ticket, locked, if it still waits and no other transaction holds it (else None: skip it)."""
    return await session.scalar(select(Ticket).where(Ticket.id == ticket_id, Ticket.status == "waiting")
                                .with_for_update(skip_locked=True).execution_options(populate_existing=True))


async def waiting_counts(session: AsyncSession, center_id: str, day: date) -> dict[str, int]:
    """Every active service of the centre with its number of waiting tickets (0 included)."""
    counts = dict((await session.execute(select(Ticket.service_code, func.count()).where(
        Ticket.center_id == center_id, Ticket.business_date == day, Ticket.status == "waiting")
        .group_by(Ticket.service_code))).all())
    return {s.code: int(counts.get(s.code, 0)) for s in await list_services(session, center_id)}


async def get_ticket(session: AsyncSession, ticket_id: int, *, for_update: bool = False) -> Ticket | None:
    return await session.get(Ticket, ticket_id, with_for_update=for_update)


async def get_staff(session: AsyncSession, user_id: str) -> Staff | None:
    return await session.get(Staff, user_id)


async def next_waiting_of(session: AsyncSession, center_id: str, day: date, service_code: str, kind: str,
                          k: int) -> list[Ticket]:
    """The first `k` tickets of a service and kind in the line now (not transferred), by effective arrival."""
    return list((await session.scalars(select(Ticket).where(
        Ticket.center_id == center_id, Ticket.business_date == day, Ticket.status == "waiting",
        Ticket.service_code == service_code, Ticket.kind == kind, Ticket.transferred_at.is_(None))
        .order_by(Ticket.effective_arrival, Ticket.id).limit(k))).all())


async def mark_day(session: AsyncSession, center_id: str, day: date, *, by: str | None,
                   closed_at: datetime | None = None, opened_at: datetime | None = None) -> None:
    row = await session.get(BusinessDay, (center_id, day), with_for_update=True)
    if row is None:
        row = BusinessDay(center_id=center_id, business_date=day)
        session.add(row)
    if closed_at is not None:
        row.closed_at, row.closed_by = closed_at, by
    if opened_at is not None:
        row.opened_at, row.opened_by = opened_at, by
    await session.flush()


async def tickets_to_expire(session: AsyncSession, center_id: str, day: date) -> list[Ticket]:
    """What a day's close ends: the waiting tickets and the no-shows of that day, locked, in number order."""
    return list((await session.scalars(select(Ticket).where(
        Ticket.center_id == center_id, Ticket.business_date == day, Ticket.status.in_(("waiting", "no_show")))
        .order_by(Ticket.id).with_for_update())).all())


async def days_with_open_tickets(session: AsyncSession, center_id: str, up_to: date) -> list[date]:
    rows = await session.scalars(select(Ticket.business_date).where(
        Ticket.center_id == center_id, Ticket.business_date <= up_to, Ticket.status.in_(("waiting", "no_show")))
        .distinct().order_by(Ticket.business_date))
    return list(rows.all())


async def tickets_by_id(session: AsyncSession, ids: list[int]) -> list[Ticket]:
    if not ids:
        return []
    return list((await session.scalars(select(Ticket).where(Ticket.id.in_(ids)))).all())


async def recent_calls(session: AsyncSession, center_id: str, day: date, limit: int) -> list[Ticket]:
    """The day's last calls, newest first (tickets called and still at their window, or served since)."""
    return list((await session.scalars(select(Ticket).where(
        Ticket.center_id == center_id, Ticket.business_date == day, Ticket.called_at.is_not(None),
        Ticket.window.is_not(None)).order_by(Ticket.called_at.desc(), Ticket.id.desc()).limit(limit))).all())


# appointments (预约)



async def lock_for_transaction(session: AsyncSession, key: int) -> None:
    """A transaction-level advisory lock (e.g. one appointment slot's), held until the commit or rollback."""
    await session.execute(select(func.pg_advisory_xact_lock(key)))


async def get_appointment_by_code(session: AsyncSession, code: str, *, for_update: bool = False) -> Appointment | None:
    stmt = select(Appointment).where(Appointment.code == code)
    return await session.scalar(stmt.with_for_update() if for_update else stmt)


async def appointment_code_taken(session: AsyncSession, code: str) -> bool:
    return await session.scalar(select(func.count()).select_from(Appointment).where(Appointment.code == code)) != 0


async def slot_bookings(session: AsyncSession, center_id: str, service_code: str, slot_start: datetime) -> int:
    """Appointments holding the slot: booked or checked in (a cancelled one gave its place back)."""
    return int(await session.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.center_id == center_id, Appointment.service_code == service_code,
        Appointment.slot_start == slot_start, Appointment.status != "cancelled")) or 0)


async def bookings_by_slot(session: AsyncSession, center_id: str, start: datetime,
                           end: datetime) -> dict[tuple[str, datetime], int]:
    """(service, slot start) -> appointments holding that slot, for slots starting in [start, end)."""
    rows = await session.execute(select(Appointment.service_code, Appointment.slot_start, func.count()).where(
        Appointment.center_id == center_id, Appointment.slot_start >= start, Appointment.slot_start < end,
        Appointment.status != "cancelled").group_by(Appointment.service_code, Appointment.slot_start))
    return {(code, slot): int(n) for code, slot, n in rows.all()}


async def booked_appointments_of_person(session: AsyncSession, center_id: str, service_code: str, start: datetime,
                                        end: datetime, id_hash: str | None, phone_hash: str | None) -> int:
    """Appointments still booked (not yet a ticket) by the same person for slots starting in [start, end)."""
    same = [Appointment.id_number_hash == id_hash] if id_hash else []
    same += [Appointment.phone_hash == phone_hash] if phone_hash else []
    return int(await session.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.center_id == center_id, Appointment.service_code == service_code,
        Appointment.slot_start >= start, Appointment.slot_start < end, Appointment.status == "booked",
        or_(*same))) or 0)


async def list_appointments(session: AsyncSession, center_id: str, start: datetime, end: datetime,
                            status: str | None = None) -> list[Appointment]:
    """A centre's appointments for slots starting in [start, end), by slot then booking order."""
    stmt = select(Appointment).where(Appointment.center_id == center_id, Appointment.slot_start >= start,
                                     Appointment.slot_start < end)
    if status is not None:
        stmt = stmt.where(Appointment.status == status)
    return list((await session.scalars(stmt.order_by(Appointment.slot_start, Appointment.id))).all())


async def call_candidates(session: AsyncSession, center_id: str, day: date, services: list[str],
                          window: str) -> list[calling.Candidate]:
    """The waiting tickets a window may call, as the rule reads them: only the columns it needs, of the
    services the window serves (or transferred to it, or to one of them)."""
    t = Ticket.__table__.c
    rows = await session.execute(select(
        t.id, t.service_code, t.kind, t.effective_arrival, t.duty_only, t.transferred_at, t.transferred_to_window,
        t.transferred_to_service, t.slot_start, t.checked_in_at).where(
        t.center_id == center_id, t.business_date == day, t.status == "waiting",
        or_(and_(t.service_code.in_(services), t.transferred_to_window.is_(None),
                 t.transferred_to_service.is_(None)),
            t.transferred_to_window == window, t.transferred_to_service.in_(services)))
        # in the lines' own order: calling.Ranking's sorts then only confirm it (linear on sorted input)
        .order_by(t.effective_arrival, t.id))
    return [calling.Candidate(
        ticket_id=r.id, service_code=r.service_code, kind=r.kind, effective_arrival=r.effective_arrival,
        duty_only=r.duty_only, transferred_at=r.transferred_at, transferred_to_window=r.transferred_to_window,
        transferred_to_service=r.transferred_to_service,
        slot_start=r.slot_start if r.kind == "appointment" else None, checked_in_at=r.checked_in_at)
        for r in rows]


async def ahead_of_new_ticket(session: AsyncSession, ticket: Ticket, now: datetime) -> int:
    """`calling.people_ahead` for a ticket just issued (the last arrival of its line), counted in SQL: a
    walk-in has its whole line ahead; a green ticket the transfers, started appointments and greens."""
    t = Ticket.__table__.c
    line = and_(t.center_id == ticket.center_id, t.business_date == ticket.business_date, t.status == "waiting",
                t.id != ticket.id, t.transferred_to_window.is_(None),
                func.coalesce(t.transferred_to_service, t.service_code) == ticket.service_code)
    if ticket.kind == "green":
        line = and_(line, or_(t.transferred_to_service.is_not(None), t.kind == "green",
                              and_(t.kind == "appointment", t.slot_start <= now)))
    return int(await session.scalar(select(func.count()).select_from(Ticket.__table__).where(line)) or 0)


# windows at work: the log, leave

async def window_log(session: AsyncSession, center_id: str, day: date, clerk_id: str | None) -> list[WindowLogEntry]:
    stmt = select(WindowLogEntry).where(WindowLogEntry.center_id == center_id, WindowLogEntry.business_date == day)
    if clerk_id is not None:
        stmt = stmt.where(WindowLogEntry.clerk_id == clerk_id)
    return list((await session.scalars(stmt.order_by(WindowLogEntry.at, WindowLogEntry.id))).all())


async def clerks_on_leave(session: AsyncSession, center_id: str, day: date) -> set[str]:
    return set((await session.scalars(select(ClerkLeave.clerk_id).where(
        ClerkLeave.center_id == center_id, ClerkLeave.starts_on <= day, ClerkLeave.ends_on >= day))).all())


# evaluations (好差评)

async def evaluation_of_ticket(session: AsyncSession, ticket_id: int) -> Evaluation | None:
    return await session.scalar(select(Evaluation).where(Evaluation.ticket_id == ticket_id))


# staff appointment requests

async def get_appointment_request(session: AsyncSession, request_id: int) -> AppointmentRequest | None:
    return await session.get(AppointmentRequest, request_id, with_for_update=True)


async def list_appointment_requests(session: AsyncSession, center_id: str,
                                    status: str | None) -> list[AppointmentRequest]:
    stmt = select(AppointmentRequest).where(AppointmentRequest.center_id == center_id)
    if status is not None:
        stmt = stmt.where(AppointmentRequest.status == status)
    return list((await session.scalars(stmt.order_by(AppointmentRequest.due_at, AppointmentRequest.id))).all())


# hall notices and the items the display scrolls

async def list_notices(session: AsyncSession, center_id: str) -> list[Notice]:
    return list((await session.scalars(select(Notice).where(Notice.center_id == center_id)
                                       .order_by(Notice.position, Notice.id))).all())


async def get_notice(session: AsyncSession, center_id: str, notice_id: int) -> Notice | None:
    notice = await session.get(Notice, notice_id, with_for_update=True)
    return notice if notice is not None and notice.center_id == center_id else None


async def list_items(session: AsyncSession, center_id: str) -> list[ItemCopy]:
    return list((await session.scalars(select(ItemCopy).where(ItemCopy.center_id == center_id, ItemCopy.active)
                                       .order_by(ItemCopy.code))).all())
