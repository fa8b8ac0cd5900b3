"""Request and response models of the joint-case routes (联办件: sub-tasks, opinions, joint reviews, the bill)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.cases.schemas import Body, Code
from shared.events.catalog import Opinion, SubtaskStatus

Departments = Field(min_length=1, max_length=50)


class SubtaskIn(Body):
    """The lead case sends a department its part (联办 子任务), with its own limit from today."""

    department: str = Code
    limit_days: int = Field(ge=0, le=60, description="working days from the dispatch date (not counted)")
    note: str | None = Field(None, min_length=1, max_length=2000)
    item_code: str | None = Field(None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$",
                                  description="the department's item whose fees go on the case's bill")


class OpinionIn(Body):
    opinion: Opinion
    comment: str = Field(min_length=1, max_length=2000)


class JointReviewIn(Body):
    """A joint review meeting (联合审查) held: the departments invited and those present."""

    held_at: AwareDatetime
    invited: list[str] = Departments
    attended: list[str] = Field(default_factory=list, max_length=50)


class SubtaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    case_no: str
    department: str
    item_code: str | None
    limit_days: int
    note: str | None
    dispatched_at: datetime
    dispatched_on: date
    dispatched_by: str
    due_at: datetime
    due_date: date = Field(description="the local date the limit ends on")
    status: SubtaskStatus
    opinion: Opinion | None
    comment: str | None
    answered_at: datetime | None
    answered_by: str | None = Field(description="the clerk; 'system' when deemed to consent")
    on_time: bool | None
    deemed_cause: str | None = Field(description="timeout (超时默认) | absent (缺席默认)")
    review_id: int | None


class JointReviewOut(BaseModel):
    id: int
    case_no: str
    held_at: datetime
    invited: list[str]
    attended: list[str]
    absent: list[str]
    recorded_by: str
    deemed_consented: list[int] = Field(description="the sub-tasks this review deemed to consent (缺席默认)")


class BillLine(BaseModel):
    department: str
    department_name: str | None
    role: str = Field(description="lead (主办) | subtask (协办)")
    subtask_id: int | None
    item_code: str | None
    item_name: str | None
    fees: str | None = Field(description="the item's fee text (收费标准) as the catalogue gives it")
    amount: Decimal | None = Field(description="yuan, when the fee text is one plain amount (or free); else null")


class BillOut(BaseModel):
    """Every department's fees on one bill (一单收费)."""

    case_no: str
    lines: list[BillLine]
    total: Decimal = Field(description="the sum of the lines whose amount is known")
    complete: bool = Field(description="false when a line's fee text is not one plain amount (see its text)")
