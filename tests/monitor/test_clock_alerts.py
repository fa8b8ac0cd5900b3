"""Alerts from the case clock, end to end through Kafka with the fixed clock (issue 23's acceptance): the early
warning on the right day across the Spring Festival, never while paused, once with two monitor workers and
across a restart; a pause that moves the due date replaces the pending moments; the other kinds."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta

import pytest

from services.monitor import watch
from shared import clock
from shared.db import make_engine
from shared.events.catalog import CalendarFallbackUsed, CaseForwarded, CasePaused, CaseRefused
from shared.timers import TimerRunner
from tests.monitor.support import (
    CALENDAR,
    CENTRE,
    Case,
    accepted,
    completed,
    local,
    monitor,
    paused,
    resumed,
)

pytestmark = pytest.mark.kafka


def kinds(alerts: list[dict]) -> list[tuple[str, str]]:
    return [(a["kind"], a["case_no"]) for a in alerts]


async def test_early_warning_on_the_right_day_across_the_holiday_once_with_two_workers_and_a_restart(
        service_client, kafka, tokens, fixed_clock):
    office = tokens.headers("supervisor", [CENTRE])
    async with monitor(service_client, kafka, runners=2) as m:
        # accepted Thu 12 Feb 2026, 5 working days: due end of Thu 26 Feb (14 Feb 调休, 15-23 Feb 春节);
        # W = 1: warned from 00:00 of Wed 25 Feb
        case = Case("320102-20260212-000001", "JS", date(2026, 2, 12), 5)
        assert case.due_at == datetime(2026, 2, 26, 15, 59, 59, tzinfo=clock.UTC)
        assert case.warn_at == local(date(2026, 2, 25), 0)
        await m.send(accepted(case))

        fixed_clock.set(local(date(2026, 2, 24), 23, 59))
        assert await m.fire() == 0
        assert await m.alerts(office) == []

        fixed_clock.set(local(date(2026, 2, 25), 0, 0) + timedelta(seconds=1))
        fired = await asyncio.gather(m.runners[0].fire_due(), m.runners[1].fire_due())
        assert sum(fired) == 1  # one timer, taken by one of the two workers
        alerts = await m.alerts(office)
        assert kinds(alerts) == [("early_warning", case.case_no)]
        assert alerts[0]["level"] == "yellow" and "2026年02月26日" in alerts[0]["text"]
        assert alerts[0]["clock_version"] == 1

        # a restart: a new runner on a new connection finds nothing more to fire; no second alert
        engine = make_engine(m.db.url, application_name="test-monitor-restarted")
        try:
            again = TimerRunner(engine, watch.TIMER_HANDLERS)
            assert await again.fire_due() == 0
        finally:
            await engine.dispose()
        # and the same timer fired twice (a crash after the alert's commit is impossible; a repeat of the
        # handler is not): the cause key keeps one alert
        timer = (await m.db.fetch("SELECT * FROM timers WHERE kind = 'monitor.warn'"))[0]
        async with m.client.app.state.sessionmaker() as session, session.begin():  # type: ignore[attr-defined]
            await watch.on_warn(session, json.loads(timer["payload"]), _timer(timer))
        assert len(await m.alerts(office)) == 1

        # past due: the overdue alert, red, with its working days late counted every morning
        fixed_clock.set(case.due_at + timedelta(seconds=1))
        await m.fire()
        assert kinds(await m.alerts(office, kind="overdue")) == [("overdue", case.case_no)]
        fixed_clock.set(local(date(2026, 3, 2), 0, 6))  # Mon: late on 27 Feb, 28 Feb (调休) and 2 Mar
        async with m.client.app.state.sessionmaker() as session, session.begin():  # type: ignore[attr-defined]
            await watch.recount_overdue_days(session, clock.now())
        assert (await m.alerts(office, kind="overdue"))[0]["overdue_days"] == 3

        # completing the case resolves its clock alerts, by the system
        await m.send(completed(case, clock.now()))
        assert {a["status"] for a in await m.alerts(office)} == {"resolved"}
        assert {a["resolved_by"] for a in await m.alerts(office)} == {"system"}


def _timer(row) -> object:
    from shared.timers import Timer

    return Timer(id=row["id"], kind=row["kind"], key=row["key"], due_at=row["due_at"], payload=json.loads(row["payload"]),
                 created_at=row["created_at"], attempts=row["attempts"], last_error=row["last_error"])


async def test_no_warning_while_paused_and_a_pause_that_moves_the_due_date_replaces_the_moments(
        service_client, kafka, tokens, fixed_clock):
    office = tokens.headers("supervisor", [CENTRE])
    async with monitor(service_client, kafka) as m:
        case = Case("320102-20260212-000002", "JS", date(2026, 2, 12), 5)
        first_warn, first_due = case.warn_at, case.due_at
        await m.send(accepted(case))
        fixed_clock.set(local(date(2026, 2, 13), 10))
        await m.send(paused(case, date(2026, 2, 13)))  # 补正 from Fri 13 Feb

        # the old warning and due moments pass while paused: nothing
        assert first_warn is not None
        await m.at(first_due + timedelta(hours=1))
        assert await m.alerts(office) == []
        armed = await m.db.fetch("SELECT kind FROM timers WHERE key = $1 AND fired_at IS NULL", case.case_no)
        assert armed == []

        # resumed on Fri 27 Feb: 14 Feb, 24-27 Feb = +5 working days; 10 from 12 Feb (28 Feb 调休): due Wed 4 Mar
        fixed_clock.set(local(date(2026, 2, 27), 10))
        await m.send(*resumed(case, date(2026, 2, 13), date(2026, 2, 27)))
        assert case.version == 2 and clock.local_date(case.due_at) == date(2026, 3, 4)
        rows = {r["kind"]: r for r in await m.db.fetch(
            "SELECT kind, due_at, payload FROM timers WHERE key = $1 AND fired_at IS NULL", case.case_no)}
        assert rows["monitor.warn"]["due_at"] == case.warn_at == local(date(2026, 3, 3), 0)
        assert rows["monitor.due"]["due_at"] == case.due_at
        assert '"clock_version": 2' in rows["monitor.due"]["payload"]
        await m.at(local(date(2026, 3, 3), 0, 1))
        alerts = await m.alerts(office)
        assert [(a["kind"], a["clock_version"]) for a in alerts] == [("early_warning", 2)]


async def test_follow_up_special_procedure_repeated_refusal_and_calendar_missing(
        service_client, kafka, tokens, fixed_clock):
    office = tokens.headers("supervisor", [CENTRE])
    async with monitor(service_client, kafka) as m:
        forwarded = Case("320102-20260212-000003", "JS", date(2026, 2, 12), 10)
        await m.send(accepted(forwarded))
        forwarded.status = "forwarded"
        follow_up = CALENDAR.due_at(date(2026, 2, 13), 20, CENTRE)
        await m.send(CaseForwarded(case=forwarded.facts(), to_authority="市住建局", forwarded_on=date(2026, 2, 13),
                                   follow_up_at=follow_up))
        await m.at(follow_up - timedelta(seconds=1))
        assert await m.alerts(office) == []
        await m.at(follow_up + timedelta(seconds=1))
        assert kinds(await m.alerts(office)) == [("follow_up", forwarded.case_no)]
        assert not await m.alerts(office, kind="overdue")  # a forwarded case is stopped: no overdue

        # the third special procedure of one case is an alert at once
        special = Case("320102-20260212-000004", "JS", date(2026, 2, 12), 10)
        special.status = "special"
        await m.send(accepted(special), CasePaused(
            case=special.facts(), pause_kind="special", reason="专家评审", paused_on=clock.today_local(),
            special_limit_at=clock.now() + timedelta(days=30), special_count=3))
        assert ("special_procedure", special.case_no) in kinds(await m.alerts(office))

        # the same applicant refused twice for one item: 重点跟踪, naming both cases, the applicant masked
        for n in (5, 6):
            refused = Case(f"320102-20260212-00000{n}", "JS", date(2026, 2, 12), 10, applicant_hash="a" * 64)
            refused.status = "completed"
            await m.send(CaseRefused(case=refused.facts(), reason="不符合条件", legal_basis="《条例》第十条",
                                     proposed_by="clerk-1", approved_by="chief-1"))
        tracked = await m.alerts(office, kind="repeated_refusal")
        assert len(tracked) == 1 and tracked[0]["details"]["cases"] == [
            "320102-20260212-000005", "320102-20260212-000006"]
        assert "张*" in tracked[0]["text"] and "a" * 64 not in tracked[0]["text"]

        # a calendar year missing: a system alert every centre's list shows, once
        await m.send(CalendarFallbackUsed(year=2027, first_used_for=date(2027, 1, 4)), key="calendar")
        await m.send(CalendarFallbackUsed(year=2027, first_used_for=date(2027, 1, 5)), key="calendar")
        system = await m.alerts(office, kind="calendar_missing")
        assert len(system) == 1 and system[0]["center_id"] is None and "2027" in system[0]["text"]
        other = tokens.headers("supervisor", ["320104"])
        r = await m.client.get("/alerts", params={"center": "320104", "kind": "calendar_missing"}, headers=other)
        assert [a["id"] for a in r.json()["items"]] == [system[0]["id"]]

        # acknowledged, then resolved with what was done; another centre's supervisor may not
        alert = (await m.alerts(office, kind="follow_up"))[0]
        assert (await m.client.post(f"/alerts/{alert['id']}/acknowledge", json={}, headers=other)).status_code == 403
        r = await m.client.post(f"/alerts/{alert['id']}/acknowledge", json={"note": "已联系上级"}, headers=office)
        assert r.status_code == 200 and r.json()["status"] == "acknowledged"
        r = await m.client.post(f"/alerts/{alert['id']}/resolve", json={}, headers=office)
        assert r.status_code == 422 and "note" in r.text
        r = await m.client.post(f"/alerts/{alert['id']}/resolve", json={"note": "上级已批复"}, headers=office)
        assert r.status_code == 200 and r.json()["resolved_by"] == "test-supervisor"
        again = await m.client.post(f"/alerts/{alert['id']}/resolve", json={"note": "x"}, headers=office)
        assert again.status_code == 409
        events = [r["type"] for r in await m.db.fetch(
            "SELECT type FROM outbox WHERE key = $1 ORDER BY sequence", f"alert:{alert['id']}")]
        assert events == ["alert.raised", "alert.acknowledged", "alert.resolved"]
