"""The idempotent consumer against a real broker (Tansu) and a real PostgreSQL: repeats change state once
(and would not without the inbox), a database outage dead-letters nothing, a poison event holds only its
own key until replayed, a broker restarted empty is re-read without applying anything twice or out of
order, and topics created after the consumer started are picked up (and not auto-created by it)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, Literal

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from prometheus_client import REGISTRY
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.db import asyncpg_dsn, make_engine, make_sessionmaker
from shared.events.consumer import EventConsumer, Outcome, is_transient
from shared.events.deadletters import AlreadyResolved, discard, replay, replay_key
from shared.events.envelope import Envelope, EventData, event_model
from shared.events.kafka import ensure_topics, new_admin
from shared.events.topics import Topic

pytestmark = pytest.mark.kafka

FAST_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500}  # Tansu holds a join ~half of it
STEP = "test.consumer.step"


@event_model
class Step(EventData):
    """A test event: step `n` of subject `subject`; applying it appends n to the subject's list."""

    type: Literal["test.consumer.step"] = "test.consumer.step"
    n: int


def step(subject: str, n: int, sequence: int) -> Envelope:
    return Envelope.wrap("test", Step(n=n), subject=subject, center_id=None).model_copy(
        update={"sequence": sequence})


async def record_step(session: AsyncSession, envelope: Envelope) -> None:
    """The state under test: platform_state["steps:<subject>"] is the list of steps applied, in order."""
    payload = envelope.payload()
    assert isinstance(payload, Step)
    await session.execute(text("""
        INSERT INTO platform_state (key, value, updated_at)
        VALUES (:key, jsonb_build_array(CAST(:n AS integer)), :at)
        ON CONFLICT (key) DO UPDATE
        SET value = platform_state.value || excluded.value, updated_at = excluded.updated_at
    """), {"key": f"steps:{envelope.subject}", "n": payload.n, "at": clock.now()})


class Broker:
    """The test's stand-in for the relay: creates topics and produces envelopes as the relay does."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.admin = new_admin(bootstrap)
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")

    async def start(self) -> Broker:
        await self.admin.start()
        await self.producer.start()
        return self

    async def close(self) -> None:
        await self.producer.stop()
        await self.admin.close()

    async def create(self, name: str, partitions: int = 3) -> str:
        await ensure_topics(self.admin, [Topic(name, "test", partitions, "subject")])
        return name

    async def send(self, topic: str, envelope: Envelope, key: str | None = None) -> None:
        await self.producer.send_and_wait(
            topic, envelope.model_dump_json().encode(), key=(key or envelope.subject).encode(),
            headers=[("type", envelope.type.encode()), ("producer", envelope.producer.encode())])


def unique_topic() -> str:
    return f"test.consumer.{uuid.uuid4().hex[:10]}"


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
    engine = make_engine(db.url, application_name="test-consumer")
    yield make_sessionmaker(engine)
    await engine.dispose()


def consumer_for(name: str, kafka, topics: list[str], handlers: dict, sessionmaker,
                 **options: Any) -> EventConsumer:
    options.setdefault("kafka_options", FAST_GROUP)
    options.setdefault("retry_max", 0.5)
    return EventConsumer(f"{name}-{uuid.uuid4().hex[:6]}", kafka.bootstrap, topics, handlers, sessionmaker,
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


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 20,
                     what: str = "condition") -> None:
    deadline = clock.monotonic() + within
    while not await check():
        if clock.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def steps(db) -> dict[str, list[int]]:
    rows = await db.fetch("SELECT key, value FROM platform_state WHERE key LIKE 'steps:%'")
    return {row["key"].removeprefix("steps:"): json.loads(row["value"]) for row in rows}


async def dead_rows(db) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT id, consumer, key, event_id, kind, error, resolved_at FROM dead_letters ORDER BY id")


def metric(name: str, consumer: EventConsumer) -> float:
    return REGISTRY.get_sample_value(name, {"consumer": consumer.id}) or 0.0


# --- repeats -------------------------------------------------------------------------------------------

async def deliver_twice(consumer: EventConsumer, broker: Broker, db) -> dict[str, list[int]]:
    """Step 1 delivered twice (one envelope id, two messages), an unhandled type, then step 2."""
    topic = consumer.topics[0]
    first, second = step("k1", 1, 1), step("k1", 2, 3)
    unhandled = Envelope(type="test.consumer.unhandled", occurred_at=clock.now(), producer="test",
                         subject="k1", sequence=2, data={})
    for envelope in (first, first, unhandled, second):
        await broker.send(topic, envelope)
    async with running(consumer):
        # one key, one partition: once step 2 is in, every message before it has been handled
        await eventually(lambda: _last_step_is(db, "k1", 2), what="step 2 applied")
        await eventually(lambda: _metric_at_least("hall_consumer_processed_total", consumer, 4),
                         what="all 4 handled")
    return await steps(db)


async def _last_step_is(db, subject: str, n: int) -> bool:
    return (await steps(db)).get(subject, [None])[-1] == n


async def _metric_at_least(name: str, consumer: EventConsumer, value: float) -> bool:
    return metric(name, consumer) >= value


async def test_the_same_event_delivered_twice_changes_state_once(kafka, broker, db, sessionmaker):
    topic = await broker.create(unique_topic())
    consumer = consumer_for("repeat", kafka, [topic], {STEP: record_step}, sessionmaker)

    assert await deliver_twice(consumer, broker, db) == {"k1": [1, 2]}
    inbox = await db.fetch("SELECT event_id FROM inbox WHERE consumer = $1", consumer.id)
    assert len(inbox) == 3  # step 1, the unhandled type (recorded, skipped), step 2
    assert metric("hall_consumer_processed_total", consumer) == 4
    assert metric("hall_consumer_lag", consumer) == 0


async def test_without_the_inbox_the_repeat_changes_state_twice(kafka, broker, db, sessionmaker):
    """The same scenario with the inbox switched off: shows the test above fails when the inbox is gone."""
    topic = await broker.create(unique_topic())
    consumer = consumer_for("no-inbox", kafka, [topic], {STEP: record_step}, sessionmaker, use_inbox=False)

    assert await deliver_twice(consumer, broker, db) == {"k1": [1, 1, 2]}


# --- transient failures ------------------------------------------------------------------------------------

async def _allow_connections(db, allowed: bool) -> None:
    name = db.url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(asyncpg_dsn(db.url, "postgres"))
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if allowed else "false"}')
        if not allowed:
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = $1 AND pid <> pg_backend_pid()", name)
    finally:
        await conn.close()


async def test_a_database_outage_dead_letters_nothing_and_applies_each_event_once(
        kafka, broker, db, sessionmaker):
    topic = await broker.create(unique_topic())
    consumer = consumer_for("outage", kafka, [topic], {STEP: record_step}, sessionmaker)
    async with running(consumer):
        await broker.send(topic, step("k", 1, 1))
        await eventually(lambda: _last_step_is(db, "k", 1), what="step 1 before the outage")
        failed_before = metric("hall_consumer_failed_total", consumer)

        await _allow_connections(db, False)  # the database goes away, its connections are cut
        try:
            await broker.send(topic, step("k", 2, 2))
            await broker.send(topic, step("k", 3, 3))
            await eventually(
                lambda: _metric_at_least("hall_consumer_failed_total", consumer, failed_before + 3),
                what="the consumer meeting the outage")
        finally:
            await _allow_connections(db, True)

        await eventually(lambda: _last_step_is(db, "k", 3), what="steps 2 and 3 after the outage")
    assert await steps(db) == {"k": [1, 2, 3]}
    assert await dead_rows(db) == []


async def test_transient_handler_errors_are_retried_not_dead_lettered(kafka, broker, db, sessionmaker):
    failures: list[Exception] = [
        ConnectionRefusedError(111, "Connect call failed"),
        sa_exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly")),
        TimeoutError(),
    ]

    async def flaky(session: AsyncSession, envelope: Envelope) -> None:
        if failures:
            raise failures.pop(0)
        await record_step(session, envelope)

    topic = await broker.create(unique_topic())
    consumer = consumer_for("flaky", kafka, [topic], {STEP: flaky}, sessionmaker, retry_first=0.05)
    async with running(consumer):
        await broker.send(topic, step("k", 1, 1))
        await eventually(lambda: _last_step_is(db, "k", 1), what="step 1")
    assert await steps(db) == {"k": [1]}
    assert await dead_rows(db) == []
    assert metric("hall_consumer_failed_total", consumer) >= 3


def test_what_counts_as_transient():
    invalidated = sa_exc.DBAPIError("SELECT 1", {}, Exception("another operation is in progress"),
                                    connection_invalidated=True)
    not_accepting = sa_exc.DBAPIError("SELECT 1", {}, Exception())
    not_accepting.orig.__cause__ = asyncpg.exceptions.ObjectNotInPrerequisiteStateError(
        'database "x" is not currently accepting connections')
    for exc in (ConnectionRefusedError(), OSError(), TimeoutError(), invalidated, not_accepting,
                sa_exc.OperationalError("x", {}, Exception()), sa_exc.InterfaceError("x", {}, Exception()),
                asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
                asyncpg.exceptions.CannotConnectNowError("the database system is starting up")):
        assert is_transient(exc), exc
    caught_then_failed = ValueError("bad data")
    caught_then_failed.__context__ = TimeoutError()  # implicit context: still a poison
    for exc in (ValueError(), KeyError("x"), caught_then_failed,
                sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key"))):
        assert not is_transient(exc), exc


# --- poison events ---------------------------------------------------------------------------------------

async def test_a_poison_event_parks_its_key_other_keys_flow_and_replay_applies_them_once_in_order(
        kafka, broker, db, sessionmaker):
    broken = {("a", 2)}

    async def fragile(session: AsyncSession, envelope: Envelope) -> None:
        if (envelope.subject, envelope.data["n"]) in broken:
            raise ValueError("step cannot be applied")
        await record_step(session, envelope)

    topic = await broker.create(unique_topic())
    consumer = consumer_for("poison", kafka, [topic], {STEP: fragile}, sessionmaker)
    a = {n: step("a", n, n) for n in range(1, 7)}
    b = {n: step("b", n, 10 + n) for n in range(1, 3)}
    async with running(consumer):
        for envelope in (a[1], a[2], b[1], a[3], a[4], b[2]):
            await broker.send(topic, envelope)
        await eventually(lambda: _count_rows(db, "dead_letters", 3),
                         what="a2 dead-lettered, a3 and a4 parked")
        await eventually(lambda: _last_step_is(db, "b", 2), what="key b flowing")

        assert await steps(db) == {"a": [1], "b": [1, 2]}
        rows = await dead_rows(db)
        assert [(r["key"], r["event_id"], r["kind"]) for r in rows] == [
            ("a", a[2].id, "poison"), ("a", a[3].id, "parked"), ("a", a[4].id, "parked")]
        assert "ValueError: step cannot be applied" in rows[0]["error"]
        assert metric("hall_dead_letters", consumer) == 3
        assert metric("hall_parked_keys", consumer) == 1

        # a re-send of a parked event adds nothing; a new event of the key is parked behind the others
        await broker.send(topic, a[3])
        await broker.send(topic, a[5])
        await eventually(lambda: _count_rows(db, "dead_letters", 4), what="a5 parked")
        await asyncio.sleep(0.3)
        assert [r["event_id"] for r in await dead_rows(db)][-1] == a[5].id
        assert len(await dead_rows(db)) == 4

        broken.clear()  # the fix is deployed
        # replaying by a parked row replays the key from its poison
        result = await replay(sessionmaker, {consumer.id: consumer.handlers}, rows[1]["id"])
        assert result.resolved
        assert result.applied == [r["id"] for r in await dead_rows(db)]  # all four, poison first
        assert (await steps(db))["a"] == [1, 2, 3, 4, 5]
        assert all(r["resolved_at"] is not None for r in await dead_rows(db))
        assert metric("hall_dead_letters", consumer) == 0

        with pytest.raises(AlreadyResolved):
            await replay(sessionmaker, {consumer.id: consumer.handlers}, rows[0]["id"])
        again = await replay_key(sessionmaker, {consumer.id: consumer.handlers}, consumer.id, "a")
        assert again.applied == [] and again.resolved

        # the key flows again, and re-sent replayed events stay applied once
        await broker.send(topic, a[2])
        await broker.send(topic, a[6])
        await eventually(lambda: _last_step_is(db, "a", 6), what="a6 applied after the replay")
    assert await steps(db) == {"a": [1, 2, 3, 4, 5, 6], "b": [1, 2]}


async def _count_rows(db, table: str, count: int) -> bool:
    return len(await db.fetch(f"SELECT 1 FROM {table}")) == count


async def test_a_replay_whose_poison_still_fails_stops_and_keeps_the_key_held(kafka, db, sessionmaker):
    async def always_fails(session: AsyncSession, envelope: Envelope) -> None:
        if envelope.data["n"] == 1:
            raise RuntimeError("still broken")
        await record_step(session, envelope)

    consumer = consumer_for("still", kafka, ["unused"], {STEP: always_fails}, sessionmaker)
    assert await consumer.apply("k", step("k", 1, 1)) is Outcome.DEAD_LETTERED
    assert await consumer.apply("k", step("k", 2, 2)) is Outcome.PARKED
    poison_id = (await dead_rows(db))[0]["id"]

    result = await replay(sessionmaker, {consumer.id: consumer.handlers}, poison_id)
    assert not result.resolved and result.failed_id == poison_id and result.applied == []
    assert "RuntimeError: still broken" in (result.error or "")
    assert [(r["kind"], r["resolved_at"]) for r in await dead_rows(db)] == [
        ("poison", None), ("parked", None)]
    assert await steps(db) == {}
    assert await consumer.apply("k", step("k", 3, 3)) is Outcome.PARKED  # the key is still held


async def test_a_message_that_is_not_an_envelope_is_dead_lettered_and_can_be_discarded(
        kafka, db, sessionmaker):
    consumer = consumer_for("malformed", kafka, ["t"], {STEP: record_step}, sessionmaker)

    def record(value: bytes, offset: int) -> ConsumerRecord:
        return ConsumerRecord("t", 0, offset, 0, 0, b"k", value, None, 1, len(value), ())

    assert await consumer.handle(record(b"{not json", 0)) is Outcome.DEAD_LETTERED
    assert await consumer.handle(record(b"{not json", 1)) is Outcome.ALREADY_DEAD_LETTERED  # a re-send
    assert await consumer.handle(record(step("k", 1, 1).model_dump_json().encode(), 2)) is Outcome.PARKED
    poison = (await dead_rows(db))[0]

    await discard(sessionmaker, poison["id"], by="test-admin")
    assert await consumer.handle(record(b"{not json", 3)) is Outcome.REPEAT  # discarded for good
    result = await replay_key(sessionmaker, {consumer.id: consumer.handlers}, consumer.id, "k")
    assert result.resolved and len(result.applied) == 1
    assert await steps(db) == {"k": [1]}


# --- the broker ---------------------------------------------------------------------------------------

async def test_a_broker_restarted_empty_is_reread_and_each_event_applied_once_in_key_order(
        kafka, db, sessionmaker):
    broker = await Broker(kafka.bootstrap).start()
    topic = await broker.create(unique_topic())
    consumer = consumer_for("restart", kafka, [topic], {STEP: record_step}, sessionmaker)
    before = [step("k1", 1, 1), step("k2", 1, 2), step("k1", 2, 3), step("k3", 1, 4), step("k1", 3, 5)]
    after = [step("k2", 2, 6), step("k1", 4, 7), step("k4", 1, 8), step("k3", 2, 9)]
    try:
        async with running(consumer):
            for envelope in before:
                await broker.send(topic, envelope)
            await eventually(lambda: _steps_are(db, {"k1": [1, 2, 3], "k2": [1], "k3": [1]}), what="before")
            old_cluster = consumer.cluster_id

            await broker.close()
            await asyncio.to_thread(kafka.restart)  # killed; back empty, with a new cluster id
            broker = await Broker(kafka.bootstrap).start()
            await broker.create(topic)
            for envelope in before + after:  # the relay re-sends everything it keeps, then the new events
                await broker.send(topic, envelope)

            expected = {"k1": [1, 2, 3, 4], "k2": [1, 2], "k3": [1, 2], "k4": [1]}
            await eventually(lambda: _steps_are(db, expected), within=30, what="after the restart")
            await asyncio.sleep(1.0)  # nothing late arrives twice
            assert consumer.cluster_id == kafka.cluster_id != old_cluster
            assert consumer.broker_restarts >= 1
    finally:
        await broker.close()
    assert await steps(db) == expected
    assert len(await db.fetch("SELECT 1 FROM inbox WHERE consumer = $1", consumer.id)) == len(before + after)


async def test_after_a_restart_new_events_at_offsets_already_passed_are_not_applied_early(
        kafka, db, sessionmaker):
    """The new log is shorter than the old (the relay's older rows were pruned): its events sit at offsets
    the consumer had passed. Fetching there before noticing the restart would apply 7 before 4, 5, 6."""
    broker = await Broker(kafka.bootstrap).start()
    topic = await broker.create(unique_topic(), partitions=1)
    consumer = consumer_for("short-log", kafka, [topic], {STEP: record_step}, sessionmaker,
                            cluster_check_interval=5)  # the periodic check alone would notice too late
    try:
        async with running(consumer):
            for n in (1, 2, 3):
                await broker.send(topic, step("k1", n, n))
            await eventually(lambda: _steps_are(db, {"k1": [1, 2, 3]}), what="before")

            await broker.close()
            await asyncio.to_thread(kafka.restart)
            broker = await Broker(kafka.bootstrap).start()
            await broker.create(topic, partitions=1)
            for n in (4, 5, 6, 7, 8):  # offsets 0-4 of the new log; the consumer stood at offset 3
                await broker.send(topic, step("k1", n, n))
            await eventually(lambda: _last_step_is(db, "k1", 8), within=30, what="after the restart")
            await asyncio.sleep(0.5)
    finally:
        await broker.close()
    assert await steps(db) == {"k1": [1, 2, 3, 4, 5, 6, 7, 8]}


async def _steps_are(db, expected: dict[str, list[int]]) -> bool:
    return await steps(db) == expected


async def test_topics_created_after_the_consumer_started_are_consumed_and_not_auto_created(
        kafka, broker, db, sessionmaker):
    topic = unique_topic()
    consumer = consumer_for("late-topic", kafka, [topic], {STEP: record_step}, sessionmaker)
    async with running(consumer):
        await asyncio.sleep(2.5)  # more than one metadata refresh while the topic is missing
        assert topic not in await broker.admin.list_topics()  # subscribing by pattern never auto-creates it
        await broker.create(topic, partitions=3)
        await broker.send(topic, step("k", 1, 1))
        await eventually(lambda: _last_step_is(db, "k", 1), what="the event on the late topic")
    described = await broker.admin.describe_topics([topic])
    assert len(described[0]["partitions"]) == 3


# --- inbox retention --------------------------------------------------------------------------------------

async def test_prune_inbox_deletes_only_this_consumers_rows_older_than_the_retention(kafka, db, sessionmaker):
    consumer = consumer_for("prune", kafka, ["t"], {}, sessionmaker)
    now = clock.now()
    old, recent, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with sessionmaker() as session, session.begin():
        await session.execute(text("INSERT INTO inbox (consumer, event_id, applied_at) VALUES "
                                   "(:c, :old, :long_ago), (:c, :recent, :now), "
                                   "('someone.else', :other, :long_ago)"),
                              {"c": consumer.id, "old": old, "recent": recent, "other": other, "now": now,
                               "long_ago": now - timedelta(days=9)})
    async with sessionmaker() as session, session.begin():
        assert await consumer.prune_inbox(session, now - consumer.inbox_retention) == 1
    rows = await db.fetch("SELECT consumer, event_id FROM inbox ORDER BY consumer")
    assert {(r["consumer"], r["event_id"]) for r in rows} == {(consumer.id, recent), ("someone.else", other)}
