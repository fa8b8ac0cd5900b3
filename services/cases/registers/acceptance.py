"""What an acceptance (受理) takes from the registers: the one-time notice it follows (一次性告知书), and for a
case accepted for agency (全程代办) the mandate and the agent. Called by services/cases/registry.accept before
the case is numbered (the checks) and after (the records); imports nothing of the registry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.cases import schemas
from services.cases.models import Case, Staff
from services.cases.registers.models import CaseAgency, Notice
from shared.auth import ALL_CENTERS, Principal, Role
from shared.errors import BadRequest, Conflict, NotFound
from shared.events.catalog import Handler
from shared.pii import PersonalData, mask_name

AGENT_ROLES = (Role.CLERK, Role.CHIEF_REP)


@dataclass(frozen=True)
class Follows:
    """What the acceptance refers to: the notice (locked) and the agent, each when there is one."""

    notice: Notice | None
    agent: Handler | None


async def notice_for(session: AsyncSession, number: str, center_id: str, item_code: str,
                     applicant_hash: str) -> Notice:
    """The notice an acceptance refers to, locked: of the same centre, item and applicant, not used before."""
    notice = await session.scalar(select(Notice).where(Notice.notice_no == number).with_for_update())
    if notice is None or notice.center_id != center_id:
        raise NotFound(f"centre {center_id} issued no notice {number}", field="notice_no", code="unknown_notice")
    if notice.item_code != item_code:
        raise Conflict(f"notice {number} is for item {notice.item_code}, not {item_code}", field="notice_no",
                       code="notice_other_item")
    if notice.applicant_hash != applicant_hash:
        raise Conflict(f"notice {number} was issued to another applicant", field="notice_no",
                       code="notice_other_applicant")
    if notice.case_no is not None:
        raise Conflict(f"notice {number} was followed by case {notice.case_no} already", field="notice_no",
                       code="notice_used")
    return notice


async def agent_for(session: AsyncSession, body: schemas.CaseIn, department: str, accepted_on: date) -> Handler | None:
    """Source agent takes a mandate and an agent, an active clerk or chief representative of the item's
    department in the centre (the case's readers, so the agent can follow it); any other source takes neither."""
    if body.source != "agent":
        if body.mandate is not None or body.agent is not None:
            field = "mandate" if body.mandate is not None else "agent"
            raise BadRequest(f"{field} is for a case accepted for agency (source agent) only", field=field,
                             code="agency_only")
        return None
    if body.mandate is None or body.agent is None:
        field = "mandate" if body.mandate is None else "agent"
        raise BadRequest(f"a case accepted for agency (全程代办) names the mandate and the agent: {field} is missing",
                         field=field, code="agency_incomplete")
    if body.mandate.signed_on > accepted_on:
        raise BadRequest(f"the mandate is dated {body.mandate.signed_on}, after the acceptance",
                         field="mandate.signed_on", code="mandate_after_acceptance")
    staff = await session.get(Staff, body.agent)
    if staff is None or not staff.active:
        raise Conflict(f"{body.agent} is not an active user known here", field="agent", code="unknown_agent")
    if (body.center not in staff.centers and ALL_CENTERS not in staff.centers) or \
            staff.role not in AGENT_ROLES or staff.department != department:
        raise Conflict(f"{body.agent} is not a clerk or chief representative of department {department} in centre "
                       f"{body.center}", field="agent", code="wrong_agent")
    return Handler(id=staff.id, display_name=staff.display_name)


async def check(session: AsyncSession, body: schemas.CaseIn, department: str, accepted_on: date,
                applicant_hash: str) -> Follows:
    notice = None
    if body.notice_no is not None:
        notice = await notice_for(session, body.notice_no, body.center, body.item_code, applicant_hash)
    return Follows(notice, await agent_for(session, body, department, accepted_on))


def record(session: AsyncSession, pii: PersonalData, principal: Principal, case: Case, body: schemas.CaseIn,
           follows: Follows, now: datetime) -> None:
    """Once the case has its number: the notice is used, the agency recorded."""
    if follows.notice is not None:
        follows.notice.case_no = case.case_no
    if follows.agent is not None and body.mandate is not None:
        mandate = body.mandate
        session.add(CaseAgency(
            case_no=case.case_no, center_id=case.center_id, mandator_masked=mask_name(mandate.mandator),
            mandator_encrypted=pii.encrypt(mandate.mandator.strip()).encode(), mandate_reference=mandate.reference,
            mandate_signed_on=mandate.signed_on, mandate_scope=mandate.scope, agent_id=follows.agent.id,
            agent_name=follows.agent.display_name, assigned_at=now, assigned_by=principal.subject))
