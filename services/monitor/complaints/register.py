"""The complaint register (投诉, 三个一: "简单投诉一小时内解决"): each complaint numbered, acknowledged on receipt
automatically (complaint.received then complaint.acknowledged, with the text notify sends), due per severity
(simple: 1 hour of opening time; general: the end of the next working day; major: the end of the 7th
calendar day), watched by a durable timer at the due moment (a complaint alert if still open), and closed as
resolved, upheld or dismissed (complaint.resolved with the outcome for the complainant and on_time)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.monitor import alerts, hours, ladder
from services.monitor.alerts import NewAlert
from services.monitor.complaints import metrics
from services.monitor.complaints.followups import resolve_open_alerts
from services.monitor.complaints.models import Complaint
from services.monitor.complaints.schemas import SubjectIn
from services.monitor.models import CenterCopy
from shared import clock, counters, timers
from shared.auth import Principal
from shared.db import get_or_404
from shared.errors import BadRequest, Conflict, NotFound
from shared.events.catalog import (
    ComplaintAcknowledged,
    ComplaintFacts,
    ComplaintReceived,
    ComplaintResolved,
    ComplaintSubject,
)
from shared.events.outbox import publish
from shared.pii import PersonalData, PersonalDataError

PRODUCER = "monitor"
TIMER = "monitor.complaint_due"
SIMPLE_SECONDS = 3600  # 一小时, of opening time
MAJOR_DAYS = 7  # calendar days
END_OF_DAY = time(23, 59, 59)
SEVERITY_WORDS = {"simple": "简单投诉", "general": "一般投诉", "major": "重大投诉"}
OUTCOMES = {"resolve": "resolved", "uphold": "upheld", "dismiss": "dismissed"}
OUTCOME_WORDS = {"resolved": "已处理", "upheld": "经查属实", "dismissed": "经查不属实"}


def facts(c: Complaint) -> ComplaintFacts:
    return ComplaintFacts(
        id=c.id, number=c.number, center_id=c.center_id, channel=c.channel,
        category=c.category, severity=c.severity,
        subject=ComplaintSubject(window=c.window, department=c.department, case_no=c.case_no),
        received_at=c.received_at, due_at=c.due_at, status=c.status,
        contact_masked=c.contact_masked, contact_sealed=c.contact_sealed)


def _local(moment: datetime) -> str:
    return f"{moment.astimezone(clock.LOCAL_TZ):%Y年%m月%d日 %H:%M}"


async def due_at(session: AsyncSession, center_id: str, severity: str, received_at: datetime) -> datetime:
    """三个一: simple within 1 hour of opening time (a complaint at 17:20 with closing at 17:30 is due 50 minutes
    into the next opening); general by the end of the next working day; major by the end of the 7th calendar
    day after the day of receipt (23:59:59 local)."""
    calendar = await ladder.CALENDARS.get(session)
    if severity == "simple":
        _, schedule = await hours.hall_of(session, center_id)
        return hours.add_opening_time(schedule, calendar, center_id, received_at, SIMPLE_SECONDS)
    if severity == "general":
        return calendar.due_at(clock.local_date(received_at), 1, center_id)
    day = clock.local_date(received_at) + timedelta(days=MAJOR_DAYS)
    return clock.local_instant(day, END_OF_DAY)


def _contact(pii: PersonalData, raw: str) -> tuple[str, dict[str, str]]:
    kind = "email" if "@" in raw else "phone"
    try:
        return kind, pii.email(raw) if kind == "email" else pii.phone(raw)
    except PersonalDataError as exc:
        raise BadRequest(f"contact {exc.reason}", field="contact", code="invalid_contact") from None


async def receive(session: AsyncSession, pii: PersonalData, *, center_id: str, channel: str, category: str,
                  severity: str, subject: SubjectIn, text_: str, contact: str | None,
                  by: Principal | None) -> tuple[Complaint, str]:
    """Register a complaint and acknowledge it; the complaint and the acknowledgement text."""
    if subject.window is None and subject.department is None and subject.case_no is None:
        raise BadRequest("name the window, the department or the case the complaint is about", field="subject",
                         code="no_subject")
    if await session.get(CenterCopy, center_id) is None:
        raise NotFound(f"no centre {center_id}", field="center", code="unknown_center")
    kind, stored = _contact(pii, contact) if contact else (None, None)
    now = clock.now()
    number = await counters.next_number(session, f"complaint:{center_id}")
    complaint = Complaint(
        number=f"{center_id}-TS-{clock.today_local():%Y%m%d}-{number:04d}", center_id=center_id, channel=channel,
        category=category, severity=severity, window=subject.window, department=subject.department,
        case_no=subject.case_no, text=text_, contact_kind=kind,
        contact_hash=stored["hash"] if stored else None, contact_masked=stored["masked"] if stored else None,
        contact_encrypted=stored["encrypted"] if stored else None,
        contact_sealed=stored["sealed_for_notify"] if stored else None,
        received_at=now, recorded_by=by.subject if by else None,
        due_at=await due_at(session, center_id, severity, now), status="open")
    session.add(complaint)
    await session.flush()
    subject_id = f"complaint:{complaint.id}"
    await publish(session, PRODUCER, ComplaintReceived(complaint=facts(complaint), by=by.subject if by else None),
                  subject=subject_id, center_id=center_id)
    acknowledgement = (f"您的投诉已于{_local(complaint.received_at)}收到，编号{complaint.number}。"
                       f"我们将于{_local(complaint.due_at)}前处理并答复您。")
    await publish(session, PRODUCER, ComplaintAcknowledged(complaint=facts(complaint), text=acknowledgement),
                  subject=subject_id, center_id=center_id)
    await timers.schedule(session, TIMER, str(complaint.id), complaint.due_at, {"complaint_id": complaint.id})
    metrics.received(session, center_id, channel, severity)
    return complaint, acknowledgement


async def get(session: AsyncSession, complaint_id: int, *, for_update: bool = False) -> Complaint:
    return await get_or_404(session, Complaint, complaint_id, field="complaint_id", for_update=for_update)


async def close(session: AsyncSession, complaint: Complaint, action: str, principal: Principal,
                outcome: str) -> Complaint:
    """Resolve, uphold or dismiss an open complaint: the outcome goes to the complainant (complaint.resolved);
    its timer is cancelled and the system resolves its alerts."""
    if complaint.status != "open":
        raise Conflict(f"complaint {complaint.number} is {complaint.status} already", field="complaint_id",
                       code=f"complaint_{complaint.status}")
    now = clock.now()
    status = OUTCOMES[action]
    complaint.status, complaint.outcome, complaint.closed_at, complaint.closed_by = status, outcome, now, \
        principal.subject
    complaint.on_time = now <= complaint.due_at
    await session.flush()
    text_ = f"您的投诉（编号{complaint.number}）已办结，{OUTCOME_WORDS[status]}：{outcome}"
    await publish(session, PRODUCER, ComplaintResolved(
        complaint=facts(complaint), outcome=status, text=text_, by=principal.subject,
        on_time=complaint.on_time), subject=f"complaint:{complaint.id}", center_id=complaint.center_id)
    await timers.cancel(session, TIMER, str(complaint.id))
    await resolve_open_alerts(session, "complaint", "complaint_id", complaint.id,
                              f"投诉已办结（{OUTCOME_WORDS[status]}，{principal.subject}）：{outcome}")
    metrics.closed(session, complaint.center_id, complaint.severity, status, complaint.on_time)
    return complaint


async def on_due(session: AsyncSession, payload: dict[str, Any], timer: timers.Timer) -> None:
    """The complaint's due moment: still open, a complaint alert (once)."""
    complaint = await session.get(Complaint, int(timer.key))
    if complaint is None or complaint.status != "open":
        return
    await alerts.raise_alert(session, NewAlert(
        cause_key=f"complaint:{complaint.id}", kind="complaint", center_id=complaint.center_id,
        case_no=complaint.case_no, window=complaint.window, department=complaint.department,
        due_at=complaint.due_at, due_moment=timer.due_at,
        details={"complaint_id": complaint.id, "number": complaint.number, "severity": complaint.severity},
        text=(f"投诉超时：{SEVERITY_WORDS[complaint.severity]}{complaint.number}（{complaint.category}）应于"
              f"{_local(complaint.due_at)}前办结，仍未办结。")))
