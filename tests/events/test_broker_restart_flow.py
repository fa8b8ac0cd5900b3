"""The whole event path through a broker that restarts empty, with the same relay, consumer and feed client
running throughout: every event produced before (already relayed) and during the outage is applied once,
in per-key order, and the feed client sees each once."""

import asyncio
import json
import uuid
from collections import defaultdict

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from services.cases.models import CenterCopy
from shared.db import make_engine, make_sessionmaker
from shared.devinfra.postgres import free_port
from shared.events.catalog import CenterUpserted
from shared.events.consumer import EventConsumer
from shared.events.outbox import publish
from shared.events.relay import Relay
from shared.events.topics import Topic
from shared.feeds import Feed
from shared.readcopy import center_consumer

pytestmark = pytest.mark.kafka
CENTERS = ["320102", "320104", "320105", "320106"]
FAST_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500}


async def _until(check, within: float = 45, what: str = "condition"):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not (result := await check()):
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
    return result


async def test_events_survive_a_broker_restart_once_and_in_order(service_databases, kafka):
    queue_db, cases_db = service_databases("queue"), service_databases("cases")
    await queue_db.reset()
    await cases_db.reset()
    topic = f"test.flow.{uuid.uuid4().hex[:10]}"
    stop = asyncio.Event()
    producer_engine = make_engine(queue_db.url)
    consumer_engine = make_engine(cases_db.url)
    produced: list[int] = []
    centre_of: dict[int, str] = {}

    async def produce(count: int) -> None:
        async with make_sessionmaker(producer_engine)() as session:
            for _ in range(count):
                center = CENTERS[len(produced) % len(CENTERS)]
                envelope = await publish(session, "queue", CenterUpserted(id=center, name=f"v{len(produced)}"),
                                         subject=center, center_id=center)
                await session.commit()
                produced.append(envelope.sequence)
                centre_of[envelope.sequence] = center

    applied: dict[str, list[int]] = defaultdict(list)
    copy = center_consumer(CenterCopy).handlers["center.upserted"]

    async def recording(session, envelope) -> None:
        await copy(session, envelope)
        applied[envelope.center_id].append(envelope.sequence)

    consumer = EventConsumer("centers", kafka.bootstrap, [topic], {"center.upserted": recording},
                             make_sessionmaker(consumer_engine), service="cases", kafka_options=FAST_GROUP)
    relay = Relay(queue_db.url, kafka.bootstrap, "queue", topic=Topic(topic, "queue", 3, "center"), poll_interval=0.2)
    feed = Feed(kafka.bootstrap, topic, name="flow", reorder_window=0.2)
    app = FastAPI()
    app.include_router(feed.router("/events"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="critical", lifespan="off",
                                           timeout_graceful_shutdown=1))
    seen: list[int] = []

    async def watch() -> None:
        async with httpx.AsyncClient(timeout=None) as client, client.stream(
                "GET", f"http://127.0.0.1:{port}/events") as response:
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    seen.append(json.loads(line[5:])["sequence"])

    await feed.start()
    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(consumer.run(stop)),
             asyncio.create_task(server.serve())]
    try:
        await _until(lambda: asyncio.sleep(0, server.started), what="the feed server")
        watcher = asyncio.create_task(watch())
        await produce(12)
        await _until(lambda: asyncio.sleep(0, sum(map(len, applied.values())) >= 12 and len(seen) >= 12),
                     what="the first events applied and fed")

        kafka.stop(kill=True)  # the memory-only broker dies with everything it held
        await produce(6)  # accepted while it is away: they wait in the outbox
        kafka.start()  # empty, with a new cluster id
        await produce(6)
        await _until(lambda: asyncio.sleep(0, sum(map(len, applied.values())) >= 24 and len(seen) >= 24),
                     what=f"every event applied and fed after the restart ({dict(applied)}, {seen})")
        await asyncio.sleep(1.5)  # let any late repeat show up before judging
    finally:
        stop.set()
        server.should_exit = True
        await feed.stop()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        if "watcher" in locals():
            watcher.cancel()
        await producer_engine.dispose()
        await consumer_engine.dispose()

    assert len(produced) == 24
    for center, sequences in applied.items():  # once each, in the order they were produced, per key
        assert sequences == sorted(set(sequences)), f"{center}: {sequences}"
    assert sorted(s for seqs in applied.values() for s in seqs) == sorted(produced)
    assert seen == sorted(produced), "the feed client sees each event once, in sequence order"
    inbox = await cases_db.fetch("SELECT count(*) AS n FROM inbox WHERE consumer = 'cases.centers'")
    assert inbox[0]["n"] == 24
    copies = await cases_db.fetch("SELECT id, last_event_sequence FROM centers ORDER BY id")
    latest = {c: max(s for s in produced if centre_of[s] == c) for c in CENTERS}
    assert {r["id"]: r["last_event_sequence"] for r in copies} == latest
