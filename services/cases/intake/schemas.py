"""Request and response models of intake: one row of an import of open cases (JSON, or a CSV line read into
the same shape), its answer, the centre's settings and the guide's files."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.cases.schemas import ApplicantIn
from shared.events.catalog import CaseStatus

CODE = r"^[A-Za-z0-9_.-]{1,32}$"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PauseIn(Body):
    """A stop of the clock in the previous system: 补正 (supplement), 特别程序 (special) or 上报 (forward),
    from local date `from` to its resume date `to` (none: still stopped; only the last may be)."""

    kind: Literal["supplement", "special", "forward"]
    from_: date = Field(alias="from")
    to: date | None = None
    reason: str | None = Field(None, min_length=1, max_length=2000)
    missing_materials: list[str] = Field(default_factory=list, max_length=100,
                                         description="补正: what the applicant was asked for")
    to_authority: str | None = Field(None, min_length=1, max_length=200, description="上报: to whom")


class ExtensionIn(Body):
    """An extension (延期) in the previous system: approved (the due dates move) or waiting for the chief
    representative's decision (the case is imported as extension_pending)."""

    days: int = Field(ge=1, le=365)
    approved: bool
    reason: str | None = Field(None, min_length=1, max_length=2000)


class ImportRow(Body):
    """One open case of the previous system, with its original acceptance time (an instant without an offset
    is Asia/Shanghai wall time) and number (`legacy_no`, kept beside the number this service gives it)."""

    legacy_no: str = Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")
    item_code: str = Field(pattern=CODE)
    accepted_at: datetime
    stage: str | None = Field(None, min_length=1, max_length=50, description="default: the item's first stage")
    stage_started_on: date | None = Field(None, description="default: the acceptance date")
    handler: str = Field(min_length=1, max_length=32, description="the handling clerk's identity user id")
    window: str | None = Field(None, min_length=1, max_length=16)
    applicant: ApplicantIn
    materials: list[str] = Field(default_factory=list, max_length=100)
    source: Literal["window", "online"] = "window"
    pauses: list[PauseIn] = Field(default_factory=list, max_length=20)
    extension: ExtensionIn | None = None


class ImportIn(Body):
    """The JSON form of an import (the CSV form has one row per line: see README "Case import")."""

    cases: list[ImportRow]


class ImportedOut(BaseModel):
    row: int
    legacy_no: str
    case_no: str
    status: CaseStatus
    due_at: datetime
    legal_due_at: datetime
    overdue_at_import: bool


class ImportOut(BaseModel):
    """What an import did: every row became a case (or none did: a 422 lists every row's problems)."""

    import_id: int
    center_id: str
    rows: int
    overdue: int = Field(description="cases whose due date had already passed (overdue_at_import)")
    cases: list[ImportedOut]


class CenterSettingsIn(Body):
    compression_target: Literal[30, 50] = Field(
        description="% under the legal limit an item's promised limit must be (seeds: 30% or 50% faster)")


class CenterSettingsOut(BaseModel):
    center_id: str
    compression_target: int
    default: bool = Field(description="true: the centre set nothing, the deployment's default applies")
    updated_by: str | None
    updated_at: datetime | None
    reflagged: list[str] = Field(default_factory=list,
                                 description="PUT: the items whose meets_compression_target the change flipped")
