"""HTTP endpoints of departments (窗口单位), the item catalogue (事项目录) and the public guide (办事指南).

A centre's admin (or a system admin) writes; its staff read; the guide is public and shows no person.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from services.cases.catalogue import repository, service
from services.cases.catalogue.schemas import (
    CENTER,
    CODE,
    DepartmentIn,
    DepartmentOut,
    DepartmentPatch,
    ItemIn,
    ItemOut,
    ItemPatch,
    PublicItemOut,
)
from services.cases.models import Department, Item
from shared import clock
from shared.auth import Principal, Role, require
from shared.calendar.store import CalendarDep
from shared.db import SessionDep
from shared.errors import NotFound

router = APIRouter()

CenterEditor = Annotated[Principal, Depends(require(Role.CENTER_ADMIN, Role.SYSTEM_ADMIN))]
# staff of the centre read departments and items (the head's contacts, masked, are for staff only);
# devices and the public have the guide
StaffReader = Annotated[Principal, Depends(require(Role.CLERK, Role.CHIEF_REP, Role.HALL_MANAGER, Role.SUPERVISOR,
                                                   Role.CENTER_ADMIN, Role.SYSTEM_ADMIN))]
CenterQuery = Annotated[str, Query(pattern=CENTER, description="centre id")]


async def _context(request: Request) -> service.Context:
    return service.Context(pii=request.app.state.pii,
                           compression_target_percent=request.app.state.settings.compression_target_percent)


ContextDep = Annotated[service.Context, Depends(_context)]


# departments (窗口单位)

async def _department(center_id: str, code: str, user: StaffReader, session: SessionDep) -> Department:
    user.check_center(center_id)
    department = await repository.get_department(session, center_id, code)
    if department is None:
        raise NotFound(f"centre {center_id} has no department {code}", field="code")
    return department


async def _department_to_change(center_id: str, code: str, user: CenterEditor, session: SessionDep) -> Department:
    user.check_center(center_id)
    department = await repository.get_department(session, center_id, code, for_update=True)
    if department is None:
        raise NotFound(f"centre {center_id} has no department {code}", field="code")
    return department


@router.post("/departments", tags=["catalogue"], status_code=201, response_model=DepartmentOut)
async def create_department(body: DepartmentIn, user: CenterEditor, session: SessionDep,
                            ctx: ContextDep) -> Department:
    """Add a department to a centre (centre admin); publishes department.upserted."""
    user.check_center(body.center_id)
    return await service.create_department(session, ctx, body)


@router.get("/departments", tags=["catalogue"], response_model=list[DepartmentOut])
async def list_departments(center: CenterQuery, user: StaffReader, session: SessionDep) -> list[Department]:
    """A centre's departments, the head's contacts masked."""
    user.check_center(center)
    return await repository.list_departments(session, center)


@router.get("/departments/{center_id}/{code}", tags=["catalogue"], response_model=DepartmentOut)
async def get_department(department: Annotated[Department, Depends(_department)]) -> Department:
    """One department, the head's contacts masked."""
    return department


@router.patch("/departments/{center_id}/{code}", tags=["catalogue"], response_model=DepartmentOut)
async def patch_department(body: DepartmentPatch, department: Annotated[Department, Depends(_department_to_change)],
                           session: SessionDep, ctx: ContextDep) -> Department:
    """Change a department (centre admin); publishes department.upserted."""
    return await service.update_department(session, ctx, department, body)


# the item catalogue (事项目录)

async def _item(center_id: str, code: str, user: StaffReader, session: SessionDep) -> Item:
    user.check_center(center_id)
    item = await repository.get_item(session, center_id, code)
    if item is None:
        raise NotFound(f"centre {center_id} has no item {code}", field="code")
    return item


async def _item_to_change(center_id: str, code: str, user: CenterEditor, session: SessionDep) -> Item:
    user.check_center(center_id)
    item = await repository.get_item(session, center_id, code, for_update=True)
    if item is None:
        raise NotFound(f"centre {center_id} has no item {code}", field="code")
    return item


@router.post("/items", tags=["catalogue"], status_code=201, response_model=ItemOut)
async def create_item(body: ItemIn, user: CenterEditor, session: SessionDep, ctx: ContextDep) -> ItemOut:
    """Add an item to a centre's catalogue (centre admin); publishes item.upserted."""
    user.check_center(body.center_id)
    return await service.item_out(session, ctx, await service.create_item(session, ctx, body))


@router.get("/items", tags=["catalogue"], response_model=list[ItemOut])
async def list_items(center: CenterQuery, user: StaffReader, session: SessionDep, ctx: ContextDep,
                     department: Annotated[str | None, Query(pattern=CODE)] = None) -> list[ItemOut]:
    """A centre's items, inactive ones included, optionally of one department, flagged against the centre's
    compression target with their speed-up rate (提速率)."""
    user.check_center(center)
    target = await service.target_of(session, ctx, center)
    files = await repository.item_files(session, center)
    return [service.item_out_with(item, target, files.get(item.code, []))
            for item in await repository.list_items(session, center, department)]


@router.get("/items/{center_id}/{code}", tags=["catalogue"], response_model=ItemOut)
async def get_item(item: Annotated[Item, Depends(_item)], session: SessionDep, ctx: ContextDep) -> ItemOut:
    """One item of the catalogue."""
    return await service.item_out(session, ctx, item)


@router.patch("/items/{center_id}/{code}", tags=["catalogue"], response_model=ItemOut)
async def patch_item(body: ItemPatch, item: Annotated[Item, Depends(_item_to_change)], session: SessionDep,
                     ctx: ContextDep) -> ItemOut:
    """Change an item (centre admin); accepted cases keep their limits; publishes item.upserted."""
    return await service.item_out(session, ctx, await service.update_item(session, ctx, item, body))


# the public guide (办事指南): no token

@router.get("/public/items", tags=["public"], response_model=list[PublicItemOut])
async def public_items(center: CenterQuery, session: SessionDep, calendar: CalendarDep) -> list[PublicItemOut]:
    """The centre's guide: its active items, with the due date of a case accepted today (no token)."""
    today = clock.today_local()
    files = await repository.item_files(session, center)
    return [service.public_item(calendar, item, name, today, files.get(item.code, []))
            for item, name in await repository.public_items(session, center)]


@router.get("/public/items/{center_id}/{code}", tags=["public"], response_model=PublicItemOut)
async def public_item(center_id: str, code: str, session: SessionDep, calendar: CalendarDep) -> PublicItemOut:
    """One item of the guide, with the due date of a case accepted today (no token)."""
    found = await repository.public_items(session, center_id, code)
    if not found:
        raise NotFound(f"centre {center_id} has no item {code} in its guide", field="code")
    (item, name), = found
    files = (await repository.item_files(session, center_id, [code])).get(code, [])
    return service.public_item(calendar, item, name, clock.today_local(), files)
