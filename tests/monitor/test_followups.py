"""Ratings and bad-rating follow-ups (差评回访), end to end through Kafka with the fixed clock: every
evaluation.submitted kept once from the queue topic; a bad one opens a follow-up due in 15 working days with a
bad_rating alert at once; its overrun raises a second alert (fired by the timer runner, never by sleeping);
the follow-up done resolves both."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.monitor import consumers as monitor_consumers
from services.monitor.complaints import wiring
from shared import clock
from shared.db import make_engine
from shared.events.catalog import EvaluationSubmitted
from shared.events.envelope import Envelope, EventData
from shared.events.kafka import ensure_topics, new_admin
from shared.events.topics import Topic, topic_for
from shared.timers import TimerRunner
from tests.monitor.support import CALENDAR, CENTRE, FAST_GROUP, local, until

pytestmark = pytest.mark.kafka

QUEUE_TOPIC = topic_for("queue").name
_sequence = itertools.count(5000)
_ids = itertools.count(1)


@dataclass
class Hall:
    """The monitor's app, its `hall` consumer reading a queue topic of the test's own, and its timers."""

    client: httpx.AsyncClient
    bootstrap: str
    topic: str
    runner: TimerRunner

    @property
    def db(self) -> Any:
        return self.client.db  # type: ignore[attr-defined]

    async def send(self, *payloads: EventData, envelopes: list[Envelope] | None = None) -> list[Envelope]:
        """Publish queue events keyed by centre (as the queue's relay does) and wait until they are applied."""
        sent = envelopes or [Envelope.wrap("queue", p, subject=CENTRE, center_id=CENTRE).model_copy(
            update={"sequence": next(_sequence)}) for p in payloads]
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            for envelope in sent:
                await producer.send_and_wait(self.topic, envelope.model_dump_json().encode(), key=CENTRE.encode(),
                                             headers=[("type", envelope.type.encode()), ("producer", b"queue")])
        finally:
            await producer.stop()
        ids = [e.id for e in sent]

        async def applied() -> bool:
            rows = await self.db.fetch("SELECT count(*) AS n FROM inbox WHERE consumer = 'monitor.hall' "
                                       "AND event_id = ANY($1::uuid[])", ids)
            return rows[0]["n"] == len(ids)

        await until(applied, what=f"{len(ids)} queue events applied")
        return sent

    async def at(self, moment: datetime) -> int:
        clock.get_clock().set(moment)  # type: ignore[attr-defined]
        return await self.runner.fire_due()

    async def alerts(self, headers: dict[str, str]) -> list[dict[str, Any]]:
        r = await self.client.get("/alerts", params={"center": CENTRE, "kind": "bad_rating"}, headers=headers)
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    async def outbox(self, event_type: str) -> list[dict[str, Any]]:
        rows = await self.db.fetch("SELECT envelope FROM outbox WHERE type = $1 ORDER BY sequence", event_type)
        return [json.loads(r["envelope"])["data"] for r in rows]


@asynccontextmanager
async def hall(service_client: Any, kafka: Any) -> AsyncIterator[Hall]:
    topic = f"test.queue.{uuid.uuid4().hex[:10]}"
    admin = new_admin(kafka.bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin, [Topic(topic, "queue", 3, "center")])
    finally:
        await admin.close()
    async with service_client("monitor") as client:
        app = client.app
        settings = app.state.settings.model_copy(
            update={"hall": app.state.settings.hall.model_copy(update={"kafka_bootstrap": kafka.bootstrap})})
        built = monitor_consumers.build_consumers(settings, app.state.sessionmaker, topic_names={QUEUE_TOPIC: topic},
                                                  kafka_options=FAST_GROUP)
        consumers = [c for c in built if c.id == "monitor.hall"]
        engine = make_engine(client.db.url, application_name="test-monitor-followup-timers")
        stop = asyncio.Event()
        tasks = [asyncio.create_task(c.run(stop)) for c in consumers]
        try:
            yield Hall(client, kafka.bootstrap, topic, TimerRunner(engine, wiring.TIMER_HANDLERS, batch_size=100))
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 20)
            await engine.dispose()


def rating(value: int, at: datetime, **changes: Any) -> EvaluationSubmitted:
    n = next(_ids)
    values: dict[str, Any] = dict(
        evaluation_id=n, center_id=CENTRE, ticket_id=100 + n, service_code="HJ", department="GA", window="5",
        clerk_id="clerk-5", rating=value, channel="evaluator", submitted_at=at, ticket_number=f"A{n:03d}",
        business_date=clock.local_date(at), post="A")
    values.update(changes)
    return EvaluationSubmitted(**values)


async def test_a_bad_rating_opens_a_follow_up_and_its_overrun_raises_a_second_alert(
        service_client, kafka, tokens, fixed_clock):
    office = tokens.headers("supervisor", [CENTRE])
    manager = tokens.headers("hall_manager", [CENTRE])
    rated = local(date(2026, 3, 5), 10, 0)  # Thu
    fixed_clock.set(rated + timedelta(minutes=1))
    async with hall(service_client, kafka) as h:
        good, bad = rating(4, rated), rating(2, rated, case_no="320102-20260305-000007")
        sent = await h.send(good, bad)
        await h.send(envelopes=[sent[1].model_copy(update={"id": uuid.uuid4()})])  # re-sent under a new id

        ratings = await h.db.fetch("SELECT evaluation_id, rating, \"window\", clerk_id, case_no, business_date "
                                   "FROM ratings ORDER BY evaluation_id")
        assert [(r["evaluation_id"], r["rating"]) for r in ratings] == [(good.evaluation_id, 4), (bad.evaluation_id, 2)]
        assert ratings[1]["case_no"] == bad.case_no and ratings[1]["business_date"] == date(2026, 3, 5)

        # one follow-up, due at the end of the 15th working day after the rating's day
        due = CALENDAR.due_at(date(2026, 3, 5), 15, CENTRE)
        assert due == local(date(2026, 3, 26), 23, 59) + timedelta(seconds=59)
        r = await h.client.get("/followups", params={"center": CENTRE, "status": "open"}, headers=manager)
        assert r.status_code == 200, r.text
        [followup] = r.json()["items"]
        assert followup["evaluation_id"] == bad.evaluation_id and followup["rating"] == 2
        assert datetime.fromisoformat(followup["due_at"]) == due and followup["overdue"] is False
        assert [e["followup"]["id"] for e in await h.outbox("followup.due")] == [followup["id"]]

        # the bad_rating alert at once, orange
        [first] = await h.alerts(office)
        assert first["level"] == "orange" and first["window"] == "5" and "不满意" in first["text"]
        assert first["details"]["followup_id"] == followup["id"]

        # the day before due: nothing; past due: the second alert (red) and followup.overdue, once
        assert await h.at(due - timedelta(seconds=1)) == 0
        assert await h.at(due + timedelta(seconds=1)) == 1
        assert await h.runner.fire_due() == 0
        alerts = await h.alerts(office)
        assert [a["level"] for a in alerts] == ["orange", "red"] and "回访超时" in alerts[1]["text"]
        assert [e["followup"]["id"] for e in await h.outbox("followup.overdue")] == [followup["id"]]

        # done (late): the system resolves both alerts with the note
        r = await h.client.post(f"/followups/{followup['id']}/done", json={"note": "已电话回访，群众表示理解"},
                                headers=manager)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "done" and r.json()["overdue"] is True
        alerts = await h.alerts(office)
        assert {a["status"] for a in alerts} == {"resolved"} and {a["resolved_by"] for a in alerts} == {"system"}
        assert all("已电话回访" in a["resolve_note"] for a in alerts)
        r = await h.client.post(f"/followups/{followup['id']}/done", json={"note": "again"}, headers=manager)
        assert r.status_code == 409 and r.json()["code"] == "followup_done"
        r = await h.client.get("/followups", params={"center": CENTRE, "status": "open"}, headers=manager)
        assert r.json()["items"] == []


async def test_a_follow_up_done_in_time_raises_no_overrun(service_client, kafka, tokens, fixed_clock):
    office = tokens.headers("supervisor", [CENTRE])
    rated = local(date(2026, 3, 5), 15, 0)
    fixed_clock.set(rated)
    async with hall(service_client, kafka) as h:
        await h.send(rating(1, rated, window=None, clerk_id=None))
        [followup] = (await h.client.get("/followups", params={"center": CENTRE}, headers=office)).json()["items"]
        r = await h.client.post(f"/followups/{followup['id']}/done", json={"note": "已上门回访"},
                                headers=tokens.headers("clerk", [CENTRE]))
        assert r.status_code == 403
        r = await h.client.post(f"/followups/{followup['id']}/done", json={"note": ""}, headers=office)
        assert r.status_code == 422
        r = await h.client.post(f"/followups/{followup['id']}/done", json={"note": "已上门回访"}, headers=office)
        assert r.status_code == 200 and r.json()["overdue"] is False
        assert await h.at(datetime.fromisoformat(followup["due_at"]) + timedelta(days=1)) == 0
        alerts = await h.alerts(office)
        assert len(alerts) == 1 and alerts[0]["status"] == "resolved"  # the first, resolved by the done
        assert await h.outbox("followup.overdue") == []
