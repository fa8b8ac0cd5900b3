"""Business rules of the queue service. Writes state (and, with events, outbox rows); never commits."""

from sqlalchemy.ext.asyncio import AsyncSession

from services.queue import repository
from services.queue.models import Center
from services.queue.schemas import CenterIn
from shared import clock
from shared.errors import Conflict


async def create_center(session: AsyncSession, data: CenterIn) -> Center:
    if await repository.get_center(session, data.id) is not None:
        raise Conflict(f"centre {data.id} already exists", field="id", code="center_exists")
    now = clock.now()
    center = Center(id=data.id, name=data.name, address=data.address, created_at=now, updated_at=now)
    session.add(center)
    await session.flush()
    return center
