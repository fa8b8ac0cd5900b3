"""Tables of supervision II (hall): the hall's read model, kept from the queue's and the case registry's events
only (never written by a route). Imported by services/monitor/models.py so Base.metadata holds every table.

Each row keeps the producer's outbox sequence of the event that last wrote it, so a re-sent or older event
changes nothing. No personal data: a ticket is its number, an appointment request its masked phone."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Index, Integer, SmallInteger, String
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from services.monitor.models import Base


class HallService(Base):
    """A queue service (业务类型), from service.upserted: its department and long-wait threshold."""

    __tablename__ = "hall_services"
    __table_args__: Any = {"comment": "Read copy of queue's services, from service.upserted (never written here)"}

    center_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    department: Mapped[str | None] = mapped_column(String(32))
    wait_threshold_minutes: Mapped[int] = mapped_column(SmallInteger)
    active: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_event_sequence: Mapped[int] = mapped_column(BigInteger)


class HallWindow(Base):
    """A window (窗口): its set-up (window.upserted) and its state (the window.* events): who is signed in, in
    which post, since when, away since when, its last known beat and whether it went silent; and the
    vacancy being watched (counted from `vacancy_since`; one episode from `vacancy_episode` while the window stays
    away or silent without a break; over the limit with nothing waiting: `vacancy_pending`)."""

    __tablename__ = "hall_windows"
    __table_args__ = (
        Index("ix_hall_windows_pending", "center_id", postgresql_where=sql_text("vacancy_pending")),
        {"comment": "Read model of queue's windows, from window.* events (never written by a route)"},
    )

    center_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    number: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100))
    department: Mapped[str | None] = mapped_column(String(32))
    services: Mapped[dict[str, int]] = mapped_column(JSONB, server_default=sql_text("'{}'::jsonb"),
                                                     comment="service code -> weight (0: reserve)")
    duty: Mapped[bool] = mapped_column(Boolean, server_default=sql_text("false"))
    a_clerk: Mapped[str | None] = mapped_column(String(32))
    b_clerk: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, server_default=sql_text("true"))
    setup_sequence: Mapped[int] = mapped_column(BigInteger, server_default="0")
    state: Mapped[str] = mapped_column(String(12), server_default="signed_out",
                                       comment="signed_out | open | away | closed")
    clerk_id: Mapped[str | None] = mapped_column(String(32))
    clerk_name: Mapped[str | None] = mapped_column(String(100))
    post: Mapped[str | None] = mapped_column(String(1))
    state_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    away_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    away_message: Mapped[str | None] = mapped_column(String(200))
    last_beat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    silent: Mapped[bool] = mapped_column(Boolean, server_default=sql_text("false"))
    state_sequence: Mapped[int] = mapped_column(BigInteger, server_default="0")
    vacancy_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    vacancy_episode: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="when the uninterrupted absence began (the alert's cause)")
    vacancy_pending: Mapped[bool] = mapped_column(Boolean, server_default=sql_text("false"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HallTicket(Base):
    """A ticket (号票) as the ticket.* events tell it: status, effective arrival, called, started and ended
    times, window and clerk, wait and service seconds (what the KPIs read for waits, service times and
    no-shows)."""

    __tablename__ = "hall_tickets"
    __table_args__ = (
        Index("ix_hall_tickets_waiting", "center_id", "business_date", postgresql_where=sql_text("status = 'waiting'")),
        Index("ix_hall_tickets_day", "center_id", "business_date"),
        {"comment": "Read model of queue's tickets, from ticket.* events (never written by a route)"},
    )

    ticket_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    center_id: Mapped[str] = mapped_column(String(32))
    business_date: Mapped[date] = mapped_column(Date)
    service_code: Mapped[str] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(32))
    number: Mapped[str] = mapped_column(String(12))
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))
    duty_only: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16),
                                        comment="waiting | called | serving | done | no_show | cancelled | expired")
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    effective_arrival: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window: Mapped[str | None] = mapped_column(String(16), comment="the window that called it last")
    clerk_id: Mapped[str | None] = mapped_column(String(32))
    post: Mapped[str | None] = mapped_column(String(1))
    called_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), comment="first call")
    recalls: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    wait_s: Mapped[int | None] = mapped_column(Integer, comment="the queue's wait at the (last) call or start")
    service_s: Mapped[int] = mapped_column(Integer, server_default="0", comment="served seconds, transfers summed")
    requeues: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    transferred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    transferred_to_window: Mapped[str | None] = mapped_column(String(16))
    transferred_to_service: Mapped[str | None] = mapped_column(String(32))
    long_wait_alerted: Mapped[bool] = mapped_column(Boolean, server_default=sql_text("false"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_event_sequence: Mapped[int] = mapped_column(BigInteger)


class HallAppointmentRequest(Base):
    """A staff appointment request (当面、电话、信函预约): due by `due_at`, answered (confirmed or declined) when."""

    __tablename__ = "hall_appointment_requests"
    __table_args__: Any = {"comment": "Read model of queue's appointment requests (never written by a route)"}

    request_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    center_id: Mapped[str] = mapped_column(String(32), index=True)
    service_code: Mapped[str] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(12))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    phone_masked: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(10), comment="confirmed | declined (None: unanswered)")
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_event_sequence: Mapped[int] = mapped_column(BigInteger)


class HallInquiry(Base):
    """An inquiry of the register (首问负责制), from inquiry.registered/answered: its promised reply time and
    when it was answered."""

    __tablename__ = "hall_inquiries"
    __table_args__: Any = {"comment": "Read model of cases' inquiries (never written by a route)"}

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    center_id: Mapped[str] = mapped_column(String(32), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    item_code: Mapped[str | None] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(32))
    taken_by_id: Mapped[str] = mapped_column(String(32))
    taken_by_name: Mapped[str] = mapped_column(String(100))
    window: Mapped[str | None] = mapped_column(String(16))
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(10), comment="answered | referred | pending")
    promised_reply_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_event_sequence: Mapped[int] = mapped_column(BigInteger)
