"""Every query of the queue service."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.queue.models import Center


async def get_center(session: AsyncSession, center_id: str) -> Center | None:
    return await session.get(Center, center_id)


async def list_centers(session: AsyncSession, ids: tuple[str, ...] | None) -> list[Center]:
    stmt = select(Center).order_by(Center.id)
    if ids is not None:
        stmt = stmt.where(Center.id.in_(ids))
    return list((await session.scalars(stmt)).all())
