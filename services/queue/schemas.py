"""Request and response models of the queue service."""

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events.catalog import AppointmentSlot, ServiceWeight


class CenterIn(BaseModel):
    id: str = Field(pattern=r"^[A-Za-z0-9]{2,32}$", description="centre code, e.g. 320102", examples=["320102"])
    name: str = Field(min_length=1, max_length=200, examples=["玄武区政务服务中心"])
    address: str | None = Field(default=None, max_length=300)


class CenterChange(BaseModel):
    """The new name and address of a centre (PUT replaces both)."""

    name: str = Field(min_length=1, max_length=200, examples=["玄武区政务服务中心"])
    address: str | None = Field(default=None, max_length=300)


class CenterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    address: str | None
    created_at: datetime
    updated_at: datetime


# the centre admin's configuration: services (业务类型) and windows (窗口)

CODE = r"^[A-Za-z0-9_-]{1,32}$"


class ServiceIn(BaseModel):
    """A service of a centre: its ticket prefix, thresholds and appointment slots."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=CODE, examples=["HJ"])
    name: str = Field(min_length=1, max_length=100, examples=["户籍办理"])
    prefix: str = Field(pattern=r"^[A-Z]{1,3}$", description="ticket letters: A in A001", examples=["A"])
    department: str | None = Field(None, pattern=CODE, description="the 窗口单位 that serves it")
    wait_threshold_minutes: int = Field(30, ge=1, le=480, description="a longer wait is a long-wait alert")
    default_service_minutes: int = Field(10, ge=1, le=240, description="used for the estimate until data exists")
    daily_limit_per_person: int | None = Field(None, ge=1, le=100,
                                               description="tickets per person (by ID or phone) per day")
    slots: list[AppointmentSlot] = Field(default_factory=list)


class ServicePatch(BaseModel):
    """Fields to change; the others stay (the code and the prefix never change: numbers are issued)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100)
    department: str | None = Field(None, pattern=CODE)
    wait_threshold_minutes: int | None = Field(None, ge=1, le=480)
    default_service_minutes: int | None = Field(None, ge=1, le=240)
    daily_limit_per_person: int | None = Field(None, ge=1, le=100)
    slots: list[AppointmentSlot] | None = None
    active: bool | None = None


class ServiceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    center_id: str
    code: str
    name: str
    prefix: str
    department: str | None
    wait_threshold_minutes: int
    default_service_minutes: int
    daily_limit_per_person: int | None
    slots: list[AppointmentSlot]
    active: bool
    updated_at: datetime


class WindowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str = Field(pattern=r"^[A-Za-z0-9-]{1,16}$", examples=["3"])
    name: str = Field(min_length=1, max_length=100, examples=["综合受理 3 号窗口"])
    department: str | None = Field(None, pattern=CODE)
    services: list[ServiceWeight] = Field(min_length=1)
    duty: bool = Field(False, description="综合值班窗口: serves weekend walk-ins in appointment-first mode")
    joint_approval: bool = False
    a_clerk: str | None = Field(None, max_length=32, description="user id of the A post")
    b_clerk: str | None = Field(None, max_length=32, description="user id of the B post")


class WindowPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100)
    department: str | None = Field(None, pattern=CODE)
    services: list[ServiceWeight] | None = Field(None, min_length=1)
    duty: bool | None = None
    joint_approval: bool | None = None
    a_clerk: str | None = Field(None, max_length=32)
    b_clerk: str | None = Field(None, max_length=32)
    active: bool | None = None


class WindowOut(BaseModel):
    center_id: str
    number: str
    name: str
    department: str | None
    services: list[ServiceWeight]
    duty: bool
    joint_approval: bool
    a_clerk: str | None
    b_clerk: str | None
    active: bool
    state: str
    clerk_id: str | None
    post: str | None
    priority_streak: int
    active_ticket_id: int | None
    updated_at: datetime
    state_since: datetime | None = None
    away_message: str | None = Field(None, description="去向留言, while away")
    closed_reason: str | None = Field(None, description="why it is closed")
    last_heartbeat_at: datetime | None = None


# tickets

class TicketIn(BaseModel):
    """A ticket at the kiosk (or by staff): walk-in or green channel (绿色通道), optionally with the
    person's ID card number and phone (kept as hash, mask and, for the phone, encrypted)."""

    model_config = ConfigDict(extra="forbid")

    service_code: str = Field(pattern=CODE, examples=["HJ"])
    kind: Literal["walk_in", "green"] = "walk_in"
    id_number: str | None = Field(None, max_length=32, description="居民身份证号码 (18 characters)")
    phone: str | None = Field(None, max_length=20, description="mainland mobile number")


class TicketIssuedOut(BaseModel):
    """What the kiosk prints: the number, the lookup code for the ticket's public page, the wait."""

    id: int
    number: str
    lookup_code: str
    service_code: str
    kind: str
    status: str
    duty_only: bool
    people_ahead: int
    estimated_wait_s: int
    issued_at: datetime


class TicketOut(BaseModel):
    """A ticket as staff see it (personal data masked)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    center_id: str
    business_date: date
    number: str
    service_code: str
    kind: str
    channel: str
    status: str
    duty_only: bool
    window: str | None
    clerk_id: str | None
    issued_at: datetime
    effective_arrival: datetime
    called_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    recalls: int
    id_number_masked: str | None
    phone_masked: str | None


class TransferIn(BaseModel):
    """Where a ticket in service goes: one window, or one service (窗口间转办)."""

    model_config = ConfigDict(extra="forbid")

    to_service_code: str | None = Field(None, pattern=CODE)
    to_window: str | None = Field(None, pattern=r"^[A-Za-z0-9-]{1,16}$")


class DayOut(BaseModel):
    center_id: str
    business_date: date
    open: bool
    expired: int = Field(description="tickets that expired with this close")


class PublicTicketOut(BaseModel):
    """A ticket as its holder sees it on a phone (号票查询): no personal data."""

    number: str
    service_code: str
    status: str
    people_ahead: int
    estimated_wait_s: int
    window: str | None = Field(description="where to go, once called")
    issued_at: datetime


class RemoteTicketIn(BaseModel):
    """远程取号: a ticket taken on a phone before coming; the phone is required (and counts against the
    service's per-person daily limit)."""

    model_config = ConfigDict(extra="forbid")

    service_code: str = Field(pattern=CODE, examples=["HJ"])
    phone: str = Field(max_length=20, description="mainland mobile number")
    id_number: str | None = Field(None, max_length=32)
