"""Produce-to-client latency of a live feed: 200 events/s for ~10 s into an embedded Tansu, through a
`shared.feeds.Feed` on a real uvicorn, to one SSE client; prints p50/p90/p99/max (target p99 <= 50 ms).

`uv run python bench/feed_latency.py [--rate 200] [--seconds 10] [--partitions 6]`

Each event carries the producer's `time.perf_counter()` at the moment it is handed to the Kafka client;
the client subtracts it on receipt (same process, same monotonic counter), so the figure covers the
producer client, the broker, the feed's fetch and reorder step, the SSE write and the HTTP client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from aiokafka import AIOKafkaProducer  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from shared.devinfra.kafka import EmbeddedKafka  # noqa: E402
from shared.devinfra.postgres import free_port  # noqa: E402
from shared.events.envelope import Envelope, EventData  # noqa: E402
from shared.events.kafka import ensure_topics, new_admin  # noqa: E402
from shared.events.topics import Topic  # noqa: E402
from shared.feeds import Feed  # noqa: E402

CENTRES = ["320102", "320104", "320105", "320106", "320111", "320113"]
TARGET_P99_MS = 50.0


class BenchTick(EventData):
    type: Literal["bench.tick"] = "bench.tick"
    n: int
    sent_perf: float


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def read_feed(url: str, expected: int, latencies: list[float], sequences: list[int],
                    connected: asyncio.Event) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as http, \
            http.stream("GET", url) as response:
        connected.set()
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            received = time.perf_counter()
            envelope = json.loads(line[6:])
            latencies.append((received - envelope["data"]["sent_perf"]) * 1000)
            sequences.append(envelope["sequence"])
            if len(sequences) >= expected:
                return


async def produce(bootstrap: str, topic: str, rate: float, count: int) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    pending = []
    started = time.perf_counter()
    try:
        for n in range(1, count + 1):
            delay = started + (n - 1) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            centre = CENTRES[n % len(CENTRES)]
            payload = BenchTick(n=n, sent_perf=time.perf_counter())
            envelope = Envelope.wrap("queue", payload, subject=f"ticket-{n}", center_id=centre).model_copy(
                update={"sequence": n})
            pending.append(await producer.send(
                topic, envelope.model_dump_json().encode(), key=centre.encode(),
                headers=[("type", envelope.type.encode()), ("producer", b"queue")]))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def main(rate: float, seconds: float, partitions: int, fetch_wait_ms: int | None) -> int:
    (ROOT / "var").mkdir(exist_ok=True)
    kafka = EmbeddedKafka(free_port(), ROOT / "var" / "bench-feed-kafka.log")
    kafka.start()
    server: uvicorn.Server | None = None
    serving: asyncio.Task[None] | None = None
    feed: Feed | None = None
    try:
        topic = f"bench.feed.{uuid.uuid4().hex[:8]}"
        admin = new_admin(kafka.bootstrap)
        await admin.start()
        try:
            await ensure_topics(admin, [Topic(topic, "queue", partitions, "center")])
        finally:
            await admin.close()

        options = {} if fetch_wait_ms is None else {"fetch_max_wait_ms": fetch_wait_ms}
        feed = Feed(kafka.bootstrap, topic, name="bench", **options)
        await feed.start()
        await asyncio.wait_for(feed.ready.wait(), 15)
        app = FastAPI()
        app.include_router(feed.router("/events"))
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1))
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        for _ in range(1000):  # up to 10 s for uvicorn to listen
            if server.started:
                break
            await asyncio.sleep(0.01)

        count = int(rate * seconds)
        latencies: list[float] = []
        sequences: list[int] = []
        connected = asyncio.Event()
        reader = asyncio.create_task(read_feed(f"http://127.0.0.1:{port}/events", count, latencies, sequences,
                                               connected))
        await asyncio.wait_for(connected.wait(), 10)
        await asyncio.sleep(0.2)
        elapsed = await produce(kafka.bootstrap, topic, rate, count)
        try:
            await asyncio.wait_for(reader, 15)
        except TimeoutError:
            reader.cancel()

        ordered = sorted(latencies)
        in_order = sequences == sorted(sequences)
        print(f"feed latency: {len(latencies)}/{count} events at {count / elapsed:.0f}/s over {elapsed:.1f} s, "
              f"{partitions} partitions")
        if not ordered:
            print("no events received")
            return 1
        p99 = percentile(ordered, 0.99)
        print(f"  p50 {percentile(ordered, 0.50):6.2f} ms   p90 {percentile(ordered, 0.90):6.2f} ms   "
              f"p99 {p99:6.2f} ms   max {ordered[-1]:6.2f} ms   mean {statistics.fmean(ordered):6.2f} ms")
        print(f"  delivered in sequence order: {in_order}; distinct: {len(set(sequences))}; "
              f"missing: {count - len(set(sequences))}")
        ok = p99 <= TARGET_P99_MS and len(set(sequences)) == count and in_order
        print(f"  target p99 <= {TARGET_P99_MS:.0f} ms: {'met' if ok else 'NOT met'}")
        return 0 if ok else 1
    finally:
        if feed is not None:
            await feed.stop()
        if server is not None and serving is not None:
            server.should_exit = True
            await asyncio.wait_for(serving, 10)
        kafka.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--fetch-wait-ms", type=int, default=None, help="override the feed's fetch_max_wait_ms")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.rate, args.seconds, args.partitions, args.fetch_wait_ms)))
