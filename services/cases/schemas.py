"""Request and response models of the case routes (the catalogue's are in services/cases/catalogue)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events.catalog import CaseStatus, ItemKind, StageLimit

Text = Field(min_length=1, max_length=2000)
Code = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApplicantIn(Body):
    name: str = Field(min_length=1, max_length=100)
    id_number: str = Field(min_length=15, max_length=18, description="居民身份证号码 (or the unified social credit code"
                                                                     " holder's legal representative's)")
    phone: str | None = Field(None, max_length=20)
    org: str | None = Field(None, max_length=200, description="the company, when a company applies")


class MandateIn(Body):
    """委托 of a case accepted for agency (全程代办): who mandates, the mandate's reference and date, its scope."""

    mandator: str = Field(min_length=1, max_length=200, description="委托人: the applicant or their organisation")
    reference: str = Field(min_length=1, max_length=64, description="委托书编号")
    signed_on: date
    scope: str = Field(min_length=1, max_length=2000, description="委托事项")


class CaseIn(Body):
    """受理: a clerk at a window registers a case (window and handler from the token); an admin importing a case
    from an earlier system names the handler, window and acceptance time."""

    center: str = Field(min_length=2, max_length=32, pattern=r"^[A-Za-z0-9]+$")
    item_code: str = Code
    applicant: ApplicantIn
    materials: list[str] = Field(default_factory=list, max_length=100)
    source: Literal["window", "online", "agent"] = "window"
    ticket_id: int | None = Field(None, ge=1)
    notice_no: str | None = Field(None, max_length=48, description="the 一次性告知书 this acceptance follows")
    mandate: MandateIn | None = Field(None, description="source agent only: the mandate (委托)")
    agent: str | None = Field(None, max_length=32, description="source agent only: the agent's user id (代办员)")
    handler: str | None = Field(None, max_length=32, description="import only: the handling clerk's user id")
    window: str | None = Field(None, max_length=16, description="import only")
    accepted_at: datetime | None = Field(None, description="import only: when the earlier system accepted it")


class CaseAcceptedOut(BaseModel):
    case_no: str
    lookup_code: str = Field(description="shown once, on the receipt (承诺件告知单); only its keyed hash is kept")
    kind: ItemKind
    status: CaseStatus
    stage: str
    due_date: date
    due_at: datetime
    legal_due_at: datetime
    warn_at: datetime | None


class PauseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    reason: str
    paused_on: date
    resumed_on: date | None
    missing_materials: list[str]
    limit_at: datetime | None


class CaseOut(BaseModel):
    """A case as staff see it: the applicant masked."""

    model_config = ConfigDict(from_attributes=True)

    case_no: str
    center_id: str
    item_code: str
    department: str
    kind: ItemKind
    status: CaseStatus
    result: str | None
    stage: str
    stage_index: int
    stages: list[StageLimit]
    source: str
    ticket_id: int | None
    notice_no: str | None
    materials: list[str]
    accepted_at: datetime
    accepted_on: date
    promised_limit_days: int
    legal_limit_days: int
    extension_days: int
    due_date: date
    due_at: datetime
    legal_due_at: datetime
    warn_at: datetime | None
    stage_due_at: datetime | None
    clock_version: int
    paused_kind: str | None
    paused_on: date | None
    expedited: bool
    extension_request_days: int | None
    refusal_reason: str | None
    refusal_basis: str | None
    forwarded_to: str | None
    follow_up_at: datetime | None
    handler_id: str
    handler_name: str
    window: str | None
    applicant_name_masked: str
    id_number_masked: str
    phone_masked: str | None
    org: str | None
    completed_at: datetime | None
    completed_late: bool | None
    overdue_working_days: int | None
    imported: bool
    overdue_at_import: bool
    rating: int | None = None
    pauses: list[PauseOut] = []


class CasePage(BaseModel):
    items: list[CaseOut]
    next_after: str | None = Field(description="pass as ?after= for the next page; null on the last page")


class HistoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_id: str
    actor_role: str
    action: str
    from_status: str | None
    to_status: str
    from_stage: str | None
    to_stage: str | None
    reason: str | None
    details: dict[str, object]


class PublicCaseOut(BaseModel):
    """What the touch screen and the phone show (办件查询): no name, ID or phone."""

    case_no: str
    item_name: str
    department: str
    status: CaseStatus
    stage: str
    accepted_on: date
    due_date: date
    paused: bool
    result: str | None
    completed_at: datetime | None


# action bodies

class Note(Body):
    note: str | None = Field(None, max_length=2000)


class Reasoned(Body):
    reason: str = Text


class SupplementRequest(Body):
    """补正: everything missing at once (一次性告知)."""

    missing_materials: list[str] = Field(min_length=1, max_length=100)
    reason: str | None = Field(None, max_length=2000)


class SpecialStart(Body):
    """特别程序: site inspection, expert review, hearing ..., each with a reason."""

    procedure: Literal["site_inspection", "expert_review", "hearing", "testing", "other"]
    reason: str = Text


class ExtensionRequest(Body):
    days: int = Field(ge=1, le=365)
    reason: str = Text


class Forward(Body):
    to_authority: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(None, max_length=2000)


class ForwardResult(Body):
    result: Literal["approved", "refused"]
    note: str | None = Field(None, max_length=2000)


class Complete(Body):
    result: Literal["approved", "refused"] = Field(
        "approved", description="refused is only through propose-refusal and the chief representative's approval")
    note: str | None = Field(None, max_length=2000)


class RefusalProposal(Body):
    reason: str = Text
    legal_basis: str = Text


class Expedite(Body):
    promised_limit_days: int = Field(ge=0, le=365)
    reason: str = Text


class Deliver(Body):
    method: Literal["window", "post", "online"] = "window"


class Reassign(Body):
    handler: str = Field(min_length=1, max_length=32, description="the user id of the clerk taking the case over")
    reason: str = Text
