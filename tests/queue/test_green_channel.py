"""The N:1 rule through the API: green tickets go first while the window's streak is below N, an ordinary
ticket comes after at most N of them, and the streak survives a restart of the service between calls."""

from __future__ import annotations

import importlib

from tests.conftest import running_app, service_settings
from tests.queue.builders import A
from tests.queue.test_ticket_actions import signed_in
from tests.queue.test_tickets import hall, issue


async def _call_and_finish(client, clerk) -> str:
    r = await client.post(f"/centers/{A}/windows/1/call-next", headers=clerk)
    assert r.status_code == 200, r.text
    ticket = r.json()
    await client.post(f"/tickets/{ticket['id']}/start", headers=clerk)
    await client.post(f"/tickets/{ticket['id']}/finish", headers=clerk)
    return ticket["number"]


async def test_green_tickets_first_yet_an_ordinary_one_after_at_most_n_even_across_a_restart(
        service_client, tokens, fixed_clock):
    async with service_client("queue") as client:
        await hall(client, tokens)
        clerk = await signed_in(client, tokens, "1", "u-1")
        ordinary = await issue(client, tokens)  # A001, the oldest
        fixed_clock.advance(minutes=1)
        for _ in range(5):
            await issue(client, tokens, kind="green")  # A002..A006, arriving after it
        order = [await _call_and_finish(client, clerk) for _ in range(2)]
        db = client.db
        streak = (await db.fetch("SELECT priority_streak FROM windows WHERE number = '1'"))[0]["priority_streak"]
    # a new process on the same database: the streak is in the window's row, not in memory
    main = importlib.import_module("services.queue.main")
    restarted = main.create_app(service_settings("queue", db), clock=fixed_clock)
    async with running_app(restarted) as client:
        order += [await _call_and_finish(client, clerk) for _ in range(4)]
    assert streak == 2
    assert order == ["A002", "A003", "A004", "A001", "A005", "A006"]  # N = 3 greens, then the older ordinary
    assert ordinary["number"] == "A001"
