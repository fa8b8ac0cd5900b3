"""What a window does after a call: recall up to the limit, skip (过号) and requeue behind K (过号顺延),
cancel, transfer to a window or a service (first in line there, same number); and the day's close."""

from __future__ import annotations

from datetime import datetime

from services.queue import tickets as ticket_rules
from tests.queue.builders import A, outbox
from tests.queue.test_tickets import at_window, hall, issue


async def signed_in(client, tokens, number: str = "1", subject: str | None = None) -> dict[str, str]:
    headers = at_window(tokens, number, subject or f"u-{number}")
    r = await client.post(f"/centers/{A}/windows/{number}/sign-in", headers=headers)
    assert r.status_code == 200, r.text
    return headers


async def call(client, clerk, number: str = "1") -> dict:
    r = await client.post(f"/centers/{A}/windows/{number}/call-next", headers=clerk)
    assert r.status_code == 200, r.text
    return r.json()


async def test_recall_up_to_the_limit_then_the_clerk_must_skip(service_client, tokens):
    async with service_client("queue") as client:
        await hall(client, tokens)
        clerk = await signed_in(client, tokens)
        ticket = await issue(client, tokens)
        await call(client, clerk)
        recalls = [await client.post(f"/tickets/{ticket['id']}/recall", headers=clerk) for _ in range(3)]
        skipped = await client.post(f"/tickets/{ticket['id']}/skip", headers=clerk)
        free_again = await client.post(f"/centers/{A}/windows/1/call-next", headers=clerk)
        events = await outbox(client)
    assert [r.status_code for r in recalls] == [200, 200, 409]
    assert recalls[2].json()["code"] == "recall_limit_reached" and "过号" in recalls[2].json()["detail"]
    assert skipped.json()["status"] == "no_show"
    assert free_again.status_code == 204  # the window is free; nothing else waits
    recalled = [e["data"] for e in events if e["type"] == "ticket.recalled"]
    assert [r["recalls"] for r in recalled] == [1, 2]
    assert recalled[0]["call"]["announcement"] == "请A001号到1号窗口办理"
    assert [e["type"] for e in events].count("ticket.skipped") == 1


async def test_a_requeued_no_show_goes_behind_the_next_k_waiting_once(service_client, tokens, fixed_clock):
    async with service_client("queue") as client:
        await hall(client, tokens)
        clerk = await signed_in(client, tokens)
        first = await issue(client, tokens)
        for _ in range(4):
            fixed_clock.advance(seconds=30)
            await issue(client, tokens)  # A002..A005
        await call(client, clerk)
        await client.post(f"/tickets/{first['id']}/skip", headers=clerk)
        manager = tokens.headers("hall_manager", [A])
        back = await client.post(f"/tickets/{first['id']}/requeue", headers=manager)
        again = await client.post(f"/tickets/{first['id']}/requeue", headers=manager)
        order = []
        for _ in range(5):
            called = await call(client, clerk)
            order.append(called["number"])
            await client.post(f"/tickets/{called['id']}/skip", headers=clerk)
    assert back.status_code == 200 and back.json()["status"] == "waiting"
    assert again.status_code == 409 and again.json()["code"] == "not_no_show"  # it waits: no second requeue
    assert order == ["A002", "A003", "A004", "A001", "A005"]  # behind K = 3, ahead of the 4th


async def test_cancel_only_a_waiting_ticket(service_client, tokens):
    async with service_client("queue") as client:
        await hall(client, tokens)
        clerk = await signed_in(client, tokens)
        first, second = await issue(client, tokens), await issue(client, tokens)
        await call(client, clerk)
        called = await client.post(f"/tickets/{first['id']}/cancel", headers=clerk)
        waiting = await client.post(f"/tickets/{second['id']}/cancel", headers=tokens.headers("hall_manager", [A]))
        kiosk = await client.post(f"/tickets/{second['id']}/cancel", headers=tokens.headers("kiosk", [A]))
        rows = await client.db.fetch("SELECT number, status FROM tickets ORDER BY id")
        events = await outbox(client)
    assert called.status_code == 409 and called.json()["code"] == "not_waiting"
    assert waiting.json()["status"] == "cancelled" and kiosk.status_code == 403
    assert [tuple(r) for r in rows] == [("A001", "called"), ("A002", "cancelled")]
    assert [e["type"] for e in events].count("ticket.cancelled") == 1
    assert events[-1]["data"]["waiting"] == {"HJ": 0, "SB": 0}


async def test_a_transferred_ticket_keeps_its_number_and_is_first_in_line_there(service_client, tokens, fixed_clock):
    async with service_client("queue") as client:
        await hall(client, tokens, {"1": {"HJ": 1}, "2": {"SB": 1}, "3": {"SB": 1}})
        one, two, three = [await signed_in(client, tokens, n) for n in ("1", "2", "3")]
        early_sb = await issue(client, tokens, "SB")
        mine = await issue(client, tokens, "HJ")
        other = await issue(client, tokens, "HJ")
        fixed_clock.advance(minutes=5)
        await call(client, one)
        await client.post(f"/tickets/{mine['id']}/start", headers=one)
        fixed_clock.advance(minutes=4)
        to_window = await client.post(f"/tickets/{mine['id']}/transfer", json={"to_window": "3"}, headers=one)
        at_two = await call(client, two, "2")  # window 2 serves SB, but the transfer is to window 3
        at_three = await call(client, three, "3")
        await client.post(f"/tickets/{mine['id']}/start", headers=three)
        to_service = await client.post(f"/tickets/{mine['id']}/transfer", json={"to_service_code": "HJ"},
                                       headers=three)
        back_at_one = await call(client, one)
        events = await outbox(client)
    assert to_window.status_code == 200 and to_window.json()["status"] == "waiting"
    assert at_two["number"] == early_sb["number"]  # tier 4 there: the ordinary SB ticket
    assert at_three["number"] == "A001"  # tier 1: transferred to window 3 itself, keeping its number
    assert to_service.status_code == 200
    assert back_at_one["number"] == "A001" and other["number"] == "A002"  # tier 2 before the older A002
    moves = [e["data"] for e in events if e["type"] == "ticket.transferred"]
    assert [(m["from_window"], m["to_window"], m["to_service_code"]) for m in moves] == [
        ("1", "3", None), ("3", None, "HJ")]
    assert moves[0]["service_s"] == 240


async def test_a_transfer_needs_one_real_target_and_a_ticket_in_service(service_client, tokens):
    async with service_client("queue") as client:
        await hall(client, tokens)
        clerk = await signed_in(client, tokens)
        ticket = await issue(client, tokens)
        await call(client, clerk)
        not_started = await client.post(f"/tickets/{ticket['id']}/transfer", json={"to_window": "2"}, headers=clerk)
        await client.post(f"/tickets/{ticket['id']}/start", headers=clerk)
        answers = [await client.post(f"/tickets/{ticket['id']}/transfer", json=body, headers=clerk) for body in (
            {}, {"to_window": "2", "to_service_code": "SB"}, {"to_window": "9"}, {"to_service_code": "GS"},
            {"to_window": "1"})]
        rows = await client.db.fetch("SELECT status FROM tickets")
        events = await outbox(client)
    assert not_started.status_code == 409 and not_started.json()["code"] == "not_serving"
    assert [(r.status_code, r.json()["field"]) for r in answers] == [
        (422, "to_service_code"), (422, "to_service_code"), (422, "to_window"), (422, "to_service_code"),
        (422, "to_window")]
    assert rows[0]["status"] == "serving" and not [e for e in events if e["type"] == "ticket.transferred"]


async def test_closing_the_day_expires_what_waits_and_stops_issuing_until_reopened(service_client, tokens):
    async with service_client("queue") as client:
        await hall(client, tokens)
        clerk = await signed_in(client, tokens)
        served, no_show, waiting = [await issue(client, tokens) for _ in range(3)]
        await call(client, clerk)
        await client.post(f"/tickets/{served['id']}/skip", headers=clerk)  # A001 a no-show
        await call(client, clerk)  # A002 at the window: still served after the close (延时服务)
        manager = tokens.headers("hall_manager", [A])
        refused = await client.post(f"/centers/{A}/day/close", headers=clerk)
        closed = await client.post(f"/centers/{A}/day/close", headers=manager)
        kiosk = await client.post(f"/centers/{A}/tickets", json={"service_code": "HJ"},
                                  headers=tokens.headers("kiosk", [A]))
        reopened = await client.post(f"/centers/{A}/day/open", headers=manager)
        after = await issue(client, tokens)
        rows = await client.db.fetch("SELECT number, status FROM tickets ORDER BY id")
        events = await outbox(client)
    assert refused.status_code == 403
    assert closed.json()["expired"] == 2 and not closed.json()["open"]
    assert kiosk.status_code == 409 and kiosk.json()["code"] == "day_closed"
    assert reopened.status_code == 200 and after["number"] == "A004"
    assert [tuple(r) for r in rows] == [("A001", "expired"), ("A002", "called"), ("A003", "expired"),
                                        ("A004", "waiting")]
    expired = [e["data"] for e in events if e["type"] == "ticket.expired"]
    assert [(e["ticket"]["number"], e["status_before"]) for e in expired] == [("A001", "no_show"), ("A003", "waiting")]
    assert no_show and waiting


async def test_the_day_close_job_expires_a_day_at_its_close_time_and_any_day_it_missed(service_client, tokens,
                                                                                       fixed_clock):
    async with service_client("queue") as client:
        await hall(client, tokens)
        await issue(client, tokens)  # Thursday 12 February, 09:00
        sessions = client.app.state.sessionmaker
        async with sessions() as session, session.begin():
            await ticket_rules.close_due_days(session, datetime.fromisoformat("2026-02-12T22:55:00+08:00"))
        before = await client.db.fetch("SELECT status FROM tickets")
        async with sessions() as session, session.begin():
            await ticket_rules.close_due_days(session, datetime.fromisoformat("2026-02-13T08:00:00+08:00"))
        after = await client.db.fetch("SELECT status FROM tickets")
    assert before[0]["status"] == "waiting"  # 22:55: the 23:00 close has not come
    assert after[0]["status"] == "expired"  # the next morning: the day the job missed closed too
