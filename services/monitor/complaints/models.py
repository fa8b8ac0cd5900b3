"""Tables of supervision II (complaints): the ratings read model (好差评, from evaluation.submitted), the
follow-ups of bad ratings (差评回访) and the complaint register (投诉, 三个一). Imported by
services/monitor/models.py so Base.metadata holds every table."""

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Identity, Index, SmallInteger, String, Text
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from services.monitor.models import Base


class Rating(Base):
    """Every rating of a service (evaluation.submitted), once: the satisfaction KPI (ratings ≥ 3 / all) and the
    window scores read it."""

    __tablename__ = "ratings"
    __table_args__ = (Index("ix_ratings_center_submitted", "center_id", "submitted_at"),
                      Index("ix_ratings_center_day", "center_id", "business_date"),  # the KPIs' month
                      {"comment": "Read copy of queue's evaluations, from evaluation.submitted (never written here)"})

    evaluation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    center_id: Mapped[str] = mapped_column(String(32))
    ticket_id: Mapped[int] = mapped_column(BigInteger)
    window: Mapped[str | None] = mapped_column(String(16))
    clerk_id: Mapped[str | None] = mapped_column(String(32))
    post: Mapped[str | None] = mapped_column(String(1))
    department: Mapped[str | None] = mapped_column(String(32))
    service_code: Mapped[str] = mapped_column(String(32))
    rating: Mapped[int] = mapped_column(SmallInteger, comment="5 非常满意 … 1 非常不满意")
    case_no: Mapped[str | None] = mapped_column(String(48))
    channel: Mapped[str] = mapped_column(String(10))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    business_date: Mapped[date] = mapped_column(Date, comment="local date of the service (or of submitted_at)")


class Followup(Base):
    """A follow-up (回访) of a bad rating (2 不满意, 1 非常不满意), due in 15 working days; done with a note."""

    __tablename__ = "followups"
    __table_args__ = (Index("ix_followups_center_status", "center_id", "status", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    center_id: Mapped[str] = mapped_column(String(32))
    ticket_id: Mapped[int] = mapped_column(BigInteger)
    rating: Mapped[int] = mapped_column(SmallInteger)
    window: Mapped[str | None] = mapped_column(String(16))
    clerk_id: Mapped[str | None] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(32))
    service_code: Mapped[str] = mapped_column(String(32))
    case_no: Mapped[str | None] = mapped_column(String(48))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), comment="when the rating was submitted")
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), comment="15 working days, 23:59:59 local")
    status: Mapped[str] = mapped_column(String(8), comment="open | done")
    overdue: Mapped[bool] = mapped_column(Boolean, server_default=sql_text("false"))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_by: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)


class Complaint(Base):
    """A complaint (投诉), numbered `<centre>-TS-<yyyymmdd>-<nnnn>`, due per severity (三个一); the complainant's
    contact kept hashed, masked, encrypted, and sealed for notify (never in clear)."""

    __tablename__ = "complaints"
    __table_args__ = (Index("ix_complaints_center_status", "center_id", "status", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    center_id: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(10), comment="phone | mailbox | public | in_person")
    category: Mapped[str] = mapped_column(String(50))
    severity: Mapped[str] = mapped_column(String(8), comment="simple | general | major")
    window: Mapped[str | None] = mapped_column(String(16))
    department: Mapped[str | None] = mapped_column(String(32))
    case_no: Mapped[str | None] = mapped_column(String(48))
    text: Mapped[str] = mapped_column(Text)
    contact_kind: Mapped[str | None] = mapped_column(String(8), comment="phone | email")
    contact_hash: Mapped[str | None] = mapped_column(String(64))
    contact_masked: Mapped[str | None] = mapped_column(String(100))
    contact_encrypted: Mapped[str | None] = mapped_column(Text)
    contact_sealed: Mapped[str | None] = mapped_column(Text, comment="sealed for notify alone")
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_by: Mapped[str | None] = mapped_column(String(32), comment="None from the public page")
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(10), comment="open | resolved | upheld | dismissed")
    outcome: Mapped[str | None] = mapped_column(Text, comment="what the complainant is told")
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[str | None] = mapped_column(String(32))
    on_time: Mapped[bool | None] = mapped_column(Boolean)
