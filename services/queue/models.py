"""Tables of the queue service: centres with their queue settings and hall schedule, services, windows and
the services they serve, the days the manager opened or closed, tickets, appointments, and the read copy of
the staff (from identity's user.upserted) whose names the displays show; the window log (attendance),
clerks' leave, evaluations (好差评), staff appointment requests, hall notices, the turn-near notices sent, and
the read copy of the case registry's item catalogue (the display's time limits and fees)."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import new_metadata
from shared.readcopy import StaffCopyColumns


class Base(DeclarativeBase):
    metadata = new_metadata()


class Center(Base):
    """A service hall (县行政服务中心, 乡镇便民服务中心). Its id is also its case-number prefix."""

    __tablename__ = "centers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300))
    settings: Mapped[dict[str, Any]] = mapped_column(
        JSONB, server_default=text("'{}'::jsonb"), comment="QueueSettings (shared/events/catalog.py); {}: defaults")
    schedule: Mapped[dict[str, Any] | None] = mapped_column(
        JSONB, comment="HallSchedule (shared/events/catalog.py); null: the default schedule")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Service(Base):
    """A service (业务类型) of a centre: its ticket prefix and daily numbers, thresholds, appointment slots."""

    __tablename__ = "services"
    __table_args__ = (
        ForeignKeyConstraint(["center_id"], ["centers.id"]),
        UniqueConstraint("center_id", "prefix"),
    )

    center_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(4), comment="the letters before the number: A in A001")
    department: Mapped[str | None] = mapped_column(String(32))
    wait_threshold_minutes: Mapped[int] = mapped_column(Integer)
    default_service_minutes: Mapped[int] = mapped_column(Integer)
    daily_limit_per_person: Mapped[int | None] = mapped_column(Integer)
    slots: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"),
                                                        comment="[AppointmentSlot]")
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Window(Base):
    """A window (窗口): what it serves is in window_services; who is at it, its state and the N:1 streak here.

    The row is the lock of a call: call-next takes it FOR UPDATE, so one window's calls are one at a time,
    and `priority_streak` changes in the same transaction as the call it counts (it survives restarts)."""

    __tablename__ = "windows"
    __table_args__ = (ForeignKeyConstraint(["center_id"], ["centers.id"]),)

    center_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    number: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    department: Mapped[str | None] = mapped_column(String(32))
    duty: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), comment="综合值班窗口")
    joint_approval: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    a_clerk: Mapped[str | None] = mapped_column(String(32), comment="the A post's user id (AB角)")
    b_clerk: Mapped[str | None] = mapped_column(String(32), comment="the B post's user id")
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    state: Mapped[str] = mapped_column(String(16), server_default=text("'signed_out'"),
                                       comment="signed_out | open | away | closed")
    clerk_id: Mapped[str | None] = mapped_column(String(32), comment="who is signed in now")
    post: Mapped[str | None] = mapped_column(String(1), comment="A | B: the post of the signed-in clerk")
    device: Mapped[str | None] = mapped_column(String(32), comment="the terminal the clerk signed in at")
    priority_streak: Mapped[int] = mapped_column(Integer, server_default=text("0"),
                                                 comment="green calls in a row (the N:1 rule)")
    active_ticket_id: Mapped[int | None] = mapped_column(BigInteger, comment="the called or serving ticket")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                         comment="when the window entered its state (away since)")
    away_message: Mapped[str | None] = mapped_column(String(100), comment="去向留言 shown while away")
    closed_reason: Mapped[str | None] = mapped_column(String(200), comment="why it was closed (业务学习, 系统故障)")
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                               comment="the terminal's last beat (or sign-in)")
    heartbeat_lost_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="when window.heartbeat_lost was published; null once restored")


class WindowService(Base):
    """A service a window serves, with its weight there (0: a reserve service)."""

    __tablename__ = "window_services"
    __table_args__ = (
        ForeignKeyConstraint(["center_id", "window"], ["windows.center_id", "windows.number"], ondelete="CASCADE"),
        ForeignKeyConstraint(["center_id", "service_code"], ["services.center_id", "services.code"]),
    )

    center_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    window: Mapped[str] = mapped_column(String(16), primary_key=True)
    service_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    weight: Mapped[int] = mapped_column(Integer)


class BusinessDay(Base):
    """A day the hall manager closed early (or opened again): absent, a day follows its schedule."""

    __tablename__ = "business_days"

    center_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[str | None] = mapped_column(String(32))
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    opened_by: Mapped[str | None] = mapped_column(String(32))


class Ticket(Base):
    """A ticket (号票). Its number is unique and gap-free per service and local business day."""

    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("center_id", "service_code", "business_date", "seq"),
        # what call-next reads: the waiting tickets of a centre's day
        Index("ix_tickets_waiting", "center_id", "business_date", postgresql_where=text("status = 'waiting'")),
        # what the wait estimate reads at every issue: a service's tickets served in the last two hours
        Index("ix_tickets_done", "center_id", "service_code", "ended_at", postgresql_where=text("status = 'done'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    center_id: Mapped[str] = mapped_column(String(32))
    business_date: Mapped[date] = mapped_column(Date)
    service_code: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(12))
    lookup_code: Mapped[str] = mapped_column(String(12), comment="random; with the id, the holder's lookup")
    kind: Mapped[str] = mapped_column(String(16), comment="walk_in | green | appointment | transferred")
    channel: Mapped[str] = mapped_column(String(8), comment="kiosk | staff | online")
    status: Mapped[str] = mapped_column(
        String(16), comment="waiting | called | serving | done | no_show | cancelled | expired")
    duty_only: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    effective_arrival: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                        comment="issue, check-in or requeue place: the wait's start")
    id_number_hash: Mapped[str | None] = mapped_column(String(64))
    id_number_masked: Mapped[str | None] = mapped_column(String(32))
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    phone_masked: Mapped[str | None] = mapped_column(String(16))
    phone_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    appointment_id: Mapped[int | None] = mapped_column(BigInteger)
    slot_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    transferred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    transferred_to_window: Mapped[str | None] = mapped_column(String(16))
    transferred_to_service: Mapped[str | None] = mapped_column(String(32))
    window: Mapped[str | None] = mapped_column(String(16), comment="the window that called it last")
    clerk_id: Mapped[str | None] = mapped_column(String(32))
    post: Mapped[str | None] = mapped_column(String(1))
    called_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recalls: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    requeues: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                      comment="done, cancelled, expired or transferred away")
    served_s: Mapped[int] = mapped_column(Integer, server_default=text("0"),
                                          comment="service seconds before transfers (for the monitor)")


class Appointment(Base):
    """An appointment (预约) for a slot of a service; checked in at the kiosk, it becomes a ticket."""

    __tablename__ = "appointments"
    __table_args__ = (
        UniqueConstraint("code"),
        Index("ix_appointments_slot", "center_id", "service_code", "slot_start"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    code: Mapped[str] = mapped_column(String(12), comment="the check-in code given to the person")
    center_id: Mapped[str] = mapped_column(String(32))
    service_code: Mapped[str] = mapped_column(String(32))
    slot_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    slot_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), comment="booked | cancelled | checked_in")
    channel: Mapped[str] = mapped_column(String(8))
    id_number_hash: Mapped[str | None] = mapped_column(String(64))
    id_number_masked: Mapped[str | None] = mapped_column(String(32))
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    phone_masked: Mapped[str | None] = mapped_column(String(16))
    phone_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    ticket_id: Mapped[int | None] = mapped_column(BigInteger)
    booked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Staff(StaffCopyColumns, Base):
    """Read copy of identity's users (user.upserted): what a window's public sign shows of its clerk."""


class WindowLogEntry(Base):
    """What happened at a window, as its window.* events say, kept for attendance (签到、签退、暂离)."""

    __tablename__ = "window_log"
    __table_args__ = (Index("ix_window_log_day", "center_id", "business_date", "clerk_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    center_id: Mapped[str] = mapped_column(String(32))
    window: Mapped[str] = mapped_column(String(16))
    business_date: Mapped[date] = mapped_column(Date)
    clerk_id: Mapped[str | None] = mapped_column(String(32))
    post: Mapped[str | None] = mapped_column(String(1))
    kind: Mapped[str] = mapped_column(
        String(24), comment="signed_in | signed_out | away | back | closed | heartbeat_lost | heartbeat_restored")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(String(200), comment="the away message or the close reason")


class ClerkLeave(Base):
    """A clerk's leave (请假) over local dates, inclusive: their windows expect the B post (AB角)."""

    __tablename__ = "clerk_leaves"
    __table_args__ = (Index("ix_clerk_leaves_clerk", "center_id", "clerk_id", "starts_on"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    center_id: Mapped[str] = mapped_column(String(32))
    clerk_id: Mapped[str] = mapped_column(String(32))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(String(200))
    recorded_by: Mapped[str] = mapped_column(String(32))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Evaluation(Base):
    """A rating of a service (好差评): one per ticket, by the window's evaluator or by the person."""

    __tablename__ = "evaluations"
    __table_args__ = (
        UniqueConstraint("ticket_id"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating"),
        Index("ix_evaluations_day", "center_id", "business_date"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    center_id: Mapped[str] = mapped_column(String(32))
    ticket_id: Mapped[int] = mapped_column(BigInteger)
    business_date: Mapped[date] = mapped_column(Date)
    service_code: Mapped[str] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(32))
    window: Mapped[str | None] = mapped_column(String(16))
    clerk_id: Mapped[str | None] = mapped_column(String(32))
    post: Mapped[str | None] = mapped_column(String(1))
    rating: Mapped[int] = mapped_column(Integer, comment="5 非常满意 ... 1 非常不满意")
    comment: Mapped[str | None] = mapped_column(String(500))
    case_no: Mapped[str | None] = mapped_column(String(48))
    channel: Mapped[str] = mapped_column(String(12), comment="evaluator | public")
    device: Mapped[str | None] = mapped_column(String(32))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AppointmentRequest(Base):
    """A phone, letter or in-person appointment request (电话、信函、当面预约) staff answer within 1 working day."""

    __tablename__ = "appointment_requests"
    __table_args__ = (Index("ix_appointment_requests_open", "center_id", "status", "due_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    center_id: Mapped[str] = mapped_column(String(32))
    service_code: Mapped[str] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(12), comment="in_person | phone | letter")
    preferred_slots: Mapped[list[str]] = mapped_column(JSONB, comment="aware ISO instants, best first")
    note: Mapped[str | None] = mapped_column(String(500))
    phone_hash: Mapped[str] = mapped_column(String(64))
    phone_masked: Mapped[str] = mapped_column(String(16))
    phone_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(12), comment="pending | confirmed | declined")
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requested_by: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), comment="end of the next working day")
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_by: Mapped[str | None] = mapped_column(String(32))
    slot_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    place: Mapped[str | None] = mapped_column(String(200))
    materials: Mapped[list[str] | None] = mapped_column(JSONB)
    appointment_id: Mapped[int | None] = mapped_column(BigInteger)
    appointment_code: Mapped[str | None] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(500), comment="why it was declined")


class Notice(Base):
    """A public notice the hall display scrolls (公告), shown from `starts_on` to `ends_on` (local, inclusive)."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_center", "center_id", "position"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    center_id: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(String(500))
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    position: Mapped[int] = mapped_column(Integer, comment="the scrolling order, lowest first")
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TurnNearNotice(Base):
    """A ticket whose holder was told their turn is near (ticket.turn_near): the row makes it once."""

    __tablename__ = "turn_near_notices"

    ticket_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    center_id: Mapped[str] = mapped_column(String(32))
    people_ahead: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ItemCopy(Base):
    """Read copy of the case registry's items (item.upserted): the time limits and fees the display scrolls."""

    __tablename__ = "items"
    __table_args__: Any = {"comment": "Read copy of cases' item catalogue, from item.upserted (never written here)"}

    center_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(String(32))
    promised_limit_days: Mapped[int] = mapped_column(Integer)
    legal_limit_days: Mapped[int] = mapped_column(Integer)
    fees: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_event_sequence: Mapped[int] = mapped_column(BigInteger)
