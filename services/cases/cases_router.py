"""HTTP endpoints of the cases (办件): acceptance, one route per action of the state machine, lists, history,
and the public lookup by case number and lookup code."""

import json
from datetime import datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import select

from services.cases import registry, schemas, transitions
from services.cases.calendar import service as calendar_service
from services.cases.models import Case, CaseHistory, CasePause, CaseRating, Staff
from shared import clock
from shared.auth import Principal, Role, require
from shared.calendar.store import CalendarDep
from shared.db import SessionDep
from shared.errors import NotFound
from shared.events.catalog import CaseStatus, ItemKind
from shared.idempotency import IdempotencyDep

router = APIRouter(tags=["cases"])
public_router = APIRouter(prefix="/public", tags=["public"])

READERS = (Role.CLERK, Role.CHIEF_REP, Role.HALL_MANAGER, Role.SUPERVISOR, Role.CENTER_ADMIN, Role.SYSTEM_ADMIN)
Reader = Annotated[Principal, Depends(require(*READERS))]
Acceptor = Annotated[Principal, Depends(require(Role.CLERK, Role.CHIEF_REP, Role.CENTER_ADMIN, Role.SYSTEM_ADMIN))]
Actor = Annotated[Principal, Depends(require(Role.CLERK, Role.CHIEF_REP, Role.HALL_MANAGER, Role.CENTER_ADMIN))]
CaseNo = Annotated[str, Query(max_length=48)]
PAGE = 50


async def _context(request: Request, calendar: CalendarDep) -> registry.Context:
    # async: a plain function dependency is run in the thread pool, a hop that cost more than the work
    return registry.Context(pii=request.app.state.pii, calendar=calendar)


ContextDep = Annotated[registry.Context, Depends(_context)]


async def _case_to_read(case_no: str, session: SessionDep, user: Reader) -> Case:
    case = await session.get(Case, case_no)
    if case is None:
        raise NotFound(f"no case {case_no}", field="case_no")
    registry.check_access(user, case)
    return case


async def _case_to_change(case_no: str, session: SessionDep) -> Case:
    return await registry.load_for_update(session, case_no)


CaseToRead = Annotated[Case, Depends(_case_to_read)]
CaseToChange = Annotated[Case, Depends(_case_to_change)]


async def case_out(session: SessionDep, case: Case) -> schemas.CaseOut:
    pauses = (await session.scalars(select(CasePause).where(CasePause.case_no == case.case_no)
                                    .order_by(CasePause.id))).all()
    rating = await session.scalar(select(CaseRating.rating).where(CaseRating.case_no == case.case_no))
    values: dict[str, Any] = {c: getattr(case, c) for c in schemas.CaseOut.model_fields
                              if c not in {"stage", "due_date", "rating", "pauses"}}
    return schemas.CaseOut(**values, stage=registry.stage_name(case), due_date=clock.local_date(case.due_at),
                           rating=rating, pauses=[schemas.PauseOut.model_validate(p) for p in pauses])


@router.post("/cases", status_code=201, response_model=schemas.CaseAcceptedOut,
             responses={404: {"description": "no such item"}, 403: {"description": "another centre or department"}})
async def accept_case(body: schemas.CaseIn, user: Acceptor, session: SessionDep, ctx: ContextDep,
                      idem: IdempotencyDep) -> JSONResponse:
    """Accept a case (受理): its number, lookup code (shown once, for the receipt) and due dates. A retry with
    the same Idempotency-Key (a terminal's flaky network) answers the first acceptance again."""
    if (replay := await idem.replay()) is not None:
        # the stored answer holds the lookup code encrypted: only its keyed hash is kept in clear anywhere
        answer = json.loads(bytes(replay.body))
        answer["lookup_code"] = ctx.pii.decrypt(answer["lookup_code"])
        return JSONResponse(answer, status_code=replay.status_code, headers=dict(replay.headers))
    case, code = await registry.accept(session, ctx, user, body)
    last = clock.local_date(case.legal_due_at)
    fallback = sorted(ctx.calendar.fallback_years(within=range(case.accepted_on.year, last.year + 1)))
    if fallback:  # the "calendar missing for year Y" alert: this case's clock counts Monday to Friday there
        await calendar_service.note_fallback(session, ctx.calendar, fallback, case.accepted_on)
    out = schemas.CaseAcceptedOut(case_no=case.case_no, lookup_code=code, kind=cast(ItemKind, case.kind),
                                  status="in_progress", stage=registry.stage_name(case),
                                  due_date=clock.local_date(case.due_at), due_at=case.due_at,
                                  legal_due_at=case.legal_due_at, warn_at=case.warn_at)
    if idem.key is not None:
        await idem.remember(201, out.model_copy(update={"lookup_code": ctx.pii.encrypt(code)}))
    return JSONResponse(jsonable_encoder(out), status_code=201)


@router.get("/cases", response_model=schemas.CasePage)
async def list_cases(session: SessionDep, user: Reader,
                     center: Annotated[str, Query(min_length=2, max_length=32, pattern=r"^[A-Za-z0-9]+$")],
                     status: Annotated[str | None, Query(max_length=20)] = None,
                     handler: Annotated[str | None, Query(max_length=32)] = None,
                     department: Annotated[str | None, Query(max_length=32)] = None,
                     due_before: datetime | None = None,
                     after: Annotated[str | None, Query(max_length=48, description="the last case_no seen")] = None,
                     limit: Annotated[int, Query(ge=1, le=200)] = PAGE) -> schemas.CasePage:
    """A centre's cases, in number order, a page at a time (keyset: pass the last case_no as ?after=)."""
    user.check_center(center)
    if user.role in (Role.CLERK, Role.CHIEF_REP):
        if department is not None:
            user.check_department(department)
        department = user.department
    query = select(Case).where(Case.center_id == center)
    if status is not None:
        query = query.where(Case.status == status)
    if handler is not None:
        query = query.where(Case.handler_id == handler)
    if department is not None:
        query = query.where(Case.department == department)
    if due_before is not None:
        query = query.where(Case.due_at < due_before)
    if after is not None:
        query = query.where(Case.case_no > after)
    cases = (await session.scalars(query.order_by(Case.case_no).limit(limit + 1))).all()
    page = [await case_out(session, c) for c in cases[:limit]]
    return schemas.CasePage(items=page, next_after=page[-1].case_no if len(cases) > limit else None)


@router.get("/cases/{case_no}", response_model=schemas.CaseOut)
async def get_case(case: CaseToRead, session: SessionDep) -> schemas.CaseOut:
    """One case, the applicant masked."""
    return await case_out(session, case)


@router.get("/cases/{case_no}/history", response_model=list[schemas.HistoryOut])
async def case_history(case: CaseToRead, session: SessionDep) -> list[CaseHistory]:
    """The case's audit trail, oldest first (append-only)."""
    return list((await session.scalars(select(CaseHistory).where(CaseHistory.case_no == case.case_no)
                                       .order_by(CaseHistory.id))).all())


async def _act(session: SessionDep, ctx: registry.Context, user: Principal, case: Case, action: transitions.Action,
               body: Any, rule: registry.ActionRule | None = None) -> schemas.CaseOut:
    await registry.act(session, ctx, user, case, action, body, rule)
    return await case_out(session, case)


_ACTED: dict[int | str, dict[str, Any]] = {409: {"description": "not allowed in the case's state"}, 403: {"description": "another centre, department or role"}}

@router.post("/cases/{case_no}/advance", response_model=schemas.CaseOut, responses=_ACTED)
async def advance(body: schemas.Note, case: CaseToChange, user: Actor, session: SessionDep,
                 ctx: ContextDep) -> schemas.CaseOut:
    """Advance to the next stage (环节)."""
    return await _act(session, ctx, user, case, "advance", body)


@router.post("/cases/{case_no}/request-supplement", response_model=schemas.CaseOut, responses=_ACTED)
async def request_supplement(body: schemas.SupplementRequest, case: CaseToChange, user: Actor, session: SessionDep,
                            ctx: ContextDep) -> schemas.CaseOut:
    """Ask for every missing material at once (补正, 一次性告知): the clock stops."""
    return await _act(session, ctx, user, case, "request-supplement", body)


@router.post("/cases/{case_no}/supplement", response_model=schemas.CaseOut, responses=_ACTED)
async def supplement(body: schemas.Note, case: CaseToChange, user: Actor, session: SessionDep,
                    ctx: ContextDep) -> schemas.CaseOut:
    """The materials came: the clock runs again, the due dates move by the working days paused."""
    return await _act(session, ctx, user, case, "supplement", body)


@router.post("/cases/{case_no}/start-special", response_model=schemas.CaseOut, responses=_ACTED)
async def start_special(body: schemas.SpecialStart, case: CaseToChange, user: Actor, session: SessionDep,
                       ctx: ContextDep) -> schemas.CaseOut:
    """Start a special procedure (特别程序: inspection, review, hearing): the clock stops."""
    return await _act(session, ctx, user, case, "start-special", body)


@router.post("/cases/{case_no}/end-special", response_model=schemas.CaseOut, responses=_ACTED)
async def end_special(body: schemas.Note, case: CaseToChange, user: Actor, session: SessionDep,
                     ctx: ContextDep) -> schemas.CaseOut:
    """End the special procedure: the clock runs again."""
    return await _act(session, ctx, user, case, "end-special", body)


@router.post("/cases/{case_no}/request-extension", response_model=schemas.CaseOut, responses=_ACTED)
async def request_extension(body: schemas.ExtensionRequest, case: CaseToChange, user: Actor, session: SessionDep,
                           ctx: ContextDep) -> schemas.CaseOut:
    """Ask the chief representative for an extension (延期), once per case."""
    return await _act(session, ctx, user, case, "request-extension", body)


@router.post("/cases/{case_no}/approve-extension", response_model=schemas.CaseOut, responses=_ACTED)
async def approve_extension(body: schemas.Note, case: CaseToChange, user: Actor, session: SessionDep,
                           ctx: ContextDep) -> schemas.CaseOut:
    """Approve the extension (chief representative): the due dates move."""
    return await _act(session, ctx, user, case, "approve-extension", body)


@router.post("/cases/{case_no}/decline-extension", response_model=schemas.CaseOut, responses=_ACTED)
async def decline_extension(body: schemas.Reasoned, case: CaseToChange, user: Actor, session: SessionDep,
                           ctx: ContextDep) -> schemas.CaseOut:
    """Decline the extension (chief representative)."""
    return await _act(session, ctx, user, case, "decline-extension", body)


@router.post("/cases/{case_no}/forward", response_model=schemas.CaseOut, responses=_ACTED)
async def forward(body: schemas.Forward, case: CaseToChange, user: Actor, session: SessionDep,
                 ctx: ContextDep) -> schemas.CaseOut:
    """Forward to a higher authority (上报): the clock stops until the result is recorded."""
    return await _act(session, ctx, user, case, "forward", body)


@router.post("/cases/{case_no}/record-forward-result", response_model=schemas.CaseOut, responses=_ACTED)
async def record_forward_result(body: schemas.ForwardResult, case: CaseToChange, user: Actor, session: SessionDep,
                               ctx: ContextDep) -> schemas.CaseOut:
    """Record the higher authority's result: the case completes."""
    return await _act(session, ctx, user, case, "record-forward-result", body)


@router.post("/cases/{case_no}/complete", response_model=schemas.CaseOut, responses=_ACTED)
async def complete(body: schemas.Complete, case: CaseToChange, user: Actor, session: SessionDep,
                  ctx: ContextDep) -> schemas.CaseOut:
    """Complete the case as approved (办结), from its last stage."""
    return await _act(session, ctx, user, case, "complete", body)


@router.post("/cases/{case_no}/propose-refusal", response_model=schemas.CaseOut, responses=_ACTED)
async def propose_refusal(body: schemas.RefusalProposal, case: CaseToChange, user: Actor, session: SessionDep,
                         ctx: ContextDep) -> schemas.CaseOut:
    """Propose refusing the case, with reason and legal basis (否定事项报备)."""
    return await _act(session, ctx, user, case, "propose-refusal", body)


@router.post("/cases/{case_no}/approve-refusal", response_model=schemas.CaseOut, responses=_ACTED)
async def approve_refusal(body: schemas.Note, case: CaseToChange, user: Actor, session: SessionDep,
                         ctx: ContextDep) -> schemas.CaseOut:
    """Approve the refusal (chief representative): the case completes as refused."""
    return await _act(session, ctx, user, case, "approve-refusal", body)


@router.post("/cases/{case_no}/return-refusal", response_model=schemas.CaseOut, responses=_ACTED)
async def return_refusal(body: schemas.Reasoned, case: CaseToChange, user: Actor, session: SessionDep,
                        ctx: ContextDep) -> schemas.CaseOut:
    """Send the proposed refusal back to the clerk (chief representative)."""
    return await _act(session, ctx, user, case, "return-refusal", body)


@router.post("/cases/{case_no}/expedite", response_model=schemas.CaseOut, responses=_ACTED)
async def expedite(body: schemas.Expedite, case: CaseToChange, user: Actor, session: SessionDep,
                  ctx: ContextDep) -> schemas.CaseOut:
    """特事特办 (chief representative): a shorter promised limit, with a reason."""
    return await _act(session, ctx, user, case, "expedite", body)


@router.post("/cases/{case_no}/deliver", response_model=schemas.CaseOut, responses=_ACTED)
async def deliver(body: schemas.Deliver, case: CaseToChange, user: Actor, session: SessionDep,
                 ctx: ContextDep) -> schemas.CaseOut:
    """Deliver the result (送达/出件)."""
    return await _act(session, ctx, user, case, "deliver", body)


@router.post("/cases/{case_no}/withdraw", response_model=schemas.CaseOut, responses=_ACTED)
async def withdraw(body: schemas.Reasoned, case: CaseToChange, user: Actor, session: SessionDep,
                  ctx: ContextDep) -> schemas.CaseOut:
    """The applicant withdrew the case (撤回)."""
    return await _act(session, ctx, user, case, "withdraw", body)


@router.post("/cases/{case_no}/reassign", response_model=schemas.CaseOut,
             responses={409: {"description": "not allowed in the case's state, or not a clerk of the department"}})
async def reassign(body: schemas.Reassign, case: CaseToChange, user: Actor, session: SessionDep,
                   ctx: ContextDep) -> schemas.CaseOut:
    """Give the case to another clerk of its department (e.g. the B post, AB角), audited."""
    staff = await session.get(Staff, body.handler)
    return await _act(session, ctx, user, case, "reassign", body, registry.reassign_rule(staff))


@public_router.get("/cases/{case_no}", response_model=schemas.PublicCaseOut,
                   responses={404: {"description": "no such case, or the code does not match (the same answer)"}})
async def public_case(case_no: str, code: Annotated[str, Query(min_length=1, max_length=32)], request: Request,
                      session: SessionDep) -> schemas.PublicCaseOut:
    """办件查询: a case's state, stage and due date by its number and lookup code; nothing of the applicant."""
    case = await session.get(Case, case_no)
    pii = request.app.state.pii
    # the same answer, after the same work, for an unknown case and a wrong code
    matches = registry.lookup_matches(pii, case, code) if case is not None else not registry.lookup_hash(pii, code)
    if case is None or not matches:
        raise NotFound("no case with that number and lookup code", field="code", code="case_not_found")
    return schemas.PublicCaseOut(
        case_no=case.case_no, item_name=case.item_name, department=case.department,
        status=cast(CaseStatus, case.status),
        stage=registry.stage_name(case), accepted_on=case.accepted_on, due_date=clock.local_date(case.due_at),
        paused=case.status in transitions.PAUSED_STATES, result=case.result, completed_at=case.completed_at)
