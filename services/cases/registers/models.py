"""Tables of cases II (registers): one-time notices (一次性告知书), the inquiry register (首问登记) and the
agency of a case (全程代办). Imported by services/cases/models.py so Base.metadata holds every table."""

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
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from services.cases.models import Base


class Notice(Base):
    """A one-time notice of missing materials (一次性告知书): no case and no clock; numbered per centre and local
    day without gaps, `<centre>-YC-<yyyymmdd>-<4-digit sequence>`. An acceptance may refer to it once
    (`case_no`). The applicant in the stored forms of cases (keyed hash, mask, encrypted)."""

    __tablename__ = "notices"
    __table_args__ = (
        ForeignKeyConstraint(["center_id", "item_code"], ["items.center_id", "items.code"]),
        Index("ix_notices_center_day", "center_id", "issued_on", "notice_no"),
    )

    notice_no: Mapped[str] = mapped_column(String(48), primary_key=True,
                                           comment="<center>-YC-<yyyymmdd>-<4-digit daily sequence>")
    center_id: Mapped[str] = mapped_column(String(32))
    item_code: Mapped[str] = mapped_column(String(32))
    item_name: Mapped[str] = mapped_column(String(200), comment="the item's name when issued")
    department: Mapped[str] = mapped_column(String(32))
    missing: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, comment="[{code: the item's material code or null, name}] everything missing, at once")
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    issued_on: Mapped[date] = mapped_column(Date, comment="the local date, the number's day")
    issued_by: Mapped[str] = mapped_column(String(32))
    issued_by_name: Mapped[str] = mapped_column(String(100))
    window: Mapped[str | None] = mapped_column(String(16))
    applicant_name_masked: Mapped[str] = mapped_column(String(100))
    applicant_name_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    applicant_hash: Mapped[str] = mapped_column(String(64), comment="keyed hash of the ID number")
    id_number_masked: Mapped[str] = mapped_column(String(32))
    id_number_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    phone_masked: Mapped[str | None] = mapped_column(String(16))
    phone_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    case_no: Mapped[str | None] = mapped_column(String(48), unique=True,
                                                comment="the case accepted on this notice, once")


class Inquiry(Base):
    """An inquiry of the register (首问负责制): who was asked first (`taken_by`), on which channel, about what,
    and the answer, the window referred to, or the promised reply time; `on_time` once a pending one is
    answered. The contact (a phone or an e-mail) masked and encrypted only."""

    __tablename__ = "inquiries"
    __table_args__ = (
        CheckConstraint("status IN ('answered', 'referred', 'pending')", name="status_known"),
        CheckConstraint("status <> 'pending' OR promised_reply_at IS NOT NULL", name="pending_has_promise"),
        Index("ix_inquiries_center_registered", "center_id", "registered_at", "id"),
        Index("ix_inquiries_pending_promise", "center_id", "promised_reply_at",
              postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    center_id: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(8), comment="on_site | phone | email")
    item_code: Mapped[str | None] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(32), comment="the item's department")
    question: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), comment="answered | referred | pending")
    answer: Mapped[str | None] = mapped_column(Text)
    referred_window: Mapped[str | None] = mapped_column(String(16))
    promised_reply_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    taken_by: Mapped[str] = mapped_column(String(32), comment="the person first asked (首问责任人)")
    taken_by_name: Mapped[str] = mapped_column(String(100))
    window: Mapped[str | None] = mapped_column(String(16), comment="the taker's window, if signed in at one")
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_by: Mapped[str | None] = mapped_column(String(32))
    on_time: Mapped[bool | None] = mapped_column(Boolean, comment="a pending one, answered by its promise")
    contact_kind: Mapped[str | None] = mapped_column(String(8), comment="phone | email")
    contact_masked: Mapped[str | None] = mapped_column(String(120))
    contact_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)


class CaseAgency(Base):
    """全程代办 of a case accepted with source `agent`: the mandate (委托: who mandates, the mandate's reference
    and date, its scope), the agent assigned (a clerk or chief representative of the case's department), and,
    once the result is returned, the hand-back with the fee settlement. The 代办承办单 is printed from it."""

    __tablename__ = "case_agencies"
    __table_args__ = (ForeignKeyConstraint(["case_no"], ["cases.case_no"]),)

    case_no: Mapped[str] = mapped_column(String(48), primary_key=True)
    center_id: Mapped[str] = mapped_column(String(32))
    mandator_masked: Mapped[str] = mapped_column(String(200), comment="who mandates (委托人), masked")
    mandator_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    mandate_reference: Mapped[str] = mapped_column(String(64), comment="the mandate's number (委托书编号)")
    mandate_signed_on: Mapped[date] = mapped_column(Date)
    mandate_scope: Mapped[str] = mapped_column(Text, comment="what the agent may do (委托事项)")
    agent_id: Mapped[str] = mapped_column(String(32))
    agent_name: Mapped[str] = mapped_column(String(100))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    assigned_by: Mapped[str] = mapped_column(String(32))
    handed_back_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handed_back_by: Mapped[str | None] = mapped_column(String(32))
    fees_settled: Mapped[str | None] = mapped_column(String(200), comment="as on the 承办单: 免费, or an amount")
    hand_back_note: Mapped[str | None] = mapped_column(Text)
