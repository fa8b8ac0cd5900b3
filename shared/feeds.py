"""Live feeds: server-sent events of one Kafka topic that any replica serves to any client, resumable by
the producer's outbox sequence (DOMAIN.md: hall display, supervision alerts, notification feeds).

How it works, and why:

- Every replica reads every partition of the topic itself (a consumer with no group, `assign()`ed to
  all partitions, from the beginning), so whichever replica a client lands on has the whole stream.
- The SSE `id:` is the envelope's `sequence` (the producing service's outbox sequence), never a Kafka
  offset: the relay re-sends retained events after a broker restart with the same sequence, and the
  feed drops every sequence it already holds. A topic has one producer (shared.events.topics), so the
  sequence orders the whole topic.
- Delivery is in sequence order and the cursor means "everything up to here": an event is released to
  clients once every lower sequence has arrived, or once it has waited `reorder_window` for a gap to
  fill (events of different keys travel in different partitions, and outbox transactions commit out of
  sequence order; a sequence lost to a rolled-back transaction never comes, hence the time limit).
  So `Last-Event-ID: n` is a complete cursor: a reconnecting client is sent exactly the retained events
  with sequence > n that match its filter, in order, and nothing twice.
- An event that arrives after a higher sequence was released (later than `reorder_window`) is still
  sent to the connected clients it matches, but without an `id:` line, so their cursor does not move
  back (a cursor moved back would replay events on reconnect). It is the one case a client that is
  disconnected at that moment can miss: the window trades latency on gaps against that risk.
- Released events stay in an in-memory log bounded by `max_events` and `retention` (by `occurred_at`
  and the shared clock) to serve resumption. A client resuming from before the oldest retained event
  first gets an `event: feed.gap` frame (no id) telling it to reload state another way.
- A client that matches nothing for a while still moves its cursor: the keep-alive comment then carries
  an `id:` line (a frame with no data dispatches no event, but sets the browser's last event id).
- Each client has a bounded queue; a client that lets it overflow is disconnected (reason "overflow")
  and resumes with its Last-Event-ID; no event is ever skipped for it, and other clients are unaffected.
- The feed watches the broker's cluster id; a new id (a memory-only broker restarted empty) means
  offsets restarted at 0 in a new log: the feed re-reads the topic from the beginning.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Annotated, Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import APIRouter, Depends, Header, Request
from prometheus_client import Counter, Gauge
from pydantic import ValidationError
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from shared import clock
from shared.events.envelope import Envelope
from shared.events.kafka import cluster_id, new_admin

log = logging.getLogger("shared.feeds")

FEED_CLIENTS = Gauge("hall_feed_clients", "Clients connected to a live feed", ["feed"])
FEED_DISCONNECTS = Counter("hall_feed_disconnects_total", "Feed clients that went away, by reason",
                           ["feed", "reason"])
FEED_EVENTS = Counter("hall_feed_events_total", "Events a feed read from Kafka, by what became of them",
                      ["feed", "outcome"])

EventFilter = Callable[[Request, Envelope], bool]
"""Decides per client (its request: query, auth state) and per event whether the client gets it, from the
envelope's header: type, centre, subject, producer, times. Its `data` is empty here: the log keeps each
event's frame, and not the parsed payload as well (thousands of small objects a full garbage collection
would scan while every request waits)."""

GAP_EVENT = "feed.gap"


def by_query(request: Request, envelope: Envelope) -> bool:
    """The default filter: `?center=<centre id>` and `?type=<event type or prefix.*>`, each repeatable;
    an absent parameter matches everything."""
    centers = request.query_params.getlist("center")
    if centers and envelope.center_id not in centers:
        return False
    types = request.query_params.getlist("type")
    if types and not any(envelope.type == t or (t.endswith(".*") and envelope.type.startswith(t[:-1]))
                         for t in types):
        return False
    return True


@dataclass(slots=True)
class _Entry:
    envelope: Envelope
    frame: bytes
    arrived: float  # shared.clock.monotonic() when read from Kafka

    @property
    def sequence(self) -> int:
        assert self.envelope.sequence is not None
        return self.envelope.sequence

    def late_frame(self) -> bytes:
        """The frame without its id line (see the module docstring: late events don't move cursors)."""
        return b"\n".join(line for line in self.frame.split(b"\n") if not line.startswith(b"id: "))


@dataclass(eq=False)
class _Client:
    feed: Feed
    request: Request
    matches: EventFilter
    cursor: int  # every sequence <= cursor was sent to this client or did not match its filter
    last_sent_id: int | None
    queue: asyncio.Queue[tuple[int | None, bytes]]
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str | None = None

    def wants(self, envelope: Envelope) -> bool:
        try:
            return self.matches(self.request, envelope)
        except Exception:
            log.exception("feed filter failed", extra={"event": "feed_filter_failed", "feed": self.feed.name})
            return False

    def deliver(self, entry: _Entry) -> None:
        if entry.sequence <= self.cursor:
            return
        self.cursor = entry.sequence
        if self.wants(entry.envelope):
            self._offer(entry.sequence, entry.frame)

    def deliver_late(self, entry: _Entry) -> None:
        if self.wants(entry.envelope):
            self._offer(None, entry.late_frame())

    def _offer(self, sequence: int | None, frame: bytes) -> None:
        if self.reason is not None:
            return
        try:
            self.queue.put_nowait((sequence, frame))
        except asyncio.QueueFull:
            self.feed._disconnect(self, "overflow")


class Feed:
    """A live feed of one topic. Start it in the service's lifespan; mount `router()` (or call `stream()`
    from an endpoint of your own, with your own auth dependencies)::

        display = Feed(settings.hall.kafka_bootstrap, topic_for("queue").name, name="display")

        async def start_display(app: FastAPI, stack: AsyncExitStack) -> None:
            await display.start()
            stack.push_async_callback(display.stop)

        create_service_app(..., routers=[display.router("/display/events", dependencies=[CurrentDevice])],
                           on_startup=[start_display])

    Run the server with a graceful-shutdown timeout (uvicorn `--timeout-graceful-shutdown`): uvicorn
    waits for open streams before it runs the lifespan shutdown that would end them.
    """

    def __init__(self, bootstrap: str, topic: str, *, name: str | None = None, buffer_per_client: int = 1000,
                 max_events: int = 10_000, retention: timedelta = timedelta(hours=1),
                 keepalive_seconds: float = 15.0, reorder_window: float = 0.5, retry_ms: int = 2000,
                 cluster_check_seconds: float = 2.0, ready_timeout: float = 5.0,
                 fetch_max_wait_ms: int = 10) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.name = name or topic
        self.buffer_per_client = buffer_per_client
        self.max_events = max_events
        self.retention = retention
        self.keepalive_seconds = keepalive_seconds
        self.reorder_window = reorder_window
        self.retry_ms = retry_ms
        self.cluster_check_seconds = cluster_check_seconds
        self.ready_timeout = ready_timeout
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.ready = asyncio.Event()  # the topic's backlog at start has been read
        self.cluster_id: str | None = None
        # the log: sorted sequences and their entries; sequences <= _released went out to clients
        self._sequences: list[int] = []
        self._entries: dict[int, _Entry] = {}
        self._released = 0
        self._floor = 0  # the highest sequence trimmed from the log
        self._clients: set[_Client] = set()
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._assigned: frozenset[TopicPartition] = frozenset()
        self._backlog: dict[TopicPartition, int] = {}  # end offsets at assignment, until read up to them

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start reading the topic in the background (never blocks on the broker)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"feed:{self.name}")

    async def stop(self) -> None:
        """End every client's stream and stop reading."""
        for client in list(self._clients):
            self._disconnect(client, "shutdown")
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self._close_kafka()

    async def __aenter__(self) -> Feed:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def released(self) -> int:
        """The highest sequence released to clients."""
        return self._released

    @property
    def client_count(self) -> int:
        return len(self._clients)

    # --- serving clients ----------------------------------------------------------------------------

    def router(self, path: str = "/events", filter: EventFilter = by_query, *,
               dependencies: Sequence[Any] = (), tags: Sequence[str] = ("feeds",)) -> APIRouter:
        """A router with one GET `path` streaming this feed through `filter`."""
        router = APIRouter(tags=list(tags), dependencies=[d if hasattr(d, "dependency") else Depends(d)
                                                          for d in dependencies])
        feed = self

        @router.get(path, response_class=StreamingResponse, name=f"feed:{self.name}",
                    responses={200: {"content": {"text/event-stream": {}}}})
        async def stream_events(request: Request,
                                last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None
                                ) -> StreamingResponse:
            """Live events as server-sent events; reconnect with Last-Event-ID to resume without loss."""
            return await feed.stream(request, filter)

        return router

    async def stream(self, request: Request, filter: EventFilter = by_query) -> StreamingResponse:
        """The `text/event-stream` response for one client (resuming from its Last-Event-ID, if any)."""
        last = _last_event_id(request)
        if last is None:
            try:
                await asyncio.wait_for(self.ready.wait(), self.ready_timeout)
            except TimeoutError:
                pass  # serve what there is; it is live from here on
        # from here to registration nothing awaits: the replay and the live queue meet exactly at cursor
        cursor = self._released if last is None else max(last, self._released)
        client = _Client(self, request, filter, cursor, last, asyncio.Queue(self.buffer_per_client))
        # a new client is given its cursor at once, so even its first reconnect resumes exactly
        hello = f": {self.name}\nretry: {self.retry_ms}\n" + ("" if last is not None else f"id: {cursor}\n")
        if last is None:
            client.last_sent_id = cursor
        preamble = [f"{hello}\n".encode()]
        if last is not None:
            if last < self._floor:
                oldest = self._sequences[0] if self._sequences else None
                preamble.append(_gap_frame(last, oldest))
            start = bisect.bisect_right(self._sequences, last)
            stop = bisect.bisect_right(self._sequences, self._released)
            preamble.extend(self._entries[s].frame for s in self._sequences[start:stop]
                            if client.wants(self._entries[s].envelope))
        self._clients.add(client)
        FEED_CLIENTS.labels(self.name).inc()
        return _EventStreamResponse(client, preamble)

    def _disconnect(self, client: _Client, reason: str) -> None:
        if client.reason is not None:
            return
        client.reason = reason
        self._clients.discard(client)
        FEED_CLIENTS.labels(self.name).dec()
        FEED_DISCONNECTS.labels(self.name, reason).inc()
        client.closed.set()
        if reason == "overflow":
            log.info("feed client overflowed its buffer", extra={
                "event": "feed_overflow", "feed": self.name, "cursor": client.last_sent_id})

    # --- the log ------------------------------------------------------------------------------------

    def ingest(self, envelope: Envelope) -> str:
        """Take one envelope read from the topic; returns what became of it (the metric's outcome)."""
        seq = envelope.sequence
        if seq is None or "\n" in envelope.type or "\r" in envelope.type:
            outcome = "invalid"
        elif seq <= self._floor or seq in self._entries:
            outcome = "duplicate"  # re-sent (broker restart, re-read) or older than the log
        else:
            entry = _Entry(envelope.model_copy(update={"data": {}}), _frame(envelope), clock.monotonic())
            bisect.insort(self._sequences, seq)
            self._entries[seq] = entry
            if seq <= self._released:
                outcome = "late"
                for client in list(self._clients):
                    client.deliver_late(entry)
            else:
                outcome = "pending"
        FEED_EVENTS.labels(self.name, outcome).inc()
        return outcome

    def release(self) -> int:
        """Send clients every pending event whose turn has come; returns how many were released."""
        now = clock.monotonic()
        released = 0
        i = bisect.bisect_right(self._sequences, self._released)
        while i < len(self._sequences):
            seq = self._sequences[i]
            entry = self._entries[seq]
            if seq != self._released + 1 and now - entry.arrived < self.reorder_window:
                break  # a gap below it may still fill
            self._released = seq
            for client in list(self._clients):
                client.deliver(entry)
            released += 1
            i += 1
        if released:
            FEED_EVENTS.labels(self.name, "released").inc(released)
        self._trim()
        return released

    def _trim(self) -> None:
        horizon = clock.now() - self.retention
        excess = len(self._sequences) - self.max_events
        k = 0
        while k < len(self._sequences) and self._sequences[k] <= self._released:
            occurred = self._entries[self._sequences[k]].envelope.occurred_at
            if occurred.tzinfo is None:
                occurred = occurred.replace(tzinfo=UTC)
            if k >= excess and occurred >= horizon:
                break
            k += 1
        if k:
            for seq in self._sequences[:k]:
                del self._entries[seq]
            self._floor = max(self._floor, self._sequences[k - 1])
            del self._sequences[:k]

    # --- reading Kafka ------------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._open_kafka()
                failures = 0
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                log.warning("feed cannot read the broker; retrying", exc_info=failures == 1, extra={
                    "event": "feed_error", "feed": self.name, "error": repr(exc), "failures": failures})
                await self._close_kafka()
                await asyncio.sleep(min(0.5 * 2 ** (failures - 1), 10.0))

    async def _open_kafka(self) -> None:
        self._admin = new_admin(self.bootstrap)
        await self._admin.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_wait_ms=self.fetch_max_wait_ms,
            client_id=f"feed-{self.name}")
        await self._consumer.start()
        self._assigned = frozenset()

    async def _close_kafka(self) -> None:
        consumer, admin, self._consumer, self._admin = self._consumer, self._admin, None, None
        for closing in (consumer.stop() if consumer else None, admin.close() if admin else None):
            if closing is not None:
                try:
                    await closing
                except Exception:
                    log.debug("closing a Kafka client failed", exc_info=True)

    async def _consume(self) -> None:
        assert self._consumer is not None
        tick_ms = max(int(min(0.05, self.reorder_window / 2) * 1000), 1)
        next_check = 0.0
        while True:
            if clock.monotonic() >= next_check:
                await self._watch_broker()
                next_check = clock.monotonic() + self.cluster_check_seconds
            if not self._assigned:
                await asyncio.sleep(tick_ms / 1000)
            else:
                batch = await self._consumer.getmany(timeout_ms=tick_ms, max_records=1000)
                for tp, records in batch.items():
                    for record in records:
                        self._ingest_record(record.value)
                    if tp in self._backlog and records[-1].offset + 1 >= self._backlog[tp]:
                        del self._backlog[tp]
                if not self._backlog and self._assigned:
                    self.ready.set()
            self.release()

    def _ingest_record(self, value: bytes | None) -> None:
        try:
            envelope = Envelope.model_validate_json(value or b"")
        except ValidationError:
            FEED_EVENTS.labels(self.name, "invalid").inc()
            log.warning("feed skipped a message that is no envelope", extra={"event": "feed_invalid", "feed": self.name})
            return
        self.ingest(envelope)

    async def _watch_broker(self) -> None:
        """Notice a broker restarted empty (new cluster id) and new partitions; (re)assign as needed."""
        assert self._admin is not None and self._consumer is not None
        try:
            current = await cluster_id(self._admin)
            present = self.topic in set(await self._admin.list_topics())
            partitions = await self._partitions() if present else set()
        except Exception as exc:
            log.debug("broker check failed: %s", exc)
            return
        if self.cluster_id is not None and current != self.cluster_id:
            log.warning("broker cluster id changed: re-reading the topic from the beginning", extra={
                "event": "feed_cluster_changed", "feed": self.name, "old": self.cluster_id, "new": current})
            self._assigned = frozenset()  # offsets restarted at 0: everything is read again
        self.cluster_id = current
        wanted = frozenset(TopicPartition(self.topic, p) for p in partitions)
        if not wanted:
            self.ready.set()  # no topic yet, so no backlog: whatever comes is live
            return
        if wanted == self._assigned:
            return
        # every (re)assignment reads from the beginning: what the feed holds already is dropped by sequence
        self._consumer.assign(sorted(wanted))
        for tp in wanted:
            self._consumer.seek(tp, 0)  # below the log start (retention) resets to the earliest offset
        first = not self._assigned and not self.ready.is_set()
        self._assigned = wanted
        if first:
            try:
                ends = await self._consumer.end_offsets(list(wanted))
                self._backlog = {tp: end for tp, end in ends.items() if end > 0}
            except Exception:
                self._backlog = {}
        log.info("feed assigned", extra={"event": "feed_assigned", "feed": self.name, "partitions": len(wanted)})

    async def _partitions(self) -> set[int]:
        assert self._admin is not None
        described = await self._admin.describe_topics([self.topic])
        return {p["partition"] for t in described if t["topic"] == self.topic and not t["error_code"]
                for p in t["partitions"]}


class _EventStreamResponse(StreamingResponse):
    """`text/event-stream` for one feed client: the preamble (hello, gap notice, replay), then its queue
    with keep-alives, until the client goes, overflows or the feed stops."""

    def __init__(self, client: _Client, preamble: list[bytes]) -> None:
        super().__init__(_nothing(), media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.client = client
        self.preamble = preamble

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = self.client
        feed = client.feed
        pump = asyncio.create_task(self._pump(send))
        gone = asyncio.create_task(_disconnected(receive))
        closed = asyncio.create_task(client.closed.wait())
        expiry = asyncio.create_task(_token_expiry(client))
        try:
            done, _ = await asyncio.wait({pump, gone, closed}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            feed._disconnect(client, "shutdown")
            raise
        finally:
            for task in (pump, gone, closed, expiry):
                task.cancel()
            await asyncio.gather(pump, gone, closed, expiry, return_exceptions=True)
        if client.reason is None:
            failed = pump in done and pump.exception() is not None
            feed._disconnect(client, "error" if failed else "client")
            if failed:
                log.warning("feed stream failed", exc_info=pump.exception(), extra={"event": "feed_stream_failed"})
        if gone in done or client.reason in ("client", "error"):
            return
        # overflow or shutdown: end the response; a client that does not read at all cannot take even
        # that, and the server then drops the connection (uvicorn logs the incomplete response)
        try:
            await asyncio.wait_for(send({"type": "http.response.body", "body": b"", "more_body": False}), 1.0)
        except (TimeoutError, OSError):
            pass

    async def _pump(self, send: Send) -> None:
        client = self.client
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        for frame in self.preamble:
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        self.preamble = []
        keepalive = client.feed.keepalive_seconds
        while True:
            try:
                # not wait_for: on 3.11 it can swallow the cancellation of a client that went away
                async with asyncio.timeout(keepalive):
                    sequence, frame = await client.queue.get()
            except TimeoutError:
                # the queue is empty: every sequence <= cursor has been sent or did not match
                if client.last_sent_id is None or client.cursor > client.last_sent_id:
                    frame = b": keep-alive\nid: %d\n\n" % client.cursor
                    client.last_sent_id = client.cursor
                else:
                    frame = b": keep-alive\n\n"
            else:
                if sequence is not None:
                    client.last_sent_id = sequence
            await send({"type": "http.response.body", "body": frame, "more_body": True})


async def _token_expiry(client: _Client) -> None:
    """End the stream when the caller's token expires (wall time, as the token counts it): a browser's
    EventSource then reconnects, and its page gives it a fresh `?access_token=`."""
    principal = getattr(client.request.state, "principal", None)
    exp = principal.claims.get("exp") if principal is not None else None
    if not isinstance(exp, int | float):
        return
    await asyncio.sleep(max(exp - clock.wall_now().timestamp(), 0.0))
    client.feed._disconnect(client, "token_expired")


async def _disconnected(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _nothing() -> Any:
    return
    yield  # an empty async generator: the body is written by _EventStreamResponse.__call__


def _frame(envelope: Envelope) -> bytes:
    return f"event: {envelope.type}\nid: {envelope.sequence}\ndata: {envelope.model_dump_json()}\n\n".encode()


def _gap_frame(after: int, oldest: int | None) -> bytes:
    data = json.dumps({"after": after, "oldest_retained": oldest})
    return f"event: {GAP_EVENT}\ndata: {data}\n\n".encode()


def _last_event_id(request: Request) -> int | None:
    """The resume cursor: the Last-Event-ID header (browsers send it on reconnect) or `?last_event_id=`."""
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    try:
        value = int(raw) if raw else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 else None
