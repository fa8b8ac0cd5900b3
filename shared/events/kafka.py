"""Talking to the broker: topic creation with explicit partitions, and the cluster id that reveals a
memory-only broker (the embedded Tansu) restarted empty.

With a durable Kafka cluster the id never changes, so nothing here ever fires a re-send; with Tansu a
restart gives a new id (we start it with a fresh --cluster-id) and relays, consumers and feeds react.
"""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.events.topics import TOPICS, Topic


async def cluster_id(admin: AIOKafkaAdminClient) -> str:
    return str((await admin.describe_cluster())["cluster_id"])


async def missing_topics(admin: AIOKafkaAdminClient, topics: list[Topic] | None = None) -> list[Topic]:
    wanted = topics if topics is not None else list(TOPICS.values())
    present = set(await admin.list_topics())
    return [t for t in wanted if t.name not in present]


async def ensure_topics(admin: AIOKafkaAdminClient, topics: list[Topic] | None = None) -> list[str]:
    """Create the missing topics with their declared partition counts; returns the names created."""
    missing = await missing_topics(admin, topics)
    if not missing:
        return []
    try:
        await admin.create_topics([NewTopic(t.name, t.partitions, 1) for t in missing])
    except TopicAlreadyExistsError:
        pass  # another process won the race
    return [t.name for t in missing]


def new_admin(bootstrap: str) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
