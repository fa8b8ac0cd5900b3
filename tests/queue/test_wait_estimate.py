"""The estimated wait at issue (DOMAIN.md "Queue"): people ahead × the service's median service time of the last
two hours (its default without data) ÷ its open windows with a weight above 0; and ticket.turn_near, once per
ticket that left a phone, when the people ahead of it fall to the centre's threshold (3)."""

from __future__ import annotations

import json

from tests.queue.builders import A, center, outbox, service, window
from tests.queue.test_ticket_actions import call, signed_in
from tests.queue.test_tickets import issue

PHONE = "13812345678"


async def test_two_windows_six_ahead_and_a_ten_minute_median_estimate_thirty_minutes(service_client, tokens,
                                                                                      fixed_clock):
    async with service_client("queue") as client:
        await center(client, tokens)
        await service(client, tokens, "HJ", "A", default_service_minutes=5)
        await service(client, tokens, "SB", "B", default_service_minutes=7)
        await window(client, tokens, "1", {"HJ": 1})
        await window(client, tokens, "2", {"HJ": 1, "SB": 0})  # 社保 a reserve service at window 2
        one = await signed_in(client, tokens, "1")
        first = await issue(client, tokens)
        await issue(client, tokens)
        await issue(client, tokens)
        for minutes in (9, 10, 11):  # three served: the median is 10 minutes
            ticket = await call(client, one)
            await client.post(f"/tickets/{ticket['id']}/start", headers=one)
            fixed_clock.advance(minutes=minutes)
            await client.post(f"/tickets/{ticket['id']}/finish", headers=one)
        two = await signed_in(client, tokens, "2")
        for _ in range(6):
            await issue(client, tokens)
        seventh = await issue(client, tokens)
        social = [await issue(client, tokens, "SB") for _ in range(3)]
        await client.post(f"/centers/{A}/windows/2/away", json={"message": "稍候"}, headers=two)
        one_open = await issue(client, tokens)
    assert (first["people_ahead"], first["estimated_wait_s"]) == (0, 0)
    assert (seventh["people_ahead"], seventh["estimated_wait_s"]) == (6, 1800)  # 6 × 600 s ÷ 2 windows
    # no data for 社保 and no window serving it with a weight above 0: its default, divided by one
    assert [(t["people_ahead"], t["estimated_wait_s"]) for t in social] == [(0, 0), (1, 420), (2, 840)]
    assert (one_open["people_ahead"], one_open["estimated_wait_s"]) == (7, 4200)  # window 2 away: 7 × 600 ÷ 1


async def test_turn_near_fires_once_per_ticket_with_a_phone_when_three_are_ahead(service_client, tokens):
    async with service_client("queue") as client:
        await center(client, tokens)
        await service(client, tokens, "HJ", "A", department="D01")
        await window(client, tokens, "1", {"HJ": 1})
        clerk = await signed_in(client, tokens, "1")
        plain = [await issue(client, tokens) for _ in range(5)]  # A001..A005, no phone
        a006 = await issue(client, tokens, phone=PHONE)  # 5 ahead
        a007 = await issue(client, tokens, phone="13900001111")  # 6 ahead
        seen = []

        async def turn_near() -> list[tuple[str, int]]:
            return [(e["data"]["ticket"]["number"], e["data"]["people_ahead"])
                    for e in await outbox(client) if e["type"] == "ticket.turn_near"]

        async def call_and_skip() -> None:
            ticket = await call(client, clerk)
            r = await client.post(f"/tickets/{ticket['id']}/skip", headers=clerk)
            assert r.status_code == 200, r.text

        await call_and_skip()  # A001: A006 has 4 ahead
        seen.append(await turn_near())
        r = await client.post(f"/tickets/{plain[1]['id']}/cancel", headers=tokens.headers("hall_manager", [A]))
        assert r.status_code == 200, r.text  # A002 gone: A006 has 3 ahead
        seen.append(await turn_near())
        await call_and_skip()  # A003: A006 has 2 ahead, A007 3
        seen.append(await turn_near())
        await call_and_skip()  # A004: A006 has 1, A007 2
        events = await outbox(client)
    assert seen == [[], [("A006", 3)], [("A006", 3), ("A007", 3)]]
    near = [e["data"] for e in events if e["type"] == "ticket.turn_near"]
    assert [n["ticket"]["ticket_id"] for n in near] == [a006["id"], a007["id"]]  # once each, no more
    assert near[0]["phone_masked"] == "138****5678" and near[0]["phone_sealed"] and near[0]["phone_hash"]
    assert near[0]["estimated_wait_s"] == 3 * 600 and near[0]["ticket"]["department"] == "D01"
    assert PHONE not in json.dumps(events)
