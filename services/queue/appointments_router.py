"""Endpoints of appointments (预约): booking (kiosk, staff, online), the centre's list, check-in at the kiosk,
cancelling, and the public booking page's services with their free places.

The public routes (`/public/...`) read no token: the gateway rate-limits them, and they answer nothing
personal (a booking answers its own code; cancelling online needs the code and the phone it was booked
with)."""

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer

from services.queue import appointments, repository, tickets
from services.queue.models import Appointment
from services.queue.router import CenterDep
from services.queue.schemas import CODE, TicketIssuedOut
from services.queue.tickets_router import ContextDep, PublicCenterDep, issued_out, service_of_body
from shared import clock
from shared.auth import CurrentUser, Principal, Role, require
from shared.db import SessionDep
from shared.errors import NotFound
from shared.idempotency import IdempotencyDep

router = APIRouter(tags=["appointments"])
STAFF = (Role.CLERK, Role.CHIEF_REP, Role.HALL_MANAGER, Role.CENTER_ADMIN, Role.SYSTEM_ADMIN)
Booker = Annotated[Principal, Depends(require(Role.KIOSK, *STAFF))]  # books and checks in
Staff = Annotated[Principal, Depends(require(*STAFF))]  # cancels
Viewer = Annotated[Principal, Depends(require(*STAFF, Role.SUPERVISOR))]  # lists (masked)


# request and response models

def _local(value: datetime) -> str:
    return value.astimezone(clock.LOCAL_TZ).isoformat()


class AppointmentIn(BaseModel):
    """A booking at the kiosk or by staff (当面、电话、信函预约): the slot by its start instant."""

    model_config = ConfigDict(extra="forbid")

    service_code: str = Field(pattern=CODE, examples=["HJ"])
    slot_start: AwareDatetime = Field(description="the slot's start with its UTC offset",
                                      examples=["2026-02-12T09:30:00+08:00"])
    id_number: str | None = Field(None, max_length=32, description="居民身份证号码 (18 characters)")
    phone: str | None = Field(None, max_length=20, description="mainland mobile number (the reminder SMS)")


class PublicAppointmentIn(AppointmentIn):
    """A booking online (网上预约): the phone is required (the reminder, and cancelling online)."""

    phone: str = Field(max_length=20, description="mainland mobile number")


class AppointmentBookedOut(BaseModel):
    """What the booker is given: the code to check in with at the kiosk."""

    id: int
    code: str
    service_code: str
    slot_start: datetime
    slot_end: datetime
    status: str

    @field_serializer("slot_start", "slot_end")
    def _in_local_time(self, value: datetime) -> str:
        return _local(value)


class AppointmentOut(AppointmentBookedOut):
    """An appointment as the centre's staff see it (personal data masked)."""

    model_config = ConfigDict(from_attributes=True)

    center_id: str
    channel: str
    id_number_masked: str | None
    phone_masked: str | None
    ticket_id: int | None
    booked_at: datetime
    updated_at: datetime


class PublicCancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str = Field(max_length=20, description="the phone the appointment was booked with")


class CheckInOut(BaseModel):
    """The ticket of a check-in: an appointment ticket when on time, else a walk-in one (`on_time` false),
    with the kiosk's message either way."""

    ticket: TicketIssuedOut
    on_time: bool
    message: str


class FreeSlotOut(BaseModel):
    start: datetime
    end: datetime
    capacity: int
    free: int

    @field_serializer("start", "end")
    def _in_local_time(self, value: datetime) -> str:
        return _local(value)


class PublicServiceOut(BaseModel):
    """A service as the public booking page shows it, with its slots of the next 7 days."""

    code: str
    name: str
    slots: list[FreeSlotOut]


def _booked(a: Appointment) -> AppointmentBookedOut:
    return AppointmentBookedOut(id=a.id, code=a.code, service_code=a.service_code, slot_start=a.slot_start,
                                slot_end=a.slot_end, status=a.status)


# dependencies

async def _appointment(code: str, session: SessionDep, user: CurrentUser) -> Appointment:
    """The appointment, locked for this request, if it is of one of the caller's centres."""
    appointment = await repository.get_appointment_by_code(session, code, for_update=True)
    if appointment is None:
        raise NotFound(f"no appointment {code}", field="code")
    user.check_center(appointment.center_id)
    return appointment


AppointmentDep = Annotated[Appointment, Depends(_appointment)]


# routes

@router.post("/centers/{center_id}/appointments", status_code=201, response_model=AppointmentBookedOut,
             responses={409: {"description": "no such slot, past, full, too far ahead, hall closed, limit"}})
async def book(body: AppointmentIn, user: Booker, center: CenterDep, session: SessionDep, ctx: ContextDep,
               idem: IdempotencyDep) -> JSONResponse:
    """Book a slot at the kiosk or for a caller (staff); a retry with its Idempotency-Key replays."""
    if (replay := await idem.replay()) is not None:
        return replay
    service = await service_of_body(session, center.id, body.service_code)
    appointment = await appointments.book(ctx, session, center, service, slot_start=body.slot_start,
                                          channel=tickets.channel_of(user), id_number=body.id_number,
                                          phone=body.phone)
    return await idem.remember(201, _booked(appointment))


@router.post("/public/centers/{center_id}/appointments", status_code=201, response_model=AppointmentBookedOut,
             responses={409: {"description": "no such slot, past, full, too far ahead, hall closed, limit"}})
async def book_online(body: PublicAppointmentIn, center: PublicCenterDep, session: SessionDep,
                      ctx: ContextDep) -> AppointmentBookedOut:
    """Book a slot online (no token; a phone is required and the service's per-person daily limit counts)."""
    service = await service_of_body(session, center.id, body.service_code)
    return _booked(await appointments.book(ctx, session, center, service, slot_start=body.slot_start,
                                           channel="online", id_number=body.id_number, phone=body.phone))


@router.get("/centers/{center_id}/appointments", response_model=list[AppointmentOut])
async def list_appointments(center: CenterDep, _: Viewer, session: SessionDep,
                            day: Annotated[date | None, Query(alias="date", description="local date; today")] = None,
                            status: Literal["booked", "cancelled", "checked_in"] | None = None) -> list[Appointment]:
    """The centre's appointments of a local day (today by default), by slot; personal data masked."""
    start, end = appointments.day_bounds(day or clock.today_local())
    return await repository.list_appointments(session, center.id, start, end, status)


@router.post("/appointments/{code}/check-in", status_code=201, response_model=CheckInOut,
             responses={409: {"description": "too early, cancelled, already checked in, hall not issuing"}})
async def check_in(user: Booker, appointment: AppointmentDep, session: SessionDep, ctx: ContextDep,
                   idem: IdempotencyDep) -> JSONResponse:
    """Check in (kiosk or staff): a ticket within −60/+20 minutes of the slot, a walk-in ticket if later."""
    if (replay := await idem.replay()) is not None:
        return replay
    done = await appointments.check_in(ctx, session, appointment, user)
    return await idem.remember(201, CheckInOut(ticket=issued_out(done.issued), on_time=done.on_time,
                                               message=done.message))


@router.post("/appointments/{code}/cancel", response_model=AppointmentOut,
             responses={409: {"description": "already cancelled or checked in"}})
async def cancel(user: Staff, appointment: AppointmentDep, session: SessionDep) -> Appointment:
    """Cancel a booked appointment (staff of its centre); its place is free again."""
    return await appointments.cancel(session, appointment, by=user.subject)


@router.post("/public/appointments/{code}/cancel", response_model=AppointmentBookedOut,
             responses={404: {"description": "no appointment with this code and phone"}})
async def cancel_online(code: str, body: PublicCancelIn, session: SessionDep,
                        ctx: ContextDep) -> AppointmentBookedOut:
    """Cancel one's own appointment online (no token): its code and the phone it was booked with."""
    appointment = await appointments.public_appointment(ctx, session, code, body.phone)
    return _booked(await appointments.cancel(session, appointment, by=None))


@router.get("/public/centers/{center_id}/services", response_model=list[PublicServiceOut])
async def public_services(center: PublicCenterDep, session: SessionDep, ctx: ContextDep) -> list[PublicServiceOut]:
    """The centre's open services with each slot's free places over the next 7 days (no token)."""
    services = [s for s in await repository.list_services(session, center.id) if s.active]
    free = await appointments.free_slots(ctx, session, center, services)
    return [PublicServiceOut(code=s.code, name=s.name, slots=[
        FreeSlotOut(start=f.start, end=f.end, capacity=f.capacity, free=f.free) for f in free[s.code]])
        for s in services]
