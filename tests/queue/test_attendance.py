"""Attendance (考勤) of a day adds up from the window events: sign-in, sign-out (a close, or the B post stepping
in, ends a session), the time away; a clerk on leave shows as such."""

from __future__ import annotations

from datetime import datetime

from tests.queue.builders import A, center, service, window
from tests.queue.test_tickets import at_window


def local(hm: str) -> datetime:
    return datetime.fromisoformat(f"2026-02-12T{hm}:00+08:00")


async def test_a_days_attendance_adds_up_from_the_window_events(service_client, tokens, fixed_clock):
    fixed_clock.set(local("08:55"))
    async with service_client("queue") as client:
        await center(client, tokens)
        await service(client, tokens, "HJ", "A")
        await window(client, tokens, "1", {"HJ": 1}, a_clerk="u-a", b_clerk="u-b")
        a, b = at_window(tokens, "1", "u-a"), at_window(tokens, "1", "u-b")
        manager = tokens.headers("hall_manager", [A])
        await client.post(f"/centers/{A}/leave", headers=manager,
                          json={"clerk_id": "u-c", "starts_on": "2026-02-12", "ends_on": "2026-02-12"})
        script = [("09:00", "sign-in", a, None), ("10:00", "away", a, {"message": "3分钟内返回"}),
                  ("10:05", "back", a, None), ("11:00", "away", a, {"message": "去档案室"}),
                  ("11:04", "sign-in", b, None),  # the B post steps in: the A post's session ends
                  ("12:00", "sign-out", b, None), ("13:30", "sign-in", a, None), ("17:30", "close", a, None)]
        for hm, action, who, body in script:
            fixed_clock.set(local(hm))
            r = await client.post(f"/centers/{A}/windows/1/{action}", headers=who, json=body)
            assert r.status_code == 200, (hm, action, r.text)
        fixed_clock.set(local("18:00"))
        day = await client.get(f"/centers/{A}/attendance?date=2026-02-12", headers=manager)
        only_b = await client.get(f"/centers/{A}/attendance?date=2026-02-12&clerk=u-b", headers=manager)
        other_day = await client.get(f"/centers/{A}/attendance?date=2026-02-11", headers=manager)
        kiosk = await client.get(f"/centers/{A}/attendance", headers=tokens.headers("kiosk", [A]))
    clerks = {c["clerk_id"]: c for c in day.json()["clerks"]}
    assert set(clerks) == {"u-a", "u-b", "u-c"}
    ca = clerks["u-a"]
    assert datetime.fromisoformat(ca["first_sign_in"]) == local("09:00")
    assert datetime.fromisoformat(ca["last_sign_out"]) == local("17:30")
    assert ca["signed_in_s"] == (124 + 240) * 60  # 09:00-11:04 and 13:30-17:30
    assert (ca["away_s"], ca["aways"]) == (9 * 60, 2)  # 5 minutes, then 4 until the B post stepped in
    assert not ca["still_signed_in"] and not ca["on_leave"]
    assert (clerks["u-b"]["signed_in_s"], clerks["u-b"]["away_s"]) == (56 * 60, 0)
    assert clerks["u-c"]["on_leave"] and clerks["u-c"]["signed_in_s"] == 0
    assert [c["clerk_id"] for c in only_b.json()["clerks"]] == ["u-b"]
    assert other_day.json()["clerks"] == []
    assert kiosk.status_code == 403


async def test_a_session_still_open_counts_up_to_now(service_client, tokens, fixed_clock):
    fixed_clock.set(local("09:00"))
    async with service_client("queue") as client:
        await center(client, tokens)
        await service(client, tokens, "HJ", "A")
        await window(client, tokens, "1", {"HJ": 1})
        clerk = at_window(tokens, "1", "u-1")
        await client.post(f"/centers/{A}/windows/1/sign-in", headers=clerk)
        fixed_clock.set(local("09:30"))
        await client.post(f"/centers/{A}/windows/1/away", headers=clerk, json={"message": "稍候"})
        fixed_clock.set(local("09:40"))
        r = await client.get(f"/centers/{A}/attendance", headers=tokens.headers("supervisor", [A]))
    (one,) = r.json()["clerks"]
    assert (one["signed_in_s"], one["away_s"], one["still_signed_in"]) == (2400, 600, True)
    assert one["last_sign_out"] is None and one["windows"] == ["1"]
