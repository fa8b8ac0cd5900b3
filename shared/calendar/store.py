"""The calendar as rows: loaded into a `WorkCalendar` snapshot, cached per process, kept current.

cases owns the rows and publishes `calendar.changed` with the complete state of the scope it changed;
every other service applies those events to the same tables (`apply_calendar_changed`). Every
process checks `max(version)` of `calendar_scopes` (one tiny indexed read) before it answers, and
rebuilds its snapshot when it moved, so no API process ever answers from a stale calendar.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Annotated

import asyncpg
import chinese_calendar
from fastapi import Depends, Request
from sqlalchemy import delete, event, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.calendar.engine import OFFICIAL_YEARS, WorkCalendar, YearData
from shared.db import SessionDep, asyncpg_dsn
from shared.events.catalog import CalendarChanged
from shared.events.consumer import ConsumerSpec
from shared.events.envelope import Envelope
from shared.events.topics import topic_for
from shared.tables import calendar_overrides, calendar_scopes, calendar_years

log = logging.getLogger("shared.calendar")
NOTIFY_CHANNEL = "hall_calendar"


def package_fingerprint() -> str:
    """Which official schedule the installed chinese-calendar carries (changes when an upgrade adds a year)."""
    from chinese_calendar import constants

    digest = hashlib.sha256()
    digest.update(f"{chinese_calendar.__version__}|{OFFICIAL_YEARS.start}-{OFFICIAL_YEARS.stop}".encode())
    for d in sorted(constants.holidays):
        digest.update(d.isoformat().encode())
    digest.update(b"|")
    for d in sorted(constants.workdays):
        digest.update(d.isoformat().encode())
    return digest.hexdigest()


async def current_version(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.coalesce(func.max(calendar_scopes.c.version), 0))) or 0)


def year_data_from_days(year: int, days: Sequence[Mapping[str, str]]) -> YearData:
    """A stored `calendar_years.days` list (as `year_to_json` writes it) back to its YearData."""
    holidays = {date.fromisoformat(d["date"]) for d in days if d["kind"] == "holiday"}
    workdays = {date.fromisoformat(d["date"]) for d in days if d["kind"] == "working"}
    names = {date.fromisoformat(d["date"]): d["name"] for d in days if d.get("name")}
    return YearData(year, frozenset(holidays), frozenset(workdays), names)


async def load_calendar(session: AsyncSession) -> WorkCalendar:
    version = await current_version(session)
    years = {row.year: year_data_from_days(row.year, row.days)
             for row in (await session.execute(select(calendar_years))).all()}
    overrides: dict[str, dict[date, bool]] = {}
    for row in (await session.execute(select(calendar_overrides))).all():
        overrides.setdefault(row.center_id, {})[row.day] = row.working
    return WorkCalendar(imported_years=years, overrides=overrides, version=version)


_CACHES: weakref.WeakSet[CalendarCache] = weakref.WeakSet()


def _mark_caches_stale(*_: object) -> None:
    for cache in list(_CACHES):
        cache.mark_stale()


class CalendarCache:
    """One per process: the snapshot for the latest version seen, rebuilt when the version moves.

    While a LISTEN connection on `hall_calendar` is up (`start`), a calendar write anywhere (it NOTIFYs
    in its own transaction, delivered at commit) marks the snapshot stale and the next request reloads;
    requests in between read no database at all. Without the listener (not started, or its connection
    lost) every request compares `max(version)` instead, so a lost notification never means a stale
    answer for longer than the listener's reconnect.
    """

    def __init__(self) -> None:
        self._calendar: WorkCalendar | None = None
        self._stale = True
        self._listener: asyncpg.Connection | None = None
        _CACHES.add(self)

    def mark_stale(self) -> None:
        """The next request reloads (a write of this process committed: its NOTIFY may arrive later)."""
        self._stale = True

    @property
    def listening(self) -> bool:
        return self._listener is not None and not self._listener.is_closed()

    async def start(self, database_url: str) -> None:
        """Open the LISTEN connection (best effort: without it the cache checks the version per request)."""
        try:
            conn = await asyncpg.connect(asyncpg_dsn(database_url))
            await conn.add_listener(NOTIFY_CHANNEL, self._notified)
            conn.add_termination_listener(self._lost)
            self._listener = conn
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("calendar cache cannot LISTEN; checking the version per request", extra={"error": repr(exc)})
        self._stale = True

    async def stop(self) -> None:
        if self._listener is not None:
            conn, self._listener = self._listener, None
            await conn.close()

    def _notified(self, *_: object) -> None:
        self._stale = True

    def _lost(self, *_: object) -> None:
        self._listener = None
        self._stale = True

    async def get(self, session: AsyncSession) -> WorkCalendar:
        if self._calendar is not None and not self._stale and self.listening:
            return self._calendar
        # cleared before reading: a notification arriving during the read marks it stale again
        self._stale = False
        version = await current_version(session)
        if self._calendar is None or self._calendar.version != version:
            self._calendar = await load_calendar(session)
        return self._calendar


async def _calendar(request: Request, session: SessionDep) -> WorkCalendar:
    cache: CalendarCache = request.app.state.calendar_cache
    return await cache.get(session)


CalendarDep = Annotated[WorkCalendar, Depends(_calendar)]


def scope_key(change: CalendarChanged) -> str:
    if change.scope == "center":
        return f"center:{change.center_id}"
    if change.scope == "year":
        return f"year:{change.year}"
    return "package"


async def write_scope(session: AsyncSession, change: CalendarChanged) -> bool:
    """Make the rows of the change's scope equal its content; False if a newer version is already there."""
    key = scope_key(change)
    stored = await session.scalar(select(calendar_scopes.c.version).where(calendar_scopes.c.scope == key)
                                  .with_for_update())
    if stored is not None and stored >= change.calendar_version:
        return False
    if change.scope == "center":
        await session.execute(delete(calendar_overrides).where(calendar_overrides.c.center_id == change.center_id))
        if change.days:
            await session.execute(insert(calendar_overrides), [
                {"center_id": change.center_id, "day": d.date, "working": d.kind == "working", "reason": d.name}
                for d in change.days])
    elif change.scope == "year":
        await session.execute(delete(calendar_years).where(calendar_years.c.year == change.year))
        if change.days:
            await session.execute(insert(calendar_years).values(
                year=change.year, imported_at=clock.now(),
                days=[d.model_dump(mode="json") for d in change.days]))
    await session.execute(select(func.pg_notify(NOTIFY_CHANNEL, str(change.calendar_version))))
    # the NOTIFY reaches this process's own listener some time after the commit; the request that wrote
    # must not be followed by an answer from the old calendar, so this process's caches go stale at commit
    event.listen(session.sync_session, "after_commit", _mark_caches_stale, once=True)
    stmt = insert(calendar_scopes).values(scope=key, version=change.calendar_version,
                                          fingerprint=change.fingerprint, updated_at=clock.now())
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[calendar_scopes.c.scope],
        set_={"version": stmt.excluded.version, "fingerprint": stmt.excluded.fingerprint,
              "updated_at": stmt.excluded.updated_at}))
    return True


async def apply_calendar_changed(session: AsyncSession, envelope: Envelope) -> None:
    """Consumer handler every non-owning service registers for `calendar.changed`."""
    change = envelope.payload()
    assert isinstance(change, CalendarChanged)
    await write_scope(session, change)


def calendar_consumer() -> ConsumerSpec:
    """The consumer every service but cases runs, to keep its calendar equal to the owner's."""
    return ConsumerSpec("calendar", (topic_for("cases").name,), {"calendar.changed": apply_calendar_changed})
