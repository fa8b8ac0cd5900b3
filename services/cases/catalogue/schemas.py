"""Request and response models of departments (窗口单位), the item catalogue (事项目录) and the public guide
(办事指南). The head's contacts come in clear and go out masked only; the public guide shows no person."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events.catalog import ItemKind, Material, ProcedureStep, ServiceObject, StageLimit

CENTER = r"^[A-Za-z0-9]{2,32}$"
CODE = r"^[A-Za-z0-9_.-]{1,32}$"
LIMIT_DAYS = 3650  # ten years of working days: far beyond any legal limit, short of an overflow
Condition = Annotated[str, Field(min_length=1, max_length=1000)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# departments (窗口单位)

class DepartmentIn(Body):
    """A department stationed in a centre: its head (负责人) and chief representative (首席代表)."""

    center_id: str = Field(pattern=CENTER, examples=["320102"])
    code: str = Field(pattern=CODE, examples=["D01"])
    name: str = Field(min_length=1, max_length=100, examples=["区市场监督管理局"])
    head_name: str | None = Field(None, min_length=1, max_length=100)
    head_phone: str | None = Field(None, max_length=20, description="mainland mobile; stored masked + encrypted")
    head_email: str | None = Field(None, max_length=120, description="stored masked + encrypted")
    chief_rep: str | None = Field(None, min_length=1, max_length=32,
                                  description="the identity user id of the chief representative")


class DepartmentPatch(Body):
    """Fields to change; the others stay. `null` clears an optional field (name and active cannot be null)."""

    name: str | None = Field(None, min_length=1, max_length=100)
    head_name: str | None = Field(None, min_length=1, max_length=100)
    head_phone: str | None = Field(None, max_length=20)
    head_email: str | None = Field(None, max_length=120)
    chief_rep: str | None = Field(None, min_length=1, max_length=32)
    active: bool | None = None


class DepartmentOut(BaseModel):
    """A department as staff see it: the head's contacts masked (the clear values are never sent back)."""

    model_config = ConfigDict(from_attributes=True)

    center_id: str
    code: str
    name: str
    head_name: str | None
    head_phone_masked: str | None
    head_email_masked: str | None
    chief_rep: str | None
    active: bool
    created_at: datetime
    updated_at: datetime


# the item catalogue (事项目录)

class ItemIn(Body):
    """An item of a centre's catalogue. Limits are working days; the promised limit is at most the legal one
    (an immediate item 即办件 has promised 0), and the stages' limits add up to at most the promised one."""

    center_id: str = Field(pattern=CENTER, examples=["320102"])
    code: str = Field(pattern=CODE, examples=["SC-001"])
    name: str = Field(min_length=1, max_length=200, examples=["食品经营许可"])
    department: str = Field(pattern=CODE, description="the department (窗口单位) that handles it")
    kind: ItemKind
    legal_limit_days: int = Field(ge=0, le=LIMIT_DAYS, description="法定时限, working days")
    promised_limit_days: int | None = Field(None, ge=0, le=LIMIT_DAYS,
                                            description="承诺时限, working days, <= legal; omitted: 0 for immediate")
    stages: list[StageLimit] = Field(default_factory=list, max_length=20,
                                     description="empty: one stage (办理) with the promised limit")
    warn_days: int = Field(1, ge=0, le=LIMIT_DAYS, description="early warning lead W (预警)")
    max_extension_days: int = Field(10, ge=0, le=LIMIT_DAYS, description="延期: at most this many days, once")
    forward_followup_days: int = Field(20, ge=1, le=LIMIT_DAYS, description="上报件: follow-up reminder after")
    special_limit_days: int = Field(10, ge=1, le=LIMIT_DAYS, description="特别程序: alert after this long")
    materials: list[Material] = Field(default_factory=list, max_length=100)
    fees: str | None = Field(None, max_length=2000, examples=["不收费"])
    legal_basis: str | None = Field(None, max_length=4000)
    conditions: list[Condition] = Field(default_factory=list, max_length=50, description="申请条件, one per entry")
    procedure: list[ProcedureStep] = Field(default_factory=list, max_length=30, description="办理流程, in order")
    fee_basis: str | None = Field(None, max_length=4000, description="收费依据 (the fee's legal basis)")
    service_objects: list[ServiceObject] = Field(default_factory=list, max_length=7,
                                                 description="服务对象: whom the item serves")
    active: bool = True


class ItemPatch(Body):
    """Fields to change; the others stay (centre and code never change). Accepted cases keep the limits they
    were accepted with: a change applies to cases accepted after it."""

    name: str | None = Field(None, min_length=1, max_length=200)
    department: str | None = Field(None, pattern=CODE)
    kind: ItemKind | None = None
    legal_limit_days: int | None = Field(None, ge=0, le=LIMIT_DAYS)
    promised_limit_days: int | None = Field(None, ge=0, le=LIMIT_DAYS)
    stages: list[StageLimit] | None = Field(None, max_length=20)
    warn_days: int | None = Field(None, ge=0, le=LIMIT_DAYS)
    max_extension_days: int | None = Field(None, ge=0, le=LIMIT_DAYS)
    forward_followup_days: int | None = Field(None, ge=1, le=LIMIT_DAYS)
    special_limit_days: int | None = Field(None, ge=1, le=LIMIT_DAYS)
    materials: list[Material] | None = Field(None, max_length=100)
    fees: str | None = Field(None, max_length=2000)
    legal_basis: str | None = Field(None, max_length=4000)
    conditions: list[Condition] | None = Field(None, max_length=50)
    procedure: list[ProcedureStep] | None = Field(None, max_length=30)
    fee_basis: str | None = Field(None, max_length=4000)
    service_objects: list[ServiceObject] | None = Field(None, max_length=7)
    active: bool | None = None


class ItemFileRef(BaseModel):
    """A downloadable file of the guide: GET /public/items/{center_id}/{code}/files/{name} serves it."""

    name: str
    kind: Literal["form", "sample"] = Field(description="form: the blank 申请表; sample: a filled-in 示范文本")
    content_type: str
    size: int
    sha256: str
    uploaded_at: datetime


class ItemOut(BaseModel):
    center_id: str
    code: str
    name: str
    department: str
    kind: ItemKind
    legal_limit_days: int
    promised_limit_days: int
    stages: list[StageLimit]
    warn_days: int
    max_extension_days: int
    forward_followup_days: int
    special_limit_days: int
    materials: list[Material]
    fees: str | None
    legal_basis: str | None
    conditions: list[str]
    procedure: list[ProcedureStep]
    fee_basis: str | None
    service_objects: list[ServiceObject]
    files: list[ItemFileRef]
    active: bool
    speedup_percent: float | None = Field(description="提速率: (legal - promised) / legal, in %; none if legal is 0")
    compression_target_percent: int = Field(
        description="the centre's compression target (PUT /centers/{center}/settings; default "
                    "CASES_COMPRESSION_TARGET_PERCENT)")
    meets_compression_target: bool = Field(description="promised <= legal x (1 - compression_target_percent / 100)")
    created_at: datetime
    updated_at: datetime


# the public guide (办事指南)

class PublicItemOut(BaseModel):
    """An item as the public guide shows it, with the due date of a case accepted today."""

    center_id: str
    code: str
    name: str
    department: str
    department_name: str
    kind: ItemKind
    legal_limit_days: int
    promised_limit_days: int
    stages: list[StageLimit]
    materials: list[Material]
    fees: str | None
    legal_basis: str | None
    conditions: list[str]
    procedure: list[ProcedureStep]
    fee_basis: str | None
    service_objects: list[ServiceObject]
    files: list[ItemFileRef]
    speedup_percent: float | None = Field(description="提速率: how much faster than the legal limit, in %")
    today: date = Field(description="today's business date (Asia/Shanghai), the acceptance day (not counted)")
    due_date_if_accepted_today: date = Field(description="the last working day of the promised limit")
    due_at_if_accepted_today: datetime = Field(description="its end, 23:59:59 local, in UTC")
    fallback_years: list[int] = Field(
        description="years counted Monday to Friday because their official schedule is not published yet: "
                    "the date may still move")
