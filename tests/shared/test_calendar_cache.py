"""A process's calendar cache: the process that wrote a change answers from it at once, before its own
NOTIFY has come back (deterministically: here the NOTIFY never comes back)."""

from __future__ import annotations

from datetime import date

from shared.calendar.store import NOTIFY_CHANNEL, CalendarCache, write_scope
from shared.db import make_engine, make_sessionmaker
from shared.events.catalog import CalendarChanged, CalendarDay

A = "320102"


def _change(version: int) -> CalendarChanged:
    return CalendarChanged(scope="center", center_id=A, calendar_version=version,
                           days=[CalendarDay(date=date(2026, 3, 2), kind="holiday", name="台风停工")])


async def test_the_writer_reads_its_own_change_before_the_notification_arrives(service_databases, fixed_clock):
    db = service_databases("queue")
    await db.reset()
    engine = make_engine(db.url, pool_size=2, max_overflow=0, pool_timeout=5, application_name="cache-test")
    sessions = make_sessionmaker(engine)
    cache = CalendarCache()
    try:
        await cache.start(db.url)
        assert cache.listening
        async with sessions() as session:
            before = await cache.get(session)
        # the listener stays open (so the cache trusts its snapshot) but hears nothing from now on
        assert cache._listener is not None
        await cache._listener.remove_listener(NOTIFY_CHANNEL, cache._notified)
        async with sessions() as session, session.begin():
            assert await write_scope(session, _change(before.version + 1))
        async with sessions() as session:
            after = await cache.get(session)
        assert after.version == before.version + 1
        assert after.overrides[A] == {date(2026, 3, 2): False}

    finally:
        await cache.stop()
        await engine.dispose()
