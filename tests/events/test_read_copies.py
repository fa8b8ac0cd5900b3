"""Read copies of the queue service's centres in cases, monitor and notify: built from `center.upserted`
on Kafka, complete when a service starts on an empty database long after the centres were created,
newest event wins whatever the arrival order, served over HTTP to the caller's centres only; and a
dead-lettered centre event replayed through the admin endpoint."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from shared import clock
from shared.events.catalog import CenterUpserted
from shared.events.consumer import EventConsumer
from shared.events.envelope import Envelope
from shared.events.kafka import ensure_topics, new_admin
from shared.events.topics import Topic, topic_for

pytestmark = pytest.mark.kafka

FAST_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500}
QUEUE_TOPIC = topic_for("queue").name


def center_event(center_id: str, name: str, sequence: int, occurred_at: datetime,
                 address: str | None = None) -> Envelope:
    payload = CenterUpserted(id=center_id, name=name, address=address)
    return Envelope.wrap("queue", payload, subject=center_id, center_id=center_id,
                         occurred_at=occurred_at).model_copy(update={"sequence": sequence})


async def publish(bootstrap: str, topic: str, envelopes: list[Envelope]) -> None:
    """What the relay does: the queue topic, keyed by centre, envelope JSON, type and producer headers."""
    admin = new_admin(bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin, [Topic(topic, "queue", 6, "center")])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(topic, envelope.model_dump_json().encode(),
                                         key=(envelope.center_id or "").encode(),
                                         headers=[("type", envelope.type.encode()), ("producer", b"queue")])
    finally:
        await producer.stop()


@asynccontextmanager
async def consuming(consumers: list[EventConsumer]) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(consumer.run(stop)) for consumer in consumers]
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 20)


async def until(check, within: float = 20, what: str = "condition") -> Any:
    deadline = clock.monotonic() + within
    while not (result := await check()):
        if clock.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
    return result


@pytest.mark.parametrize("service", ["cases", "monitor", "notify"])
async def test_read_copy_of_centres_is_complete_when_a_service_starts_empty_long_after(
        service, service_client, tokens, kafka, fixed_clock):
    long_ago = fixed_clock.now() - timedelta(days=400)
    topic = f"test.centers.{uuid.uuid4().hex[:10]}"
    xuanwu = center_event("320102", "玄武区政务服务中心", 40, long_ago, "北京东路41号")
    qinhuai = center_event("320104", "秦淮区政务服务中心", 41, long_ago)
    jianye = center_event("320105", "建邺区政务服务中心", 42, long_ago + timedelta(days=3))
    xuanwu_before = center_event("320102", "玄武区行政服务中心", 7, long_ago - timedelta(days=30))
    # the relay re-sends the latest row per centre (kept for ever); an older version arriving late and a
    # repeat must change nothing
    await publish(kafka.bootstrap, topic, [xuanwu, qinhuai, jianye, xuanwu_before, qinhuai])

    async with service_client(service) as client:  # a fresh, empty database
        app = client.app
        settings = app.state.settings.model_copy(
            update={"hall": app.state.settings.hall.model_copy(update={"kafka_bootstrap": kafka.bootstrap})})
        module = __import__(f"services.{service}.consumers", fromlist=["build_consumers"])
        built = module.build_consumers(settings, app.state.sessionmaker, topic_names={QUEUE_TOPIC: topic},
                                       kafka_options=FAST_GROUP)
        consumers = [c for c in built if c.id == f"{service}.centers"]  # (the calendar consumer is not needed)
        assert [c.topics for c in consumers] == [(topic,)]
        admin = tokens.headers("system_admin", ["*"])
        async with consuming(consumers):
            async def four_events_seen() -> bool:
                rows = await client.db.fetch("SELECT 1 FROM inbox WHERE consumer = $1", f"{service}.centers")
                return len(rows) == 4
            await until(four_events_seen, what="the four distinct events")

        r = await client.get("/centers", headers=admin)
        assert r.status_code == 200, r.text
        assert [(c["id"], c["name"], c["address"]) for c in r.json()] == [
            ("320102", "玄武区政务服务中心", "北京东路41号"),
            ("320104", "秦淮区政务服务中心", None),
            ("320105", "建邺区政务服务中心", None),
        ]
        assert datetime.fromisoformat(r.json()[2]["updated_at"]) == jianye.occurred_at

        clerk = tokens.headers("clerk", ["320104"])
        r = await client.get("/centers", headers=clerk)
        assert [c["id"] for c in r.json()] == ["320104"]
        assert (await client.get("/centers/320104", headers=clerk)).json()["name"] == "秦淮区政务服务中心"
        assert (await client.get("/centers/320102", headers=clerk)).status_code == 403
        assert (await client.get("/centers/999999", headers=admin)).status_code == 404
        assert (await client.get("/centers")).status_code == 401


async def _insert_dead_letter(db, key: str, event_id: uuid.UUID, envelope_json: str, kind: str,
                              error: str | None) -> int:
    rows = await db.fetch(
        "INSERT INTO dead_letters (consumer, key, event_id, kind, envelope, error, created_at) "
        "VALUES ('cases.centers', $1, $2, $3, $4::jsonb, $5, $6) RETURNING id",
        key, event_id, kind, envelope_json, error, clock.now())
    return rows[0]["id"]


async def test_a_dead_lettered_centre_event_is_replayed_over_http(service_client, tokens, fixed_clock):
    async with service_client("cases") as client:
        # an event that failed earlier (a bug since fixed), and a later one of that centre parked behind it
        first = center_event("320102", "玄武区政务服务中心", 5, fixed_clock.now())
        moved = center_event("320102", "玄武区政务服务中心", 6, fixed_clock.now(), address="北京东路41号")
        poison_id = await _insert_dead_letter(client.db, "320102", first.id, first.model_dump_json(),
                                              "poison", "Traceback ...\nValueError: a bug, since fixed")
        parked_id = await _insert_dead_letter(client.db, "320102", moved.id, moved.model_dump_json(),
                                              "parked", None)
        admin = tokens.headers("system_admin", ["*"])

        assert (await client.get("/admin/dead-letters", headers=tokens.headers("center_admin", ["320102"]))
                ).status_code == 403
        r = await client.get("/admin/dead-letters", headers=admin)
        assert r.status_code == 200, r.text
        assert [(d["id"], d["kind"], d["type"]) for d in r.json()] == [
            (parked_id, "parked", "center.upserted"), (poison_id, "poison", "center.upserted")]

        # by the parked row's id: the whole key is replayed, poison first
        r = await client.post(f"/admin/dead-letters/{parked_id}/replay", headers=admin)
        assert r.status_code == 200, r.text
        assert r.json() == {"consumer": "cases.centers", "key": "320102", "applied": [poison_id, parked_id],
                            "resolved": True}
        center = (await client.get("/centers/320102", headers=admin)).json()
        assert (center["name"], center["address"]) == ("玄武区政务服务中心", "北京东路41号")
        assert (await client.get("/admin/dead-letters", headers=admin)).json() == []

        r = await client.post(f"/admin/dead-letters/{poison_id}/replay", headers=admin)
        assert (r.status_code, r.json()["code"]) == (409, "already_resolved")
        assert (await client.post("/admin/dead-letters/999999/replay", headers=admin)).status_code == 404


async def test_a_centre_event_that_still_fails_stays_open_and_can_be_discarded(service_client, tokens):
    async with service_client("cases") as client:
        broken_id = await _insert_dead_letter(client.db, "320102", uuid.uuid4(),
                                              json.dumps({"malformed": True, "raw": "{not json"}), "poison",
                                              "ValidationError: not an envelope")
        admin = tokens.headers("system_admin", ["*"])

        r = await client.post(f"/admin/dead-letters/{broken_id}/replay", headers=admin)
        assert (r.status_code, r.json()["code"]) == (409, "replay_failed")
        assert r.json()["dead_letter_id"] == broken_id
        still_open = (await client.get("/admin/dead-letters", headers=admin)).json()
        assert [d["id"] for d in still_open] == [broken_id]

        r = await client.post(f"/admin/dead-letters/{broken_id}/discard", headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["resolved_at"] is not None and "discarded by" in r.json()["error"]
        assert (await client.get("/admin/dead-letters", headers=admin)).json() == []
