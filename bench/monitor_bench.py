"""Benchmark of electronic supervision (电子监察, issue 23 "Benchmark"): due work at scale, the `cases` consumer's
throughput and latency, and a case's due moment to its alert on the supervision feed. Every figure is printed
with its ratio to its limit, all measured in this one run.

(1) Scale. Two monitor databases, one with 10,000 open cases and one with 1,000,000, bulk-loaded with
    INSERT ... SELECT generate_series straight into `case_clocks` and `timers` as the `cases` consumer leaves
    them (an accepted case: its row, a `monitor.warn` and a `monitor.due` timer of clock version 1). In both,
    the same 1,000 cases (spread over the key range) are past due, their early warning already fired; every
    other case is due 2-30 days from now. Timed: `TimerRunner.fire_due()` (the worker's batch size, 100) until
    nothing is due: each of the 1,000 raises an overdue alert and a finding (alert.raised + finding.recorded
    in the outbox). Rounds alternate the two databases; between rounds the alerts, findings, outbox and audit
    rows are deleted and the 1,000 timers re-armed, then the touched tables vacuumed. Target: the 1M median
    <= 2 x the 10k median.
(2) Throughput. `--backlog` case events (case.accepted, then case.stage_advanced, of backlog/2 cases over 8
    centres, keyed by case on 12 partitions as the cases relay writes them) produced straight to a topic
    before the consumer starts; one monitor `cases` consumer (the service's handlers, the platform
    EventConsumer with the tree's `apply_batch`) in a process of its own drains them. Events per second from
    its first committed event to its last. Target >= 2,000/s.
    Latency. A producer in this process commits case events (one transaction each, `outbox.publish` on 8
    sessions, open loop at `--rate`) into an outbox; the outbox relay (a process of its own) sends them to
    the broker; the consumer process applies them. commit -> applied is from the producer's commit returning
    to the consumer's transaction committing (an `at_commit` callback; `time.perf_counter()` is
    CLOCK_MONOTONIC, one clock for all processes). The producer's outbox is a monitor-migrated database
    standing in for the case registry's (the outbox table is the platform's, the same in every service).
    Target p99 <= 100 ms.
(3) Due moment -> feed. The real clock. `--feed-cases` cases due over `--feed-seconds` seconds, starting a few
    seconds from now, loaded as in (1) into a fresh database; the monitor worker (`python -m
    services.monitor.worker`: its timer runner, relay, consumers) runs against it and the broker, the
    monitor app on uvicorn serves `/feeds/alerts`, a supervisor's SSE client reads it. Latency = the
    alert.raised frame's arrival (wall clock) - the case's due_at. Target p99 <= 2 s.

Run: `uv run python bench/monitor_bench.py [--large 1000000] [--small 10000] [--due 1000] [--rounds 3]
[--backlog 20000] [--rate 200] [--seconds 15] [--feed-cases 300] [--feed-seconds 30] [--skip scale,...]`.
It starts its own PostgreSQL (var/bench-monitor-pg-<pid>, fsync off, destroyed at the end) and broker. Exit
code 0 when every target is met.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import uvicorn  # noqa: E402
from aiokafka import AIOKafkaProducer  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402

from shared import clock, devsecrets  # noqa: E402
from shared.calendar.engine import WorkCalendar  # noqa: E402
from shared.db import asyncpg_dsn, ensure_database, make_engine, make_sessionmaker  # noqa: E402
from shared.devinfra.kafka import EmbeddedKafka  # noqa: E402
from shared.devinfra.postgres import EmbeddedPostgres, free_port  # noqa: E402
from shared.events.catalog import CaseAccepted, CaseFacts, CaseStageAdvanced, Handler, ItemRef  # noqa: E402
from shared.events.consumer import EventConsumer  # noqa: E402
from shared.events.envelope import Envelope, EventData  # noqa: E402
from shared.events.kafka import ensure_topics, new_admin  # noqa: E402
from shared.events.topics import Topic  # noqa: E402
from shared.metrics import at_commit  # noqa: E402
from shared.migrate import upgrade  # noqa: E402

SCRIPT = str(Path(__file__).resolve())
SCALE_RATIO_LIMIT = 2.0
THROUGHPUT_TARGET = 2000.0
LATENCY_P99_MS = 100.0
FEED_P99_S = 2.0
CENTRES = ["320102", "320104", "320105", "320106", "320111", "320113", "320114", "320115"]
CALENDAR = WorkCalendar()
LANES = 8


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# --- (1) scale: bulk load and fire ----------------------------------------------------------------------------

LOAD_CASES_SQL = """
INSERT INTO case_clocks (case_no, center_id, department, item_code, item_name, kind, status, stage, stage_index,
    handler_id, handler_name, "window", accepted_at, due_at, legal_due_at, warn_at, stage_due_at, follow_up_at,
    special_limit_at, special_count, paused, clock_version, imported, overdue_at_import, expedited, closed_at,
    updated_at)
SELECT c.case_no, c.center_id, 'D' || lpad((i % 20)::text, 2, '0'), 'JS' || lpad((i % 50)::text, 3, '0'),
    '建设工程施工许可', 'promised', 'in_progress', '审查', 0, 'clerk-' || (i % 500), '王小明', ((i % 30) + 1)::text,
    c.due_at - interval '20 days', c.due_at, c.due_at + interval '20 days', c.due_at - interval '1 day', NULL,
    NULL, NULL, 0, false, 1, false, false, false, NULL, $1::timestamptz
FROM generate_series($2::int, $3::int) AS i,
LATERAL (SELECT $4::text || '-' || lpad(i::text, 8, '0') AS case_no, {centre} AS center_id, {due} AS due_at) AS c
"""
ALL_CENTRES = "(ARRAY[" + ",".join(f"'{c}'" for c in CENTRES) + "])[1 + i % 8]"
# every $5-th case due a minute to an hour ago, the others 2-30 days from now
LOAD_CASES = LOAD_CASES_SQL.format(centre=ALL_CENTRES, due=(
    "CASE WHEN i % $5::int = 0 THEN $1::timestamptz - make_interval(secs => 60 + i % 3600) "
    "ELSE $1::timestamptz + make_interval(days => 2 + i % 28, secs => i % 86400) END"))
# one centre's cases due one after another, $5 seconds apart, from $1
LOAD_DUE_SOON = LOAD_CASES_SQL.format(centre="$6::text", due="$1::timestamptz + make_interval(secs => (i - 1) * $5::float8)")
LOAD_TIMERS = """
INSERT INTO timers (kind, key, due_at, payload, created_at, fired_at, attempts)
SELECT k.kind, c.case_no, CASE k.kind WHEN 'monitor.warn' THEN c.warn_at ELSE c.due_at END,
    '{"clock_version": 1}'::jsonb, c.updated_at,
    CASE WHEN k.kind = 'monitor.warn' AND c.warn_at <= $1 THEN c.warn_at END, 0
FROM case_clocks AS c CROSS JOIN (VALUES ('monitor.warn'), ('monitor.due')) AS k(kind)
WHERE c.case_no >= $2 AND c.case_no <= $3
"""
RESET_ROUND = [
    "DELETE FROM alerts", "DELETE FROM findings", "DELETE FROM outbox",
    "UPDATE timers SET fired_at = NULL, attempts = 0 WHERE kind = 'monitor.due' AND due_at <= now()",
]


async def load_cases(url: str, count: int, due: int, *, prefix: str = "BENCH") -> float:
    """`count` open cases, `due` of them past due (every count/due-th), in chunks of 100,000; seconds taken."""
    started = time.perf_counter()
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        now = clock.now()
        step = max(1, count // due)
        for first in range(1, count + 1, 100_000):
            last = min(count, first + 99_999)
            async with conn.transaction():
                await conn.execute(LOAD_CASES, now, first, last, prefix, step)
                await conn.execute(LOAD_TIMERS, now, f"{prefix}-{first:08d}", f"{prefix}-{last:08d}")
        await conn.execute("VACUUM ANALYZE case_clocks")
        await conn.execute("VACUUM ANALYZE timers")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def fire_all(url: str) -> tuple[float, int, int, int]:
    """Fire everything due, as the worker's runner does; (seconds, fired, alerts, findings)."""
    from services.monitor import watch
    from shared.timers import TimerRunner

    engine = make_engine(url, application_name="bench-monitor-timers")
    try:
        runner = TimerRunner(engine, watch.TIMER_HANDLERS, batch_size=100)
        async with engine.connect():
            pass  # the pool's first connection is not part of the figure
        started = time.perf_counter()
        fired = 0
        while (n := await runner.fire_due()) > 0:
            fired += n
        seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        alerts = await conn.fetchval("SELECT count(*) FROM alerts WHERE kind = 'overdue'")
        findings = await conn.fetchval("SELECT count(*) FROM findings")
    finally:
        await conn.close()
    return seconds, fired, alerts, findings


async def reset_round(url: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for sql in RESET_ROUND:
            await conn.execute(sql)
        for table in ("alerts", "findings", "outbox", "timers"):
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()


async def explain_due(url: str) -> str:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch(
            "EXPLAIN SELECT * FROM timers WHERE fired_at IS NULL AND due_at <= now() AND kind = ANY($1) "
            "ORDER BY due_at, id LIMIT 100 FOR UPDATE SKIP LOCKED", ["monitor.warn", "monitor.due"])
    finally:
        await conn.close()
    return " / ".join(r[0].strip() for r in rows if "Scan" in r[0])


async def bench_scale(pg: EmbeddedPostgres, opts: argparse.Namespace) -> bool:
    sizes = {"small": opts.small, "large": opts.large}
    urls = {name: pg.url(f"hall_bench_monitor_{name}") for name in sizes}
    loads: dict[str, float] = {}
    for name, count in sizes.items():
        await ensure_database(urls[name])
        await asyncio.to_thread(upgrade, "monitor", urls[name])
        loads[name] = await load_cases(urls[name], count, opts.due)
        print(f"  loaded {count:,} open cases ({2 * count:,} timers) in {loads[name]:.1f} s", flush=True)
    times: dict[str, list[float]] = {name: [] for name in sizes}
    complete = True
    for round_no in range(opts.rounds):
        for name in sizes:
            if round_no:
                await reset_round(urls[name])
            seconds, fired, alerts, findings = await fire_all(urls[name])
            complete &= fired == alerts == findings == opts.due
            times[name].append(seconds)
            print(f"  round {round_no + 1} {sizes[name]:>9,} open: fired {fired} due timers in {seconds:.2f} s "
                  f"({alerts} overdue alerts, {findings} findings)", flush=True)
    small, large = statistics.median(times["small"]), statistics.median(times["large"])
    ratio = large / small
    print(f"scale: finding and firing {opts.due:,} due cases (each an overdue alert and a finding), median of "
          f"{opts.rounds} rounds")
    print(f"  {opts.small:>9,} open cases: {small:.2f} s ({opts.due / small:.0f} due cases/s)   "
          f"{opts.large:>9,} open cases: {large:.2f} s ({opts.due / large:.0f}/s)")
    print(f"  due-timer scan: {await explain_due(urls['large'])}")
    print(f"  1M / 10k = {ratio:.2f} (limit {SCALE_RATIO_LIMIT:.0f}; ratio to limit {ratio / SCALE_RATIO_LIMIT:.2f}) "
          f"{verdict(ratio <= SCALE_RATIO_LIMIT and complete)}"
          + ("" if complete else "  (NOT every due case raised exactly one alert and finding)"), flush=True)
    for url in urls.values():
        conn = await asyncpg.connect(asyncpg_dsn(pg.url()))
        try:
            await conn.execute(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        finally:
            await conn.close()
    return ratio <= SCALE_RATIO_LIMIT and complete


# --- case events ------------------------------------------------------------------------------------------------

def case_facts(n: int, prefix: str, stage_index: int = 0) -> CaseFacts:
    accepted_on = clock.today_local()
    due_at = CALENDAR.due_at(accepted_on, 20, CENTRES[n % len(CENTRES)])
    return CaseFacts(
        case_no=f"{prefix}-{n:08d}", center_id=CENTRES[n % len(CENTRES)], kind="promised", status="in_progress",
        stage=("受理", "审查", "决定")[stage_index], stage_index=stage_index,
        accepted_at=clock.now(), due_at=due_at, legal_due_at=due_at + timedelta(days=20),
        warn_at=due_at - timedelta(days=2), clock_version=1, department=f"D{n % 20:02d}",
        item=ItemRef(code=f"JS{n % 50:03d}", name="建设工程施工许可", promised_limit_days=20, legal_limit_days=40),
        handler=Handler(id=f"clerk-{n % 500}", display_name="王小明"), window=str(n % 30 + 1),
        applicant_hash=f"{n:064x}", applicant_masked="张*")


def case_event(n: int, prefix: str, second: bool) -> EventData:
    if not second:
        return CaseAccepted(case=case_facts(n, prefix), source="window", id_number_masked="3201**********1234",
                            lookup_code_sealed="sealed")
    return CaseStageAdvanced(case=case_facts(n, prefix, 1), from_stage="受理", to_stage="审查")


async def new_topic(bootstrap: str, name: str) -> Topic:
    topic = Topic(name, "cases", 12, "subject")
    admin = new_admin(bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin, [topic])
    finally:
        await admin.close()
    return topic


# --- child processes: the consumer and the relay ------------------------------------------------------------------

async def role_consumer(args: argparse.Namespace) -> None:
    """The monitor's `cases` consumer: the service's handlers, each event reported when its transaction commits."""
    from services.monitor.consumers import CASES_HANDLERS

    def timed(handler: Any) -> Any:
        async def run(session: AsyncSession, envelope: Envelope) -> None:
            await handler(session, envelope)
            event_id = str(envelope.id)
            at_commit(session, lambda: sys.stdout.write(f"applied {event_id} {time.perf_counter():.6f}\n"))
        return run

    engine = make_engine(args.database_url, application_name="bench-monitor-consumer")
    # the service's `cases` handlers and consumer, in a group (and inbox name) of this run's own
    consumer = EventConsumer(args.group, args.bootstrap, [args.topic], {t: timed(h) for t, h in CASES_HANDLERS.items()},
                             make_sessionmaker(engine), service="monitor")
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


async def role_relay(args: argparse.Namespace) -> None:
    from shared.events.relay import Relay

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    relay = Relay(args.database_url, args.bootstrap, "cases", topic=Topic(args.topic, "cases", 12, "subject"),
                  application_name="bench-monitor-relay")
    print("ready", flush=True)
    await relay.run(stop)


@dataclass
class Child:
    process: asyncio.subprocess.Process
    reader: asyncio.Task[None]
    applied: dict[str, float] = field(default_factory=dict)
    twice: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    apply_batch: str = "?"


async def spawn(role: str, *args: str) -> Child:
    process = await asyncio.create_subprocess_exec(sys.executable, SCRIPT, "--role", role, *args,
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


async def stop_child(child: Child) -> None:
    if child.process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            child.process.terminate()
        try:
            await asyncio.wait_for(child.process.wait(), 15)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()
            await child.process.wait()
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(child.reader, 5)


async def until(check: Any, within: float, what: str) -> None:
    deadline = time.perf_counter() + within
    while not check():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def monitor_database(pg: EmbeddedPostgres, name: str) -> str:
    url = pg.url(f"hall_bench_monitor_{name}")
    await ensure_database(url)
    await asyncio.to_thread(upgrade, "monitor", url)
    return url


# --- (2) the consumer: throughput and latency ---------------------------------------------------------------------

async def bench_throughput(pg: EmbeddedPostgres, kafka: EmbeddedKafka, opts: argparse.Namespace) -> bool:
    url = await monitor_database(pg, "backlog")
    topic = await new_topic(kafka.bootstrap, f"bench.monitor.backlog.{uuid.uuid4().hex[:8]}")
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all", linger_ms=20)
    await producer.start()
    cases = opts.backlog // 2
    try:
        sending: list[asyncio.Future[Any]] = []
        sequence = 0
        for second in (False, True):
            for n in range(1, cases + 1):
                sequence += 1
                subject = f"case:BL-{n:08d}"
                data = case_event(n, "BL", second)
                envelope = Envelope.wrap("cases", data, subject=subject, center_id=CENTRES[n % len(CENTRES)]
                                         ).model_copy(update={"sequence": sequence})
                sending.append(await producer.send(topic.name, envelope.model_dump_json().encode(),
                                                   key=subject.encode(), headers=[("type", envelope.type.encode()),
                                                                                  ("producer", b"cases")]))
                if len(sending) >= 2000:
                    await asyncio.gather(*sending)
                    sending.clear()
        await asyncio.gather(*sending)
    finally:
        await producer.stop()
    count = 2 * cases
    started = time.perf_counter()
    child = await spawn("consumer", "--database-url", url, "--bootstrap", kafka.bootstrap, "--topic", topic.name,
                        "--group", f"backlog-{uuid.uuid4().hex[:6]}")
    try:
        await until(lambda: len(child.applied) >= count or child.process.returncode is not None, 600,
                    "the backlog to drain")
        await asyncio.sleep(0.5)
    finally:
        await stop_child(child)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetchval("SELECT count(*) FROM case_clocks WHERE stage_index = 1")
        armed = await conn.fetchval("SELECT count(*) FROM timers WHERE fired_at IS NULL")
    finally:
        await conn.close()
    instants = sorted(child.applied.values())
    seconds = instants[-1] - instants[0] if len(instants) > 1 else float("inf")
    rate = (len(instants) - 1) / seconds
    complete = len(child.applied) == count and child.twice == 0 and rows == cases and armed == 2 * cases
    print(f"throughput: {count:,} case events (case.accepted then case.stage_advanced of {cases:,} cases, 12 "
          f"partitions) from a backlog, one monitor cases consumer process, apply_batch {child.apply_batch}")
    print(f"  applied {len(child.applied):,} in {seconds:.2f} s (first -> last commit; {instants[-1] - started:.1f} "
          f"s from the process start): {rate:,.0f} events/s (target >= {THROUGHPUT_TARGET:,.0f}; ratio "
          f"{rate / THROUGHPUT_TARGET:.2f}) {verdict(rate >= THROUGHPUT_TARGET and complete)}")
    print(f"  exactly once: {child.twice} applied twice; read model {rows:,}/{cases:,} cases at their second stage, "
          f"{armed:,} armed timers (2 a case)", flush=True)
    return rate >= THROUGHPUT_TARGET and complete


async def bench_latency(pg: EmbeddedPostgres, kafka: EmbeddedKafka, opts: argparse.Namespace) -> bool:
    monitor_url = await monitor_database(pg, "latency")
    producer_url = await monitor_database(pg, "producer")
    topic = await new_topic(kafka.bootstrap, f"bench.monitor.latency.{uuid.uuid4().hex[:8]}")
    consumer = await spawn("consumer", "--database-url", monitor_url, "--bootstrap", kafka.bootstrap,
                           "--topic", topic.name, "--group", f"latency-{uuid.uuid4().hex[:6]}")
    relay = await spawn("relay", "--database-url", producer_url, "--bootstrap", kafka.bootstrap, "--topic", topic.name)
    engine = make_engine(producer_url, pool_size=LANES, max_overflow=0, application_name="bench-monitor-producer")
    sessions = make_sessionmaker(engine)
    committed: dict[str, float] = {}
    from shared.events.outbox import publish

    async def commit(n: int, second: bool) -> None:
        data = case_event(n, "LT", second)
        async with sessions() as session:
            async with session.begin():
                envelope = await publish(session, "cases", data, subject=f"case:LT-{n:08d}",
                                         center_id=CENTRES[n % len(CENTRES)])
            committed[str(envelope.id)] = time.perf_counter()

    try:
        await asyncio.wait_for(asyncio.gather(consumer.ready.wait(), relay.ready.wait()), 60)
        # start-up: events until the consumer has joined and applies them at once
        warm = 0
        deadline = time.perf_counter() + 90
        while True:
            warm += 1
            await commit(warm, False)
            await asyncio.sleep(0.2)
            recent = [i for i, at in committed.items() if time.perf_counter() - at > 1.0]
            if recent and all(i in consumer.applied for i in recent) and len(consumer.applied) >= 10:
                break
            if time.perf_counter() > deadline:
                raise RuntimeError("the consumer did not catch up during the warm-up")
        warm_ids = set(committed)
        count = int(opts.rate * opts.seconds)
        first = warm + 1
        start = time.perf_counter() + 0.1
        queue: asyncio.Queue[tuple[int, bool] | None] = asyncio.Queue()

        async def lane() -> None:
            while (item := await queue.get()) is not None:
                await commit(*item)

        lanes = [asyncio.create_task(lane()) for _ in range(LANES)]
        accepted_so_far: list[int] = []
        for k in range(count):
            delay = start + k / opts.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            # every other event a new case, the others a stage of one accepted a while ago
            if k % 2 == 0 or len(accepted_so_far) < 50:
                n = first + k
                accepted_so_far.append(n)
                queue.put_nowait((n, False))
            else:
                queue.put_nowait((accepted_so_far.pop(0), True))
        for _ in lanes:
            queue.put_nowait(None)
        await asyncio.gather(*lanes)
        elapsed = time.perf_counter() - start
        measured = [i for i in committed if i not in warm_ids]
        await until(lambda: all(i in consumer.applied for i in measured), 60, "every event applied")
    finally:
        await engine.dispose()
        await stop_child(relay)
        await stop_child(consumer)
    ms = sorted((consumer.applied[i] - committed[i]) * 1000 for i in measured)
    p50, p90, p99 = percentile(ms, 0.5), percentile(ms, 0.9), percentile(ms, 0.99)
    print(f"latency: {len(measured):,} case events committed at {len(measured) / elapsed:.0f}/s (open loop, "
          f"{LANES} sessions, one transaction each) -> outbox relay process -> broker -> consumer process "
          f"(apply_batch {consumer.apply_batch})")
    print(f"  commit -> applied (consumer's transaction committed): p50 {p50:.1f} ms  p90 {p90:.1f} ms  "
          f"p99 {p99:.1f} ms  max {ms[-1]:.1f} ms  (target p99 <= {LATENCY_P99_MS:.0f} ms; ratio "
          f"{p99 / LATENCY_P99_MS:.2f}) {verdict(p99 <= LATENCY_P99_MS and consumer.twice == 0)}", flush=True)
    return p99 <= LATENCY_P99_MS and consumer.twice == 0


# --- (3) a due moment -> its alert on the feed ------------------------------------------------------------------

async def bench_feed(pg: EmbeddedPostgres, kafka: EmbeddedKafka, opts: argparse.Namespace) -> bool:
    from services.monitor.config import Settings
    from services.monitor.main import create_app
    from shared.auth import mint_token
    from shared.settings import HallSettings

    url = await monitor_database(pg, "feed")
    env = {**os.environ, "MONITOR_DATABASE_URL": url, "MONITOR_MIGRATE_ON_START": "false",
           "HALL_KAFKA_BOOTSTRAP": kafka.bootstrap, "HALL_LOG_LEVEL": "WARNING",
           "WORKER_HEALTH_PORT": str(free_port()), "WORKER_HEALTH_HOST": "127.0.0.1"}
    worker = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.monitor.worker", env=env,
                                                  cwd=str(ROOT), stdout=asyncio.subprocess.DEVNULL)
    settings = Settings(database_url=url, migrate_on_start=False,
                        hall=HallSettings(kafka_bootstrap=kafka.bootstrap, log_level="WARNING"))
    app = create_app(settings)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    arrivals: dict[str, tuple[float, datetime]] = {}  # case -> (arrival, due_at)
    frames = 0
    connected = asyncio.Event()
    centre = CENTRES[0]
    token = mint_token(os.environ["GATEWAY_JWT_PRIVATE_KEY"], subject="bench-office", role="supervisor",
                       centers=[centre], ttl=timedelta(hours=1))

    async def read() -> None:
        nonlocal frames
        async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as http, \
                http.stream("GET", f"http://127.0.0.1:{port}/feeds/alerts?center={centre}",
                            headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status_code == 200, response.status_code
            connected.set()
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    arrived = clock.wall_now().timestamp()
                    envelope = json.loads(line[6:])
                    frames += 1
                    if envelope["type"] == "alert.raised":
                        alert = envelope["data"]["alert"]
                        arrivals.setdefault(alert["case_no"], (arrived, datetime.fromisoformat(alert["due_at"])))

    reader: asyncio.Task[None] | None = None
    try:
        await until(lambda: server.started, 20, "uvicorn")
        reader = asyncio.create_task(read())
        await asyncio.wait_for(connected.wait(), 20)
        await asyncio.sleep(3)  # the worker's relay, consumers and timer runner are up
        if worker.returncode is not None:
            raise RuntimeError(f"the monitor worker exited with {worker.returncode}")
        # cases of one centre due one after another from a few seconds from now; the rest far in the future
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            now = clock.now()
            first = now + timedelta(seconds=4)
            spacing = opts.feed_seconds / opts.feed_cases
            await conn.execute(LOAD_CASES, now, 1, 10_000, "FEEDFAR", 10**9)  # none due: the read model is not empty
            await conn.execute(LOAD_TIMERS, now, "FEEDFAR-00000001", "FEEDFAR-00010000")
            await conn.execute(LOAD_DUE_SOON, first, 1, opts.feed_cases, "FEED", spacing, centre)
            await conn.execute(LOAD_TIMERS, now, "FEED-00000001", f"FEED-{opts.feed_cases:08d}")
        finally:
            await conn.close()
        last_due = first + timedelta(seconds=spacing * (opts.feed_cases - 1))
        wait = (last_due - clock.now()).total_seconds() + 15
        await until(lambda: sum(1 for c in arrivals if c.startswith("FEED-")) >= opts.feed_cases, wait,
                    "every alert on the feed")
    finally:
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
        if worker.returncode is None:
            worker.terminate()
            try:
                await asyncio.wait_for(worker.wait(), 20)
            except TimeoutError:
                worker.kill()
                await worker.wait()
    lat = sorted(at - due.timestamp() for case, (at, due) in arrivals.items() if case.startswith("FEED-"))
    p50, p90, p99 = percentile(lat, 0.5), percentile(lat, 0.9), percentile(lat, 0.99)
    print(f"due moment -> feed: {len(lat)} cases due over {opts.feed_seconds:.0f} s (real clock, 10,000 more open), "
          "the monitor worker process (timer runner, relay), the monitor app on uvicorn, a supervisor's SSE "
          f"client on /feeds/alerts ({frames} frames: alerts and findings)")
    print(f"  due_at -> alert.raised frame read: p50 {p50:.2f} s  p90 {p90:.2f} s  p99 {p99:.2f} s  max {lat[-1]:.2f} s"
          f"  (target p99 <= {FEED_P99_S:.0f} s; ratio {p99 / FEED_P99_S:.2f}) {verdict(p99 <= FEED_P99_S)}",
          flush=True)
    return p99 <= FEED_P99_S


# --- the run ------------------------------------------------------------------------------------------------------

async def run(opts: argparse.Namespace, pg: EmbeddedPostgres, kafka: EmbeddedKafka) -> int:
    results: dict[str, bool] = {}
    skip = set(filter(None, (opts.skip or "").split(",")))
    print(f"monitor bench on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    if "scale" not in skip:
        results["scale"] = await bench_scale(pg, opts)
    if "throughput" not in skip:
        results["throughput"] = await bench_throughput(pg, kafka, opts)
    if "latency" not in skip:
        results["latency"] = await bench_latency(pg, kafka, opts)
    if "feed" not in skip:
        results["feed"] = await bench_feed(pg, kafka, opts)
    print("summary: " + ", ".join(f"{name} {verdict(ok)}" for name, ok in results.items()))
    return 0 if all(results.values()) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--role", choices=["consumer", "relay"], help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--group", help=argparse.SUPPRESS)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--feed-cases", type=int, default=300)
    parser.add_argument("--feed-seconds", type=float, default=30.0)
    parser.add_argument("--skip", help="comma-separated: scale, throughput, latency, feed")
    args = parser.parse_args()
    if args.role == "consumer":
        asyncio.run(role_consumer(args))
        return 0
    if args.role == "relay":
        asyncio.run(role_relay(args))
        return 0
    os.environ.update(devsecrets.generate())  # the app's and the worker's settings read them
    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    pg = EmbeddedPostgres(var / f"bench-monitor-pg-{os.getpid()}", free_port(), fast_unsafe=True)
    kafka = EmbeddedKafka(free_port(), var / "bench-monitor-kafka.log")

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
