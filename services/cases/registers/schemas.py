"""Request and response models of the registers: one-time notices, inquiries, agency and the public board."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.cases.schemas import ApplicantIn, Body, Code
from shared.events.catalog import CaseStatus, InquiryChannel

Center = Field(min_length=2, max_length=32, pattern=r"^[A-Za-z0-9]+$")


# one-time notices (一次性告知书)

class NoticeIn(Body):
    """一次性告知书: everything the applicant still has to bring, at once; no case is opened, no clock runs."""

    center: str = Center
    item_code: str = Code
    applicant: ApplicantIn
    missing: list[str] = Field(min_length=1, max_length=100,
                               description="the item's material codes or names, each once")


class MissingMaterial(BaseModel):
    code: str | None = Field(description="the item's material code; null for a material the item does not list")
    name: str


class NoticeOut(BaseModel):
    """A notice as staff see it: the applicant masked."""

    model_config = ConfigDict(from_attributes=True)

    notice_no: str
    center_id: str
    item_code: str
    item_name: str
    department: str
    missing: list[MissingMaterial]
    issued_at: datetime
    issued_on: date
    issued_by: str
    issued_by_name: str
    window: str | None
    applicant_name_masked: str
    id_number_masked: str
    phone_masked: str | None
    case_no: str | None = Field(description="the case accepted on this notice, once it is")


# inquiries (首问负责制)

class InquiryIn(Body):
    """首问登记 by the person first asked: answered at once, referred to a window, or promised a reply by a time
    (a referral may carry a promise: the window replies later)."""

    center: str = Center
    channel: InquiryChannel
    item_code: str | None = Field(None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    question: str = Field(min_length=1, max_length=2000)
    answer: str | None = Field(None, min_length=1, max_length=4000)
    referred_window: str | None = Field(None, min_length=1, max_length=16)
    promised_reply_at: datetime | None = Field(None, description="when the reply is promised; in the future")
    contact: str | None = Field(None, max_length=120, description="a mobile number or an e-mail address")


class InquiryAnswer(Body):
    answer: str = Field(min_length=1, max_length=4000)


class InquiryOut(BaseModel):
    """An inquiry of the register: the contact masked."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    center_id: str
    channel: InquiryChannel
    item_code: str | None
    department: str | None
    question: str
    status: Literal["answered", "referred", "pending"]
    answer: str | None
    referred_window: str | None
    promised_reply_at: datetime | None
    taken_by: str
    taken_by_name: str
    window: str | None
    registered_at: datetime
    answered_at: datetime | None
    answered_by: str | None
    on_time: bool | None
    contact_masked: str | None


class InquiryPage(BaseModel):
    items: list[InquiryOut]
    next_after: int | None = Field(description="pass as ?after= for the next page; null on the last page")


# agency (全程代办)

class HandBack(Body):
    fees_settled: str = Field(min_length=1, max_length=200, description="the settlement: 免费, or an amount paid")
    note: str | None = Field(None, max_length=2000)


class AgencyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    case_no: str
    mandator_masked: str
    mandate_reference: str
    mandate_signed_on: date
    mandate_scope: str
    agent_id: str
    agent_name: str
    assigned_at: datetime
    assigned_by: str
    handed_back_at: datetime | None
    handed_back_by: str | None
    fees_settled: str | None
    hand_back_note: str | None


# the public board

class BoardEntry(BaseModel):
    """One line of the board: what happened to a case lately, the applicant's name masked; nothing else of them."""

    case_no: str
    item_name: str
    department: str
    status: CaseStatus
    stage: str
    event: Literal["accepted", "completed", "delivered"]
    on: date = Field(description="the local date it happened")
    applicant: str = Field(description="the name masked (张*)")


class Board(BaseModel):
    center: str
    entries: list[BoardEntry]
