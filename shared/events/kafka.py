"""Talking to the broker: topic creation with explicit partitions, and the cluster id that reveals a
memory-only broker (the embedded Tansu) restarted empty. `python -m shared.events.kafka ensure-topics` creates
every topic with its partitions and HALL_KAFKA_REPLICATION_FACTOR copies (compose's `topics`, Kubernetes'
`hall-topics` Job) and exits 0 once they all exist.

With a durable Kafka cluster the id never changes, so nothing here ever fires a re-send; with Tansu a
restart gives a new id (we start it with a fresh --cluster-id) and relays, consumers and feeds react.
"""

from __future__ import annotations

import asyncio
import sys

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.events.topics import TOPICS, Topic


async def cluster_id(admin: AIOKafkaAdminClient) -> str:
    return str((await admin.describe_cluster())["cluster_id"])


async def missing_topics(admin: AIOKafkaAdminClient, topics: list[Topic] | None = None) -> list[Topic]:
    wanted = topics if topics is not None else list(TOPICS.values())
    present = set(await admin.list_topics())
    return [t for t in wanted if t.name not in present]


async def ensure_topics(admin: AIOKafkaAdminClient, topics: list[Topic] | None = None,
                        replication_factor: int = 1) -> list[str]:
    """Create the missing topics with their declared partition counts; returns the names created. With three
    or more replicas a write (acks=all) needs all but one in sync, so one broker may be down or restarting."""
    missing = await missing_topics(admin, topics)
    if not missing:
        return []
    configs = {"min.insync.replicas": str(replication_factor - 1)} if replication_factor >= 3 else {}
    try:
        await admin.create_topics([NewTopic(t.name, t.partitions, replication_factor, topic_configs=configs)
                                   for t in missing])
    except TopicAlreadyExistsError:
        pass  # another process won the race
    return [t.name for t in missing]


def new_admin(bootstrap: str) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)


async def _ensure_all(bootstrap: str, replication_factor: int) -> list[str]:
    admin = new_admin(bootstrap)
    async with asyncio.timeout(60):
        await admin.start()
    try:
        async with asyncio.timeout(60):
            return await ensure_topics(admin, replication_factor=replication_factor)
    finally:
        await admin.close()


def main(argv: list[str]) -> int:
    from shared.settings import KafkaSettings

    if argv != ["ensure-topics"]:
        print("usage: python -m shared.events.kafka ensure-topics", file=sys.stderr)
        return 2
    kafka = KafkaSettings()
    created = asyncio.run(_ensure_all(kafka.kafka_bootstrap, kafka.kafka_replication_factor))
    for topic in TOPICS.values():
        print(f"{topic.name}: {topic.partitions} partitions{' (created)' if topic.name in created else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
