"""Tables of joint cases (联办件): the departments' sub-tasks of a lead case and the joint review meetings.
Imported by services/cases/models.py so Base.metadata holds every table."""

from datetime import date, datetime

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
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from services.cases.models import Base


class JointReview(Base):
    """A joint review meeting (联合审查) of a joint case, with the departments invited and those present; an
    invited department absent is deemed to consent (缺席默认) for its open sub-task."""

    __tablename__ = "joint_reviews"
    __table_args__ = (ForeignKeyConstraint(["case_no"], ["cases.case_no"]),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    case_no: Mapped[str] = mapped_column(String(48), index=True)
    held_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    invited: Mapped[list[str]] = mapped_column(JSONB, comment="department codes")
    attended: Mapped[list[str]] = mapped_column(JSONB, comment="department codes present")
    absent: Mapped[list[str]] = mapped_column(JSONB, comment="invited and not present")
    recorded_by: Mapped[str] = mapped_column(String(32))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JointSubtask(Base):
    """A department's part of a joint case: its own limit in working days from the dispatch date (the
    dispatch day not counted), paused with the lead case; answered with an opinion, or deemed consented by
    the system (超时默认 at `due_at`, 缺席默认 at a joint review). One per department and case."""

    __tablename__ = "joint_subtasks"
    __table_args__ = (
        ForeignKeyConstraint(["case_no"], ["cases.case_no"]),
        ForeignKeyConstraint(["center_id", "department"], ["departments.center_id", "departments.code"]),
        ForeignKeyConstraint(["center_id", "item_code"], ["items.center_id", "items.code"]),
        ForeignKeyConstraint(["review_id"], ["joint_reviews.id"]),
        UniqueConstraint("case_no", "department"),
        CheckConstraint("status IN ('pending', 'answered', 'deemed_consented')", name="status_known"),
        CheckConstraint("(status = 'answered') = (opinion IS NOT NULL)", name="answered_has_opinion"),
        # a department's open sub-tasks (its clerks' to-do list)
        Index("ix_joint_subtasks_department", "center_id", "department", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    case_no: Mapped[str] = mapped_column(String(48))
    center_id: Mapped[str] = mapped_column(String(32))
    department: Mapped[str] = mapped_column(String(32))
    item_code: Mapped[str | None] = mapped_column(String(32), comment="the department's item whose fees it bills")
    limit_days: Mapped[int] = mapped_column(Integer, comment="working days from the dispatch date")
    note: Mapped[str | None] = mapped_column(Text)
    dispatched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    dispatched_on: Mapped[date] = mapped_column(Date, comment="the local dispatch date (not counted)")
    dispatched_by: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), comment="moved by the lead case's pauses")
    status: Mapped[str] = mapped_column(String(20), comment="pending | answered | deemed_consented")
    opinion: Mapped[str | None] = mapped_column(String(10), comment="agree | disagree, when answered")
    comment: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_by: Mapped[str | None] = mapped_column(String(32), comment="the clerk, or 'system' when deemed")
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    deemed_cause: Mapped[str | None] = mapped_column(String(10), comment="timeout | absent, when deemed")
    review_id: Mapped[int | None] = mapped_column(BigInteger, comment="the review it was absent from")
