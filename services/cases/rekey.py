"""Re-keying the clock of open cases after a calendar change (a centre override, an imported year, a new
package): each open case the change can touch is recounted with the new calendar; those whose due dates
moved get a new `clock_version`, an audit entry and a `case.due_changed`, in the transaction of the change
itself, so the calendar and the due dates never disagree.

This is bulk work (a year import touches every open case), so it runs as a few set statements over
thousands of cases at a time, straight on asyncpg, rather than one ORM round trip per case."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from services.cases import deadlines, registry
from services.cases.models import Case
from services.cases.transitions import CLOSED_STATES
from shared import clock
from shared.calendar.engine import WorkCalendar
from shared.calendar.store import load_calendar
from shared.db import driver_connection
from shared.events.catalog import CalendarChanged, CaseDueChanged
from shared.events.outbox import Outgoing, publish_all

BATCH = 5000
CASE_COLUMNS = tuple(c.name for c in Case.__table__.columns)
_SELECT = f"""
    SELECT {", ".join(f'"{c}"' for c in CASE_COLUMNS)} FROM cases
    WHERE status <> ALL($1::text[]) AND ($2::text IS NULL OR center_id = $2) AND accepted_on <= $3
      AND (paused_on IS NOT NULL OR legal_due_at >= $4) AND case_no > $5
    ORDER BY case_no LIMIT $6
"""
_PAUSES = "SELECT case_no, paused_on, resumed_on FROM case_pauses WHERE case_no = ANY($1::text[]) ORDER BY id"
_UPDATE = """
    UPDATE cases c SET due_at = u.due_at, legal_due_at = u.legal_due_at, warn_at = u.warn_at,
                       stage_due_at = u.stage_due_at, clock_version = u.clock_version, updated_at = $7
    FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[], $6::int[])
         AS u(case_no, due_at, legal_due_at, warn_at, stage_due_at, clock_version)
    WHERE c.case_no = u.case_no
"""
_HISTORY = """
    INSERT INTO case_history (case_no, at, actor_id, actor_role, action, from_status, to_status, from_stage, to_stage,
                              reason, details)
    SELECT u.case_no, $3, 'system', 'system', 'due_changed', u.status, u.status, NULL, NULL, $4, u.details::jsonb
    FROM unnest($1::text[], $2::text[], $5::text[]) AS u(case_no, status, details)
"""


@dataclass(frozen=True)
class Rekeyed:
    examined: int
    changed: int


def _bounds(change: CalendarChanged) -> tuple[str | None, date, datetime]:
    """Which open cases the change can touch: (centre or all, accepted on or before, due on or after)."""
    if change.scope == "year" and change.year is not None:
        start = datetime.combine(date(change.year, 1, 1), time(0), tzinfo=clock.LOCAL_TZ).astimezone(UTC)
        return None, date(change.year, 12, 31), start
    if change.scope == "center":
        # overrides are for today or later, and an open case's clock counts to its legal due date
        today = datetime.combine(clock.today_local(), time(0), tzinfo=clock.LOCAL_TZ).astimezone(UTC)
        return change.center_id, date.max, today
    return None, date.max, datetime.min.replace(tzinfo=UTC)


async def rekey_open_cases(session: AsyncSession, change: CalendarChanged,
                           calendar: WorkCalendar | None = None) -> Rekeyed:
    """Recount the clock of every open case `change` can touch, with the calendar as it now stands."""
    calendar = calendar or await load_calendar(session)
    db = await driver_connection(session)
    center, accepted_by, due_from = _bounds(change)
    examined = changed = 0
    after = ""
    while True:
        rows = await db.fetch(_SELECT, list(CLOSED_STATES), center, accepted_by, due_from, after, BATCH)
        if not rows:
            break
        examined += len(rows)
        after = rows[-1]["case_no"]
        changed += await _rekey_batch(session, db, calendar, rows)
    return Rekeyed(examined, changed)


async def _rekey_batch(session: AsyncSession, db: asyncpg.Connection, calendar: WorkCalendar,
                       rows: list[asyncpg.Record]) -> int:
    cases = [Case(**{c: row[c] for c in CASE_COLUMNS}) for row in rows]
    pauses: dict[str, list[deadlines.Pause]] = {}
    for p in await db.fetch(_PAUSES, [c.case_no for c in cases]):
        pauses.setdefault(p["case_no"], []).append(deadlines.Pause(p["paused_on"], p["resumed_on"]))
    moved: list[tuple[Case, registry.ClockState]] = []
    for case in cases:
        inputs = registry.clock_inputs_from(case, tuple(pauses.get(case.case_no, ())))
        previous = registry.clock_state(case)
        if registry.apply_deadlines(case, deadlines.compute(calendar, inputs)):
            moved.append((case, previous))
    if not moved:
        return 0
    now = clock.now()
    await db.execute(_UPDATE, [c.case_no for c, _ in moved], [c.due_at for c, _ in moved],
                     [c.legal_due_at for c, _ in moved], [c.warn_at for c, _ in moved],
                     [c.stage_due_at for c, _ in moved], [c.clock_version for c, _ in moved], now)
    await db.execute(_HISTORY, [c.case_no for c, _ in moved], [c.status for c, _ in moved], now,
                     "工作日历变更 (calendar changed)",
                     [json.dumps({"previous_due_at": p.due_at.isoformat(), "due_at": c.due_at.isoformat(),
                                  "clock_version": c.clock_version}) for c, p in moved])
    await publish_all(session, registry.PRODUCER, [
        Outgoing(CaseDueChanged(case=registry.facts(c), previous=p, cause="calendar"), c.case_no, c.center_id)
        for c, p in moved])
    return len(moved)
