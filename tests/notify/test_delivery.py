"""The delivery engine end to end on real servers: events planned into deliveries, the dispatcher sending over
SMTP (STARTTLS), the generic SMS provider and signed webhooks; retries, dead letters and replay; duplicates;
the quiet hours; the SMS rate limit; the appointment reminder."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.notify.channels.webhook import verify_signature
from shared import clock
from shared.events.catalog import (
    AlertRaised,
    AppointmentBooked,
    TicketTurnNear,
    UserUpserted,
)
from tests.notify.support import CENTRE, EMAIL, PHONE, build, envelope, notify, sealed


def local(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=clock.LOCAL_TZ)


def handler_user(**changes: Any) -> UserUpserted:
    return UserUpserted(id="u-handler", display_name="王小明", role="clerk", centers=[CENTRE], department="D01",
                        email_masked="h***@example.cn", email_sealed=sealed(EMAIL), phone_masked="138****5678",
                        phone_sealed=sealed(PHONE), **changes)


def early_warning(alert_id: int = 7, **changes: Any) -> AlertRaised:
    return build(AlertRaised, alert={"id": alert_id, "center_id": CENTRE, "kind": "early_warning", "level": "yellow",
                                     "case_no": "SP2026120300001", "window": "3",
                                     "text": "办件SP2026120300001将于2026年12月10日到期",
                                     "handler": {"id": "u-handler", "display_name": "王小明"}, **changes})


async def test_an_early_warning_reaches_the_handler_by_mail_and_sms_and_the_window_feed(service_client, fixed_clock):
    fixed_clock.set(local(2026, 12, 3, 10))
    async with notify(service_client) as n:
        await n.apply(envelope(handler_user()))
        await n.apply(envelope(early_warning()))
        rows = await n.deliveries()
        assert sorted(r["channel"] for r in rows) == ["email", "feed", "sms"]
        feed = next(r for r in rows if r["channel"] == "feed")
        assert feed["status"] == "sent" and feed["recipient_key"] == f"feed:window:{CENTRE}:3"
        posted = await n.db.fetch("SELECT type, key FROM outbox WHERE type = 'delivery.feed_posted'")
        assert [p["key"] for p in posted] == [f"window:{CENTRE}:3"]

        assert await n.dispatch() == 2
        [mail] = n.mail.messages
        assert mail["To"] == EMAIL
        assert "预警" in mail["Subject"] and "SP2026120300001" in mail.get_content()
        [sms] = n.sms.accepted
        assert sms.request.json["to"] == PHONE and "SP2026120300001" in sms.request.json["text"]
        sent = {r["channel"]: r for r in await n.deliveries()}
        assert sent["email"]["status"] == sent["sms"]["status"] == "sent"
        assert sent["sms"]["provider_id"] == sms.id
        assert sent["sms"]["address_masked"] == "138****5678"


async def _webhook(n: Any, admin: dict[str, str]) -> tuple[int, str]:
    r = await n.client.post("/recipients", headers=admin, json={
        "kind": "webhook", "name": "OA 系统", "center_id": CENTRE, "address": f"{n.webhook.url}/hook"})
    assert r.status_code == 201, r.text
    recipient = r.json()
    r = await n.client.post("/subscriptions", headers=admin, json={
        "recipient_id": recipient["id"], "event_types": ["alert.*"], "center_id": CENTRE, "channel": "webhook"})
    assert r.status_code == 201, r.text
    return recipient["id"], recipient["secret"]


async def test_a_webhook_that_fails_twice_gets_one_delivery_and_three_attempts(service_client, fixed_clock, tokens):
    start = local(2026, 12, 3, 10)
    fixed_clock.set(start)
    admin = tokens.headers("center_admin", [CENTRE])
    async with notify(service_client) as n:
        _, secret = await _webhook(n, admin)
        n.webhook.webhook_secret = secret
        n.webhook.fail_first(2)
        await n.apply(envelope(early_warning()))
        await n.dispatch()
        for minutes in (1, 2, 3):
            await n.at(start + timedelta(minutes=minutes))
        assert len(n.webhook.accepted) == 1 and n.webhook.bad_signatures == 0
        assert len(n.webhook.requests) == 3
        first = n.webhook.requests[0]
        assert {r.idempotency_key for r in n.webhook.requests} == {first.idempotency_key}
        assert verify_signature(secret, first.headers["x-hall-timestamp"], first.body,
                                first.headers["x-hall-signature"], now=clock.wall_now())
        body = n.webhook.accepted[0].request.json
        assert body["type"] == "alert.raised" and body["data"]["alert"]["case_no"] == "SP2026120300001"

        r = await n.client.get("/deliveries", headers=admin, params={"center_id": CENTRE, "channel": "webhook"})
        [delivery] = r.json()
        assert delivery["status"] == "sent" and delivery["attempts"] == 3
        assert [a["outcome"] for a in delivery["attempt_log"]] == ["failed", "failed", "accepted"]
        assert "503" in delivery["attempt_log"][0]["error"]


async def test_a_webhook_that_always_fails_ends_in_the_dead_letters_and_a_replay_delivers_once(
        service_client, fixed_clock, tokens):
    start = local(2026, 12, 3, 10)
    fixed_clock.set(start)
    admin = tokens.headers("center_admin", [CENTRE])
    async with notify(service_client, max_attempts=3) as n:
        await _webhook(n, admin)
        n.webhook.always_fail(500)
        await n.apply(envelope(early_warning()))
        await n.dispatch()
        for minutes in range(1, 6):
            await n.at(start + timedelta(minutes=minutes))
        assert len(n.webhook.requests) == 3 and not n.webhook.accepted
        r = await n.client.get("/dead-letters", headers=admin, params={"center_id": CENTRE})
        [dead] = r.json()
        assert dead["channel"] == "webhook" and dead["attempts"] == 3 and dead["dead_at"] is not None

        n.webhook.recover()
        r = await n.client.post(f"/dead-letters/{dead['id']}/replay", headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "pending"
        await n.dispatch()
        await n.at(start + timedelta(minutes=10))
        assert len(n.webhook.accepted) == 1
        assert n.webhook.accepted[0].key == dead["key"]
        r = await n.client.post(f"/dead-letters/{dead['id']}/replay", headers=admin)
        assert r.status_code == 409 and r.json()["field"] == "delivery_id"
        assert (await n.client.get("/dead-letters", headers=admin, params={"center_id": CENTRE})).json() == []


async def test_a_duplicate_event_is_delivered_once(service_client, fixed_clock):
    fixed_clock.set(local(2026, 12, 3, 10))
    async with notify(service_client) as n:
        await n.apply(envelope(handler_user()))
        event = envelope(early_warning())
        await n.apply(event)
        await n.apply(event)
        assert len(await n.deliveries()) == 3
        await n.dispatch()
        await n.apply(event)
        await n.dispatch()
        assert len(n.mail.messages) == 1 and len(n.sms.requests) == 1


def turn_near(ticket_id: int) -> TicketTurnNear:
    return build(TicketTurnNear, ticket={"ticket_id": ticket_id, "center_id": CENTRE}, phone_sealed=sealed(PHONE),
                 phone_masked="138****5678")


async def test_quiet_hours_hold_an_sms_until_eight_and_urgent_passes(service_client, fixed_clock):
    night = local(2026, 12, 3, 23)
    fixed_clock.set(night)
    async with notify(service_client) as n:
        await n.apply(envelope(handler_user()))
        await n.apply(envelope(early_warning()))  # the handler's SMS is held, the mail goes
        await n.apply(envelope(turn_near(41)))  # urgent: passes the quiet hours
        await n.dispatch()
        assert len(n.mail.messages) == 1
        assert [m.request.json["template_key"] for m in n.sms.accepted] == ["ticket_turn_near_sms"]
        [held] = await n.deliveries(status="held")
        assert held["template_key"] == "alert_early_warning_sms"
        assert held["held_until"] == local(2026, 12, 4, 8)

        await n.at(local(2026, 12, 4, 7, 59))
        assert len(n.sms.accepted) == 1
        await n.at(local(2026, 12, 4, 8))
        assert [m.request.json["template_key"] for m in n.sms.accepted] == [
            "ticket_turn_near_sms", "alert_early_warning_sms"]
        assert not await n.deliveries(status="held")


async def test_the_sms_rate_limit_defers_the_excess(service_client, fixed_clock):
    start = local(2026, 12, 3, 10)
    fixed_clock.set(start)
    async with notify(service_client, sms_rate_limit=2, sms_rate_window_seconds=600,
                      urgent_templates=[]) as n:
        for ticket_id in (1, 2, 3):
            await n.apply(envelope(turn_near(ticket_id)))
        await n.dispatch()
        assert len(n.sms.accepted) == 2
        [waiting] = await n.deliveries(status="pending")
        assert waiting["address_hash"] is not None
        await n.at(start + timedelta(minutes=9))
        assert len(n.sms.accepted) == 2
        await n.at(start + timedelta(minutes=10, seconds=1))
        assert len(n.sms.accepted) == 3


async def test_an_appointment_is_reminded_the_day_before_and_a_cancelled_one_is_not(service_client, fixed_clock):
    fixed_clock.set(local(2026, 12, 3, 15))
    async with notify(service_client) as n:
        booked = build(AppointmentBooked, appointment={"appointment_id": 5, "center_id": CENTRE, "channel": "online",
                                                       "slot_start": local(2026, 12, 7, 9, 30)},
                       phone_sealed=sealed(PHONE))
        await n.apply(envelope(booked))
        await n.dispatch()
        assert [m.request.json["template_key"] for m in n.sms.accepted] == ["appointment_booked_sms"]
        await n.at(local(2026, 12, 6, 9, 59))
        assert len(n.sms.accepted) == 1
        await n.at(local(2026, 12, 6, 10))
        assert [m.request.json["template_key"] for m in n.sms.accepted][1:] == ["appointment_reminder_sms"]
        assert "09:30" in n.sms.accepted[1].request.json["text"]
