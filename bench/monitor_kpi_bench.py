"""Benchmark of the supervision reports (issue 24 "Benchmark"): a county's month of KPIs and window scores
computed from the read model, and the queue events one monitor `hall` consumer applies per second. Every
figure is printed with its ratio to its limit, all measured in this one run.

(1) KPIs of a month. A county centre's read model bulk-loaded with INSERT ... SELECT generate_series, as the
    consumers leave it: `--month` (default 2026-03) and `--history` months before it (default 11: a year in
    the tables). Every working day (the platform's calendar) `--cases-a-day` cases in `case_clocks` (300
    items of 20 departments, 45 % immediate, 55 % promised with limits of 5-20 working days and legal limits
    twice that; 1 % still open and past due, 2 % of the immediate ones completed the next day, 4 % of the
    promised ones completed 1-5 working days late, 3 % refused), `--windows` windows in `hall_windows` and
    `--windows` x `--tickets-a-window` tickets a day in `hall_tickets` (30 services; 92 % served with their
    wait and service seconds, 4 % no-shows, 4 % cancelled or expired), a rating for 85 % of the served ones
    (85 % 非常满意 ... 0.7 % 非常不满意), and a day's supervision records (10 vacant-window, 15 overdue and 15
    long-wait alerts, 15 overdue and 2 manual findings, 10 sanctions, 5 complaints, a third of them upheld).
    Then VACUUM ANALYZE. Timed in this process over ASGI (httpx ASGITransport against
    services.monitor.main.create_app with its lifespan, a supervisor's token, as the tests do): `GET /kpis`
    of the month (the cases' and the hall's figures) for group_by none, department, window, item and day,
    and `GET /scores` of the month; one warm-up, then the median of `--runs`. Target: each median < 1 s.
    The plan of the slowest /kpis grouping's two statements (EXPLAIN ANALYZE) is printed: its scans and times.
(2) Hall consumer. `--backlog` queue events (ticket.issued, .called, .started, .finished of backlog/4
    tickets over `--windows` windows of two centres, in the order of their moments through a day, keyed by
    centre on the queue topic's 6 partitions as the queue's relay writes them) produced straight to a topic
    of this run's own before the consumer starts; one monitor `hall` consumer (the service's HALL_HANDLERS
    and its ConsumerSpec, the platform EventConsumer) in a process of its own drains them. Events per second
    from its first committed event to its last. No target in the issue: the figure is printed, and beside it
    the `cases` consumer's, measured by bench/monitor_bench.py's throughput part in the same run (its target
    2,000/s) unless `--skip cases`.

Run: `uv run python bench/monitor_kpi_bench.py [--month 2026-03] [--history 11] [--cases-a-day 2000]
[--windows 50] [--tickets-a-window 90] [--runs 7] [--backlog 20000] [--skip kpis,hall,cases]`. It starts its
own PostgreSQL (var/bench-monitor-kpi-pg-<pid>, fsync off, destroyed at the end) and broker. Exit code 0
when every target is met.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import random
import signal
import statistics
import sys
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import monitor_bench  # noqa: E402
from aiokafka import AIOKafkaProducer  # noqa: E402
from monitor_bench import Child, monitor_database, stop_child, until, verdict  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402

from shared import clock, devsecrets  # noqa: E402
from shared.calendar.engine import WorkCalendar  # noqa: E402
from shared.db import asyncpg_dsn, make_engine, make_sessionmaker  # noqa: E402
from shared.devinfra.kafka import EmbeddedKafka  # noqa: E402
from shared.devinfra.postgres import EmbeddedPostgres, free_port  # noqa: E402
from shared.events.catalog import (  # noqa: E402
    CallFacts,
    Clerk,
    TicketCalled,
    TicketFacts,
    TicketFinished,
    TicketIssued,
    TicketStarted,
)
from shared.events.envelope import Envelope, EventData  # noqa: E402
from shared.events.kafka import ensure_topics, new_admin  # noqa: E402
from shared.events.topics import Topic, topic_for  # noqa: E402
from shared.metrics import at_commit  # noqa: E402

SCRIPT = str(Path(__file__).resolve())
KPI_TARGET_S = 1.0
CENTRE = "320115"  # the county's centre
HALL_CENTRES = ["320115", "320117"]
GROUPS = ("none", "department", "window", "item", "day")
CALENDAR = WorkCalendar()
LOCAL = "Asia/Shanghai"


def months(month: str, before: int) -> list[tuple[int, int]]:
    year, mon = int(month[:4]), int(month[5:7])
    out = []
    for k in range(before, -1, -1):
        m = year * 12 + mon - 1 - k
        out.append((m // 12, m % 12 + 1))
    return out


def working_days(year: int, mon: int) -> list[date]:
    day, out = date(year, mon, 1), []
    while day.month == mon:
        if CALENDAR.is_working_day(day, CENTRE):
            out.append(day)
        day += timedelta(days=1)
    return out


# --- (1) the read model of a county: bulk load ---------------------------------------------------------------

# $1 the month's working days, $2 rows, $3 rows a day, $4 the first row's number (keys and hashes unique
# over the months); h(n) a deterministic pseudo-random 0..999 of the row, n picking an independent one
H = "(abs(hashint8(({i} + $4::bigint) * 16 + {n})) % 1000)"
CASE_H = {n: H.format(i="i", n=n) for n in range(8)}

LOAD_CASES = f"""
INSERT INTO case_clocks (case_no, center_id, department, item_code, item_name, kind, status, stage, stage_index,
    handler_id, handler_name, "window", accepted_at, due_at, legal_due_at, warn_at, paused, clock_version,
    imported, overdue_at_import, expedited, closed_at, updated_at, promised_limit_days, legal_limit_days,
    completed_at, result, completed_late, overdue_working_days)
SELECT '{CENTRE}-' || to_char(x.day, 'YYYYMMDD') || '-' || lpad((x.j + 1)::text, 6, '0'), '{CENTRE}',
    'D' || lpad((x.k % 20)::text, 2, '0'), 'SX' || lpad(x.k::text, 4, '0'), '事项' || x.k,
    x.kind, CASE WHEN x.open THEN 'in_progress' ELSE 'completed' END, CASE WHEN x.open THEN '审查' ELSE '办结' END,
    CASE WHEN x.open THEN 1 ELSE 3 END, 'clerk-' || x.win, '王小明', x.win::text,
    y.accepted_at, y.due_at, y.due_at + make_interval(days => x.limit_days * 2), y.warn_at, false, 1, false, false,
    {CASE_H[5]} = 999, CASE WHEN x.open THEN NULL ELSE z.completed_at END, coalesce(z.completed_at, y.accepted_at),
    x.promised, x.legal, CASE WHEN x.open THEN NULL ELSE z.completed_at END,
    CASE WHEN x.open THEN NULL WHEN {CASE_H[6]} < 30 THEN 'refused' ELSE 'approved' END,
    CASE WHEN x.open THEN NULL ELSE z.late_days > 0 END, CASE WHEN x.open THEN NULL ELSE z.late_days END
FROM generate_series(0, $2::int - 1) AS i,
LATERAL (SELECT ($1::date[])[1 + i / $3::int] AS day, i % $3::int AS j,
                ((({CASE_H[0]} / 1000.0) ^ 2) * 300)::int AS k, {CASE_H[3]} AS outcome, {CASE_H[4]} AS speed) AS s,
LATERAL (SELECT s.*, CASE WHEN s.k % 20 < 9 THEN 'immediate' ELSE 'promised' END AS kind,
                CASE WHEN s.k % 20 < 9 THEN 0 ELSE (ARRAY[5, 10, 15, 20])[1 + s.k % 4] END AS promised,
                CASE WHEN s.k % 20 < 9 THEN NULL ELSE 2 * (ARRAY[5, 10, 15, 20])[1 + s.k % 4] END AS legal,
                CASE WHEN s.k % 20 < 9 THEN 0 ELSE 7 * (1 + s.k % 4) END AS limit_days,
                1 + ((s.k % 20) * 5 / 2 + {CASE_H[1]} % 3) % 50 AS win, s.outcome < 10 AS open) AS x,
LATERAL (SELECT (x.day + time '09:00' + make_interval(secs => x.j * 28800.0 / $3::int + {CASE_H[2]} % 14))
                    AT TIME ZONE '{LOCAL}' AS accepted_at) AS a,
LATERAL (SELECT a.accepted_at,
                CASE WHEN x.kind = 'immediate' THEN (x.day + time '17:30') AT TIME ZONE '{LOCAL}'
                     ELSE a.accepted_at + make_interval(days => x.limit_days) END AS due_at,
                CASE WHEN x.kind = 'promised' THEN a.accepted_at + make_interval(days => x.limit_days - 2) END
                    AS warn_at) AS y,
LATERAL (SELECT CASE
            WHEN x.kind = 'immediate' AND x.outcome >= 980 THEN a.accepted_at + interval '1 day 2 hours'
            WHEN x.kind = 'immediate' THEN a.accepted_at + make_interval(mins => 10 + x.speed % 50)
            WHEN x.outcome >= 960 THEN y.due_at + make_interval(days => 1 + x.speed % 5)
            ELSE a.accepted_at + make_interval(secs => x.limit_days * 86400.0 * (0.3 + 0.65 * x.speed / 1000.0))
         END AS completed_at,
         CASE WHEN x.kind = 'immediate' AND x.outcome >= 980 THEN 1
              WHEN x.kind = 'promised' AND x.outcome >= 960 THEN 1 + x.speed % 5 ELSE 0 END AS late_days) AS z
"""

TICKET_H = {n: H.format(i="i", n=n) for n in range(8)}
LOAD_TICKETS = f"""
INSERT INTO hall_tickets (ticket_id, center_id, business_date, service_code, department, number, kind, channel,
    duty_only, status, issued_at, effective_arrival, "window", clerk_id, post, called_at, started_at, ended_at,
    wait_s, service_s, updated_at, last_event_sequence)
SELECT i + $4::bigint + 1, '{CENTRE}', x.day, 'S' || lpad(x.s::text, 2, '0'), 'D' || lpad((x.s % 20)::text, 2, '0'),
    chr(65 + x.s % 8) || lpad((x.j % 1000)::text, 3, '0'), x.kind,
    CASE WHEN x.kind = 'appointment' THEN 'online' WHEN x.pick < 35 THEN 'staff' ELSE 'kiosk' END, false, x.status,
    x.issued_at, x.issued_at, CASE WHEN x.wait_s IS NOT NULL THEN x.win::text END,
    CASE WHEN x.wait_s IS NOT NULL THEN 'clerk-' || x.win END, CASE WHEN x.wait_s IS NOT NULL THEN 'A' END,
    x.issued_at + make_interval(secs => x.wait_s), CASE WHEN x.status = 'done' THEN x.started_at END,
    CASE WHEN x.status = 'done' THEN x.started_at + make_interval(secs => x.service_s)
         WHEN x.status IN ('cancelled', 'expired') THEN x.issued_at + interval '40 minutes' END,
    x.wait_s, x.service_s, x.issued_at + make_interval(secs => coalesce(x.wait_s, 2400) + x.service_s + 20),
    i + $4::bigint + 1
FROM generate_series(0, $2::int - 1) AS i,
LATERAL (SELECT ($1::date[])[1 + i / $3::int] AS day, i % $3::int AS j,
                ((({TICKET_H[0]} / 1000.0) ^ 1.5) * 30)::int AS s, {TICKET_H[2]} AS outcome, {TICKET_H[5]} AS pick,
                {TICKET_H[1]} % 3 AS spread, {TICKET_H[3]} AS w, {TICKET_H[4]} AS sv) AS r,
LATERAL (SELECT r.*, CASE WHEN r.outcome < 40 THEN 'no_show' WHEN r.outcome < 60 THEN 'cancelled'
                          WHEN r.outcome < 80 THEN 'expired' ELSE 'done' END AS status,
                CASE WHEN r.pick < 25 THEN 'appointment' WHEN r.pick < 30 THEN 'green' ELSE 'walk_in' END AS kind,
                1 + ((r.s % 20) * 5 / 2 + r.spread) % 50 AS win,
                (r.day + time '08:30' + make_interval(secs => r.j * 30600.0 / $3::int)) AT TIME ZONE '{LOCAL}'
                    AS issued_at,
                CASE WHEN r.outcome >= 40 AND r.outcome < 80 THEN NULL
                     ELSE 30 + (((r.w / 1000.0) ^ 2) * 3000)::int END AS wait_s,
                CASE WHEN r.outcome >= 80 THEN 120 + (((r.sv / 1000.0) ^ 2) * 1500)::int ELSE 0 END AS service_s) AS q,
LATERAL (SELECT q.*, q.issued_at + make_interval(secs => coalesce(q.wait_s, 0) + 20) AS started_at) AS x
"""

LOAD_RATINGS = f"""
INSERT INTO ratings (evaluation_id, center_id, ticket_id, "window", clerk_id, post, department, service_code, rating,
    channel, submitted_at, business_date)
SELECT ticket_id, center_id, ticket_id, "window", clerk_id, post, department, service_code,
    CASE WHEN r.v < 850 THEN 5 WHEN r.v < 950 THEN 4 WHEN r.v < 980 THEN 3 WHEN r.v < 993 THEN 2 ELSE 1 END,
    CASE WHEN r.v % 10 = 0 THEN 'public' ELSE 'evaluator' END, ended_at + interval '20 seconds', business_date
FROM hall_tickets, LATERAL (SELECT abs(hashint8(ticket_id * 16 + 9)) % 1000 AS v) AS r
WHERE center_id = '{CENTRE}' AND status = 'done' AND abs(hashint8(ticket_id * 16 + 8)) % 100 < 85
"""

LOAD_WINDOWS = """
INSERT INTO hall_windows (center_id, number, name, department, services, duty, a_clerk, b_clerk, active, setup_sequence,
    state, updated_at)
SELECT c, w::text, w || '号窗口', 'D' || lpad((((w - 1) * 2 / 5) % 20)::text, 2, '0'),
    jsonb_build_object('S' || lpad(((w - 1) * 2 / 5 % 20)::text, 2, '0'), 1,
                       'S' || lpad(((w - 1) * 2 / 5 % 20 + 10)::text, 2, '0'), 1), w = 1,
    'clerk-' || w, 'clerk-b' || w, true, 1, 'signed_out', $1::timestamptz
FROM unnest($2::text[]) AS c, generate_series(1, $3::int) AS w
"""
LOAD_SERVICES = """
INSERT INTO hall_services (center_id, code, name, department, wait_threshold_minutes, active, updated_at,
    last_event_sequence)
SELECT c, 'S' || lpad(s::text, 2, '0'), '业务' || s, 'D' || lpad((s % 20)::text, 2, '0'), 30 + 15 * (s % 3), true,
    $1::timestamptz, 1
FROM unnest($2::text[]) AS c, generate_series(0, 30) AS s
"""

# a day's supervision records, per working day of $1 (the month's days); SUP_H a pseudo-random 0..999 of one
SUP_H = "(abs(hashint8((d.day - date '2000-01-01') * 100 + e)) % 1000)"
DAYS = "unnest($1::date[]) WITH ORDINALITY AS d(day, n)"
AT = f"(d.day + time '09:00' + make_interval(mins => e * 23 % 480)) AT TIME ZONE '{LOCAL}'"
WIN = "(1 + (e * 7 + d.n::int * 3) % 50)"
DEPT = f"('D' || lpad((({WIN} - 1) * 2 / 5 % 20)::text, 2, '0'))"
LOAD_ALERTS = f"""
INSERT INTO alerts (cause_key, center_id, kind, level, status, text, case_no, "window", department, raised_at,
    resolved_at, due_moment)
SELECT k.kind || ':' || to_char(d.day, 'YYYYMMDD') || ':' || e, '{CENTRE}', k.kind,
    CASE k.kind WHEN 'overdue' THEN 'red' ELSE 'yellow' END, 'resolved', '预警', NULL, {WIN}::text, {DEPT}, {AT},
    {AT} + interval '30 minutes', {AT} - interval '1 minute'
FROM {DAYS}, (VALUES ('vacant_window', 10), ('overdue', 15), ('long_wait', 15)) AS k(kind, a_day),
    generate_series(1, k.a_day) AS e
"""
LOAD_FINDINGS = f"""
INSERT INTO findings (cause_key, center_id, source, department, "window", case_no, item_name, handler_id, handler_name,
    occurred_at, year, overdue_days, status, imported_overdue, text, recorded_by, recorded_at, decided_by, decided_at)
SELECT CASE WHEN e <= 15 THEN 'overdue:' || to_char(d.day, 'YYYYMMDD') || ':' || e END, '{CENTRE}',
    CASE WHEN e <= 15 THEN 'overdue' WHEN e = 16 THEN 'spot_check' ELSE 'discipline' END, {DEPT}, {WIN}::text,
    NULL, '事项', 'clerk-' || {WIN}, '王小明', {AT}, extract(year FROM d.day)::int,
    CASE WHEN e <= 15 THEN 1 + e % 5 END, CASE WHEN {SUP_H} < 900 THEN 'confirmed' ELSE 'excused' END, false,
    '超时办结', 'system', {AT}, 'office', {AT} + interval '2 hours'
FROM {DAYS}, generate_series(1, 17) AS e
"""
LOAD_SANCTIONS = """
INSERT INTO sanctions (center_id, department, year, finding_id, level, ordinal, notice_no, notice_text, recipients,
    issued_at, rectification_due_at, status)
SELECT f.center_id, f.department, f.year, f.id, CASE WHEN f.id % 10 < 7 THEN 'warning' ELSE 'criticism' END, 1,
    'JC-' || f.id, '通知书', '["chief"]'::jsonb, f.decided_at + interval '1 hour', f.decided_at + interval '10 days',
    CASE WHEN f.id % 20 = 0 THEN 'revoked' WHEN f.id % 3 = 0 THEN 'rectified' ELSE 'issued' END
FROM findings AS f
WHERE f.source = 'overdue' AND f.status = 'confirmed' AND f.id % 3 <> 2
"""
LOAD_COMPLAINTS = f"""
INSERT INTO complaints (number, center_id, channel, category, severity, "window", department, text, received_at,
    due_at, status, closed_at, on_time)
SELECT '{CENTRE}-TS-' || to_char(d.day, 'YYYYMMDD') || '-' || lpad(e::text, 4, '0'), '{CENTRE}',
    (ARRAY['phone', 'mailbox', 'public', 'in_person'])[1 + e % 4], '服务态度', 'general', {WIN}::text, {DEPT},
    '投诉', {AT}, {AT} + interval '5 days',
    CASE WHEN {SUP_H} < 330 THEN 'upheld' WHEN {SUP_H} < 800 THEN 'resolved' WHEN {SUP_H} < 950
         THEN 'dismissed' ELSE 'open' END,
    CASE WHEN {SUP_H} < 950 THEN {AT} + interval '3 days' END, CASE WHEN {SUP_H} < 950 THEN true END
FROM {DAYS}, generate_series(1, 5) AS e
"""
TABLES = ("case_clocks", "hall_tickets", "ratings", "hall_windows", "hall_services", "alerts", "findings",
          "sanctions", "complaints")


async def load_county(url: str, opts: argparse.Namespace) -> dict[str, int]:
    """The county's read model: `--history` months and `--month`; the month's counts by table."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    counts: dict[str, int] = {}
    tickets_a_day = opts.windows * opts.tickets_a_window
    try:
        now = clock.now()
        await conn.execute(LOAD_WINDOWS, now, [CENTRE], opts.windows)
        await conn.execute(LOAD_SERVICES, now, [CENTRE])
        first_case = first_ticket = 0
        for year, mon in months(opts.month, opts.history):
            days = working_days(year, mon)
            cases, tickets = len(days) * opts.cases_a_day, len(days) * tickets_a_day
            started = time.perf_counter()
            async with conn.transaction():
                await conn.execute(LOAD_CASES, days, cases, opts.cases_a_day, first_case)
                await conn.execute(LOAD_TICKETS, days, tickets, tickets_a_day, first_ticket)
                for sql in (LOAD_ALERTS, LOAD_FINDINGS, LOAD_COMPLAINTS):
                    await conn.execute(sql, days)
            first_case += cases
            first_ticket += tickets
            if f"{year}-{mon:02d}" == opts.month:
                counts = {"working days": len(days), "cases": cases, "tickets": tickets}
            print(f"  {year}-{mon:02d}: {len(days)} working days, {cases:,} cases, {tickets:,} tickets "
                  f"({time.perf_counter() - started:.1f} s)", flush=True)
        await conn.execute(LOAD_RATINGS)
        await conn.execute(LOAD_SANCTIONS)
        for table in TABLES:
            await conn.execute(f"VACUUM ANALYZE {table}")
        lo, hi = month_range(opts.month)
        counts["ratings"] = await conn.fetchval(
            "SELECT count(*) FROM ratings WHERE business_date BETWEEN $1 AND $2", lo, hi)
        counts["all cases"] = await conn.fetchval("SELECT count(*) FROM case_clocks")
        counts["all tickets"] = await conn.fetchval("SELECT count(*) FROM hall_tickets")
        counts["all ratings"] = await conn.fetchval("SELECT count(*) FROM ratings")
    finally:
        await conn.close()
    return counts


def month_range(month: str) -> tuple[date, date]:
    year, mon = int(month[:4]), int(month[5:7])
    after = date(year + (mon == 12), mon % 12 + 1, 1)
    return date(year, mon, 1), after - timedelta(days=1)


# --- (1) timed: the reports over ASGI ------------------------------------------------------------------------

async def explain(url: str, sql: str, params: dict[str, Any]) -> str:
    """EXPLAIN ANALYZE of a report's statement: its scans (with their times) and the execution time."""
    from sqlalchemy import text

    engine = make_engine(url, application_name="bench-monitor-kpi-explain")
    try:
        async with engine.connect() as conn:
            lines = [r[0].strip().removeprefix("->").strip()
                     for r in (await conn.execute(text("EXPLAIN (ANALYZE) " + sql), params)).all()]
    finally:
        await engine.dispose()
    scans = [f"{line.split('  (cost')[0]} {line.split('actual time=')[1].split(' ')[0].split('..')[1]} ms"
             for line in lines if "Scan" in line and "actual time=" in line]
    total = next((line for line in lines if line.startswith("Execution Time")), "")
    return "; ".join(scans) + f"; {total}"


async def bench_kpis(pg: EmbeddedPostgres, kafka: EmbeddedKafka, opts: argparse.Namespace) -> bool:
    from services.monitor import kpis
    from services.monitor.config import Settings
    from services.monitor.main import create_app
    from shared.auth import mint_token
    from shared.settings import HallSettings

    url = await monitor_database(pg, "kpis")
    started = time.perf_counter()
    counts = await load_county(url, opts)
    print(f"  loaded in {time.perf_counter() - started:.0f} s: {counts['all cases']:,} cases, "
          f"{counts['all tickets']:,} tickets, {counts['all ratings']:,} ratings in all", flush=True)
    settings = Settings(database_url=url, migrate_on_start=False,
                        hall=HallSettings(kafka_bootstrap=kafka.bootstrap, log_level="WARNING"))
    app = create_app(settings)
    token = mint_token(os.environ["GATEWAY_JWT_PRIVATE_KEY"], subject="bench-office", role="supervisor",
                       centers=[CENTRE], ttl=timedelta(hours=1))
    lo, hi = month_range(opts.month)
    requests: dict[str, tuple[str, dict[str, str]]] = {
        **{f"/kpis group_by={g}": ("/kpis", {"center": CENTRE, "from": lo.isoformat(), "to": hi.isoformat(),
                                              "group_by": g}) for g in GROUPS},
        "/scores": ("/scores", {"center": CENTRE, "month": opts.month}),
    }
    medians: dict[str, float] = {}
    ok = True
    print(f"KPIs of a county month ({opts.month}: {counts['working days']} working days, {counts['cases']:,} cases, "
          f"{opts.windows} windows, {counts['tickets']:,} tickets, {counts['ratings']:,} ratings; {opts.history} "
          f"months before it in the tables), in-process over ASGI, median of {opts.runs} after a warm-up")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                     headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            for name, (path, params) in requests.items():
                times: list[float] = []
                body: Any = None
                for run in range(opts.runs + 1):
                    t0 = time.perf_counter()
                    response = await client.get(path, params=params)
                    elapsed = time.perf_counter() - t0
                    if response.status_code != 200:
                        raise RuntimeError(f"{path} {params}: {response.status_code} {response.text[:300]}")
                    if run:
                        times.append(elapsed)
                    body = response.json()
                median = medians[name] = statistics.median(times)
                right = check(name, body, counts)
                ok &= median < KPI_TARGET_S and right is None
                rows = len(body["windows"]) if name == "/scores" else f"{len(body['rows'])}+{len(body['hall'])}"
                print(f"  {name:<26} {median * 1000:7.1f} ms (max {max(times) * 1000:6.1f}; {rows} rows)  "
                      f"ratio to {KPI_TARGET_S:.0f} s {median / KPI_TARGET_S:.2f} "
                      f"{verdict(median < KPI_TARGET_S and right is None)}"
                      + (f"  ({right})" if right else ""), flush=True)
    slowest = max((g for g in GROUPS), key=lambda g: medians[f"/kpis group_by={g}"])
    start, end = kpis._bounds(lo, hi)
    print(f"  plans of the slowest grouping ({slowest}):")
    print("    cases: " + await explain(url, kpis._sql(slowest),
                                         {"center": CENTRE, "start": start, "end": end, "now": clock.now()}))
    print("    hall:  " + await explain(url, kpis._hall_sql(slowest), {"center": CENTRE, "start": lo, "end": hi}))
    worst = max(medians.values())
    print(f"  slowest median {worst * 1000:.0f} ms (target < {KPI_TARGET_S:.0f} s; ratio {worst / KPI_TARGET_S:.2f}) "
          f"{verdict(ok)}", flush=True)
    return ok


def check(name: str, body: Any, counts: dict[str, int]) -> str | None:
    """What is wrong with a report's figures for the loaded month (None: they add up)."""
    if name == "/scores":
        return None if len(body["windows"]) >= 50 else f"only {len(body['windows'])} windows scored"
    accepted = sum(r["accepted"] for r in body["rows"])
    tickets = sum(r["tickets"] for r in body["hall"])
    if accepted != counts["cases"] or tickets != counts["tickets"]:
        return f"accepted {accepted:,} of {counts['cases']:,}, tickets {tickets:,} of {counts['tickets']:,}"
    return None


# --- (2) the hall consumer -----------------------------------------------------------------------------------

def ticket_events(count: int, windows: int) -> list[tuple[datetime, EventData, str, int]]:
    """`count` tickets of a day over `windows` windows of HALL_CENTRES: each issued, called, started and
    finished, at the moments of a hall's day (wait 1-40 min, service 2-15 min); (moment, event, centre, ticket)."""
    rng = random.Random(24)
    today = clock.today_local()
    opening = datetime.combine(today, datetime.min.time(), tzinfo=clock.LOCAL_TZ) + timedelta(hours=8, minutes=30)
    per_centre = windows // len(HALL_CENTRES)
    events: list[tuple[datetime, EventData, str, int]] = []
    for n in range(count):
        centre = HALL_CENTRES[n % len(HALL_CENTRES)]
        window = str(1 + rng.randrange(per_centre))
        service = rng.randrange(30)
        issued = opening + timedelta(seconds=n * 30600 / count)
        wait_s, service_s = rng.randint(60, 2400), rng.randint(120, 900)
        facts = TicketFacts(ticket_id=1_000_000 + n, center_id=centre, business_date=today,
                            service_code=f"S{service:02d}", department=f"D{service % 20:02d}",
                            number=f"{chr(65 + service % 8)}{n % 1000:03d}", kind="walk_in", channel="kiosk",
                            issued_at=issued)
        clerk = Clerk(id=f"clerk-{window}", display_name="王小明", post_title="综合窗口")
        called = issued + timedelta(seconds=wait_s)
        started = called + timedelta(seconds=20)
        events += [
            (issued, TicketIssued(ticket=facts, people_ahead=rng.randint(0, 30), estimated_wait_s=wait_s,
                                  id_number_hash=f"{n:064x}", id_number_masked="3201**********1234"), centre, facts.ticket_id),
            (called, TicketCalled(ticket=facts, call=CallFacts(
                window=window, clerk=clerk, post="A", wait_s=wait_s, tier=1,
                announcement=f"请{facts.number}号到{window}号窗口办理"), priority_streak=0), centre, facts.ticket_id),
            (started, TicketStarted(ticket=facts, window=window, clerk_id=clerk.id, wait_s=wait_s + 20), centre, facts.ticket_id),
            (started + timedelta(seconds=service_s), TicketFinished(
                ticket=facts, window=window, clerk_id=clerk.id, wait_s=wait_s + 20, service_s=service_s), centre, facts.ticket_id),
        ]
    events.sort(key=lambda e: e[0])
    return events


async def role_hall(args: argparse.Namespace) -> None:
    """The monitor's `hall` consumer (its ConsumerSpec and handlers), each event reported when it commits."""
    from services.monitor.consumers import CONSUMERS

    spec = next(s for s in CONSUMERS if s.name == "hall")

    def timed(handler: Any) -> Any:
        async def run(session: AsyncSession, envelope: Envelope) -> None:
            await handler(session, envelope)
            event_id = str(envelope.id)
            at_commit(session, lambda: sys.stdout.write(f"applied {event_id} {time.perf_counter():.6f}\n"))
        return run

    engine = make_engine(args.database_url, application_name="bench-monitor-hall")
    timed_spec = dataclasses.replace(spec, handlers={t: timed(h) for t, h in spec.handlers.items()})
    consumer = timed_spec.build("monitor", args.bootstrap, make_sessionmaker(engine),
                                topic_names={topic_for("queue").name: args.topic})
    print(f"ready {consumer.apply_batch}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def flush() -> None:
        while not stop.is_set():
            sys.stdout.flush()
            await asyncio.sleep(0.005)

    flusher = asyncio.create_task(flush())
    try:
        await consumer.run(stop)
    finally:
        flusher.cancel()
        sys.stdout.flush()
        await engine.dispose()


async def spawn_hall(*args: str) -> Child:
    process = await asyncio.create_subprocess_exec(sys.executable, SCRIPT, "--role", "hall", *args,
                                                   stdout=asyncio.subprocess.PIPE)
    child = Child(process, asyncio.create_task(asyncio.sleep(0)))

    async def read() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            kind, *rest = raw.decode().split()
            if kind == "applied":
                if rest[0] in child.applied:
                    child.twice += 1
                child.applied.setdefault(rest[0], float(rest[1]))
            elif kind == "ready":
                child.apply_batch = rest[0] if rest else ""
                child.ready.set()

    child.reader = asyncio.create_task(read())
    return child


async def bench_hall(pg: EmbeddedPostgres, kafka: EmbeddedKafka, opts: argparse.Namespace) -> float:
    url = await monitor_database(pg, "hall")
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(LOAD_WINDOWS, clock.now(), HALL_CENTRES, opts.windows // len(HALL_CENTRES))
        await conn.execute(LOAD_SERVICES, clock.now(), HALL_CENTRES)
    finally:
        await conn.close()
    queue = topic_for("queue")
    topic = Topic(f"bench.monitor.hall.{uuid.uuid4().hex[:8]}", "queue", queue.partitions, queue.key)
    admin = new_admin(kafka.bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin, [topic])
    finally:
        await admin.close()
    tickets = opts.backlog // 4
    events = ticket_events(tickets, opts.windows)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        sending: list[asyncio.Future[Any]] = []
        for sequence, (at, data, centre, ticket_id) in enumerate(events, 1):
            envelope = Envelope.wrap("queue", data, subject=f"ticket:{ticket_id}", center_id=centre,
                                     occurred_at=at).model_copy(update={"sequence": sequence})
            sending.append(await producer.send(topic.name, envelope.model_dump_json().encode(), key=centre.encode(),
                                               headers=[("type", envelope.type.encode()), ("producer", b"queue")]))
            if len(sending) >= 2000:
                await asyncio.gather(*sending)
                sending.clear()
        await asyncio.gather(*sending)
    finally:
        await producer.stop()
    count = len(events)
    started = time.perf_counter()
    child = await spawn_hall("--database-url", url, "--bootstrap", kafka.bootstrap, "--topic", topic.name)
    try:
        await until(lambda: len(child.applied) >= count or child.process.returncode is not None, 600,
                    "the hall backlog to drain")
        await asyncio.sleep(0.5)
    finally:
        await stop_child(child)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        done = await conn.fetchval("SELECT count(*) FROM hall_tickets WHERE status = 'done' AND service_s > 0")
        armed = await conn.fetchval("SELECT count(*) FROM timers WHERE kind = 'monitor.hall.wait'")
    finally:
        await conn.close()
    instants = sorted(child.applied.values())
    seconds = instants[-1] - instants[0] if len(instants) > 1 else float("inf")
    rate = (len(instants) - 1) / seconds
    complete = len(child.applied) == count and child.twice == 0 and done == tickets and armed == 0
    print(f"hall consumer: {count:,} queue events (ticket.issued, called, started, finished of {tickets:,} tickets, "
          f"{opts.windows} windows of {len(HALL_CENTRES)} centres, keyed by centre on {topic.partitions} "
          f"partitions) from a backlog, one monitor hall consumer process, apply_batch {child.apply_batch}")
    print(f"  applied {len(child.applied):,} in {seconds:.2f} s (first -> last commit; {instants[-1] - started:.1f} "
          f"s from the process start): {rate:,.0f} events/s (no target)"
          + ("" if complete else "  (INCOMPLETE)"))
    print(f"  exactly once: {child.twice} applied twice; read model {done:,}/{tickets:,} tickets done, {armed} "
          "long-wait timers left armed (0: every call cancelled its ticket's)", flush=True)
    if not complete:
        raise RuntimeError("the hall consumer did not apply every event exactly once")
    return rate


# --- the run ------------------------------------------------------------------------------------------------------

async def run(opts: argparse.Namespace, pg: EmbeddedPostgres, kafka: EmbeddedKafka) -> int:
    results: dict[str, bool] = {}
    skip = set(filter(None, (opts.skip or "").split(",")))
    print(f"monitor KPI bench on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    if "kpis" not in skip:
        results["kpis"] = await bench_kpis(pg, kafka, opts)
    if "hall" not in skip:
        hall = await bench_hall(pg, kafka, opts)
        if "cases" not in skip:
            print("reference: the cases consumer (bench/monitor_bench.py's throughput part, same broker and "
                  "PostgreSQL)", flush=True)
            await monitor_bench.bench_throughput(pg, kafka, argparse.Namespace(backlog=opts.backlog))
        print(f"hall consumer: {hall:,.0f} events/s", flush=True)
    print("summary: " + ", ".join(f"{name} {verdict(ok)}" for name, ok in results.items()))
    return 0 if all(results.values()) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--role", choices=["hall"], help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--month", default="2026-03")
    parser.add_argument("--history", type=int, default=11, help="months loaded before --month")
    parser.add_argument("--cases-a-day", type=int, default=2000)
    parser.add_argument("--windows", type=int, default=50)
    parser.add_argument("--tickets-a-window", type=int, default=90)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--skip", help="comma-separated: kpis, hall, cases")
    args = parser.parse_args()
    if args.role == "hall":
        asyncio.run(role_hall(args))
        return 0
    os.environ.update(devsecrets.generate())  # the app's settings read them
    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    pg = EmbeddedPostgres(var / f"bench-monitor-kpi-pg-{os.getpid()}", free_port(), fast_unsafe=True)
    kafka = EmbeddedKafka(free_port(), var / "bench-monitor-kpi-kafka.log")

    def terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    try:
        pg.start()
        kafka.start()
        return asyncio.run(run(args, pg, kafka))
    except KeyboardInterrupt:
        return 130
    finally:
        kafka.stop(kill=True)
        pg.destroy()


if __name__ == "__main__":
    sys.exit(main())
