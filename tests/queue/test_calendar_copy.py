"""The queue service keeps the calendar from calendar.changed and every one of its processes answers from
the new version at once (each process has its own cached snapshot)."""

import asyncio
from contextlib import AsyncExitStack

from services.queue.main import create_app
from shared.calendar.store import apply_calendar_changed
from shared.events.catalog import CalendarChanged, CalendarDay
from shared.events.envelope import Envelope
from tests.conftest import running_app, service_settings

A = "320102"


def _change(version: int, days: list[CalendarDay]) -> Envelope:
    return Envelope.wrap("cases", CalendarChanged(scope="center", center_id=A, calendar_version=version, days=days),
                         subject=f"calendar:center:{A}", center_id=A)


async def _monday(client, headers) -> dict:
    r = await client.get(f"/centers/{A}/calendar", params={"from": "2026-03-02", "to": "2026-03-02"}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _settled(client, headers, version: int) -> dict:
    """The answer once the process has taken the change in (NOTIFY reaches it at commit; allow 2 s)."""
    deadline = asyncio.get_running_loop().time() + 2
    while (body := await _monday(client, headers))["calendar_version"] != version:
        assert asyncio.get_running_loop().time() < deadline, f"still at version {body['calendar_version']}"
        await asyncio.sleep(0.01)
    return body


async def test_every_queue_process_answers_from_the_new_calendar(service_databases, fixed_clock, tokens):
    db = service_databases("queue")
    await db.reset()
    headers = tokens.headers("hall_manager", [A])
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(running_app(create_app(service_settings("queue", db), fixed_clock)))
        second = await stack.enter_async_context(running_app(create_app(service_settings("queue", db), fixed_clock)))
        for client in (first, second):  # both processes cache the official answer: Monday 2 March works
            assert (await _monday(client, headers))["days"][0]["working"] is True

        maker = first._transport.app.state.sessionmaker  # the consumer's transaction, as the worker runs it
        async with maker() as session, session.begin():
            await apply_calendar_changed(session, _change(7, [CalendarDay(date="2026-03-02", kind="holiday")]))

        for client in (first, second):
            body = await _settled(client, headers, version=7)
            assert body["calendar_version"] == 7
            assert body["days"][0] == {"date": "2026-03-02", "working": False, "source": "override"}
        other = await first.get("/centers/320104/calendar", params={"from": "2026-03-02", "to": "2026-03-02"},
                                headers=tokens.headers("hall_manager", ["320104"]))
        assert other.json()["days"][0]["working"] is True  # another centre is unaffected

        async with maker() as session, session.begin():  # an older, re-delivered version changes nothing
            await apply_calendar_changed(session, _change(5, []))
        assert (await _monday(second, headers))["days"][0]["working"] is False


async def test_without_its_listener_a_process_still_never_answers_stale(service_databases, fixed_clock, tokens):
    db = service_databases("queue")
    await db.reset()
    headers = tokens.headers("hall_manager", [A])
    async with running_app(create_app(service_settings("queue", db), fixed_clock)) as client:
        app = client._transport.app
        assert app.state.calendar_cache.listening
        assert (await _monday(client, headers))["days"][0]["working"] is True
        await app.state.calendar_cache.stop()  # as if the LISTEN connection had dropped
        async with app.state.sessionmaker() as session, session.begin():
            await apply_calendar_changed(session, _change(3, [CalendarDay(date="2026-03-02", kind="holiday")]))
        body = await _monday(client, headers)  # at once: the version is read per request now
    assert (body["calendar_version"], body["days"][0]["working"]) == (3, False)
