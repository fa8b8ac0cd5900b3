"""Benchmark of the outbox relay: (a) throughput against a raw aiokafka producer, (b) backlog drain after a
broker outage.

Why: every state change of every service goes through the outbox, and after a broker outage the relay must
catch up on everything that piled up (with the embedded broker, everything retained: it comes back empty).
(a) bulk-inserts N outbox rows, starts a relay and times it until all are marked sent; in the same run a
raw producer (acks=all) sends the same keys and values, so the ratio shows what the relay's bookkeeping
(database round trips, ordering horizon, JSON re-encoding, marking) costs. Target: >= 5,000 events/s.
(b) publishes at a steady rate with `publish()` (one transaction per event), stops the broker for
`--outage-seconds`, starts it again (empty, new cluster id) and times the drain; then checks that every
event is on the topic.

Run: ``uv run python bench/events_bench.py [--part throughput|outage|all] [--events 30000]
[--outage-seconds 30] [--rate 500]``. It starts its own PostgreSQL (var/bench-pg, fsync off, destroyed at
the end) and broker on free ports.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Literal

# `uv run python bench/events_bench.py` puts bench/ on sys.path, not the repo root.
_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import asyncpg  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from prometheus_client import REGISTRY  # noqa: E402

from shared import clock  # noqa: E402
from shared.db import asyncpg_dsn, ensure_database, make_engine, make_sessionmaker  # noqa: E402
from shared.devinfra.kafka import EmbeddedKafka  # noqa: E402
from shared.devinfra.postgres import EmbeddedPostgres, free_port  # noqa: E402
from shared.events.envelope import Envelope, EventData  # noqa: E402
from shared.events.kafka import ensure_topics, new_admin  # noqa: E402
from shared.events.outbox import publish  # noqa: E402
from shared.events.relay import Relay, message_value  # noqa: E402
from shared.events.topics import Topic  # noqa: E402
from shared.migrate import upgrade  # noqa: E402

TARGET_EVENTS_PER_S = 5_000
CENTRES = [f"3201{n:02d}" for n in range(50)]


class TicketIssued(EventData):
    """A ticket-sized payload (not registered: only this bench produces it)."""

    type: Literal["bench.ticket_issued"] = "bench.ticket_issued"
    ticket_id: str
    number: str
    service_id: str
    kind: str
    people_ahead: int
    estimated_wait_seconds: int
    id_hash: str
    phone_masked: str


def ticket(n: int) -> TicketIssued:
    return TicketIssued(ticket_id=str(uuid.uuid4()), number=f"A{n % 1000:03d}", service_id=f"svc-{n % 12}",
                        kind="walk_in", people_ahead=n % 40, estimated_wait_seconds=(n % 40) * 180,
                        id_hash="9f" * 32, phone_masked="138****5678")


def new_topic(label: str) -> Topic:
    return Topic(f"bench.{label}.{uuid.uuid4().hex[:8]}", "queue", 6, "center")


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": "queue"}) or 0.0


async def unsent(conn: asyncpg.Connection, up_to: int | None = None) -> int:
    if up_to is None:
        return await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
    return await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND sequence <= $1", up_to)


async def until_sent(conn: asyncpg.Connection, up_to: int | None = None, interval: float = 0.02) -> float:
    """Poll until no row (up to sequence `up_to`) is unsent; returns the monotonic time it was seen."""
    while True:
        if not await unsent(conn, up_to):
            return clock.monotonic()
        await asyncio.sleep(interval)


async def reset(conn: asyncpg.Connection) -> None:
    await conn.execute("TRUNCATE outbox, platform_state RESTART IDENTITY")


# --- (a) throughput ---------------------------------------------------------------------------------

async def bulk_insert(conn: asyncpg.Connection, count: int) -> float:
    started = clock.monotonic()
    now = clock.now()
    records = []
    for n in range(count):
        centre = CENTRES[n % len(CENTRES)]
        envelope = Envelope.wrap("queue", ticket(n), subject=f"ticket-{n}", center_id=centre, occurred_at=now)
        records.append((envelope.id, envelope.type, "hall.queue.v1", centre, None, envelope.model_dump_json(), now))
    await conn.copy_records_to_table(
        "outbox", records=records,
        columns=["id", "type", "topic", "key", "reference_key", "envelope", "created_at"])
    await conn.execute("UPDATE outbox SET envelope = jsonb_set(envelope, '{sequence}', to_jsonb(sequence))")
    await conn.execute("VACUUM ANALYZE outbox")
    return clock.monotonic() - started


async def relay_throughput(url: str, bootstrap: str) -> tuple[float, float]:
    """Seconds from relay start until all rows are marked sent, and from its first acknowledgement."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    first_ack: list[float] = []

    def on_ack(sequences: list[int]) -> None:
        if not first_ack:
            first_ack.append(clock.monotonic())

    relay = Relay(url, bootstrap, "queue", topic=new_topic("relay"), after_send=on_ack)
    stop = asyncio.Event()
    started = clock.monotonic()
    task = asyncio.create_task(relay.run(stop))
    try:
        finished = await until_sent(conn)
    finally:
        stop.set()
        await task
        await conn.close()
    return finished - started, finished - first_ack[0]


async def raw_throughput(url: str, bootstrap: str) -> tuple[int, float]:
    """The same keys and values through a bare producer (acks=all), all acknowledgements awaited."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch("SELECT sequence, key, type, envelope FROM outbox ORDER BY sequence")
    finally:
        await conn.close()
    messages = [(row["key"].encode(), message_value(row["envelope"], row["sequence"]),
                 [("type", row["type"].encode()), ("producer", b"queue")]) for row in rows]
    topic = new_topic("raw")
    admin = new_admin(bootstrap)
    await admin.start()
    await ensure_topics(admin, [topic])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_batch_size=256 * 1024)
    await producer.start()
    try:
        started = clock.monotonic()
        futures = [await producer.send(topic.name, value=value, key=key, headers=headers)
                   for key, value, headers in messages]
        await asyncio.gather(*futures)
        return len(messages), clock.monotonic() - started
    finally:
        await producer.stop()


async def part_throughput(url: str, bootstrap: str, count: int) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await reset(conn)
        inserted = await bulk_insert(conn, count)
    finally:
        await conn.close()
    total, steady = await relay_throughput(url, bootstrap)
    sent, raw = await raw_throughput(url, bootstrap)
    relay_rate, steady_rate, raw_rate = count / total, count / steady, sent / raw
    print("(a) relay throughput")
    print(f"  outbox rows bulk-inserted          {count:>10,}   ({inserted:.2f} s)")
    print(f"  relay, start to all marked sent    {total:>10.2f} s   {relay_rate:>10,.0f} events/s")
    print(f"  relay, first ack to all marked     {steady:>10.2f} s   {steady_rate:>10,.0f} events/s")
    print(f"  raw aiokafka producer, same msgs   {raw:>10.2f} s   {raw_rate:>10,.0f} events/s")
    print(f"  ratio relay / raw (start to end)   {relay_rate / raw_rate:>10.2f}")
    verdict = "meets" if relay_rate >= TARGET_EVENTS_PER_S else "MISSES"
    print(f"  target >= {TARGET_EVENTS_PER_S:,} events/s: {verdict}")


# --- (b) outage -------------------------------------------------------------------------------------

async def publisher(sessionmaker, rate: float, stop: asyncio.Event, published: list[uuid.UUID], lanes: int = 4) -> None:
    """Publish `rate` events per second in total, one transaction each, on `lanes` concurrent sessions."""

    async def lane(index: int) -> None:
        interval = lanes / rate
        due = clock.monotonic() + index * interval / lanes
        n = index
        while not stop.is_set():
            delay = due - clock.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            centre = CENTRES[n % len(CENTRES)]
            async with sessionmaker() as session, session.begin():
                envelope = await publish(session, "queue", ticket(n), subject=f"ticket-{n}", center_id=centre)
            published.append(envelope.id)
            n += lanes
            due += interval

    await asyncio.gather(*(lane(i) for i in range(lanes)))


async def topic_ids(bootstrap: str, topic: Topic, expected: set[str], within: float = 60.0) -> set[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    seen: set[str] = set()
    try:
        consumer.assign([TopicPartition(topic.name, p) for p in range(topic.partitions)])
        await consumer.seek_to_beginning()
        deadline = clock.monotonic() + within
        while not expected <= seen and clock.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                seen.update(Envelope.model_validate_json(r.value).id.hex for r in records)
    finally:
        await consumer.stop()
    return seen


async def part_outage(url: str, kafka: EmbeddedKafka, outage_seconds: float, rate: float,
                      warmup_seconds: float = 5.0) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    engine = make_engine(url, pool_size=8, application_name="bench-publisher")
    await reset(conn)
    topic = new_topic("outage")
    acks: list[float] = []
    relay = Relay(url, kafka.bootstrap, "queue", topic=topic, retention=timedelta(days=7),
                  after_send=lambda sequences: acks.append(clock.monotonic()))
    stop_relay, stop_publishing = asyncio.Event(), asyncio.Event()
    published: list[uuid.UUID] = []
    started_at = clock.monotonic()
    relay_task = asyncio.create_task(relay.run(stop_relay))
    publishing = asyncio.create_task(publisher(make_sessionmaker(engine), rate, stop_publishing, published))
    try:
        await asyncio.sleep(warmup_seconds)
        lag_before = await unsent(conn)
        failed_before, resends_before = metric("hall_relay_failed_total"), metric("hall_relay_resends_total")
        print(f"(b) backlog drain after a broker outage, publishing {rate:.0f} events/s with publish()")
        print(f"  warm-up {warmup_seconds:.0f} s: {len(published):,} published, unsent at end {lag_before}")
        down_at = clock.monotonic()
        await asyncio.to_thread(kafka.stop, True)
        await asyncio.sleep(outage_seconds)
        backlog_at_recovery = await unsent(conn)
        recovery_high = await conn.fetchval("SELECT max(sequence) FROM outbox")
        await asyncio.to_thread(kafka.start)  # memory-only: back empty, with a new cluster id
        up_at = clock.monotonic()
        drained_at = await until_sent(conn, recovery_high)
        stop_publishing.set()
        await publishing
        await until_sent(conn)
        produced_rate = len(published) / (drained_at - started_at)
        print(f"  outage duration                    {up_at - down_at:>10.1f} s")
        print(f"  backlog at recovery (unsent rows)  {backlog_at_recovery:>10,}")
        print(f"  rows re-queued (new cluster id)    {metric('hall_relay_resends_total') - resends_before:>10,.0f}")
        print(f"  failed sends counted               {metric('hall_relay_failed_total') - failed_before:>10,.0f}")
        first_send = min((t for t in acks if t >= up_at), default=drained_at)
        drained = backlog_at_recovery + metric("hall_relay_resends_total") - resends_before
        print(f"  drain time (recovery -> every row up to it sent) {drained_at - up_at:>6.2f} s")
        print(f"    of which waiting for the relay's next retry    {first_send - up_at:>6.2f} s   (backoff, capped at 5 s)")
        print(f"    sending, while publishing goes on              {drained_at - first_send:>6.2f} s"
              f"   ({drained / (drained_at - first_send):,.0f} rows/s)")
        print(f"  publishing rate achieved           {produced_rate:>10,.0f} events/s")
        expected = {event_id.hex for event_id in published}
        seen = await topic_ids(kafka.bootstrap, topic, expected)
        missing = len(expected - seen)
        print(f"  events on the topic after recovery {len(expected & seen):>10,} of {len(expected):,}"
              f"   ({'none lost' if not missing else f'{missing} MISSING'})")
    finally:
        stop_publishing.set()
        stop_relay.set()
        await asyncio.gather(publishing, relay_task, return_exceptions=True)
        await engine.dispose()
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description="Outbox relay benchmarks")
    parser.add_argument("--part", choices=["throughput", "outage", "all"], default="all")
    parser.add_argument("--events", type=int, default=30_000, help="rows for the throughput part")
    parser.add_argument("--outage-seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=500.0, help="events/s published in the outage part")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # connection errors during the outage, by design

    var = _ROOT / "var"
    var.mkdir(exist_ok=True)
    pg = EmbeddedPostgres(var / "bench-pg", free_port(), fast_unsafe=True)
    kafka = EmbeddedKafka(free_port(), var / "bench-kafka.log")
    try:
        pg.start()
        kafka.start()
        url = pg.url("hall_bench_events")
        asyncio.run(ensure_database(url))
        upgrade("queue", url)
        if args.part in ("throughput", "all"):
            asyncio.run(part_throughput(url, kafka.bootstrap, args.events))
        if args.part in ("outage", "all"):
            asyncio.run(part_outage(url, kafka, args.outage_seconds, args.rate))
    finally:
        kafka.stop(kill=True)
        pg.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
