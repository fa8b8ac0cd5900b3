"""The hall's opening hours as the monitor counts with them: the centre's schedule and settings copied from
the queue's events (`hall_copies`), the day's plan under the centre's calendar (shared/schedule.py, the
same rules the queue applies), and deadlines counted in opening time ("简单投诉一小时内解决": the hour counts
opening hours only)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.monitor.models import HallCopy
from shared import clock, schedule
from shared.calendar.engine import WorkCalendar
from shared.events.catalog import CenterScheduleChanged, CenterSettingsChanged, HallSchedule, QueueSettings
from shared.events.envelope import Envelope

MAX_DAYS_AHEAD = 60  # a deadline counted in opening time never looks further than this for open hours


async def copy_settings(session: AsyncSession, envelope: Envelope) -> None:
    data = envelope.payload()
    assert isinstance(data, CenterSettingsChanged)
    await _upsert(session, data.center_id, "settings", data.settings.model_dump(mode="json"), envelope)


async def copy_schedule(session: AsyncSession, envelope: Envelope) -> None:
    data = envelope.payload()
    assert isinstance(data, CenterScheduleChanged)
    await _upsert(session, data.center_id, "schedule", data.schedule.model_dump(mode="json"), envelope)


async def _upsert(session: AsyncSession, center_id: str, what: str, value: dict[str, object],
                  envelope: Envelope) -> None:
    """The newer event wins (the queue's outbox sequence orders them; reference data is re-sent)."""
    if envelope.sequence is None:
        raise ValueError(f"center.{what}_changed carries no outbox sequence: cannot order it")
    sequence = f"{what}_sequence"
    stmt = pg_insert(HallCopy).values(center_id=center_id, **{what: value, sequence: envelope.sequence},
                                      updated_at=envelope.occurred_at)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[HallCopy.center_id],
        set_={what: stmt.excluded[what], sequence: stmt.excluded[sequence], "updated_at": stmt.excluded.updated_at},
        where=getattr(HallCopy, sequence) < stmt.excluded[sequence]))


async def hall_of(session: AsyncSession, center_id: str) -> tuple[QueueSettings, HallSchedule]:
    """The centre's queue settings and schedule (the queue's defaults until its events arrive)."""
    row = await session.get(HallCopy, center_id)
    settings = QueueSettings.model_validate(row.settings) if row and row.settings else QueueSettings()
    hours = HallSchedule.model_validate(row.schedule) if row and row.schedule else schedule.DEFAULT_SCHEDULE
    return settings, hours


def plan(hours: HallSchedule, calendar: WorkCalendar, center_id: str, at: datetime) -> schedule.DayPlan:
    day = clock.local_date(at)
    return schedule.day_plan(hours, day, schedule.day_kind(calendar, center_id, day))


def opening_seconds_between(hours: HallSchedule, calendar: WorkCalendar, center_id: str, start: datetime,
                            end: datetime, window: str = "") -> int:
    """Opening seconds of [start, end), day by day (a ticket waiting over the noon break counts only the
    open minutes; a night counts nothing)."""
    total, day = 0, clock.local_date(start)
    while day <= clock.local_date(end):
        day_plan = schedule.day_plan(hours, day, schedule.day_kind(calendar, center_id, day))
        total += schedule.opening_seconds(day_plan, window, start, end)
        day += timedelta(days=1)
    return total


def add_opening_time(hours: HallSchedule, calendar: WorkCalendar, center_id: str, start: datetime,
                     seconds: int) -> datetime:
    """The instant at which `seconds` of opening time have passed since `start` (a simple complaint received
    at 17:20 with closing at 17:30 is due 50 minutes into the next opening)."""
    left, day = seconds, clock.local_date(start)
    for _ in range(MAX_DAYS_AHEAD):
        day_plan = schedule.day_plan(hours, day, schedule.day_kind(calendar, center_id, day))
        for period in day_plan.periods:
            lo = max(start, clock.local_instant(day, period.start))
            hi = clock.local_instant(day, period.end)
            if hi <= lo:
                continue
            span = int((hi - lo).total_seconds())
            if span >= left:
                return lo + timedelta(seconds=left)
            left -= span
        day += timedelta(days=1)
    raise ValueError(f"no opening hours within {MAX_DAYS_AHEAD} days of {start.isoformat()} at {center_id}")
