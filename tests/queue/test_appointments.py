"""Appointments (预约): slots from a service's rules and the hall's day, booking within capacity under
concurrency, the per-person limit online, check-in on time / late / too early, cancelling, and the public
booking page. The clock stands at Thu 2026-02-12 09:00 Asia/Shanghai: Sat 14 February is a 调休 working
day and 15-23 February the Spring Festival holiday."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import date, datetime, time

from sqlalchemy import event

from services.queue import appointments
from services.queue.setup import DEFAULT_SCHEDULE
from shared import schedule
from shared.events.catalog import AppointmentSlot
from tests.queue.builders import A, B, center, outbox, service, window

PHONE, ID_NUMBER = "13812345678", "11010519491231002X"
WEEKDAYS_9_TO_5 = [{"weekday": d, "start": "09:00", "end": "17:00", "minutes": 30, "capacity": 2} for d in range(1, 6)]


def in_clear(text: str) -> bool:
    """Whether the test's phone or ID-card number appears as given (hashes, masks and sealed forms do not)."""
    return PHONE in text or ID_NUMBER in text


def at(local: str) -> datetime:
    return datetime.fromisoformat(f"{local}+08:00")


async def hall(client, tokens, *, slots=WEEKDAYS_9_TO_5, **extra) -> None:
    await center(client, tokens)
    await service(client, tokens, "HJ", "A", department="D01", slots=slots, **extra)


async def book(client, tokens, slot: str, *, role: str = "kiosk", **body):
    return await client.post(f"/centers/{A}/appointments", headers=tokens.headers(role, [A]),
                             json={"service_code": "HJ", "slot_start": at(slot).isoformat(), **body})


async def booked(client, tokens, slot: str, **body) -> dict:
    r = await book(client, tokens, slot, **body)
    assert r.status_code == 201, r.text
    return r.json()


async def check_in(client, tokens, code: str, role: str = "kiosk"):
    return await client.post(f"/appointments/{code}/check-in", headers=tokens.headers(role, [A]))


def _plan(day: date, kind: schedule.DayKind) -> schedule.DayPlan:
    return schedule.day_plan(DEFAULT_SCHEDULE, day, kind)


# slots: pure rules

def test_a_slot_rule_gives_whole_slots_inside_its_span_on_its_weekday():
    rule = AppointmentSlot(weekday=4, start=time(9, 0), end=time(10, 40), minutes=30, capacity=3)
    thursday = appointments.slot_instances([rule], _plan(date(2026, 2, 12), "working"))
    friday = appointments.slot_instances([rule], _plan(date(2026, 2, 13), "working"))
    assert [s.start for s in thursday] == [at("2026-02-12T09:00"), at("2026-02-12T09:30"), at("2026-02-12T10:00")]
    assert thursday[-1].end == at("2026-02-12T10:30") and {s.capacity for s in thursday} == {3}  # 10:30-11:00 won't fit
    assert friday == []


def test_a_working_saturday_offers_mondays_slots_and_only_open_hours_are_bookable():
    monday = AppointmentSlot(weekday=1, start=time(11, 0), end=time(14, 0), minutes=60, capacity=1)
    saturday = AppointmentSlot(weekday=6, start=time(9, 0), end=time(10, 0), minutes=60, capacity=1)
    plan = _plan(date(2026, 2, 14), "working")  # 调休: Monday's hours 09:00-12:00, 13:30-17:30
    slots = appointments.slot_instances([monday, saturday], plan)
    bookable = appointments.bookable_slots([monday, saturday], plan, at("2026-02-12T09:00"))
    assert [s.start for s in slots] == [at("2026-02-14T11:00"), at("2026-02-14T12:00"), at("2026-02-14T13:00")]
    assert [s.start for s in bookable] == [at("2026-02-14T11:00")]  # 12:00 and 13:00 fall in the lunch break


# booking

async def test_a_booking_gets_a_random_code_and_publishes_hashes_and_masks_only(service_client, tokens):
    async with service_client("queue") as client:
        await hall(client, tokens)
        first = await booked(client, tokens, "2026-02-12T09:30", phone=PHONE, id_number=ID_NUMBER)
        second = await booked(client, tokens, "2026-02-12T09:30")
        events = await outbox(client)
        rows = await client.db.fetch("SELECT * FROM appointments ORDER BY id")
    assert re.fullmatch(r"[A-Z2-9]{8}", first["code"]) and first["code"] != second["code"]
    assert {k: first[k] for k in ("service_code", "slot_start", "slot_end", "status")} == {
        "service_code": "HJ", "slot_start": "2026-02-12T09:30:00+08:00", "slot_end": "2026-02-12T10:00:00+08:00",
        "status": "booked"}
    assert PHONE not in json.dumps(first)
    (event, _) = [e for e in events if e["type"] == "appointment.booked"]
    data = event["data"]
    assert data["appointment"]["channel"] == "kiosk" and data["appointment"]["code"] == first["code"]
    assert data["appointment"]["phone_masked"] == "138****5678" and data["appointment"]["phone_hash"]
    assert data["appointment"]["id_number_masked"].startswith("1101") and data["phone_sealed"]
    assert not in_clear(json.dumps(events, ensure_ascii=False) + str([dict(r) for r in rows]))
    assert rows[0]["phone_encrypted"] is not None  # the authorised form, for the SMS


async def test_a_slot_that_does_not_exist_is_past_too_far_or_when_the_hall_is_shut_is_refused(service_client, tokens):
    async with service_client("queue") as client:
        await hall(client, tokens)
        answers = {label: await book(client, tokens, slot) for label, slot in (
            ("unaligned", "2026-02-12T09:40"), ("started", "2026-02-12T09:00"), ("past", "2026-02-11T10:00"),
            ("lunch", "2026-02-12T12:30"), ("holiday", "2026-02-16T09:30"), ("too_far", "2026-02-25T09:30"),
            ("no_rule", "2026-02-12T17:00"), ("year_9999", "9999-12-31T23:30"))}
        naive = await client.post(f"/centers/{A}/appointments", headers=tokens.headers("kiosk", [A]),
                                  json={"service_code": "HJ", "slot_start": "2026-02-12T09:30:00"})
        unknown = await client.post(f"/centers/{A}/appointments", headers=tokens.headers("kiosk", [A]),
                                    json={"service_code": "GS", "slot_start": at("2026-02-12T09:30").isoformat()})
        events = await outbox(client)
        rows = await client.db.fetch("SELECT id FROM appointments")
    codes = {label: (r.status_code, r.json()["code"]) for label, r in answers.items()}
    assert codes == {"unaligned": (409, "no_such_slot"), "started": (409, "slot_past"), "past": (409, "slot_past"),
                     "lunch": (409, "hall_closed"), "holiday": (409, "hall_closed"),
                     "too_far": (409, "slot_too_far"), "no_rule": (409, "no_such_slot"),
                     "year_9999": (409, "slot_too_far")}
    assert "不办公" in answers["holiday"].json()["detail"] and "7天" in answers["too_far"].json()["detail"]
    assert naive.status_code == 422 and naive.json()["field"] == "slot_start"
    assert unknown.status_code == 422 and unknown.json()["field"] == "service_code"
    assert not rows and not [e for e in events if e["type"].startswith("appointment.")]


async def test_concurrent_bookings_never_exceed_a_slots_capacity(service_client, tokens):
    capacity, tries = 5, 10  # N + 5 at once
    slots = [{"weekday": 4, "start": "10:00", "end": "10:30", "minutes": 30, "capacity": capacity}]
    async with service_client("queue", db_pool_size=tries + 2, db_max_overflow=0) as client:
        await hall(client, tokens, slots=slots)
        pool, peak = client.app.state.engine.sync_engine.pool, [0]

        def on_checkout(*_: object) -> None:
            peak[0] = max(peak[0], pool.checkedout())

        event.listen(pool, "checkout", on_checkout)
        answers = await asyncio.gather(*(book(client, tokens, "2026-02-12T10:00", role=role)
                                         for role in ["kiosk", "clerk"] * (tries // 2)))
        event.remove(pool, "checkout", on_checkout)
        rows = await client.db.fetch("SELECT code FROM appointments WHERE status = 'booked'")
        events = await outbox(client)
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] * capacity + [409] * (tries - capacity)
    assert {r.json()["code"] for r in answers if r.status_code == 409} == {"slot_full"}
    assert len(rows) == capacity and len({r["code"] for r in rows}) == capacity
    assert [e["type"] for e in events].count("appointment.booked") == capacity
    assert peak[0] > 1  # the bookings did run at once, on several connections


async def test_online_booking_needs_a_phone_and_counts_against_the_daily_limit(service_client, tokens):
    async with service_client("queue") as client:
        await hall(client, tokens, daily_limit_per_person=1)
        path = f"/public/centers/{A}/appointments"
        slot = {"service_code": "HJ", "slot_start": at("2026-02-13T09:30").isoformat()}
        no_phone = await client.post(path, json=slot)
        first = await client.post(path, json={**slot, "phone": PHONE})
        again = await client.post(path, json={"service_code": "HJ", "slot_start": at("2026-02-13T14:00").isoformat(),
                                              "phone": "138-1234-5678"})
        other_day = await client.post(path, json={**slot, "slot_start": at("2026-02-12T14:00").isoformat(),
                                                  "phone": PHONE})
        events = await outbox(client)
    assert no_phone.status_code == 422 and no_phone.json()["field"] == "phone"
    assert first.status_code == 201 and set(first.json()) == {"id", "code", "service_code", "slot_start", "slot_end",
                                                              "status"}
    assert again.status_code == 409 and again.json()["code"] == "daily_limit_reached"
    assert other_day.status_code == 201  # the limit is per day
    channels = [e["data"]["appointment"]["channel"] for e in events if e["type"] == "appointment.booked"]
    assert channels == ["online", "online"]


# check-in

async def test_an_on_time_check_in_is_an_appointment_ticket_with_the_services_next_number(service_client, tokens,
                                                                                           fixed_clock):
    async with service_client("queue") as client:
        await hall(client, tokens)
        appointment = await booked(client, tokens, "2026-02-12T09:30", phone=PHONE)
        walk_in = await client.post(f"/centers/{A}/tickets", json={"service_code": "HJ"},
                                    headers=tokens.headers("kiosk", [A]))
        fixed_clock.set(at("2026-02-12T09:10"))
        r = await check_in(client, tokens, appointment["code"])
        again = await check_in(client, tokens, appointment["code"])
        listed = await client.get(f"/centers/{A}/appointments", headers=tokens.headers("hall_manager", [A]))
        (row,) = await client.db.fetch("SELECT * FROM tickets WHERE kind = 'appointment'")
        events = await outbox(client)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["on_time"] is True and "签到成功" in body["message"]
    assert walk_in.json()["number"] == "A001" and body["ticket"]["number"] == "A002"
    assert body["ticket"]["kind"] == "appointment" and body["ticket"]["status"] == "waiting"
    assert (row["slot_start"], row["checked_in_at"], row["effective_arrival"]) == (
        at("2026-02-12T09:30"), at("2026-02-12T09:10"), at("2026-02-12T09:10"))
    assert row["appointment_id"] == appointment["id"] and row["phone_masked"] == "138****5678"
    assert again.status_code == 409 and again.json()["code"] == "already_checked_in"
    assert again.json()["ticket_id"] == body["ticket"]["id"]
    assert listed.json()[0]["status"] == "checked_in" and listed.json()[0]["ticket_id"] == body["ticket"]["id"]
    types = [e["type"] for e in events]
    assert types[types.index("ticket.issued", types.index("ticket.issued") + 1):] == [
        "ticket.issued", "appointment.checked_in", "queue.waiting_counts"]
    issued = [e["data"] for e in events if e["type"] == "ticket.issued"][-1]
    assert issued["ticket"]["kind"] == "appointment" and issued["appointment_code"] == appointment["code"]
    assert issued["phone_masked"] == "138****5678" and issued["phone_sealed"]
    (checked,) = [e["data"] for e in events if e["type"] == "appointment.checked_in"]
    assert (checked["on_time"], checked["number"]) == (True, "A002")
    assert events[-1]["data"]["waiting"] == {"HJ": 2}
    assert not in_clear(json.dumps(events, ensure_ascii=False))


async def test_check_in_opens_60_minutes_before_the_slot_and_closes_20_minutes_after(service_client, tokens,
                                                                                      fixed_clock):
    async with service_client("queue") as client:
        await hall(client, tokens)
        early, first, last, late = [await booked(client, tokens, f"2026-02-12T{t}")
                                    for t in ("11:00", "10:00", "09:30", "09:30")]
        answers = {}
        for label, now, appointment in (("too_early", "09:50", early), ("sixty_before", "09:00", first),
                                        ("twenty_after", "09:50", last), ("later", "09:50:01", late)):
            fixed_clock.set(at(f"2026-02-12T{now}"))
            answers[label] = await check_in(client, tokens, appointment["code"])
        rows = await client.db.fetch("SELECT number, kind, slot_start, checked_in_at FROM tickets ORDER BY id")
        events = await outbox(client)
    too_early = answers.pop("too_early")
    assert too_early.status_code == 409 and too_early.json()["code"] == "too_early"
    assert "10:00" in too_early.json()["detail"] and too_early.json()["opens_at"] == "2026-02-12T10:00:00+08:00"
    assert {k: (r.status_code, r.json()["on_time"]) for k, r in answers.items()} == {
        "sixty_before": (201, True), "twenty_after": (201, True), "later": (201, False)}
    assert "普通号" in answers["later"].json()["message"]
    assert [(r["number"], r["kind"]) for r in rows] == [("A001", "appointment"), ("A002", "appointment"),
                                                        ("A003", "walk_in")]
    assert rows[2]["slot_start"] is None and rows[2]["checked_in_at"] is None  # an ordinary ticket
    assert [e["data"]["on_time"] for e in events if e["type"] == "appointment.checked_in"] == [True, True, False]


async def test_a_late_check_in_follows_the_walk_in_rules(service_client, tokens, fixed_clock):
    # walk-ins stop at a 16:30 cut-off; appointments are checked in until closing (17:30)
    async with service_client("queue") as client:
        await hall(client, tokens)
        r = await client.put(f"/centers/{A}/schedule", headers=tokens.headers("center_admin", [A]),
                             json={**DEFAULT_SCHEDULE.model_dump(mode="json"), "issuing_cutoff": "16:30"})
        assert r.status_code == 200, r.text
        on_time, late = [await booked(client, tokens, "2026-02-12T16:30") for _ in range(2)]
        fixed_clock.set(at("2026-02-12T16:40"))
        within = await check_in(client, tokens, on_time["code"])
        fixed_clock.set(at("2026-02-12T16:51"))
        walk_in = await check_in(client, tokens, late["code"])
        (still,) = await client.db.fetch("SELECT status FROM appointments WHERE code = $1", late["code"])
    assert within.status_code == 201 and within.json()["on_time"] is True  # past the cut-off: an appointment
    assert walk_in.status_code == 409 and walk_in.json()["code"] == "after_cutoff"  # a walk-in: not any more
    assert still["status"] == "booked"


async def test_a_checked_in_appointment_is_called_first_once_its_slot_has_started(service_client, tokens, fixed_clock):
    async with service_client("queue") as client:
        await hall(client, tokens)
        await window(client, tokens, "1", {"HJ": 1})
        clerk = tokens.headers("clerk", [A], department="D01", window="1", subject="u-1", device="term-1")
        appointment = await booked(client, tokens, "2026-02-12T09:30")
        await client.post(f"/centers/{A}/tickets", json={"service_code": "HJ"}, headers=tokens.headers("kiosk", [A]))
        fixed_clock.set(at("2026-02-12T09:20"))
        await check_in(client, tokens, appointment["code"])
        assert (await client.post(f"/centers/{A}/windows/1/sign-in", headers=clerk)).status_code == 200
        fixed_clock.set(at("2026-02-12T09:30"))
        called = await client.post(f"/centers/{A}/windows/1/call-next", headers=clerk)
    assert called.status_code == 200 and called.json()["number"] == "A002"  # tier 3, before the earlier A001


# cancelling

async def test_a_cancelled_appointment_frees_its_place_and_cannot_check_in(service_client, tokens, fixed_clock):
    slots = [{"weekday": 4, "start": "10:00", "end": "10:30", "minutes": 30, "capacity": 1}]
    async with service_client("queue") as client:
        await hall(client, tokens, slots=slots)
        appointment = await booked(client, tokens, "2026-02-12T10:00")
        full = await book(client, tokens, "2026-02-12T10:00")
        kiosk = await client.post(f"/appointments/{appointment['code']}/cancel", headers=tokens.headers("kiosk", [A]))
        foreign = await client.post(f"/appointments/{appointment['code']}/cancel",
                                    headers=tokens.headers("hall_manager", [B]))
        cancelled = await client.post(f"/appointments/{appointment['code']}/cancel",
                                      headers=tokens.headers("clerk", [A], subject="u-clerk"))
        twice = await client.post(f"/appointments/{appointment['code']}/cancel", headers=tokens.headers("clerk", [A]))
        fixed_clock.set(at("2026-02-12T09:50"))
        refused = await check_in(client, tokens, appointment["code"])
        rebooked = await book(client, tokens, "2026-02-12T10:00")
        tickets = await client.db.fetch("SELECT id FROM tickets")
        events = await outbox(client)
    assert full.status_code == 409 and full.json()["code"] == "slot_full"
    assert kiosk.status_code == 403 and foreign.status_code == 403
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert twice.status_code == 409 and twice.json()["code"] == "not_booked"
    assert refused.status_code == 409 and refused.json()["code"] == "appointment_cancelled" and not tickets
    assert rebooked.status_code == 201  # its place was free again
    (event,) = [e["data"] for e in events if e["type"] == "appointment.cancelled"]
    assert event["by"] == "u-clerk" and event["appointment"]["code"] == appointment["code"]


async def test_online_cancelling_needs_the_code_and_the_phone_it_was_booked_with(service_client, tokens):
    async with service_client("queue") as client:
        await hall(client, tokens)
        r = await client.post(f"/public/centers/{A}/appointments",
                              json={"service_code": "HJ", "slot_start": at("2026-02-12T10:00").isoformat(),
                                    "phone": PHONE})
        code = r.json()["code"]
        wrong_phone = await client.post(f"/public/appointments/{code}/cancel", json={"phone": "13900000000"})
        unknown = await client.post("/public/appointments/ABCDEFGH/cancel", json={"phone": PHONE})
        cancelled = await client.post(f"/public/appointments/{code}/cancel", json={"phone": PHONE})
        events = await outbox(client)
    assert wrong_phone.status_code == 404 and unknown.status_code == 404
    assert wrong_phone.json()["detail"] == unknown.json()["detail"]  # the same answer: nothing to learn
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert not in_clear(cancelled.text) and "****" not in cancelled.text
    (event,) = [e["data"] for e in events if e["type"] == "appointment.cancelled"]
    assert event["by"] is None


# the centre's list and the public booking page

async def test_staff_list_a_days_appointments_masked_and_devices_cannot(service_client, tokens):
    async with service_client("queue") as client:
        await hall(client, tokens)
        first = await booked(client, tokens, "2026-02-12T10:00", phone=PHONE, id_number=ID_NUMBER)
        await booked(client, tokens, "2026-02-13T10:00")
        cancelled = await booked(client, tokens, "2026-02-12T09:30")
        await client.post(f"/appointments/{cancelled['code']}/cancel", headers=tokens.headers("clerk", [A]))
        manager = tokens.headers("hall_manager", [A])
        today = await client.get(f"/centers/{A}/appointments", headers=manager)
        booked_only = await client.get(f"/centers/{A}/appointments", headers=manager, params={"status": "booked"})
        friday = await client.get(f"/centers/{A}/appointments", headers=manager, params={"date": "2026-02-13"})
        kiosk = await client.get(f"/centers/{A}/appointments", headers=tokens.headers("kiosk", [A]))
        foreign = await client.get(f"/centers/{A}/appointments", headers=tokens.headers("hall_manager", [B]))
    assert [a["code"] for a in today.json()] == [cancelled["code"], first["code"]]  # by slot
    assert [a["code"] for a in booked_only.json()] == [first["code"]]
    assert len(friday.json()) == 1 and friday.json()[0]["slot_start"] == "2026-02-13T10:00:00+08:00"
    row = today.json()[1]
    assert row["phone_masked"] == "138****5678" and row["id_number_masked"].startswith("1101")
    assert not in_clear(today.text)
    assert kiosk.status_code == 403 and foreign.status_code == 403


async def test_the_public_booking_page_shows_free_places_per_slot_for_seven_days_without_a_token(service_client,
                                                                                                  tokens):
    async with service_client("queue") as client:
        await hall(client, tokens)
        await service(client, tokens, "SB", "B")  # no slots: listed, nothing to book
        await service(client, tokens, "GS", "C", slots=WEEKDAYS_9_TO_5)
        await client.patch(f"/centers/{A}/services/GS", json={"active": False},
                           headers=tokens.headers("center_admin", [A]))
        await booked(client, tokens, "2026-02-12T10:00", phone=PHONE)
        await booked(client, tokens, "2026-02-12T10:00")
        await booked(client, tokens, "2026-02-13T09:00")
        r = await client.get(f"/public/centers/{A}/services")
        missing = await client.get("/public/centers/999999/services")
    assert r.status_code == 200, r.text
    services = {s["code"]: s for s in r.json()}
    assert set(services) == {"HJ", "SB"} and services["SB"]["slots"] == []  # GS is not open
    slots = {s["start"]: s for s in services["HJ"]["slots"]}
    days = sorted({start[:10] for start in slots})
    assert days == ["2026-02-12", "2026-02-13", "2026-02-14"]  # Sat 14 (调休) has Monday's; 15-18: 春节
    assert "2026-02-12T09:00:00+08:00" not in slots  # started
    assert slots["2026-02-12T10:00:00+08:00"] == {"start": "2026-02-12T10:00:00+08:00",
                                                  "end": "2026-02-12T10:30:00+08:00", "capacity": 2, "free": 0}
    assert slots["2026-02-13T09:00:00+08:00"]["free"] == 1
    assert "2026-02-12T12:00:00+08:00" not in slots and "2026-02-12T13:30:00+08:00" in slots  # lunch
    assert len([s for s in slots if s.startswith("2026-02-13")]) == 13
    assert len([s for s in slots if s.startswith("2026-02-12")]) == 12
    assert not in_clear(r.text) and "138****" not in r.text and missing.status_code == 404
