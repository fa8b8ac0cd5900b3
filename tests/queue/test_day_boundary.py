"""Tickets either side of local midnight (Asia/Shanghai): each lands on its own local business day, numbers
start again at 001, and the new day's line does not hold the old day's waiting tickets.

00:00:01 local is still the previous day in UTC (16:00:01Z), so a business date taken from the UTC date
would put it on the wrong day. Tue 10 and Wed 11 March 2026 are ordinary working days."""

from __future__ import annotations

from datetime import date, datetime

from tests.queue.builders import A, center, outbox, service, window

TUESDAY, WEDNESDAY = date(2026, 3, 10), date(2026, 3, 11)
BEFORE_MIDNIGHT = datetime.fromisoformat("2026-03-10T23:59:59+08:00")
AFTER_MIDNIGHT = datetime.fromisoformat("2026-03-11T00:00:01+08:00")
# a night opening: periods are start-inclusive, end-exclusive and cannot run past midnight, so Tuesday's
# ends at the last instant before it and Wednesday's starts at 00:00
LATE_NIGHT = [{"start": "23:00:00", "end": "23:59:59.999999"}]
SMALL_HOURS = [{"start": "00:00:00", "end": "01:00:00"}]
WEEKDAY = [{"start": "09:00", "end": "12:00"}, {"start": "13:30", "end": "17:30"}]


async def night_hall(client, tokens) -> None:
    """A centre open 23:00 on Tuesday through 01:00 on Wednesday, its day closing only at midnight."""
    admin = tokens.headers("center_admin", [A])
    await center(client, tokens)
    await service(client, tokens, "HJ", "A", department="D01")
    await service(client, tokens, "SB", "B", department="D02")
    await window(client, tokens, "1", {"HJ": 1, "SB": 1})
    schedule = {"weekly": {str(d): WEEKDAY if d <= 5 else [] for d in range(1, 8)},
                "exceptions": [{"date": TUESDAY.isoformat(), "periods": LATE_NIGHT, "reason": "夜间延时服务"},
                               {"date": WEDNESDAY.isoformat(), "periods": SMALL_HOURS, "reason": "夜间延时服务"}]}
    r = await client.put(f"/centers/{A}/schedule", json=schedule, headers=admin)
    assert r.status_code == 200, r.text
    r = await client.put(f"/centers/{A}/settings", json={"day_close_time": "23:59:59.999999"}, headers=admin)
    assert r.status_code == 200, r.text


async def issue(client, tokens, service_code: str = "HJ") -> dict:
    r = await client.post(f"/centers/{A}/tickets", json={"service_code": service_code},
                          headers=tokens.headers("kiosk", [A]))
    assert r.status_code == 201, r.text
    return r.json()


def clerk(tokens) -> dict[str, str]:
    return tokens.headers("clerk", [A], department="D01", window="1", subject="u-clerk-1", device="term-1")


async def test_tickets_either_side_of_midnight_land_on_their_local_days_and_restart_at_001(service_client,
                                                                                          tokens, fixed_clock):
    fixed_clock.set(BEFORE_MIDNIGHT.replace(hour=23, minute=0, second=0))
    async with service_client("queue") as client:
        await night_hall(client, tokens)
        evening = [await issue(client, tokens), await issue(client, tokens, "SB")]
        fixed_clock.set(BEFORE_MIDNIGHT)
        last = [await issue(client, tokens), await issue(client, tokens, "SB")]
        fixed_clock.set(AFTER_MIDNIGHT)
        first = [await issue(client, tokens), await issue(client, tokens, "SB")]
        rows = await client.db.fetch("SELECT id, business_date FROM tickets")
        counters = await client.db.fetch("SELECT scope, business_date, value FROM daily_counters")
        events = await outbox(client)
    assert [t["number"] for t in evening + last] == ["A001", "B001", "A002", "B002"]
    assert [t["number"] for t in first] == ["A001", "B001"]  # a new local day, new numbers
    day_of = {r["id"]: r["business_date"] for r in rows}
    assert [day_of[t["id"]] for t in evening + last + first] == [TUESDAY] * 4 + [WEDNESDAY] * 2
    assert {(r["scope"], r["business_date"], r["value"]) for r in counters} == {
        (f"ticket:{A}:HJ", TUESDAY, 2), (f"ticket:{A}:SB", TUESDAY, 2),
        (f"ticket:{A}:HJ", WEDNESDAY, 1), (f"ticket:{A}:SB", WEDNESDAY, 1)}
    issued = {e["data"]["ticket"]["ticket_id"]: e["data"]["ticket"] for e in events if e["type"] == "ticket.issued"}
    assert issued[first[0]["id"]]["business_date"] == WEDNESDAY.isoformat()
    assert issued[last[0]["id"]]["business_date"] == TUESDAY.isoformat()
    assert datetime.fromisoformat(first[0]["issued_at"]) == AFTER_MIDNIGHT  # 2026-03-10T16:00:01Z


async def test_the_next_days_call_next_and_line_do_not_hold_the_previous_days_waiting_ticket(service_client,
                                                                                            tokens, fixed_clock):
    fixed_clock.set(BEFORE_MIDNIGHT)
    async with service_client("queue") as client:
        await night_hall(client, tokens)
        signed = await client.post(f"/centers/{A}/windows/1/sign-in", headers=clerk(tokens))
        assert signed.status_code == 200, signed.text
        yesterdays = await issue(client, tokens)
        fixed_clock.set(AFTER_MIDNIGHT)
        nothing = await client.post(f"/centers/{A}/windows/1/call-next", headers=clerk(tokens))
        todays = await issue(client, tokens)
        called = await client.post(f"/centers/{A}/windows/1/call-next", headers=clerk(tokens))
        old = await client.db.fetch('SELECT status, "window" FROM tickets WHERE id = $1', yesterdays["id"])
        events = await outbox(client)
    assert nothing.status_code == 204  # Tuesday's A001 still waits, but not in Wednesday's line
    assert todays["number"] == "A001" and todays["people_ahead"] == 0 and todays["estimated_wait_s"] == 0
    assert called.status_code == 200 and called.json()["id"] == todays["id"] and called.json()["number"] == "A001"
    assert (old[0]["status"], old[0]["window"]) == ("waiting", None)  # never called on Wednesday
    counts = [(e["data"]["business_date"], e["data"]["waiting"]) for e in events if e["type"] == "queue.waiting_counts"]
    wednesday = WEDNESDAY.isoformat()
    assert counts[-2:] == [(wednesday, {"HJ": 1, "SB": 0}), (wednesday, {"HJ": 0, "SB": 0})]  # Tuesday's not counted
