"""HTTP endpoints of complaints (投诉, 三个一) and bad-rating follow-ups (差评回访)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from services.monitor.complaints import followups, register
from services.monitor.complaints import schemas as s
from services.monitor.complaints.models import Complaint, Followup
from services.monitor.schemas import CENTER
from shared.auth import Principal, Role, require
from shared.db import SessionDep

router = APIRouter(tags=["supervision"])

PAGE = 50
Center = Annotated[str, Query(pattern=CENTER)]
After = Annotated[int | None, Query(ge=0, description="the last id seen")]
Limit = Annotated[int, Query(ge=1, le=200)]
Staff = Annotated[Principal, Depends(require(Role.HALL_MANAGER, Role.SUPERVISOR, Role.CLERK, Role.CHIEF_REP,
                                             Role.CENTER_ADMIN, Role.SYSTEM_ADMIN))]
Reader = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.HALL_MANAGER, Role.CENTER_ADMIN,
                                              Role.SYSTEM_ADMIN))]
Handler = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.HALL_MANAGER))]
Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR))]


# --- complaints --------------------------------------------------------------------------------------------

@router.post("/complaints", status_code=201, response_model=s.ComplaintOut)
async def record_complaint(body: s.ComplaintIn, request: Request, session: SessionDep, user: Staff) -> Complaint:
    """A complaint taken by staff (phone, letter box, in person), numbered and acknowledged at once."""
    user.check_center(body.center)
    complaint, _ = await register.receive(
        session, request.app.state.pii, center_id=body.center, channel=body.channel, category=body.category,
        severity=body.severity, subject=body.subject, text_=body.text, contact=body.contact, by=user)
    return complaint


@router.post("/public/complaints", status_code=201, response_model=s.PublicReceipt)
async def public_complaint(body: s.PublicComplaintIn, request: Request, session: SessionDep) -> s.PublicReceipt:
    """A complaint from the public page (no token; rate-limited at the gateway): its number and receipt."""
    complaint, acknowledgement = await register.receive(
        session, request.app.state.pii, center_id=body.center, channel="public", category=body.category,
        severity="general", subject=body.subject, text_=body.text, contact=body.contact, by=None)
    return s.PublicReceipt(number=complaint.number, received_at=complaint.received_at, due_at=complaint.due_at,
                           acknowledgement=acknowledgement)


@router.get("/complaints", response_model=s.ComplaintPage)
async def list_complaints(session: SessionDep, user: Reader, center: Center,
                          status: Annotated[str | None, Query(pattern="^(open|resolved|upheld|dismissed)$")] = None,
                          severity: Annotated[str | None, Query(pattern="^(simple|general|major)$")] = None,
                          after: After = None, limit: Limit = PAGE) -> s.ComplaintPage:
    """The centre's complaints, oldest first, a page at a time (?after= the last id); contacts masked."""
    user.check_center(center)
    query = select(Complaint).where(Complaint.center_id == center)
    if status is not None:
        query = query.where(Complaint.status == status)
    if severity is not None:
        query = query.where(Complaint.severity == severity)
    if after is not None:
        query = query.where(Complaint.id > after)
    rows = (await session.scalars(query.order_by(Complaint.id).limit(limit + 1))).all()
    items = [s.ComplaintOut.model_validate(c) for c in rows[:limit]]
    return s.ComplaintPage(items=items, next_after=items[-1].id if len(rows) > limit else None)


async def _complaint(session: SessionDep, user: Principal, complaint_id: int, *, for_update: bool = False) -> Complaint:
    complaint = await register.get(session, complaint_id, for_update=for_update)
    user.check_center(complaint.center_id)
    return complaint


@router.get("/complaints/{complaint_id}", response_model=s.ComplaintOut)
async def get_complaint(complaint_id: int, session: SessionDep, user: Reader) -> Complaint:
    return await _complaint(session, user, complaint_id)


@router.post("/complaints/{complaint_id}/resolve", response_model=s.ComplaintOut)
async def resolve_complaint(complaint_id: int, body: s.Outcome, session: SessionDep, user: Handler) -> Complaint:
    """Handled (已处理), with what was done: the complainant is told."""
    complaint = await _complaint(session, user, complaint_id, for_update=True)
    return await register.close(session, complaint, "resolve", user, body.outcome)


@router.post("/complaints/{complaint_id}/uphold", response_model=s.ComplaintOut)
async def uphold_complaint(complaint_id: int, body: s.Outcome, session: SessionDep, user: Supervisor) -> Complaint:
    """经查属实: the window or department was at fault (it counts in the window score)."""
    complaint = await _complaint(session, user, complaint_id, for_update=True)
    return await register.close(session, complaint, "uphold", user, body.outcome)


@router.post("/complaints/{complaint_id}/dismiss", response_model=s.ComplaintOut)
async def dismiss_complaint(complaint_id: int, body: s.Outcome, session: SessionDep, user: Supervisor) -> Complaint:
    """经查不属实, with the reason the complainant is told."""
    complaint = await _complaint(session, user, complaint_id, for_update=True)
    return await register.close(session, complaint, "dismiss", user, body.outcome)


# --- follow-ups of bad ratings -----------------------------------------------------------------------------

@router.get("/followups", response_model=s.FollowupPage)
async def list_followups(session: SessionDep, user: Reader, center: Center,
                         status: Annotated[str | None, Query(pattern="^(open|done)$")] = None,
                         after: After = None, limit: Limit = PAGE) -> s.FollowupPage:
    """The centre's follow-ups of bad ratings (差评回访), oldest first, a page at a time."""
    user.check_center(center)
    query = select(Followup).where(Followup.center_id == center)
    if status is not None:
        query = query.where(Followup.status == status)
    if after is not None:
        query = query.where(Followup.id > after)
    rows = (await session.scalars(query.order_by(Followup.id).limit(limit + 1))).all()
    items = [s.FollowupOut.model_validate(f) for f in rows[:limit]]
    return s.FollowupPage(items=items, next_after=items[-1].id if len(rows) > limit else None)


@router.post("/followups/{followup_id}/done", response_model=s.FollowupOut)
async def followup_done(followup_id: int, body: s.DoneNote, session: SessionDep, user: Handler) -> Followup:
    """回访 done, with what it found: the system resolves its alerts with the note."""
    followup = await followups.get(session, followup_id, for_update=True)
    user.check_center(followup.center_id)
    return await followups.done(session, followup, user, body.note)
