"""The notify worker's own consumers on a real broker: an event the broker delivers twice (a producer's retry,
a redelivery after a rebalance) plans one delivery and the applicant gets one SMS."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

from aiokafka import AIOKafkaProducer

from services.notify import consumers as notify_consumers
from shared import clock
from shared.events.kafka import ensure_topics, new_admin
from shared.events.topics import Topic, topic_for
from tests.monitor.support import FAST_GROUP, until
from tests.notify.support import CENTRE, envelope, notify
from tests.notify.test_delivery import turn_near

QUEUE_TOPIC = topic_for("queue").name


def local(hh: int) -> datetime:
    return datetime(2026, 12, 4, hh, tzinfo=clock.LOCAL_TZ)


async def test_an_event_delivered_twice_on_the_topic_sends_one_sms(service_client, kafka, fixed_clock):
    fixed_clock.set(local(10))
    topic = f"test.queue.{uuid.uuid4().hex[:10]}"
    admin = new_admin(kafka.bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin, [Topic(topic, "queue", 3, "center")])
    finally:
        await admin.close()
    async with notify(service_client) as n:
        settings = n.client.app.state.settings.model_copy(  # type: ignore[attr-defined]
            update={"hall": n.settings.hall.model_copy(update={"kafka_bootstrap": kafka.bootstrap})})
        built = notify_consumers.build_consumers(settings, n.client.app.state.sessionmaker,  # type: ignore[attr-defined]
                                                 topic_names={QUEUE_TOPIC: topic}, kafka_options=FAST_GROUP)
        consumer = next(c for c in built if c.id == "notify.queue")
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        twice, after = envelope(turn_near(71), subject=f"center:{CENTRE}"), envelope(turn_near(72),
                                                                                      subject=f"center:{CENTRE}")
        try:
            producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
            await producer.start()
            try:
                for sent in (twice, twice, after):  # one key: one partition, in this order
                    await producer.send_and_wait(topic, sent.model_dump_json().encode(), key=CENTRE.encode(),
                                                 headers=[("type", sent.type.encode()), ("producer", b"queue")])
            finally:
                await producer.stop()

            async def applied() -> bool:
                rows = await n.db.fetch("SELECT event_id FROM inbox WHERE consumer = 'notify.queue'")
                return {r["event_id"] for r in rows} >= {twice.id, after.id}

            await until(applied, what="both events applied")  # the repeat came before `after` on its partition
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)
        planned = await n.db.fetch("SELECT event_id, channel FROM deliveries ORDER BY id")
        assert [(r["event_id"], r["channel"]) for r in planned] == [(twice.id, "sms"), (after.id, "sms")]
        assert await n.dispatch() == 2
        assert len(n.sms.requests) == len(n.sms.accepted) == 2  # one per event, not three
        assert {m.key for m in n.sms.accepted} == {str(r["key"]) for r in await n.db.fetch("SELECT key FROM deliveries")}

