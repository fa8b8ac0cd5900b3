"""End-to-end event latency through the real platform pieces at 200 events/s (target p99 <= 50 ms), and the
consumer's throughput from a backlog.

(a) commit -> consumer: from the moment a producer transaction that called `shared.events.outbox.publish()`
    has committed (its `await session.commit()` returned) to the moment the cases service's idempotent
    consumer (`shared.events.consumer.EventConsumer`, group `cases.centers`, with the cases service's own
    `center.upserted` read-copy handler) has applied it. Two instants are taken: inside the handler, right
    after the read-copy upsert (applied, transaction still open): the figure the target is checked on; and
    once `EventConsumer.apply` has returned APPLIED, i.e. the consumer's transaction (inbox row + read
    copy) has committed: (a').
(b) commit -> feed client: from the same commit to the moment an SSE client (httpx) connected to a
    `shared.feeds.Feed` of `hall.queue.v1`, served by a real uvicorn on a free port, has read the event's
    `data:` line.

The path: queue database (outbox row + NOTIFY hall_outbox at commit) -> `Relay` -> Tansu `hall.queue.v1`
(6 partitions, keyed by centre; 8 centres) -> consumer and feed. Events are `CenterUpserted` published by
producer "queue", one transaction each, on 8 concurrent sessions, on a fixed schedule (open loop: a lane
that falls behind publishes at once to catch up). The consumer writes to a second database, migrated for
"cases": services never share databases.

Layouts (`--layout`):
- `processes` (default, as deployed): the producer and the SSE client in this process; the relay (queue
  worker), the consumer (cases worker) and the feed with its uvicorn (an API replica) each in a process
  of their own, started from this file (`--role`). They report their instants on stdout.
- `single`: everything on this process's one event loop, for comparison. The consumer's database round
  trips then queue behind the producer's, relay's and feed's work (each transaction costs ~1.5-2 ms of
  CPU through SQLAlchemy): its apply() took ~11 ms an event here against ~4-5 ms in a process of its own,
  so this layout measures the harness as much as the platform.

Timing: `time.perf_counter()`, which on Linux is CLOCK_MONOTONIC, one clock for every process of the
machine. The commit instant is taken right after `await session.commit()` returns and keyed by event id;
every observation is keyed by event id and joined at the end. Commits return early here: the throw-away
PostgreSQL runs with fsync and synchronous_commit off. The relay reports when the broker acknowledged each
event (its `after_send` hook), which splits the figures into commit -> broker and broker -> consumer/client.

Start-up: one event per centre, until both paths have seen them (topic created by the relay, found by the
consumer's metadata refresh, group joined; feed partitions assigned). Then the stream starts; after a
warm-up (until no event committed more than 1 s ago is still on its way on either path, held for `--warmup`
seconds; at most `--max-warmup`, after which it measures anyway and says so), the events committed during
`--seconds` are measured. It prints counts, p50/p90/p99/max per path and stage, p99/target, whether every
event was applied once and fed once (checked against the inbox and the read copy too), event-loop lateness
per process and the CPU taken (whole machine too: other load on a shared machine shows there).

The consumer applies events in batches (`EventConsumer(apply_batch=...)`, several events per transaction);
`--apply-batch N` sets it for both parts (1: one transaction per event, as before batches), and the report
says which value ran. The consumer's apply of a chunk reports every event of it at the chunk's commit.

Throughput (`--backlog N`, default 20,000; 0 skips it): N `center.upserted` events over 200 centres,
produced straight to a topic of their own (6 partitions, the relay is not what is measured) before the
consumer starts; then the cases centres consumer, in a process of its own on a freshly migrated cases
database, drains them once for each value of `--backlog-batches` (default "1,<apply_batch>": before and
after batches, side by side on the same machine load). Printed: events applied per second from its first
applied event to its last, the time to drain, and whether every event was applied once and every read
copy row ended at its centre's latest event.

Run: ``uv run python bench/events_latency.py [--rate 200] [--seconds 15] [--layout processes|single]
[--consumer-fetch-wait-ms N] [--apply-batch N] [--backlog 20000] [--backlog-batches 1,100]``. It starts its own PostgreSQL (var/bench-latency-pg-<pid>, destroyed at the
end) and broker on free ports. Exit code 0 when both p99s meet the target and delivery was exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import json
import logging
import os
import signal
import socket
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# `uv run python bench/events_latency.py` puts bench/ on sys.path, not the repo root.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import uvicorn  # noqa: E402
from aiokafka import AIOKafkaProducer, ConsumerRecord  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker  # noqa: E402

from services.cases.consumers import CONSUMERS as CASES_CONSUMERS  # noqa: E402
from shared.db import asyncpg_dsn, ensure_database, make_engine, make_sessionmaker  # noqa: E402
from shared.devinfra.kafka import EmbeddedKafka  # noqa: E402
from shared.devinfra.postgres import EmbeddedPostgres, free_port  # noqa: E402
from shared.events.catalog import CenterUpserted  # noqa: E402
from shared.events.consumer import APPLY_BATCH, ConsumerSpec, EventConsumer, Handler, Outcome  # noqa: E402
from shared.events.envelope import Envelope  # noqa: E402
from shared.events.kafka import ensure_topics, new_admin  # noqa: E402
from shared.events.outbox import publish  # noqa: E402
from shared.events.relay import Relay  # noqa: E402
from shared.events.topics import Topic, topic_for  # noqa: E402
from shared.feeds import Feed  # noqa: E402
from shared.migrate import upgrade  # noqa: E402

TARGET_P99_MS = 50.0
PRODUCER = "queue"
TOPIC = topic_for(PRODUCER)  # hall.queue.v1, 6 partitions, keyed by centre
CENTRES = {
    "320102": "玄武区政务服务中心", "320104": "秦淮区政务服务中心", "320105": "建邺区政务服务中心",
    "320106": "鼓楼区政务服务中心", "320111": "浦口区政务服务中心", "320113": "栖霞区政务服务中心",
    "320114": "雨花台区政务服务中心", "320115": "江宁区政务服务中心",
}
CENTRE_IDS = list(CENTRES)
CAUGHT_UP_S = 1.0  # warm-up: caught up when every event committed this long ago was applied and fed
SCRIPT = str(Path(__file__).resolve())


# --- where the instants go ----------------------------------------------------------------------------------

class Sink(Protocol):
    """What the relay, consumer and feed report: the Timeline itself (one process) or stdout lines."""

    def ack(self, at: float, sequences: list[int]) -> None: ...
    def handled(self, event_id: str, at: float) -> None: ...
    def applied(self, event_id: str, outcome: str, at: float, seconds: float) -> None: ...
    def partition(self, partition: int) -> None: ...
    def lag(self, source: str, at: float, late: float) -> None: ...
    def gc(self, source: str, at: float, seconds: float) -> None: ...


class LineSink:
    """A child process's reports, one line each on stdout, parsed by `Timeline.dispatch` in the parent."""

    def _write(self, *parts: object) -> None:
        sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
        sys.stdout.flush()

    def ack(self, at: float, sequences: list[int]) -> None:
        self._write("ack", repr(at), ",".join(map(str, sequences)))

    def handled(self, event_id: str, at: float) -> None:
        self._write("handled", event_id, repr(at))

    def applied(self, event_id: str, outcome: str, at: float, seconds: float) -> None:
        self._write("applied", event_id, outcome, repr(at), repr(seconds))

    def partition(self, partition: int) -> None:
        self._write("partition", partition)

    def lag(self, source: str, at: float, late: float) -> None:
        self._write("lag", repr(at), repr(late))

    def gc(self, source: str, at: float, seconds: float) -> None:
        self._write("gc", repr(at), repr(seconds))

    def port(self, port: int) -> None:
        self._write("port", port)


@dataclass
class Timeline:
    """perf_counter() instants keyed by event id (str), from the producer, relay, consumer and SSE client."""

    phase: str = "warmup"  # warmup -> measure -> drain
    window: tuple[float, float] = (0.0, 0.0)  # the measured phase
    committed: dict[str, float] = field(default_factory=dict)
    commit_rtt: dict[str, float] = field(default_factory=dict)  # commit() call to its return
    phase_of: dict[str, str] = field(default_factory=dict)
    sequence_of: dict[str, int] = field(default_factory=dict)
    last_name: dict[str, tuple[int, str]] = field(default_factory=dict)  # centre -> (sequence, name)
    acked_by_sequence: dict[int, float] = field(default_factory=dict)
    handler: dict[str, float] = field(default_factory=dict)  # first handler run
    handler_runs: collections.Counter[str] = field(default_factory=collections.Counter)
    applied_at: dict[str, float] = field(default_factory=dict)  # consumer transaction committed
    applied_count: collections.Counter[str] = field(default_factory=collections.Counter)
    apply_seconds: list[tuple[float, float]] = field(default_factory=list)  # (at, seconds)
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    partitions: set[int] = field(default_factory=set)
    fed: dict[str, float] = field(default_factory=dict)
    fed_count: collections.Counter[str] = field(default_factory=collections.Counter)
    fed_sequences: list[int] = field(default_factory=list)
    behind: dict[str, float] = field(default_factory=dict)  # path -> latency of its latest observation
    lags: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: collections.defaultdict(list))
    gcs: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: collections.defaultdict(list))
    order: list[str] = field(default_factory=list)  # event ids in commit order
    settled: int = 0  # order[:settled] were applied and fed

    # Sink
    def ack(self, at: float, sequences: list[int]) -> None:
        for sequence in sequences:
            self.acked_by_sequence.setdefault(sequence, at)

    def handled(self, event_id: str, at: float) -> None:
        self.handler.setdefault(event_id, at)
        self.handler_runs[event_id] += 1

    def applied(self, event_id: str, outcome: str, at: float, seconds: float) -> None:
        self.outcomes[outcome] += 1
        self.apply_seconds.append((at, seconds))
        if outcome == Outcome.APPLIED.value:
            self.applied_at.setdefault(event_id, at)
            self.applied_count[event_id] += 1
            self._observe("consumer", event_id, at)

    def partition(self, partition: int) -> None:
        self.partitions.add(partition)

    def lag(self, source: str, at: float, late: float) -> None:
        self.lags[source].append((at, late))

    def gc(self, source: str, at: float, seconds: float) -> None:
        self.gcs[source].append((at, seconds))

    # the rest
    def received(self, event_id: str, sequence: int, at: float) -> None:
        self.fed.setdefault(event_id, at)
        self.fed_count[event_id] += 1
        self.fed_sequences.append(sequence)
        self._observe("feed", event_id, at)

    def _observe(self, path: str, event_id: str, at: float) -> None:
        committed = self.committed.get(event_id)
        if committed is not None:
            self.behind[path] = at - committed

    def dispatch(self, source: str, line: str) -> None:
        kind, *rest = line.split()
        if kind == "ack":
            self.ack(float(rest[0]), [int(s) for s in rest[1].split(",")])
        elif kind == "handled":
            self.handled(rest[0], float(rest[1]))
        elif kind == "applied":
            self.applied(rest[0], rest[1], float(rest[2]), float(rest[3]))
        elif kind == "partition":
            self.partition(int(rest[0]))
        elif kind == "lag":
            self.lag(source, float(rest[0]), float(rest[1]))
        elif kind == "gc":
            self.gc(source, float(rest[0]), float(rest[1]))

    def commit(self, event_id: str, at: float) -> None:
        self.committed[event_id] = at
        self.order.append(event_id)

    def backlog(self, committed_before: float) -> bool:
        """Whether an event committed before the given instant has not reached both paths yet."""
        while self.settled < len(self.order) and self.order[self.settled] in self.applied_at \
                and self.order[self.settled] in self.fed:
            self.settled += 1
        return self.settled < len(self.order) and self.committed[self.order[self.settled]] < committed_before

    def ids(self, phase: str) -> list[str]:
        return [event_id for event_id, p in self.phase_of.items() if p == phase]

    def in_window(self, samples: list[tuple[float, float]]) -> list[float]:
        start, end = self.window
        return [value for at, value in samples if start <= at <= end]


async def watch_loop(sink: Sink, source: str, stop: asyncio.Event, tick: float = 0.02) -> None:
    """How late this process's event loop wakes a 20 ms sleep (what the loop's other work costs everyone),
    and how long its full (generation 2) garbage collections stop it."""
    full_collections: list[tuple[float, float]] = []
    began: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            began[:] = [time.perf_counter()]
        elif began:
            now = time.perf_counter()
            full_collections.append((now, now - began[0]))

    gc.callbacks.append(on_gc)
    try:
        while not stop.is_set():
            asked = time.perf_counter()
            await asyncio.sleep(tick)
            now = time.perf_counter()
            sink.lag(source, now, now - asked - tick)
            while full_collections:
                sink.gc(source, *full_collections.pop(0))
    finally:
        gc.callbacks.remove(on_gc)


# --- the components ---------------------------------------------------------------------------------------

async def produce(maker: async_sessionmaker[AsyncSession], rate: float, tl: Timeline, stop: asyncio.Event,
                  lanes: int = 8) -> int:
    """Publish `rate` events/s, one transaction each, on `lanes` sessions; returns how many committed."""
    start = time.perf_counter()

    async def lane(index: int) -> int:
        n, done = index, 0
        while not stop.is_set():
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
                if stop.is_set():
                    break
            centre = CENTRE_IDS[n % len(CENTRE_IDS)]
            name = f"{CENTRES[centre]} #{n}"
            async with maker() as session:  # as a request's unit of work: publish, then commit
                envelope = await publish(session, PRODUCER, CenterUpserted(id=centre, name=name, address=None),
                                         subject=centre, center_id=centre)
                asked = time.perf_counter()
                await session.commit()
                committed = time.perf_counter()
            assert envelope.sequence is not None
            event_id = str(envelope.id)
            tl.commit(event_id, committed)
            tl.commit_rtt[event_id] = committed - asked
            tl.phase_of[event_id] = tl.phase
            tl.sequence_of[event_id] = envelope.sequence
            if envelope.sequence > tl.last_name.get(centre, (0, ""))[0]:
                tl.last_name[centre] = (envelope.sequence, name)
            n += lanes
            done += 1
        return done

    return sum(await asyncio.gather(*(lane(i) for i in range(lanes))))


async def run_relay(database_url: str, bootstrap: str, sink: Sink, stop: asyncio.Event) -> None:
    """The queue service's relay, with the platform's defaults; reports each broker acknowledgement."""

    def acknowledged(sequences: list[int]) -> None:
        sink.ack(time.perf_counter(), sequences)

    await Relay(database_url, bootstrap, PRODUCER, after_send=acknowledged).run(stop)


class TimedConsumer(EventConsumer):
    """The platform's consumer, unchanged, reporting when apply() returned (its transaction committed)."""

    def __init__(self, sink: Sink, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sink = sink
        self.seen_partitions: set[int] = set()

    async def handle(self, record: ConsumerRecord) -> Outcome:
        if record.partition not in self.seen_partitions:
            self.seen_partitions.add(record.partition)
            self.sink.partition(record.partition)
        return await super().handle(record)

    async def apply(self, key: str, envelope: Envelope) -> Outcome:
        began = time.perf_counter()
        outcome = await super().apply(key, envelope)
        now = time.perf_counter()
        self.sink.applied(str(envelope.id), outcome.value, now, now - began)
        return outcome

    async def apply_chunk(self, events: Sequence[tuple[str, Envelope]]) -> list[Outcome]:
        """Several events in one transaction: each reported at the chunk's commit, with the chunk's time."""
        began = time.perf_counter()
        outcomes = await super().apply_chunk(events)
        now = time.perf_counter()
        for (_, envelope), outcome in zip(events, outcomes, strict=True):
            self.sink.applied(str(envelope.id), outcome.value, now, now - began)
        return outcomes


def centre_spec() -> ConsumerSpec:
    """The cases service's own consumer of `center.upserted` (its read copy of centres), as its worker runs it."""
    for spec in CASES_CONSUMERS:
        if "center.upserted" in spec.handlers:
            return spec
    raise LookupError("services.cases.consumers declares no center.upserted consumer")


async def run_consumer(database_url: str, bootstrap: str, fetch_wait_ms: int | None, sink: Sink,
                       stop: asyncio.Event, *, apply_batch: int | None = None, topic: str | None = None,
                       name: str | None = None, report_handled: bool = True) -> None:
    """The cases centres consumer; `topic` and `name` (its group) replace the spec's for the backlog."""
    spec = centre_spec()
    if list(spec.topics) != [TOPIC.name]:
        raise RuntimeError(f"the cases centres consumer reads {spec.topics}, not {TOPIC.name}")
    real: Handler = spec.handlers["center.upserted"]

    async def handler(session: AsyncSession, envelope: Envelope) -> None:
        await real(session, envelope)
        if report_handled:
            sink.handled(str(envelope.id), time.perf_counter())

    engine = make_engine(database_url, pool_size=4, application_name="bench-cases-worker")
    options: dict[str, Any] = {}
    if fetch_wait_ms is not None:
        options["kafka_options"] = {"fetch_max_wait_ms": fetch_wait_ms}
    if apply_batch is not None:
        options["apply_batch"] = apply_batch
    consumer = TimedConsumer(sink, name or spec.name, bootstrap, [topic or TOPIC.name],
                             {"center.upserted": handler}, make_sessionmaker(engine), service="cases", **options)
    try:
        await consumer.run(stop)
    finally:
        await engine.dispose()


async def run_feed(bootstrap: str, on_port: Callable[[int], None], stop: asyncio.Event) -> None:
    """A Feed of the queue topic on a real uvicorn (free port), as an API replica serves the hall display."""
    feed = Feed(bootstrap, TOPIC.name, name="bench-display")
    await feed.start()
    server: uvicorn.Server | None = None
    serving: asyncio.Task[None] | None = None
    try:
        app = FastAPI()
        app.include_router(feed.router("/events"))
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                               timeout_graceful_shutdown=1))
        serving = asyncio.create_task(server.serve(sockets=[listener]), name="uvicorn")
        for _ in range(1000):
            if server.started or serving.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            raise RuntimeError("uvicorn did not start")
        on_port(port)
        await stop.wait()
    finally:
        await feed.stop()  # ends the streams, so uvicorn's graceful shutdown has nothing to wait for
        if server is not None and serving is not None:
            server.should_exit = True
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(serving, 5)


async def read_feed(url: str, tl: Timeline, connected: asyncio.Event) -> None:
    """The SSE client: notes when each event's `data:` line has been read."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as http, \
            http.stream("GET", url) as response:
        response.raise_for_status()
        connected.set()
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                now = time.perf_counter()
                envelope = json.loads(line[6:])
                tl.received(envelope["id"], envelope["sequence"], now)


# --- a component in a child process ---------------------------------------------------------------------------

async def child_main(role: str, database_url: str | None, bootstrap: str, fetch_wait_ms: int | None,
                     apply_batch: int | None = None, topic: str | None = None, name: str | None = None) -> int:
    """`--role relay|consumer|feed`: one component until SIGTERM/SIGINT, or until the parent bench is gone."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()
    sink = LineSink()

    async def orphaned() -> None:
        while not stop.is_set():
            if os.getppid() != parent:
                stop.set()
            await asyncio.sleep(0.5)

    if role == "relay":
        assert database_url is not None
        component = run_relay(database_url, bootstrap, sink, stop)
    elif role == "consumer":
        assert database_url is not None
        component = run_consumer(database_url, bootstrap, fetch_wait_ms, sink, stop, apply_batch=apply_batch)
    elif role == "backlog-consumer":
        assert database_url is not None
        component = run_consumer(database_url, bootstrap, fetch_wait_ms, sink, stop, apply_batch=apply_batch,
                                 topic=topic, name=name, report_handled=False)
    else:
        component = run_feed(bootstrap, sink.port, stop)
    await asyncio.gather(component, orphaned(), watch_loop(sink, role, stop))
    return 0


@dataclass
class Child:
    role: str
    process: asyncio.subprocess.Process
    reader: asyncio.Task[None]


class Dispatch(Protocol):
    def dispatch(self, source: str, line: str) -> None: ...


async def spawn(role: str, tl: Dispatch, on_port: Callable[[int], None], *args: str) -> Child:
    process = await asyncio.create_subprocess_exec(
        sys.executable, SCRIPT, "--role", role, *args, stdout=asyncio.subprocess.PIPE)

    async def read() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode().strip()
            if line.startswith("port "):
                on_port(int(line.split()[1]))
            elif line:
                tl.dispatch(role, line)

    return Child(role, process, asyncio.create_task(read(), name=f"read:{role}"))


async def stop_child(child: Child) -> None:
    process = child.process
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(child.reader, 5)


# --- the run -------------------------------------------------------------------------------------------------

@dataclass
class Options:
    rate: float
    seconds: float
    warmup: float
    max_warmup: float
    drain: float
    layout: str
    consumer_fetch_wait_ms: int | None
    progress: bool
    apply_batch: int | None = None
    backlog: int = 0
    backlog_batches: tuple[int, ...] = ()


class CpuMeter:
    """CPU seconds of the bench's processes, of PostgreSQL and Tansu, and of the whole machine (psutil)."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        import psutil

        self.psutil = psutil
        self.pids = pids
        self.start = self._sample()

    def _sample(self) -> dict[str, float]:
        seconds: dict[str, float] = {}
        for label, pids in self.pids.items():
            total = 0.0
            for pid in pids:
                try:
                    process = self.psutil.Process(pid)
                    members = [process, *process.children(recursive=True)] if label == "postgres" else [process]
                    for member in members:
                        times = member.cpu_times()
                        total += times.user + times.system
                except self.psutil.Error:
                    continue
            seconds[label] = total
        machine = self.psutil.cpu_times()
        seconds["whole machine"] = machine.user + machine.system + getattr(machine, "nice", 0.0) + \
            getattr(machine, "irq", 0.0) + getattr(machine, "softirq", 0.0)
        return seconds

    def cores_busy(self, elapsed: float) -> dict[str, float]:
        end = self._sample()
        return {label: (end[label] - self.start.get(label, 0.0)) / elapsed for label in end}


def postgres_pid(pg: EmbeddedPostgres) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((pg.data_dir / "postmaster.pid").read_text().splitlines()[0])
    return None


async def progress(tl: Timeline, stop: asyncio.Event) -> None:
    """`--progress`: once a second on stderr, how far each path is behind the stream."""
    began = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(1.0)
        behind = ", ".join(f"{path} {seconds * 1000:.0f} ms" for path, seconds in sorted(tl.behind.items()))
        print(f"  [{time.perf_counter() - began:5.1f} s {tl.phase:<7}] committed {len(tl.committed)}, applied "
              f"{len(tl.applied_at)}, fed {len(tl.fed)}; latest observation behind its commit: {behind}",
              file=sys.stderr)


async def seed(maker: async_sessionmaker[AsyncSession], tl: Timeline) -> list[str]:
    """One event per centre, one after the other (so every partition the stream uses is in use)."""
    ids = []
    for centre in CENTRE_IDS:
        async with maker() as session:
            envelope = await publish(session, PRODUCER, CenterUpserted(id=centre, name=CENTRES[centre]),
                                     subject=centre, center_id=centre)
            await session.commit()
        event_id = str(envelope.id)
        tl.commit(event_id, time.perf_counter())
        tl.phase_of[event_id] = "start-up"
        assert envelope.sequence is not None
        tl.sequence_of[event_id] = envelope.sequence
        tl.last_name[centre] = (envelope.sequence, CENTRES[centre])
        ids.append(event_id)
    return ids


def check_alive(tasks: list[asyncio.Task[Any]], children: list[Child], reader: asyncio.Task[None] | None) -> None:
    for task in [*tasks, *([reader] if reader is not None else [])]:
        if task.done():
            task.result()  # raises what it died of
            raise RuntimeError(f"{task.get_name()} ended early")
    for child in children:
        if child.process.returncode is not None:
            raise RuntimeError(f"the {child.role} process exited with {child.process.returncode}")


async def measure(opts: Options, queue_url: str, cases_url: str, kafka: EmbeddedKafka,
                  pg: EmbeddedPostgres) -> int:
    me = asyncio.current_task()
    assert me is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, me.cancel)  # a SIGTERM still runs every clean-up below

    bootstrap = kafka.bootstrap
    tl = Timeline()
    stop = asyncio.Event()  # in-process components and the loop watcher
    stop_publishing = asyncio.Event()
    producer_engine = make_engine(queue_url, pool_size=8, application_name="bench-queue-api")
    tasks: list[asyncio.Task[Any]] = []
    children: list[Child] = []
    reader: asyncio.Task[None] | None = None
    publishing: asyncio.Task[int] | None = None
    port: asyncio.Future[int] = loop.create_future()

    def on_port(value: int) -> None:
        if not port.done():
            port.set_result(value)

    try:
        if opts.layout == "single":
            tasks.append(asyncio.create_task(run_relay(queue_url, bootstrap, tl, stop), name="relay"))
            tasks.append(asyncio.create_task(
                run_consumer(cases_url, bootstrap, opts.consumer_fetch_wait_ms, tl, stop,
                             apply_batch=opts.apply_batch), name="consumer"))
            tasks.append(asyncio.create_task(run_feed(bootstrap, on_port, stop), name="feed"))
        else:
            fetch = [] if opts.consumer_fetch_wait_ms is None else ["--consumer-fetch-wait-ms",
                                                                    str(opts.consumer_fetch_wait_ms)]
            if opts.apply_batch is not None:
                fetch += ["--apply-batch", str(opts.apply_batch)]
            children.append(await spawn("relay", tl, on_port, "--database-url", queue_url, "--bootstrap", bootstrap))
            children.append(await spawn("consumer", tl, on_port, "--database-url", cases_url,
                                        "--bootstrap", bootstrap, *fetch))
            children.append(await spawn("feed", tl, on_port, "--bootstrap", bootstrap))
        tasks.append(asyncio.create_task(watch_loop(tl, "bench (producer, SSE client)"
                                                    if opts.layout == "processes" else "bench (everything)", stop),
                                         name="loop-watch"))
        if opts.progress:
            tasks.append(asyncio.create_task(progress(tl, stop), name="progress"))
        feed_port = await asyncio.wait_for(port, 30)
        connected = asyncio.Event()
        reader = asyncio.create_task(read_feed(f"http://127.0.0.1:{feed_port}/events", tl, connected), name="sse")
        await asyncio.wait_for(connected.wait(), 10)

        # start-up: one event per centre, until the consumer (topic found by its metadata refresh, group joined)
        # and the feed (partitions assigned) have each seen them all; only then the steady stream
        started = time.perf_counter()
        seeds = await seed(make_sessionmaker(producer_engine), tl)
        for _ in range(int(opts.max_warmup / 0.05)):
            if all(i in tl.applied_at and i in tl.fed for i in seeds):
                break
            check_alive(tasks, children, reader)
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"the start-up events did not reach both paths in {opts.max_warmup:.0f} s: "
                               f"applied {sum(i in tl.applied_at for i in seeds)}/{len(seeds)}, "
                               f"fed {sum(i in tl.fed for i in seeds)}/{len(seeds)}")
        started_up = time.perf_counter() - started
        started = time.perf_counter()
        publishing = asyncio.create_task(
            produce(make_sessionmaker(producer_engine), opts.rate, tl, stop_publishing), name="producer")

        # warm-up: the relay creates the topic, the consumer finds it (metadata refresh) and joins its group,
        # the feed assigns the partitions; then both paths must keep up for `warmup` seconds
        caught_up_since: float | None = None
        steady = True
        while True:
            await asyncio.sleep(0.1)
            check_alive([publishing, *tasks], children, reader)
            now = time.perf_counter()
            caught_up = now - started > CAUGHT_UP_S and not tl.backlog(now - CAUGHT_UP_S)
            if not caught_up:
                caught_up_since = None
            elif caught_up_since is None:
                caught_up_since = now
            elif now - caught_up_since >= opts.warmup:
                break
            if now - started > opts.max_warmup:
                steady = False
                print(f"WARNING: no steady state after {opts.max_warmup:.0f} s of warm-up (latest observation "
                      f"behind its commit: {', '.join(f'{k} {v:.2f} s' for k, v in tl.behind.items())}); "
                      "measuring anyway: the figures include a backlog", file=sys.stderr)
                break
        warmup_seconds = time.perf_counter() - started

        pids: dict[str, list[int]] = {"bench process": [os.getpid()]}
        for child in children:
            pids[f"{child.role} process"] = [child.process.pid]
        if kafka.process is not None:
            pids["tansu"] = [kafka.process.pid]
        if (pid := postgres_pid(pg)) is not None:
            pids["postgres"] = [pid]
        try:
            meter: CpuMeter | None = CpuMeter(pids)
        except ImportError:
            meter = None
        load_before = os.getloadavg()[0]
        tl.phase = "measure"
        measure_started = time.perf_counter()
        await asyncio.sleep(opts.seconds)
        tl.phase = "drain"
        measured_for = time.perf_counter() - measure_started
        tl.window = (measure_started, measure_started + measured_for)
        cores = meter.cores_busy(measured_for) if meter is not None else {}
        load = (load_before, os.getloadavg()[0])
        stop_publishing.set()
        published = await publishing

        measured = tl.ids("measure")
        for _ in range(int(opts.drain / 0.05)):
            if all(i in tl.applied_at for i in tl.committed) and all(i in tl.fed for i in measured):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # let late repeats, if any, show up

        state = await database_state(queue_url, cases_url)
        report(opts, tl, measured, published=published, started_up=started_up, warmup_seconds=warmup_seconds,
               measured_for=measured_for, cores=cores, load=load, state=state, steady=steady)
        return verdict(tl, measured, state)
    finally:
        stop_publishing.set()
        stop.set()
        if publishing is not None and not publishing.done():
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(publishing, 5)
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        for child in reversed(children):  # feed, consumer, relay
            await stop_child(child)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=15)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await producer_engine.dispose()
        loop.remove_signal_handler(signal.SIGTERM)


async def database_state(queue_url: str, cases_url: str) -> dict[str, Any]:
    queue = await asyncpg.connect(asyncpg_dsn(queue_url))
    cases = await asyncpg.connect(asyncpg_dsn(cases_url))
    try:
        return {
            "outbox": await queue.fetchval("SELECT count(*) FROM outbox"),
            "unsent": await queue.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"),
            "inbox": await cases.fetchval("SELECT count(*) FROM inbox WHERE consumer = 'cases.centers'"),
            "copies": {r["id"]: (r["last_event_sequence"], r["name"])
                       for r in await cases.fetch("SELECT id, name, last_event_sequence FROM centers")},
            "dead_letters": await cases.fetchval("SELECT count(*) FROM dead_letters"),
        }
    finally:
        await queue.close()
        await cases.close()


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def stats_ms(values: list[float]) -> tuple[float, float, float, float, float] | None:
    if not values:
        return None
    ordered = sorted(v * 1000 for v in values)
    return (percentile(ordered, 0.5), percentile(ordered, 0.9), percentile(ordered, 0.99), ordered[-1],
            statistics.fmean(ordered))


def row(label: str, values: list[float], *, target: bool = True) -> str:
    figures = stats_ms(values)
    if figures is None:
        return f"  {label:<46} {0:>6}   (none)"
    p50, p90, p99, top, mean = figures
    ratio = f"{p99 / TARGET_P99_MS:>7.2f}" if target else ""
    return (f"  {label:<46} {len(values):>6} {p50:>8.2f} {p90:>8.2f} {p99:>8.2f} {top:>8.2f} {mean:>8.2f} "
            f"{ratio}")


def report(opts: Options, tl: Timeline, measured: list[str], *, published: int, started_up: float,
           warmup_seconds: float,
           measured_for: float, cores: dict[str, float], load: tuple[float, float], state: dict[str, Any],
           steady: bool) -> None:
    committed = tl.committed
    where = ("processes: producer + SSE client here; relay, consumer, feed+uvicorn in a process each"
             if opts.layout == "processes" else "single: everything on one event loop")
    fetch_wait = ("the consumer's default (50 ms)" if opts.consumer_fetch_wait_ms is None
                  else f"{opts.consumer_fetch_wait_ms} ms (--consumer-fetch-wait-ms)")
    print(f"events latency: {opts.rate:.0f} events/s scheduled, p99 target {TARGET_P99_MS:.0f} ms")
    print(f"  layout {where}")
    print(f"  consumer fetch_max_wait_ms {fetch_wait}; apply_batch {batch_label(opts.apply_batch)}; "
          "relay, feed: platform defaults")
    caught_up = "" if steady else " (NOT caught up: a backlog is included)"
    print(f"  start-up {started_up:.1f} s (topic created, group joined), warm-up {warmup_seconds:.1f} s{caught_up}; "
          f"measured {measured_for:.1f} s: {len(measured)} events committed "
          f"({len(measured) / measured_for:.1f}/s), {published} in the stream + {len(CENTRE_IDS)} at start-up; "
          f"partitions used "
          f"{len(tl.partitions)}/{TOPIC.partitions}")
    print(f"  {'latency (ms)':<46} {'count':>6} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8} {'mean':>8} "
          f"{'p99/tgt':>7}")
    print(row("(a)  commit -> consumer handler applied", [tl.handler[i] - committed[i] for i in measured
                                                          if i in tl.handler]))
    print(row("(a') commit -> consumer transaction committed", [tl.applied_at[i] - committed[i] for i in measured
                                                                if i in tl.applied_at]))
    print(row("(b)  commit -> SSE client read the frame", [tl.fed[i] - committed[i] for i in measured
                                                           if i in tl.fed]))
    acked = {i: tl.acked_by_sequence[tl.sequence_of[i]] for i in measured
             if tl.sequence_of[i] in tl.acked_by_sequence}
    print("  by stage:")
    print(row("commit -> relay has the broker's ack", [acked[i] - committed[i] for i in acked], target=False))
    print(row("broker ack -> consumer handler", [tl.handler[i] - acked[i] for i in acked if i in tl.handler],
              target=False))
    print(row("broker ack -> SSE client", [tl.fed[i] - acked[i] for i in acked if i in tl.fed], target=False))
    print(row("consumer transaction of an event (its chunk)", tl.in_window(tl.apply_seconds), target=False))
    print(row("producer commit() round trip", [tl.commit_rtt[i] for i in measured], target=False))
    for source, samples in sorted(tl.lags.items()):
        print(row(f"loop lateness, {source}", tl.in_window(samples), target=False))
    for source, samples in sorted(tl.gcs.items()):
        if tl.in_window(samples):
            print(row(f"full GC pauses, {source}", tl.in_window(samples), target=False))
    if cores:
        print("  CPU while measuring, in cores (the machine has "
              f"{os.cpu_count()}; load average {load[0]:.1f} -> {load[1]:.1f}): "
              + ", ".join(f"{label} {share:.2f}" for label, share in cores.items()))

    every = list(committed)
    missing_applied = [i for i in every if i not in tl.applied_at]
    twice_applied = [i for i in every if tl.applied_count[i] > 1]
    rerun = sum(1 for i in every if tl.handler_runs[i] > 1)
    missing_fed = [i for i in measured if i not in tl.fed]
    twice_fed = [i for i in measured if tl.fed_count[i] > 1]
    in_order = all(a < b for a, b in zip(tl.fed_sequences, tl.fed_sequences[1:], strict=False))
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(tl.outcomes.items()))
    copies_ok = all(state["copies"].get(centre) == last for centre, last in tl.last_name.items())
    print("  exactly once:")
    print(f"    consumer: {len(every) - len(missing_applied)}/{len(every)} committed events applied (warm-up "
          f"included), {len(missing_applied)} missing, {len(twice_applied)} applied twice, {rerun} handler "
          f"re-runs after a rollback; outcomes: {outcomes}")
    print(f"    cases database: {state['inbox']} inbox rows for {state['outbox']} outbox rows ({state['unsent']} "
          f"unsent); {state['dead_letters']} dead letters; read copy = latest event of every centre: {copies_ok}")
    print(f"    SSE client: {len(measured) - len(missing_fed)}/{len(measured)} measured events read, "
          f"{len(missing_fed)} missing, {len(twice_fed)} twice; {len(tl.fed_sequences)} frames in all, "
          f"sequences strictly increasing: {in_order}")


def verdict(tl: Timeline, measured: list[str], state: dict[str, Any]) -> int:
    def p99(values: list[float]) -> float:
        figures = stats_ms(values)
        return figures[2] if figures else float("inf")

    committed = tl.committed
    a = p99([tl.handler[i] - committed[i] for i in measured if i in tl.handler])
    b = p99([tl.fed[i] - committed[i] for i in measured if i in tl.fed])
    duplicates = (any(count > 1 for count in tl.applied_count.values())
                  or any(tl.fed_count[i] > 1 for i in measured) or state["inbox"] > state["outbox"])
    complete = all(i in tl.applied_at for i in committed) and all(i in tl.fed for i in measured) \
        and state["inbox"] == state["outbox"] == len(committed)
    once = "yes" if complete and not duplicates else ("NO: duplicates" if duplicates else
                                                      "no duplicates, but not everything arrived in time")
    print(f"  target p99 <= {TARGET_P99_MS:.0f} ms: (a) {'met' if a <= TARGET_P99_MS else 'NOT met'}, "
          f"(b) {'met' if b <= TARGET_P99_MS else 'NOT met'}; exactly once: {once}")
    return 0 if a <= TARGET_P99_MS and b <= TARGET_P99_MS and complete and not duplicates else 1


def batch_label(apply_batch: int | None) -> str:
    value = APPLY_BATCH if apply_batch is None else apply_batch
    return f"{value}" + (" (the platform default)" if apply_batch is None else "") + \
        (", one transaction per event as before batches" if value == 1 else "")


# --- throughput from a backlog -----------------------------------------------------------------------------------

BACKLOG_TOPIC = "hall.queue.v1.bench-backlog"
BACKLOG_CENTRES = [f"32{i:04d}" for i in range(200)]


@dataclass
class BacklogTally:
    """The backlog consumer's reports. Every event of a chunk is reported with the chunk's commit instant,
    so the distinct instants count the transactions."""

    applied_at: dict[str, float] = field(default_factory=dict)
    applied_count: collections.Counter[str] = field(default_factory=collections.Counter)
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    commits: set[float] = field(default_factory=set)

    def dispatch(self, source: str, line: str) -> None:
        kind, *rest = line.split()
        if kind != "applied":
            return
        event_id, outcome, at = rest[0], rest[1], float(rest[2])
        self.outcomes[outcome] += 1
        self.commits.add(at)
        if outcome == Outcome.APPLIED.value:
            self.applied_at.setdefault(event_id, at)
            self.applied_count[event_id] += 1


async def produce_backlog(bootstrap: str, count: int) -> dict[str, int]:
    """`count` center.upserted events over 200 centres, sequences 1..count, straight to the backlog topic (as
    the relay writes them: keyed by centre); returns each centre's latest sequence."""
    admin = new_admin(bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin, [Topic(BACKLOG_TOPIC, PRODUCER, TOPIC.partitions, "center")])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    latest: dict[str, int] = {}
    try:
        sending: list[asyncio.Future[Any]] = []
        for sequence in range(1, count + 1):
            centre = BACKLOG_CENTRES[sequence % len(BACKLOG_CENTRES)]
            envelope = Envelope.wrap(PRODUCER, CenterUpserted(id=centre, name=f"中心 {centre} #{sequence}"),
                                     subject=centre, center_id=centre).model_copy(update={"sequence": sequence})
            sending.append(await producer.send(
                BACKLOG_TOPIC, envelope.model_dump_json().encode(), key=centre.encode(),
                headers=[("type", envelope.type.encode()), ("producer", PRODUCER.encode())]))
            latest[centre] = sequence
            if len(sending) >= 2000:
                await asyncio.gather(*sending)
                sending.clear()
        await asyncio.gather(*sending)
    finally:
        await producer.stop()
    return latest


@dataclass
class Drained:
    apply_batch: int
    count: int
    applied: int
    twice: int
    seconds: float  # first applied event -> last
    since_start: float  # consumer process started -> last applied (includes start-up and the group join)
    transactions: int
    inbox: int
    copies_latest: bool
    outcomes: collections.Counter[str]

    @property
    def rate(self) -> float:
        return (self.applied - 1) / self.seconds if self.seconds > 0 else 0.0


async def drain_backlog(pg: EmbeddedPostgres, bootstrap: str, apply_batch: int, count: int,
                        latest: dict[str, int], fetch_wait_ms: int | None, give_up_after: float) -> Drained:
    """One consumer process (its own group, a freshly migrated cases database) applying the whole backlog."""
    url = pg.url(f"hall_bench_backlog_{apply_batch}")
    await ensure_database(url)
    await asyncio.to_thread(upgrade, "cases", url)
    name = f"centers-backlog-{apply_batch}"
    tally = BacklogTally()
    fetch = [] if fetch_wait_ms is None else ["--consumer-fetch-wait-ms", str(fetch_wait_ms)]
    started = time.perf_counter()
    child = await spawn("backlog-consumer", tally, lambda _: None, "--database-url", url, "--bootstrap",
                        bootstrap, "--topic", BACKLOG_TOPIC, "--group", name, "--apply-batch", str(apply_batch),
                        *fetch)
    try:
        while len(tally.applied_at) < count and time.perf_counter() - started < give_up_after:
            if child.process.returncode is not None:
                raise RuntimeError(f"the backlog consumer exited with {child.process.returncode}")
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # late repeats, if any
    finally:
        await stop_child(child)
    cases = await asyncpg.connect(asyncpg_dsn(url))
    try:
        inbox = await cases.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", f"cases.{name}")
        copies = {r["id"]: r["last_event_sequence"]
                  for r in await cases.fetch("SELECT id, last_event_sequence FROM centers")}
    finally:
        await cases.close()
    instants = sorted(tally.applied_at.values())
    return Drained(apply_batch, count, len(tally.applied_at), sum(1 for c in tally.applied_count.values() if c > 1),
                   instants[-1] - instants[0] if instants else 0.0,
                   instants[-1] - started if instants else 0.0, len(tally.commits), inbox, copies == latest,
                   tally.outcomes)


async def measure_backlog(opts: Options, pg: EmbeddedPostgres, kafka: EmbeddedKafka) -> int:
    produced = time.perf_counter()
    latest = await produce_backlog(kafka.bootstrap, opts.backlog)
    produced = time.perf_counter() - produced
    results = []
    for apply_batch in opts.backlog_batches:
        results.append(await drain_backlog(pg, kafka.bootstrap, apply_batch, opts.backlog, latest,
                                           opts.consumer_fetch_wait_ms, opts.max_warmup + 600))
    print(f"throughput from a backlog: {opts.backlog} center.upserted events over {len(BACKLOG_CENTRES)} centres "
          f"on {TOPIC.partitions} partitions (produced in {produced:.1f} s, before the consumer starts); one "
          "cases centres consumer process (read-copy upsert) on a fresh cases database per run; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"  {'apply_batch':>11} {'applied':>8} {'events/s':>9} {'first->last s':>13} {'start->last s':>13} "
          f"{'transactions':>12} {'ev/txn':>7}  exactly once, read copy")
    failed = 0
    for r in results:
        once = r.applied == r.count and r.twice == 0 and r.inbox == r.count
        failed += not (once and r.copies_latest)
        print(f"  {r.apply_batch:>11} {r.applied:>8} {r.rate:>9.0f} {r.seconds:>13.2f} {r.since_start:>13.2f} "
              f"{r.transactions:>12} {r.applied / max(1, r.transactions):>7.1f}  "
              f"{'yes' if once else f'NO ({r.twice} twice, inbox {r.inbox})'}, "
              f"{'every centre at its latest event' if r.copies_latest else 'NOT at the latest events'}")
    if len(results) > 1 and results[0].rate > 0:
        print(f"  apply_batch {results[-1].apply_batch} vs {results[0].apply_batch}: "
              f"{results[-1].rate / results[0].rate:.1f}x the events per second")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured duration")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds both paths must keep up before measuring")
    parser.add_argument("--max-warmup", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=8.0, help="seconds to wait for stragglers")
    parser.add_argument("--layout", choices=["processes", "single"], default="processes")
    parser.add_argument("--consumer-fetch-wait-ms", type=int, default=None,
                        help="pass fetch_max_wait_ms to the consumer's aiokafka client (default: aiokafka's 500 ms; "
                             "Tansu holds a fetch for up to about half of it even when data arrives)")
    parser.add_argument("--progress", action="store_true", help="print how far behind each path is, every second")
    parser.add_argument("--apply-batch", type=int, default=None,
                        help=f"events per consumer transaction (default: the platform's, {APPLY_BATCH}; 1 = one each)")
    parser.add_argument("--backlog", type=int, default=20000, help="events in the throughput backlog (0: skip it)")
    parser.add_argument("--backlog-batches", default=None,
                        help='apply_batch values the backlog is drained with, in turn (default "1,<apply_batch>")')
    parser.add_argument("--no-latency", action="store_true", help="only the throughput part")
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--group", help=argparse.SUPPRESS)
    parser.add_argument("--role", choices=["relay", "consumer", "backlog-consumer", "feed"], help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    if args.role is not None:
        return asyncio.run(child_main(args.role, args.database_url, args.bootstrap, args.consumer_fetch_wait_ms,
                                      args.apply_batch, args.topic, args.group))

    if time.get_clock_info("perf_counter").implementation != "clock_gettime(CLOCK_MONOTONIC)" \
            and args.layout == "processes":
        parser.error("perf_counter is not CLOCK_MONOTONIC here: instants of different processes don't compare; "
                     "use --layout single")

    def terminate(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)  # outside the event loop too, SIGTERM runs the clean-up below

    signal.signal(signal.SIGTERM, terminate)
    batch = APPLY_BATCH if args.apply_batch is None else args.apply_batch
    backlog_batches = tuple(int(v) for v in (args.backlog_batches or f"1,{batch}").split(","))
    opts = Options(args.rate, args.seconds, args.warmup, args.max_warmup, args.drain, args.layout,
                   args.consumer_fetch_wait_ms, args.progress, args.apply_batch, args.backlog,
                   tuple(dict.fromkeys(backlog_batches)))
    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    pg = EmbeddedPostgres(var / f"bench-latency-pg-{os.getpid()}", free_port(), fast_unsafe=True)
    kafka = EmbeddedKafka(free_port(), var / "bench-latency-kafka.log")
    try:
        pg.start()
        kafka.start()
        queue_url, cases_url = pg.url("hall_bench_latency_queue"), pg.url("hall_bench_latency_cases")

        async def create_databases() -> None:
            await ensure_database(queue_url)
            await ensure_database(cases_url)

        asyncio.run(create_databases())
        upgrade("queue", queue_url)  # the producer's database: outbox
        upgrade("cases", cases_url)  # the consumer's: inbox, dead letters, centres read copy
        latency = 0 if args.no_latency else asyncio.run(measure(opts, queue_url, cases_url, kafka, pg))
        throughput = asyncio.run(measure_backlog(opts, pg, kafka)) if opts.backlog > 0 else 0
        return latency or throughput
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("interrupted; stopping the broker and removing the database", file=sys.stderr)
        return 130
    finally:
        kafka.stop(kill=True)
        pg.destroy()


if __name__ == "__main__":
    sys.exit(main())
