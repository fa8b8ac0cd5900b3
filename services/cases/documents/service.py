"""Which notice a case has, and the rows it is printed from: loads, checks that the kind applies, builds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.cases import registry
from services.cases.config import Settings
from services.cases.documents import builders
from services.cases.models import Case, CaseHistory, CasePause, CenterCopy, Department, Item, Staff
from services.cases.registers.models import CaseAgency, Notice
from shared.documents import Document
from shared.errors import BadRequest, Conflict, NotFound
from shared.pii import PersonalData

#: the notices of a case, by the name in the route (…/documents/{kind}.pdf), with their printed title
CASE_KINDS = {"receipt": "承诺件告知单", "supplement": "补正材料告知书", "extension": "延期办理告知书",
              "refusal": "不予办理通知书", "agency": "全程代办承办单"}


@dataclass(frozen=True)
class Printed:
    document: Document
    filename: str  # ASCII, for Content-Disposition
    title: str


async def letterhead(session: AsyncSession, settings: Settings, center_id: str,
                     department: str | None) -> builders.Letterhead:
    center = await session.get(CenterCopy, center_id)
    dept = await session.get(Department, (center_id, department)) if department else None
    return builders.Letterhead(center_id=center_id, center_name=center.name if center else f"{center_id}政务服务中心",
                               department_name=dept.name if dept else "", phone=settings.center_phones.get(center_id),
                               public_base_url=settings.public_base_url)


def applicant_of(pii: PersonalData, case: Case | Notice) -> builders.Applicant:
    """The applicant as printed: the name decrypted (the notice is handed to them), ID number and phone masked."""
    return builders.Applicant(name=pii.decrypt(case.applicant_name_encrypted.decode()),
                              id_number_masked=case.id_number_masked, phone_masked=case.phone_masked,
                              org=getattr(case, "org", None))


async def _approval(session: AsyncSession, case: Case, action: str) -> tuple[str, datetime]:
    """Who approved (their display name, from the staff copy) and when: the audit entry of the approval."""
    entry = await session.scalar(select(CaseHistory).where(CaseHistory.case_no == case.case_no,
                                                           CaseHistory.action == action)
                                 .order_by(CaseHistory.id.desc()).limit(1))
    if entry is None:
        raise Conflict(f"case {case.case_no} has no {action} in its history", field="kind", code="not_applicable")
    staff = await session.get(Staff, entry.actor_id)
    return (staff.display_name if staff else entry.actor_id), entry.at


def _not_applicable(case: Case, kind: str, why: str) -> Conflict:
    return Conflict(f"case {case.case_no} has no {CASE_KINDS[kind]} ({kind}): {why}", field="kind",
                    code="document_not_applicable")


async def case_document(session: AsyncSession, pii: PersonalData, settings: Settings, case: Case, kind: str,
                        code: str | None) -> Printed:
    """The notice `kind` of `case`; 404 for a kind that does not exist, 409 for one the case has not (yet)."""
    if kind not in CASE_KINDS:
        raise NotFound(f"no document {kind}: one of {', '.join(CASE_KINDS)}", field="kind", code="unknown_document")
    if code is not None and not registry.lookup_matches(pii, case, code):
        raise BadRequest("the lookup code does not match the case's", field="code", code="lookup_code_mismatch")
    head = await letterhead(session, settings, case.center_id, case.department)
    applicant = applicant_of(pii, case)
    if kind == "receipt":
        item = await session.get(Item, (case.center_id, case.item_code))
        doc = builders.receipt(case, head, applicant, fees=item.fees if item else None, code=code)
    elif kind == "supplement":
        pause = await session.scalar(select(CasePause).where(CasePause.case_no == case.case_no,
                                                             CasePause.kind == "supplement")
                                     .order_by(CasePause.id.desc()).limit(1))
        if pause is None:
            raise _not_applicable(case, kind, "no 补正 was requested")
        doc = builders.supplement(case, head, applicant, pause, code=code)
    elif kind == "extension":
        if case.extension_days <= 0:
            raise _not_applicable(case, kind, "it has not been extended")
        name, at = await _approval(session, case, "approve-extension")
        doc = builders.extension(case, head, applicant, approved_by=name, approved_at=at, code=code)
    elif kind == "refusal":
        if case.result != "refused":
            raise _not_applicable(case, kind, "it has not been refused")
        name, at = await _approval(session, case, "approve-refusal")
        doc = builders.refusal(case, head, applicant, approved_by=name, approved_at=at, code=code)
    else:
        row = await session.get(CaseAgency, case.case_no)
        if row is None:
            raise _not_applicable(case, kind, "it is not a case of 全程代办 (source agent)")
        item = await session.get(Item, (case.center_id, case.item_code))
        doc = builders.agency(case, head, applicant, row, fees=item.fees if item else None, code=code)
    return Printed(doc, f"{kind}-{case.case_no}.pdf", CASE_KINDS[kind])


async def notice_document(session: AsyncSession, pii: PersonalData, settings: Settings,
                          notice: Notice) -> Printed:
    head = await letterhead(session, settings, notice.center_id, notice.department)
    return Printed(builders.one_time_notice(notice, head, applicant_of(pii, notice)),
                   f"notice-{notice.notice_no}.pdf", "一次性告知书")
