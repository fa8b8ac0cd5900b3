"""`/templates`: the Chinese defaults and their edits, validated on save, previewed against sample data, and
each rule switched on or off per centre."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import rules
from services.notify.models import CenterCopy, RuleSwitch
from services.notify.models import Template as TemplateRow
from services.notify.templating import samples, store
from services.notify.templating.defaults import DEFAULTS
from services.notify.templating.env import FILTERS
from services.notify.templating.validate import InvalidTemplate, channel_of, validate, variables
from shared import clock
from shared.auth import Principal, Role, require
from shared.db import SessionDep
from shared.errors import AppError, Conflict, NotFound

router = APIRouter(tags=["templates"])

Reader = Annotated[Principal, Depends(require(Role.CENTER_ADMIN, Role.SYSTEM_ADMIN, Role.SUPERVISOR,
                                              Role.HALL_MANAGER))]
Editor = Annotated[Principal, Depends(require(Role.SYSTEM_ADMIN))]  # templates are platform-wide
Switcher = Annotated[Principal, Depends(require(Role.CENTER_ADMIN, Role.SYSTEM_ADMIN))]
SMS_PART = 67  # characters of one part of a long SMS (70 for a single one)


def _key(key: Annotated[str, Path(max_length=64)]) -> str:
    if key not in DEFAULTS:
        raise NotFound(f"no template {key}", field="key")
    return key


Key = Annotated[str, Depends(_key)]


class TemplateSummary(BaseModel):
    key: str
    title: str
    event_type: str | None = Field(description="None for a generic_* template (a subscription's fallback)")
    audience: str | None
    channel: str
    edited: bool
    version: int = Field(description="0: the default; each save adds one")
    disabled_centers: list[str] = Field(description="the caller's centres that switched this rule off")


class TemplateOut(TemplateSummary):
    subject: str | None
    body: str
    default_subject: str | None
    default_body: str
    updated_at: datetime | None
    updated_by: str | None
    variables: list[str] = Field(description="what the template may use: dotted paths, `[]` marks a list")
    filters: list[str]


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(None, max_length=500, description="e-mail only; null for SMS and feeds")
    body: str = Field(min_length=1, max_length=20_000)


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(None, max_length=500, description="omitted: the saved (or default) subject")
    body: str | None = Field(None, min_length=1, max_length=20_000, description="omitted: the saved (or default)")
    data: dict[str, Any] | None = Field(None, description="the event's payload (and extras such as center_name); "
                                        "omitted: sample data")


class PreviewOut(BaseModel):
    subject: str | None
    body: str
    length: int
    sms_parts: int | None = Field(None, description="an SMS: the parts the provider sends it in")


class SwitchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


class SwitchOut(BaseModel):
    key: str
    center_id: str
    enabled: bool
    updated_at: datetime
    updated_by: str


def _summary(key: str, row: TemplateRow | None, disabled: list[str]) -> dict[str, Any]:
    rule = rules.BY_KEY.get(key)
    return {"key": key, "title": rule.title if rule else f"订阅通用模板（{channel_of(key)}）",
            "event_type": rule.event_type if rule else None, "audience": rule.audience if rule else None,
            "channel": channel_of(key), "edited": row is not None, "version": row.version if row else 0,
            "disabled_centers": disabled}


async def _disabled(session: AsyncSession, user: Principal, key: str | None = None) -> dict[str, list[str]]:
    query = select(RuleSwitch.key, RuleSwitch.center_id).where(RuleSwitch.enabled.is_(False))
    if key is not None:
        query = query.where(RuleSwitch.key == key)
    if not user.spans_all_centers:
        query = query.where(RuleSwitch.center_id.in_(user.centers))
    out: dict[str, list[str]] = {}
    for k, center in (await session.execute(query.order_by(RuleSwitch.center_id))).all():
        out.setdefault(k, []).append(center)
    return out


async def _out(session: AsyncSession, user: Principal, key: str) -> TemplateOut:
    row = await session.get(TemplateRow, key, populate_existing=True)
    default_subject, default_body = DEFAULTS[key]
    return TemplateOut(
        **_summary(key, row, (await _disabled(session, user, key)).get(key, [])),
        subject=row.subject if row else default_subject, body=row.body if row else default_body,
        default_subject=default_subject, default_body=default_body,
        updated_at=row.updated_at if row else None, updated_by=row.updated_by if row else None,
        variables=variables(key), filters=sorted(FILTERS))


@router.get("/templates", response_model=list[TemplateSummary])
async def list_templates(session: SessionDep, user: Reader) -> list[TemplateSummary]:
    """Every template: its rule, whether it is edited, its version and the centres that switched it off."""
    rows = {row.key: row for row in (await session.scalars(select(TemplateRow))).all()}
    disabled = await _disabled(session, user)
    return [TemplateSummary(**_summary(key, rows.get(key), disabled.get(key, []))) for key in DEFAULTS]


@router.get("/templates/{key}", response_model=TemplateOut)
async def get_template(key: Key, session: SessionDep, user: Reader) -> TemplateOut:
    """A template as it is sent, its default, and the variables it may use."""
    return await _out(session, user, key)


@router.put("/templates/{key}", response_model=TemplateOut,
            responses={422: {"description": "the template is refused: bad syntax, a variable the event does "
                             "not have, a sandbox escape, a subject where none belongs, an SMS too long"}})
async def save_template(key: Key, body: TemplateIn, session: SessionDep, user: Editor) -> TemplateOut:
    """Save an edit (checked against the event's payload model and the sandbox first); its version goes up."""
    subject, text = validate(key, body.subject, body.body)
    now = clock.now()
    insert_ = insert(TemplateRow).values(key=key, subject=subject, body=text, version=1, updated_at=now,
                                         updated_by=user.subject[:32])
    await session.execute(insert_.on_conflict_do_update(
        index_elements=[TemplateRow.key],
        set_={"subject": insert_.excluded.subject, "body": insert_.excluded.body,
              "version": TemplateRow.version + 1, "updated_at": now, "updated_by": insert_.excluded.updated_by}))
    store.invalidate(session)
    return await _out(session, user, key)


@router.delete("/templates/{key}", status_code=204)
async def reset_template(key: Key, session: SessionDep, user: Editor) -> Response:
    """Back to the default (an unedited template stays as it is)."""
    await session.execute(delete(TemplateRow).where(TemplateRow.key == key))
    store.invalidate(session)
    return Response(status_code=204)


@router.post("/templates/{key}/preview", response_model=PreviewOut)
async def preview_template(key: Key, body: PreviewIn, session: SessionDep, user: Reader) -> PreviewOut:
    """Render the given template (checked as on save) or the saved one, against `data` or sample data."""
    row = await session.get(TemplateRow, key)
    saved_subject, saved_body = (row.subject, row.body) if row else DEFAULTS[key]
    subject = body.subject if "subject" in body.model_fields_set else saved_subject
    text = body.body if body.body is not None else saved_body
    if "subject" in body.model_fields_set or body.body is not None:
        subject, text = validate(key, subject, text)
    context = samples.sample_context(key) if body.data is None else _data_context(key, body.data)
    try:
        rendered = store.render_source(subject, text, context)
    except Exception as exc:  # noqa: BLE001 - given data a template cannot render is the caller's 422
        raise InvalidTemplate(f"the template fails on this data: {type(exc).__name__}: {exc}",
                              field="data") from None
    sms = channel_of(key) == "sms"
    length = len(rendered.body)
    parts = (1 if length <= 70 else math.ceil(length / SMS_PART)) if sms else None
    return PreviewOut(subject=rendered.subject, body=rendered.body, length=length, sms_parts=parts)


def _data_context(key: str, data: dict[str, Any]) -> dict[str, Any]:
    """The context of a preview with given data: its extras taken out, the rest validated with the event's
    payload model (a generic template: the mapping as it is)."""
    wanted = samples.extras_of(key)
    extras = {**samples.sample_extras(key), **{k: v for k, v in data.items() if k in wanted}}
    payload = {k: v for k, v in data.items() if k not in wanted}
    model = samples.payload_model(key)
    if model is None:
        context = samples.sample_context(key)
        context.update(extras)
        context["data"] = store.as_data(payload)
        return context
    payload.setdefault("type", model.model_fields["type"].default)
    try:
        instance = model.model_validate(payload)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in ("data", *error["loc"]))
        raise AppError(f"{where}: {error['msg']}", field=where, status=422, code="validation_failed") from None
    for name, kind in wanted.items():
        if not isinstance(extras[name], kind):
            raise AppError(f"data.{name}: must be a {kind.__name__}", field=f"data.{name}", status=422,
                           code="validation_failed")
    return store.context_for(key, instance, **extras)


@router.put("/templates/{key}/centers/{center_id}", response_model=SwitchOut)
async def switch_rule(key: Key, center_id: Annotated[str, Path(max_length=32)], body: SwitchIn,
                      session: SessionDep, user: Switcher) -> SwitchOut:
    """Switch a default notification off (or back on) for a centre."""
    user.check_center(center_id)
    if key not in rules.BY_KEY:
        raise Conflict(f"{key} is a subscription's template, not a rule: remove the subscription instead",
                       field="key", code="not_a_rule")
    if await session.get(CenterCopy, center_id) is None:
        raise NotFound(f"centre {center_id} is not known here", field="center_id")
    now = clock.now()
    values = {"center_id": center_id, "key": key, "enabled": body.enabled, "updated_at": now,
              "updated_by": user.subject[:32]}
    insert_ = insert(RuleSwitch).values(**values)
    await session.execute(insert_.on_conflict_do_update(
        index_elements=[RuleSwitch.center_id, RuleSwitch.key],
        set_={"enabled": body.enabled, "updated_at": now, "updated_by": values["updated_by"]}))
    store.invalidate(session)
    return SwitchOut(**values)

