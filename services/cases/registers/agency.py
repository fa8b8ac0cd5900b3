"""全程代办 after acceptance: the agency record staff read, and the hand-back of the result with the fee
settlement (the agent, or the department's chief representative for them), audited in case_history."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.cases import registry
from services.cases.models import Case, CaseHistory
from services.cases.registers import schemas
from services.cases.registers.models import CaseAgency
from shared import clock
from shared.auth import Principal, Role
from shared.errors import Conflict, Forbidden, NotFound
from shared.events.catalog import CaseHandedBack, Handler
from shared.events.outbox import publish

#: the result exists once the case is completed (approved or refused); delivery (出件) may come before or after
HANDED_BACK_FROM = ("completed", "delivered")


async def of_case(session: AsyncSession, case: Case, *, lock: bool = False) -> CaseAgency:
    query = select(CaseAgency).where(CaseAgency.case_no == case.case_no)
    agency = await session.scalar(query.with_for_update() if lock else query)
    if agency is None:
        raise NotFound(f"case {case.case_no} was not accepted for agency (全程代办)", field="case_no",
                       code="no_agency")
    return agency


async def hand_back(session: AsyncSession, principal: Principal, case_no: str, body: schemas.HandBack) -> CaseAgency:
    """The agent returns the result to the applicant and the fees are settled: once, after completion."""
    case = await registry.load_for_update(session, case_no)
    registry.check_access(principal, case)
    agency = await of_case(session, case, lock=True)
    if principal.role != Role.CHIEF_REP and principal.subject != agency.agent_id:
        raise Forbidden(f"case {case_no} is handed back by its agent {agency.agent_id} or the chief representative",
                        field="case_no", code="not_the_agent")
    if case.status not in HANDED_BACK_FROM:
        raise Conflict(f"case {case_no} is {case.status}: the result is handed back once the case is completed",
                       field="status", code="not_completed")
    if agency.handed_back_at is not None:
        raise Conflict(f"case {case_no} was handed back at {agency.handed_back_at.isoformat()}", field="case_no",
                       code="already_handed_back")
    now = clock.now()
    agency.handed_back_at, agency.handed_back_by = now, principal.subject
    agency.fees_settled, agency.hand_back_note = body.fees_settled, body.note
    case.updated_at = now
    stage = registry.stage_name(case)
    session.add(CaseHistory(case_no=case.case_no, at=now, actor_id=principal.subject, actor_role=str(principal.role),
                            action="hand-back", from_status=case.status, to_status=case.status, from_stage=stage,
                            to_stage=stage, reason=body.note,
                            details={"agent": agency.agent_id, "fees_settled": body.fees_settled}))
    await session.flush()
    await publish(session, registry.PRODUCER, CaseHandedBack(
        case=registry.facts(case), agent=Handler(id=agency.agent_id, display_name=agency.agent_name),
        handed_back_at=now, fees_settled=body.fees_settled, note=body.note),
        subject=case.case_no, center_id=case.center_id)
    registry.count(session, case, "handed_back")
    return agency
