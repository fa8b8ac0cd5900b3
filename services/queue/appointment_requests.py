"""Staff appointment requests (当面、电话、信函预约): recorded by staff with the person's preferred slots and phone,
answered within 1 working day, confirmed with a slot (booked as an appointment: the person checks in with its
code), a place and the materials to bring, or declined with a reason by a chief representative of the
service's department. The business rules; they write state and outbox rows and never commit.

Decisions where DOMAIN.md is silent (for the queue service's README):

- The answer is due at the end (23:59:59 local) of the first working day after the day of the request (the
  request's day is not counted, as for a case's limit), by the centre's calendar; the events carry it, and
  whether the answer came by it (`on_time`).
- Every request needs the person's mobile phone (the answer goes to them by SMS: the events carry it sealed
  for notify, hashed and masked, never in clear); up to 5 preferred slots, none in the past.
- Confirming books the named slot as an appointment through the booking rules (the slot must be one of the
  service's, ahead, with a free place, within the booking window): a slot that cannot be booked is the
  booking's own 409, and the request stays pending.
- Declining is the chief representative's (首席代表): of the department the service belonged to when the
  request was made; a service without a department may be declined by any chief representative of the
  centre. A reason is required.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.queue import appointments, tickets
from services.queue.models import AppointmentRequest, Center, Service
from shared import clock
from shared.auth import Principal, Role
from shared.errors import AppError, Conflict, Forbidden
from shared.events.catalog import (
    AppointmentConfirmed,
    AppointmentDeclined,
    AppointmentRequested,
    AppointmentRequestFacts,
    RequestChannel,
)
from shared.events.outbox import publish

PRODUCER = tickets.PRODUCER
ANSWER_WITHIN_WORKING_DAYS = 1


def facts(ctx: tickets.Context, request: AppointmentRequest) -> AppointmentRequestFacts:
    """The request as its events describe it, the phone sealed for notify (its one authorised use)."""
    phone = ctx.pii.decrypt(request.phone_encrypted.decode())
    channel: RequestChannel = "phone" if request.channel == "phone" else \
        "letter" if request.channel == "letter" else "in_person"
    return AppointmentRequestFacts(
        request_id=request.id, center_id=request.center_id, service_code=request.service_code,
        department=request.department, channel=channel,
        preferred_slots=[datetime.fromisoformat(s) for s in request.preferred_slots],
        requested_at=request.requested_at, due_at=request.due_at, phone_hash=request.phone_hash,
        phone_masked=request.phone_masked, phone_sealed=ctx.pii.seal_for_notify(phone))


async def record(ctx: tickets.Context, session: AsyncSession, center: Center, service: Service,
                 principal: Principal, *, channel: str, preferred_slots: list[datetime], phone: str,
                 note: str | None) -> AppointmentRequest:
    """Record a request; publishes appointment.requested with the answer's deadline (1 working day)."""
    now = clock.now()
    for i, slot in enumerate(preferred_slots):
        if slot <= now:
            raise AppError("a preferred slot lies ahead", field=f"preferred_slots[{i}]", status=422,
                           code="validation_failed")
    person = tickets._person(ctx.pii, None, phone)
    assert person.phone_hash and person.phone_masked and person.phone_encrypted
    request = AppointmentRequest(
        center_id=center.id, service_code=service.code, department=service.department, channel=channel,
        preferred_slots=[s.isoformat() for s in preferred_slots], note=note, phone_hash=person.phone_hash,
        phone_masked=person.phone_masked, phone_encrypted=person.phone_encrypted.encode(), status="pending",
        requested_at=now, requested_by=principal.subject,
        due_at=ctx.calendar.due_at(clock.local_date(now), ANSWER_WITHIN_WORKING_DAYS, center.id))
    session.add(request)
    await session.flush()
    await publish(session, PRODUCER, AppointmentRequested(request=facts(ctx, request), by=principal.subject),
                  subject=f"appointment-request:{request.id}", center_id=center.id)
    return request


def _pending(request: AppointmentRequest) -> None:
    if request.status != "pending":
        raise Conflict(f"the request was {request.status} already", field="request_id", code="already_answered",
                       status_now=request.status)


async def confirm(ctx: tickets.Context, session: AsyncSession, center: Center, service: Service,
                  request: AppointmentRequest, principal: Principal, *, slot_start: datetime, place: str,
                  materials: list[str]) -> AppointmentRequest:
    """Answer with a slot (booked now as an appointment), the place and the materials to bring."""
    _pending(request)
    phone = ctx.pii.decrypt(request.phone_encrypted.decode())
    booked = await appointments.book(ctx, session, center, service, slot_start=slot_start, channel="staff",
                                     phone=phone)
    now = clock.now()
    request.status, request.answered_at, request.answered_by = "confirmed", now, principal.subject
    request.slot_start, request.place, request.materials = booked.slot_start, place, materials
    request.appointment_id, request.appointment_code = booked.id, booked.code
    await session.flush()
    await publish(session, PRODUCER, AppointmentConfirmed(
        request=facts(ctx, request), slot_start=booked.slot_start, place=place, materials=materials,
        appointment_id=booked.id, appointment_code=booked.code, answered_at=now, on_time=now <= request.due_at,
        by=principal.subject), subject=f"appointment-request:{request.id}", center_id=center.id)
    return request


async def decline(ctx: tickets.Context, session: AsyncSession, request: AppointmentRequest, principal: Principal,
                  *, reason: str) -> AppointmentRequest:
    """Decline with a reason: the chief representative of the service's department (首席代表) only."""
    principal.check_center(request.center_id)
    if principal.role != Role.CHIEF_REP:
        raise Forbidden("declining a request needs the chief representative's approval", code="wrong_role")
    if request.department is not None:
        principal.check_department(request.department)
    _pending(request)
    now = clock.now()
    request.status, request.answered_at, request.answered_by, request.reason = "declined", now, principal.subject, reason
    await session.flush()
    await publish(session, PRODUCER, AppointmentDeclined(
        request=facts(ctx, request), reason=reason, answered_at=now, on_time=now <= request.due_at,
        approved_by=principal.subject), subject=f"appointment-request:{request.id}", center_id=request.center_id)
    return request
