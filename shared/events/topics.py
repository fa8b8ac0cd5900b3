"""Every topic, its partition count and how its key is chosen, declared in one place.

One topic per producing service. Keys keep one subject's events in order: the centre for queue
events, the case for case events (DOMAIN.md "Services, ownership and events").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Topic:
    name: str
    producer: str
    partitions: int
    key: Literal["center", "subject"]
    retention_note: str = ""


TOPICS: dict[str, Topic] = {
    t.producer: t
    for t in (
        Topic("hall.queue.v1", "queue", 6, "center"),
        Topic("hall.cases.v1", "cases", 12, "subject"),
        Topic("hall.monitor.v1", "monitor", 6, "subject"),
        Topic("hall.notify.v1", "notify", 6, "subject"),
        Topic("hall.identity.v1", "identity", 3, "subject"),
    )
}


def topic_for(producer: str) -> Topic:
    return TOPICS[producer]
