"""Ratings and the follow-ups of bad ones (差评回访): every evaluation.submitted is kept once (the satisfaction
KPI and the window scores read it); a rating of 2 不满意 or 1 非常不满意 opens a follow-up due in 15 working
days (23:59:59 local of the 15th working day after the rating's day), raises a bad_rating alert at once and
arms a durable timer at the due moment, whose firing raises the overrun alert if the follow-up is still open."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.monitor import alerts, ladder
from services.monitor.alerts import SYSTEM, NewAlert
from services.monitor.complaints import metrics
from services.monitor.complaints.models import Followup, Rating
from services.monitor.models import Alert
from shared import clock, timers
from shared.auth import Principal
from shared.db import get_or_404
from shared.errors import Conflict
from shared.events.catalog import EvaluationSubmitted, FollowupDue, FollowupFacts, FollowupOverdue
from shared.events.envelope import Envelope
from shared.events.outbox import publish

PRODUCER = "monitor"
FOLLOWUP_DAYS = 15
BAD = 2  # ratings at or below: 2 不满意, 1 非常不满意
TIMER = "monitor.followup_due"
RATING_WORDS = {1: "非常不满意", 2: "不满意", 3: "基本满意", 4: "满意", 5: "非常满意"}


def facts(f: Followup) -> FollowupFacts:
    return FollowupFacts(
        id=f.id, center_id=f.center_id, evaluation_id=f.evaluation_id, ticket_id=f.ticket_id, rating=f.rating,
        window=f.window, clerk_id=f.clerk_id, department=f.department, service_code=f.service_code,
        case_no=f.case_no, created_at=f.created_at, due_at=f.due_at, status="done" if f.status == "done" else "open")


def _where(f: Followup) -> str:
    return f"{f.window}号窗口" if f.window else f"“{f.service_code}”业务"


async def on_evaluation(session: AsyncSession, envelope: Envelope) -> None:
    """evaluation.submitted: one insert for every rating (a re-sent one inserts nothing); a bad one opens its
    follow-up (the same transaction, so a re-sent event never opens a second)."""
    data = envelope.payload()
    assert isinstance(data, EvaluationSubmitted)
    inserted = (await session.execute(pg_insert(Rating).values(
        evaluation_id=data.evaluation_id, center_id=data.center_id, ticket_id=data.ticket_id, window=data.window,
        clerk_id=data.clerk_id, post=data.post, department=data.department, service_code=data.service_code,
        rating=data.rating, case_no=data.case_no, channel=data.channel, submitted_at=data.submitted_at,
        business_date=data.business_date or clock.local_date(data.submitted_at),
    ).on_conflict_do_nothing(index_elements=[Rating.evaluation_id]).returning(Rating.evaluation_id))).first()
    if inserted is None or data.rating > BAD:
        return
    await _open(session, data)


async def _open(session: AsyncSession, data: EvaluationSubmitted) -> Followup:
    calendar = await ladder.CALENDARS.get(session)
    followup = Followup(
        evaluation_id=data.evaluation_id, center_id=data.center_id, ticket_id=data.ticket_id, rating=data.rating,
        window=data.window, clerk_id=data.clerk_id, department=data.department, service_code=data.service_code,
        case_no=data.case_no, created_at=data.submitted_at, status="open", overdue=False,
        due_at=calendar.due_at(clock.local_date(data.submitted_at), FOLLOWUP_DAYS, data.center_id))
    session.add(followup)
    await session.flush()
    await publish(session, PRODUCER, FollowupDue(followup=facts(followup)), subject=f"followup:{followup.id}",
                  center_id=followup.center_id)
    await alerts.raise_alert(session, NewAlert(
        cause_key=f"bad_rating:{followup.evaluation_id}", kind="bad_rating", center_id=followup.center_id,
        case_no=followup.case_no, window=followup.window, department=followup.department, due_at=followup.due_at,
        details=_details(followup),
        text=(f"差评：{_where(followup)}{clock.local_date(followup.created_at):%Y年%m月%d日}的服务被评为"
              f"“{RATING_WORDS[followup.rating]}”（票号{followup.ticket_id}），请于"
              f"{clock.local_date(followup.due_at):%Y年%m月%d日}前完成回访。")))
    await timers.schedule(session, TIMER, str(followup.id), followup.due_at, {"followup_id": followup.id})
    metrics.followup(session, followup.center_id, "opened")
    return followup


def _details(f: Followup) -> dict[str, Any]:
    return {"followup_id": f.id, "evaluation_id": f.evaluation_id, "clerk_id": f.clerk_id, "rating": f.rating}


async def on_due(session: AsyncSession, payload: dict[str, Any], timer: timers.Timer) -> None:
    """The follow-up's due moment: still open, its overrun alert (red) and followup.overdue, once."""
    followup = await session.get(Followup, int(timer.key), with_for_update=True)
    if followup is None or followup.status != "open":
        return
    raised = await alerts.raise_alert(session, NewAlert(
        cause_key=f"followup_overdue:{followup.id}", kind="bad_rating", level="red", center_id=followup.center_id,
        case_no=followup.case_no, window=followup.window, department=followup.department, due_at=followup.due_at,
        due_moment=timer.due_at, details=_details(followup),
        text=(f"回访超时：{_where(followup)}的差评（“{RATING_WORDS[followup.rating]}”，票号{followup.ticket_id}）"
              f"回访期限已于{clock.local_date(followup.due_at):%Y年%m月%d日}届满，尚未完成回访。")))
    if raised is None:
        return
    followup.overdue = True
    await publish(session, PRODUCER, FollowupOverdue(followup=facts(followup)), subject=f"followup:{followup.id}",
                  center_id=followup.center_id)
    metrics.followup(session, followup.center_id, "overdue")


async def get(session: AsyncSession, followup_id: int, *, for_update: bool = False) -> Followup:
    return await get_or_404(session, Followup, followup_id, field="followup_id", for_update=for_update)


async def done(session: AsyncSession, followup: Followup, principal: Principal, note: str) -> Followup:
    """回访 done: the follow-up closes with the note, its timer is cancelled and the system resolves its alerts."""
    if followup.status != "open":
        raise Conflict(f"follow-up {followup.id} is done already", field="followup_id", code="followup_done")
    followup.status, followup.done_at, followup.done_by, followup.note = "done", clock.now(), principal.subject, note
    await session.flush()
    await timers.cancel(session, TIMER, str(followup.id))
    await resolve_open_alerts(session, "bad_rating", "followup_id", followup.id, f"已回访（{principal.subject}）：{note}")
    metrics.followup(session, followup.center_id, "done")
    return followup


async def resolve_open_alerts(session: AsyncSession, kind: str, key: str, value: int, note: str) -> int:
    """The system resolves the open alerts of `kind` whose details name the record (`key` = `value`)."""
    found = (await session.scalars(
        select(Alert).where(Alert.kind == kind, Alert.status != "resolved", Alert.details[key].as_integer() == value)
        .order_by(Alert.id).with_for_update())).all()
    for alert in found:
        await alerts.resolve(session, alert, SYSTEM, note)
    return len(found)
