"""A scripted hall day through the API: 3 services, 4 windows with different weights (a reserve service
at one, a duty window), walk-ins, the green channel, appointments early, on time and late, a transfer to a
window and one to a service, a no-show requeued behind K = 3. Every call is asserted, with the tier of
the rule that chose it (DOMAIN.md "Call next: the rule")."""

from __future__ import annotations

from datetime import datetime

from tests.queue.builders import A, center, outbox, service, window
from tests.queue.test_ticket_actions import signed_in
from tests.queue.test_tickets import issue

SLOTS = [{"weekday": 4, "start": "09:00", "end": "12:00", "minutes": 30, "capacity": 5}]  # Thursdays


def local(hm: str) -> datetime:
    return datetime.fromisoformat(f"2026-02-12T{hm}:00+08:00")  # Thursday 12 February 2026, a working day


async def test_a_hall_day_calls_in_the_order_the_rule_says(service_client, tokens, fixed_clock):
    clock = fixed_clock
    async with service_client("queue") as client:
        kiosk = tokens.headers("kiosk", [A])
        clock.set(local("08:50"))
        await center(client, tokens)
        await service(client, tokens, "HJ", "A", slots=SLOTS)  # 户籍
        await service(client, tokens, "SB", "B")  # 社保
        await service(client, tokens, "GJJ", "C")  # 公积金
        await window(client, tokens, "1", {"HJ": 2, "SB": 1})
        await window(client, tokens, "2", {"SB": 1, "GJJ": 0})  # 公积金 a reserve service here
        await window(client, tokens, "3", {"GJJ": 1})
        await window(client, tokens, "9", {"HJ": 1, "SB": 1}, duty=True)  # 综合值班 (weekend walk-ins)

        async def book(slot: str) -> str:
            r = await client.post(f"/centers/{A}/appointments", headers=kiosk,
                                  json={"service_code": "HJ", "slot_start": local(slot).isoformat()})
            assert r.status_code == 201, r.text
            return r.json()["code"]

        async def check_in(code: str):
            return await client.post(f"/appointments/{code}/check-in", headers=kiosk)

        at_930, at_1000, at_1130 = await book("09:30"), await book("10:00"), await book("11:30")
        w1, w2, w3 = [await signed_in(client, tokens, n) for n in ("1", "2", "3")]
        calls: list[tuple[str, str]] = []

        async def call(headers, number: str, finish: bool = True) -> dict:
            r = await client.post(f"/centers/{A}/windows/{number}/call-next", headers=headers)
            assert r.status_code == 200, (number, r.status_code, r.text)
            ticket = r.json()
            calls.append((number, ticket["number"]))
            if finish:
                await client.post(f"/tickets/{ticket['id']}/start", headers=headers)
                await client.post(f"/tickets/{ticket['id']}/finish", headers=headers)
            return ticket

        clock.set(local("09:00"))
        await issue(client, tokens, "HJ")  # A001
        await issue(client, tokens, "SB")  # B001
        clock.set(local("09:01"))
        await issue(client, tokens, "HJ", kind="green")  # A002, 绿色通道
        clock.set(local("09:05"))
        early = await check_in(at_930)  # 25 minutes early: an appointment ticket, A003
        too_early = await check_in(at_1130)  # 145 minutes early: not yet (check-in opens 60 minutes before)
        await issue(client, tokens, "GJJ")  # C001

        clock.set(local("09:10"))
        await call(w1, "1")  # A002: tier 4, green first while the streak (0) is below N (3)
        clock.set(local("09:12"))
        # tier 4 ordinary: the heads are A001 (waited 720 s x 2) and B001 (720 s x 1); A003's slot has not
        # started, so it is an ordinary ticket arrived at its check-in (09:05), behind A001
        a001 = await call(w1, "1", finish=False)
        await client.post(f"/tickets/{a001['id']}/start", headers=w1)
        clock.set(local("09:15"))
        moved = await client.post(f"/tickets/{a001['id']}/transfer", json={"to_service_code": "SB"}, headers=w1)
        assert moved.status_code == 200, moved.text
        await call(w2, "2")  # A001 again: tier 2, transferred to a service window 2 serves, before B001
        b001 = await call(w2, "2", finish=False)  # B001: tier 4
        clock.set(local("09:17"))
        await client.post(f"/tickets/{b001['id']}/skip", headers=w2)  # 过号
        for minute in ("09:17", "09:18", "09:19", "09:20"):
            clock.set(local(minute))
            await issue(client, tokens, "SB")  # B002..B005
        requeued = await client.post(f"/tickets/{b001['id']}/requeue", headers=tokens.headers("hall_manager", [A]))
        assert requeued.status_code == 200, requeued.text
        clock.set(local("09:21"))
        for _ in range(5):
            await call(w2, "2")  # B002, B003, B004, then B001 behind K = 3, then B005

        clock.set(local("09:30"))
        await call(w1, "1")  # A003: tier 3, a checked-in appointment whose slot has started
        clock.set(local("09:58"))
        on_time = await check_in(at_1000)  # A004
        clock.set(local("11:55"))
        late = await check_in(at_1130)  # 25 minutes after its slot: a walk-in ticket instead, A005
        clock.set(local("12:05"))
        await call(w2, "2")  # C001: tier 5, the reserve service, as nothing else waits for window 2
        a004 = await call(w1, "1", finish=False)  # A004: tier 3 (slot 10:00 started)
        await client.post(f"/tickets/{a004['id']}/start", headers=w1)
        await client.post(f"/tickets/{a004['id']}/transfer", json={"to_window": "3"}, headers=w1)
        await call(w3, "3")  # A004 at window 3: tier 1, transferred to it, though it serves no 户籍
        await call(w1, "1")  # the late check-in's walk-in ticket, A005: tier 4
        events = await outbox(client)

    assert early.status_code == 201 and early.json()["on_time"] and early.json()["ticket"]["kind"] == "appointment"
    assert too_early.status_code == 409 and too_early.json()["code"] == "too_early"
    assert on_time.status_code == 201 and on_time.json()["on_time"]
    assert late.status_code == 201 and not late.json()["on_time"]
    assert late.json()["ticket"]["kind"] == "walk_in" and late.json()["message"]
    assert calls == [("1", "A002"), ("1", "A001"), ("2", "A001"), ("2", "B001"), ("2", "B002"), ("2", "B003"),
                     ("2", "B004"), ("2", "B001"), ("2", "B005"), ("1", "A003"), ("2", "C001"), ("1", "A004"),
                     ("3", "A004"), ("1", "A005")]
    tiers = [(e["data"]["ticket"]["number"], e["data"]["call"]["tier"]) for e in events if e["type"] == "ticket.called"]
    assert tiers == [("A002", 4), ("A001", 4), ("A001", 2), ("B001", 4), ("B002", 4), ("B003", 4), ("B004", 4),
                     ("B001", 4), ("B005", 4), ("A003", 3), ("C001", 5), ("A004", 3), ("A004", 1), ("A005", 4)]
