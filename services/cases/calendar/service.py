"""Calendar rules of the cases service: who may change what, audit, version, `calendar.changed`."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import date, datetime, timedelta

from fastapi import FastAPI
from prometheus_client import Gauge
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.cases.calendar.schemas import OverridesIn
from services.cases.rekey import rekey_open_cases
from shared import clock
from shared.auth import Principal
from shared.calendar import WorkCalendar, YearData
from shared.calendar.store import current_version, load_calendar, package_fingerprint, write_scope
from shared.db import advisory_key
from shared.errors import Conflict
from shared.events.catalog import CalendarChanged, CalendarDay, CalendarFallbackUsed
from shared.events.outbox import publish
from shared.tables import audit_log, calendar_overrides, calendar_scopes, platform_state
from shared.timers import PeriodicJob

FALLBACK_IN_USE = Gauge("hall_calendar_fallback_year_in_use",
                        "1 when a date in use fell in this year with no official schedule (Mon-Fri fallback); "
                        "0 once the year is imported", ["year"])
SCHEDULE_REMAINING = Gauge("hall_calendar_schedule_remaining_seconds",
                           "From now to the first day (00:00 Asia/Shanghai) of a year with no official or "
                           "imported schedule: a deadline beyond it is counted Monday-Friday")


async def _next_version(session: AsyncSession) -> int:
    # one calendar change at a time across every cases process: versions stay strictly increasing
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": advisory_key("hall:calendar")})
    return await current_version(session) + 1


async def _publish(session: AsyncSession, change: CalendarChanged) -> None:
    subject = f"calendar:{change.scope}:{change.center_id or change.year or 'package'}"
    await publish(session, "cases", change, subject=subject, center_id=change.center_id)


async def set_overrides(session: AsyncSession, center_id: str, body: OverridesIn, actor: Principal) -> CalendarChanged:
    """Make dates of one centre holidays or working days (today or later only: an overdue case stays overdue)."""
    today = clock.today_local()
    seen: set[date] = set()
    for i, day in enumerate(body.days):
        if day.date < today:
            raise Conflict(f"{day.date} is in the past (today is {today}); past days cannot change",
                           field=f"days[{i}].date", code="past_date")
        if day.date in seen:
            raise Conflict(f"{day.date} is listed twice", field=f"days[{i}].date", code="duplicate_date")
        seen.add(day.date)
    version = await _next_version(session)
    current = {r.day: r for r in (await session.execute(
        select(calendar_overrides).where(calendar_overrides.c.center_id == center_id))).all()}
    state = {d: CalendarDay(date=d, kind="working" if r.working else "holiday", name=r.reason)
             for d, r in current.items()}
    now = clock.now()
    for day in body.days:
        before = state.get(day.date)
        if day.kind == "official":
            state.pop(day.date, None)
        else:
            state[day.date] = CalendarDay(date=day.date, kind=day.kind, name=day.reason)
        await session.execute(insert(audit_log).values(
            at=now, actor=actor.subject, action="calendar.override", entity="calendar_day",
            entity_id=f"{center_id}:{day.date}", center_id=center_id,
            before=before.model_dump(mode="json") if before else None,
            after=state[day.date].model_dump(mode="json") if day.date in state else None, reason=day.reason))
    change = CalendarChanged(scope="center", center_id=center_id, calendar_version=version,
                             days=sorted(state.values(), key=lambda d: d.date))
    await write_scope(session, change)
    await _publish(session, change)
    await rekey_open_cases(session, change)
    return change


async def import_year(session: AsyncSession, data: YearData, actor: Principal) -> CalendarChanged:
    """Load a whole year's official schedule (e.g. 2027, published by the State Council in the autumn)."""
    version = await _next_version(session)
    days = [CalendarDay(date=d, kind="holiday", name=data.names.get(d)) for d in data.holidays]
    days += [CalendarDay(date=d, kind="working", name=data.names.get(d)) for d in data.workdays]
    change = CalendarChanged(scope="year", year=data.year, calendar_version=version,
                             days=sorted(days, key=lambda d: d.date))
    await session.execute(insert(audit_log).values(
        at=clock.now(), actor=actor.subject, action="calendar.import_year", entity="calendar_year",
        entity_id=str(data.year), after={"holidays": len(data.holidays), "working": len(data.workdays)}))
    await write_scope(session, change)
    await _publish(session, change)
    await rekey_open_cases(session, change)
    return change


async def check_package(session: AsyncSession) -> CalendarChanged | None:
    """At start-up: if the installed chinese-calendar carries other years than last time, publish it."""
    fingerprint = package_fingerprint()
    stored = await session.scalar(select(calendar_scopes.c.fingerprint).where(calendar_scopes.c.scope == "package"))
    if stored == fingerprint:
        return None
    version = await _next_version(session)
    stored = await session.scalar(select(calendar_scopes.c.fingerprint).where(calendar_scopes.c.scope == "package"))
    if stored == fingerprint:  # another process did it while we waited for the lock
        return None
    change = CalendarChanged(scope="package", calendar_version=version, fingerprint=fingerprint)
    await write_scope(session, change)
    await _publish(session, change)
    await rekey_open_cases(session, change)
    return change


async def note_fallback(session: AsyncSession, calendar: WorkCalendar, years: list[int], used_for: date) -> None:
    """Raise the "calendar missing for year Y" system alert: a metric, and one event per year."""
    for year in years:
        claimed = await session.execute(
            insert(platform_state).values(key=f"calendar.fallback_alert.{year}",
                                          value={"first_used_for": used_for.isoformat()}, updated_at=clock.now())
            .on_conflict_do_nothing().returning(platform_state.c.key))
        if claimed.first() is not None:
            await publish(session, "cases", CalendarFallbackUsed(year=year, first_used_for=used_for),
                          subject=f"calendar:fallback:{year}", center_id=None)


async def check_package_at_startup(app: FastAPI, stack: AsyncExitStack) -> None:
    """A `create_service_app` startup hook: record a change of the installed chinese_calendar package."""
    sessionmaker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    async with sessionmaker() as session, session.begin():
        await check_package(session)


async def count_calendar(session: AsyncSession, _due: datetime) -> None:
    """The calendar gauges (a job of the worker's leader, once a minute, from the tables): how long the
    schedules still cover, and each year a deadline has reached on the fallback, 1 until it is imported."""
    calendar = await load_calendar(session)
    today = clock.today_local()
    year = today.year
    while not calendar.is_fallback_year(year) and year < today.year + 50:
        year += 1
    end = datetime(year, 1, 1, tzinfo=clock.LOCAL_TZ)
    SCHEDULE_REMAINING.set(max(0.0, (end - clock.now()).total_seconds()))
    keys = (await session.execute(select(platform_state.c.key)
                                  .where(platform_state.c.key.like("calendar.fallback_alert.%")))).scalars()
    for key in keys:
        used = int(key.rsplit(".", 1)[1])
        FALLBACK_IN_USE.labels(str(used)).set(1 if calendar.is_fallback_year(used) else 0)


CALENDAR_JOB = PeriodicJob("cases.calendar_gauges", timedelta(minutes=1), count_calendar, catch_up="latest")
