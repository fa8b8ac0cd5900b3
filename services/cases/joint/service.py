"""The rules of joint cases (联办件): the lead case dispatches sub-tasks to departments, each department gives
its opinion, a joint review records who came, and the system deems consent for a department that does not
answer in time or stays away (超时默认、缺席默认). Every change is an audit entry of the lead case and an event
in the same transaction; never commits."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, cast

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.cases import registry
from services.cases.joint import lead
from services.cases.joint.models import JointReview, JointSubtask
from services.cases.joint.schemas import BillLine, BillOut, JointReviewIn, OpinionIn, SubtaskIn
from services.cases.models import Case, CaseHistory, Department, Item
from services.cases.transitions import CLOSED_STATES, PAUSED_STATES
from shared import clock
from shared.auth import Principal, Role
from shared.errors import BadRequest, Conflict, Forbidden, NotFound
from shared.events.catalog import (
    JointReviewRecorded,
    JointSubtaskAnswered,
    JointSubtaskDeemedConsented,
    JointSubtaskDispatched,
    Opinion,
    SubtaskFacts,
    SubtaskStatus,
)
from shared.events.envelope import EventData
from shared.events.outbox import Outgoing, publish_all
from shared.timers import Timer

log = logging.getLogger("services.cases.joint")
SYSTEM = "system"  # the actor of deemed consent (超时默认、缺席默认)
#: states in which the lead case may send out sub-tasks: its clock runs
DISPATCHING = ("in_progress", "extension_pending")


def subtask_facts(subtask: JointSubtask) -> SubtaskFacts:
    return SubtaskFacts(id=subtask.id, department=subtask.department, limit_days=subtask.limit_days,
                        dispatched_at=subtask.dispatched_at, due_at=subtask.due_at,
                        status=cast(SubtaskStatus, subtask.status), opinion=cast(Opinion | None, subtask.opinion))


async def _record(session: AsyncSession, case: Case, actor: tuple[str, str], action: str, now: datetime,
                  reason: str | None, details: dict[str, Any], events: Sequence[EventData]) -> None:
    """The lead case's audit entry (its state and stage unchanged) and the events, in this transaction."""
    stage = registry.stage_name(case)
    session.add(CaseHistory(case_no=case.case_no, at=now, actor_id=actor[0], actor_role=actor[1], action=action,
                            from_status=case.status, to_status=case.status, from_stage=stage, to_stage=stage,
                            reason=reason, details=details))
    case.updated_at = now
    await session.flush()
    await publish_all(session, registry.PRODUCER, [Outgoing(e, case.case_no, case.center_id) for e in events])


def _check_joint(case: Case) -> None:
    if case.kind != "joint":
        raise Conflict(f"case {case.case_no} is a {case.kind} case, not a joint case (联办件)", field="case_no",
                       code="not_joint")


def check_lead(principal: Principal, case: Case) -> None:
    """The lead case's handler, or a chief representative of its department, coordinates it."""
    registry.check_access(principal, case)
    if principal.role == Role.CLERK and principal.subject != case.handler_id:
        raise Forbidden(f"the lead case's handler ({case.handler_id}) or the chief representative coordinates "
                        f"case {case.case_no}", field="case_no", code="not_handler")
    _check_joint(case)


async def check_reader(session: AsyncSession, principal: Principal, case: Case) -> None:
    """The lead department's staff, and the staff of a department with a sub-task on the case, read its
    sub-tasks and bill; the roles not bound to a department read those of their centre."""
    principal.check_center(case.center_id)
    if principal.role in (Role.CLERK, Role.CHIEF_REP) and principal.department != case.department:
        asked = await session.scalar(select(exists().where(JointSubtask.case_no == case.case_no,
                                                           JointSubtask.department == principal.department)))
        if not asked:
            principal.check_department(case.department)


def _check_open(case: Case, what: str) -> None:
    if case.status in CLOSED_STATES:
        raise Conflict(f"case {case.case_no} is {case.status}: it cannot {what}", field="status",
                       code="case_closed")


# dispatch (分送)

async def dispatch(session: AsyncSession, ctx: registry.Context, principal: Principal, case: Case,
                   body: SubtaskIn) -> JointSubtask:
    """Send a department its sub-task, due `limit_days` working days after today, its timer armed."""
    check_lead(principal, case)
    if case.status not in DISPATCHING:
        raise Conflict(f"case {case.case_no} is {case.status}: sub-tasks go out while its clock runs "
                       f"({', '.join(DISPATCHING)})", field="status", code="lead_not_running", state=case.status)
    if body.department == case.department:
        raise Conflict(f"{body.department} leads case {case.case_no}: sub-tasks go to the other departments",
                       field="department", code="own_department")
    department = await session.get(Department, (case.center_id, body.department))
    if department is None or not department.active:
        raise NotFound(f"centre {case.center_id} has no active department {body.department}", field="department",
                       code="unknown_department")
    if body.item_code is not None:
        item = await session.get(Item, (case.center_id, body.item_code))
        if item is None or not item.active:
            raise NotFound(f"centre {case.center_id} has no active item {body.item_code}", field="item_code",
                           code="unknown_item")
        if item.department != body.department:
            raise Conflict(f"item {body.item_code} is {item.department}'s, not {body.department}'s",
                           field="item_code", code="wrong_department_item")
    if await session.scalar(select(JointSubtask.id).where(JointSubtask.case_no == case.case_no,
                                                          JointSubtask.department == body.department)):
        raise Conflict(f"case {case.case_no} has a sub-task for {body.department} already", field="department",
                       code="already_dispatched")
    now = clock.now()
    today = clock.local_date(now)
    subtask = JointSubtask(
        case_no=case.case_no, center_id=case.center_id, department=body.department, item_code=body.item_code,
        limit_days=body.limit_days, note=body.note, dispatched_at=now, dispatched_on=today,
        dispatched_by=principal.subject, due_at=ctx.calendar.due_at(today, body.limit_days, case.center_id),
        status="pending")
    session.add(subtask)
    await session.flush()
    await lead.arm(session, subtask)
    event = JointSubtaskDispatched(case=registry.facts(case), subtask=subtask_facts(subtask), by=principal.subject)
    await _record(session, case, (principal.subject, str(principal.role)), "dispatch-subtask", now, body.note,
                  {"subtask_id": subtask.id, "department": subtask.department, "limit_days": subtask.limit_days,
                   "due_at": subtask.due_at.isoformat(), "item_code": subtask.item_code}, [event])
    registry.count(session, case, "subtask_dispatched")
    return subtask


# the department's opinion (会签意见)

async def subtask_for_update(session: AsyncSession, case: Case, subtask_id: int) -> JointSubtask:
    subtask = await session.scalar(select(JointSubtask).where(JointSubtask.id == subtask_id,
                                                              JointSubtask.case_no == case.case_no)
                                   .with_for_update())
    if subtask is None:
        raise NotFound(f"case {case.case_no} has no sub-task {subtask_id}", field="subtask_id",
                       code="unknown_subtask")
    return subtask


def _check_pending(subtask: JointSubtask) -> None:
    if subtask.status != "pending":
        settled = (f"answered ({subtask.opinion})" if subtask.status == "answered"
                   else f"deemed to consent ({subtask.deemed_cause})")
        raise Conflict(f"sub-task {subtask.id} of {subtask.department} is {settled} already", field="subtask_id",
                       code="subtask_settled", state=subtask.status)


async def answer(session: AsyncSession, principal: Principal, case: Case, subtask_id: int,
                 body: OpinionIn) -> JointSubtask:
    """A clerk or chief representative of the sub-task's department gives its opinion."""
    principal.check_center(case.center_id)
    subtask = await subtask_for_update(session, case, subtask_id)
    principal.check_department(subtask.department)
    _check_pending(subtask)
    _check_open(case, "take opinions")
    now = clock.now()
    on_time = lead.answered_on_time(subtask, now)
    subtask.status, subtask.opinion, subtask.comment = "answered", body.opinion, body.comment
    subtask.answered_at, subtask.answered_by, subtask.on_time = now, principal.subject, on_time
    await lead.cancel(session, subtask)
    event = JointSubtaskAnswered(case=registry.facts(case), subtask=subtask_facts(subtask), opinion=body.opinion,
                                 comment=body.comment, by=principal.subject, on_time=on_time)
    await _record(session, case, (principal.subject, str(principal.role)), "subtask-opinion", now, body.comment,
                  {"subtask_id": subtask.id, "department": subtask.department, "opinion": body.opinion,
                   "on_time": on_time}, [event])
    registry.count(session, case, f"subtask_{body.opinion}")
    return subtask


# deemed consent (超时默认、缺席默认)

def _deem(subtask: JointSubtask, cause: Literal["timeout", "absent"], now: datetime,
          review_id: int | None = None) -> None:
    subtask.status, subtask.deemed_cause, subtask.review_id = "deemed_consented", cause, review_id
    subtask.answered_at, subtask.answered_by, subtask.on_time = now, SYSTEM, None


def _deemed_details(subtask: JointSubtask) -> dict[str, Any]:
    return {"subtask_id": subtask.id, "department": subtask.department, "cause": subtask.deemed_cause,
            "due_at": subtask.due_at.isoformat(), "review_id": subtask.review_id}


async def deem_on_timeout(session: AsyncSession, payload: dict[str, Any], timer: Timer) -> None:
    """The timer handler (超时默认): a sub-task still unanswered after its due moment is deemed to consent, by
    the system. Nothing happens for one answered meanwhile, or when the lead case is closed or paused (its
    resume re-arms the timer)."""
    # NOWAIT: a request holding the case (and waiting to cancel this very timer row) goes first; this timer
    # fails, and the runner tries it again after a back-off
    case = await session.scalar(select(Case).where(Case.case_no == payload["case_no"]).with_for_update(nowait=True))
    if case is None:
        return
    subtask = await session.scalar(select(JointSubtask).where(JointSubtask.id == payload["subtask_id"])
                                   .with_for_update())
    if subtask is None or subtask.status != "pending" or case.status in CLOSED_STATES + PAUSED_STATES:
        return
    now = clock.now()
    if now < lead.lapses_at(subtask.due_at):
        # its due moment moved later without the timer (it never should): fail, so the runner tries again later
        raise RuntimeError(f"sub-task {subtask.id} is due at {subtask.due_at.isoformat()}, not yet")
    _deem(subtask, "timeout", now)
    event = JointSubtaskDeemedConsented(case=registry.facts(case), subtask=subtask_facts(subtask), cause="timeout")
    await _record(session, case, (SYSTEM, SYSTEM), "deem-consent", now,
                  f"超时默认: {subtask.department} gave no opinion by {subtask.due_at.isoformat()}",
                  _deemed_details(subtask), [event])
    registry.count(session, case, "subtask_deemed_timeout")
    log.info("joint sub-task deemed to consent", extra={"event": "subtask_deemed_consented", "case_no": case.case_no,
                                                        "subtask_id": subtask.id, "cause": "timeout"})


# the joint review (联合审查)

async def record_review(session: AsyncSession, principal: Principal, case: Case,
                        body: JointReviewIn) -> tuple[JointReview, list[JointSubtask]]:
    """Record a joint review meeting; each invited department absent is deemed to consent for its open
    sub-task dispatched by the meeting (缺席默认). Returns the review and the sub-tasks it deemed."""
    check_lead(principal, case)
    _check_open(case, "hold a joint review")
    now = clock.now()
    if body.held_at > now:
        raise BadRequest("held_at is in the future: a review is recorded once held", field="held_at",
                         code="future_review")
    if body.held_at < case.accepted_at:
        raise BadRequest("held_at is before the case was accepted", field="held_at", code="review_before_case")
    for name, codes in (("invited", body.invited), ("attended", body.attended)):
        if len(set(codes)) != len(codes):
            raise BadRequest(f"{name} names a department twice", field=name, code="duplicate_department")
    if stray := [d for d in body.attended if d not in body.invited]:
        raise BadRequest(f"attended names {', '.join(stray)}, not invited", field="attended", code="not_invited")
    subtasks = {s.department: s for s in await lead.subtasks_of(session, case.case_no, for_update=True)}
    if unknown := [d for d in body.invited if d != case.department and d not in subtasks]:
        raise Conflict(f"{', '.join(unknown)} has no sub-task on case {case.case_no}: invite the departments the "
                       "case was dispatched to (and its own)", field="invited", code="no_subtask")
    absent = [d for d in body.invited if d not in body.attended]
    review = JointReview(case_no=case.case_no, held_at=body.held_at, invited=list(body.invited),
                         attended=list(body.attended), absent=absent, recorded_by=principal.subject, recorded_at=now)
    session.add(review)
    await session.flush()
    deemed = [s for d in absent if (s := subtasks.get(d)) is not None
              and s.status == "pending" and s.dispatched_at <= body.held_at]
    for subtask in deemed:
        _deem(subtask, "absent", now, review.id)
        await lead.cancel(session, subtask)
    facts = registry.facts(case)
    await _record(session, case, (principal.subject, str(principal.role)), "joint-review", now, None,
                  {"review_id": review.id, "held_at": body.held_at.isoformat(), "invited": review.invited,
                   "attended": review.attended, "absent": absent},
                  [JointReviewRecorded(case=facts, review_id=review.id, held_at=body.held_at,
                                       attended=review.attended, absent=absent, by=principal.subject)])
    for subtask in deemed:
        await _record(session, case, (SYSTEM, SYSTEM), "deem-consent", now,
                      f"缺席默认: {subtask.department} was absent from joint review {review.id}",
                      _deemed_details(subtask),
                      [JointSubtaskDeemedConsented(case=facts, subtask=subtask_facts(subtask), cause="absent",
                                                   review_id=review.id)])
        registry.count(session, case, "subtask_deemed_absent")
    return review, deemed


# one bill (一单收费)

FREE = {"免费", "不收费", "无", "无收费", "0", "0元"}
#: one plain amount in yuan, perhaps after a label ("工本费10元", "收费：200元"); nothing per unit or ranged
PLAIN_AMOUNT = re.compile(r"^[^\d每按至起~\-/／]*?[:：]?\s*(\d+(?:\.\d{1,2})?)\s*元[。.]?$")


def amount_of(fees: str | None) -> Decimal | None:
    """The fee text as an amount in yuan: free or unstated is 0; one plain amount is that; anything else
    (per unit, ranges, several amounts) is not a number (None) and stays as text on the bill."""
    text = (fees or "").strip()
    if not text or text in FREE:
        return Decimal("0.00")
    if match := PLAIN_AMOUNT.match(text):
        return Decimal(match[1]).quantize(Decimal("0.01"))
    return None


async def bill(session: AsyncSession, case: Case) -> BillOut:
    """The lead department's fees (the case's item) and each sub-task's department's (its item, if named)."""
    subtasks = await lead.subtasks_of(session, case.case_no)
    item_codes = {case.item_code, *(s.item_code for s in subtasks if s.item_code)}
    items = {i.code: i for i in (await session.scalars(select(Item).where(
        Item.center_id == case.center_id, Item.code.in_(item_codes)))).all()}
    departments = {d.code: d.name for d in (await session.scalars(select(Department).where(
        Department.center_id == case.center_id,
        Department.code.in_({case.department, *(s.department for s in subtasks)})))).all()}

    def line(department: str, role: str, item_code: str | None, subtask_id: int | None = None) -> BillLine:
        item = items.get(item_code) if item_code else None
        fees = item.fees if item else None
        return BillLine(department=department, department_name=departments.get(department), role=role,
                        subtask_id=subtask_id, item_code=item_code, item_name=item.name if item else None,
                        fees=fees, amount=amount_of(fees))

    lines = [line(case.department, "lead", case.item_code)]
    lines += [line(s.department, "subtask", s.item_code, s.id) for s in subtasks]
    total = sum((ln.amount for ln in lines if ln.amount is not None), Decimal("0.00"))
    return BillOut(case_no=case.case_no, lines=lines, total=total,
                   complete=all(ln.amount is not None for ln in lines))
