"""Event type -> handler of the queue service's consumers: its copy of the calendar (for opening days) and
of identity's staff (the names, post titles and photos a window's public sign shows: 岗位公示)."""

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from services.queue.models import Staff
from shared.calendar.store import calendar_consumer
from shared.events.catalog import UserUpserted
from shared.events.consumer import ConsumerSpec, upsert_read_copy
from shared.events.envelope import Envelope
from shared.events.topics import topic_for


def _staff_table() -> Table:
    table = Staff.__table__
    if not isinstance(table, Table):  # a declarative class with a __tablename__ is always mapped to a Table
        raise TypeError("Staff is not mapped to a table")
    return table


STAFF_TABLE = _staff_table()


async def copy_staff(session: AsyncSession, envelope: Envelope) -> None:
    """user.upserted -> the staff copy, unless a newer event of that user was applied (identity's outbox
    sequence orders them: a re-sent or late event changes nothing)."""
    user = envelope.payload()
    assert isinstance(user, UserUpserted)
    if envelope.sequence is None:
        raise ValueError("user.upserted carries no outbox sequence: cannot order it")
    await upsert_read_copy(session, STAFF_TABLE, {
        "id": user.id, "display_name": user.display_name, "post_title": user.post_title,
        "photo_url": user.photo_url, "role": user.role, "centers": list(user.centers),
        "department": user.department, "active": user.active, "updated_at": envelope.occurred_at,
        "last_event_sequence": envelope.sequence,
    })


def staff_consumer() -> ConsumerSpec:
    """The consumer that keeps `staff` equal to identity's users (contacts are not copied: not needed here)."""
    return ConsumerSpec("staff", (topic_for("identity").name,), {"user.upserted": copy_staff})


CONSUMERS: list[ConsumerSpec] = [calendar_consumer(), staff_consumer()]
