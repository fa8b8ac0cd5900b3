"""Tables of the cases service (its own database; the shared platform tables come from shared.tables):
departments (窗口单位), the item catalogue (事项目录), cases (办件) with their clock, pauses, append-only history
and ratings, and the read copies of the queue's centres and windows and of identity's staff."""

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
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import new_metadata
from shared.readcopy import CenterCopyColumns, StaffCopyColumns


class Base(DeclarativeBase):
    metadata = new_metadata()


class CenterCopy(CenterCopyColumns, Base):
    """Read copy of the queue service's centres, kept from `center.upserted` events."""


class Department(Base):
    """A department (窗口单位) stationed in a centre, with its head's contacts and its chief representative."""

    __tablename__ = "departments"

    center_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    head_name: Mapped[str | None] = mapped_column(String(100))
    head_phone_masked: Mapped[str | None] = mapped_column(String(16))
    head_phone_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    head_email_masked: Mapped[str | None] = mapped_column(String(120))
    head_email_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    chief_rep: Mapped[str | None] = mapped_column(String(32), comment="identity user id of the 首席代表")
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Item(Base):
    """An item (事项) of a centre's catalogue: its kind and limits in working days, stages, materials, fees."""

    __tablename__ = "items"
    __table_args__ = (
        ForeignKeyConstraint(["center_id", "department"], ["departments.center_id", "departments.code"]),
        CheckConstraint("promised_limit_days <= legal_limit_days", name="promised_within_legal"),
        CheckConstraint("kind <> 'immediate' OR promised_limit_days = 0", name="immediate_is_zero"),
    )

    center_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16), comment="immediate | promised | joint | reported")
    legal_limit_days: Mapped[int] = mapped_column(Integer, comment="法定时限, working days")
    promised_limit_days: Mapped[int] = mapped_column(Integer, comment="承诺时限, working days, <= legal")
    stages: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"),
                                                         comment="[StageLimit]; empty: one stage 办理")
    warn_days: Mapped[int] = mapped_column(Integer, server_default=text("1"), comment="early warning lead W")
    max_extension_days: Mapped[int] = mapped_column(Integer, server_default=text("10"))
    forward_followup_days: Mapped[int] = mapped_column(Integer, server_default=text("20"))
    special_limit_days: Mapped[int] = mapped_column(Integer, server_default=text("10"))
    materials: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"),
                                                            comment="[Material]")
    fees: Mapped[str | None] = mapped_column(Text)
    legal_basis: Mapped[str | None] = mapped_column(Text)
    # the service guide (办事指南), cases_0005: its forms and samples are intake's item_files
    conditions: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"), comment="申请条件")
    procedure: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"),
                                                            comment="办理流程: [ProcedureStep]")
    fee_basis: Mapped[str | None] = mapped_column(Text, comment="收费依据")
    service_objects: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"),
                                                       comment="服务对象: [ServiceObject]")
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Case(Base):
    """A case (办件): its state and stage, the clock as it stands (`clock_version` counts its changes), who
    handles it, and the applicant in the three stored forms (keyed hash, mask, encrypted)."""

    __tablename__ = "cases"
    __table_args__ = (
        ForeignKeyConstraint(["center_id", "item_code"], ["items.center_id", "items.code"]),
        # lists: a centre's cases by status, and what is due soonest
        Index("ix_cases_center_status", "center_id", "status", "case_no"),
        Index("ix_cases_open_due", "center_id", "due_at",
              postgresql_where=text("status NOT IN ('completed', 'delivered', 'withdrawn')")),
        Index("ix_cases_handler", "handler_id", "case_no"),
        Index("ix_cases_department", "center_id", "department", "case_no"),
        Index("ix_cases_applicant_item", "applicant_hash", "item_code"),
    )

    case_no: Mapped[str] = mapped_column(String(48), primary_key=True,
                                         comment="<center>-<yyyymmdd>-<6-digit daily sequence>")
    center_id: Mapped[str] = mapped_column(String(32))
    item_code: Mapped[str] = mapped_column(String(32))
    item_name: Mapped[str] = mapped_column(String(200), comment="the item's name at acceptance")
    department: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(20))
    result: Mapped[str | None] = mapped_column(String(10), comment="approved | refused, once completed")
    stages: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, comment="[StageLimit] copied from the item at acceptance (a later item change leaves it)")
    stage_index: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    stage_started_on: Mapped[date] = mapped_column(Date)
    lookup_code_hash: Mapped[str] = mapped_column(String(64), comment="keyed hash of the public lookup code")
    source: Mapped[str] = mapped_column(String(8), comment="window | online | agent")
    ticket_id: Mapped[int | None] = mapped_column(BigInteger)
    notice_no: Mapped[str | None] = mapped_column(String(48), comment="the 一次性告知书 this acceptance follows")
    materials: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))

    # the clock (DOMAIN.md "How the clock counts")
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_on: Mapped[date] = mapped_column(Date, comment="the local acceptance date (not counted)")
    promised_limit_days: Mapped[int] = mapped_column(Integer, comment="the item's, or the expedited limit")
    legal_limit_days: Mapped[int] = mapped_column(Integer)
    warn_days: Mapped[int] = mapped_column(Integer)
    extension_days: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    max_extension_days: Mapped[int] = mapped_column(Integer, comment="the item's at acceptance, as below")
    special_limit_days: Mapped[int] = mapped_column(Integer)
    forward_followup_days: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    legal_due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    warn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stage_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    clock_version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    paused_kind: Mapped[str | None] = mapped_column(String(12), comment="supplement | special | forward")
    paused_on: Mapped[date | None] = mapped_column(Date)
    supplement_count: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    special_count: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))

    # pending requests and what they carry until approved
    extension_request_days: Mapped[int | None] = mapped_column(Integer)
    extension_reason: Mapped[str | None] = mapped_column(Text)
    refusal_reason: Mapped[str | None] = mapped_column(Text)
    refusal_basis: Mapped[str | None] = mapped_column(Text)
    refusal_proposed_by: Mapped[str | None] = mapped_column(String(32))
    expedited: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    expedite_reason: Mapped[str | None] = mapped_column(Text)
    forwarded_to: Mapped[str | None] = mapped_column(String(200))
    follow_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    handler_id: Mapped[str] = mapped_column(String(32))
    handler_name: Mapped[str] = mapped_column(String(100))
    window: Mapped[str | None] = mapped_column(String(16))

    applicant_name_masked: Mapped[str] = mapped_column(String(100))
    applicant_name_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    applicant_hash: Mapped[str] = mapped_column(String(64), comment="keyed hash of the ID number")
    id_number_masked: Mapped[str] = mapped_column(String(32))
    id_number_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    phone_masked: Mapped[str | None] = mapped_column(String(16))
    phone_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    org: Mapped[str | None] = mapped_column(String(200))

    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_late: Mapped[bool | None] = mapped_column(Boolean)
    overdue_working_days: Mapped[int | None] = mapped_column(Integer)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), comment="delivered or withdrawn")
    imported: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    overdue_at_import: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CasePause(Base):
    """A stop of a case's clock (补正, 特别程序, 上报) from `paused_on` to `resumed_on` (local dates): the due
    dates move by the working days d with paused_on < d <= resumed_on, recounted on a calendar change."""

    __tablename__ = "case_pauses"
    __table_args__ = (ForeignKeyConstraint(["case_no"], ["cases.case_no"]),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    case_no: Mapped[str] = mapped_column(String(48), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str] = mapped_column(Text)
    paused_on: Mapped[date] = mapped_column(Date)
    resumed_on: Mapped[date | None] = mapped_column(Date)
    missing_materials: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    limit_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                      comment="special: the item's limit for it; forward: follow-up")


class CaseHistory(Base):
    """The append-only audit trail of a case (who, when, from, to, action, why). The database refuses any
    UPDATE, DELETE or TRUNCATE of it (trigger, cases_0002)."""

    __tablename__ = "case_history"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    case_no: Mapped[str] = mapped_column(String(48), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_id: Mapped[str] = mapped_column(String(32))
    actor_role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    from_stage: Mapped[str | None] = mapped_column(String(50))
    to_stage: Mapped[str | None] = mapped_column(String(50))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class CaseRating(Base):
    """A rating (好差评) attached to a case, from the queue's evaluation.submitted."""

    __tablename__ = "case_ratings"

    evaluation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_no: Mapped[str] = mapped_column(String(48), unique=True, comment="one rating per case: the first")
    center_id: Mapped[str] = mapped_column(String(32))
    ticket_id: Mapped[int] = mapped_column(BigInteger)
    rating: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(Text)
    window: Mapped[str | None] = mapped_column(String(16))
    clerk_id: Mapped[str | None] = mapped_column(String(32))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WindowCopy(Base):
    """Read copy of the queue's windows (window.upserted): which department a window belongs to, and whether
    it is flagged for joint approval (联办)."""

    __tablename__ = "windows"
    __table_args__: Any = {"comment": "Read copy of queue's windows, from window.upserted (never written here)"}

    center_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    number: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    department: Mapped[str | None] = mapped_column(String(32))
    a_clerk: Mapped[str | None] = mapped_column(String(32))
    b_clerk: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean)
    joint_approval: Mapped[bool] = mapped_column(Boolean, server_default=text("false"),
                                                 comment="联办: joint items are accepted here")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_event_sequence: Mapped[int] = mapped_column(BigInteger)


class Staff(StaffCopyColumns, Base):
    """Read copy of identity's users (user.upserted): the handler names cases carry."""


# the tables of cases II live beside their rules; imported here so that Base.metadata has every table
from services.cases.intake import models as _intake_models  # noqa: E402,F401
from services.cases.joint import models as _joint_models  # noqa: E402,F401
from services.cases.registers import models as _registers_models  # noqa: E402,F401
