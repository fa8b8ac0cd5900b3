"""Event type -> handler of the notify service's consumers, and the consumers its worker starts.

Every event of the four producers' topics goes to the planner (services.notify.planner): the default rules
and the subscriptions decide whether it notifies anyone, and a subscription may name any event type. The
contact copies come first in the same transaction: staff from identity's user.upserted, department heads
from the registry's department.upserted. Topics are keyed by centre (queue) or subject (cases, monitor), so
one case's events, one complaint's, one centre's queue arrive in order."""

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify import contacts, planner
from services.notify.models import CenterCopy
from shared.calendar.store import calendar_consumer
from shared.events.consumer import ConsumerSpec, EventConsumer, Handler, build_all
from shared.events.envelope import Envelope, registry
from shared.events.topics import topic_for
from shared.readcopy import center_consumer
from shared.settings import ServiceSettings


def _then_plan(copy: Handler) -> Handler:
    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        await copy(session, envelope)
        await planner.on_event(session, envelope)

    handle.__name__ = f"{getattr(copy, '__name__', 'copy')}_then_plan"
    return handle


def _handlers(copies: Mapping[str, Handler]) -> dict[str, Handler]:
    handlers: dict[str, Handler] = {event_type: planner.on_event for event_type, _ in registry}
    handlers.update({event_type: _then_plan(copy) for event_type, copy in copies.items()})
    return handlers


CONSUMERS: list[ConsumerSpec] = [
    center_consumer(CenterCopy),
    calendar_consumer(),
    ConsumerSpec("identity", (topic_for("identity").name,), _handlers(contacts.IDENTITY_HANDLERS)),
    ConsumerSpec("cases", (topic_for("cases").name,), _handlers(contacts.CASES_HANDLERS)),
    ConsumerSpec("queue", (topic_for("queue").name,), _handlers({})),
    ConsumerSpec("monitor", (topic_for("monitor").name,), _handlers({})),
]


def build_consumers(settings: ServiceSettings, sessionmaker: async_sessionmaker[AsyncSession],
                    **options: Any) -> list[EventConsumer]:
    """The consumers the worker runs; `options` go to each EventConsumer (tests: topic_names, kafka_options)."""
    return build_all(CONSUMERS, settings, sessionmaker, **options)
