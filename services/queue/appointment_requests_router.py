"""Endpoints of staff appointment requests (当面、电话、信函预约): record, list, confirm, decline."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.queue import appointment_requests, repository
from services.queue.models import AppointmentRequest
from services.queue.router import CenterDep
from services.queue.schemas import CODE
from services.queue.tickets_router import ContextDep, service_of_body
from shared.auth import Principal, Role, require
from shared.db import SessionDep
from shared.errors import NotFound

router = APIRouter(prefix="/centers/{center_id}/appointment-requests", tags=["appointments"])
STAFF = (Role.CLERK, Role.CHIEF_REP, Role.HALL_MANAGER, Role.CENTER_ADMIN, Role.SYSTEM_ADMIN)
Staff = Annotated[Principal, Depends(require(*STAFF))]
Viewer = Annotated[Principal, Depends(require(*STAFF, Role.SUPERVISOR))]
ChiefRep = Annotated[Principal, Depends(require(Role.CHIEF_REP))]


class RequestIn(BaseModel):
    """A request taken by staff: at the desk, on the phone or by letter, with the person's phone."""

    model_config = ConfigDict(extra="forbid")

    service_code: str = Field(pattern=CODE, examples=["HJ"])
    channel: Literal["in_person", "phone", "letter"]
    preferred_slots: list[AwareDatetime] = Field(min_length=1, max_length=5,
                                                 examples=[["2026-02-13T09:30:00+08:00"]])
    phone: str = Field(max_length=20, description="mainland mobile number: the answer goes there by SMS")
    note: str | None = Field(None, max_length=500)


class ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slot_start: AwareDatetime = Field(description="one of the service's slots, booked now")
    place: str = Field(min_length=1, max_length=200, examples=["政务服务中心一楼3号窗口"])
    materials: list[str] = Field(default_factory=list, max_length=30, examples=[["居民身份证", "户口簿"]])


class DeclineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class RequestOut(BaseModel):
    """A request as staff see it (the phone masked)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    center_id: str
    service_code: str
    department: str | None
    channel: str
    preferred_slots: list[datetime]
    note: str | None
    phone_masked: str
    status: str
    requested_at: datetime
    requested_by: str
    due_at: datetime
    answered_at: datetime | None
    answered_by: str | None
    slot_start: datetime | None
    place: str | None
    materials: list[str] | None
    appointment_code: str | None
    reason: str | None


async def _request(request_id: int, center: CenterDep, session: SessionDep) -> AppointmentRequest:
    """The centre's request, locked for this request."""
    found = await repository.get_appointment_request(session, request_id)
    if found is None or found.center_id != center.id:
        raise NotFound(f"centre {center.id} has no appointment request {request_id}", field="request_id")
    return found


RequestDep = Annotated[AppointmentRequest, Depends(_request)]


@router.post("", status_code=201, response_model=RequestOut)
async def record(body: RequestIn, center: CenterDep, user: Staff, session: SessionDep,
                 ctx: ContextDep) -> AppointmentRequest:
    """Record a phone, letter or in-person appointment request; it is to be answered within 1 working day."""
    service = await service_of_body(session, center.id, body.service_code)
    return await appointment_requests.record(ctx, session, center, service, user, channel=body.channel,
                                             preferred_slots=list(body.preferred_slots), phone=body.phone,
                                             note=body.note)


@router.get("", response_model=list[RequestOut])
async def list_requests(center: CenterDep, _: Viewer, session: SessionDep,
                        status: Literal["pending", "confirmed", "declined"] | None = None) -> list[AppointmentRequest]:
    """The centre's requests, the earliest answer due first."""
    return await repository.list_appointment_requests(session, center.id, status)


@router.post("/{request_id}/confirm", response_model=RequestOut,
             responses={409: {"description": "answered already, or the slot cannot be booked"}})
async def confirm(body: ConfirmIn, user: Staff, request: RequestDep, center: CenterDep, session: SessionDep,
                  ctx: ContextDep) -> AppointmentRequest:
    """Confirm with a slot (booked as an appointment), the place and the materials to bring."""
    service = await service_of_body(session, center.id, request.service_code)
    return await appointment_requests.confirm(ctx, session, center, service, request, user,
                                              slot_start=body.slot_start, place=body.place,
                                              materials=body.materials)


@router.post("/{request_id}/decline", response_model=RequestOut,
             responses={403: {"description": "not a chief representative of the service's department"},
                        409: {"description": "answered already"}})
async def decline(body: DeclineIn, user: ChiefRep, request: RequestDep, session: SessionDep,
                  ctx: ContextDep) -> AppointmentRequest:
    """Decline with a reason (the chief representative of the service's department)."""
    return await appointment_requests.decline(ctx, session, request, user, reason=body.reason)
