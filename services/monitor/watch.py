"""Watching cases against their clocks: the read model of cases (`case_clocks`) kept from the case events,
the durable timers armed for each due moment, and what each timer does when it fires.

How due work is found. Every moment that may need an alert is a durable timer (shared.timers: kind and
key, `due_at`, a partial index on the unfired ones): `warn_at` (early warning), `due_at` (overdue),
`stage_due_at` (stage overrun), `follow_up_at` (a forwarded case), `special_limit_at` (a 特别程序 pause).
The timer runner takes due timers in due order with `FOR UPDATE SKIP LOCKED`, so any number of monitor
workers share them, an open case costs nothing until its moment, and after downtime the missed moments
fire oldest first. A timer carries the clock version it was armed for; a new clock version (a pause, a
resume, an extension, a calendar change) re-arms the moments, and a pause cancels them (nothing fires
while paused). A timer that fires checks the read model again (still open, not paused, same version) and
raises its alert under a cause key with the clock version, so a repeat never raises twice.

Decisions where DOMAIN.md is silent: an early warning whose case is already past due when it fires is
not raised (the overdue alert says more); a case that completes resolves its open clock alerts (by the
system, with the outcome); a new clock version resolves the early warnings and stage alerts of the old one
(the moments moved); an overdue alert stays until the case closes or a person resolves it, and its
overdue working days are recounted every morning."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.monitor import alerts, ladder
from services.monitor.alerts import NewAlert
from services.monitor.models import Alert, CaseClock, Refusal
from shared import clock, timers
from shared.calendar.engine import WorkCalendar
from shared.db import driver_connection
from shared.events.catalog import (
    AlertKind,
    CalendarFallbackUsed,
    CaseCompleted,
    CaseFacts,
    CaseForwarded,
    CasePaused,
    CaseRefused,
    Handler,
)
from shared.events.envelope import Envelope

PAUSED = frozenset({"supplement", "special", "forwarded"})
CLOSED = frozenset({"completed", "delivered", "withdrawn"})
CLOCK_KINDS = ("monitor.warn", "monitor.due", "monitor.stage")


def _date(at: datetime) -> str:
    return clock.local_date(at).strftime("%Y年%m月%d日")


def handler_of(row: CaseClock) -> Handler:
    return Handler(id=row.handler_id, display_name=row.handler_name)


def case_alert(row: CaseClock, cause_key: str, kind: AlertKind, text: str, **more: Any) -> NewAlert:
    """An alert about a case: what every case alert says of it (centre, case, clock version, window,
    department, handler, item), and `more` (due_at, overdue_days, due_moment, details)."""
    return NewAlert(cause_key=cause_key, kind=kind, text=text, center_id=row.center_id, case_no=row.case_no,
                    clock_version=row.clock_version, window=row.window, department=row.department,
                    handler=handler_of(row), item_name=row.item_name, **more)


# --- the read model ----------------------------------------------------------------------------------------

_UPSERT = """
    WITH old AS (
        SELECT clock_version, paused, closed_at, stage_index, warn_at, due_at, stage_due_at
        FROM case_clocks WHERE case_no = $1
    ), up AS (
        INSERT INTO case_clocks (case_no, center_id, department, item_code, item_name, kind, status, stage,
                                 stage_index, handler_id, handler_name, "window", accepted_at, due_at, legal_due_at,
                                 warn_at, stage_due_at, paused, clock_version, imported, overdue_at_import, expedited,
                                 closed_at, updated_at, promised_limit_days, legal_limit_days, special_count)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
                $23, $24, $25, $26, 0)
        ON CONFLICT (case_no) DO UPDATE SET
            center_id = excluded.center_id, department = excluded.department, item_code = excluded.item_code,
            item_name = excluded.item_name, kind = excluded.kind, status = excluded.status, stage = excluded.stage,
            stage_index = excluded.stage_index, handler_id = excluded.handler_id,
            handler_name = excluded.handler_name, "window" = excluded."window", accepted_at = excluded.accepted_at,
            due_at = excluded.due_at, legal_due_at = excluded.legal_due_at, warn_at = excluded.warn_at,
            stage_due_at = excluded.stage_due_at, paused = excluded.paused, clock_version = excluded.clock_version,
            imported = excluded.imported, overdue_at_import = excluded.overdue_at_import,
            expedited = excluded.expedited, updated_at = excluded.updated_at,
            promised_limit_days = excluded.promised_limit_days, legal_limit_days = excluded.legal_limit_days,
            -- closed when it first closed (completed, then delivered); open again never happens
            closed_at = CASE WHEN excluded.closed_at IS NULL THEN NULL
                             ELSE coalesce(case_clocks.closed_at, excluded.closed_at) END
        WHERE case_clocks.clock_version <= excluded.clock_version
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM up) AS written, old.* FROM (SELECT 1) AS one LEFT JOIN old ON true
"""

# the clock timers of one case in one statement: cancelled kinds deleted (unfired), armed kinds upserted
# (re-armed if they had fired: a new clock version is a new moment)
_TIMERS = """
    WITH gone AS (
        DELETE FROM timers WHERE key = $1 AND kind = ANY($2::text[]) AND fired_at IS NULL
    )
    INSERT INTO timers (kind, key, due_at, payload, created_at, attempts)
    SELECT k, $1, d, p::jsonb, $6, 0 FROM unnest($3::text[], $4::timestamptz[], $5::text[]) AS t(k, d, p)
    ON CONFLICT (kind, key) DO UPDATE SET due_at = excluded.due_at, payload = excluded.payload, attempts = 0,
        last_error = NULL, fired_at = NULL
"""


@dataclass(frozen=True)
class Moments:
    """What a case's clock timers depend on."""

    version: int
    paused: bool
    open: bool
    stage_index: int
    warn_at: datetime | None
    due_at: datetime
    stage_due_at: datetime | None


async def apply_case_event(session: AsyncSession, envelope: Envelope) -> None:
    """Any case.* event: the case's row follows its facts (the latest clock), then the timers follow the row,
    then what the event itself brings (a follow-up moment, a special procedure, a refusal). The row and the
    timers are two statements straight to the driver (the consumer's hot path: one case event of a county's
    thousands a day); the rarer events go through the ORM after them."""
    data = envelope.payload()
    case: CaseFacts = data.case  # type: ignore[attr-defined]
    closed_at = envelope.occurred_at if case.status in CLOSED else None
    db = await driver_connection(session)
    old = await db.fetchrow(
        _UPSERT, case.case_no, case.center_id, case.department, case.item.code, case.item.name, case.kind,
        case.status, case.stage, case.stage_index, case.handler.id, case.handler.display_name, case.window,
        case.accepted_at, case.due_at, case.legal_due_at, case.warn_at, case.stage_due_at, case.status in PAUSED,
        case.clock_version, case.imported, case.overdue_at_import, case.expedited, closed_at,
        envelope.occurred_at, case.item.promised_limit_days, case.item.legal_limit_days)
    assert old is not None
    if not old["written"]:
        return  # an older clock than the one applied: cases publishes in order, so only a replay gets here
    before = None if old["clock_version"] is None else Moments(
        old["clock_version"], old["paused"], old["closed_at"] is None, old["stage_index"], old["warn_at"],
        old["due_at"], old["stage_due_at"])
    after = Moments(case.clock_version, case.status in PAUSED, closed_at is None and (
        before is None or before.open), case.stage_index, case.warn_at, case.due_at, case.stage_due_at)
    if after != before:
        await _arm(session, db, case.case_no, case.status, before, after)
    if envelope.type in _SPECIAL_TYPES:
        row = await session.get(CaseClock, case.case_no)
        assert row is not None
        await _special_event(session, row, data, envelope)


_SPECIAL_TYPES = frozenset({"case.forwarded", "case.forward_result_recorded", "case.paused", "case.resumed",
                            "case.refused", "case.completed"})


async def _special_event(session: AsyncSession, row: CaseClock, data: Any, envelope: Envelope) -> None:
    if isinstance(data, CaseForwarded):
        row.follow_up_at = data.follow_up_at
        await timers.schedule(session, "monitor.follow_up", row.case_no, data.follow_up_at,
                              {"follow_up_at": data.follow_up_at.isoformat()}, rearm=True)
    elif envelope.type == "case.forward_result_recorded":
        row.follow_up_at = None
        await timers.cancel(session, "monitor.follow_up", row.case_no)
    elif isinstance(data, CasePaused) and data.pause_kind == "special":
        row.special_limit_at, row.special_count = data.special_limit_at, data.special_count
        if data.special_limit_at is not None:
            await timers.schedule(session, "monitor.special", row.case_no, data.special_limit_at,
                                  {"count": data.special_count}, rearm=True)
        if data.special_count >= 3:
            await _special_alert(session, row, "third")
    elif envelope.type == "case.resumed" and row.special_limit_at is not None:
        row.special_limit_at = None
        await timers.cancel(session, "monitor.special", row.case_no)
    elif isinstance(data, CaseRefused):
        await _refused(session, row, data, envelope.occurred_at)
    elif isinstance(data, CaseCompleted):  # what the KPIs count: on time, how late, the result
        row.completed_at, row.result = data.completed_at, data.result
        row.completed_late, row.overdue_working_days = data.completed_late, data.overdue_working_days
    await session.flush()


async def _arm(session: AsyncSession, db: Any, case_no: str, status: str, before: Moments | None,
               after: Moments) -> None:
    """The clock timers as the row now says: none while paused or closed; else warn, due and stage, each
    written only when its moment changed."""
    cancel: list[str] = []
    arm: list[tuple[str, datetime, str]] = []
    running = not after.paused and after.open
    was_running = before is not None and not before.paused and before.open
    same_clock = was_running and before is not None and before.version == after.version
    version = json.dumps({"clock_version": after.version})
    if not running:
        cancel += list(CLOCK_KINDS)
        if not after.open:
            cancel += ["monitor.follow_up", "monitor.special"]
    else:
        if not (same_clock and before is not None and before.warn_at == after.warn_at and before.due_at == after.due_at):
            if after.warn_at is not None and after.warn_at < after.due_at:
                arm.append(("monitor.warn", after.warn_at, version))
            else:
                cancel.append("monitor.warn")
        if not (same_clock and before is not None and before.due_at == after.due_at):
            arm.append(("monitor.due", after.due_at, version))
        if not (same_clock and before is not None and before.stage_index == after.stage_index
                and before.stage_due_at == after.stage_due_at):
            if after.stage_due_at is not None:
                arm.append(("monitor.stage", after.stage_due_at,
                            json.dumps({"clock_version": after.version, "stage_index": after.stage_index})))
            else:
                cancel.append("monitor.stage")
    if cancel or arm:
        await db.execute(_TIMERS, case_no, cancel, [k for k, _, _ in arm], [d for _, d, _ in arm],
                         [p for _, _, p in arm], clock.now())
    if before is not None and before.open and not after.open:
        await alerts.resolve_for_case(session, case_no, ("early_warning", "stage_overrun", "overdue"),
                                      f"办件已{_closed_word(status)}")
    elif before is not None and after.open and before.version != after.version:
        await alerts.resolve_for_case(session, case_no, ("early_warning", "stage_overrun"),
                                      "办件时限已重新计算（新的时钟版本）", older_than_version=after.version)


def _closed_word(status: str) -> str:
    return {"completed": "办结", "delivered": "送达", "withdrawn": "撤回"}.get(status, "关闭")


# --- what the timers do --------------------------------------------------------------------------------

async def _live(session: AsyncSession, timer: timers.Timer) -> CaseClock | None:
    """The case the timer is about, if the moment still stands: open, not paused, the same clock."""
    row = await session.get(CaseClock, timer.key)
    if row is None or row.closed_at is not None or row.paused:
        return None
    if timer.payload.get("clock_version") not in (None, row.clock_version):
        return None
    return row


async def on_warn(session: AsyncSession, payload: dict[str, Any], timer: timers.Timer) -> None:
    row = await _live(session, timer)
    if row is None or clock.now() >= row.due_at:
        return
    await alerts.raise_alert(session, case_alert(
        row, f"warn:{row.case_no}:v{row.clock_version}", "early_warning", due_at=row.due_at, due_moment=timer.due_at,
        text=f"预警：办件{row.case_no}（{row.item_name}，承办人{row.handler_name}）将于{_date(row.due_at)}到期，请抓紧办理。"))


async def overdue_days(session: AsyncSession, row: CaseClock, calendar: WorkCalendar | None = None) -> int:
    """Working days late as of today: the working days d with due date < d <= today (0 on the due day)."""
    calendar = calendar or await ladder.CALENDARS.get(session)
    return calendar.working_days_between(clock.local_date(row.due_at), clock.today_local(), row.center_id)


async def on_due(session: AsyncSession, payload: dict[str, Any], timer: timers.Timer) -> None:
    row = await _live(session, timer)
    if row is None:
        return
    days = await overdue_days(session, row)
    alert = await alerts.raise_alert(session, case_alert(
        row, f"overdue:{row.case_no}:v{row.clock_version}", "overdue", due_at=row.due_at, overdue_days=days,
        due_moment=timer.due_at,
        text=(f"超时：办件{row.case_no}（{row.item_name}，承办人{row.handler_name}）承诺时限已于{_date(row.due_at)}届满，"
              f"仍未办结{f'，已超时{days}个工作日' if days else ''}。")))
    await ladder.overdue_finding(session, row, days, alert.id if alert is not None else None)


async def on_stage(session: AsyncSession, payload: dict[str, Any], timer: timers.Timer) -> None:
    row = await _live(session, timer)
    if row is None or payload.get("stage_index") != row.stage_index or row.stage_due_at is None:
        return
    await alerts.raise_alert(session, case_alert(
        row, f"stage:{row.case_no}:{row.stage_index}:v{row.clock_version}", "stage_overrun", due_at=row.stage_due_at,
        due_moment=timer.due_at,
        text=f"环节超时：办件{row.case_no}的“{row.stage}”环节时限已于{_date(row.stage_due_at)}届满。"))


async def on_follow_up(session: AsyncSession, payload: dict[str, Any], timer: timers.Timer) -> None:
    row = await session.get(CaseClock, timer.key)
    if row is None or row.status != "forwarded" or row.follow_up_at is None:
        return
    await alerts.raise_alert(session, case_alert(
        row, f"followup:{row.case_no}:{row.follow_up_at.isoformat()}", "follow_up", due_at=row.follow_up_at,
        due_moment=timer.due_at,
        text=f"跟踪提醒：上报件{row.case_no}（{row.item_name}）至{_date(row.follow_up_at)}仍未收到上级办理结果，请跟踪。"))


async def on_special(session: AsyncSession, payload: dict[str, Any], timer: timers.Timer) -> None:
    row = await session.get(CaseClock, timer.key)
    if row is None or row.status != "special" or row.special_limit_at is None:
        return
    await _special_alert(session, row, "over_limit", due_moment=timer.due_at)


async def _special_alert(session: AsyncSession, row: CaseClock, why: str, *,
                         due_moment: datetime | None = None) -> None:
    text = (f"特别程序：办件{row.case_no}（{row.item_name}）已是第{row.special_count}次特别程序，请核查。" if why == "third"
            else f"特别程序超时：办件{row.case_no}（{row.item_name}）的特别程序超过时限"
                 f"（{_date(row.special_limit_at or clock.now())}）仍未结束。")
    await alerts.raise_alert(session, case_alert(
        row, f"special:{why}:{row.case_no}:{row.special_count}", "special_procedure", text, due_moment=due_moment))


async def _refused(session: AsyncSession, row: CaseClock, data: CaseRefused, at: datetime) -> None:
    """重点跟踪: the same applicant (keyed hash) refused twice or more for one item."""
    session.add(Refusal(case_no=row.case_no, center_id=row.center_id, item_code=row.item_code,
                        applicant_hash=data.case.applicant_hash, refused_at=at))
    await session.flush()
    cases = (await session.scalars(
        select(Refusal.case_no).where(Refusal.center_id == row.center_id, Refusal.item_code == row.item_code,
                                      Refusal.applicant_hash == data.case.applicant_hash)
        .order_by(Refusal.refused_at))).all()
    if len(cases) < 2:
        return
    await alerts.raise_alert(session, NewAlert(
        cause_key=f"refusal:{row.center_id}:{row.item_code}:{data.case.applicant_hash}:{len(cases)}",
        kind="repeated_refusal", center_id=row.center_id, case_no=row.case_no, department=row.department,
        handler=handler_of(row), item_name=row.item_name, details={"cases": list(cases)},
        text=(f"重点跟踪：同一申请人（{data.case.applicant_masked}）办理“{row.item_name}”已被退件{len(cases)}次"
              f"（{'、'.join(cases)}）。")))


async def on_calendar_missing(session: AsyncSession, envelope: Envelope) -> None:
    data = envelope.payload()
    assert isinstance(data, CalendarFallbackUsed)
    year = data.year
    await alerts.raise_alert(session, NewAlert(
        cause_key=f"calendar:{year}", kind="calendar_missing", center_id=None,
        text=f"系统告警：{year}年的法定节假日安排尚未导入，该年度的办件时限暂按周一至周五计算，请系统管理员尽快导入。"))


# --- every morning: overdue days -------------------------------------------------------------------------

async def recount_overdue_days(session: AsyncSession, _due: datetime) -> None:
    """The periodic job (daily, 00:05 local): each open overdue alert's working days late, as of today."""
    calendar = await ladder.CALENDARS.get(session)
    rows = (await session.execute(
        select(Alert.id, CaseClock).join(CaseClock, CaseClock.case_no == Alert.case_no)
        .where(Alert.kind == "overdue", Alert.status != "resolved", CaseClock.closed_at.is_(None)))).all()
    for alert_id, row in rows:
        await alerts.set_overdue_days(session, alert_id, await overdue_days(session, row, calendar))
    await ladder.recount_finding_days(session, calendar)


DAILY_ANCHOR = datetime.combine(datetime(2026, 1, 1).date(), time(0, 5), tzinfo=clock.LOCAL_TZ)
OVERDUE_DAYS_JOB = timers.PeriodicJob("monitor.overdue_days", timedelta(days=1), recount_overdue_days,
                                      anchor=DAILY_ANCHOR, catch_up="latest")

TIMER_HANDLERS: dict[str, timers.TimerHandler] = {
    "monitor.warn": on_warn, "monitor.due": on_due, "monitor.stage": on_stage,
    "monitor.follow_up": on_follow_up, "monitor.special": on_special,
    "monitor.rectify": ladder.on_rectification_due,
}
