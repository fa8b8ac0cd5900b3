"""Business rules of the queue service. Writes state (and, with events, outbox rows); never commits."""

from sqlalchemy.ext.asyncio import AsyncSession

from services.queue import repository
from services.queue.models import Center
from services.queue.schemas import CenterIn
from shared import clock
from shared.errors import Conflict
from shared.events.catalog import CenterUpserted
from shared.events.outbox import publish

PRODUCER = "queue"


async def create_center(session: AsyncSession, data: CenterIn) -> Center:
    if await repository.get_center(session, data.id) is not None:
        raise Conflict(f"centre {data.id} already exists", field="id", code="center_exists")
    now = clock.now()
    center = Center(id=data.id, name=data.name, address=data.address, created_at=now, updated_at=now)
    session.add(center)
    await session.flush()
    await _publish_center(session, center)
    return center


async def update_center(session: AsyncSession, center: Center, *, name: str, address: str | None) -> Center:
    center.name = name
    center.address = address
    center.updated_at = clock.now()
    # flush first: the UPDATE's row lock makes a concurrent change of this centre wait for our commit
    # before it takes its outbox sequence, so the events are in the order of the changes
    await session.flush()
    await _publish_center(session, center)
    return center


async def _publish_center(session: AsyncSession, center: Center) -> None:
    await publish(session, PRODUCER, CenterUpserted(id=center.id, name=center.name, address=center.address),
                  subject=center.id, center_id=center.id)
