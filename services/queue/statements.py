"""The statements of the hall floor's busiest routes (issue, call-next, start, finish), sent straight to
asyncpg inside the request session's transaction (`shared.db.driver_connection`).

Through the ORM a statement costs about five times the CPU of the same prepared asyncpg statement, and on
these routes that was most of the service's time (bench/queue_bench.py's profile; README, "Queue: speed").
So here each route reads what it needs in as few statements as it can, and writes with plain UPDATEs. The
rows come back as the same mapped classes (transient, outside the session), so the rules, the events and the
responses read them as they read any other. Configuration and the rarer ticket actions keep the ORM
(services.queue.repository); nothing here is read back through the session in the same transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import asyncpg

from services.queue import calling
from services.queue.models import Service, Ticket, Window
from shared.events.catalog import HallSchedule, QueueSettings

TICKET_COLUMNS = tuple(c.name for c in Ticket.__table__.columns)
_TICKET = ", ".join(f't."{c}"' for c in TICKET_COLUMNS)
_WINDOW_COLUMNS = tuple(c.name for c in Window.__table__.columns)
_WINDOW = ", ".join(f'w."{c}"' for c in _WINDOW_COLUMNS)


# the centre

@dataclass(frozen=True)
class FloorCenter:
    """A centre as the floor's rules read it: its id, queue settings and schedule."""

    id: str
    settings: QueueSettings
    schedule: HallSchedule | None  # None: the default schedule (services.queue.setup.DEFAULT_SCHEDULE)


@lru_cache(maxsize=256)
def _settings(text: str) -> QueueSettings:
    return QueueSettings.model_validate_json(text)


@lru_cache(maxsize=256)
def _schedule(text: str) -> HallSchedule | None:
    value = json.loads(text)
    return HallSchedule.model_validate(value) if value else None


def floor_center(center_id: str, settings: str | None, schedule: str | None) -> FloorCenter:
    """Parsed once per distinct text of the settings and schedule (a centre changes them rarely)."""
    return FloorCenter(center_id, _settings(settings or "{}"), _schedule(schedule or "null"))


async def center(db: asyncpg.Connection, center_id: str) -> FloorCenter | None:
    row = await db.fetchrow("SELECT settings::text, schedule::text FROM centers WHERE id = $1", center_id)
    return floor_center(center_id, row[0], row[1]) if row is not None else None


# issuing

@dataclass(frozen=True)
class IssueContext:
    """What issuing reads, in one statement: the centre (None if there is no such centre), the service (None
    if the centre has none of that code) and whether the business day was closed by hand (or by the
    day-close job)."""

    center: FloorCenter | None
    service: Service | None
    day_closed: bool


_ISSUE_CONTEXT = """
    SELECT c.settings::text AS settings, c.schedule::text AS schedule,
           s.center_id, s.code, s.name, s.prefix, s.department, s.wait_threshold_minutes,
           s.default_service_minutes, s.daily_limit_per_person, s.active, s.updated_at,
           EXISTS (SELECT 1 FROM business_days d
                   WHERE d.center_id = $1 AND d.business_date = $3 AND d.closed_at IS NOT NULL
                     AND (d.opened_at IS NULL OR d.opened_at < d.closed_at)) AS day_closed
    FROM centers c LEFT JOIN services s ON s.center_id = c.id AND s.code = $2
    WHERE c.id = $1
"""


async def issue_context(db: asyncpg.Connection, center_id: str, service_code: str, day: date) -> IssueContext:
    row = await db.fetchrow(_ISSUE_CONTEXT, center_id, service_code, day)
    if row is None:
        return IssueContext(None, None, False)
    service = None
    if row["code"] is not None:
        service = Service(**{k: row[k] for k in ("center_id", "code", "name", "prefix", "department",
                                                 "wait_threshold_minutes", "default_service_minutes",
                                                 "daily_limit_per_person", "active", "updated_at")})
    return IssueContext(floor_center(center_id, row["settings"], row["schedule"]), service, row["day_closed"])


_ESTIMATE = """
    SELECT (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.ended_at - t.started_at))
            FROM tickets t
            WHERE t.center_id = $1 AND t.service_code = $2 AND t.status = 'done' AND t.ended_at >= $3
              AND t.started_at IS NOT NULL) AS median,
           (SELECT count(*) FROM windows w JOIN window_services ws
              ON ws.center_id = w.center_id AND ws."window" = w.number
            WHERE w.center_id = $1 AND w.state = 'open' AND ws.service_code = $2 AND ws.weight > 0) AS windows
"""

# `calling.people_ahead` for a ticket about to be issued (the last arrival of its line), counted in SQL: a
# walk-in has its whole line ahead; a green ticket the transfers, started appointments and other greens
_AHEAD_OF_NEW = """
    SELECT count(*) FROM tickets t
    WHERE t.center_id = $1 AND t.business_date = $2 AND t.status = 'waiting' AND t.transferred_to_window IS NULL
      AND coalesce(t.transferred_to_service, t.service_code) = $3
      AND ($4 <> 'green' OR t.transferred_to_service IS NOT NULL OR t.kind = 'green'
           OR (t.kind = 'appointment' AND t.slot_start <= $5))
"""


async def service_pace(db: asyncpg.Connection, center_id: str, service_code: str,
                       since: datetime) -> tuple[float | None, int]:
    """The service's median service seconds since `since` (None without data) and its open windows."""
    row = await db.fetchrow(_ESTIMATE, center_id, service_code, since)
    assert row is not None
    return (float(row["median"]) if row["median"] is not None else None), int(row["windows"])


async def ahead_of_new_ticket(db: asyncpg.Connection, center_id: str, day: date, service_code: str, kind: str,
                              now: datetime) -> int:
    return int(await db.fetchval(_AHEAD_OF_NEW, center_id, day, service_code, kind, now))


# the number and the ticket in one statement: the counter's row stays locked to the commit (numbers unique
# and gap-free, shared.counters), and it is taken as late as the issue can take it
_INSERT_TICKET = """
    WITH n AS (
        INSERT INTO daily_counters (scope, business_date, value) VALUES ($1, $2, 1)
        ON CONFLICT (scope, business_date) DO UPDATE SET value = daily_counters.value + 1
        RETURNING value
    )
    INSERT INTO tickets (center_id, business_date, service_code, seq, number, lookup_code, kind, channel, status,
                         duty_only, issued_at, effective_arrival, id_number_hash, id_number_masked, phone_hash,
                         phone_masked, phone_encrypted)
    SELECT $3, $2, $4, n.value, $5 || lpad(n.value::text, greatest(3, length(n.value::text)), '0'), $6, $7, $8,
           'waiting', $9, $10, $10, $11, $12, $13, $14, $15
    FROM n
    RETURNING *
"""


async def insert_ticket(db: asyncpg.Connection, *, center_id: str, day: date, service: Service, lookup_code: str,
                        kind: str, channel: str, duty_only: bool, now: datetime, id_hash: str | None,
                        id_masked: str | None, phone_hash: str | None, phone_masked: str | None,
                        phone_encrypted: bytes | None) -> Ticket:
    row = await db.fetchrow(_INSERT_TICKET, f"ticket:{center_id}:{service.code}", day, center_id, service.code,
                            service.prefix, lookup_code, kind, channel, duty_only, now, id_hash, id_masked,
                            phone_hash, phone_masked, phone_encrypted)
    assert row is not None
    return ticket_of(row)


def ticket_of(row: asyncpg.Record) -> Ticket:
    return Ticket(**{c: row[c] for c in TICKET_COLUMNS})


# calling

@dataclass(frozen=True)
class WindowAtCall:
    """The window, locked, with its service weights and its signed-in clerk's public sign."""

    window: Window
    weights: dict[str, int]
    active_number: str | None
    clerk: dict[str, Any] | None  # display_name, post_title, photo_url of the staff read copy


_WINDOW_FOR_CALL = f"""
    SELECT {_WINDOW},
           (SELECT json_object_agg(ws.service_code, ws.weight)::text FROM window_services ws
            WHERE ws.center_id = w.center_id AND ws."window" = w.number) AS weights,
           (SELECT t.number FROM tickets t WHERE t.id = w.active_ticket_id) AS active_number,
           st.id AS staff_id, st.display_name, st.post_title, st.photo_url
    FROM windows w LEFT JOIN staff st ON st.id = w.clerk_id
    WHERE w.center_id = $1 AND w.number = $2
    FOR UPDATE OF w
"""


async def window_for_call(db: asyncpg.Connection, center_id: str, number: str) -> WindowAtCall | None:
    row = await db.fetchrow(_WINDOW_FOR_CALL, center_id, number)
    if row is None:
        return None
    clerk = None
    if row["staff_id"] is not None:
        clerk = {"display_name": row["display_name"], "post_title": row["post_title"], "photo_url": row["photo_url"]}
    weights = json.loads(row["weights"]) if row["weights"] is not None else {}
    return WindowAtCall(window_of(row), weights, row["active_number"], clerk)


def window_of(row: asyncpg.Record) -> Window:
    return Window(**{c: row[c] for c in _WINDOW_COLUMNS})


_CANDIDATES = """
    SELECT t.id, t.service_code, t.kind, t.effective_arrival, t.duty_only, t.transferred_at,
           t.transferred_to_window, t.transferred_to_service, t.slot_start, t.checked_in_at
    FROM tickets t
    WHERE t.center_id = $1 AND t.business_date = $2 AND t.status = 'waiting'
      AND ((t.service_code = ANY($3::text[]) AND t.transferred_to_window IS NULL
            AND t.transferred_to_service IS NULL)
           OR t.transferred_to_window = $4 OR t.transferred_to_service = ANY($3::text[]))
    ORDER BY t.effective_arrival, t.id
"""


async def call_candidates(db: asyncpg.Connection, center_id: str, day: date, services: list[str],
                          window: str) -> list[calling.Candidate]:
    """The waiting tickets a window may call, as the rule reads them: only the columns it needs, of the
    services the window serves (or transferred to it, or to one of them), in the lines' own order
    (calling.Ranking's sorts then only confirm it: linear on sorted input)."""
    return [calling.Candidate(
        ticket_id=r[0], service_code=r[1], kind=r[2], effective_arrival=r[3], duty_only=r[4], transferred_at=r[5],
        transferred_to_window=r[6], transferred_to_service=r[7], slot_start=r[8] if r[2] == "appointment" else None,
        checked_in_at=r[9]) for r in await db.fetch(_CANDIDATES, center_id, day, services, window)]


# the ticket is taken only if it still waits and no other transaction holds it: SKIP LOCKED never waits,
# so two windows never get the same ticket and neither waits for the other
_TAKE = f"""
    UPDATE tickets t SET status = 'called', "window" = $2, clerk_id = $3, post = $4, called_at = $5
    WHERE t.id = (SELECT id FROM tickets WHERE id = $1 AND status = 'waiting' FOR UPDATE SKIP LOCKED)
    RETURNING {_TICKET},
              (SELECT s.department FROM services s WHERE s.center_id = t.center_id AND s.code = t.service_code)
              AS department
"""


async def take_for_call(db: asyncpg.Connection, ticket_id: int, *, window: str, clerk_id: str, post: str | None,
                        now: datetime) -> tuple[Ticket, str | None] | None:
    """The waiting ticket, called at the window; None if it no longer waits or another window is taking it."""
    row = await db.fetchrow(_TAKE, ticket_id, window, clerk_id, post, now)
    return (ticket_of(row), row["department"]) if row is not None else None


async def window_called(db: asyncpg.Connection, window: Window, ticket_id: int, streak: int, now: datetime) -> None:
    await db.execute('UPDATE windows SET active_ticket_id = $3, priority_streak = $4, updated_at = $5 '
                     'WHERE center_id = $1 AND number = $2', window.center_id, window.number, ticket_id, streak, now)


# after the call

_TICKET_FOR_UPDATE = f"""
    SELECT {_TICKET},
           (SELECT s.department FROM services s WHERE s.center_id = t.center_id AND s.code = t.service_code)
           AS department
    FROM tickets t WHERE t.id = $1
    FOR UPDATE OF t
"""


async def ticket_for_update(db: asyncpg.Connection, ticket_id: int) -> tuple[Ticket, str | None] | None:
    """The ticket, locked, with its service's department (the monitor's unit)."""
    row = await db.fetchrow(_TICKET_FOR_UPDATE, ticket_id)
    return (ticket_of(row), row["department"]) if row is not None else None


async def window_for_update(db: asyncpg.Connection, center_id: str, number: str) -> Window | None:
    row = await db.fetchrow(f"SELECT {_WINDOW} FROM windows w WHERE w.center_id = $1 AND w.number = $2 FOR UPDATE",
                            center_id, number)
    return window_of(row) if row is not None else None


async def ticket_started(db: asyncpg.Connection, ticket_id: int, now: datetime) -> None:
    await db.execute("UPDATE tickets SET status = 'serving', started_at = $2 WHERE id = $1", ticket_id, now)


async def ticket_finished(db: asyncpg.Connection, ticket: Ticket, now: datetime) -> None:
    await db.execute("UPDATE tickets SET status = 'done', ended_at = $2 WHERE id = $1", ticket.id, now)
    await db.execute("UPDATE windows SET active_ticket_id = NULL, updated_at = $3 WHERE center_id = $1 AND number = $2",
                     ticket.center_id, ticket.window, now)


# the waiting counts

async def lock_waiting_counts(db: asyncpg.Connection, center_id: str) -> None:
    """The per-centre lock held to the commit under which waiting counts are read (tickets.waiting_counts)."""
    await db.execute("SELECT pg_advisory_xact_lock(hashtext('queue.waiting:' || $1::text))", center_id)


_WAITING_COUNTS = """
    SELECT s.code, (SELECT count(*) FROM tickets t
                    WHERE t.center_id = $1 AND t.business_date = $2 AND t.status = 'waiting'
                      AND t.service_code = s.code) AS waiting
    FROM services s WHERE s.center_id = $1 ORDER BY s.code
"""


async def waiting_counts(db: asyncpg.Connection, center_id: str, day: date) -> dict[str, int]:
    """Every service of the centre with its number of waiting tickets (0 included)."""
    return {r[0]: int(r[1]) for r in await db.fetch(_WAITING_COUNTS, center_id, day)}


# the turn-near notice (ticket.turn_near): once per ticket, by its row in turn_near_notices

_TURN_NEAR = f"""
    WITH due AS (
        SELECT t.id, a.ahead FROM unnest($1::bigint[], $2::int[]) AS a(id, ahead) JOIN tickets t ON t.id = a.id
        WHERE t.status = 'waiting' AND t.phone_encrypted IS NOT NULL
    ), sent AS (
        INSERT INTO turn_near_notices (ticket_id, center_id, people_ahead, sent_at)
        SELECT id, $3, ahead, $4 FROM due
        ON CONFLICT (ticket_id) DO NOTHING
        RETURNING ticket_id, people_ahead
    )
    SELECT {_TICKET}, sent.people_ahead,
           (SELECT s.department FROM services s WHERE s.center_id = t.center_id AND s.code = t.service_code)
           AS department,
           (SELECT s.default_service_minutes FROM services s
            WHERE s.center_id = t.center_id AND s.code = coalesce(t.transferred_to_service, t.service_code))
           AS default_minutes
    FROM sent JOIN tickets t ON t.id = sent.ticket_id
    ORDER BY sent.people_ahead
"""


@dataclass(frozen=True)
class TurnNear:
    ticket: Ticket
    people_ahead: int
    department: str | None
    default_minutes: int


async def mark_turn_near(db: asyncpg.Connection, center_id: str, ahead: dict[int, int],
                         now: datetime) -> list[TurnNear]:
    """Of the tickets given with their people ahead, those still waiting with a phone and not told yet, now
    marked told (the row's primary key makes it once, without locking the ticket: a window taking it is not
    held up)."""
    if not ahead:
        return []
    rows = await db.fetch(_TURN_NEAR, list(ahead), list(ahead.values()), center_id, now)
    return [TurnNear(ticket_of(r), int(r["people_ahead"]), r["department"], int(r["default_minutes"] or 10))
            for r in rows]
