"""Events are never lost: the outbox row lives and dies with its transaction, and the relay puts every
committed row on Kafka (real PostgreSQL, real embedded broker), in sequence order, also after the broker
restarted empty; pruning keeps the latest reference row; the queue publishes center.upserted."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Literal

import asyncpg
import pytest
from prometheus_client import REGISTRY

from shared.events.catalog import CenterUpserted
from shared.events.envelope import Envelope, EventData
from shared.events.outbox import publish
from shared.events.relay import Relay, prune_outbox
from shared.events.topics import Topic
from tests.events.relay_proc import fast_relay, make_topic, read_topic

pytestmark = pytest.mark.kafka


class Noted(EventData):
    """A plain (non-reference) test event; not registered, so no consumer ever sees its type."""

    type: Literal["test.noted"] = "test.noted"
    n: int


@pytest.fixture
def topic() -> Topic:
    return make_topic(f"test.relay.{uuid.uuid4().hex[:12]}")


@asynccontextmanager
async def running(*relays: Relay) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop)) for relay in relays]
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 15)


async def eventually(check, within: float = 10.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def all_sent(db):
    async def check() -> bool:
        rows = await db.fetch("SELECT count(*) FILTER (WHERE sent_at IS NULL) AS unsent FROM outbox")
        return rows[0]["unsent"] == 0
    return check


async def publish_one(sessions, payload: EventData, center: str, subject: str | None = None) -> Envelope:
    async with sessions() as session, session.begin():
        return await publish(session, "queue", payload, subject=subject or center, center_id=center)


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": "queue"}) or 0.0


async def test_rollback_publishes_nothing_and_commit_publishes_once(queue_db, sessions, kafka, topic):
    async with sessions() as session:
        rolled_back = await publish(session, "queue", CenterUpserted(id="R1", name="撤销"), subject="R1",
                                    center_id="R1")
        await session.rollback()
    committed = await publish_one(sessions, CenterUpserted(id="C1", name="玄武"), "C1")

    async with running(fast_relay(queue_db.url, kafka.bootstrap, topic)):
        await eventually(all_sent(queue_db), what="the committed row to be sent")
        messages = await read_topic(kafka.bootstrap, topic, expected=1, settle=0.5)

    ids = Counter(m.envelope["id"] for m in messages)
    assert ids == {str(committed.id): 1}
    assert str(rolled_back.id) not in ids


async def test_message_is_the_envelope_with_its_sequence_keyed_by_centre(queue_db, sessions, kafka, topic):
    envelope = await publish_one(sessions, CenterUpserted(id="320102", name="玄武区政务服务中心"), "320102")

    async with running(fast_relay(queue_db.url, kafka.bootstrap, topic)):
        await eventually(all_sent(queue_db))
        [message] = await read_topic(kafka.bootstrap, topic, expected=1)

    assert envelope.sequence is not None
    assert message.value == envelope.model_dump_json().encode()
    assert message.key == "320102"
    assert message.headers == [("type", b"center.upserted"), ("producer", b"queue")]
    [row] = await queue_db.fetch("SELECT sequence, envelope::jsonb ->> 'sequence' AS stored FROM outbox")
    assert int(row["stored"]) == row["sequence"] == envelope.sequence


async def test_commit_wakes_an_idle_relay_at_once(queue_db, sessions, kafka, topic):
    relay = fast_relay(queue_db.url, kafka.bootstrap, topic, poll_interval=30.0)
    async with running(relay):
        await eventually(lambda: _true(relay.is_leader), what="leadership")
        await asyncio.sleep(0.5)  # idle: waiting on LISTEN with a 30 s poll
        await publish_one(sessions, Noted(n=1), "C1")
        started = asyncio.get_running_loop().time()
        await eventually(all_sent(queue_db), within=5)
        waited = asyncio.get_running_loop().time() - started
    assert waited < 2.0, f"the relay took {waited:.2f}s: NOTIFY did not wake it"


async def test_a_later_sequence_waits_for_an_earlier_open_transaction(queue_db, sessions, kafka, topic):
    async with running(fast_relay(queue_db.url, kafka.bootstrap, topic)):
        async with sessions() as early:
            first = await publish(early, "queue", Noted(n=1), subject="t1", center_id="C1")
            second = await publish_one(sessions, Noted(n=2), "C1", subject="t2")  # commits first
            assert first.sequence < second.sequence
            await asyncio.sleep(0.6)  # the relay has had time to send the second, were it not waiting
            await early.commit()
        await eventually(all_sent(queue_db))
        messages = await read_topic(kafka.bootstrap, topic, expected=2)

    assert [m.envelope["sequence"] for m in messages] == [first.sequence, second.sequence]


async def test_broker_restarted_empty_gets_every_retained_event_again_in_order(queue_db, sessions, kafka, topic):
    centres = ["320102", "320104", "320105", "320106"]
    before = [await publish_one(sessions, Noted(n=i), centres[i % 4], subject=f"t{i}") for i in range(24)]
    resends = metric("hall_relay_resends_total")

    async with running(fast_relay(queue_db.url, kafka.bootstrap, topic)):
        await eventually(all_sent(queue_db), what="the first events")
        assert len(await read_topic(kafka.bootstrap, topic, expected=24)) == 24
        await asyncio.to_thread(kafka.restart)  # memory-only broker: empty, new cluster id

        async def recorded_new_cluster() -> bool:
            rows = await queue_db.fetch("SELECT value #>> '{}' AS v FROM platform_state WHERE key = 'relay.cluster_id'")
            return bool(rows) and rows[0]["v"] == kafka.cluster_id
        await eventually(recorded_new_cluster, what="the relay to notice the new cluster")
        await eventually(all_sent(queue_db), what="the re-sent events")
        after = [await publish_one(sessions, Noted(n=i), centres[i % 4], subject=f"u{i}") for i in range(8)]
        await eventually(all_sent(queue_db), what="the later events")
        messages = await read_topic(kafka.bootstrap, topic, expected=32)

    published = before + after
    assert Counter(m.envelope["id"] for m in messages) == {str(e.id): 1 for e in published}
    by_key: dict[str, list[int]] = defaultdict(list)
    for m in messages:  # one key lives in one partition: partition order is the order consumers see
        by_key[m.key].append(m.envelope["sequence"])
    for key, sequences in by_key.items():
        assert sequences == sorted(sequences), f"key {key} out of order: {sequences}"
    assert metric("hall_relay_resends_total") - resends == 24


async def test_relay_retries_while_the_broker_is_away(queue_db, sessions, kafka, topic):
    """Stop the broker, publish, start it again (empty): the relay sends what waited, counting failures."""
    failed = metric("hall_relay_failed_total")
    async with running(fast_relay(queue_db.url, kafka.bootstrap, topic)):
        await publish_one(sessions, Noted(n=0), "C1")
        await eventually(all_sent(queue_db))
        await asyncio.to_thread(kafka.stop, True)  # SIGTERM lets Tansu linger ~5 s
        try:
            waiting = await publish_one(sessions, Noted(n=1), "C1")
            await asyncio.sleep(2.5)  # more than the relay's 2 s request timeout
            rows = await queue_db.fetch("SELECT sent_at FROM outbox WHERE id = $1", waiting.id)
            assert rows[0]["sent_at"] is None
        finally:
            await asyncio.to_thread(kafka.start)
        await eventually(all_sent(queue_db), within=15, what="the events after the outage")
        messages = await read_topic(kafka.bootstrap, topic, expected=2)

    assert {m.envelope["id"] for m in messages} >= {str(waiting.id)}
    assert metric("hall_relay_failed_total") > failed


async def test_pruning_keeps_the_latest_reference_row_and_drops_old_sent_rows(
        queue_db, sessions, kafka, topic, fixed_clock):
    await publish_one(sessions, CenterUpserted(id="A", name="v1"), "A")
    latest_a = await publish_one(sessions, CenterUpserted(id="A", name="v2"), "A")
    only_b = await publish_one(sessions, CenterUpserted(id="B", name="v1"), "B")
    for i in range(3):
        await publish_one(sessions, Noted(n=i), "A", subject=f"t{i}")

    relay = fast_relay(queue_db.url, kafka.bootstrap, topic, retention=timedelta(days=7), prune_interval=0.1)
    async with running(relay):
        await eventually(all_sent(queue_db))
        fixed_clock.advance(days=8)
        recent = await publish_one(sessions, Noted(n=9), "A", subject="t9")
        await eventually(all_sent(queue_db))

        async def pruned() -> bool:
            return len(await queue_db.fetch("SELECT 1 FROM outbox")) == 3
        await eventually(pruned, what="pruning")

    kept = {r["id"] for r in await queue_db.fetch("SELECT id FROM outbox")}
    assert kept == {latest_a.id, only_b.id, recent.id}


async def test_pruning_never_deletes_an_unsent_row(queue_db, sessions, fixed_clock):
    unsent = await publish_one(sessions, Noted(n=1), "A")
    conn = await asyncpg.connect(queue_db.dsn)
    try:
        deleted = await prune_outbox(conn, older_than=fixed_clock.now() + timedelta(days=30))
    finally:
        await conn.close()
    assert deleted == 0
    assert [r["id"] for r in await queue_db.fetch("SELECT id FROM outbox")] == [unsent.id]


# --- the thin slice: the queue service publishes center.upserted -------------------------------------

CENTER = {"id": "320102", "name": "玄武区政务服务中心", "address": "南京市玄武区"}


async def outbox_rows(db) -> list[Envelope]:
    rows = await db.fetch("SELECT sequence, type, key, reference_key, envelope FROM outbox ORDER BY sequence")
    for row in rows:
        assert row["type"] == "center.upserted"
        assert row["key"] == "320102" and row["reference_key"] == "center:320102"
    return [Envelope.model_validate_json(row["envelope"]) for row in rows]


async def test_creating_a_centre_writes_center_upserted(service_client, tokens):
    async with service_client("queue") as client:
        r = await client.post("/centers", json=CENTER, headers=tokens.headers("system_admin", ["*"]))
        assert r.status_code == 201, r.text
        [event] = await outbox_rows(client.db)

    assert (event.type, event.producer, event.subject, event.center_id) == ("center.upserted", "queue",
                                                                            "320102", "320102")
    assert event.payload() == CenterUpserted(id="320102", name="玄武区政务服务中心", address="南京市玄武区")
    assert event.correlation_id == r.headers["x-correlation-id"]


async def test_a_refused_create_publishes_nothing(service_client, tokens):
    async with service_client("queue") as client:
        headers = tokens.headers("system_admin", ["*"])
        assert (await client.post("/centers", json=CENTER, headers=headers)).status_code == 201
        again = await client.post("/centers", json=CENTER, headers=headers)
        assert again.status_code == 409
        assert len(await outbox_rows(client.db)) == 1


async def test_updating_a_centre_publishes_a_second_upsert(service_client, tokens):
    async with service_client("queue") as client:
        await client.post("/centers", json=CENTER, headers=tokens.headers("system_admin", ["*"]))
        headers = {**tokens.headers("center_admin", ["320102"]), "Idempotency-Key": "rename-1"}
        change = {"name": "玄武区政务服务中心（新址）", "address": "南京市玄武区北京东路"}
        r = await client.put("/centers/320102", json=change, headers=headers)
        replayed = await client.put("/centers/320102", json=change, headers=headers)
        events = await outbox_rows(client.db)

    assert r.status_code == 200, r.text
    assert r.json()["name"] == change["name"]
    assert replayed.status_code == 200 and replayed.headers.get("idempotent-replayed") == "true"
    assert [e.data["name"] for e in events] == ["玄武区政务服务中心", change["name"]]
    assert events[0].sequence < events[1].sequence


async def test_only_that_centres_admin_or_a_system_admin_may_update_it(service_client, tokens):
    async with service_client("queue") as client:
        await client.post("/centers", json=CENTER, headers=tokens.headers("system_admin", ["*"]))
        other = await client.put("/centers/320102", json={"name": "x"},
                                 headers=tokens.headers("center_admin", ["320104"]))
        clerk = await client.put("/centers/320102", json={"name": "x"}, headers=tokens.headers("clerk", ["320102"]))
        missing = await client.put("/centers/999999", json={"name": "x"},
                                   headers=tokens.headers("system_admin", ["*"]))
        events = await outbox_rows(client.db)

    assert (other.status_code, clerk.status_code, missing.status_code) == (403, 403, 404)
    assert len(events) == 1


async def _true(value: bool) -> bool:
    return value
