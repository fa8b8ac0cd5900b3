"""Every query of departments and the item catalogue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.cases.intake.models import CenterSetting, ItemFile
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


async def list_items(session: AsyncSession, center_id: str, department: str | None = None, *,
                     for_update: bool = False) -> list[Item]:
    stmt = select(Item).where(Item.center_id == center_id)
    if department is not None:
        stmt = stmt.where(Item.department == department)
    if for_update:
        stmt = stmt.with_for_update()
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


async def compression_target(session: AsyncSession, center_id: str) -> int | None:
    """The centre's own compression target (PUT /centers/{center}/settings), None when it set none."""
    return await session.scalar(select(CenterSetting.compression_target_percent)
                                .where(CenterSetting.center_id == center_id))


async def item_files(session: AsyncSession, center_id: str,
                     codes: Sequence[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """The guide files of a centre's items (of `codes`, when given), without their content, by item code."""
    stmt = select(ItemFile.item_code, ItemFile.name, ItemFile.kind, ItemFile.content_type, ItemFile.size,
                  ItemFile.sha256, ItemFile.uploaded_at).where(ItemFile.center_id == center_id)
    if codes is not None:
        stmt = stmt.where(ItemFile.item_code.in_(list(codes)))
    found: dict[str, list[dict[str, Any]]] = {}
    for row in (await session.execute(stmt.order_by(ItemFile.item_code, ItemFile.kind, ItemFile.name))).all():
        found.setdefault(row.item_code, []).append(row._asdict())
    return found
