"""Tables of the monitor service (its own database; the shared platform tables come from shared.tables).

Everything here is built from events: the read model of open cases and their clocks (`case_clocks`), the
departments' names and the centres, and what supervision itself decides: alerts, findings, sanctions and
the centre's supervision settings. Due moments are durable timers (shared.timers), never a scan."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import new_metadata
from shared.readcopy import CenterCopyColumns


class Base(DeclarativeBase):
    metadata = new_metadata()


class CenterCopy(CenterCopyColumns, Base):
    """Read copy of the queue service's centres, kept from `center.upserted` events."""


class DepartmentCopy(Base):
    """Read copy of the case registry's departments (department.upserted): the names a notice prints."""

    __tablename__ = "departments"
    __table_args__: Any = {"comment": "Read copy of cases' departments, from department.upserted (never written here)"}

    center_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    chief_rep: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_event_sequence: Mapped[int] = mapped_column(BigInteger)


class SupervisionSettings(Base):
    """A centre's supervision settings: manual or automatic verification of findings (对超时办结直接生成问责),
    and the rectification limit (限时整改) in working days."""

    __tablename__ = "supervision_settings"

    center_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    verification: Mapped[str] = mapped_column(String(8), comment="manual | auto")
    rectification_days: Mapped[int] = mapped_column(SmallInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(32))


class CaseClock(Base):
    """An open (or lately closed) case as supervision watches it: its latest clock version from the case
    events, whether it is paused, and the moments its timers are armed for."""

    __tablename__ = "case_clocks"
    __table_args__ = (Index("ix_case_clocks_center_open", "center_id", postgresql_where=sql_text("closed_at IS NULL")),
                      Index("ix_case_clocks_accepted", "center_id", "accepted_at"),
                      Index("ix_case_clocks_completed", "center_id", "completed_at",
                            postgresql_where=sql_text("completed_at IS NOT NULL")))

    case_no: Mapped[str] = mapped_column(String(48), primary_key=True)
    center_id: Mapped[str] = mapped_column(String(32))
    department: Mapped[str] = mapped_column(String(32))
    item_code: Mapped[str] = mapped_column(String(32))
    item_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(20))
    stage: Mapped[str] = mapped_column(String(50))
    stage_index: Mapped[int] = mapped_column(SmallInteger)
    handler_id: Mapped[str] = mapped_column(String(32))
    handler_name: Mapped[str] = mapped_column(String(100))
    window: Mapped[str | None] = mapped_column(String(16))
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    legal_due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    warn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stage_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    follow_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    special_limit_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    special_count: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    paused: Mapped[bool] = mapped_column(Boolean)
    clock_version: Mapped[int] = mapped_column(Integer)
    imported: Mapped[bool] = mapped_column(Boolean)
    overdue_at_import: Mapped[bool] = mapped_column(Boolean)
    expedited: Mapped[bool] = mapped_column(Boolean)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # what the KPIs count (case.accepted's item limits, case.completed's outcome)
    promised_limit_days: Mapped[int | None] = mapped_column(SmallInteger)
    legal_limit_days: Mapped[int | None] = mapped_column(SmallInteger)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[str | None] = mapped_column(String(10), comment="approved | refused")
    completed_late: Mapped[bool | None] = mapped_column(Boolean)
    overdue_working_days: Mapped[int | None] = mapped_column(Integer)


class Alert(Base):
    """An alert (预警, 超时, ...): raised once per cause (`cause_key`, e.g. overdue:<case>:v<clock version>),
    acknowledged, resolved."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_center_raised", "center_id", "raised_at", "id"),
        Index("ix_alerts_case", "case_no"),
        Index("ix_alerts_open", "kind", postgresql_where=sql_text("status <> 'resolved'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    cause_key: Mapped[str] = mapped_column(String(200), unique=True)
    center_id: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    case_no: Mapped[str | None] = mapped_column(String(48))
    clock_version: Mapped[int | None] = mapped_column(Integer)
    window: Mapped[str | None] = mapped_column(String(16))
    department: Mapped[str | None] = mapped_column(String(32))
    handler_id: Mapped[str | None] = mapped_column(String(32))
    handler_name: Mapped[str | None] = mapped_column(String(100))
    item_name: Mapped[str | None] = mapped_column(String(200))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    overdue_days: Mapped[int | None] = mapped_column(Integer)
    due_moment: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                         comment="the moment the cause fell due (lag = raised_at - due_moment)")
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(String(32))
    acknowledge_note: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(32))
    resolve_note: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sql_text("'{}'::jsonb"))


class Finding(Base):
    """A finding against a department: an overdue case's (one per case), or recorded by hand (现场抽查,
    discipline, media exposure) with its evidence. Pending until confirmed or excused."""

    __tablename__ = "findings"
    __table_args__ = (Index("ix_findings_center_status", "center_id", "status", "id"),
                      Index("ix_findings_ladder", "center_id", "department", "year", "occurred_at"))

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    cause_key: Mapped[str | None] = mapped_column(String(200), unique=True, comment="overdue:<case> (none by hand)")
    center_id: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))
    department: Mapped[str] = mapped_column(String(32))
    window: Mapped[str | None] = mapped_column(String(16))
    case_no: Mapped[str | None] = mapped_column(String(48))
    item_name: Mapped[str | None] = mapped_column(String(200))
    handler_id: Mapped[str | None] = mapped_column(String(32))
    handler_name: Mapped[str | None] = mapped_column(String(100))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    year: Mapped[int] = mapped_column(SmallInteger, comment="local calendar year of occurred_at: the ladder's year")
    overdue_days: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10))
    imported_overdue: Mapped[bool] = mapped_column(Boolean)
    text: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(32))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    alert_id: Mapped[int | None] = mapped_column(BigInteger)


class FindingAttachment(Base):
    """Evidence attached to a finding recorded by hand (a photo, a scan), kept in the database."""

    __tablename__ = "finding_attachments"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    finding_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("findings.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Sanction(Base):
    """A sanction of a confirmed finding: its level on the department's ladder of the year, its notice, its
    rectification deadline. Revoked ones stay (they no longer count)."""

    __tablename__ = "sanctions"
    __table_args__ = (UniqueConstraint("finding_id"),
                      Index("ix_sanctions_ladder", "center_id", "department", "year"),
                      Index("ix_sanctions_center", "center_id", "id"))

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    center_id: Mapped[str] = mapped_column(String(32))
    department: Mapped[str] = mapped_column(String(32))
    year: Mapped[int] = mapped_column(SmallInteger)
    finding_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("findings.id"))
    level: Mapped[str] = mapped_column(String(10), comment="warning (警告) | criticism (通报批评)")
    ordinal: Mapped[int] = mapped_column(SmallInteger)
    notice_no: Mapped[str] = mapped_column(String(64), unique=True)
    notice_text: Mapped[str] = mapped_column(Text)
    recipients: Mapped[list[str]] = mapped_column(JSONB)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rectification_due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(10), comment="issued | rectified | revoked")
    reissues: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    rectified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rectified_by: Mapped[str | None] = mapped_column(String(32))
    rectify_note: Mapped[str | None] = mapped_column(Text)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(32))
    revoke_reason: Mapped[str | None] = mapped_column(Text)


class Refusal(Base):
    """A refused case (case.refused), by the applicant's keyed hash: two or more for one item is tracked
    (重点跟踪)."""

    __tablename__ = "refusals"
    __table_args__ = (Index("ix_refusals_applicant", "center_id", "item_code", "applicant_hash"),)

    case_no: Mapped[str] = mapped_column(String(48), primary_key=True)
    center_id: Mapped[str] = mapped_column(String(32))
    item_code: Mapped[str] = mapped_column(String(32))
    applicant_hash: Mapped[str] = mapped_column(String(64))
    refused_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HallCopy(Base):
    """Read copy of a centre's queue settings and hall schedule (center.settings_changed,
    center.schedule_changed): the vacancy minutes and the opening hours the hall's alerts count in."""

    __tablename__ = "hall_copies"
    __table_args__: Any = {"comment": "Read copy of queue's centre settings and schedule (never written here)"}

    center_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    schedule: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    settings_sequence: Mapped[int] = mapped_column(BigInteger, server_default="0")
    schedule_sequence: Mapped[int] = mapped_column(BigInteger, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# the tables of supervision II live beside their rules; imported here so that Base.metadata has every table
from services.monitor.complaints import models as _complaints_models  # noqa: E402,F401
from services.monitor.hall import models as _hall_models  # noqa: E402,F401


class ScoreSettings(Base):
    """A centre's window-score deductions (窗口考评): points per kind for the first, second, third and later
    occurrence in a month ("每次分别减3、5、10分")."""

    __tablename__ = "score_settings"

    center_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    deductions: Mapped[dict[str, list[int]]] = mapped_column(JSONB)
    publish_ranking: Mapped[bool] = mapped_column(Boolean, server_default=sql_text("false"),
                                                  comment="the month's ranking on the public page")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(32))


class ScoreBonus(Base):
    """Bonus points the office grants a window for a month, with a reason (表彰)."""

    __tablename__ = "score_bonuses"
    __table_args__ = (Index("ix_score_bonuses_month", "center_id", "month"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    center_id: Mapped[str] = mapped_column(String(32))
    window: Mapped[str] = mapped_column(String(16))
    month: Mapped[str] = mapped_column(String(7), comment="yyyy-mm, local")
    points: Mapped[int] = mapped_column(SmallInteger)
    reason: Mapped[str] = mapped_column(Text)
    granted_by: Mapped[str] = mapped_column(String(32))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
