"""Live feeds over a real uvicorn and the embedded broker: filtered, in sequence order, resumable with
Last-Event-ID, keep-alives that carry the cursor, a stuck client cut off without harming others, and a
broker restarted empty whose re-sent events are shown once."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from prometheus_client import REGISTRY
from starlette.requests import Request

from shared import clock
from shared.events.envelope import Envelope, EventData
from shared.events.kafka import ensure_topics, new_admin
from shared.events.topics import Topic
from shared.feeds import GAP_EVENT, Feed

pytestmark = pytest.mark.kafka

A, B = "320102", "320103"


class Called(EventData):
    """A stand-in payload (not registered: the feed only needs the envelope)."""

    type: Literal["test.called"] = "test.called"
    ticket: str
    pad: str = ""


def envelope(sequence: int, center: str, pad: int = 0) -> Envelope:
    payload = Called(ticket=f"A{sequence:03d}", pad="x" * pad)
    return Envelope.wrap("queue", payload, subject=f"ticket-{sequence}", center_id=center).model_copy(
        update={"sequence": sequence})


async def new_topic(bootstrap: str, partitions: int = 3) -> str:
    name = f"test.feed.{uuid.uuid4().hex[:10]}"
    admin = new_admin(bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin, [Topic(name, "queue", partitions, "center")])
    finally:
        await admin.close()
    return name


async def produce(bootstrap: str, topic: str, envelopes: list[Envelope], pause: float = 0.0) -> None:
    """What the outbox relay sends: the envelope JSON, keyed by centre, with type/producer headers."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    try:
        for env in envelopes:
            await producer.send_and_wait(topic, env.model_dump_json().encode(), key=(env.center_id or "").encode(),
                                         headers=[("type", env.type.encode()), ("producer", env.producer.encode())])
            if pause:
                await asyncio.sleep(pause)
    finally:
        await producer.stop()


@asynccontextmanager
async def live_feed(bootstrap: str, topic: str, *, send_buffer: int | None = None,
                    **options: Any) -> AsyncIterator[tuple[Feed, str]]:
    """A started feed mounted at /events on a real uvicorn (ASGITransport would buffer the stream).

    `send_buffer` fixes the kernel send buffer of the server's connections (accepted sockets inherit it
    from the listening one), so a client that stops reading blocks the server after kilobytes, not the
    megabytes loopback autotuning would otherwise absorb.
    """
    feed = Feed(bootstrap, topic, name=f"test-{topic}", **options)
    await feed.start()
    await asyncio.wait_for(feed.ready.wait(), 15)
    app = FastAPI()
    app.include_router(feed.router("/events"))
    listener = socket.socket()
    if send_buffer:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off", timeout_graceful_shutdown=1))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    await eventually(lambda: server.started)
    try:
        yield feed, f"http://127.0.0.1:{port}"
    finally:
        await feed.stop()
        server.should_exit = True
        await asyncio.wait_for(serving, 10)


@dataclass
class Reader:
    """An SSE client reading in the background: frames parsed as the spec says (id persists)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    events: list[tuple[str, int | None, dict[str, Any]]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    last_event_id: int | None = None
    ended: bool = False

    def start(self) -> Reader:
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as http, \
                http.stream("GET", self.url, headers=self.headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            frame: dict[str, str] = {}
            async for line in response.aiter_lines():
                if line:
                    if line.startswith(":"):
                        self.comments.append(line[1:].strip())
                    else:
                        name, _, value = line.partition(":")
                        frame[name] = value[1:] if value.startswith(" ") else value
                    continue
                if "id" in frame:
                    self.last_event_id = int(frame["id"])
                if "data" in frame:
                    frame_id = int(frame["id"]) if "id" in frame else None
                    self.events.append((frame.get("event", "message"), frame_id, json.loads(frame["data"])))
                frame = {}
        self.ended = True

    @property
    def sequences(self) -> list[int]:
        return [data["sequence"] for kind, _, data in self.events if kind != GAP_EVENT]

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = clock.monotonic() + within
    while not check():
        if clock.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.02)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_client_gets_its_centres_events_in_sequence_order_and_no_others(kafka):
    topic = await new_topic(kafka.bootstrap)
    async with live_feed(kafka.bootstrap, topic) as (feed, url):
        a = Reader(f"{url}/events?center={A}").start()
        b = Reader(f"{url}/events?center={B}").start()
        await eventually(lambda: feed.client_count == 2)
        envelopes = [envelope(n, A if n % 3 else B) for n in range(1, 41)]
        # neighbours swapped: different centres travel in different partitions and arrive out of order
        shuffled = [envelopes[i ^ 1] for i in range(len(envelopes))]
        await produce(kafka.bootstrap, topic, shuffled)
        await eventually(lambda: len(a.events) + len(b.events) == 40)
        await asyncio.sleep(0.3)
        await a.close()
        await b.close()
    assert a.sequences == [n for n in range(1, 41) if n % 3]
    assert b.sequences == [n for n in range(1, 41) if not n % 3]
    assert {data["center_id"] for _, _, data in a.events} == {A}
    assert all(kind == "test.called" and frame_id == data["sequence"] for kind, frame_id, data in a.events)


async def test_a_client_reconnecting_with_last_event_id_gets_exactly_what_it_missed(kafka):
    topic = await new_topic(kafka.bootstrap)
    async with live_feed(kafka.bootstrap, topic) as (feed, url):
        first = Reader(f"{url}/events?center={A}").start()
        await eventually(lambda: feed.client_count == 1)
        await produce(kafka.bootstrap, topic, [envelope(n, A if n % 2 else B) for n in range(1, 21)])
        await eventually(lambda: len(first.events) == 10)
        await first.close()
        assert first.sequences == list(range(1, 21, 2))
        cursor = first.last_event_id
        assert cursor == 19

        await produce(kafka.bootstrap, topic, [envelope(n, A if n % 2 else B) for n in range(21, 41)])
        await eventually(lambda: feed.released == 40)
        fresh = Reader(f"{url}/events?center={A}").start()  # no Last-Event-ID: live from now on
        again = Reader(f"{url}/events?center={A}", {"Last-Event-ID": str(cursor)}).start()
        await eventually(lambda: len(again.events) == 10)
        await produce(kafka.bootstrap, topic, [envelope(41, A)])
        await eventually(lambda: len(again.events) == 11 and len(fresh.events) == 1)
        await asyncio.sleep(0.3)
        await fresh.close()
        await again.close()
    assert again.sequences == list(range(21, 42, 2))  # 21..39 missed, then 41 live: nothing twice
    assert fresh.sequences == [41]


async def test_a_quiet_client_gets_keep_alives_that_carry_its_cursor(kafka):
    topic = await new_topic(kafka.bootstrap)
    async with live_feed(kafka.bootstrap, topic, keepalive_seconds=0.2) as (feed, url):
        quiet = Reader(f"{url}/events?center={B}").start()
        await eventually(lambda: feed.client_count == 1)
        await produce(kafka.bootstrap, topic, [envelope(n, A) for n in range(1, 6)])
        await eventually(lambda: quiet.last_event_id == 5)
        await quiet.close()
    assert quiet.events == []
    assert "keep-alive" in quiet.comments


async def test_a_client_that_stops_reading_is_cut_off_and_the_others_get_everything(kafka):
    topic = await new_topic(kafka.bootstrap)
    async with live_feed(kafka.bootstrap, topic, buffer_per_client=50, send_buffer=16384) as (feed, url):
        name = feed.name
        reader = Reader(f"{url}/events").start()
        port = int(url.rsplit(":", 1)[1])
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # a tiny window: it fills at once
        stuck.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(stuck, ("127.0.0.1", port))
        await loop.sock_sendall(stuck, b"GET /events HTTP/1.1\r\nHost: test\r\n\r\n")  # and never reads
        await eventually(lambda: feed.client_count == 2)
        try:
            await produce(kafka.bootstrap, topic, [envelope(n, A, pad=4000) for n in range(1, 301)], pause=0.001)
            await eventually(lambda: len(reader.events) == 300, within=20)
            await eventually(lambda: feed.client_count == 1)
            await asyncio.sleep(0.2)
        finally:
            stuck.close()
            await reader.close()
    assert metric("hall_feed_disconnects_total", feed=name, reason="overflow") == 1
    assert reader.sequences == list(range(1, 301))
    assert not reader.ended


async def test_events_re_sent_after_the_broker_restarts_empty_are_shown_once(kafka):
    # 4 partitions, what Tansu gives a topic it auto-creates (any metadata request for a missing topic
    # creates it): so the partitions are the same after the restart whoever creates the topic first,
    # and only the cluster id tells the feed that the log is a new one
    topic = await new_topic(kafka.bootstrap, partitions=4)
    old_cluster = kafka.cluster_id
    envelopes = [envelope(n, A if n % 2 else B) for n in range(1, 36)]
    async with live_feed(kafka.bootstrap, topic, cluster_check_seconds=0.2) as (feed, url):
        reader = Reader(f"{url}/events").start()
        await eventually(lambda: feed.client_count == 1)
        await produce(kafka.bootstrap, topic, envelopes[:30])
        await eventually(lambda: len(reader.events) == 30)
        duplicates = metric("hall_feed_events_total", feed=feed.name, outcome="duplicate")
        # the feed fetches nothing until the new log is longer than its old positions: had it been
        # fetching, Kafka's offset-out-of-range reset would hide a feed that never re-seeks
        consumer = feed._consumer
        consumer.pause(*consumer.assignment())

        kafka.restart()  # memory-only: topics, messages, offsets gone; a new cluster id
        admin = new_admin(kafka.bootstrap)
        await admin.start()
        try:
            await ensure_topics(admin, [Topic(topic, "queue", 4, "center")])
        finally:
            await admin.close()
        # the relay re-sends every retained event (same ids, same sequences), then the new ones
        await produce(kafka.bootstrap, topic, envelopes)
        consumer.resume(*consumer.assignment())
        await eventually(lambda: feed.cluster_id == kafka.cluster_id, within=15)
        await eventually(lambda: len(reader.events) >= 35, within=15)
        await asyncio.sleep(0.5)
        await reader.close()
        # 30 when the feed notices the new cluster id before it fetches again; 35 when a fetch from its old
        # positions came first (that reads the 5 new events, which the re-read from the start then drops too).
        # Either way each re-sent event was dropped and the reader saw every event once (below).
        assert metric("hall_feed_events_total", feed=feed.name, outcome="duplicate") - duplicates in (30, 35)
    assert kafka.cluster_id != old_cluster
    assert reader.sequences == list(range(1, 36))
    assert [data["id"] for _, _, data in reader.events] == [str(e.id) for e in envelopes]


# --- the ordering log, without a broker (pure logic) ---------------------------------------------


def request(query: str = "", last_event_id: int | None = None) -> Request:
    headers = [(b"last-event-id", str(last_event_id).encode())] if last_event_id is not None else []
    return Request({"type": "http", "method": "GET", "path": "/events", "query_string": query.encode(),
                    "headers": headers})


async def test_gaps_wait_for_the_reorder_window_and_late_events_do_not_move_cursors():
    feed = Feed("unused:9092", "unused", name=f"unit-{uuid.uuid4().hex[:6]}", reorder_window=0.2,
                ready_timeout=0)
    live = await feed.stream(request())
    client = live.client
    assert feed.ingest(envelope(1, A)) == "pending"
    assert feed.ingest(envelope(3, A)) == "pending"
    assert feed.release() == 1  # 3 waits: 2 may still come
    assert feed.ingest(envelope(1, A)) == "duplicate"
    await asyncio.sleep(0.25)
    assert feed.release() == 1 and feed.released == 3  # 2 never came in time: 3 goes out
    assert feed.ingest(envelope(2, A)) == "late"  # sent, but without an id line
    frames = [client.queue.get_nowait() for _ in range(client.queue.qsize())]
    assert [seq for seq, _ in frames] == [1, 3, None]
    assert b"\nid: " not in frames[2][1] and b'"sequence":2' in frames[2][1]
    assert client.cursor == 3
    feed._disconnect(client, "client")


async def test_a_client_resuming_from_before_the_retained_log_is_told_of_the_gap():
    feed = Feed("unused:9092", "unused", name=f"unit-{uuid.uuid4().hex[:6]}", max_events=5,
                retention=timedelta(hours=1))
    for n in range(1, 11):
        feed.ingest(envelope(n, A if n % 2 else B))
    feed.release()
    behind = await feed.stream(request(f"center={A}", last_event_id=2))
    within = await feed.stream(request(f"center={A}", last_event_id=7))
    assert GAP_EVENT.encode() in behind.preamble[1]
    assert [b"id: %d\n" % n in frame for n, frame in zip((7, 9), behind.preamble[2:], strict=True)] == [True, True]
    assert len(within.preamble) == 2 and b"id: 9\n" in within.preamble[1]  # 9 only; no gap notice
    await feed.stop()
