"""HTTP endpoints of the registers beside cases: one-time notices (一次性告知书), the inquiry register (首问),
agency (全程代办) and the public board (办件公示)."""

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from services.cases.cases_router import READERS, CaseToRead
from services.cases.registers import agency, board, inquiries, notices, schemas
from services.cases.registers.models import CaseAgency, Inquiry, Notice
from shared import clock
from shared.auth import Principal, Role, require
from shared.db import SessionDep
from shared.errors import NotFound

router = APIRouter(tags=["registers"])

CenterQuery = Annotated[str, Query(min_length=2, max_length=32, pattern=r"^[A-Za-z0-9]+$")]
Reader = Annotated[Principal, Depends(require(*READERS))]
WindowStaff = Annotated[Principal, Depends(require(Role.CLERK, Role.CHIEF_REP))]
#: whoever the public asks first in the hall (首问): a clerk, a chief representative, the hall manager
FloorStaff = Annotated[Principal, Depends(require(Role.CLERK, Role.CHIEF_REP, Role.HALL_MANAGER))]
PAGE = 50


# one-time notices (一次性告知书)

@router.post("/notices/incomplete", status_code=201, response_model=schemas.NoticeOut,
             responses={404: {"description": "no such item"}, 403: {"description": "another centre or department"}})
async def issue_notice(body: schemas.NoticeIn, user: WindowStaff, session: SessionDep,
                       request: Request) -> Notice:
    """Issue a one-time notice of everything missing (一次性告知书): numbered; no case, no clock."""
    return await notices.issue(session, request.app.state.pii, user, body)


@router.get("/notices", response_model=list[schemas.NoticeOut])
async def list_notices(session: SessionDep, user: Reader, center: CenterQuery,
                       day: Annotated[date | None, Query(alias="date", description="the local issue date; default "
                                                                              "today")] = None) -> list[Notice]:
    """A centre's notices of one local day, in number order, the applicant masked."""
    user.check_center(center)
    day = day or clock.local_date(clock.now())
    return list((await session.scalars(select(Notice).where(Notice.center_id == center, Notice.issued_on == day)
                                       .order_by(Notice.notice_no))).all())


@router.get("/notices/{notice_no}", response_model=schemas.NoticeOut, responses={404: {"description": "no such notice"}})
async def get_notice(notice_no: str, session: SessionDep, user: Reader) -> Notice:
    """One notice, the applicant masked."""
    notice = await session.get(Notice, notice_no)
    if notice is None:
        raise NotFound(f"no notice {notice_no}", field="notice_no")
    user.check_center(notice.center_id)
    return notice


# the inquiry register (首问负责制)

@router.post("/inquiries", status_code=201, response_model=schemas.InquiryOut)
async def register_inquiry(body: schemas.InquiryIn, user: FloorStaff, session: SessionDep,
                           request: Request) -> Inquiry:
    """Register an inquiry as the person first asked: answered, referred to a window, or a reply promised."""
    return await inquiries.register(session, request.app.state.pii, user, body)


@router.get("/inquiries", response_model=schemas.InquiryPage)
async def list_inquiries(session: SessionDep, user: Reader, center: CenterQuery,
                         status: Annotated[str | None, Query(pattern=r"^(answered|referred|pending)$")] = None,
                         since: Annotated[datetime | None, Query(description="registered at or after")] = None,
                         after: Annotated[int | None, Query(ge=1, description="the last id seen")] = None,
                         limit: Annotated[int, Query(ge=1, le=200)] = PAGE) -> schemas.InquiryPage:
    """A centre's inquiries in registration order, a page at a time (keyset: pass the last id as ?after=)."""
    user.check_center(center)
    query = select(Inquiry).where(Inquiry.center_id == center)
    if status is not None:
        query = query.where(Inquiry.status == status)
    if since is not None:
        query = query.where(Inquiry.registered_at >= since)
    if after is not None:
        query = query.where(Inquiry.id > after)
    found = (await session.scalars(query.order_by(Inquiry.id).limit(limit + 1))).all()
    page = [schemas.InquiryOut.model_validate(i) for i in found[:limit]]
    return schemas.InquiryPage(items=page, next_after=page[-1].id if len(found) > limit else None)


@router.post("/inquiries/{inquiry_id}/answer", response_model=schemas.InquiryOut,
             responses={409: {"description": "not pending"}, 403: {"description": "not the taker"}})
async def answer_inquiry(inquiry_id: int, body: schemas.InquiryAnswer, user: FloorStaff,
                         session: SessionDep) -> Inquiry:
    """Answer a pending inquiry (the taker, a chief representative or the hall manager): on time or late."""
    return await inquiries.answer(session, user, inquiry_id, body)


# agency (全程代办)

@router.get("/cases/{case_no}/agency", response_model=schemas.AgencyOut,
            responses={404: {"description": "no such case, or not accepted for agency"}})
async def case_agency(case: CaseToRead, session: SessionDep) -> CaseAgency:
    """The mandate (委托), the agent and the hand-back of a case accepted for agency."""
    return await agency.of_case(session, case)


@router.post("/cases/{case_no}/hand-back", response_model=schemas.AgencyOut,
             responses={409: {"description": "not completed, or handed back already"},
                        403: {"description": "not the agent nor the chief representative"}})
async def hand_back(case_no: str, body: schemas.HandBack, user: WindowStaff, session: SessionDep) -> CaseAgency:
    """The agent hands the result back to the applicant and the fees are settled (全程代办)."""
    return await agency.hand_back(session, user, case_no, body)


# the public board (办件公示)

# tokenless; the gateway rate-limits /api/cases/public/ as it does the case lookup
@router.get("/public/board", response_model=schemas.Board, tags=["public"])
async def public_board(center: CenterQuery, session: SessionDep,
                       limit: Annotated[int, Query(ge=1, le=50)] = 20) -> schemas.Board:
    """Recent case progress of a centre for the hall's screens: the applicant's name masked, nothing else."""
    return await board.board(session, center, limit)
