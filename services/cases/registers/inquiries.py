"""The inquiry register (首问负责制): whoever is asked first registers the inquiry with the answer, the window
referred to, or a promised reply time, and stays responsible for it; the monitor follows the promise through
the events (inquiry.registered carries it, inquiry.answered says whether it was kept)."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.cases.models import Item, Staff
from services.cases.registers import schemas
from services.cases.registers.models import Inquiry
from shared import clock
from shared.auth import Principal, Role
from shared.errors import BadRequest, Conflict, Forbidden, NotFound
from shared.events.catalog import Handler, InquiryAnswered, InquiryFacts, InquiryRegistered
from shared.events.outbox import publish
from shared.metrics import at_commit
from shared.pii import PersonalData, PersonalDataError

PRODUCER = "cases"

INQUIRIES = Counter("hall_inquiries_total", "Inquiries of the register (首问) by what happened: registered "
                    "answered / referred / pending, answered on time / late", ["center", "event"])


def facts(inquiry: Inquiry) -> InquiryFacts:
    return InquiryFacts(
        id=inquiry.id, center_id=inquiry.center_id, channel=inquiry.channel,
        item_code=inquiry.item_code, department=inquiry.department,
        taken_by=Handler(id=inquiry.taken_by, display_name=inquiry.taken_by_name), window=inquiry.window,
        registered_at=inquiry.registered_at, status=inquiry.status,
        referred_window=inquiry.referred_window, promised_reply_at=inquiry.promised_reply_at)


def _status(body: schemas.InquiryIn, now: datetime) -> str:
    """Exactly one outcome: answered at once, or referred and/or promised (a referral may carry a promise)."""
    if body.answer is not None:
        if body.referred_window is not None or body.promised_reply_at is not None:
            field = "referred_window" if body.referred_window is not None else "promised_reply_at"
            raise BadRequest(f"an inquiry answered at once has no {field}", field=field, code="answered_at_once")
        return "answered"
    if body.promised_reply_at is None:
        if body.referred_window is None:
            raise BadRequest("give the answer, the window referred to, or a promised reply time", field="answer",
                             code="no_outcome")
        return "referred"
    if body.promised_reply_at.tzinfo is None:
        raise BadRequest("promised_reply_at needs its UTC offset", field="promised_reply_at", code="naive_time")
    if body.promised_reply_at <= now:
        raise BadRequest(f"promised_reply_at {body.promised_reply_at.isoformat()} is not in the future",
                         field="promised_reply_at", code="promise_in_past")
    return "pending"


def _contact(pii: PersonalData, raw: str) -> tuple[str, dict[str, str]]:
    kind = "email" if "@" in raw else "phone"
    try:
        return kind, pii.email(raw) if kind == "email" else pii.phone(raw)
    except PersonalDataError as exc:
        raise BadRequest(f"contact {exc.reason}", field="contact", code="invalid_contact") from None


async def register(session: AsyncSession, pii: PersonalData, principal: Principal,
                   body: schemas.InquiryIn) -> Inquiry:
    """Register an inquiry taken by the caller (首问责任人), whatever the department it concerns."""
    principal.check_center(body.center)
    now = clock.now()
    status = _status(body, now)
    department = None
    if body.item_code is not None:
        item = await session.get(Item, (body.center, body.item_code))
        if item is None:
            raise NotFound(f"centre {body.center} has no item {body.item_code}", field="item_code",
                           code="unknown_item")
        department = item.department
    kind, contact = _contact(pii, body.contact) if body.contact else (None, None)
    taker = await session.get(Staff, principal.subject)
    inquiry = Inquiry(
        center_id=body.center, channel=body.channel, item_code=body.item_code, department=department,
        question=body.question, status=status, answer=body.answer, referred_window=body.referred_window,
        promised_reply_at=body.promised_reply_at.astimezone(UTC) if body.promised_reply_at else None,
        taken_by=principal.subject,
        taken_by_name=taker.display_name if taker else principal.subject, window=principal.window,
        registered_at=now, answered_at=now if status == "answered" else None,
        answered_by=principal.subject if status == "answered" else None, contact_kind=kind,
        contact_masked=contact["masked"] if contact else None,
        contact_encrypted=contact["encrypted"].encode() if contact else None)
    session.add(inquiry)
    await session.flush()
    await publish(session, PRODUCER, InquiryRegistered(
        inquiry=facts(inquiry), contact_masked=inquiry.contact_masked,
        contact_sealed=contact["sealed_for_notify"] if contact else None),
        subject=f"inquiry-{inquiry.id}", center_id=inquiry.center_id)
    at_commit(session, INQUIRIES.labels(inquiry.center_id, f"registered_{status}").inc)
    return inquiry


def _check_responsible(principal: Principal, inquiry: Inquiry) -> None:
    """The taker answers (首问负责); a chief representative (of the item's department, when it names one) or
    the hall manager may answer in their stead."""
    if principal.subject == inquiry.taken_by:
        return
    if principal.role == Role.CHIEF_REP:
        if inquiry.department is not None:
            principal.check_department(inquiry.department)
        return
    if principal.role == Role.HALL_MANAGER:
        return
    raise Forbidden(f"inquiry {inquiry.id} was taken by {inquiry.taken_by}: the taker, a chief representative or "
                    "the hall manager answers it", field="id", code="not_responsible")


async def answer(session: AsyncSession, principal: Principal, inquiry_id: int,
                 body: schemas.InquiryAnswer) -> Inquiry:
    """Answer a pending inquiry; on time if by its promised reply time."""
    inquiry = await session.scalar(select(Inquiry).where(Inquiry.id == inquiry_id).with_for_update())
    if inquiry is None:
        raise NotFound(f"no inquiry {inquiry_id}", field="id")
    principal.check_center(inquiry.center_id)
    _check_responsible(principal, inquiry)
    if inquiry.status != "pending":
        raise Conflict(f"inquiry {inquiry_id} is {inquiry.status}: only a pending one is answered later",
                       field="status", code="not_pending")
    now = clock.now()
    promised = inquiry.promised_reply_at
    inquiry.status, inquiry.answer, inquiry.answered_at, inquiry.answered_by = "answered", body.answer, now, \
        principal.subject
    inquiry.on_time = promised is not None and now <= promised
    await session.flush()
    await publish(session, PRODUCER, InquiryAnswered(inquiry=facts(inquiry), answered_at=now, by=principal.subject,
                                                     on_time=inquiry.on_time),
                  subject=f"inquiry-{inquiry.id}", center_id=inquiry.center_id)
    at_commit(session, INQUIRIES.labels(inquiry.center_id, "answered_on_time" if inquiry.on_time
                                        else "answered_late").inc)
    return inquiry
