"""From events to deliveries: who is told what, on which channel, rendered now and sent by the dispatcher.

Every event of every topic notify reads comes here. The default rules (services.notify.rules) that apply and
are switched on for the centre, and the admins' subscriptions, give the targets; each target becomes one row
of `deliveries`, unique by (event id, recipient key, channel), inserted with ON CONFLICT DO NOTHING in the
consumer's transaction: a duplicate event, a re-read after a crash or a replayed dead letter plans nothing
twice. A feed message is "sent" in that same transaction (a `delivery.feed_posted` event in the outbox), so
it exists exactly once; SMS, e-mail and webhooks wait for the dispatcher.

The message is rendered here, once, and kept as it was sent. The applicant's phone stays sealed in the row
(it is opened at send time only, by the dispatcher); the lookup code of case.accepted is opened here to be
written into the SMS, which is the one place it is meant to go.

SMS planned in the quiet hours (22:00-08:00 local) are held until their end by a durable timer, unless the
template is marked urgent (settings.urgent_templates). The reminder the day before an appointment is a
durable timer too, armed when the appointment is booked (or a request confirmed) and cancelled with it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import contacts, metrics, recipients, rules
from services.notify.config import Settings, get_settings
from services.notify.models import CaseContact, CenterCopy, Delivery, Subscription
from services.notify.templating import store
from shared import clock, pii, timers
from shared.events.catalog import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentConfirmed,
    AppointmentFacts,
    CaseAccepted,
    DeliveryFeedPosted,
    FeedRef,
)
from shared.events.envelope import Envelope, EventData
from shared.events.outbox import Outgoing, publish_all

log = logging.getLogger("services.notify.planner")

PRODUCER = "notify"
RELEASE_TIMER = "notify.release"
REMINDER_TIMER = "notify.reminder"
REMINDER_NAMESPACE = uuid.UUID("6f1c2d8e-4b7a-5e3f-9a10-3c5d7e9f1b2a")
PRIVATE_SUFFIXES = ("_sealed", "_hash")

_settings: Settings | None = None


def configure(settings: Settings | None) -> None:
    """The settings the planner and its timers use (the worker's; tests give their own)."""
    global _settings
    _settings = settings


def settings() -> Settings:
    return _settings if _settings is not None else get_settings()


@dataclass(frozen=True)
class Target:
    recipient_key: str
    channel: str
    template_key: str
    address_sealed: str | None = None
    address_masked: str | None = None
    recipient_id: int | None = None
    recipient_name: str = ""
    feed: str | None = None


# --- the consumer's handler --------------------------------------------------------------------------------


async def on_event(session: AsyncSession, envelope: Envelope) -> None:
    """Plan every delivery `envelope` calls for (a handler of every notify consumer)."""
    payload = envelope.payload()
    if isinstance(payload, CaseAccepted):
        await _keep_case_contact(session, payload)
    elif isinstance(payload, AppointmentBooked | AppointmentConfirmed):
        await _arm_reminder(session, envelope, payload)
    elif isinstance(payload, AppointmentCancelled):
        await timers.cancel(session, REMINDER_TIMER, str(payload.appointment.appointment_id))
    await plan(session, envelope.id, envelope.type, envelope.occurred_at, envelope.center_id, payload)


async def plan(session: AsyncSession, event_id: uuid.UUID, event_type: str, occurred_at: datetime,
               center_id: str | None, payload: EventData) -> int:
    """Insert the deliveries of one event; returns how many were new."""
    targets: list[Target] = []
    for rule in rules.BY_EVENT.get(event_type, ()):
        if rule.applies(payload) and await store.enabled(session, center_id, rule.key):
            targets.extend(await _targets(session, rule, payload, center_id))
    if await _maybe_subscribed(session, event_type):
        for recipient, channel in await recipients.subscribers(session, event_type, center_id):
            targets.append(_subscription_target(recipient, channel, event_type, payload))
    if not targets:
        return 0
    return await _insert(session, event_id, event_type, occurred_at, center_id, payload, targets)


_SUBSCRIBED: dict[Any, tuple[float, frozenset[str]]] = {}
SUBSCRIBED_TTL = 1.0


async def _maybe_subscribed(session: AsyncSession, event_type: str) -> bool:
    """Whether any subscription names `event_type` (exactly or by prefix): the set of types subscribed to, per
    database, trusted for a second (changes in this process drop it at once), so that the many events no one
    subscribes to (every call of the queue) cost no query."""
    bind = session.bind
    cached = _SUBSCRIBED.get(bind)
    if cached is None or clock.monotonic() - cached[0] > SUBSCRIBED_TTL:
        types = frozenset((await session.execute(
            select(func.unnest(Subscription.event_types)).distinct())).scalars())
        cached = (clock.monotonic(), types)
        _SUBSCRIBED[bind] = cached
    return any(t == event_type or (t.endswith(".*") and event_type.startswith(t[:-1])) for t in cached[1])


@sa_event.listens_for(Subscription, "after_insert")
@sa_event.listens_for(Subscription, "after_update")
@sa_event.listens_for(Subscription, "after_delete")
def _subscriptions_changed(*_: Any) -> None:
    _SUBSCRIBED.clear()


# --- who ---------------------------------------------------------------------------------------------------


async def _targets(session: AsyncSession, rule: rules.Rule, payload: Any, center_id: str | None) -> list[Target]:
    audience = rule.audience
    if audience == "applicant":
        found = await _applicant(session, payload)
        if found is None:
            return []
        key, sealed, masked = found
        return [Target(key, "sms", rule.key, sealed, masked)] if sealed else []
    if audience == "complainant":
        c = payload.complaint
        if not c.contact_sealed:
            return []
        return [Target(f"complainant:{c.id}", rule.channel, rule.key, c.contact_sealed, c.contact_masked)]
    if audience == "handler":
        handler = getattr(payload.alert, "handler", None)
        staff = await contacts.staff_of(session, handler.id) if handler is not None else None
        return [t for t in (_staff_target(staff, rule),) if t is not None]
    if audience == "hall_manager":
        if center_id is None:
            return []
        return [t for s in await contacts.hall_managers(session, center_id)
                if (t := _staff_target(s, rule)) is not None]
    if audience == "window":
        alert = payload.alert
        if alert.window is None or alert.center_id is None:
            return []
        return [_feed_target(f"window:{alert.center_id}:{alert.window}", rule.key)]
    if audience == "supervision":
        center = _subject_center(payload, center_id)
        return [_feed_target(f"supervision:{center}", rule.key)] if center else []
    if audience == "department":
        sanction = payload.sanction
        if rule.channel == "feed":
            return [_feed_target(f"department:{sanction.center_id}:{sanction.department}", rule.key)]
        head = await contacts.department(session, sanction.center_id, sanction.department)
        if head is None or not head.active:
            return []
        sealed, masked = ((head.head_phone_sealed, head.head_phone_masked) if rule.channel == "sms"
                          else (head.head_email_sealed, head.head_email_masked))
        if not sealed:
            return []
        return [Target(f"department:{sanction.center_id}:{sanction.department}", rule.channel, rule.key, sealed,
                       masked, recipient_name=head.head_name or "")]
    raise ValueError(f"unknown audience {audience}")


async def _applicant(session: AsyncSession, payload: Any) -> tuple[str, str | None, str | None] | None:
    """The applicant's recipient key, sealed phone and its mask, from the event or the case's acceptance."""
    if isinstance(payload, CaseAccepted):
        return f"applicant:case:{payload.case.case_no}", payload.phone_sealed, payload.phone_masked
    case = getattr(payload, "case", None)
    if case is not None:
        contact = await session.get(CaseContact, case.case_no)
        if contact is None:
            return None
        return f"applicant:case:{case.case_no}", contact.phone_sealed, contact.phone_masked
    if payload.type == "notice.issued":
        return f"applicant:notice:{payload.notice_no}", payload.phone_sealed, payload.phone_masked
    if isinstance(payload, AppointmentBooked):
        a = payload.appointment
        return f"applicant:appointment:{a.appointment_id}", payload.phone_sealed, a.phone_masked
    request = getattr(payload, "request", None)
    if request is not None:
        return f"applicant:request:{request.request_id}", request.phone_sealed, request.phone_masked
    if payload.type == "ticket.turn_near":
        return f"applicant:ticket:{payload.ticket.ticket_id}", payload.phone_sealed, payload.phone_masked
    return None


def _staff_target(staff: Any, rule: rules.Rule) -> Target | None:
    if staff is None or not staff.active:
        return None
    sealed, masked = ((staff.phone_sealed, staff.phone_masked) if rule.channel == "sms"
                      else (staff.email_sealed, staff.email_masked))
    if not sealed:
        return None
    return Target(f"user:{staff.id}", rule.channel, rule.key, sealed, masked, recipient_name=staff.display_name)


def _feed_target(feed: str, key: str) -> Target:
    return Target(f"feed:{feed}", "feed", key, address_masked=feed, feed=feed)


def _subscription_target(recipient: Any, channel: str, event_type: str, payload: EventData) -> Target:
    key = "webhook"
    if channel != "webhook":
        key = next((r.key for r in rules.BY_EVENT.get(event_type, ())
                    if r.channel == channel and not r.extras and r.applies(payload)), f"generic_{channel}")
    return Target(f"recipient:{recipient.id}", channel, key, recipient.address_sealed, recipient.address_masked,
                  recipient_id=recipient.id, recipient_name=recipient.name)


def _subject_center(payload: Any, center_id: str | None) -> str | None:
    for name in ("sanction", "alert", "complaint", "case"):
        facts = getattr(payload, name, None)
        if facts is not None and getattr(facts, "center_id", None):
            return str(facts.center_id)
    return center_id


# --- what, and the rows ------------------------------------------------------------------------------------


async def _insert(session: AsyncSession, event_id: uuid.UUID, event_type: str, occurred_at: datetime,
                  center_id: str | None, payload: EventData, targets: list[Target]) -> int:
    cfg = settings()
    now = clock.now()
    center_name = await _center_name(session, center_id)
    extras = await _rule_extras(session, payload)
    quiet = quiet_until(now, cfg.quiet_start, cfg.quiet_end)
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for target in targets:
        if (target.recipient_key, target.channel) in seen:
            continue  # one message per recipient and channel, even if two rules or a rule and a subscription ask
        seen.add((target.recipient_key, target.channel))
        if target.template_key == "webhook":
            subject, body = None, event_type
            params: dict[str, Any] = {"document": webhook_document(event_id, event_type, occurred_at, center_id,
                                                                   payload)}
        else:
            context = store.context_for(
                target.template_key, payload,
                envelope_fields={"event_type": event_type, "occurred_at": occurred_at, "center_id": center_id},
                center_name=center_name, recipient_name=target.recipient_name, **extras)
            rendered = await store.render(session, target.template_key, context)
            subject, body = rendered.subject, rendered.body
            params = {"feed": target.feed, "refs": feed_refs(event_id, event_type, payload).model_dump()} \
                if target.channel == "feed" else {}
        urgent = target.template_key in cfg.urgent_templates
        status, held_until = "pending", None
        if target.channel == "feed":
            status = "sent"
        elif target.channel == "sms" and not urgent and quiet is not None:
            status, held_until = "held", quiet
        rows.append({
            "key": uuid.uuid4(), "event_id": event_id, "event_type": event_type, "occurred_at": occurred_at,
            "center_id": center_id, "recipient_key": target.recipient_key, "recipient_id": target.recipient_id,
            "channel": target.channel, "template_key": target.template_key, "address_masked": target.address_masked,
            "address_sealed": target.address_sealed, "subject": subject, "body": body, "params": params,
            "urgent": urgent, "status": status, "attempts": 0, "next_attempt_at": held_until or now,
            "held_until": held_until, "created_at": now, "sent_at": now if status == "sent" else None,
        })
    stmt = (pg_insert(Delivery).values(rows).on_conflict_do_nothing(constraint="uq_deliveries_once")
            .returning(Delivery.id, Delivery.recipient_key, Delivery.channel))
    inserted = {(r.recipient_key, r.channel): r.id for r in (await session.execute(stmt)).all()}
    posts: list[Outgoing] = []
    for row in rows:
        delivery_id = inserted.get((row["recipient_key"], row["channel"]))
        if delivery_id is None:
            continue  # planned before: a duplicate event
        metrics.planned(session, row["channel"], row["template_key"])
        if row["status"] == "held":
            metrics.held(session, row["template_key"])
        if row["channel"] == "feed":
            feed = row["params"]["feed"]
            posts.append(Outgoing(DeliveryFeedPosted(
                delivery_id=delivery_id, feed=feed, center_id=center_id, text=row["body"],
                refs=FeedRef(**row["params"]["refs"])), subject=feed, center_id=center_id))
    if posts:
        await publish_all(session, PRODUCER, posts)
    if any(row["status"] == "held" for row in rows) and quiet is not None:
        await timers.schedule(session, RELEASE_TIMER, quiet.isoformat(), quiet, {})
    return len(inserted)


async def _center_name(session: AsyncSession, center_id: str | None) -> str:
    if center_id is None:
        return ""
    center = await session.get(CenterCopy, center_id)
    return center.name if center is not None else ""


async def _rule_extras(session: AsyncSession, payload: EventData) -> dict[str, Any]:
    if isinstance(payload, CaseAccepted):
        key = settings().seal_private_key
        if key is None:
            raise RuntimeError("NOTIFY_SEAL_PRIVATE_KEY is not set: the lookup code cannot be opened")
        return {"lookup_code": pii.unseal(key.get_secret_value(), payload.lookup_code_sealed)}
    return {}


def public_data(value: Any) -> Any:
    """A payload as JSON without its sealed contacts and hashes, at any depth (what a webhook is sent)."""
    if isinstance(value, Mapping):
        return {k: public_data(v) for k, v in value.items() if not str(k).endswith(PRIVATE_SUFFIXES)}
    if isinstance(value, list):
        return [public_data(v) for v in value]
    return value


def webhook_document(event_id: uuid.UUID, event_type: str, occurred_at: datetime, center_id: str | None,
                     payload: EventData) -> dict[str, Any]:
    return {"event_id": str(event_id), "type": event_type, "occurred_at": occurred_at.isoformat(),
            "center_id": center_id, "data": public_data(payload.model_dump(mode="json", exclude={"type"}))}


def feed_refs(event_id: uuid.UUID, event_type: str, payload: Any) -> FeedRef:
    def pick(name: str, attr: str) -> Any:
        facts = getattr(payload, name, None)
        return getattr(facts, attr, None) if facts is not None else None

    case_no = pick("case", "case_no") or pick("alert", "case_no") or pick("sanction", "case_no")
    return FeedRef(event_id=str(event_id), event_type=event_type, case_no=case_no, alert_id=pick("alert", "id"),
                   sanction_id=pick("sanction", "id"), complaint_id=pick("complaint", "id"),
                   ticket_id=pick("ticket", "ticket_id"))


# --- quiet hours -------------------------------------------------------------------------------------------


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def quiet_until(now: datetime, start: str = "22:00", end: str = "08:00") -> datetime | None:
    """The end of the quiet hours `now` falls in (UTC), or None outside them; local wall time decides."""
    local = now.astimezone(clock.LOCAL_TZ)
    begin, finish = _hhmm(start), _hhmm(end)
    t = local.time()
    inside = (t >= begin or t < finish) if begin > finish else (begin <= t < finish)
    if not inside:
        return None
    day = local.date() if t < finish else local.date() + timedelta(days=1)
    return clock.local_instant(day, finish).astimezone(UTC)


async def release_held(session: AsyncSession, payload: dict[str, Any], timer: timers.Timer) -> None:
    """The quiet hours ended: every SMS held until now becomes due (the timer `notify.release`)."""
    now = clock.now()
    result = await session.execute(update(Delivery).where(Delivery.status == "held", Delivery.held_until <= now)
                                   .values(status="pending", next_attempt_at=now))
    log.info("quiet hours ended: held SMS released", extra={"event": "notify_released",
                                                            "count": getattr(result, "rowcount", None)})


# --- the reminder the day before an appointment ------------------------------------------------------------


async def _keep_case_contact(session: AsyncSession, accepted: CaseAccepted) -> None:
    case = accepted.case
    stmt = pg_insert(CaseContact).values(
        case_no=case.case_no, center_id=case.center_id, phone_masked=accepted.phone_masked,
        phone_sealed=accepted.phone_sealed, lookup_code_sealed=accepted.lookup_code_sealed,
        accepted_at=case.accepted_at).on_conflict_do_nothing(index_elements=[CaseContact.case_no])
    await session.execute(stmt)


def reminder_due(slot_start: datetime, at: str) -> datetime:
    day = slot_start.astimezone(clock.LOCAL_TZ).date() - timedelta(days=1)
    return clock.local_instant(day, _hhmm(at)).astimezone(UTC)


async def _arm_reminder(session: AsyncSession, envelope: Envelope,
                        payload: AppointmentBooked | AppointmentConfirmed) -> None:
    if isinstance(payload, AppointmentBooked):
        booked = payload
    else:
        r = payload.request
        booked = AppointmentBooked(appointment=AppointmentFacts(
            appointment_id=payload.appointment_id, code=payload.appointment_code, center_id=r.center_id,
            service_code=r.service_code, slot_start=payload.slot_start, channel="staff", phone_hash=r.phone_hash,
            phone_masked=r.phone_masked), phone_sealed=r.phone_sealed)
    if not booked.phone_sealed:
        return
    due = reminder_due(booked.appointment.slot_start, settings().reminder_time)
    if due <= clock.now():
        return  # booked for tomorrow after the reminder's hour, or for today: the booking's own SMS suffices
    await timers.schedule(session, REMINDER_TIMER, str(booked.appointment.appointment_id), due, {
        "center_id": envelope.center_id, "booked": booked.model_dump(mode="json")})


async def send_reminder(session: AsyncSession, payload: dict[str, Any], timer: timers.Timer) -> None:
    """The timer `notify.reminder`: plan the reminder of one appointment (once: its event id is derived)."""
    booked = AppointmentBooked.model_validate(payload["booked"])
    a = booked.appointment
    event_id = uuid.uuid5(REMINDER_NAMESPACE, f"{a.appointment_id}:{a.slot_start.isoformat()}")
    await plan(session, event_id, rules.REMINDER_EVENT, clock.now(), payload.get("center_id"), booked)


TIMER_HANDLERS: dict[str, timers.TimerHandler] = {RELEASE_TIMER: release_held, REMINDER_TIMER: send_reminder}
