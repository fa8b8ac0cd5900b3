"""HTTP endpoints of joint cases (联办件): the lead case's sub-tasks, the departments' opinions, the joint review
meetings and the one bill of every department's fees."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from services.cases import registry
from services.cases.cases_router import READERS, ContextDep
from services.cases.joint import lead, service
from services.cases.joint.models import JointSubtask
from services.cases.joint.schemas import (
    BillOut,
    JointReviewIn,
    JointReviewOut,
    OpinionIn,
    SubtaskIn,
    SubtaskOut,
)
from services.cases.models import Case
from shared import clock
from shared.auth import Principal, Role, require
from shared.db import SessionDep
from shared.errors import NotFound

router = APIRouter(tags=["joint cases"])

Reader = Annotated[Principal, Depends(require(*READERS))]
Staff = Annotated[Principal, Depends(require(Role.CLERK, Role.CHIEF_REP))]
CaseNo = Annotated[str, Path(max_length=48)]
_REFUSED: dict[int | str, dict[str, str]] = {
    403: {"description": "another centre or department, or not the lead case's handler"},
    404: {"description": "no such case, sub-task, department or item"},
    409: {"description": "not a joint case, or not allowed in its state"}}


async def _case_to_read(case_no: CaseNo, user: Reader, session: SessionDep) -> Case:
    case = await session.get(Case, case_no)
    if case is None:
        raise NotFound(f"no case {case_no}", field="case_no")
    await service.check_reader(session, user, case)
    return case


async def _case_to_change(case_no: CaseNo, user: Staff, session: SessionDep) -> Case:
    return await registry.load_for_update(session, case_no)


CaseToRead = Annotated[Case, Depends(_case_to_read)]
CaseToChange = Annotated[Case, Depends(_case_to_change)]


def subtask_out(subtask: JointSubtask) -> SubtaskOut:
    return SubtaskOut.model_validate({**{c: getattr(subtask, c) for c in SubtaskOut.model_fields if c != "due_date"},
                                      "due_date": clock.local_date(subtask.due_at)})


@router.post("/cases/{case_no}/subtasks", status_code=201, response_model=SubtaskOut, responses=_REFUSED)
async def dispatch_subtask(body: SubtaskIn, user: Staff, case: CaseToChange, session: SessionDep,
                           ctx: ContextDep) -> SubtaskOut:
    """Send a department its part of the joint case (联办 分送), with its own limit from today."""
    return subtask_out(await service.dispatch(session, ctx, user, case, body))


@router.get("/cases/{case_no}/subtasks", response_model=list[SubtaskOut], responses=_REFUSED)
async def list_subtasks(case: CaseToRead, session: SessionDep) -> list[SubtaskOut]:
    """The joint case's sub-tasks, in dispatch order, with their due dates and opinions."""
    return [subtask_out(s) for s in await lead.subtasks_of(session, case.case_no)]


@router.post("/cases/{case_no}/subtasks/{subtask_id}/opinion", response_model=SubtaskOut, responses=_REFUSED)
async def give_opinion(body: OpinionIn, user: Staff, case: CaseToChange, session: SessionDep,
                       subtask_id: Annotated[int, Path(ge=1)]) -> SubtaskOut:
    """The department's opinion on its sub-task (会签意见: agree or disagree), by its clerk or chief rep."""
    return subtask_out(await service.answer(session, user, case, subtask_id, body))


@router.post("/cases/{case_no}/joint-reviews", status_code=201, response_model=JointReviewOut, responses=_REFUSED)
async def record_joint_review(body: JointReviewIn, user: Staff, case: CaseToChange,
                              session: SessionDep) -> JointReviewOut:
    """Record a joint review meeting (联合审查); an invited department absent is deemed to consent (缺席默认)."""
    review, deemed = await service.record_review(session, user, case, body)
    return JointReviewOut(id=review.id, case_no=review.case_no, held_at=review.held_at, invited=review.invited,
                          attended=review.attended, absent=review.absent, recorded_by=review.recorded_by,
                          deemed_consented=[s.id for s in deemed])


@router.get("/cases/{case_no}/bill", response_model=BillOut, responses=_REFUSED)
async def case_bill(case: CaseToRead, session: SessionDep) -> BillOut:
    """Every department's fees on one bill (一单收费), with the total of the plain amounts."""
    return await service.bill(session, case)
