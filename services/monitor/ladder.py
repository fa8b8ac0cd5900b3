"""Findings and the sanction ladder (问责): "经查实后第一次提出警告，第二次予以通报批评". The rules; they write
state, audit rows and outbox rows in the caller's transaction and never commit.

- An overdue case makes one finding against its department naming the handler (cause key overdue:<case>);
  the supervision office records others by hand (现场抽查, discipline, media exposure) against a department
  or one of its windows, with evidence.
- A finding is confirmed or excused with a reason. In a centre set to automatic verification
  (对超时办结直接生成问责) an overdue finding is confirmed by the system at once, except one on a case
  imported already overdue (before go-live), which waits for a person.
- Per department and calendar year of the finding's moment (the overdue moment, local year), the confirmed
  findings whose sanction is not revoked, in order of that moment (then id), are the ladder: the first
  issues 警告, each later one 通报批评. The ladder is recomputed under a per-department-and-year lock (a
  transaction-scoped advisory lock) after every confirmation, excuse and revocation: a sanction whose level
  changes is reissued (`sanction.reclassified`, audited, with a corrected notice). An excused finding's
  sanction is revoked.
- Each sanction has a notice complete enough to send as is, its recipients (the department's heads and the
  supervision office) and a rectification deadline (限时整改: the centre's rectification days, default 5
  working days, ending 23:59:59 local), watched by a durable timer: not rectified by then raises an alert.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.monitor import alerts, metrics
from services.monitor.alerts import NewAlert
from services.monitor.models import (
    CaseClock,
    CenterCopy,
    DepartmentCopy,
    Finding,
    Sanction,
    SupervisionSettings,
)
from shared import clock, timers
from shared.auth import Principal
from shared.calendar.engine import WorkCalendar
from shared.calendar.store import CalendarCache
from shared.db import get_or_404
from shared.errors import Conflict, NotFound
from shared.events.catalog import (
    FindingConfirmed,
    FindingExcused,
    FindingFacts,
    FindingRecorded,
    Handler,
    SanctionFacts,
    SanctionIssued,
    SanctionReclassified,
    SanctionRectified,
    SanctionRevoked,
)
from shared.events.outbox import publish
from shared.tables import audit_log

PRODUCER = "monitor"
SYSTEM = "system"
DEFAULT_RECTIFICATION_DAYS = 5
CALENDARS = CalendarCache()
"""The calendar the monitor counts working days with, reloaded only when its version moves (one query a use
instead of reading every table each time a timer fires)."""
SOURCE_WORDS = {"overdue": "超时办件", "spot_check": "现场抽查", "discipline": "违反工作纪律", "media": "媒体曝光"}
LEVEL_WORDS = {"warning": "警告", "criticism": "通报批评"}


# --- settings ------------------------------------------------------------------------------------------------

async def settings_of(session: AsyncSession, center_id: str) -> tuple[str, int]:
    """(verification manual | auto, rectification days) of the centre; manual and 5 until set."""
    row = await session.get(SupervisionSettings, center_id)
    return (row.verification, row.rectification_days) if row else ("manual", DEFAULT_RECTIFICATION_DAYS)


# --- facts ----------------------------------------------------------------------------------------------------

def _handler(hid: str | None, name: str | None) -> Handler | None:
    return Handler(id=hid, display_name=name or hid) if hid else None


async def _department_name(session: AsyncSession, center_id: str, code: str) -> str | None:
    row = await session.get(DepartmentCopy, (center_id, code))
    return row.name if row else None


async def finding_facts(session: AsyncSession, f: Finding) -> FindingFacts:
    return FindingFacts(
        id=f.id, center_id=f.center_id, source=f.source,
        department=f.department, department_name=await _department_name(session, f.center_id, f.department),
        window=f.window, case_no=f.case_no, item_name=f.item_name, handler=_handler(f.handler_id, f.handler_name),
        occurred_at=f.occurred_at, overdue_days=f.overdue_days, status=f.status,
        imported_overdue=f.imported_overdue, text=f.text)


async def sanction_facts(session: AsyncSession, s: Sanction, f: Finding) -> SanctionFacts:
    return SanctionFacts(
        id=s.id, center_id=s.center_id, department=s.department,
        department_name=await _department_name(session, s.center_id, s.department), year=s.year,
        level=s.level, ordinal=s.ordinal, finding_id=f.id, case_no=f.case_no,
        item_name=f.item_name, handler=_handler(f.handler_id, f.handler_name), overdue_days=f.overdue_days,
        notice_no=s.notice_no, notice_text=s.notice_text, recipients=list(s.recipients), issued_at=s.issued_at,
        rectification_due_at=s.rectification_due_at, status=s.status)


async def _audit(session: AsyncSession, actor: str, action: str, entity: str, entity_id: int, center_id: str,
                 before: dict[str, Any] | None, after: dict[str, Any] | None, reason: str | None) -> None:
    await session.execute(insert(audit_log).values(
        at=clock.now(), actor=actor, action=action, entity=entity, entity_id=str(entity_id), center_id=center_id,
        before=before, after=after, reason=reason))


# --- findings --------------------------------------------------------------------------------------------------

async def overdue_finding(session: AsyncSession, row: CaseClock, days: int, alert_id: int | None) -> Finding | None:
    """The finding of an overdue case (once per case); confirmed at once in auto mode unless the case was
    imported already overdue."""
    imported_overdue = row.imported and row.overdue_at_import
    values = {
        "cause_key": f"overdue:{row.case_no}", "center_id": row.center_id, "source": "overdue",
        "department": row.department, "window": row.window, "case_no": row.case_no, "item_name": row.item_name,
        "handler_id": row.handler_id, "handler_name": row.handler_name, "occurred_at": row.due_at,
        "year": clock.local_date(row.due_at).year, "overdue_days": days, "status": "pending",
        "imported_overdue": imported_overdue, "recorded_by": SYSTEM, "recorded_at": clock.now(),
        "alert_id": alert_id,
        "text": (f"{row.item_name}（办件编号{row.case_no}，承办人{row.handler_name}）承诺时限于"
                 f"{clock.local_date(row.due_at):%Y年%m月%d日}届满未办结。"
                 + ("该件为系统上线前已超时的导入件。" if imported_overdue else "")),
    }
    stmt = pg_insert(Finding).values(**values).on_conflict_do_nothing(index_elements=["cause_key"]).returning(Finding.id)
    finding_id = (await session.execute(stmt)).scalar_one_or_none()
    if finding_id is None:
        return None
    finding = await session.get(Finding, finding_id)
    assert finding is not None
    await publish(session, PRODUCER, FindingRecorded(finding=await finding_facts(session, finding), by=SYSTEM),
                  subject=f"finding:{finding.id}", center_id=finding.center_id)
    metrics.finding(session, finding.center_id, finding.source, "recorded")
    verification, _ = await settings_of(session, row.center_id)
    if verification == "auto" and not imported_overdue:
        await confirm(session, finding, SYSTEM, "自动问责（对超时办结直接生成问责）")
    return finding


async def record(session: AsyncSession, principal: Principal, *, center_id: str, source: str, department: str,
                 window: str | None, occurred_at: datetime | None, text_: str, case_no: str | None) -> Finding:
    """A finding recorded by hand (spot check, discipline, media exposure) by the supervision office."""
    if await session.get(DepartmentCopy, (center_id, department)) is None:
        raise NotFound(f"no department {department} in centre {center_id}", field="department",
                       code="unknown_department")
    now = clock.now()
    at = occurred_at or now
    if at > now:
        raise Conflict("occurred_at lies in the future", field="occurred_at", code="in_future")
    finding = Finding(center_id=center_id, source=source, department=department, window=window, case_no=case_no,
                      occurred_at=at, year=clock.local_date(at).year, status="pending", imported_overdue=False,
                      text=text_, recorded_by=principal.subject, recorded_at=now)
    session.add(finding)
    await session.flush()
    await _audit(session, principal.subject, "record", "finding", finding.id, center_id, None,
                 {"source": source, "department": department, "window": window}, None)
    await publish(session, PRODUCER, FindingRecorded(finding=await finding_facts(session, finding),
                                                     by=principal.subject),
                  subject=f"finding:{finding.id}", center_id=center_id)
    metrics.finding(session, center_id, source, "recorded")
    return finding


async def get_finding(session: AsyncSession, finding_id: int, *, for_update: bool = False) -> Finding:
    return await get_or_404(session, Finding, finding_id, field="finding_id", for_update=for_update)


async def confirm(session: AsyncSession, finding: Finding, by: str, reason: str | None) -> Finding:
    if finding.status != "pending":
        raise Conflict(f"finding {finding.id} is {finding.status}: only a pending finding is confirmed",
                       field="finding_id", code=f"finding_{finding.status}")
    finding.status, finding.decided_by, finding.decided_at, finding.decision_reason = "confirmed", by, clock.now(), reason
    await session.flush()
    await _audit(session, by, "confirm", "finding", finding.id, finding.center_id, {"status": "pending"},
                 {"status": "confirmed"}, reason)
    await publish(session, PRODUCER, FindingConfirmed(finding=await finding_facts(session, finding), by=by,
                                                      reason=reason),
                  subject=f"finding:{finding.id}", center_id=finding.center_id)
    metrics.finding(session, finding.center_id, finding.source, "confirmed")
    await relevel(session, finding.center_id, finding.department, finding.year, by,
                  f"第{finding.id}号问题经查实")
    return finding


async def excuse(session: AsyncSession, finding: Finding, by: str, reason: str) -> Finding:
    """Excused (免责) with a reason: pending, or confirmed (its sanction is revoked and the ladder moves up)."""
    if finding.status == "excused":
        raise Conflict(f"finding {finding.id} is excused already", field="finding_id", code="finding_excused")
    before = finding.status
    finding.status, finding.decided_by, finding.decided_at, finding.decision_reason = "excused", by, clock.now(), reason
    await session.flush()
    await _audit(session, by, "excuse", "finding", finding.id, finding.center_id, {"status": before},
                 {"status": "excused"}, reason)
    await publish(session, PRODUCER, FindingExcused(finding=await finding_facts(session, finding), by=by,
                                                    reason=reason),
                  subject=f"finding:{finding.id}", center_id=finding.center_id)
    metrics.finding(session, finding.center_id, finding.source, "excused")
    sanction = (await session.scalars(select(Sanction).where(Sanction.finding_id == finding.id)
                                      .with_for_update())).first()
    if sanction is not None and sanction.status != "revoked":
        await _revoke(session, sanction, finding, by, f"问题已免责：{reason}")
    if before == "confirmed":
        await relevel(session, finding.center_id, finding.department, finding.year, by, f"第{finding.id}号问题免责")
    return finding


async def recount_finding_days(session: AsyncSession, calendar: WorkCalendar) -> None:
    """Pending overdue findings follow their case's working days late while the case stays open."""
    rows = (await session.execute(
        select(Finding, CaseClock).join(CaseClock, CaseClock.case_no == Finding.case_no)
        .where(Finding.source == "overdue", Finding.status == "pending", CaseClock.closed_at.is_(None)))).all()
    for finding, row in rows:
        finding.overdue_days = calendar.working_days_between(clock.local_date(row.due_at), clock.today_local(),
                                                             row.center_id)


# --- the ladder -------------------------------------------------------------------------------------------------

async def _lock(session: AsyncSession, center_id: str, department: str, year: int) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                          {"k": f"ladder:{center_id}:{department}:{year}"})


async def relevel(session: AsyncSession, center_id: str, department: str, year: int, by: str, why: str) -> None:
    """The department's ladder of the year, recomputed: each counting finding gets the sanction of its place;
    a new one is issued, a changed one reissued."""
    await _lock(session, center_id, department, year)
    rows = (await session.execute(
        select(Finding, Sanction).outerjoin(Sanction, Sanction.finding_id == Finding.id)
        .where(Finding.center_id == center_id, Finding.department == department, Finding.year == year,
               Finding.status == "confirmed")
        .order_by(Finding.occurred_at, Finding.id).with_for_update(of=Finding))).all()
    place = 0
    for finding, sanction in rows:
        if sanction is not None and sanction.status == "revoked":
            continue
        place += 1
        level = "warning" if place == 1 else "criticism"
        if sanction is None:
            await _issue(session, finding, level, place)
        elif sanction.level != level or sanction.ordinal != place:
            await _reissue(session, sanction, finding, level, place, by, why)


async def _center_name(session: AsyncSession, center_id: str) -> str:
    row = await session.get(CenterCopy, center_id)
    return row.name if row else center_id


async def _notice(session: AsyncSession, finding: Finding, level: str, place: int, rectify_by: datetime,
                  notice_no: str, corrected: bool) -> str:
    """The notice's text (Chinese), complete enough to send as is."""
    centre = await _center_name(session, finding.center_id)
    dept = await _department_name(session, finding.center_id, finding.department) or finding.department
    word = LEVEL_WORDS[level]
    title = f"关于对{dept}予以{word}的{'通报' if level == 'criticism' else '通知'}{'（更正）' if corrected else ''}"
    if finding.source == "overdue":
        facts = (f"经{centre}电子监察系统监测并经督查核实，你单位承办的“{finding.item_name}”"
                 f"（办件编号：{finding.case_no}，承办人：{finding.handler_name}）承诺办结时限于"
                 f"{clock.local_date(finding.occurred_at):%Y年%m月%d日}届满，"
                 f"{f'超时{finding.overdue_days}个工作日' if finding.overdue_days else '未按时办结'}。")
    else:
        where = f"（{finding.window}号窗口）" if finding.window else ""
        facts = (f"经{centre}{SOURCE_WORDS[finding.source]}查实，你单位{where}存在以下问题："
                 f"{finding.text}（发现时间：{clock.local_date(finding.occurred_at):%Y年%m月%d日}）。")
    rule = ("根据“经查实后第一次提出警告，第二次予以通报批评”的规定，"
            f"此为你单位{finding.year}年度第{place}次经查实的问题，现对你单位予以{word}。")
    ask = (f"请你单位高度重视，于{clock.local_date(rectify_by):%Y年%m月%d日}前完成整改，"
           f"并将整改情况书面报送{centre}督查股。")
    issued = clock.today_local()
    return "\n".join([title, f"文号：{notice_no}", "", f"{dept}：", f"　　{facts}", f"　　{rule}", f"　　{ask}", "",
                      f"{centre}电子监察", f"{issued:%Y年%m月%d日}"])


async def _rectify_by(session: AsyncSession, center_id: str) -> datetime:
    _, days = await settings_of(session, center_id)
    calendar = await CALENDARS.get(session)
    return calendar.due_at(clock.today_local(), days, center_id)


async def _issue(session: AsyncSession, finding: Finding, level: str, place: int) -> Sanction:
    now = clock.now()
    rectify_by = await _rectify_by(session, finding.center_id)
    number = int(await session.scalar(text("SELECT nextval('sanction_notice_seq')")) or 0)
    notice_no = f"{finding.center_id}-DC-{finding.year}-{number:05d}"
    sanction = Sanction(
        center_id=finding.center_id, department=finding.department, year=finding.year, finding_id=finding.id,
        level=level, ordinal=place, notice_no=notice_no,
        notice_text=await _notice(session, finding, level, place, rectify_by, notice_no, corrected=False),
        recipients=[f"department:{finding.center_id}:{finding.department}", f"supervision:{finding.center_id}"],
        issued_at=now, rectification_due_at=rectify_by, status="issued", reissues=0)
    session.add(sanction)
    await session.flush()
    await _audit(session, SYSTEM, "issue", "sanction", sanction.id, sanction.center_id, None,
                 {"level": level, "ordinal": place, "finding_id": finding.id}, None)
    await publish(session, PRODUCER, SanctionIssued(sanction=await sanction_facts(session, sanction, finding)),
                  subject=f"sanction:{sanction.id}", center_id=sanction.center_id)
    await timers.schedule(session, "monitor.rectify", str(sanction.id), rectify_by,
                          {"due": rectify_by.isoformat()}, rearm=True)
    metrics.sanction(session, sanction.center_id, level, "issued")
    return sanction


async def _reissue(session: AsyncSession, sanction: Sanction, finding: Finding, level: str, place: int, by: str,
                   why: str) -> None:
    previous, before = sanction.level, {"level": sanction.level, "ordinal": sanction.ordinal}
    sanction.level, sanction.ordinal, sanction.reissues = level, place, sanction.reissues + 1
    sanction.notice_text = await _notice(session, finding, level, place, sanction.rectification_due_at,
                                         sanction.notice_no, corrected=True)
    await session.flush()
    await _audit(session, by, "reclassify", "sanction", sanction.id, sanction.center_id, before,
                 {"level": level, "ordinal": place}, why)
    if previous != level:
        await publish(session, PRODUCER, SanctionReclassified(
            sanction=await sanction_facts(session, sanction, finding), previous_level=previous,
            reason=why), subject=f"sanction:{sanction.id}", center_id=sanction.center_id)
        metrics.sanction(session, sanction.center_id, level, "reclassified")


async def get_sanction(session: AsyncSession, sanction_id: int, *, for_update: bool = False) -> Sanction:
    return await get_or_404(session, Sanction, sanction_id, field="sanction_id", for_update=for_update)


async def rectified(session: AsyncSession, sanction: Sanction, principal: Principal, note: str) -> Sanction:
    if sanction.status != "issued":
        raise Conflict(f"sanction {sanction.id} is {sanction.status}", field="sanction_id",
                       code=f"sanction_{sanction.status}")
    now = clock.now()
    sanction.status, sanction.rectified_at, sanction.rectified_by, sanction.rectify_note = (
        "rectified", now, principal.subject, note)
    await session.flush()
    finding = await get_finding(session, sanction.finding_id)
    await _audit(session, principal.subject, "rectified", "sanction", sanction.id, sanction.center_id,
                 {"status": "issued"}, {"status": "rectified"}, note)
    await publish(session, PRODUCER, SanctionRectified(
        sanction=await sanction_facts(session, sanction, finding), by=principal.subject, note=note,
        on_time=now <= sanction.rectification_due_at), subject=f"sanction:{sanction.id}", center_id=sanction.center_id)
    await timers.cancel(session, "monitor.rectify", str(sanction.id))
    await alerts.resolve_for_sanction(session, sanction.id, f"已整改：{note}")
    metrics.sanction(session, sanction.center_id, sanction.level, "rectified")
    return sanction


async def revoke(session: AsyncSession, sanction: Sanction, principal: Principal, reason: str) -> Sanction:
    if sanction.status == "revoked":
        raise Conflict(f"sanction {sanction.id} is revoked already", field="sanction_id", code="sanction_revoked")
    finding = await get_finding(session, sanction.finding_id)
    await _revoke(session, sanction, finding, principal.subject, reason)
    await relevel(session, sanction.center_id, sanction.department, sanction.year, principal.subject,
                  f"第{sanction.notice_no}号处理已撤销")
    return sanction


async def _revoke(session: AsyncSession, sanction: Sanction, finding: Finding, by: str, reason: str) -> None:
    before = sanction.status
    sanction.status, sanction.revoked_at, sanction.revoked_by, sanction.revoke_reason = (
        "revoked", clock.now(), by, reason)
    await session.flush()
    await _audit(session, by, "revoke", "sanction", sanction.id, sanction.center_id, {"status": before},
                 {"status": "revoked"}, reason)
    await publish(session, PRODUCER, SanctionRevoked(sanction=await sanction_facts(session, sanction, finding),
                                                     by=by, reason=reason),
                  subject=f"sanction:{sanction.id}", center_id=sanction.center_id)
    await timers.cancel(session, "monitor.rectify", str(sanction.id))
    metrics.sanction(session, sanction.center_id, sanction.level, "revoked")


async def on_rectification_due(session: AsyncSession, payload: dict[str, Any], timer: timers.Timer) -> None:
    """限时整改: a sanction not rectified by its deadline raises an alert."""
    sanction = await session.get(Sanction, int(timer.key))
    if sanction is None or sanction.status != "issued":
        return
    dept = await _department_name(session, sanction.center_id, sanction.department) or sanction.department
    await alerts.raise_alert(session, NewAlert(
        cause_key=f"rectify:{sanction.id}:{sanction.rectification_due_at.isoformat()}", kind="rectification_overdue",
        center_id=sanction.center_id, department=sanction.department, due_at=sanction.rectification_due_at,
        due_moment=timer.due_at, details={"sanction_id": sanction.id},
        text=(f"整改逾期：{dept}的{LEVEL_WORDS[sanction.level]}（{sanction.notice_no}）整改期限已于"
              f"{clock.local_date(sanction.rectification_due_at):%Y年%m月%d日}届满，尚未报送整改情况。")))

