"""Tickets on the hall floor: issuing in opening hours with daily numbers, signing in at a window from its
terminal, call-next, start and finish; refusals change nothing and publish nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tests.queue.builders import A, center, outbox, service, window

CLERK = "u-clerk-1"


def at_window(tokens, number: str = "1", subject: str = CLERK, center_id: str = A) -> dict[str, str]:
    """A clerk's token as a sign-in at window `number`'s terminal gives it."""
    return tokens.headers("clerk", [center_id], department="D01", window=number, subject=subject,
                          device=f"term-{number}")


async def hall(client, tokens, windows: dict[str, dict[str, int]] | None = None) -> None:
    await center(client, tokens)
    await service(client, tokens, "HJ", "A", department="D01")
    await service(client, tokens, "SB", "B", department="D02")
    for number, weights in (windows or {"1": {"HJ": 1}}).items():
        await window(client, tokens, number, weights)


async def issue(client, tokens, service_code: str = "HJ", **body) -> dict:
    r = await client.post(f"/centers/{A}/tickets", json={"service_code": service_code, **body},
                          headers=tokens.headers("kiosk", [A]))
    assert r.status_code == 201, r.text
    return r.json()


async def test_tickets_get_the_services_next_number_and_a_wait_estimate(service_client, tokens):
    async with service_client("queue") as client:
        await hall(client, tokens)
        first, second = await issue(client, tokens), await issue(client, tokens)
        other = await issue(client, tokens, "SB")
        events = await outbox(client)
    assert (first["number"], second["number"], other["number"]) == ("A001", "A002", "B001")
    assert (first["people_ahead"], second["people_ahead"]) == (0, 1)
    assert second["estimated_wait_s"] == 600  # one ahead x the service's default 10 minutes / 1 window
    assert re.fullmatch(r"[A-Z2-9]{6}", first["lookup_code"]) and first["lookup_code"] != second["lookup_code"]
    issued = [e for e in events if e["type"] == "ticket.issued"]
    assert [e["data"]["ticket"]["number"] for e in issued] == ["A001", "A002", "B001"]
    assert issued[0]["data"]["ticket"]["department"] == "D01" and issued[0]["data"]["ticket"]["channel"] == "kiosk"
    counts = [e["data"]["waiting"] for e in events if e["type"] == "queue.waiting_counts"]
    assert counts == [{"HJ": 1, "SB": 0}, {"HJ": 2, "SB": 0}, {"HJ": 2, "SB": 1}]


async def test_personal_data_is_kept_hashed_and_masked_and_counts_against_the_daily_limit(service_client, tokens):
    async with service_client("queue") as client:
        await center(client, tokens)
        await service(client, tokens, "HJ", "A", daily_limit_per_person=1)
        r = await issue(client, tokens, id_number="11010519491231002X", phone="13812345678")
        again = await client.post(f"/centers/{A}/tickets", headers=tokens.headers("kiosk", [A]),
                                  json={"service_code": "HJ", "phone": "138 1234 5678"})
        bad = await client.post(f"/centers/{A}/tickets", headers=tokens.headers("kiosk", [A]),
                                json={"service_code": "HJ", "id_number": "110105194912310021"})
        events = await outbox(client)
        rows = await client.db.fetch("SELECT * FROM tickets")
    assert r["number"] == "A001"
    assert again.status_code == 409 and again.json()["code"] == "daily_limit_reached" and "限取1号" in again.json()["detail"]
    assert bad.status_code == 422 and bad.json()["field"] == "id_number"
    (issued,) = [e for e in events if e["type"] == "ticket.issued"]
    text = str(events) + str([dict(row) for row in rows])
    assert "13812345678" not in text and "11010519491231002X" not in text
    assert issued["data"]["phone_masked"] == "138****5678" and issued["data"]["phone_sealed"]
    assert issued["data"]["id_number_masked"].startswith("1101")
    assert not {"phone_masked", "id_number_hash"} & issued["data"]["ticket"].keys()  # later events name no one


async def test_no_ticket_outside_opening_hours_with_the_kiosks_message(service_client, tokens, fixed_clock):
    async with service_client("queue") as client:
        await hall(client, tokens)
        answers = {}
        for label, local in (("early", "08:59"), ("lunch", "12:30"), ("late", "17:30"), ("sunday", None)):
            when = datetime.fromisoformat(f"2026-02-12T{local}:00+08:00") if local else \
                datetime(2026, 2, 15, 2, 0, tzinfo=UTC)  # Sunday 15 February, 春节: a holiday
            fixed_clock.set(when)
            answers[label] = await client.post(f"/centers/{A}/tickets", json={"service_code": "HJ"},
                                               headers=tokens.headers("kiosk", [A]))
        events = await outbox(client)
        numbers = await client.db.fetch("SELECT * FROM daily_counters")
    codes = {label: (r.status_code, r.json()["code"]) for label, r in answers.items()}
    assert codes == {"early": (409, "not_open_yet"), "lunch": (409, "lunch_break"), "late": (409, "after_cutoff"),
                     "sunday": (409, "closed_today")}
    assert "09:00" in answers["early"].json()["detail"] and "取号" in answers["late"].json()["detail"]
    assert not [e for e in events if e["type"].startswith("ticket.")] and not numbers  # nothing taken


async def test_a_weekend_walk_in_is_for_the_duty_windows(service_client, tokens, fixed_clock):
    fixed_clock.set(datetime.fromisoformat("2026-03-07T10:00:00+08:00"))  # a plain Saturday
    async with service_client("queue") as client:
        await hall(client, tokens, {"1": {"HJ": 1}, "9": {"HJ": 1}})
        await client.patch(f"/centers/{A}/windows/9", json={"duty": True}, headers=tokens.headers("center_admin", [A]))
        ticket = await issue(client, tokens)
        for number in ("1", "9"):
            r = await client.post(f"/centers/{A}/windows/{number}/sign-in", headers=at_window(tokens, number,
                                                                                             f"u-{number}"))
            assert r.status_code == 200, r.text
        ordinary = await client.post(f"/centers/{A}/windows/1/call-next", headers=at_window(tokens, "1", "u-1"))
        duty = await client.post(f"/centers/{A}/windows/9/call-next", headers=at_window(tokens, "9", "u-9"))
    assert ticket["duty_only"]
    assert ordinary.status_code == 204  # not a duty window
    assert duty.status_code == 200 and duty.json()["number"] == "A001"


async def test_a_clerk_signs_in_calls_serves_and_calls_again(service_client, tokens, fixed_clock):
    async with service_client("queue") as client:
        await hall(client, tokens)
        clerk = at_window(tokens)
        first, second = await issue(client, tokens), await issue(client, tokens)
        signed = await client.post(f"/centers/{A}/windows/1/sign-in", headers=clerk)
        fixed_clock.advance(minutes=3)
        called = await client.post(f"/centers/{A}/windows/1/call-next", headers=clerk)
        busy = await client.post(f"/centers/{A}/windows/1/call-next", headers=clerk)
        early_finish = await client.post(f"/tickets/{first['id']}/finish", headers=clerk)
        started = await client.post(f"/tickets/{first['id']}/start", headers=clerk)
        fixed_clock.advance(minutes=7)
        finished = await client.post(f"/tickets/{first['id']}/finish", headers=clerk)
        next_one = await client.post(f"/centers/{A}/windows/1/call-next", headers=clerk)
        events = await outbox(client)
    assert signed.status_code == 200 and signed.json()["state"] == "open" and signed.json()["post"] == "A"
    assert called.status_code == 200 and called.json()["number"] == "A001" and called.json()["status"] == "called"
    assert busy.status_code == 409 and busy.json()["code"] == "ticket_active" and busy.json()["ticket_id"] == first["id"]
    assert early_finish.status_code == 409 and early_finish.json()["code"] == "not_serving"
    assert started.json()["status"] == "serving" and finished.json()["status"] == "done"
    assert next_one.json()["number"] == second["number"]
    (call,) = [e["data"] for e in events if e["type"] == "ticket.called" and e["data"]["ticket"]["number"] == "A001"]
    assert call["call"]["announcement"] == "请A001号到1号窗口办理" and call["call"]["tier"] == 4
    assert call["call"]["wait_s"] == 180 and call["call"]["clerk"]["id"] == CLERK
    (done,) = [e["data"] for e in events if e["type"] == "ticket.finished"]
    assert (done["wait_s"], done["service_s"], done["window"]) == (180, 420, "1")
    assert [e["type"] for e in events].count("window.signed_in") == 1


async def test_nothing_waiting_is_a_204_and_a_clerk_acts_only_at_the_window_of_their_terminal(service_client,
                                                                                                tokens):
    async with service_client("queue") as client:
        await hall(client, tokens, {"1": {"HJ": 1}, "2": {"HJ": 1}})
        clerk = at_window(tokens)
        await client.post(f"/centers/{A}/windows/1/sign-in", headers=clerk)
        empty = await client.post(f"/centers/{A}/windows/1/call-next", headers=clerk)
        ticket = await issue(client, tokens)
        elsewhere = await client.post(f"/centers/{A}/windows/2/call-next", headers=clerk)
        unsigned = await client.post(f"/centers/{A}/windows/2/call-next", headers=at_window(tokens, "2", "u-2"))
        no_window = await client.post(f"/centers/{A}/windows/1/call-next",
                                      headers=tokens.headers("clerk", [A], department="D01", subject=CLERK))
        kiosk = await client.post(f"/centers/{A}/windows/1/call-next", headers=tokens.headers("kiosk", [A]))
        rows = await client.db.fetch("SELECT status FROM tickets WHERE id = $1", ticket["id"])
    assert empty.status_code == 204
    assert elsewhere.status_code == 403 and elsewhere.json()["code"] == "wrong_window"
    assert unsigned.status_code == 409 and unsigned.json()["code"] == "not_signed_in"
    assert no_window.status_code == 403 and kiosk.status_code == 403
    assert rows[0]["status"] == "waiting"


async def test_only_a_windows_assigned_clerks_sign_in_and_b_takes_the_b_post(service_client, tokens):
    async with service_client("queue") as client:
        await hall(client, tokens)
        await client.patch(f"/centers/{A}/windows/1", json={"a_clerk": "u-a", "b_clerk": "u-b"},
                           headers=tokens.headers("center_admin", [A]))
        stranger = await client.post(f"/centers/{A}/windows/1/sign-in", headers=at_window(tokens, subject="u-x"))
        b_post = await client.post(f"/centers/{A}/windows/1/sign-in", headers=at_window(tokens, subject="u-b"))
        a_meanwhile = await client.post(f"/centers/{A}/windows/1/sign-in", headers=at_window(tokens, subject="u-a"))
        out = await client.post(f"/centers/{A}/windows/1/sign-out", headers=at_window(tokens, subject="u-b"))
        a_post = await client.post(f"/centers/{A}/windows/1/sign-in", headers=at_window(tokens, subject="u-a"))
    assert stranger.status_code == 403 and stranger.json()["code"] == "not_assigned"
    assert b_post.json()["post"] == "B" and b_post.json()["clerk_id"] == "u-b"
    assert a_meanwhile.status_code == 409 and a_meanwhile.json()["code"] == "window_taken"
    assert out.json()["state"] == "signed_out"
    assert a_post.json()["post"] == "A"


async def test_an_unknown_service_is_a_422_and_another_centres_kiosk_a_403(service_client, tokens):
    async with service_client("queue") as client:
        await hall(client, tokens)
        unknown = await client.post(f"/centers/{A}/tickets", json={"service_code": "GS"},
                                    headers=tokens.headers("kiosk", [A]))
        foreign = await client.post(f"/centers/{A}/tickets", json={"service_code": "HJ"},
                                    headers=tokens.headers("kiosk", ["320104"]))
        evaluator = await client.post(f"/centers/{A}/tickets", json={"service_code": "HJ"},
                                      headers=tokens.headers("evaluator", [A], window="1"))
    assert unknown.status_code == 422 and unknown.json()["field"] == "service_code"
    assert foreign.status_code == 403 and evaluator.status_code == 403


async def test_the_holder_follows_a_ticket_with_its_code_alone(service_client, tokens):
    async with service_client("queue") as client:
        await hall(client, tokens)
        first, second = await issue(client, tokens), await issue(client, tokens)
        waiting = await client.get(f"/public/tickets/{second['id']}", params={"code": second["lookup_code"]})
        wrong = await client.get(f"/public/tickets/{second['id']}", params={"code": first["lookup_code"]})
        unknown = await client.get("/public/tickets/999999", params={"code": "ABCDEF"})
        clerk = at_window(tokens)
        await client.post(f"/centers/{A}/windows/1/sign-in", headers=clerk)
        await client.post(f"/centers/{A}/windows/1/call-next", headers=clerk)
        called = await client.get(f"/public/tickets/{first['id']}", params={"code": first["lookup_code"].lower()})
    assert waiting.status_code == 200 and waiting.headers["cache-control"] == "no-store"
    assert waiting.json() | {"issued_at": None} == {"number": "A002", "service_code": "HJ", "status": "waiting",
                                                   "people_ahead": 1, "estimated_wait_s": 600, "window": None,
                                                   "issued_at": None}
    assert wrong.status_code == unknown.status_code == 404 and wrong.json()["detail"] == unknown.json()["detail"]
    assert called.json()["status"] == "called" and called.json()["window"] == "1"


async def test_people_ahead_at_issue_counts_whom_call_next_takes_first(service_client, tokens):
    async with service_client("queue") as client:
        await hall(client, tokens)
        walk1 = await issue(client, tokens)
        green1 = await issue(client, tokens, kind="green")
        walk2 = await issue(client, tokens)
        green2 = await issue(client, tokens, kind="green")
        other = await issue(client, tokens, "SB")
    # greens go before walk-ins (the N:1 rule aside), so a new green has only the greens ahead of it
    assert [t["people_ahead"] for t in (walk1, green1, walk2, green2, other)] == [0, 0, 2, 1, 0]


async def test_a_ticket_taken_on_a_phone_needs_the_phone_and_counts_against_the_limit(service_client, tokens):
    async with service_client("queue") as client:
        await center(client, tokens)
        await service(client, tokens, "HJ", "A", daily_limit_per_person=1)
        remote = await client.post(f"/public/centers/{A}/tickets", json={"service_code": "HJ", "phone": "13912345678"})
        no_phone = await client.post(f"/public/centers/{A}/tickets", json={"service_code": "HJ"})
        again = await client.post(f"/centers/{A}/tickets", headers=tokens.headers("kiosk", [A]),
                                  json={"service_code": "HJ", "phone": "13912345678"})
        events = await outbox(client)
    assert remote.status_code == 201 and remote.json()["number"] == "A001"
    assert no_phone.status_code == 422 and no_phone.json()["field"] == "phone"
    assert again.status_code == 409 and again.json()["code"] == "daily_limit_reached"  # the same person
    (issued,) = [e["data"] for e in events if e["type"] == "ticket.issued"]
    assert issued["ticket"]["channel"] == "online" and issued["phone_masked"] == "139****5678"
