"""HTTP endpoints of the monitor service: the centres it knows (a read copy of the queue service's)."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from services.monitor.models import CenterCopy
from shared.auth import CurrentUser
from shared.db import SessionDep
from shared.errors import NotFound

router = APIRouter(prefix="/centers", tags=["centers"])


class CenterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    address: str | None
    updated_at: datetime


async def _center(center_id: str, session: SessionDep, user: CurrentUser) -> CenterCopy:
    user.check_center(center_id)
    center = await session.get(CenterCopy, center_id)
    if center is None:
        raise NotFound(f"centre {center_id} is not known here", field="center_id")
    return center


CenterDep = Annotated[CenterCopy, Depends(_center)]


@router.get("", response_model=list[CenterOut])
async def list_centers(session: SessionDep, user: CurrentUser) -> list[CenterCopy]:
    """The centres the caller may see, from this service's read copy."""
    stmt = select(CenterCopy).order_by(CenterCopy.id)
    if not user.spans_all_centers:
        stmt = stmt.where(CenterCopy.id.in_(user.centers))
    return list((await session.scalars(stmt)).all())


@router.get("/{center_id}", response_model=CenterOut)
async def get_center(center: CenterDep) -> CenterCopy:
    """One centre, from this service's read copy."""
    return center
