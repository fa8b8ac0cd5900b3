"""The case registry's rules (办件登记): acceptance with its number and clock, every action of the state machine,
the audit trail and the events. Writes state, history and outbox rows in the caller's transaction; never
commits. The moves themselves are services/cases/transitions.py; the clock is services/cases/deadlines.py."""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, cast

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.cases import deadlines, schemas, transitions
from services.cases.joint import lead as joint_lead
from services.cases.models import Case, CaseHistory, CasePause, Staff
from services.cases.registers import acceptance as registers
from services.cases.statements import AcceptRow, insert_case, item_for_accept
from shared import clock
from shared.auth import Principal, Role
from shared.calendar.engine import WorkCalendar
from shared.errors import BadRequest, Conflict, Forbidden, NotFound
from shared.events.catalog import (
    CaseAccepted,
    CaseCompleted,
    CaseDelivered,
    CaseDueChanged,
    CaseExpedited,
    CaseExtended,
    CaseExtensionRequested,
    CaseFacts,
    CaseForwarded,
    CaseForwardResultRecorded,
    CasePaused,
    CaseReassigned,
    CaseRefusalProposed,
    CaseRefusalReturned,
    CaseRefused,
    CaseResumed,
    CaseStageAdvanced,
    CaseStatus,
    CaseWithdrawn,
    ClockState,
    Handler,
    ItemKind,
    ItemRef,
    StageLimit,
)
from shared.events.envelope import EventData
from shared.events.outbox import Outgoing, publish_all
from shared.metrics import at_commit
from shared.pii import PersonalData, PersonalDataError, mask_name

PRODUCER = "cases"
log = logging.getLogger("services.cases.registry")
LOOKUP_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a receipt, typed on a phone
LOOKUP_LENGTH = 8  # 32^8 = 2^40 codes; only their keyed hash is stored
DEFAULT_STAGE = "办理"

CASES = Counter("hall_cases_total", "Case events by what happened (accepted, completed_on_time, completed_late, "
                "paused, resumed, extended, refused, withdrawn ...)", ["center", "kind", "event"])

CLERKS = (Role.CLERK, Role.CHIEF_REP)
IMPORTERS = (Role.CENTER_ADMIN, Role.SYSTEM_ADMIN)


@dataclass(frozen=True)
class Context:
    """What the rules need besides the session: the personal-data keys and the calendar snapshot."""

    pii: PersonalData
    calendar: WorkCalendar


def lookup_hash(pii: PersonalData, code: str) -> str:
    return pii.keyed_hash("case-lookup", code.strip().upper())


def lookup_matches(pii: PersonalData, case: Case, code: str) -> bool:
    return hmac.compare_digest(lookup_hash(pii, code), case.lookup_code_hash)


# what every event says of the case

def stages_of(case: Case) -> list[StageLimit]:
    return [StageLimit.model_validate(s) for s in case.stages] or [StageLimit(name=DEFAULT_STAGE,
                                                                               limit_days=case.promised_limit_days)]


def stage_name(case: Case) -> str:
    return stages_of(case)[case.stage_index].name


def facts(case: Case) -> CaseFacts:
    return CaseFacts(
        case_no=case.case_no, center_id=case.center_id, kind=cast(ItemKind, case.kind),
        status=cast(CaseStatus, case.status),
        stage=stage_name(case), stage_index=case.stage_index, accepted_at=case.accepted_at, due_at=case.due_at,
        legal_due_at=case.legal_due_at, warn_at=case.warn_at, stage_due_at=case.stage_due_at,
        clock_version=case.clock_version, department=case.department,
        item=ItemRef(code=case.item_code, name=case.item_name, promised_limit_days=case.promised_limit_days,
                     legal_limit_days=case.legal_limit_days),
        handler=Handler(id=case.handler_id, display_name=case.handler_name), window=case.window,
        applicant_hash=case.applicant_hash, applicant_masked=case.applicant_name_masked, expedited=case.expedited,
        imported=case.imported, overdue_at_import=case.overdue_at_import)


def count(session: AsyncSession, case: Case, what: str) -> None:
    at_commit(session, CASES.labels(case.center_id, case.kind, what).inc)


# acceptance (受理)

def _lookup_code() -> str:
    return "".join(secrets.choice(LOOKUP_ALPHABET) for _ in range(LOOKUP_LENGTH))


def _who_handles(principal: Principal, body: schemas.CaseIn) -> tuple[str, str | None, bool]:
    """(handler id, window, imported): a clerk's case is theirs at their window; an admin's is an import."""
    if principal.role in CLERKS:
        if body.handler is not None or body.window is not None or body.accepted_at is not None:
            field = "handler" if body.handler is not None else "window" if body.window is not None else "accepted_at"
            raise BadRequest("a clerk accepts as themselves, at their window, now: only an import names "
                             f"{field}", field=field, code="import_only")
        return principal.subject, principal.window, False
    if principal.role in IMPORTERS:
        if body.handler is None or body.accepted_at is None:
            field = "handler" if body.handler is None else "accepted_at"
            raise BadRequest(f"an import names the handling clerk and the acceptance time: {field} is missing",
                             field=field, code="import_incomplete")
        return body.handler, body.window, True
    raise Forbidden(f"role {principal.role} does not accept cases", code="wrong_role")


def _person(pii: PersonalData, applicant: schemas.ApplicantIn) -> tuple[dict[str, str], dict[str, str] | None]:
    try:
        ident = pii.id_card(applicant.id_number)
    except PersonalDataError as exc:
        raise BadRequest(f"applicant.id_number {exc.reason}", field="applicant.id_number",
                         code="invalid_id_number") from None
    try:
        tel = pii.phone(applicant.phone) if applicant.phone else None
    except PersonalDataError as exc:
        raise BadRequest(f"applicant.phone {exc.reason}", field="applicant.phone", code="invalid_phone") from None
    return ident, tel


async def accept(session: AsyncSession, ctx: Context, principal: Principal,
                 body: schemas.CaseIn) -> tuple[Case, str]:
    """Register a case: its gap-free daily number, a random lookup code, the clock from the item's limits."""
    principal.check_center(body.center)
    handler_id, window, imported = _who_handles(principal, body)
    now = clock.now()
    accepted_at = body.accepted_at if imported and body.accepted_at is not None else now
    if accepted_at > now:
        raise BadRequest("accepted_at is in the future", field="accepted_at", code="future_acceptance")
    row: AcceptRow | None = await item_for_accept(session, body.center, body.item_code, handler_id)
    if row is None or not row.active:
        raise NotFound(f"centre {body.center} has no active item {body.item_code}", field="item_code",
                       code="unknown_item")
    principal.check_department(row.department)
    if row.kind == "joint" and not imported:  # an import's window is the previous system's, not checked
        await joint_lead.check_joint_window(session, body.center, window)
    if imported and row.handler_name is None:
        raise BadRequest(f"handler {handler_id} is not a known user", field="handler", code="unknown_handler")
    ident, tel = _person(ctx.pii, body.applicant)
    accepted_on = clock.local_date(accepted_at)
    # the 一次性告知书 it follows, and for 全程代办 the mandate and the agent
    follows = await registers.check(session, body, row.department, accepted_on, ident["hash"])
    stages = [StageLimit.model_validate(s) for s in row.stages]
    first_stage_limit = stages[0].limit_days if stages else None
    clock_inputs = deadlines.ClockInputs(
        center_id=body.center, accepted_on=accepted_on, promised_days=row.promised_limit_days,
        legal_days=row.legal_limit_days, warn_days=row.warn_days, stage_started_on=accepted_on,
        stage_limit_days=first_stage_limit)
    due = deadlines.compute(ctx.calendar, clock_inputs)
    code = _lookup_code()
    case = Case(
        center_id=body.center, item_code=row.code, item_name=row.name, department=row.department, kind=row.kind, status="in_progress",
        result=None, stages=[s.model_dump() for s in stages], stage_index=0, stage_started_on=accepted_on,
        lookup_code_hash=lookup_hash(ctx.pii, code), source=body.source, ticket_id=body.ticket_id,
        notice_no=body.notice_no, materials=list(body.materials), accepted_at=accepted_at, accepted_on=accepted_on,
        promised_limit_days=row.promised_limit_days, legal_limit_days=row.legal_limit_days,
        warn_days=row.warn_days, extension_days=0, max_extension_days=row.max_extension_days,
        special_limit_days=row.special_limit_days, forward_followup_days=row.forward_followup_days,
        due_at=due.due_at, legal_due_at=due.legal_due_at, warn_at=due.warn_at, stage_due_at=due.stage_due_at,
        clock_version=1, supplement_count=0, special_count=0, expedited=False,
        handler_id=handler_id, handler_name=row.handler_name or handler_id, window=window,
        applicant_name_masked=mask_name(body.applicant.name),
        applicant_name_encrypted=ctx.pii.encrypt(body.applicant.name.strip()).encode(),
        applicant_hash=ident["hash"], id_number_masked=ident["masked"], id_number_encrypted=ident["encrypted"].encode(),
        phone_hash=tel["hash"] if tel else None, phone_masked=tel["masked"] if tel else None,
        phone_encrypted=tel["encrypted"].encode() if tel else None, org=body.applicant.org,
        imported=imported, overdue_at_import=imported and now > due.due_at, created_at=now, updated_at=now)
    history = {"actor_id": principal.subject, "actor_role": str(principal.role),
               "action": "import" if imported else "accept", "to_stage": stage_name(case),
               "details": {"due_at": due.due_at.isoformat(), "legal_due_at": due.legal_due_at.isoformat(),
                           "source": body.source, **({"agent": follows.agent.id} if follows.agent else {})}}
    case.case_no = await insert_case(session, case, history)
    registers.record(session, ctx.pii, principal, case, body, follows, now)
    event = CaseAccepted(
        case=facts(case), source=body.source, ticket_id=body.ticket_id, notice_no=body.notice_no,
        materials=list(body.materials), id_number_masked=ident["masked"], phone_masked=tel["masked"] if tel else None,
        phone_sealed=tel["sealed_for_notify"] if tel else None, lookup_code_sealed=ctx.pii.seal_for_notify(code),
        org=body.applicant.org, agent=follows.agent)
    await publish_all(session, PRODUCER, [Outgoing(event, case.case_no, case.center_id)])
    count(session, case, "imported" if imported else "accepted")
    return case, code


# the actions after acceptance

EventBuilder = Callable[[CaseFacts], EventData]


@dataclass
class Change:
    """What one action did: its events (each built from the case as it stands after the move), and the audit
    entry's reason and details."""

    events: list[EventBuilder]
    reason: str | None = None
    details: dict[str, Any] | None = None


ActionRule = Callable[["ActionContext"], "Change"]


@dataclass
class ActionContext:
    session: AsyncSession
    ctx: Context
    case: Case
    principal: Principal
    body: Any
    now: datetime
    today: date
    pauses: list[CasePause]

    def facts(self) -> CaseFacts:
        return facts(self.case)


async def load_for_update(session: AsyncSession, case_no: str) -> Case:
    case = await session.scalar(select(Case).where(Case.case_no == case_no).with_for_update())
    if case is None:
        raise NotFound(f"no case {case_no}", field="case_no")
    return case


def check_access(principal: Principal, case: Case) -> None:
    """Staff act for their own centre; clerks and chief representatives for their own department too."""
    principal.check_center(case.center_id)
    principal.check_department(case.department)


async def act(session: AsyncSession, ctx: Context, principal: Principal, case: Case,
              action: transitions.Action, body: Any, rule: ActionRule | None = None) -> Case:
    """Make one move of the state machine: check it in the table, apply its rule, audit it, publish."""
    check_access(principal, case)
    move = transitions.move(case.status, action, principal.role)
    now = clock.now()
    pauses = list((await session.scalars(select(CasePause).where(CasePause.case_no == case.case_no)
                                         .order_by(CasePause.id))).all())
    from_status, from_stage = case.status, stage_name(case)
    if case.kind == "joint":  # 联办: completing waits for every department's sub-task
        await joint_lead.before_move(session, case, action, body)
    ac = ActionContext(session, ctx, case, principal, body, now, clock.local_date(now), pauses)
    change = (rule or RULES[action])(ac)
    case.status = move.to
    case.updated_at = now
    details = change.details or {}
    if case.kind == "joint":  # the sub-tasks' clocks stop, move and stop for good with the lead case's
        details = {**details, **await joint_lead.after_move(session, ctx.calendar, case, from_status, case.status,
                                                             pauses)}
    session.add(CaseHistory(case_no=case.case_no, at=now, actor_id=principal.subject, actor_role=str(principal.role),
                            action=action, from_status=from_status, to_status=case.status, from_stage=from_stage,
                            to_stage=stage_name(case), reason=change.reason, details=details))
    # events are built after the move, so every one carries the case as it now stands
    case_facts = ac.facts()
    events = [build(case_facts) for build in change.events]
    await session.flush()
    await publish_all(session, PRODUCER, [Outgoing(e, case.case_no, case.center_id) for e in events])
    return case


def _not_overdue(ac: ActionContext, what: str) -> None:
    """Neither a pause nor an extension starts after due_at: an overdue case stays overdue."""
    if ac.now > ac.case.due_at:
        raise Conflict(f"the case was due at {ac.case.due_at.isoformat()}: an overdue case cannot {what}",
                       field="due_at", code="case_overdue")


def _reclock(ac: ActionContext, cause: Literal["resume", "extension", "expedite"]) -> Change | None:
    """Recompute the clock; when it moved, a new clock_version and a case.due_changed (audited by the caller)."""
    due = deadlines.compute(ac.ctx.calendar, clock_inputs(ac.case, ac.pauses))
    previous = clock_state(ac.case)
    if not apply_deadlines(ac.case, due):
        return None
    return Change([lambda f: CaseDueChanged(case=f, previous=previous, cause=cause)],
                  details={"previous_due_at": previous.due_at.isoformat(), "due_at": ac.case.due_at.isoformat(),
                           "clock_version": ac.case.clock_version})


def clock_inputs(case: Case, pauses: list[CasePause]) -> deadlines.ClockInputs:
    return clock_inputs_from(case, tuple(deadlines.Pause(p.paused_on, p.resumed_on) for p in pauses))


def clock_inputs_from(case: Case, pauses: tuple[deadlines.Pause, ...]) -> deadlines.ClockInputs:
    """Everything the case's due dates depend on (deadlines.compute recounts them from it)."""
    stages = stages_of(case)
    return deadlines.ClockInputs(
        center_id=case.center_id, accepted_on=case.accepted_on, promised_days=case.promised_limit_days,
        legal_days=case.legal_limit_days, warn_days=case.warn_days, extension_days=case.extension_days,
        pauses=pauses, stage_started_on=case.stage_started_on,
        stage_limit_days=stages[case.stage_index].limit_days if case.stages else None)


def clock_state(case: Case) -> ClockState:
    return ClockState(due_at=case.due_at, legal_due_at=case.legal_due_at, warn_at=case.warn_at,
                      stage_due_at=case.stage_due_at, clock_version=case.clock_version)


def apply_deadlines(case: Case, due: deadlines.Deadlines) -> bool:
    """Store new due dates with a new clock_version; False (nothing changed) when they are the same."""
    if (case.due_at, case.legal_due_at, case.warn_at) == (due.due_at, due.legal_due_at, due.warn_at):
        case.stage_due_at = due.stage_due_at
        return False
    case.due_at, case.legal_due_at, case.warn_at = due.due_at, due.legal_due_at, due.warn_at
    case.stage_due_at = due.stage_due_at
    case.clock_version += 1
    return True


def _merge(first: Change, second: Change | None) -> Change:
    if second is None:
        return first
    return Change(first.events + second.events, first.reason, {**(first.details or {}), **(second.details or {})})


def _open_pause(ac: ActionContext) -> CasePause:
    for pause in reversed(ac.pauses):
        if pause.resumed_on is None:
            return pause
    raise Conflict(f"case {ac.case.case_no} has no open pause", field="status", code="not_paused")


def _pause(ac: ActionContext, kind: str, reason: str, missing: list[str] | None = None,
           limit_at: datetime | None = None) -> CasePause:
    pause = CasePause(case_no=ac.case.case_no, kind=kind, reason=reason, paused_on=ac.today, resumed_on=None,
                      missing_materials=missing or [], limit_at=limit_at)
    ac.session.add(pause)
    ac.pauses.append(pause)
    ac.case.paused_kind, ac.case.paused_on = kind, ac.today
    count(ac.session, ac.case, "paused")
    return pause


def _resume(ac: ActionContext, note: str | None) -> Change:
    pause = _open_pause(ac)
    pause.resumed_on = ac.today
    shift = ac.ctx.calendar.pause_shift(pause.paused_on, ac.today, ac.case.center_id)
    ac.case.paused_kind, ac.case.paused_on = None, None
    count(ac.session, ac.case, "resumed")
    resumed = Change([lambda f: CaseResumed(case=f, pause_kind=pause.kind,
                                  paused_on=pause.paused_on, resumed_on=ac.today, shift_days=shift)],
                     reason=note, details={"pause_kind": pause.kind, "shift_days": shift})
    return _merge(resumed, _reclock(ac, "resume"))


def _advance(ac: ActionContext) -> Change:
    stages = stages_of(ac.case)
    if ac.case.stage_index + 1 >= len(stages):
        raise Conflict(f"{stages[-1].name} is the last stage: complete the case instead", field="stage",
                       code="last_stage")
    before = stage_name(ac.case)
    ac.case.stage_index += 1
    ac.case.stage_started_on = ac.today
    ac.case.stage_due_at = deadlines.compute(ac.ctx.calendar, clock_inputs(ac.case, ac.pauses)).stage_due_at
    return Change([lambda f: CaseStageAdvanced(case=f, from_stage=before, to_stage=stage_name(ac.case))],
                  reason=ac.body.note)


def _request_supplement(ac: ActionContext) -> Change:
    body: schemas.SupplementRequest = ac.body
    if ac.case.supplement_count >= 1:
        raise Conflict("a case gets one 补正 (一次性告知: everything missing at once); it has had it",
                       field="missing_materials", code="second_supplement")
    _not_overdue(ac, "be paused")
    ac.case.supplement_count += 1
    reason = body.reason or "补正材料"
    _pause(ac, "supplement", reason, list(body.missing_materials))
    return Change([lambda f: CasePaused(case=f, pause_kind="supplement", reason=reason, paused_on=ac.today,
                              missing_materials=list(body.missing_materials))],
                  reason=reason, details={"missing_materials": list(body.missing_materials)})


def _supplement(ac: ActionContext) -> Change:
    return _resume(ac, ac.body.note)


def _start_special(ac: ActionContext) -> Change:
    body: schemas.SpecialStart = ac.body
    _not_overdue(ac, "be paused")
    ac.case.special_count += 1
    limit_at = ac.ctx.calendar.due_at(ac.today, ac.case.special_limit_days, ac.case.center_id)
    _pause(ac, "special", body.reason, limit_at=limit_at)
    return Change([lambda f: CasePaused(case=f, pause_kind="special", reason=body.reason, paused_on=ac.today,
                              special_limit_at=limit_at, special_count=ac.case.special_count)],
                  reason=body.reason, details={"procedure": body.procedure, "special_count": ac.case.special_count,
                                               "limit_at": limit_at.isoformat()})


def _end_special(ac: ActionContext) -> Change:
    return _resume(ac, ac.body.note)


def _request_extension(ac: ActionContext) -> Change:
    body: schemas.ExtensionRequest = ac.body
    if ac.case.extension_days > 0:
        raise Conflict("a case is extended once; it has been", field="days", code="second_extension")
    if body.days > ac.case.max_extension_days:
        raise Conflict(f"the item allows an extension of at most {ac.case.max_extension_days} working days",
                       field="days", code="extension_too_long")
    _not_overdue(ac, "be extended")
    ac.case.extension_request_days, ac.case.extension_reason = body.days, body.reason
    return Change([lambda f: CaseExtensionRequested(case=f, days=body.days, reason=body.reason)],
                  reason=body.reason, details={"days": body.days})


def _approve_extension(ac: ActionContext) -> Change:
    _not_overdue(ac, "be extended")
    days, reason = ac.case.extension_request_days or 0, ac.case.extension_reason or ""
    ac.case.extension_days = days
    ac.case.extension_request_days = None
    count(ac.session, ac.case, "extended")
    extended = Change([lambda f: CaseExtended(case=f, days=days, reason=reason, approved_by=ac.principal.subject)],
                      reason=ac.body.note, details={"days": days})
    return _merge(extended, _reclock(ac, "extension"))


def _decline_extension(ac: ActionContext) -> Change:
    days = ac.case.extension_request_days
    ac.case.extension_request_days, ac.case.extension_reason = None, None
    return Change([], reason=ac.body.reason, details={"declined_days": days})


def _forward(ac: ActionContext) -> Change:
    body: schemas.Forward = ac.body
    _not_overdue(ac, "be forwarded")  # forwarding is a pause (DOMAIN.md): it cannot hide an overdue
    follow_up_at = ac.ctx.calendar.due_at(ac.today, ac.case.forward_followup_days, ac.case.center_id)
    _pause(ac, "forward", body.reason or f"上报 {body.to_authority}", limit_at=follow_up_at)
    ac.case.forwarded_to, ac.case.follow_up_at = body.to_authority, follow_up_at
    return Change([lambda f: CaseForwarded(case=f, to_authority=body.to_authority, forwarded_on=ac.today,
                                 follow_up_at=follow_up_at)],
                  reason=body.reason, details={"to_authority": body.to_authority,
                                               "follow_up_at": follow_up_at.isoformat()})


def _complete_as(ac: ActionContext, result: Literal["approved", "refused"]) -> EventBuilder:
    case = ac.case
    case.result = result
    case.completed_at = ac.now
    case.completed_late = ac.now > case.due_at
    case.overdue_working_days = deadlines.overdue_working_days(
        ac.ctx.calendar, case.center_id, clock.local_date(case.due_at), ac.today) if case.completed_late else 0
    count(ac.session, case, "completed_late" if case.completed_late else "completed_on_time")
    late, days = case.completed_late, case.overdue_working_days
    return lambda f: CaseCompleted(case=f, result=result, completed_at=ac.now, completed_late=late,
                                   overdue_working_days=days)


def _record_forward_result(ac: ActionContext) -> Change:
    body: schemas.ForwardResult = ac.body
    resumed = _resume(ac, body.note)
    recorded = Change([lambda f: CaseForwardResultRecorded(case=f, result=body.result, note=body.note),
                       _complete_as(ac, body.result)], reason=body.note, details={"result": body.result})
    return _merge(resumed, recorded)  # in the order it happened: the clock resumes, then the case completes


def _complete(ac: ActionContext) -> Change:
    body: schemas.Complete = ac.body
    if body.result == "refused":
        raise Conflict("a case is refused only through propose-refusal and the chief representative's "
                       "approve-refusal (否定事项报备)", field="result", code="refusal_needs_approval")
    stages = stages_of(ac.case)
    if ac.case.stage_index + 1 < len(stages):
        raise Conflict(f"the case is at stage {stage_name(ac.case)}; it completes from its last stage, "
                       f"{stages[-1].name}", field="stage", code="not_last_stage")
    ac.case.extension_request_days = None
    completed = _complete_as(ac, "approved")
    return Change([completed], reason=body.note, details={"completed_late": ac.case.completed_late,
                                                           "overdue_working_days": ac.case.overdue_working_days})


def _propose_refusal(ac: ActionContext) -> Change:
    body: schemas.RefusalProposal = ac.body
    ac.case.refusal_reason, ac.case.refusal_basis = body.reason, body.legal_basis
    ac.case.refusal_proposed_by = ac.principal.subject
    return Change([lambda f: CaseRefusalProposed(case=f, reason=body.reason, legal_basis=body.legal_basis)],
                  reason=body.reason, details={"legal_basis": body.legal_basis})


def _approve_refusal(ac: ActionContext) -> Change:
    case = ac.case
    reason, basis, proposed_by = case.refusal_reason or "", case.refusal_basis or "", case.refusal_proposed_by or ""
    count(ac.session, case, "refused")
    completed = _complete_as(ac, "refused")
    return Change([lambda f: CaseRefused(case=f, reason=reason, legal_basis=basis, proposed_by=proposed_by,
                                         approved_by=ac.principal.subject), completed], reason=ac.body.note,
                  details={"legal_basis": case.refusal_basis, "proposed_by": case.refusal_proposed_by})


def _return_refusal(ac: ActionContext) -> Change:
    body: schemas.Reasoned = ac.body
    ac.case.refusal_reason = ac.case.refusal_basis = ac.case.refusal_proposed_by = None
    return Change([lambda f: CaseRefusalReturned(case=f, reason=body.reason, by=ac.principal.subject)],
                  reason=body.reason)


def _expedite(ac: ActionContext) -> Change:
    body: schemas.Expedite = ac.body
    if body.promised_limit_days >= ac.case.promised_limit_days:
        raise Conflict(f"特事特办 shortens the promised limit: {body.promised_limit_days} is not under "
                       f"{ac.case.promised_limit_days}", field="promised_limit_days", code="not_shorter")
    before = ac.case.promised_limit_days
    ac.case.promised_limit_days = body.promised_limit_days
    ac.case.expedited, ac.case.expedite_reason = True, body.reason
    due = deadlines.compute(ac.ctx.calendar, clock_inputs(ac.case, ac.pauses))
    if due.due_at < ac.now:
        raise Conflict(f"{body.promised_limit_days} working days from acceptance ended at {due.due_at.isoformat()}, "
                       "already past", field="promised_limit_days", code="limit_in_past")
    count(ac.session, ac.case, "expedited")
    expedited = Change([lambda f: CaseExpedited(case=f, promised_limit_days=body.promised_limit_days,
                                      reason=body.reason, by=ac.principal.subject)],
                       reason=body.reason, details={"promised_limit_days": body.promised_limit_days,
                                                    "previous_limit_days": before})
    return _merge(expedited, _reclock(ac, "expedite"))


def _deliver(ac: ActionContext) -> Change:
    body: schemas.Deliver = ac.body
    ac.case.closed_at = ac.now
    return Change([lambda f: CaseDelivered(case=f, method=body.method)], details={"method": body.method})


def _withdraw(ac: ActionContext) -> Change:
    body: schemas.Reasoned = ac.body
    for pause in ac.pauses:
        if pause.resumed_on is None:
            pause.resumed_on = ac.today
    ac.case.paused_kind = ac.case.paused_on = None
    ac.case.closed_at = ac.now
    count(ac.session, ac.case, "withdrawn")
    return Change([lambda f: CaseWithdrawn(case=f, reason=body.reason)], reason=body.reason)


def reassign_rule(staff: Staff | None) -> ActionRule:
    def rule(ac: ActionContext) -> Change:
        body: schemas.Reassign = ac.body
        if staff is None or not staff.active:
            raise Conflict(f"{body.handler} is not an active user known here", field="handler",
                           code="unknown_handler")
        if (ac.case.center_id not in staff.centers and "*" not in staff.centers) or \
                staff.role not in (Role.CLERK, Role.CHIEF_REP) or staff.department != ac.case.department:
            raise Conflict(f"{body.handler} is not a clerk of department {ac.case.department} in centre "
                           f"{ac.case.center_id}", field="handler", code="wrong_handler")
        before = Handler(id=ac.case.handler_id, display_name=ac.case.handler_name)
        ac.case.handler_id, ac.case.handler_name = staff.id, staff.display_name
        return Change([lambda f: CaseReassigned(case=f, from_handler=before, reason=body.reason,
                                      by=ac.principal.subject)],
                      reason=body.reason, details={"from": before.id, "to": staff.id})
    return rule


RULES: dict[str, ActionRule] = {
    "advance": _advance, "request-supplement": _request_supplement, "supplement": _supplement,
    "start-special": _start_special, "end-special": _end_special, "request-extension": _request_extension,
    "approve-extension": _approve_extension, "decline-extension": _decline_extension, "forward": _forward,
    "record-forward-result": _record_forward_result, "complete": _complete, "propose-refusal": _propose_refusal,
    "approve-refusal": _approve_refusal, "return-refusal": _return_refusal, "expedite": _expedite,
    "deliver": _deliver, "withdraw": _withdraw,
}  # reassign: reassign_rule(staff), given the staff copy of the new handler
