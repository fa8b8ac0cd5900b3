"""HTTP endpoints of electronic supervision (电子监察): alerts, findings, sanctions and the centre's settings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from services.monitor import alerts, ladder, schemas
from services.monitor.documents import sanction_document
from services.monitor.models import (
    Alert,
    CenterCopy,
    Finding,
    FindingAttachment,
    Sanction,
    SupervisionSettings,
)
from shared import clock
from shared.auth import Principal, Role, require
from shared.db import SessionDep
from shared.documents.render import render
from shared.errors import AppError, NotFound

router = APIRouter(tags=["supervision"])

PAGE = 50
Center = Annotated[str, Query(pattern=schemas.CENTER)]
AlertReader = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.HALL_MANAGER, Role.CENTER_ADMIN,
                                                   Role.SYSTEM_ADMIN))]
AlertActor = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.HALL_MANAGER))]
Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR))]
Reader = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.CENTER_ADMIN, Role.SYSTEM_ADMIN))]
Admin = Annotated[Principal, Depends(require(Role.CENTER_ADMIN, Role.SYSTEM_ADMIN))]
ATTACHMENT_TYPES = {"image/jpeg", "image/png", "application/pdf"}
ATTACHMENT_MAX = 5 * 1024 * 1024


def _check_alert(user: Principal, alert: Alert) -> None:
    if alert.center_id is not None:  # a system alert (a calendar year missing) concerns every centre
        user.check_center(alert.center_id)


# --- alerts ------------------------------------------------------------------------------------------------

@router.get("/alerts", response_model=schemas.AlertPage)
async def list_alerts(session: SessionDep, user: AlertReader, center: Center,
                      kind: Annotated[str | None, Query(max_length=32)] = None,
                      level: Annotated[str | None, Query(max_length=8)] = None,
                      status: Annotated[str | None, Query(max_length=16)] = None,
                      since: Annotated[datetime | None, Query(description="raised at or after")] = None,
                      after: Annotated[int | None, Query(ge=0, description="the last alert id seen")] = None,
                      limit: Annotated[int, Query(ge=1, le=200)] = PAGE) -> schemas.AlertPage:
    """The centre's alerts (and the system's), oldest first, a page at a time (?after= the last id). A
    supervision board that saw `feed.gap` on the live feed reloads from here with ?since=."""
    user.check_center(center)
    query = select(Alert).where(or_(Alert.center_id == center, Alert.center_id.is_(None)))
    for column, value in ((Alert.kind, kind), (Alert.level, level), (Alert.status, status)):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(Alert.raised_at >= since)
    if after is not None:
        query = query.where(Alert.id > after)
    rows = (await session.scalars(query.order_by(Alert.id).limit(limit + 1))).all()
    items = [schemas.AlertOut.model_validate(a) for a in rows[:limit]]
    return schemas.AlertPage(items=items, next_after=items[-1].id if len(rows) > limit else None)


@router.get("/alerts/{alert_id}", response_model=schemas.AlertOut)
async def get_alert(alert_id: int, session: SessionDep, user: AlertReader) -> Alert:
    alert = await alerts.get(session, alert_id)
    _check_alert(user, alert)
    return alert


@router.post("/alerts/{alert_id}/acknowledge", response_model=schemas.AlertOut)
async def acknowledge_alert(alert_id: int, body: schemas.Note, session: SessionDep, user: AlertActor) -> Alert:
    """The alert was seen and is being handled (已签收)."""
    alert = await alerts.get(session, alert_id, for_update=True)
    _check_alert(user, alert)
    return await alerts.acknowledge(session, alert, user, body.note)


@router.post("/alerts/{alert_id}/resolve", response_model=schemas.AlertOut)
async def resolve_alert(alert_id: int, body: schemas.RequiredNote, session: SessionDep, user: Supervisor) -> Alert:
    """Resolved, with what was done (a note is required)."""
    alert = await alerts.get(session, alert_id, for_update=True)
    _check_alert(user, alert)
    return await alerts.resolve(session, alert, user.subject, body.note)


# --- findings ----------------------------------------------------------------------------------------------

async def _finding_out(session: AsyncSession, finding: Finding) -> schemas.FindingOut:
    files = (await session.scalars(select(FindingAttachment).where(FindingAttachment.finding_id == finding.id)
                                   .order_by(FindingAttachment.id))).all()
    out = schemas.FindingOut.model_validate(finding)
    out.attachments = [schemas.AttachmentOut.model_validate(f) for f in files]
    return out


@router.get("/findings", response_model=schemas.FindingPage)
async def list_findings(session: SessionDep, user: Reader, center: Center,
                        status: Annotated[str | None, Query(max_length=10)] = None,
                        department: Annotated[str | None, Query(max_length=32)] = None,
                        source: Annotated[str | None, Query(max_length=16)] = None,
                        year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
                        after: Annotated[int | None, Query(ge=0)] = None,
                        limit: Annotated[int, Query(ge=1, le=200)] = PAGE) -> schemas.FindingPage:
    user.check_center(center)
    query = select(Finding).where(Finding.center_id == center)
    for column, value in ((Finding.status, status), (Finding.department, department), (Finding.source, source),
                          (Finding.year, year)):
        if value is not None:
            query = query.where(column == value)
    if after is not None:
        query = query.where(Finding.id > after)
    rows = (await session.scalars(query.order_by(Finding.id).limit(limit + 1))).all()
    items = [await _finding_out(session, f) for f in rows[:limit]]
    return schemas.FindingPage(items=items, next_after=items[-1].id if len(rows) > limit else None)


@router.post("/findings", status_code=201, response_model=schemas.FindingOut)
async def record_finding(body: schemas.FindingIn, session: SessionDep, user: Supervisor) -> schemas.FindingOut:
    """A finding recorded by hand (现场抽查, discipline, media exposure) against a department or a window."""
    user.check_center(body.center)
    finding = await ladder.record(session, user, center_id=body.center, source=body.source,
                                  department=body.department, window=body.window, occurred_at=body.occurred_at,
                                  text_=body.text, case_no=body.case_no)
    return await _finding_out(session, finding)


async def _finding(session: AsyncSession, user: Principal, finding_id: int, *, for_update: bool = False) -> Finding:
    finding = await ladder.get_finding(session, finding_id, for_update=for_update)
    user.check_center(finding.center_id)
    return finding


@router.get("/findings/{finding_id}", response_model=schemas.FindingOut)
async def get_finding(finding_id: int, session: SessionDep, user: Reader) -> schemas.FindingOut:
    return await _finding_out(session, await _finding(session, user, finding_id))


@router.post("/findings/{finding_id}/confirm", response_model=schemas.FindingOut)
async def confirm_finding(finding_id: int, body: schemas.OptionalReason, session: SessionDep,
                          user: Supervisor) -> schemas.FindingOut:
    """经查实: confirmed; the department's ladder of the year gives its sanction (警告 first, then 通报批评)."""
    finding = await _finding(session, user, finding_id, for_update=True)
    return await _finding_out(session, await ladder.confirm(session, finding, user.subject, body.reason))


@router.post("/findings/{finding_id}/excuse", response_model=schemas.FindingOut)
async def excuse_finding(finding_id: int, body: schemas.Reason, session: SessionDep,
                         user: Supervisor) -> schemas.FindingOut:
    """免责 with a reason; a confirmed finding's sanction is revoked and the ladder after it moves up."""
    finding = await _finding(session, user, finding_id, for_update=True)
    return await _finding_out(session, await ladder.excuse(session, finding, user.subject, body.reason))


@router.post("/findings/{finding_id}/attachments", status_code=201, response_model=schemas.AttachmentOut)
async def attach(finding_id: int, request: Request, session: SessionDep, user: Supervisor,
                 name: Annotated[str, Query(min_length=1, max_length=200)]) -> FindingAttachment:
    """Evidence: the raw body (JPEG, PNG or PDF, up to 5 MiB), named by ?name=."""
    finding = await _finding(session, user, finding_id)
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type not in ATTACHMENT_TYPES:
        raise AppError(status=415, detail=f"an attachment is one of {', '.join(sorted(ATTACHMENT_TYPES))}, not {content_type!r}",
                       field="content-type", code="unsupported_media_type")
    data = await request.body()
    if len(data) > ATTACHMENT_MAX:
        raise AppError(status=413, detail=f"an attachment is at most {ATTACHMENT_MAX} bytes", field="body", code="too_large")
    if not data:
        raise AppError(status=422, detail="the attachment is empty", field="body", code="empty")
    attachment = FindingAttachment(finding_id=finding.id, name=name, content_type=content_type, size=len(data),
                                   data=data)
    session.add(attachment)
    await session.flush()
    return attachment


@router.get("/findings/{finding_id}/attachments/{attachment_id}")
async def get_attachment(finding_id: int, attachment_id: int, session: SessionDep, user: Reader) -> Response:
    finding = await _finding(session, user, finding_id)
    attachment = await session.get(FindingAttachment, attachment_id)
    if attachment is None or attachment.finding_id != finding.id:
        raise NotFound(f"no attachment {attachment_id} of finding {finding_id}", field="attachment_id")
    return Response(attachment.data, media_type=attachment.content_type,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{attachment.id}"})


# --- sanctions ---------------------------------------------------------------------------------------------

async def _sanction_out(session: AsyncSession, sanction: Sanction) -> schemas.SanctionOut:
    finding = await ladder.get_finding(session, sanction.finding_id)
    out = schemas.SanctionOut.model_validate(sanction)
    out.case_no, out.item_name, out.handler_name, out.overdue_days = (
        finding.case_no, finding.item_name, finding.handler_name, finding.overdue_days)
    return out


@router.get("/sanctions", response_model=schemas.SanctionPage)
async def list_sanctions(session: SessionDep, user: Reader, center: Center,
                         department: Annotated[str | None, Query(max_length=32)] = None,
                         year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
                         status: Annotated[str | None, Query(max_length=10)] = None,
                         after: Annotated[int | None, Query(ge=0)] = None,
                         limit: Annotated[int, Query(ge=1, le=200)] = PAGE) -> schemas.SanctionPage:
    """警告 and 通报批评 with their notice text, department, case, item, handler, overdue days, rectification due."""
    user.check_center(center)
    query = select(Sanction).where(Sanction.center_id == center)
    for column, value in ((Sanction.department, department), (Sanction.year, year), (Sanction.status, status)):
        if value is not None:
            query = query.where(column == value)
    if after is not None:
        query = query.where(Sanction.id > after)
    rows = (await session.scalars(query.order_by(Sanction.id).limit(limit + 1))).all()
    items = [await _sanction_out(session, s) for s in rows[:limit]]
    return schemas.SanctionPage(items=items, next_after=items[-1].id if len(rows) > limit else None)


async def _sanction(session: AsyncSession, user: Principal, sanction_id: int, *,
                    for_update: bool = False) -> Sanction:
    sanction = await ladder.get_sanction(session, sanction_id, for_update=for_update)
    user.check_center(sanction.center_id)
    return sanction


@router.get("/sanctions/{sanction_id}.pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})
async def sanction_pdf(sanction_id: int, session: SessionDep, user: Reader) -> Response:
    """The notice as an A4 PDF (the shared document renderer; Chinese glyphs embedded)."""
    sanction = await _sanction(session, user, sanction_id)
    centre = await session.get(CenterCopy, sanction.center_id)
    body = await run_in_threadpool(render, sanction_document(sanction, centre.name if centre else sanction.center_id))
    name = quote(f"{sanction.notice_no}.pdf")
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": f"inline; filename*=UTF-8''{name}", "Cache-Control": "no-store"})


@router.get("/sanctions/{sanction_id}", response_model=schemas.SanctionOut)
async def get_sanction(sanction_id: int, session: SessionDep, user: Reader) -> schemas.SanctionOut:
    return await _sanction_out(session, await _sanction(session, user, sanction_id))


@router.post("/sanctions/{sanction_id}/rectified", response_model=schemas.SanctionOut)
async def sanction_rectified(sanction_id: int, body: schemas.RequiredNote, session: SessionDep,
                             user: Supervisor) -> schemas.SanctionOut:
    """The department's rectification (整改) was received."""
    sanction = await _sanction(session, user, sanction_id, for_update=True)
    return await _sanction_out(session, await ladder.rectified(session, sanction, user, body.note))


@router.post("/sanctions/{sanction_id}/revoke", response_model=schemas.SanctionOut)
async def revoke_sanction(sanction_id: int, body: schemas.Reason, session: SessionDep,
                          user: Supervisor) -> schemas.SanctionOut:
    """Revoked with a reason: it no longer counts, and a later sanction that changes level is reissued."""
    sanction = await _sanction(session, user, sanction_id, for_update=True)
    return await _sanction_out(session, await ladder.revoke(session, sanction, user, body.reason))


# --- settings ----------------------------------------------------------------------------------------------

def _settings_out(center_id: str, row: SupervisionSettings | None) -> schemas.SupervisionSettingsOut:
    if row is None:
        return schemas.SupervisionSettingsOut(center_id=center_id, verification="manual",
                                              rectification_days=ladder.DEFAULT_RECTIFICATION_DAYS,
                                              updated_at=None, updated_by=None)
    return schemas.SupervisionSettingsOut(center_id=center_id, verification=row.verification,
                                          rectification_days=row.rectification_days, updated_at=row.updated_at,
                                          updated_by=row.updated_by)


@router.get("/centers/{center_id}/settings", response_model=schemas.SupervisionSettingsOut)
async def get_settings(center_id: str, session: SessionDep, user: Reader) -> schemas.SupervisionSettingsOut:
    user.check_center(center_id)
    return _settings_out(center_id, await session.get(SupervisionSettings, center_id))


@router.put("/centers/{center_id}/settings", response_model=schemas.SupervisionSettingsOut)
async def put_settings(center_id: str, body: schemas.SupervisionSettingsIn, session: SessionDep,
                       user: Admin) -> schemas.SupervisionSettingsOut:
    """Verification (manual, or auto: 对超时办结直接生成问责) and the rectification days; applies to findings
    and sanctions from now on."""
    user.check_center(center_id)
    row = await session.get(SupervisionSettings, center_id, with_for_update=True)
    values: dict[str, Any] = {"verification": body.verification, "rectification_days": body.rectification_days,
                              "updated_at": clock.now(), "updated_by": user.subject}
    if row is None:
        row = SupervisionSettings(center_id=center_id, **values)
        session.add(row)
    else:
        for name, value in values.items():
            setattr(row, name, value)
    await session.flush()
    return _settings_out(center_id, row)
