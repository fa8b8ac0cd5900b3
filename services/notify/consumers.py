"""Event type -> handler of the notify service's consumers, and the consumers its worker starts."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify.models import CenterCopy
from shared.calendar.store import calendar_consumer
from shared.events.consumer import ConsumerSpec, EventConsumer, build_all
from shared.readcopy import center_consumer
from shared.settings import ServiceSettings

CONSUMERS: list[ConsumerSpec] = [
    center_consumer(CenterCopy),
    calendar_consumer(),
]


def build_consumers(settings: ServiceSettings, sessionmaker: async_sessionmaker[AsyncSession],
                    **options: Any) -> list[EventConsumer]:
    """The consumers the worker runs; `options` go to each EventConsumer (tests: topic_names, kafka_options)."""
    return build_all(CONSUMERS, settings, sessionmaker, **options)
