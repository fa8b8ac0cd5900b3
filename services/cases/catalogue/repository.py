"""Every query of departments and the item catalogue."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.cases.models import CenterCopy, Department, Item


async def center_known(session: AsyncSession, center_id: str) -> bool:
    """Whether the queue's centre has reached this service's read copy."""
    return await session.get(CenterCopy, center_id) is not None


async def get_department(session: AsyncSession, center_id: str, code: str, *,
                         for_update: bool = False) -> Department | None:
    """One department; `for_update` locks its row so that concurrent changes (and their events) are ordered."""
    stmt = select(Department).where(Department.center_id == center_id, Department.code == code)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).one_or_none()


async def list_departments(session: AsyncSession, center_id: str) -> list[Department]:
    stmt = select(Department).where(Department.center_id == center_id).order_by(Department.code)
    return list((await session.scalars(stmt)).all())


async def get_item(session: AsyncSession, center_id: str, code: str, *, for_update: bool = False) -> Item | None:
    """One item of a centre's catalogue; `for_update` as for departments."""
    stmt = select(Item).where(Item.center_id == center_id, Item.code == code)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).one_or_none()


async def list_items(session: AsyncSession, center_id: str, department: str | None = None) -> list[Item]:
    stmt = select(Item).where(Item.center_id == center_id)
    if department is not None:
        stmt = stmt.where(Item.department == department)
    return list((await session.scalars(stmt.order_by(Item.code))).all())


async def public_items(session: AsyncSession, center_id: str,
                       code: str | None = None) -> list[tuple[Item, str]]:
    """The items the public guide shows, with their department's name: active items of active departments."""
    stmt = (select(Item, Department.name)
            .join(Department, (Department.center_id == Item.center_id) & (Department.code == Item.department))
            .where(Item.center_id == center_id, Item.active.is_(True), Department.active.is_(True)))
    if code is not None:
        stmt = stmt.where(Item.code == code)
    rows = await session.execute(stmt.order_by(Item.code))
    return [(item, name) for item, name in rows]
