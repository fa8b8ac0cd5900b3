"""The calendar as the cases service serves it: deadlines, days, centre overrides, year imports, the
calendar.changed events it publishes and the fallback-year alert. Expected dates are counted by hand
from the State Council notices (../shared/official-holidays.md)."""

from datetime import datetime

import pytest
from prometheus_client import REGISTRY

from services.cases.calendar.service import count_calendar
from shared import clock
from shared.calendar.store import package_fingerprint

A, B = "320102", "320104"


@pytest.fixture
async def cases(service_client):
    async with service_client("cases") as client:
        yield client


async def _deadline(client, headers, start, n, center=None):
    params = {"from": start, "working_days": n, **({"center": center} if center else {})}
    r = await client.get("/calendar/deadline", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _events(client, type_):
    rows = await client.db.fetch("SELECT envelope FROM outbox WHERE type = $1 ORDER BY sequence", type_)
    import json

    return [json.loads(r["envelope"]) for r in rows]


async def test_domain_example_deadline(cases, tokens):
    # accepted Thu 2026-02-12, N = 5: 13 Feb, 14 Feb (调休), [15-23 Feb Spring Festival], 24, 25, 26 Feb
    body = await _deadline(cases, tokens.headers("clerk", [A]), "2026-02-12", 5, A)
    assert body["due_date"] == "2026-02-26"
    assert body["due_at"] == "2026-02-26T15:59:59Z"
    assert body["fallback_years"] == []
    assert body["from"] == "2026-02-12"


@pytest.mark.parametrize("params,field", [
    ({"from": "2026-02-30", "working_days": 5}, "from"),
    ({"from": "yesterday", "working_days": 5}, "from"),
    ({"from": "2026-02-12", "working_days": -1}, "working_days"),
    ({"from": "2026-02-12"}, "working_days"),
    ({"from": "2026-02-12", "working_days": 5, "center": "bad id!"}, "center"),
])
async def test_bad_deadline_queries_are_422_naming_the_field(cases, tokens, params, field):
    r = await cases.get("/calendar/deadline", params=params, headers=tokens.headers("clerk", [A]))
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == field


async def test_days_range_over_five_years_or_backwards_is_refused(cases, tokens):
    h = tokens.headers("clerk", [A])
    too_long = await cases.get("/calendar/days", params={"from": "2025-01-01", "to": "2030-12-31"}, headers=h)
    backwards = await cases.get("/calendar/days", params={"from": "2026-02-12", "to": "2026-02-11"}, headers=h)
    assert too_long.status_code == 422 and too_long.json()["code"] == "range_too_long"
    assert too_long.json()["field"] == "to"
    assert backwards.status_code == 422 and backwards.json()["field"] == "to"


async def test_days_show_each_day_and_its_source(cases, tokens):
    r = await cases.get("/calendar/days", params={"from": "2026-02-13", "to": "2026-02-16"},
                        headers=tokens.headers("clerk", [A]))
    assert [(d["date"], d["working"], d["source"]) for d in r.json()["days"]] == [
        ("2026-02-13", True, "official"),   # Friday
        ("2026-02-14", True, "official"),   # Saturday, 调休 working day
        ("2026-02-15", False, "official"),  # Spring Festival
        ("2026-02-16", False, "official"),
    ]


async def test_overrides_change_the_answer_for_that_centre_only(cases, tokens):
    admin = tokens.headers("center_admin", [A], subject="admin-a")
    r = await cases.put("/calendar/overrides", params={"center": A}, headers=admin, json={"days": [
        {"date": "2026-03-02", "kind": "holiday", "reason": "台风停工"},   # a Monday
        {"date": "2026-03-08", "kind": "working", "reason": "周末开放"},   # a Sunday
    ]})
    assert r.status_code == 200, r.text
    assert [d["date"] for d in r.json()["days"]] == ["2026-03-02", "2026-03-08"]
    clerk_a, clerk_b = tokens.headers("clerk", [A]), tokens.headers("clerk", [B])
    # from Thu 26 Feb, N = 5: officially 27, 28 (调休 Sat), 2, 3, 4 Mar; for A without Mon 2 Mar -> 5 Mar
    assert (await _deadline(cases, clerk_a, "2026-02-26", 5, A))["due_date"] == "2026-03-05"
    assert (await _deadline(cases, clerk_b, "2026-02-26", 5, B))["due_date"] == "2026-03-04"
    assert (await _deadline(cases, clerk_a, "2026-02-26", 5))["due_date"] == "2026-03-04"
    # from Thu 5 Mar, N = 2: officially Fri 6, Mon 9; for A the Sunday 8th counts -> 8 Mar
    assert (await _deadline(cases, clerk_a, "2026-03-05", 2, A))["due_date"] == "2026-03-08"
    assert (await _deadline(cases, clerk_b, "2026-03-05", 2, B))["due_date"] == "2026-03-09"
    listed = await cases.get("/calendar/overrides", params={"center": A}, headers=clerk_a)
    assert [(d["date"], d["kind"]) for d in listed.json()["days"]] == [("2026-03-02", "holiday"),
                                                                         ("2026-03-08", "working")]


async def test_override_changes_are_audited_and_published_with_the_full_scope(cases, tokens):
    admin = tokens.headers("center_admin", [A], subject="admin-a")
    await cases.put("/calendar/overrides", params={"center": A}, headers=admin,
                    json={"days": [{"date": "2026-03-02", "kind": "holiday"}]})
    await cases.put("/calendar/overrides", params={"center": A}, headers=admin,
                    json={"days": [{"date": "2026-03-08", "kind": "working"}]})
    await cases.put("/calendar/overrides", params={"center": A}, headers=admin,
                    json={"days": [{"date": "2026-03-02", "kind": "official"}]})
    audit = await cases.db.fetch("SELECT actor, entity_id, before, after FROM audit_log ORDER BY id")
    assert [(r["actor"], r["entity_id"]) for r in audit] == [
        ("admin-a", f"{A}:2026-03-02"), ("admin-a", f"{A}:2026-03-08"), ("admin-a", f"{A}:2026-03-02")]
    assert audit[2]["before"] is not None and audit[2]["after"] is None
    events = [e for e in await _events(cases, "calendar.changed") if e["data"]["scope"] == "center"]
    versions = [e["data"]["calendar_version"] for e in events]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert [[d["date"] for d in e["data"]["days"]] for e in events] == [
        ["2026-03-02"], ["2026-03-02", "2026-03-08"], ["2026-03-08"]]
    assert all(e["center_id"] == A for e in events)


async def test_past_dates_wrong_centre_and_wrong_role_are_refused(cases, tokens, fixed_clock):
    body = {"days": [{"date": "2026-02-11", "kind": "holiday"}]}  # the clock says 2026-02-12
    past = await cases.put("/calendar/overrides", params={"center": A}, json=body,
                           headers=tokens.headers("center_admin", [A]))
    assert past.status_code == 409 and past.json()["code"] == "past_date"
    assert past.json()["field"] == "days[0].date"
    future = {"days": [{"date": "2026-03-02", "kind": "holiday"}]}
    other = await cases.put("/calendar/overrides", params={"center": A}, json=future,
                            headers=tokens.headers("center_admin", [B]))
    clerk = await cases.put("/calendar/overrides", params={"center": A}, json=future,
                            headers=tokens.headers("clerk", [A]))
    assert other.status_code == 403 and clerk.status_code == 403
    assert await cases.db.fetch("SELECT * FROM calendar_overrides") == []
    today = await cases.put("/calendar/overrides", params={"center": A}, headers=tokens.headers("center_admin", [A]),
                            json={"days": [{"date": "2026-02-12", "kind": "holiday"}]})
    assert today.status_code == 200  # today itself may still close (a typhoon this morning)


CSV_2027 = "date,kind,name\n2027-01-01,holiday,元旦\n2027-02-06,holiday,春节\n"


async def test_a_limit_into_2027_uses_the_fallback_then_the_imported_year(cases, tokens):
    clerk = tokens.headers("clerk", [A])
    # from Mon 2026-12-28, N = 20 on Mon-Fri: Dec 29, 30, 31, Jan 1, 4-8, 11-15, 18-22, 25 -> 2027-01-25
    before = await _deadline(cases, clerk, "2026-12-28", 20)
    assert (before["due_date"], before["fallback_years"]) == ("2027-01-25", [2027])
    await _deadline(cases, clerk, "2026-12-28", 20)  # used again: still one alert
    alerts = await _events(cases, "calendar.fallback_used")
    assert [a["data"]["year"] for a in alerts] == [2027]
    assert await _calendar_gauges(cases) == {"2027": 1, "remaining": _until(2027)}

    r = await cases.put("/calendar/years/2027", content=CSV_2027.encode(), headers={
        **tokens.headers("system_admin", ["*"]), "content-type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json()["holidays"] == 2
    # with 1 Jan 2027 a holiday, the 20th working day moves one day later
    after = await _deadline(cases, clerk, "2026-12-28", 20)
    assert (after["due_date"], after["fallback_years"]) == ("2027-01-26", [])
    days = await cases.get("/calendar/days", params={"from": "2027-01-01", "to": "2027-01-01"}, headers=clerk)
    assert days.json()["days"][0]["source"] == "imported"
    # the worker's job: 2027 is covered now (the alert clears) and the schedules reach to the end of 2027
    assert await _calendar_gauges(cases) == {"2027": 0, "remaining": _until(2028)}


async def _calendar_gauges(cases) -> dict[str, float | None]:
    async with cases.app.state.sessionmaker() as session, session.begin():
        await count_calendar(session, clock.now())
    return {"2027": REGISTRY.get_sample_value("hall_calendar_fallback_year_in_use", {"year": "2027"}),
            "remaining": REGISTRY.get_sample_value("hall_calendar_schedule_remaining_seconds")}


def _until(year: int) -> float:
    return (datetime(year, 1, 1, tzinfo=clock.LOCAL_TZ) - clock.now()).total_seconds()


async def test_year_import_accepts_json_and_refuses_bad_input(cases, tokens):
    admin = tokens.headers("system_admin", ["*"])
    ok = await cases.put("/calendar/years/2027", headers=admin, json={
        "year": 2027, "days": [{"date": "2027-01-01", "kind": "holiday", "name": "元旦"}]})
    assert ok.status_code == 200
    wrong_year = await cases.put("/calendar/years/2028", headers=admin, json={
        "year": 2027, "days": [{"date": "2027-01-01", "kind": "holiday"}]})
    assert wrong_year.status_code == 422 and wrong_year.json()["field"] == "year"
    bad_kind = await cases.put("/calendar/years/2027", content=b"date,kind\n2027-01-01,rest\n",
                               headers={**admin, "content-type": "text/csv"})
    assert bad_kind.status_code == 422 and "kind" in bad_kind.json()["field"]
    outside = await cases.put("/calendar/years/2027", content=b"date,kind\n2028-01-01,holiday\n",
                              headers={**admin, "content-type": "text/csv"})
    assert outside.status_code == 422 and "date" in outside.json()["field"]
    xml = await cases.put("/calendar/years/2027", content=b"<x/>", headers={**admin, "content-type": "application/xml"})
    assert xml.status_code == 415
    centre_admin = await cases.put("/calendar/years/2027", content=CSV_2027.encode(),
                                   headers={**tokens.headers("center_admin", [A]), "content-type": "text/csv"})
    assert centre_admin.status_code == 403


async def test_package_fingerprint_is_published_once_and_again_after_an_upgrade(service_client):
    async with service_client("cases") as first:
        published = [e for e in await _events(first, "calendar.changed") if e["data"]["scope"] == "package"]
        assert [e["data"]["fingerprint"] for e in published] == [package_fingerprint()]
        # a later start with the same package publishes nothing new ...
        from services.cases.calendar.service import check_package

        async with first.app.state.sessionmaker() as session, session.begin():
            assert await check_package(session) is None
            # ... while a package upgrade (another fingerprint stored) publishes again
            from sqlalchemy import text

            await session.execute(text("UPDATE calendar_scopes SET fingerprint = 'older' WHERE scope = 'package'"))
            assert (await check_package(session)).fingerprint == package_fingerprint()
