"""The hall display's live feed end to end: the queue app on a real uvicorn, its outbox relayed to the
embedded broker, a display reading `GET /feeds/display` as server-sent events. Each call and recall
arrives with its announcement, an issued ticket never does, and a display that reconnects with its last
event id gets every call it missed, once. The last test shows the board's event id losing a call that
commits while a screen starts (expected to fail until the board's cursor is fixed)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.queue import tickets as ticket_rules
from services.queue.feeds import DISPLAY_EVENTS
from services.queue.main import create_app
from shared import clock
from shared.auth import Principal, Role
from shared.db import make_engine, make_sessionmaker
from shared.events.kafka import ensure_topics, new_admin
from shared.events.topics import Topic, topic_for
from shared.settings import HallSettings
from tests.conftest import ServiceDatabase, service_settings
from tests.events.relay_proc import fast_relay
from tests.events.test_feeds import Reader, eventually
from tests.events.test_outbox_relay import running
from tests.queue.builders import A
from tests.queue.test_ticket_actions import call, signed_in
from tests.queue.test_tickets import hall, issue

pytestmark = pytest.mark.kafka

TOPIC = topic_for("queue")
CLERK = "u-1"
PHONE = "13812345678"


async def topic_envelopes(bootstrap: str, topic: Topic, within: float = 10.0) -> list[dict[str, Any]]:
    """Every envelope on the topic now, read up to the end offsets of its partitions."""
    admin = new_admin(bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic.name])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic.name, p["partition"]) for t in described if t["topic"] == topic.name
                  for p in t["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    envelopes: list[dict[str, Any]] = []
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        deadline = clock.monotonic() + within
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            assert clock.monotonic() < deadline, f"could not read {topic.name} to its end"
            for records in (await consumer.getmany(timeout_ms=100)).values():
                envelopes.extend(json.loads(r.value) for r in records)
    finally:
        await consumer.stop()
    return envelopes


async def outbox_continues_the_topic(db: ServiceDatabase, bootstrap: str) -> None:
    """Earlier tests emptied the outbox (its sequence restarted at 1) but left their events on the shared
    broker's topic; a feed drops every sequence it already holds, so this outbox goes on above them, as a
    queue service that never lost its database would."""
    highest = max((e["sequence"] for e in await topic_envelopes(bootstrap, TOPIC)), default=0)
    if highest:
        await db.fetch("SELECT setval(pg_get_serial_sequence('outbox', 'sequence'), $1)", highest)


@asynccontextmanager
async def display_hall(service_databases, kafka, fixed_clock) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """The queue app on a real uvicorn (ASGITransport would buffer the stream), its feed reading the test
    broker, and the outbox relay running on its database; yields a client of it and the database."""
    admin = new_admin(kafka.bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin, [TOPIC])
    finally:
        await admin.close()
    db = service_databases("queue")
    await db.reset()
    await outbox_continues_the_topic(db, kafka.bootstrap)
    settings = service_settings("queue", db, hall=HallSettings(kafka_bootstrap=kafka.bootstrap))
    app = create_app(settings, clock=fixed_clock)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    await eventually(lambda: server.started or serving.done())
    assert not serving.done(), "uvicorn did not start"
    try:
        async with running(fast_relay(db.url, kafka.bootstrap, TOPIC)), \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            client.pii = app.state.pii  # type: ignore[attr-defined]  # for the rules called in-process
            yield client, db
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)


async def seed_clerk(db: ServiceDatabase, now: Any) -> None:
    """The clerk in the queue's read copy of users, as user.upserted leaves them (岗位公示)."""
    await db.fetch(
        "INSERT INTO staff (id, display_name, post_title, photo_url, role, centers, department, active, "
        "updated_at, last_event_sequence) VALUES ($1, '王芳', '户籍窗口受理员', 'https://hall.example/u-1.jpg', "
        "'clerk', $2, 'D01', true, $3, 1)", CLERK, [A], now)


def feed_url(client: httpx.AsyncClient) -> str:
    return str(client.base_url.join(f"/feeds/display?center={A}"))


def display(tokens: Any, last_event_id: int | None = None) -> dict[str, str]:
    headers = tokens.headers("display", [A], device="screen-1")
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    return headers


def calls(reader: Reader) -> list[tuple[str, str, str]]:
    return [(kind, data["data"]["ticket"]["number"], data["data"]["call"]["announcement"])
            for kind, _, data in reader.events if kind in ("ticket.called", "ticket.recalled")]


async def test_the_display_gets_each_call_with_its_announcement_and_never_an_issued_ticket(
        service_databases, kafka, tokens, fixed_clock):
    async with display_hall(service_databases, kafka, fixed_clock) as (client, db):
        await hall(client, tokens)
        await seed_clerk(db, fixed_clock.now())
        screen = Reader(feed_url(client), display(tokens)).start()
        await eventually(lambda: screen.last_event_id is not None)  # the hello frame: connected, live from here
        clerk = await signed_in(client, tokens, "1", CLERK)
        first = await issue(client, tokens, phone=PHONE)
        await issue(client, tokens)
        await call(client, clerk)
        await issue(client, tokens)  # A003 while A001 is at the window: the display must not see it
        recalled = await client.post(f"/tickets/{first['id']}/recall", headers=clerk)
        assert recalled.status_code == 200, recalled.text
        outbox = await db.fetch("SELECT sequence, type, sent_at, envelope FROM outbox ORDER BY sequence")
        last = outbox[-1]["sequence"]
        await eventually(lambda: screen.last_event_id == last)  # the recall, the highest sequence, arrived
        await screen.close()
        on_topic = await topic_envelopes(kafka.bootstrap, TOPIC)

    kinds = [kind for kind, _, _ in screen.events]
    assert kinds == ["window.signed_in", "queue.waiting_counts", "queue.waiting_counts", "ticket.called",
                     "queue.waiting_counts", "queue.waiting_counts", "ticket.recalled"]
    by_kind = {kind: data["data"] for kind, _, data in screen.events}
    assert by_kind["window.signed_in"]["post"] == "A"
    assert by_kind["window.signed_in"]["clerk"] == {"id": CLERK, "display_name": "王芳", "post_title": "户籍窗口受理员",
                                                    "photo_url": "https://hall.example/u-1.jpg"}
    assert calls(screen) == [("ticket.called", "A001", "请A001号到1号窗口办理"),
                             ("ticket.recalled", "A001", "请A001号到1号窗口办理")]
    assert by_kind["ticket.called"]["call"]["clerk"]["display_name"] == "王芳"
    assert [data["data"]["waiting"]["HJ"] for kind, _, data in screen.events if kind == "queue.waiting_counts"] == [
        1, 2, 1, 2]  # absolute counts: issued, issued, called, issued
    sequences = [frame_id for _, frame_id, _ in screen.events]
    assert sequences == sorted(sequences) and all(frame_id == data["sequence"] for _, frame_id, data in screen.events)
    assert "phone" not in json.dumps([data for _, _, data in screen.events])
    # the relay did send the issued tickets: the feed's filter dropped them, not the relay
    issued = [json.loads(r["envelope"])["id"] for r in outbox if r["type"] == "ticket.issued"]
    assert len(issued) == 3 and all(r["sent_at"] is not None for r in outbox)
    assert set(issued) <= {e["id"] for e in on_topic}


async def test_a_display_reconnecting_with_its_last_event_id_misses_no_call_and_gets_none_twice(
        service_databases, kafka, tokens, fixed_clock):
    async with display_hall(service_databases, kafka, fixed_clock) as (client, db):
        await hall(client, tokens)
        clerk = await signed_in(client, tokens, "1", CLERK)
        for _ in range(6):
            await issue(client, tokens)  # A001..A006

        async def call_and_skip() -> str:
            ticket = await call(client, clerk)
            skipped = await client.post(f"/tickets/{ticket['id']}/skip", headers=clerk)  # 过号: the window is free
            assert skipped.status_code == 200, skipped.text
            return ticket["number"]

        board = await client.get(f"/centers/{A}/display", headers=display(tokens))
        assert board.status_code == 200, board.text
        start = board.json()["last_event_id"]
        first = Reader(feed_url(client), display(tokens, start)).start()
        await eventually(lambda: "queue-display" in first.comments)  # connected: the stream's hello
        before = [await call_and_skip() for _ in range(2)]
        await eventually(lambda: [n for _, n, _ in calls(first)] == before)
        await first.close()  # the screen loses its connection
        resume_from = first.last_event_id
        assert resume_from is not None
        missed = [await call_and_skip() for _ in range(3)]  # called while it is away
        again = Reader(feed_url(client), display(tokens, resume_from)).start()
        await eventually(lambda: [n for _, n, _ in calls(again)] == missed)
        live = await call_and_skip()
        await eventually(lambda: [n for _, n, _ in calls(again)] == [*missed, live])
        outbox = await db.fetch("SELECT sequence, type FROM outbox WHERE sequence > $1 ORDER BY sequence", start)
        await eventually(lambda: again.last_event_id == max(
            r["sequence"] for r in outbox if r["type"] in DISPLAY_EVENTS))
        await again.close()

    assert before == ["A001", "A002"] and missed == ["A003", "A004", "A005"] and live == "A006"
    assert calls(first) + calls(again) == [("ticket.called", f"A00{n}", f"请A00{n}号到1号窗口办理")
                                           for n in range(1, 7)]
    received = [frame_id for _, frame_id, _ in first.events + again.events]
    assert all(frame_id is not None and frame_id > start for frame_id in received)  # nothing the board showed
    assert received == [r["sequence"] for r in outbox if r["type"] in DISPLAY_EVENTS]  # every one, once, in order
    assert max(frame_id for _, frame_id, _ in first.events) == resume_from


async def test_a_screen_starting_from_the_board_while_a_call_commits_misses_nothing(
        service_databases, kafka, tokens, fixed_clock):
    async with display_hall(service_databases, kafka, fixed_clock) as (client, db):
        await hall(client, tokens, {"1": {"HJ": 1}, "2": {"HJ": 1}})
        await signed_in(client, tokens, "1", CLERK)
        await issue(client, tokens)  # A001
        engine = make_engine(db.url, application_name="test-window-1")
        try:
            async with make_sessionmaker(engine)() as calling, calling.begin():
                # window 1 calls A001: its events have their sequences, its commit is still to come
                clerk = Principal(subject=CLERK, role=Role.CLERK, centers=(A,), window="1", department="D01",
                                  device="term-1")
                assert (await ticket_rules.call_next(calling, A, "1", clerk, client.pii)) is not None
                other = await signed_in(client, tokens, "2")  # meanwhile window 2 signs in: a higher sequence
                # a screen starts now and reads the board (a board that waits for the call's commit is right too)
                reading = asyncio.create_task(client.get(f"/centers/{A}/display", headers=display(tokens)))
                await asyncio.wait({reading}, timeout=0.5)
            board = await reading
            assert board.status_code == 200, board.text
        finally:
            await engine.dispose()
        start = board.json()["last_event_id"]
        screen = Reader(feed_url(client), display(tokens, start)).start()  # the screen starts from the board
        await eventually(lambda: "queue-display" in screen.comments)
        signed_out = await client.post(f"/centers/{A}/windows/2/sign-out", headers=other)
        assert signed_out.status_code == 200, signed_out.text
        await eventually(lambda: "window.signed_out" in [kind for kind, _, _ in screen.events])
        await screen.close()

    shown = [w["current"]["number"] for w in board.json()["windows"] if w["current"]]
    assert shown + [n for _, n, _ in calls(screen)] == ["A001"]  # on the board or through the feed, once


async def test_the_display_receives_notice_changes_and_away_messages(service_databases, kafka, tokens, fixed_clock):
    async with display_hall(service_databases, kafka, fixed_clock) as (client, db):
        await hall(client, tokens)
        screen = Reader(feed_url(client), display(tokens)).start()
        await eventually(lambda: screen.last_event_id is not None)
        manager = tokens.headers("hall_manager", [A])
        r = await client.post(f"/centers/{A}/notices", headers=manager, json={"text": "今日14:00系统升级"})
        assert r.status_code == 201, r.text
        clerk = await signed_in(client, tokens, "1", CLERK)
        r = await client.post(f"/centers/{A}/windows/1/away", headers=clerk, json={"message": "3分钟内返回"})
        assert r.status_code == 200, r.text
        r = await client.patch(f"/centers/{A}/notices/1", headers=manager, json={"text": "今日15:00系统升级"})
        assert r.status_code == 200, r.text
        await eventually(lambda: [k for k, _, _ in screen.events].count("center.notices_changed") == 2)
        await screen.close()

    kinds = [kind for kind, _, _ in screen.events]
    assert kinds == ["center.notices_changed", "window.signed_in", "window.away", "center.notices_changed"]
    areas = [data["data"]["notices"] for kind, _, data in screen.events if kind == "center.notices_changed"]
    assert [[n["text"] for n in area] for area in areas] == [["今日14:00系统升级"], ["今日15:00系统升级"]]
    away = next(data["data"] for kind, _, data in screen.events if kind == "window.away")
    assert (away["window"], away["message"]) == ("1", "3分钟内返回")
