"""Notify's live feeds end to end (issue 25): the notify app on a real uvicorn reading its topic on the embedded
broker, `GET /feeds/{feed}` read as server-sent events. Messages are `delivery.feed_posted` events on the topic,
as the planner's outbox relays them (the envelope's subject the feed). A member gets exactly its feed's messages
in order, a member of another feed none of them, a non-member a 403, and a client reconnecting with its
Last-Event-ID exactly the messages it missed."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaProducer

from services.notify.main import create_app
from shared.events.catalog import DeliveryFeedPosted, FeedRef, UserDeactivated
from shared.events.envelope import Envelope, EventData
from shared.events.kafka import ensure_topics, new_admin
from shared.events.topics import topic_for
from shared.settings import HallSettings
from tests.conftest import service_settings
from tests.events.test_feeds import Reader, eventually
from tests.queue.test_display_feed import topic_envelopes

pytestmark = pytest.mark.kafka

TOPIC = topic_for("notify")
A, B = "320102", "320104"


class Hall:
    """The notify app on uvicorn, and the test's side of its topic: each message posted takes the next sequence
    above everything the session's broker holds on the topic already (the feed drops sequences it has)."""

    def __init__(self, base_url: str, bootstrap: str, producer: AIOKafkaProducer, sequence: int) -> None:
        self.base_url = base_url
        self.bootstrap = bootstrap
        self.producer = producer
        self.sequence = sequence
        self.posted: dict[str, list[int]] = {}

    async def send(self, payload: EventData, subject: str, center: str | None) -> int:
        self.sequence += 1
        envelope = Envelope.wrap("notify", payload, subject=subject, center_id=center).model_copy(
            update={"sequence": self.sequence})
        await self.producer.send_and_wait(TOPIC.name, envelope.model_dump_json().encode(), key=subject.encode(),
                                          headers=[("type", envelope.type.encode()), ("producer", b"notify")])
        return self.sequence

    async def post(self, feed: str, center: str) -> int:
        """What the planner publishes for one message to `feed`."""
        text = f"第{self.sequence + 1}条消息"
        sequence = await self.send(DeliveryFeedPosted(
            delivery_id=self.sequence + 1, feed=feed, center_id=center, text=text,
            refs=FeedRef(event_id=f"e{self.sequence + 1}", event_type="alert.raised")), feed, center)
        self.posted.setdefault(feed, []).append(sequence)
        return sequence

    def watch(self, tokens: Any, feed: str, role: str, center: str, last_event_id: int | None = None,
              **claims: Any) -> Reader:
        headers = tokens.headers(role, ["*"] if role == "system_admin" else [center], **claims)
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        return Reader(f"{self.base_url}/feeds/{feed}", headers).start()


@asynccontextmanager
async def notify_hall(service_databases: Any, kafka: Any, fixed_clock: Any) -> AsyncIterator[Hall]:
    admin = new_admin(kafka.bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin, [TOPIC])
    finally:
        await admin.close()
    highest = max((e["sequence"] for e in await topic_envelopes(kafka.bootstrap, TOPIC)), default=0)
    db = service_databases("notify")
    await db.reset()
    app = create_app(service_settings("notify", db, hall=HallSettings(kafka_bootstrap=kafka.bootstrap)),
                     clock=fixed_clock)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, linger_ms=0)
    await producer.start()
    try:
        await eventually(lambda: server.started or serving.done())
        assert not serving.done(), "uvicorn did not start"
        yield Hall(f"http://127.0.0.1:{port}", kafka.bootstrap, producer, highest)
    finally:
        await producer.stop()
        server.should_exit = True
        await asyncio.wait_for(serving, 10)


async def connected(*readers: Reader, fresh: bool = True) -> None:
    """Each stream's hello arrived (a fresh client's carries its cursor as an id)."""
    await eventually(lambda: all("notify" in r.comments and (not fresh or r.last_event_id is not None)
                                 for r in readers))


def got(reader: Reader) -> list[int]:
    """The sequences of the feed messages the reader got, each frame's id its sequence."""
    assert all(kind == "delivery.feed_posted" and frame_id == data["sequence"] for kind, frame_id, data in reader.events)
    return [frame_id for _, frame_id, _ in reader.events if frame_id is not None]


async def test_each_member_gets_exactly_its_feeds_messages_and_another_feeds_member_none(
        service_databases, kafka, tokens, fixed_clock):
    window3, window4 = f"window:{A}:W03", f"window:{A}:W04"
    office, department = f"supervision:{A}", f"department:{A}:D01"
    async with notify_hall(service_databases, kafka, fixed_clock) as hall:
        readers = {
            "clerk at W03": hall.watch(tokens, window3, "clerk", A, department="D01", window="W03"),
            "hall manager on W03": hall.watch(tokens, window3, "hall_manager", A),
            "terminal of W04": hall.watch(tokens, window4, "terminal", A, window="W04", device="t-4"),
            "supervisor": hall.watch(tokens, office, "supervisor", A),
            "chief representative of D01": hall.watch(tokens, department, "chief_rep", A, department="D01"),
            "system admin on D01": hall.watch(tokens, department, "system_admin", A),
            "clerk of D02": hall.watch(tokens, f"department:{A}:D02", "clerk", A, department="D02", window="W05"),
            "another centre's office": hall.watch(tokens, f"supervision:{B}", "supervisor", B),
        }
        await connected(*readers.values())
        await hall.post(window3, A)
        await hall.post(office, A)
        await hall.post(department, A)
        await hall.post(window4, A)
        await hall.send(UserDeactivated(id="u1"), window3, A)  # the feed's name as subject, not a feed message
        await hall.post(window3, A)
        await hall.post(department, A)
        await hall.post(f"window:{B}:W03", B)  # the same window number in another centre
        await hall.post(f"{window3}0", A)  # W030: a name that starts like W03's
        await hall.post(f"supervision:{A}0", A)
        expected = {
            "clerk at W03": hall.posted[window3], "hall manager on W03": hall.posted[window3],
            "terminal of W04": hall.posted[window4], "supervisor": hall.posted[office],
            "chief representative of D01": hall.posted[department], "system admin on D01": hall.posted[department],
            "clerk of D02": [], "another centre's office": [],
        }
        await eventually(lambda: all(len(readers[who].events) >= len(want) for who, want in expected.items()))
        await asyncio.sleep(1.0)  # anything more would have arrived by now (the feed's tick and reorder window)
        await asyncio.gather(*(reader.close() for reader in readers.values()))
    assert {who: got(reader) for who, reader in readers.items()} == expected
    texts = [data["data"]["text"] for _, _, data in readers["clerk at W03"].events]
    assert len(texts) == 2 and all(text.endswith("条消息") for text in texts)
    assert {data["subject"] for _, _, data in readers["supervisor"].events} == {office}


async def test_a_member_reconnecting_with_last_event_id_gets_exactly_what_it_missed(
        service_databases, kafka, tokens, fixed_clock):
    window3 = f"window:{A}:W03"
    claims = {"department": "D01", "window": "W03"}
    async with notify_hall(service_databases, kafka, fixed_clock) as hall:
        first = hall.watch(tokens, window3, "clerk", A, **claims)
        await connected(first)
        before = [await hall.post(window3, A), await hall.post(f"window:{A}:W04", A), await hall.post(window3, A)]
        await eventually(lambda: len(first.events) == 2)
        await asyncio.sleep(0.3)
        await first.close()  # the window's screen loses its connection
        cursor = first.last_event_id
        assert cursor == before[2]

        missed = []
        for feed in (f"supervision:{A}", window3, window3, f"department:{A}:D01", window3):
            sequence = await hall.post(feed, A)
            if feed == window3:
                missed.append(sequence)
        again = hall.watch(tokens, window3, "clerk", A, last_event_id=cursor, **claims)
        await connected(again, fresh=False)
        await eventually(lambda: len(again.events) == 3)
        live = await hall.post(window3, A)  # and it goes on live
        await hall.post(f"window:{A}:W04", A)
        await eventually(lambda: len(again.events) == 4)
        await asyncio.sleep(1.0)
        await again.close()
    assert got(first) == [before[0], before[2]]
    assert got(again) == [*missed, live]
    assert "feed.gap" not in [kind for kind, _, _ in again.events]


async def test_a_non_member_is_refused_and_a_malformed_feed_name_is_a_422(service_databases, kafka, tokens,
                                                                         fixed_clock):
    window3, office, department = f"window:{A}:W03", f"supervision:{A}", f"department:{A}:D01"
    refused = [
        # (who, their token, the feed, the code)
        ("a clerk at another window", ("clerk", A, {"department": "D01", "window": "W04"}), window3, "wrong_window"),
        ("a clerk signed in nowhere", ("clerk", A, {"department": "D01"}), window3, "wrong_window"),
        ("another centre's terminal of W03", ("terminal", B, {"window": "W03"}), window3, "wrong_center"),
        ("an evaluator at the window", ("evaluator", A, {"window": "W03"}), window3, "wrong_role"),
        ("a centre admin", ("center_admin", A, {}), window3, "wrong_role"),
        ("another department's clerk", ("clerk", A, {"department": "D02", "window": "W03"}), department,
         "wrong_department"),
        ("another centre's chief representative", ("chief_rep", B, {"department": "D01"}), department,
         "wrong_center"),
        ("a display", ("display", A, {"device": "d-1"}), department, "wrong_role"),
        ("a hall manager", ("hall_manager", A, {}), office, "wrong_role"),
        ("a clerk", ("clerk", A, {"department": "D01", "window": "W03"}), office, "wrong_role"),
        ("another centre's supervisor", ("supervisor", B, {}), office, "wrong_center"),
    ]
    malformed = [f"window:{A}", f"department:{A}", f"kiosk:{A}", f"supervision:{A}:x", f"window:{A}:W 3",
                 "supervision:3", f"department:{A}:D01:x"]
    async with notify_hall(service_databases, kafka, fixed_clock) as hall, \
            httpx.AsyncClient(base_url=hall.base_url, timeout=10) as client:
        answers = {}
        for who, (role, center, claims), feed, _ in refused:
            answers[who] = await client.get(f"/feeds/{feed}", headers=tokens.headers(role, [center], **claims))
        smuggled = await client.get(f"/feeds/{office}", params={"center": B},
                                    headers=tokens.headers("supervisor", [A]))
        anonymous = await client.get(f"/feeds/{office}")
        names = {name: await client.get(f"/feeds/{name}", headers=tokens.headers("system_admin", ["*"]))
                 for name in malformed}
    assert {who: (r.status_code, r.json()["code"]) for who, r in answers.items()} == {
        who: (403, code) for who, _, _, code in refused}
    assert all(r.headers["content-type"].startswith("application/problem+json") for r in answers.values())
    assert smuggled.status_code == 403 and anonymous.status_code == 401
    assert {name: (r.status_code, r.json().get("field")) for name, r in names.items()} == {
        name: (422, "feed") for name in malformed}
