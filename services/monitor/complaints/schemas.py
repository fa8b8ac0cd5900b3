"""Request and response bodies of complaints (投诉) and bad-rating follow-ups (差评回访)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.monitor.schemas import CENTER
from shared.events.catalog import ComplaintChannel, ComplaintSeverity


class SubjectIn(BaseModel):
    """What the complaint is about: a window, a department or a case (at least one)."""

    model_config = ConfigDict(extra="forbid")

    window: str | None = Field(None, min_length=1, max_length=16)
    department: str | None = Field(None, min_length=1, max_length=32)
    case_no: str | None = Field(None, min_length=1, max_length=48)


class _ComplaintBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    center: str = Field(pattern=CENTER)
    category: str = Field(min_length=1, max_length=50, description="e.g. 服务态度, 办事效率, 工作纪律")
    subject: SubjectIn
    text: str = Field(min_length=1, max_length=4000)
    contact: str | None = Field(None, min_length=3, max_length=100,
                                description="a phone number or an e-mail address: the acknowledgement and the "
                                            "outcome go there; kept sealed, shown masked")


class ComplaintIn(_ComplaintBase):
    """A complaint recorded by staff (phone, letter box, the public page's, in person)."""

    channel: ComplaintChannel
    severity: ComplaintSeverity


class PublicComplaintIn(_ComplaintBase):
    """A complaint from the public page: channel public, severity general (the office reclassifies nothing:
    see the README)."""


class Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: str = Field(min_length=1, max_length=4000, description="what was done: the complainant is told")


class ComplaintOut(BaseModel):
    """A complaint as the office sees it: the contact only masked."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    number: str
    center_id: str
    channel: str
    category: str
    severity: str
    window: str | None
    department: str | None
    case_no: str | None
    text: str
    contact_masked: str | None
    received_at: datetime
    recorded_by: str | None
    due_at: datetime
    status: str
    outcome: str | None
    closed_at: datetime | None
    closed_by: str | None
    on_time: bool | None


class PublicReceipt(BaseModel):
    """What the public page shows back: the number, the due moment and the acknowledgement."""

    number: str
    received_at: datetime
    due_at: datetime
    acknowledgement: str


class ComplaintPage(BaseModel):
    items: list[ComplaintOut]
    next_after: int | None = Field(description="pass as ?after= for the next page; null on the last page")


class FollowupOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    center_id: str
    evaluation_id: int
    ticket_id: int
    rating: int
    window: str | None
    clerk_id: str | None
    department: str | None
    service_code: str
    case_no: str | None
    created_at: datetime
    due_at: datetime
    status: Literal["open", "done"]
    overdue: bool
    done_at: datetime | None
    done_by: str | None
    note: str | None


class FollowupPage(BaseModel):
    items: list[FollowupOut]
    next_after: int | None


class DoneNote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=2000, description="what the follow-up found and did (回访情况)")
