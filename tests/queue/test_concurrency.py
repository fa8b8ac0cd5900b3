"""Issuing and calling under concurrency, through a pool of real PostgreSQL connections: 200 kiosks at once
get A001..A200 with no gap and no repeat; 50 windows calling at once over 2,000 tickets call each exactly
once, one ticket at a time per window.

Without the lock on the chosen ticket (`repository.take_waiting_ticket` as a plain SELECT) the second test
fails: all 50 windows read A001 as waiting and all 50 call it (the last write wins the row), and the 49
others' clerks are refused when they start it."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from services.queue.tickets import LOOKUP_ALPHABET
from tests.queue.builders import A, center, outbox, service, window

POOL = 60  # connections the app may hold at once (no overflow): more than the 50 windows
WINDOWS = 50
TICKETS = 2_000
KIOSKS = 200


def at_window(tokens: Any, number: str) -> dict[str, str]:
    """The token a clerk's sign-in at window `number`'s terminal gives; one clerk per window."""
    return tokens.headers("clerk", [A], department="D01", window=number, subject=f"u-clerk-{number}",
                          device=f"term-{number}")


@contextmanager
def connections_in_use(engine: AsyncEngine) -> Iterator[list[int]]:
    """The most connections the app's pool had checked out at once while inside the block: peak[0]."""
    pool = engine.sync_engine.pool
    peak = [0]

    def on_checkout(*_: object) -> None:
        peak[0] = max(peak[0], pool.checkedout())

    event.listen(pool, "checkout", on_checkout)
    try:
        yield peak
    finally:
        event.remove(pool, "checkout", on_checkout)


async def issue_at_once(client: Any, tokens: Any, count: int) -> list[Any]:
    kiosk = tokens.headers("kiosk", [A])
    return await asyncio.gather(*(client.post(f"/centers/{A}/tickets", json={"service_code": "HJ"}, headers=kiosk)
                                  for _ in range(count)))


async def waiting_like(client: Any, tokens: Any, count: int) -> list[int]:
    """`count` waiting tickets A001.. as issue_ticket writes them, fast: the first through the API, the
    others copies of its row with the next numbers, and the day's counter moved on to match.

    Through the API 2,000 tickets take minutes here (each issue reads every waiting ticket for its
    estimate); the calls, not the issuing, are under test, and they read only the tickets and windows. The
    copies have no ticket.issued event in the outbox."""
    (first,) = await issue_at_once(client, tokens, 1)
    assert first.status_code == 201, first.text
    conn = await asyncpg.connect(client.db.dsn)
    try:
        async with conn.transaction():
            template = dict(await conn.fetchrow("SELECT * FROM tickets WHERE id = $1", first.json()["id"]))
            del template["id"]  # GENERATED ALWAYS
            assert (template["seq"], template["number"]) == (1, "A001")
            rows = [{**template, "seq": seq, "number": f"A{seq:03d}",
                     "lookup_code": "".join(secrets.choice(LOOKUP_ALPHABET) for _ in range(6))}
                    for seq in range(2, count + 1)]
            await conn.copy_records_to_table("tickets", columns=list(template),
                                             records=[tuple(row.values()) for row in rows])
            moved = await conn.execute("UPDATE daily_counters SET value = $1 WHERE scope = $2 AND value = 1",
                                       count, f"ticket:{A}:HJ")
            assert moved == "UPDATE 1"
        return [r["id"] for r in await conn.fetch("SELECT id FROM tickets WHERE status = 'waiting' ORDER BY seq")]
    finally:
        await conn.close()


async def test_200_kiosks_at_once_get_unique_consecutive_numbers(service_client, tokens):
    # the issue's counter row is held to each commit, so the 200 go one at a time: on a loaded machine the
    # last waits longer than the pool's 10 s (a 503 busy, by design); this test is about the numbers
    async with service_client("queue", db_pool_size=POOL, db_max_overflow=0, db_pool_timeout=120) as client:
        await center(client, tokens)
        await service(client, tokens, "HJ", "A", department="D01")
        began = time.perf_counter()
        with connections_in_use(client.app.state.engine) as peak:
            answers = await issue_at_once(client, tokens, KIOSKS)
        issuing_s = time.perf_counter() - began
        counter = await client.db.fetch("SELECT value FROM daily_counters WHERE scope = $1", f"ticket:{A}:HJ")
        rows = await client.db.fetch("SELECT seq, number FROM tickets ORDER BY seq")
        events = await outbox(client)
    print(f"\n{KIOSKS} kiosks at once: {issuing_s:.1f} s ({KIOSKS / issuing_s:.0f} requests/s), "
          f"{peak[0]} connections in use at once")
    assert Counter(r.status_code for r in answers) == {201: KIOSKS}, {r.status_code: r.text for r in answers}
    numbers = sorted(r.json()["number"] for r in answers)
    assert numbers == [f"A{n:03d}" for n in range(1, KIOSKS + 1)]  # unique and consecutive: no gap, no repeat
    assert [r["seq"] for r in rows] == list(range(1, KIOSKS + 1))
    assert counter[0]["value"] == KIOSKS
    issued = Counter(e["data"]["ticket"]["number"] for e in events if e["type"] == "ticket.issued")
    assert len(issued) == KIOSKS and set(issued.values()) == {1}
    assert peak[0] >= 50, f"only {peak[0]} connections were in use at once"


async def serve_until_empty(client: Any, headers: dict[str, str], number: str) -> list[tuple[str, int, int]]:
    """One window's clerk: call-next, start, finish, again, until call-next answers 204. The answers seen."""
    seen: list[tuple[str, int, int]] = []
    while True:
        called = await client.post(f"/centers/{A}/windows/{number}/call-next", headers=headers)
        seen.append(("call-next", called.status_code, called.json()["id"] if called.status_code == 200 else 0))
        if called.status_code != 200:
            return seen
        ticket_id = called.json()["id"]
        for step in ("start", "finish"):
            r = await client.post(f"/tickets/{ticket_id}/{step}", headers=headers)
            seen.append((step, r.status_code, ticket_id))
            if r.status_code != 200:
                return seen


async def test_50_windows_calling_at_once_call_each_of_2000_tickets_exactly_once(service_client, tokens):
    async with service_client("queue", db_pool_size=POOL, db_max_overflow=0, db_pool_timeout=120) as client:
        await center(client, tokens)
        await service(client, tokens, "HJ", "A", department="D01")
        numbers = [str(n) for n in range(1, WINDOWS + 1)]
        for number in numbers:
            await window(client, tokens, number, {"HJ": 1})
            r = await client.post(f"/centers/{A}/windows/{number}/sign-in", headers=at_window(tokens, number))
            assert r.status_code == 200, r.text
        waiting = await waiting_like(client, tokens, TICKETS)
        assert len(waiting) == TICKETS
        began = time.perf_counter()
        with connections_in_use(client.app.state.engine) as peak:
            loops = await asyncio.gather(*(serve_until_empty(client, at_window(tokens, n), n) for n in numbers))
        calling_s = time.perf_counter() - began
        events = await outbox(client)
        statuses = await client.db.fetch("SELECT status, count(*) AS n FROM tickets GROUP BY status")
        active = [r["active_ticket_id"] for r in await client.db.fetch("SELECT active_ticket_id FROM windows")]
    print(f"\ncalling {TICKETS} tickets from {WINDOWS} windows at once: {3 * TICKETS} requests in {calling_s:.1f} s "
          f"({3 * TICKETS / calling_s:.0f} requests/s), {peak[0]} connections in use at once")
    handed_out = Counter(t for seen in loops for step, status, t in seen if (step, status) == ("call-next", 200))
    called = Counter(e["data"]["ticket"]["ticket_id"] for e in events if e["type"] == "ticket.called")
    answers = Counter((step, status) for seen in loops for step, status, _ in seen)
    twice = sorted(t for t in handed_out.keys() | called.keys() if handed_out[t] > 1 or called[t] > 1)
    assert not twice, (f"{len(twice)} tickets called more than once (id, answers, events): "
                       f"{[(t, handed_out[t], called[t]) for t in twice[:5]]}; answers: {dict(answers)}")
    assert handed_out.keys() == called.keys() == set(waiting)  # each of the 2,000, exactly once
    assert answers == {("call-next", 200): TICKETS, ("start", 200): TICKETS, ("finish", 200): TICKETS,
                       ("call-next", 204): WINDOWS}  # no 5xx, no 4xx, and every window ran dry
    assert {r["status"]: r["n"] for r in statuses} == {"done": TICKETS} and active == [None] * WINDOWS
    by_window: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for e in events:  # in outbox order, which is commit order for one window (its row lock orders its calls)
        if e["type"] in ("ticket.called", "ticket.started", "ticket.finished"):
            where = e["data"]["call"]["window"] if e["type"] == "ticket.called" else e["data"]["window"]
            by_window[where].append((e["type"], e["data"]["ticket"]["ticket_id"]))
    assert sorted(by_window, key=int) == numbers  # every window took part
    for number, steps in by_window.items():
        ids = [t for _, t in steps[::3]]
        assert steps == [(kind, t) for t in ids for kind in ("ticket.called", "ticket.started", "ticket.finished")], \
            f"window {number} had a second ticket called before the first was finished"
        # all are walk-ins of one service with one arrival time: the rule's tie goes to the lower id
        assert ids == sorted(ids), f"window {number} called out of order"
    assert peak[0] >= WINDOWS, f"only {peak[0]} connections were in use at once"
