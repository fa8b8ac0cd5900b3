"""A centre admin sets up a hall: queue settings, the hall schedule, services and windows; each change
publishes its complete state; bad input is a 4xx naming the field, and changes nothing."""

from __future__ import annotations

from tests.queue.builders import A, B, center, outbox, service, service_body, window


async def test_settings_default_then_replaced_and_published(service_client, tokens):
    async with service_client("queue") as client:
        await center(client, tokens)
        admin = tokens.headers("center_admin", [A])
        default = await client.get(f"/centers/{A}/settings", headers=tokens.headers("kiosk", [A]))
        changed = await client.put(f"/centers/{A}/settings", headers=admin, json={
            "announcement_template": "请{number}号到{window}号窗口", "green_channel_n": 2, "requeue_k": 5,
            "recall_limit": 1, "day_close_time": "22:30:00"})
        events = await outbox(client)
    assert default.json()["announcement_template"] == "请{number}号到{window}号窗口办理"
    assert default.json()["green_channel_n"] == 3 and default.json()["day_close_time"] == "23:00:00"
    assert changed.status_code == 200, changed.text
    (event,) = [e for e in events if e["type"] == "center.settings_changed"]
    assert event["data"]["settings"]["green_channel_n"] == 2 and event["center_id"] == A


async def test_settings_without_the_number_or_out_of_range_are_refused(service_client, tokens):
    async with service_client("queue") as client:
        await center(client, tokens)
        admin = tokens.headers("center_admin", [A])
        no_number = await client.put(f"/centers/{A}/settings", headers=admin,
                                     json={"announcement_template": "请到窗口办理"})
        zero_n = await client.put(f"/centers/{A}/settings", headers=admin, json={"green_channel_n": 0})
        after = await client.get(f"/centers/{A}/settings", headers=admin)
        events = await outbox(client)
    assert no_number.status_code == 422 and no_number.json()["field"] == "announcement_template"
    assert zero_n.status_code == 422 and zero_n.json()["field"] == "green_channel_n"
    assert after.json()["announcement_template"] == "请{number}号到{window}号窗口办理"
    assert not [e for e in events if e["type"] == "center.settings_changed"]


WEEK = {str(d): [{"start": "09:00", "end": "12:00"}, {"start": "13:30", "end": "17:30"}] for d in range(1, 6)}
WEEK |= {"6": [{"start": "09:00", "end": "17:00"}], "7": []}


async def test_the_schedule_is_replaced_whole_and_published(service_client, tokens):
    async with service_client("queue") as client:
        await center(client, tokens)
        admin = tokens.headers("center_admin", [A])
        default = await client.get(f"/centers/{A}/schedule", headers=admin)
        body = {"weekly": WEEK, "weekend_mode": "appointment_only", "issuing_cutoff": "17:00",
                "noon_service": {"start": "12:00", "end": "13:30", "windows": ["1"]},
                "exceptions": [{"date": "2026-10-10", "closed": True, "reason": "系统升级"}]}
        r = await client.put(f"/centers/{A}/schedule", headers=admin, json=body)
        again = await client.get(f"/centers/{A}/schedule", headers=tokens.headers("display", [A]))
        events = await outbox(client)
    assert default.status_code == 200 and default.json()["weekend_mode"] == "appointment_first"
    assert r.status_code == 200, r.text
    assert again.json()["weekend_mode"] == "appointment_only" and again.json()["exceptions"][0]["closed"]
    (event,) = [e for e in events if e["type"] == "center.schedule_changed"]
    assert event["data"]["schedule"]["noon_service"]["windows"] == ["1"]
    assert event["data"]["schedule"]["weekly"]["7"] == []


async def test_a_schedule_with_overlapping_periods_is_refused_naming_them(service_client, tokens):
    async with service_client("queue") as client:
        await center(client, tokens)
        admin = tokens.headers("center_admin", [A])
        overlapping = {**WEEK, "3": [{"start": "09:00", "end": "12:30"}, {"start": "12:00", "end": "17:30"}]}
        r = await client.put(f"/centers/{A}/schedule", headers=admin, json={"weekly": overlapping})
        events = await outbox(client)
        after = await client.get(f"/centers/{A}/schedule", headers=admin)
    assert r.status_code == 422, r.text
    assert r.json()["field"].startswith("weekly.3") and r.json()["code"] == "invalid_schedule"
    assert not [e for e in events if e["type"] == "center.schedule_changed"]
    assert after.json()["weekly"]["3"] == [{"start": "09:00:00", "end": "12:00:00"},
                                          {"start": "13:30:00", "end": "17:30:00"}]  # the default, unchanged


async def test_services_are_added_listed_and_changed(service_client, tokens):
    async with service_client("queue") as client:
        await center(client, tokens)
        admin = tokens.headers("center_admin", [A])
        await service(client, tokens, "HJ", "A", department="D01", wait_threshold_minutes=20,
                      slots=[{"weekday": 1, "start": "09:00", "end": "11:00", "minutes": 30, "capacity": 4}])
        await service(client, tokens, "SB", "B")
        patched = await client.patch(f"/centers/{A}/services/HJ", headers=admin,
                                     json={"name": "户籍业务", "daily_limit_per_person": 2, "department": None})
        listed = await client.get(f"/centers/{A}/services", headers=tokens.headers("kiosk", [A]))
        events = await outbox(client)
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "户籍业务" and patched.json()["department"] is None
    assert patched.json()["wait_threshold_minutes"] == 20  # untouched fields stay
    assert [s["code"] for s in listed.json()] == ["HJ", "SB"]
    upserts = [e["data"] for e in events if e["type"] == "service.upserted"]
    assert [u["code"] for u in upserts] == ["HJ", "SB", "HJ"]
    assert upserts[-1]["daily_limit_per_person"] == 2 and upserts[-1]["slots"][0]["capacity"] == 4


async def test_a_service_code_or_prefix_taken_is_a_409(service_client, tokens):
    async with service_client("queue") as client:
        await center(client, tokens)
        admin = tokens.headers("center_admin", [A])
        await service(client, tokens, "HJ", "A")
        same_code = await client.post(f"/centers/{A}/services", headers=admin, json=service_body("HJ", "C"))
        same_prefix = await client.post(f"/centers/{A}/services", headers=admin, json=service_body("SB", "A"))
        bad_prefix = await client.post(f"/centers/{A}/services", headers=admin, json=service_body("SB", "a1"))
        unknown = await client.patch(f"/centers/{A}/services/NOPE", headers=admin, json={"name": "x"})
    assert (same_code.status_code, same_code.json()["field"]) == (409, "code")
    assert (same_prefix.status_code, same_prefix.json()["field"]) == (409, "prefix")
    assert (bad_prefix.status_code, bad_prefix.json()["field"]) == (422, "prefix")
    assert unknown.status_code == 404


async def test_windows_serve_services_with_weights(service_client, tokens):
    async with service_client("queue") as client:
        await center(client, tokens)
        admin = tokens.headers("center_admin", [A])
        await service(client, tokens, "HJ", "A")
        await service(client, tokens, "SB", "B")
        created = await window(client, tokens, "3", {"HJ": 2, "SB": 0}, duty=True, a_clerk="u-a")
        patched = await client.patch(f"/centers/{A}/windows/3", headers=admin,
                                     json={"services": [{"service_code": "SB", "weight": 1}], "b_clerk": "u-b"})
        unknown = await client.post(f"/centers/{A}/windows", headers=admin, json={
            "number": "4", "name": "4 号窗口", "services": [{"service_code": "HJ", "weight": 1},
                                                          {"service_code": "GS", "weight": 1}]})
        negative = await client.patch(f"/centers/{A}/windows/3", headers=admin,
                                      json={"services": [{"service_code": "HJ", "weight": -1}]})
        listed = await client.get(f"/centers/{A}/windows", headers=tokens.headers("display", [A]))
        events = await outbox(client)
    assert created["services"] == [{"service_code": "HJ", "weight": 2}, {"service_code": "SB", "weight": 0}]
    assert created["state"] == "signed_out" and created["duty"] and created["priority_streak"] == 0
    assert patched.json()["services"] == [{"service_code": "SB", "weight": 1}]
    assert patched.json()["a_clerk"] == "u-a" and patched.json()["b_clerk"] == "u-b"
    assert (unknown.status_code, unknown.json()["field"]) == (422, "services[1].service_code")
    assert negative.status_code == 422 and negative.json()["field"] == "services.0.weight"
    assert [w["number"] for w in listed.json()] == ["3"]
    upserts = [e["data"] for e in events if e["type"] == "window.upserted"]
    assert [u["services"] for u in upserts] == [created["services"], [{"service_code": "SB", "weight": 1}]]


async def test_only_the_centres_admin_configures_it(service_client, tokens):
    async with service_client("queue") as client:
        await center(client, tokens)
        await center(client, tokens, B)
        other = await client.post(f"/centers/{A}/services", json=service_body("HJ", "A"),
                                  headers=tokens.headers("center_admin", [B]))
        manager = await client.put(f"/centers/{A}/schedule", json={"weekly": WEEK},
                                   headers=tokens.headers("hall_manager", [A]))
        clerk = await client.put(f"/centers/{A}/settings", json={}, headers=tokens.headers("clerk", [A],
                                                                                           department="D01"))
    assert other.status_code == 403 and other.json()["code"] == "wrong_center"
    assert manager.status_code == 403 and clerk.status_code == 403
