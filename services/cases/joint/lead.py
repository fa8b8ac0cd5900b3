"""The lead case's side of joint approval (联办件), as the registry calls it: a joint item is accepted only at
a window flagged for joint approval; the sub-tasks' clock (each its own limit in working days from its
dispatch date, stopped with the lead case: DOMAIN.md "How the clock counts") and the durable timer that deems
an unanswered one consented once its due moment has passed (超时默认); and what the lead case's moves
(services/cases/registry.act) do about its sub-tasks: the completion waits for them, a pause stops their
timers, a resume moves their due dates by the working days paused and re-arms the timers, a close stops them.

    sub-task due = the end of the (limit + Σ lead pauses begun on or after the dispatch date)-th working day
                   after the dispatch date
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.cases import deadlines
from services.cases.joint.models import JointSubtask
from services.cases.models import Case, CasePause, WindowCopy
from services.cases.transitions import CLOSED_STATES, PAUSED_STATES
from shared import clock, timers
from shared.calendar.engine import WorkCalendar
from shared.errors import Conflict

TIMER_KIND = "joint.deemed_consent"
#: an answer is on time up to the last instant of the due date; the timer fires the second after it
GRACE = timedelta(seconds=1)


async def check_joint_window(session: AsyncSession, center_id: str, window: str | None) -> None:
    """A joint item is accepted only at an active window the queue flags for joint approval (联办窗口)."""
    if window is None:
        raise Conflict("a joint item (联办件) is accepted at a window flagged for joint approval: sign in at one",
                       field="window", code="no_window")
    found = await session.get(WindowCopy, (center_id, window))
    if found is None or not found.active or not found.joint_approval:
        raise Conflict(f"window {window} is not flagged for joint approval: a joint item (联办件) is accepted "
                       "only at a joint window", field="window", code="not_joint_window")


def timer_key(subtask_id: int) -> str:
    return f"subtask:{subtask_id}"


def lapses_at(due_at: datetime) -> datetime:
    """The moment an unanswered sub-task is deemed to consent: just after its due moment."""
    return due_at + GRACE


def due_at(calendar: WorkCalendar, center_id: str, dispatched_on: date, limit_days: int,
           pauses: Sequence[CasePause]) -> datetime:
    """A sub-task's due moment, its limit moved by the lead case's finished pauses begun since the dispatch."""
    stops = tuple(deadlines.Pause(p.paused_on, p.resumed_on) for p in pauses)
    shift = deadlines.shift_of(calendar, center_id, stops, since=dispatched_on)
    return calendar.due_at(dispatched_on, limit_days + shift, center_id)


async def arm(session: AsyncSession, subtask: JointSubtask) -> None:
    """(Re-)arm the sub-task's deemed-consent timer for its due moment, in the caller's transaction."""
    await timers.schedule(session, TIMER_KIND, timer_key(subtask.id), lapses_at(subtask.due_at),
                          {"case_no": subtask.case_no, "subtask_id": subtask.id}, rearm=True)


async def cancel(session: AsyncSession, subtask: JointSubtask) -> None:
    """Stop the sub-task's timer: it is settled, or the lead case's clock stopped."""
    await timers.cancel(session, TIMER_KIND, timer_key(subtask.id))


async def subtasks_of(session: AsyncSession, case_no: str, *, open_only: bool = False,
                      for_update: bool = False) -> list[JointSubtask]:
    query = select(JointSubtask).where(JointSubtask.case_no == case_no)
    if open_only:
        query = query.where(JointSubtask.status == "pending")
    if for_update:
        query = query.with_for_update()
    return list((await session.scalars(query.order_by(JointSubtask.id))).all())


async def check_settled(session: AsyncSession, case: Case) -> None:
    """Completing a joint case as approved waits for every sub-task answered or deemed consented, and for no
    department disagreeing (a disagreeing department's case is refused through the refusal approval)."""
    subtasks = await subtasks_of(session, case.case_no)
    pending = [s for s in subtasks if s.status == "pending"]
    if pending:
        raise Conflict(f"joint case {case.case_no} waits for the opinion of "
                       f"{', '.join(s.department for s in pending)}", field="subtasks", code="subtasks_open",
                       open=[{"id": s.id, "department": s.department, "due_at": s.due_at.isoformat()}
                             for s in pending])
    disagreed = [s for s in subtasks if s.opinion == "disagree"]
    if disagreed:
        raise Conflict(f"{', '.join(s.department for s in disagreed)} disagreed: the joint case completes only "
                       "as refused, through propose-refusal and the chief representative's approve-refusal",
                       field="subtasks", code="subtask_disagreed",
                       disagreed=[{"id": s.id, "department": s.department} for s in disagreed])


async def before_move(session: AsyncSession, case: Case, action: str, body: Any) -> None:
    """What a joint lead case's move must wait for, checked before the move is made."""
    completes_approved = action == "complete" or (
        action == "record-forward-result" and getattr(body, "result", None) == "approved")
    if completes_approved:
        await check_settled(session, case)


async def after_move(session: AsyncSession, calendar: WorkCalendar, case: Case, from_status: str, to_status: str,
                     pauses: Sequence[CasePause]) -> dict[str, Any]:
    """Follow the lead case's move with its open sub-tasks; returns what to add to the move's audit entry."""
    closed = to_status in CLOSED_STATES
    paused, was_paused = to_status in PAUSED_STATES, from_status in PAUSED_STATES
    if not closed and paused == was_paused:
        return {}
    subtasks = await subtasks_of(session, case.case_no, open_only=True, for_update=True)
    if not subtasks:
        return {}
    if closed or paused:
        for subtask in subtasks:
            await cancel(session, subtask)
        key = "subtasks_left_open" if closed else "subtask_clocks_stopped"
        return {key: [s.department for s in subtasks]}
    moved = []
    for subtask in subtasks:
        due = due_at(calendar, case.center_id, subtask.dispatched_on, subtask.limit_days, pauses)
        if due != subtask.due_at:
            moved.append({"id": subtask.id, "department": subtask.department,
                          "previous_due_at": subtask.due_at.isoformat(), "due_at": due.isoformat()})
            subtask.due_at = due
        await arm(session, subtask)
    return {"subtasks_moved": moved} if moved else {}


def answered_on_time(subtask: JointSubtask, now: datetime | None = None) -> bool:
    return (now or clock.now()) < lapses_at(subtask.due_at)
