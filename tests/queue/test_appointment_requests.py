"""Staff appointment requests (当面、电话、信函预约): recorded with the answer due within 1 working day, confirmed
with a slot (booked: the person checks in with its code), place and materials, or declined by a chief
representative of the service's department with a reason; the phone is never in clear in an event."""

from __future__ import annotations

import json
from datetime import datetime

from tests.queue.builders import A, center, outbox, service

PHONE = "13912345678"
FRIDAY_0930 = "2026-02-13T09:30:00+08:00"
SLOTS = [{"weekday": d, "start": "09:00", "end": "12:00", "minutes": 30, "capacity": 2} for d in (4, 5)]


async def requested(client, tokens, **extra) -> dict:
    body = {"service_code": "HJ", "channel": "phone", "preferred_slots": [FRIDAY_0930], "phone": PHONE, **extra}
    r = await client.post(f"/centers/{A}/appointment-requests", json=body,
                          headers=tokens.headers("clerk", [A], department="D01", subject="u-clerk"))
    assert r.status_code == 201, r.text
    return r.json()


def chief(tokens, department: str = "D01") -> dict[str, str]:
    return tokens.headers("chief_rep", [A], department=department, subject=f"u-chief-{department}")


async def test_a_request_is_confirmed_with_a_booked_slot_a_place_and_materials(service_client, tokens):
    async with service_client("queue") as client:
        await center(client, tokens)
        await service(client, tokens, "HJ", "A", department="D01", slots=SLOTS)
        request = await requested(client, tokens, note="老人行动不便")
        manager = tokens.headers("hall_manager", [A])
        confirmed = await client.post(f"/centers/{A}/appointment-requests/{request['id']}/confirm", headers=manager,
                                      json={"slot_start": FRIDAY_0930, "place": "一楼3号窗口",
                                            "materials": ["居民身份证", "户口簿"]})
        again = await client.post(f"/centers/{A}/appointment-requests/{request['id']}/confirm", headers=manager,
                                  json={"slot_start": FRIDAY_0930, "place": "一楼3号窗口"})
        listed = await client.get(f"/centers/{A}/appointment-requests?status=confirmed", headers=manager)
        booked = await client.db.fetch("SELECT code, slot_start, channel, phone_masked FROM appointments")
        events = await outbox(client)
    # Thursday 12 February: answered by the end of the next working day, Friday 13 February
    assert datetime.fromisoformat(request["due_at"]) == datetime.fromisoformat("2026-02-13T23:59:59+08:00")
    assert request["status"] == "pending" and request["phone_masked"] == "139****5678"
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["status"] == "confirmed" and body["materials"] == ["居民身份证", "户口簿"]
    assert again.status_code == 409 and again.json()["code"] == "already_answered"
    assert [r["id"] for r in listed.json()] == [request["id"]]
    (appointment,) = booked
    assert appointment["code"] == body["appointment_code"] and appointment["channel"] == "staff"
    assert appointment["slot_start"] == datetime.fromisoformat(FRIDAY_0930)
    kinds = [e["type"] for e in events if e["type"].startswith("appointment.")]
    assert kinds == ["appointment.requested", "appointment.booked", "appointment.confirmed"]
    asked = next(e["data"] for e in events if e["type"] == "appointment.requested")
    assert asked["request"]["channel"] == "phone" and asked["request"]["phone_sealed"] and asked["by"] == "u-clerk"
    assert datetime.fromisoformat(asked["request"]["due_at"]) == datetime.fromisoformat("2026-02-13T23:59:59+08:00")
    answer = next(e["data"] for e in events if e["type"] == "appointment.confirmed")
    assert (answer["place"], answer["materials"], answer["appointment_code"], answer["on_time"]) == (
        "一楼3号窗口", ["居民身份证", "户口簿"], body["appointment_code"], True)
    assert PHONE not in json.dumps(events)


async def test_declining_needs_the_departments_chief_representative_and_a_reason(service_client, tokens):
    async with service_client("queue") as client:
        await center(client, tokens)
        await service(client, tokens, "HJ", "A", department="D01", slots=SLOTS)
        request = await requested(client, tokens, channel="letter")
        url = f"/centers/{A}/appointment-requests/{request['id']}/decline"
        by_clerk = await client.post(url, json={"reason": "材料不在受理范围"},
                                     headers=tokens.headers("clerk", [A], department="D01"))
        by_manager = await client.post(url, json={"reason": "材料不在受理范围"},
                                       headers=tokens.headers("hall_manager", [A]))
        other_department = await client.post(url, json={"reason": "材料不在受理范围"}, headers=chief(tokens, "D02"))
        no_reason = await client.post(url, json={}, headers=chief(tokens))
        declined = await client.post(url, json={"reason": "该事项不在本中心办理"}, headers=chief(tokens))
        twice = await client.post(url, json={"reason": "再次"}, headers=chief(tokens))
        events = await outbox(client)
    assert by_clerk.status_code == 403 and by_manager.status_code == 403
    assert other_department.status_code == 403 and other_department.json()["code"] == "wrong_department"
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "reason"
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    assert declined.json()["reason"] == "该事项不在本中心办理"
    assert twice.status_code == 409
    (answer,) = [e["data"] for e in events if e["type"] == "appointment.declined"]
    assert (answer["reason"], answer["approved_by"], answer["on_time"]) == ("该事项不在本中心办理", "u-chief-D01", True)
    assert answer["request"]["channel"] == "letter" and answer["request"]["phone_sealed"]


async def test_bad_requests_name_their_field(service_client, tokens):
    async with service_client("queue") as client:
        await center(client, tokens)
        await service(client, tokens, "HJ", "A", department="D01", slots=SLOTS)
        staff = tokens.headers("hall_manager", [A])
        url = f"/centers/{A}/appointment-requests"
        base = {"service_code": "HJ", "channel": "phone", "preferred_slots": [FRIDAY_0930], "phone": PHONE}
        answers = {
            "past": await client.post(url, headers=staff, json={**base, "preferred_slots": [
                FRIDAY_0930, "2026-02-11T09:30:00+08:00"]}),
            "naive": await client.post(url, headers=staff, json={**base, "preferred_slots": ["2026-02-13T09:30:00"]}),
            "phone": await client.post(url, headers=staff, json={**base, "phone": "12345"}),
            "service": await client.post(url, headers=staff, json={**base, "service_code": "GS"}),
            "channel": await client.post(url, headers=staff, json={**base, "channel": "fax"}),
            "kiosk": await client.post(url, headers=tokens.headers("kiosk", [A]), json=base),
        }
        request = await requested(client, tokens)
        no_slot = await client.post(f"{url}/{request['id']}/confirm", headers=staff,
                                    json={"slot_start": "2026-02-13T09:40:00+08:00", "place": "3号窗口"})
        still = await client.get(f"{url}?status=pending", headers=staff)
    assert {k: (r.status_code, r.json().get("field")) for k, r in answers.items()} == {
        "past": (422, "preferred_slots[1]"), "naive": (422, "preferred_slots.0"), "phone": (422, "phone"),
        "service": (422, "service_code"), "channel": (422, "channel"), "kiosk": (403, None)}
    assert no_slot.status_code == 409 and no_slot.json()["code"] == "no_such_slot"
    assert [r["id"] for r in still.json()] == [request["id"]]  # a slot that cannot be booked leaves it pending
