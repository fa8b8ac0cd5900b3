"""Event type -> handler of the cases service's consumers, and the consumers its worker starts."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.cases.models import CenterCopy
from shared.events.catalog import CenterUpserted
from shared.events.consumer import ConsumerSpec, EventConsumer, build_all, upsert_read_copy
from shared.events.envelope import Envelope
from shared.events.topics import topic_for
from shared.settings import ServiceSettings


async def copy_center(session: AsyncSession, envelope: Envelope) -> None:
    """center.upserted -> the read copy of centres, unless a newer event of that centre was applied."""
    center = envelope.payload()
    assert isinstance(center, CenterUpserted)
    if envelope.sequence is None:
        raise ValueError("center.upserted carries no outbox sequence: cannot order it")
    await upsert_read_copy(session, CenterCopy, {
        "id": center.id, "name": center.name, "address": center.address,
        "updated_at": envelope.occurred_at, "last_event_sequence": envelope.sequence,
    })


CONSUMERS: list[ConsumerSpec] = [
    ConsumerSpec("centers", (topic_for("queue").name,), {"center.upserted": copy_center}),
]


def build_consumers(settings: ServiceSettings, sessionmaker: async_sessionmaker[AsyncSession],
                    **options: Any) -> list[EventConsumer]:
    """The consumers the worker runs; `options` go to each EventConsumer (tests: topic_names,
    kafka_options)."""
    return build_all(CONSUMERS, settings, sessionmaker, **options)
