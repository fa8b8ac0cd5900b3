"""Request and response bodies of the monitor's routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events.catalog import AlertKind, AlertLevel, AlertStatus

CENTER = r"^[A-Za-z0-9]{2,32}$"


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=2000)


class RequiredNote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=2000, description="what was done")


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class OptionalReason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=2000)


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    center_id: str | None
    kind: AlertKind
    level: AlertLevel
    status: AlertStatus
    text: str
    case_no: str | None
    clock_version: int | None
    window: str | None
    department: str | None
    handler_id: str | None
    handler_name: str | None
    item_name: str | None
    due_at: datetime | None
    overdue_days: int | None
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledge_note: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolve_note: str | None
    details: dict[str, Any]


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_after: int | None = Field(description="pass as ?after= for the next page; null on the last page")


class FindingIn(BaseModel):
    """A finding recorded by hand (现场抽查, discipline, media exposure)."""

    model_config = ConfigDict(extra="forbid")

    center: str = Field(pattern=CENTER)
    source: Literal["spot_check", "discipline", "media"]
    department: str = Field(min_length=1, max_length=32)
    window: str | None = Field(None, min_length=1, max_length=16)
    case_no: str | None = Field(None, max_length=48)
    occurred_at: datetime | None = Field(None, description="when the breach was seen (default: now); orders the ladder")
    text: str = Field(min_length=1, max_length=4000, description="what was found, the evidence in words")


class AttachmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    content_type: str
    size: int


class FindingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    center_id: str
    source: str
    department: str
    window: str | None
    case_no: str | None
    item_name: str | None
    handler_id: str | None
    handler_name: str | None
    occurred_at: datetime
    year: int
    overdue_days: int | None
    status: str
    imported_overdue: bool
    text: str
    recorded_by: str
    recorded_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    alert_id: int | None
    attachments: list[AttachmentOut] = []


class FindingPage(BaseModel):
    items: list[FindingOut]
    next_after: int | None


class SanctionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    center_id: str
    department: str
    year: int
    finding_id: int
    level: Literal["warning", "criticism"]
    ordinal: int
    notice_no: str
    notice_text: str
    recipients: list[str]
    issued_at: datetime
    rectification_due_at: datetime
    status: Literal["issued", "rectified", "revoked"]
    reissues: int
    rectified_at: datetime | None
    rectify_note: str | None
    revoked_at: datetime | None
    revoke_reason: str | None
    case_no: str | None = None
    item_name: str | None = None
    handler_name: str | None = None
    overdue_days: int | None = None


class SanctionPage(BaseModel):
    items: list[SanctionOut]
    next_after: int | None


class SupervisionSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verification: Literal["manual", "auto"] = Field(
        description="manual: the office confirms each finding; auto: overdue findings are confirmed at once "
                    "(对超时办结直接生成问责), except those on cases imported already overdue")
    rectification_days: int = Field(ge=1, le=60, description="限时整改, working days")


class SupervisionSettingsOut(SupervisionSettingsIn):
    center_id: str
    updated_at: datetime | None
    updated_by: str | None
