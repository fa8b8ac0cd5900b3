"""The consumer applying events in batches (several per transaction), against a real broker (Tansu) and a real
PostgreSQL: a backlog gives every event once and in per-key order, a poison event in a batch holds only its
key, a database failure in the middle of a batch applies nothing twice, a repeat inside a batch is applied
once, metrics counted at commit run once per event, and a rebalance in the middle of a backlog loses and
repeats nothing."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import registry

from shared import clock
from shared.db import make_engine, make_sessionmaker
from shared.events.consumer import EventConsumer, Outcome, PoisonInChunk
from shared.events.envelope import Envelope, EventData, event_model
from shared.events.kafka import ensure_topics, new_admin
from shared.events.topics import Topic
from shared.metrics import at_commit
from shared.tables import platform_state

pytestmark = pytest.mark.kafka

FAST_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500}
STEP = "test.batches.step"


@event_model
class BatchStep(EventData):
    """A test event: step `n` of subject `subject`; applying it appends n to the subject's list."""

    type: Literal["test.batches.step"] = "test.batches.step"
    n: int


def step(subject: str, n: int) -> Envelope:
    return Envelope.wrap("test", BatchStep(n=n), subject=subject, center_id=None)


class Applied:
    """What the handler saw committed: (event id, transaction id) per event, from shared.metrics.at_commit,
    so an event appears here once per commit that included it."""

    def __init__(self) -> None:
        self.commits: list[tuple[uuid.UUID, int]] = []
        self.runs: Counter[uuid.UUID] = Counter()  # handler runs, committed or rolled back

    async def record(self, session: AsyncSession, envelope: Envelope) -> None:
        payload = envelope.payload()
        assert isinstance(payload, BatchStep)
        self.runs[envelope.id] += 1
        await session.execute(text("""
            INSERT INTO platform_state (key, value, updated_at)
            VALUES (:key, jsonb_build_array(CAST(:n AS integer)), :at)
            ON CONFLICT (key) DO UPDATE
            SET value = platform_state.value || excluded.value, updated_at = excluded.updated_at
        """), {"key": f"steps:{envelope.subject}", "n": payload.n, "at": clock.now()})
        txid = int(await session.scalar(text("SELECT pg_current_xact_id()::text")) or 0)
        at_commit(session, lambda: self.commits.append((envelope.id, txid)))

    def per_transaction(self) -> list[int]:
        return list(Counter(txid for _, txid in self.commits).values())


class Broker:
    """Creates topics and produces envelopes as the relay does (keyed by subject)."""

    def __init__(self, bootstrap: str) -> None:
        self.admin = new_admin(bootstrap)
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)

    async def start(self) -> Broker:
        await self.admin.start()
        await self.producer.start()
        return self

    async def close(self) -> None:
        await self.producer.stop()
        await self.admin.close()

    async def create(self, partitions: int = 3) -> str:
        name = f"test.batches.{uuid.uuid4().hex[:10]}"
        await ensure_topics(self.admin, [Topic(name, "test", partitions, "subject")])
        return name

    async def send_all(self, topic: str, messages: list[Envelope | tuple[str, bytes]]) -> None:
        """Envelopes (or raw (key, value) messages), in this order, acknowledged before returning."""
        sent = []
        for message in messages:
            key, value = ((message.subject, message.model_dump_json().encode())
                          if isinstance(message, Envelope) else message)
            sent.append(await self.producer.send(topic, value, key=key.encode()))
        await asyncio.gather(*sent)


@pytest.fixture
async def broker(kafka) -> AsyncIterator[Broker]:
    b = await Broker(kafka.bootstrap).start()
    yield b
    await b.close()


@pytest.fixture
async def db(service_databases):
    database = service_databases("notify")
    await database.reset()
    return database


@pytest.fixture
async def sessionmaker(db):
    engine = make_engine(db.url, application_name="test-consumer-batches")
    yield make_sessionmaker(engine)
    await engine.dispose()


def consumer_for(name: str, kafka, topic: str, handlers: dict, sessionmaker, **options: Any) -> EventConsumer:
    options.setdefault("kafka_options", FAST_GROUP)
    options.setdefault("retry_max", 0.5)
    return EventConsumer(f"{name}-{uuid.uuid4().hex[:6]}", kafka.bootstrap, [topic], handlers, sessionmaker,
                         service="test", **options)


@asynccontextmanager
async def running(consumer: EventConsumer) -> AsyncIterator[EventConsumer]:
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        yield consumer
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 30, what: str = "condition") -> None:
    deadline = clock.monotonic() + within
    while not await check():
        if clock.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def metric(name: str, consumer: EventConsumer) -> float:
    return REGISTRY.get_sample_value(name, {"consumer": consumer.id}) or 0.0


def processed(consumer: EventConsumer, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return metric("hall_consumer_processed_total", consumer) >= count
    return check


async def steps(db) -> dict[str, list[int]]:
    rows = await db.fetch("SELECT key, value FROM platform_state WHERE key LIKE 'steps:%'")
    return {row["key"].removeprefix("steps:"): json.loads(row["value"]) for row in rows}


async def dead_rows(db) -> list[tuple[str, uuid.UUID, str]]:
    rows = await db.fetch("SELECT key, event_id, kind FROM dead_letters WHERE resolved_at IS NULL ORDER BY id")
    return [(r["key"], r["event_id"], r["kind"]) for r in rows]


async def inbox_ids(db, consumer: EventConsumer) -> list[uuid.UUID]:
    return [r["event_id"] for r in await db.fetch("SELECT event_id FROM inbox WHERE consumer = $1", consumer.id)]


# --- a backlog -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("apply_batch", [50, 1])
async def test_a_backlog_is_applied_in_batches_each_event_once_in_key_order(
        kafka, broker, db, sessionmaker, apply_batch):
    topic = await broker.create(partitions=3)
    applied = Applied()
    consumer = consumer_for("backlog", kafka, topic, {STEP: applied.record}, sessionmaker,
                            apply_batch=apply_batch)
    keys = [f"k{i}" for i in range(12)]
    backlog = [step(key, n) for n in range(1, 41) for key in keys]  # 480 events, 40 per key
    repeats = backlog[100:110]  # re-sent later, as a relay does after a restart
    await broker.send_all(topic, [*backlog[:200], *repeats, *backlog[200:]])

    async with running(consumer):
        await eventually(processed(consumer, len(backlog) + len(repeats)), what="the backlog handled")

    assert await steps(db) == {key: list(range(1, 41)) for key in keys}
    assert sorted(await inbox_ids(db, consumer)) == sorted(e.id for e in backlog)
    committed = Counter(event_id for event_id, _ in applied.commits)
    assert committed == Counter({e.id: 1 for e in backlog})  # at_commit ran once per committed event
    sizes = applied.per_transaction()
    assert max(sizes) <= apply_batch
    if apply_batch == 1:
        assert len(sizes) == len(backlog)  # one transaction per event, as before batches
    else:
        assert len(sizes) < len(backlog) / 5, sizes  # several events per transaction
    assert await dead_rows(db) == []


# --- poison and malformed records in a batch ----------------------------------------------------------------------

async def test_a_poison_event_in_a_batch_is_dead_lettered_and_holds_only_its_key(kafka, broker, db, sessionmaker):
    applied = Applied()
    poison: set[tuple[str, int]] = {("a", 3)}

    async def fragile(session: AsyncSession, envelope: Envelope) -> None:
        if (envelope.subject, envelope.data["n"]) in poison:
            raise ValueError("step cannot be applied")
        await applied.record(session, envelope)

    topic = await broker.create(partitions=1)  # every event in one partition, so in the same chunks
    consumer = consumer_for("poison", kafka, topic, {STEP: fragile}, sessionmaker, apply_batch=100)
    a = {n: step("a", n) for n in range(1, 7)}
    b = {n: step("b", n) for n in range(1, 5)}
    order = [a[1], b[1], a[2], b[2], a[3], b[3], a[4], a[5], b[4], a[6]]
    await broker.send_all(topic, order)

    async with running(consumer):
        await eventually(processed(consumer, len(order)), what="all handled")

    assert await steps(db) == {"a": [1, 2], "b": [1, 2, 3, 4]}
    assert await dead_rows(db) == [("a", a[3].id, "poison"), ("a", a[4].id, "parked"), ("a", a[5].id, "parked"),
                                   ("a", a[6].id, "parked")]
    assert sorted(await inbox_ids(db, consumer)) == sorted(e.id for e in (a[1], a[2], *b.values()))
    assert Counter(event_id for event_id, _ in applied.commits) == Counter(
        {e.id: 1 for e in (a[1], a[2], *b.values())})  # at_commit once each, though a1..b2 ran twice
    assert max(applied.per_transaction()) > 1  # the events around the poison still went in batches
    assert metric("hall_dead_letters", consumer) == 4
    assert metric("hall_parked_keys", consumer) == 1


async def test_a_message_that_is_not_an_envelope_in_a_batch_is_dead_lettered_alone(
        kafka, broker, db, sessionmaker):
    applied = Applied()
    topic = await broker.create(partitions=1)
    consumer = consumer_for("malformed", kafka, topic, {STEP: applied.record}, sessionmaker, apply_batch=100)
    before, after = [step("k", 1), step("k", 2)], [step("k", 3), step("j", 1)]
    await broker.send_all(topic, [*before, ("junk", b"{not json"), *after])

    async with running(consumer):
        await eventually(processed(consumer, 5), what="all handled")

    assert await steps(db) == {"k": [1, 2, 3], "j": [1]}
    rows = await dead_rows(db)
    assert [(key, kind) for key, _, kind in rows] == [("junk", "poison")]


# --- transient failures ------------------------------------------------------------------------------------

async def test_a_database_failure_in_the_middle_of_a_batch_applies_nothing_twice(kafka, broker, db, sessionmaker):
    """The handler of the 5th event kills its own database connection (once), inside the chunk's transaction:
    the whole chunk rolls back and is retried; a non-idempotent handler shows any event applied twice."""
    applied = Applied()
    cut = {"done": False}

    async def cut_once(session: AsyncSession, envelope: Envelope) -> None:
        await applied.record(session, envelope)
        if envelope.data["n"] == 5 and not cut["done"]:
            cut["done"] = True
            await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))

    topic = await broker.create(partitions=1)
    consumer = consumer_for("outage", kafka, topic, {STEP: cut_once}, sessionmaker, apply_batch=100,
                            retry_first=0.05)
    backlog = [step("k", n) for n in range(1, 21)]
    await broker.send_all(topic, backlog)

    async with running(consumer):
        await eventually(processed(consumer, len(backlog)), what="the backlog applied after the failure")

    assert cut["done"]
    assert await steps(db) == {"k": list(range(1, 21))}
    assert Counter(event_id for event_id, _ in applied.commits) == Counter({e.id: 1 for e in backlog})
    assert sum(applied.runs.values()) > len(backlog)  # the chunk that rolled back ran again
    assert metric("hall_consumer_failed_total", consumer) >= 1
    assert await dead_rows(db) == []


# --- repeats inside one batch --------------------------------------------------------------------------------

async def test_an_event_repeated_inside_one_chunk_is_applied_once(kafka, db, sessionmaker):
    applied = Applied()
    consumer = consumer_for("repeat", kafka, "unused", {STEP: applied.record}, sessionmaker)
    first, second, third = step("k", 1), step("k", 2), step("k", 3)
    unhandled = Envelope(type="test.batches.unhandled", occurred_at=clock.now(), producer="test", subject="k",
                         data={})

    outcomes = await consumer.apply_chunk([("k", e) for e in (first, second, first, unhandled, third, second)])

    assert outcomes == [Outcome.APPLIED, Outcome.APPLIED, Outcome.REPEAT, Outcome.IGNORED, Outcome.APPLIED,
                        Outcome.REPEAT]
    assert await steps(db) == {"k": [1, 2, 3]}
    assert len(applied.per_transaction()) == 1  # all in one transaction
    assert await consumer.apply_chunk([("k", first), ("k", third)]) == [Outcome.REPEAT, Outcome.REPEAT]
    assert len(await inbox_ids(db, consumer)) == 4


class StateRow:
    """platform_state through the ORM, as a handler that loads objects would read it."""

    key: str
    value: list[int]


registry().map_imperatively(StateRow, platform_state)


async def test_a_handler_never_sees_objects_a_previous_handler_of_the_chunk_loaded(kafka, db, sessionmaker):
    """Each handler loads the row by the ORM and writes it by a core statement: an identity map kept
    between events would hand the third handler the row as the second loaded it. The loaded objects are
    kept alive here, as objects in a reference cycle (a relationship and its back-reference) outlive their
    handler until the garbage collector runs: the identity map holds only weak references."""
    alive: list[StateRow] = []

    async def append_by_orm(session: AsyncSession, envelope: Envelope) -> None:
        key = f"steps:{envelope.subject}"
        row = await session.get(StateRow, key)
        if row is not None:
            alive.append(row)
        value = [*(row.value if row is not None else []), envelope.data["n"]]
        stmt = pg_insert(platform_state).values(key=key, value=value, updated_at=clock.now())
        await session.execute(stmt.on_conflict_do_update(index_elements=[platform_state.c.key],
                                                         set_={"value": stmt.excluded.value}))

    consumer = consumer_for("orm", kafka, "unused", {STEP: append_by_orm}, sessionmaker)

    await consumer.apply_chunk([("k", step("k", n)) for n in (1, 2, 3, 4)])

    assert await steps(db) == {"k": [1, 2, 3, 4]}


async def test_a_failing_chunk_leaves_nothing_and_names_the_failing_event(kafka, db, sessionmaker):
    applied = Applied()

    async def fails_on_two(session: AsyncSession, envelope: Envelope) -> None:
        await applied.record(session, envelope)
        if envelope.data["n"] == 2:
            raise RuntimeError("broken")

    consumer = consumer_for("chunk-fails", kafka, "unused", {STEP: fails_on_two}, sessionmaker)
    events = [("k", step("k", n)) for n in (1, 2, 3)]

    with pytest.raises(PoisonInChunk) as failed:
        await consumer.apply_chunk(events)

    assert failed.value.index == 1
    assert await steps(db) == {} and await inbox_ids(db, consumer) == [] and applied.commits == []


async def test_events_parked_inside_a_chunk_while_their_key_is_held(kafka, db, sessionmaker):
    applied = Applied()

    async def fails_on_one(session: AsyncSession, envelope: Envelope) -> None:
        if (envelope.subject, envelope.data["n"]) == ("k", 1):
            raise RuntimeError("broken")
        await applied.record(session, envelope)

    consumer = consumer_for("held", kafka, "unused", {STEP: fails_on_one}, sessionmaker)
    assert await consumer.apply("k", step("k", 1)) is Outcome.DEAD_LETTERED
    k2, k3, j1 = step("k", 2), step("k", 3), step("j", 1)

    outcomes = await consumer.apply_chunk([("k", k2), ("j", j1), ("k", k3), ("k", k2)])

    assert outcomes == [Outcome.PARKED, Outcome.APPLIED, Outcome.PARKED, Outcome.REPEAT]
    assert await steps(db) == {"j": [1]}
    assert [(key, kind) for key, _, kind in await dead_rows(db)] == [("k", "poison"), ("k", "parked"),
                                                                      ("k", "parked")]
    assert await inbox_ids(db, consumer) == [j1.id]  # parked events stay unclaimed for the replay


# --- a rebalance in the middle of a backlog ------------------------------------------------------------------

async def test_a_rebalance_in_the_middle_of_a_backlog_loses_and_repeats_nothing(kafka, broker, db, sessionmaker):
    """A second member joins while the first is working through a backlog in batches: partitions move
    between them mid-stream; every event is applied once, in key order."""
    applied = Applied()
    by_member: Counter[str] = Counter()

    def slow(member: str) -> Callable[[AsyncSession, Envelope], Awaitable[None]]:
        async def handler(session: AsyncSession, envelope: Envelope) -> None:
            await applied.record(session, envelope)
            at_commit(session, lambda: by_member.update([member]))
            await asyncio.sleep(0.004)  # so the backlog takes several seconds: the join lands in the middle
        return handler

    topic = await broker.create(partitions=4)
    name = f"rebalance-{uuid.uuid4().hex[:6]}"
    options: dict[str, Any] = {"kafka_options": FAST_GROUP, "retry_max": 0.5, "apply_batch": 40}
    first = EventConsumer(name, kafka.bootstrap, [topic], {STEP: slow("first")}, sessionmaker, service="test",
                          **options)
    second = EventConsumer(name, kafka.bootstrap, [topic], {STEP: slow("second")}, sessionmaker, service="test",
                           **options)
    keys = [f"k{i}" for i in range(16)]
    backlog = [step(key, n) for n in range(1, 101) for key in keys]  # 1,600 events
    await broker.send_all(topic, backlog)

    async def all_applied() -> bool:
        return len(await inbox_ids(db, first)) == len(backlog)

    async with running(first):
        await eventually(lambda: _some_applied(applied, 100), what="the first member under way")
        async with running(second):
            await eventually(all_applied, within=90, what="the backlog applied by the two members")

    assert by_member["first"] > 0 and by_member["second"] > 0, by_member  # partitions moved mid-backlog
    assert await steps(db) == {key: list(range(1, 101)) for key in keys}
    assert Counter(event_id for event_id, _ in applied.commits) == Counter({e.id: 1 for e in backlog})
    assert await dead_rows(db) == []


async def _some_applied(applied: Applied, count: int) -> bool:
    return len(applied.commits) >= count
