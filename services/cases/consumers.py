"""Event type -> handler of the cases service's consumers, and the consumers its worker starts: read copies
of the queue's centres and windows and of identity's staff, and the queue's ratings of cases (the calendar is
cases' own: it publishes it)."""

from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.cases.models import CenterCopy, Staff, WindowCopy
from services.cases.ratings import attach_rating
from shared.events.catalog import WindowUpserted
from shared.events.consumer import ConsumerSpec, EventConsumer, build_all, upsert_read_copy
from shared.events.envelope import Envelope
from shared.readcopy import center_consumer, staff_consumer
from shared.settings import ServiceSettings


def _windows_table() -> Table:
    table = WindowCopy.__table__
    if not isinstance(table, Table):  # a declarative class with a __tablename__ is always mapped to a Table
        raise TypeError("WindowCopy is not mapped to a table")
    return table


WINDOWS_TABLE = _windows_table()


async def copy_window(session: AsyncSession, envelope: Envelope) -> None:
    """window.upserted -> the window copy (its department, A/B clerks, joint-approval flag), unless a newer
    event of that window was applied (the queue's outbox sequence orders them: a re-sent or late event changes
    nothing)."""
    window = envelope.payload()
    assert isinstance(window, WindowUpserted)
    if envelope.sequence is None:
        raise ValueError("window.upserted carries no outbox sequence: cannot order it")
    await upsert_read_copy(session, WINDOWS_TABLE, {
        "center_id": window.center_id, "number": window.number, "name": window.name,
        "department": window.department, "a_clerk": window.a_clerk, "b_clerk": window.b_clerk,
        "active": window.active, "joint_approval": window.joint_approval, "updated_at": envelope.occurred_at,
        "last_event_sequence": envelope.sequence,
    })


def queue_consumer() -> ConsumerSpec:
    """One consumer of the busy queue topic for all cases takes from it: the centre and window copies, and
    the ratings that name a case (named "centers", as every service's consumer of centres is)."""
    centers = center_consumer(CenterCopy)
    return ConsumerSpec(centers.name, centers.topics, {
        **centers.handlers, "window.upserted": copy_window, "evaluation.submitted": attach_rating})


CONSUMERS: list[ConsumerSpec] = [
    queue_consumer(),
    staff_consumer(Staff),
]


def build_consumers(settings: ServiceSettings, sessionmaker: async_sessionmaker[AsyncSession],
                    **options: Any) -> list[EventConsumer]:
    """The consumers the worker runs; `options` go to each EventConsumer (tests: topic_names, kafka_options)."""
    return build_all(CONSUMERS, settings, sessionmaker, **options)
