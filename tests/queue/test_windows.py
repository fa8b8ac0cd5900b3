"""Windows at work: away with a message and back, closing with a reason, the B post stepping in (AB角), the
terminal's heartbeat lost after 90 s and restored by a beat, and vacancy (空岗) in the hall status, counted
in opening hours only. Thursday 12 February 2026 keeps the default hours 09:00-12:00 and 13:30-17:30."""

from __future__ import annotations

from datetime import datetime

from services.queue import windows as window_rules
from tests.queue.builders import A, center, outbox, service, window
from tests.queue.test_ticket_actions import call
from tests.queue.test_tickets import at_window, issue

CLERK_A, CLERK_B = "u-a", "u-b"


def local(hm: str) -> datetime:
    """A local time of Thursday 12 February 2026: "09:00" or "09:01:30"."""
    seconds = "" if hm.count(":") == 2 else ":00"
    return datetime.fromisoformat(f"2026-02-12T{hm}{seconds}+08:00")


async def ab_hall(client, tokens) -> tuple[dict[str, str], dict[str, str]]:
    """Window 1 (户籍) with its A and B posts; the A post signed in. Returns the A and B posts' headers."""
    await center(client, tokens)
    await service(client, tokens, "HJ", "A", department="D01")
    await window(client, tokens, "1", {"HJ": 1}, a_clerk=CLERK_A, b_clerk=CLERK_B)
    a, b = at_window(tokens, "1", CLERK_A), at_window(tokens, "1", CLERK_B)
    r = await client.post(f"/centers/{A}/windows/1/sign-in", headers=a)
    assert r.status_code == 200, r.text
    return a, b


async def status_of(client, tokens, number: str = "1") -> dict:
    r = await client.get(f"/centers/{A}/status", headers=tokens.headers("supervisor", [A]))
    assert r.status_code == 200, r.text
    return next(w for w in r.json()["windows"] if w["number"] == number)


async def run_heartbeat_job(client, at: datetime) -> None:
    async with client.app.state.sessionmaker() as session, session.begin():
        await window_rules.detect_lost_heartbeats(session, at)


async def test_away_four_minutes_with_tickets_waiting_is_vacant_until_the_b_post_signs_in(service_client, tokens,
                                                                                         fixed_clock):
    fixed_clock.set(local("09:00"))
    async with service_client("queue") as client:
        a, b = await ab_hall(client, tokens)
        await issue(client, tokens)
        await issue(client, tokens)
        r = await client.post(f"/centers/{A}/windows/1/away", json={"message": "3分钟内返回"}, headers=a)
        assert r.status_code == 200 and r.json()["state"] == "away", r.text
        fixed_clock.set(local("09:02"))
        within = await status_of(client, tokens)
        fixed_clock.set(local("09:04"))
        over = await status_of(client, tokens)
        refused = await client.post(f"/centers/{A}/windows/1/sign-in",
                                    headers=at_window(tokens, "1", "u-somebody"))  # neither post
        stepped_in = await client.post(f"/centers/{A}/windows/1/sign-in", headers=b)
        cleared = await status_of(client, tokens)
        called = await call(client, b)  # the B post acts with the A post's rights
        events = await outbox(client)
    assert within["vacancy"]["counted_s"] == 120 and not within["vacancy"]["over_limit"] and not within["vacant"]
    assert over["vacant"] and datetime.fromisoformat(over["vacancy"].pop("since")) == local("09:00")
    assert over["vacancy"] == {"reason": "away", "counted_s": 240, "limit_s": 180, "over_limit": True, "vacant": True}
    assert over["away_message"] == "3分钟内返回" and over["clerk"]["id"] == CLERK_A and over["waiting"] == 2
    assert refused.status_code == 403
    assert stepped_in.status_code == 200 and stepped_in.json()["post"] == "B"
    assert cleared["vacancy"] is None and not cleared["vacant"] and cleared["state"] == "open"
    assert (cleared["clerk"]["id"], cleared["post"]) == (CLERK_B, "B")
    assert called["number"] == "A001" and called["clerk_id"] == CLERK_B
    window_events = [(e["type"], e["data"].get("clerk_id") or e["data"].get("clerk", {}).get("id"))
                     for e in events if e["type"].startswith("window.") and e["type"] != "window.upserted"]
    assert window_events == [("window.signed_in", CLERK_A), ("window.away", CLERK_A),
                             ("window.signed_out", CLERK_A), ("window.signed_in", CLERK_B)]
    away = next(e["data"] for e in events if e["type"] == "window.away")
    assert away["message"] == "3分钟内返回" and away["post"] == "A"
    signed_out = next(e["data"] for e in events if e["type"] == "window.signed_out")
    assert signed_out["reason"] == "B岗接替"
    assert [e["data"]["replaces"] for e in events if e["type"] == "window.signed_in"] == [None, CLERK_A]


async def test_the_b_post_cannot_take_a_window_whose_a_post_is_at_work(service_client, tokens):
    async with service_client("queue") as client:
        _, b = await ab_hall(client, tokens)
        r = await client.post(f"/centers/{A}/windows/1/sign-in", headers=b)
    assert r.status_code == 409 and r.json()["code"] == "window_taken"


async def test_vacancy_counts_opening_hours_only_and_needs_waiting_tickets(service_client, tokens, fixed_clock):
    fixed_clock.set(local("11:58"))
    async with service_client("queue") as client:
        a, _ = await ab_hall(client, tokens)
        r = await client.post(f"/centers/{A}/windows/1/away", json={"message": "午休后返回"}, headers=a)
        assert r.status_code == 200, r.text
        fixed_clock.set(local("13:31"))
        nobody_waits = await status_of(client, tokens)  # 2 min before noon + 1 min after 13:30
        fixed_clock.set(local("13:32"))
        await issue(client, tokens)
        waits = await status_of(client, tokens)
    assert nobody_waits["vacancy"]["counted_s"] == 180 and not nobody_waits["vacancy"]["over_limit"]
    assert waits["vacancy"]["counted_s"] == 240 and waits["vacancy"]["over_limit"] and waits["vacant"]
    assert not nobody_waits["vacant"]  # over nothing: no ticket was waiting at 13:31


async def test_away_back_and_close_carry_their_message_and_reason(service_client, tokens, fixed_clock):
    async with service_client("queue") as client:
        a, _ = await ab_hall(client, tokens)
        ticket = await issue(client, tokens)
        await call(client, a)
        busy = await client.post(f"/centers/{A}/windows/1/away", json={"message": "稍候"}, headers=a)
        await client.post(f"/tickets/{ticket['id']}/skip", headers=a)
        no_message = await client.post(f"/centers/{A}/windows/1/away", json={}, headers=a)
        away = await client.post(f"/centers/{A}/windows/1/away", json={"message": "去档案室，5分钟"}, headers=a)
        fixed_clock.advance(minutes=2, seconds=5)
        back = await client.post(f"/centers/{A}/windows/1/back", headers=a)
        again = await client.post(f"/centers/{A}/windows/1/back", headers=a)
        manager = tokens.headers("hall_manager", [A])
        no_reason = await client.post(f"/centers/{A}/windows/1/close", json={}, headers=manager)
        closed = await client.post(f"/centers/{A}/windows/1/close", json={"reason": "系统故障"}, headers=manager)
        call_closed = await client.post(f"/centers/{A}/windows/1/call-next", headers=a)
        reopened = await client.post(f"/centers/{A}/windows/1/sign-in", headers=a)
        own_close = await client.post(f"/centers/{A}/windows/1/close", headers=a)
        events = await outbox(client)
    assert busy.status_code == 409 and busy.json()["code"] == "ticket_active"
    assert no_message.status_code == 422 and no_message.json()["field"] == "message"
    assert away.status_code == 200 and away.json()["away_message"] == "去档案室，5分钟"
    assert back.status_code == 200 and back.json()["state"] == "open" and back.json()["away_message"] is None
    assert again.status_code == 409 and again.json()["code"] == "not_away"
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "reason"
    assert closed.status_code == 200 and closed.json()["state"] == "closed" and closed.json()["clerk_id"] is None
    assert closed.json()["closed_reason"] == "系统故障"
    assert call_closed.status_code == 409 and call_closed.json()["code"] == "not_signed_in"
    assert reopened.status_code == 200 and reopened.json()["state"] == "open"
    assert own_close.status_code == 200 and own_close.json()["closed_reason"] == "下班"
    by_type = {}
    for e in events:
        by_type.setdefault(e["type"], []).append(e["data"])
    assert by_type["window.back"] == [{"center_id": A, "window": "1", "clerk_id": CLERK_A, "post": "A",
                                       "message": "去档案室，5分钟", "away_s": 125,
                                       "at": by_type["window.back"][0]["at"]}]
    assert [(c["reason"], c["clerk_id"], c["by"]) for c in by_type["window.closed"]] == [
        ("系统故障", CLERK_A, "test-hall_manager"), ("下班", CLERK_A, CLERK_A)]


async def test_a_clerk_of_another_window_cannot_step_away_or_close_it(service_client, tokens):
    async with service_client("queue") as client:
        await ab_hall(client, tokens)
        elsewhere = at_window(tokens, "2", CLERK_A)
        away = await client.post(f"/centers/{A}/windows/1/away", json={"message": "稍候"}, headers=elsewhere)
        close = await client.post(f"/centers/{A}/windows/1/close", headers=elsewhere)
        other_centre = await client.post(f"/centers/{A}/windows/1/close", json={"reason": "业务学习"},
                                         headers=tokens.headers("hall_manager", ["320104"]))
    assert away.status_code == 403 and away.json()["code"] == "wrong_window"
    assert close.status_code == 403 and close.json()["code"] == "wrong_window"
    assert other_centre.status_code == 403


async def test_ninety_seconds_of_silence_lose_the_heartbeat_once_and_one_beat_restores_it(service_client, tokens,
                                                                                         fixed_clock):
    fixed_clock.set(local("09:00"))
    async with service_client("queue") as client:
        await ab_hall(client, tokens)
        terminal = tokens.headers("terminal", [A], window="1", device="term-1")
        await run_heartbeat_job(client, local("09:01:29"))
        before = await status_of(client, tokens)
        await run_heartbeat_job(client, local("09:01:30"))
        await run_heartbeat_job(client, local("09:01:40"))  # still silent: nothing more
        fixed_clock.set(local("09:01:45"))
        silent = await status_of(client, tokens)
        first = await client.post(f"/centers/{A}/windows/1/heartbeat", headers=terminal)
        fixed_clock.advance(seconds=30)
        second = await client.post(f"/centers/{A}/windows/1/heartbeat", headers=terminal)
        await run_heartbeat_job(client, local("09:02:30"))  # beaten 15 s ago
        wrong = await client.post(f"/centers/{A}/windows/1/heartbeat",
                                  headers=tokens.headers("terminal", [A], window="2", device="term-2"))
        events = await outbox(client)
    assert not before["silent"] and before["heartbeat_age_s"] is not None
    assert silent["silent"] and silent["heartbeat_age_s"] == 105
    assert first.status_code == 200 and first.json()["restored"] and first.json()["next_beat_s"] == 30
    assert second.status_code == 200 and not second.json()["restored"]
    assert wrong.status_code == 403
    lost = [e["data"] for e in events if e["type"] == "window.heartbeat_lost"]
    restored = [e["data"] for e in events if e["type"] == "window.heartbeat_restored"]
    assert len(lost) == 1 and datetime.fromisoformat(lost[0]["last_heartbeat_at"]) == local("09:00")
    assert {k: lost[0][k] for k in ("window", "clerk_id", "post", "silent_s")} == {
        "window": "1", "clerk_id": CLERK_A, "post": "A", "silent_s": 90}
    assert len(restored) == 1 and restored[0]["silent_s"] == 105 and restored[0]["clerk_id"] == CLERK_A


async def test_a_silent_window_is_vacant_counted_from_its_last_beat_and_the_b_post_may_step_in(service_client,
                                                                                              tokens, fixed_clock):
    fixed_clock.set(local("09:00"))
    async with service_client("queue") as client:
        _, b = await ab_hall(client, tokens)
        await issue(client, tokens)
        fixed_clock.set(local("09:03:30"))
        silent = await status_of(client, tokens)
        stepped_in = await client.post(f"/centers/{A}/windows/1/sign-in", headers=b)
        after = await status_of(client, tokens)
    assert silent["vacancy"]["reason"] == "silent" and silent["vacancy"]["counted_s"] == 210 and silent["vacant"]
    assert stepped_in.status_code == 200 and after["vacancy"] is None and after["clerk"]["id"] == CLERK_B


async def test_a_window_whose_a_post_is_on_leave_and_nobody_holds_it_is_flagged(service_client, tokens,
                                                                               fixed_clock):
    fixed_clock.set(local("09:00"))
    async with service_client("queue") as client:
        await center(client, tokens)
        await service(client, tokens, "HJ", "A")
        await window(client, tokens, "1", {"HJ": 1}, a_clerk=CLERK_A, b_clerk=CLERK_B)
        await window(client, tokens, "2", {"HJ": 1}, a_clerk="u-c")
        manager = tokens.headers("hall_manager", [A])
        bad = await client.post(f"/centers/{A}/leave", headers=manager,
                                json={"clerk_id": CLERK_A, "starts_on": "2026-02-12", "ends_on": "2026-02-11"})
        leave = await client.post(f"/centers/{A}/leave", headers=manager,
                                  json={"clerk_id": CLERK_A, "starts_on": "2026-02-12", "ends_on": "2026-02-13",
                                        "reason": "年休假"})
        flagged = await status_of(client, tokens)
        other = await status_of(client, tokens, "2")
        fixed_clock.set(local("12:30"))
        lunch = await status_of(client, tokens)
        fixed_clock.set(local("13:30"))
        r = await client.post(f"/centers/{A}/windows/1/sign-in", headers=at_window(tokens, "1", CLERK_B))
        covered = await status_of(client, tokens)
        events = await outbox(client)
    assert bad.status_code == 422 and bad.json()["field"] == "ends_on"
    assert leave.status_code == 201 and leave.json()["clerk_id"] == CLERK_A
    assert flagged["a_post_on_leave"] and flagged["uncovered"]
    assert not other["a_post_on_leave"] and not other["uncovered"]
    assert lunch["a_post_on_leave"] and not lunch["uncovered"]  # not in opening hours
    assert r.status_code == 200 and covered["a_post_on_leave"] and not covered["uncovered"]
    (recorded,) = [e["data"] for e in events if e["type"] == "window.leave_recorded"]
    assert recorded["windows"] == ["1"] and recorded["starts_on"] == "2026-02-12" and recorded["reason"] == "年休假"


async def test_the_status_shows_each_services_line_and_longest_wait(service_client, tokens, fixed_clock):
    fixed_clock.set(local("09:00"))
    async with service_client("queue") as client:
        await ab_hall(client, tokens)
        await service(client, tokens, "SB", "B")
        await issue(client, tokens)
        fixed_clock.set(local("09:05"))
        await issue(client, tokens)
        fixed_clock.set(local("09:10"))
        r = await client.get(f"/centers/{A}/status", headers=tokens.headers("hall_manager", [A]))
        kiosk = await client.get(f"/centers/{A}/status", headers=tokens.headers("kiosk", [A]))
    lines = {s["code"]: s for s in r.json()["services"]}
    assert lines["HJ"] == {"code": "HJ", "name": "业务 HJ", "waiting": 2, "longest_wait_s": 600, "open_windows": 1}
    assert lines["SB"]["waiting"] == 0 and lines["SB"]["open_windows"] == 0
    assert kiosk.status_code == 403


async def test_the_heartbeat_job_counts_windows_open_away_and_silent(service_client, tokens, fixed_clock):
    from prometheus_client import REGISTRY

    def gauge(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"center": A, **labels})

    aways = REGISTRY.get_sample_value("hall_queue_window_events_total", {"center": A, "event": "away"}) or 0
    fixed_clock.set(local("09:00"))
    async with service_client("queue") as client:
        a, _ = await ab_hall(client, tokens)
        await window(client, tokens, "2", {"HJ": 1})
        await window(client, tokens, "3", {"HJ": 1})
        two = at_window(tokens, "2", "u-2")
        await client.post(f"/centers/{A}/windows/2/sign-in", headers=two)
        await client.post(f"/centers/{A}/windows/2/away", headers=two, json={"message": "稍候"})
        fixed_clock.set(local("09:01:00"))
        await client.post(f"/centers/{A}/windows/1/heartbeat",
                          headers=tokens.headers("terminal", [A], window="1", device="term-1"))
        await run_heartbeat_job(client, local("09:02:00"))  # window 2 silent since 09:00; window 1 beat at 09:01
    assert (gauge("hall_queue_windows", state="open"), gauge("hall_queue_windows", state="away"),
            gauge("hall_queue_windows", state="signed_out")) == (1, 1, 1)
    assert gauge("hall_queue_windows_silent") == 1
    assert REGISTRY.get_sample_value("hall_queue_window_events_total", {"center": A, "event": "away"}) - aways == 1


def test_a_fast_simulated_clock_loses_a_heartbeat_after_two_real_seconds_not_ninety_simulated_ones():
    from datetime import UTC, timedelta

    from shared import clock

    start = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    previous = clock.set_clock(clock.SimulatedClock(clock.wall_now(), start, speed=200))
    try:
        fast = window_rules.heartbeat_lost_after()
        clock.set_clock(clock.SimulatedClock(clock.wall_now(), start, speed=10))
        slow = window_rules.heartbeat_lost_after()
        clock.set_clock(clock.FixedClock(start))
        fixed = window_rules.heartbeat_lost_after()
    finally:
        clock.set_clock(previous)
    assert (fast, slow, fixed) == (timedelta(seconds=400), timedelta(seconds=90), timedelta(seconds=90))
