"""A queue outbox relay in its own process for the crash and fail-over tests, and the topic reader they share.

`python -m tests.events.relay_proc --url ... --bootstrap ... --topic ... [--crash-after-send]` (cwd: the
repository root). With --crash-after-send the process SIGKILLs itself once the broker has acknowledged
its first batch and before the rows are marked sent. Its database connection is named
`relay-proc-<pid>`, so a test can tell which process leads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.clock import monotonic
from shared.events.relay import Relay
from shared.events.topics import Topic

APP_PREFIX = "relay-proc-"
LEADER_SQL = f"""
    SELECT a.application_name FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()
      AND a.application_name LIKE '{APP_PREFIX}%'
"""


def make_topic(name: str, partitions: int = 3) -> Topic:
    return Topic(name, "queue", partitions, "center")


def fast_relay(url: str, bootstrap: str, topic: Topic, **options: Any) -> Relay:
    """A queue relay with test-sized intervals and timeouts."""
    settings: dict[str, Any] = dict(poll_interval=0.2, leader_retry=0.2, cluster_check_interval=0.3,
                                    max_backoff=0.5, request_timeout_ms=2000)
    settings.update(options)
    return Relay(url, bootstrap, "queue", topic=topic, **settings)


@dataclass(frozen=True)
class Message:
    partition: int
    offset: int
    key: str
    headers: list[tuple[str, bytes]]
    value: bytes

    @property
    def envelope(self) -> dict[str, Any]:
        return json.loads(self.value)


async def read_topic(bootstrap: str, topic: Topic, *, expected: int, within: float = 10.0,
                     settle: float = 0.3) -> list[Message]:
    """Every message of the topic from the beginning: at least `expected` (or what came `within` seconds),
    and whatever else arrives within `settle` seconds after that (so duplicates show)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", request_timeout_ms=5000)
    await consumer.start()
    messages: list[Message] = []
    try:
        consumer.assign([TopicPartition(topic.name, p) for p in range(topic.partitions)])
        await consumer.seek_to_beginning()
        deadline = monotonic() + within
        settled_at: float | None = None
        while monotonic() < (settled_at or deadline):
            batches = await consumer.getmany(timeout_ms=100)
            for records in batches.values():
                messages.extend(Message(r.partition, r.offset, r.key.decode(), list(r.headers), r.value)
                                for r in records)
            if settled_at is None and len(messages) >= expected:
                settled_at = monotonic() + settle
    finally:
        await consumer.stop()
    return sorted(messages, key=lambda m: (m.partition, m.offset))


async def _main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def crash(sequences: list[int]) -> None:
        os.kill(os.getpid(), signal.SIGKILL)  # acknowledged by the broker, not yet marked sent

    relay = fast_relay(args.url, args.bootstrap, make_topic(args.topic, args.partitions),
                       application_name=f"{APP_PREFIX}{os.getpid()}",
                       after_send=crash if args.crash_after_send else None)
    await relay.run(stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--crash-after-send", action="store_true")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
