"""Endpoints of the hall notices the display scrolls (公告): the hall manager adds, changes and deletes them;
everyone of the centre reads them."""

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from services.queue import notices, repository
from services.queue.models import Notice
from services.queue.router import CenterDep
from shared import clock
from shared.auth import Principal, Role, require
from shared.db import SessionDep
from shared.errors import NotFound

router = APIRouter(prefix="/centers/{center_id}/notices", tags=["notices"])
HallManager = Annotated[Principal, Depends(require(Role.HALL_MANAGER, Role.CENTER_ADMIN, Role.SYSTEM_ADMIN))]


class NoticeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=500, examples=["本中心周六上午开展预约服务"])
    starts_on: date | None = Field(None, description="local date, inclusive; none: from now")
    ends_on: date | None = Field(None, description="local date, inclusive; none: until deleted")
    position: int = Field(0, ge=0, le=10000, description="the scrolling order, lowest first")


class NoticePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(None, min_length=1, max_length=500)
    starts_on: date | None = None
    ends_on: date | None = None
    position: int | None = Field(None, ge=0, le=10000)


class NoticeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    center_id: str
    text: str
    starts_on: date | None
    ends_on: date | None
    position: int
    created_by: str
    created_at: datetime
    updated_at: datetime


async def _notice(notice_id: int, center: CenterDep, session: SessionDep) -> Notice:
    notice = await repository.get_notice(session, center.id, notice_id)
    if notice is None:
        raise NotFound(f"centre {center.id} has no notice {notice_id}", field="notice_id")
    return notice


NoticeDep = Annotated[Notice, Depends(_notice)]


@router.post("", status_code=201, response_model=NoticeOut)
async def create(body: NoticeIn, center: CenterDep, user: HallManager, session: SessionDep) -> Notice:
    """Add a notice (hall manager); publishes center.notices_changed, which the display feed carries."""
    return await notices.create(session, center, user, text=body.text, starts_on=body.starts_on,
                                ends_on=body.ends_on, position=body.position)


@router.get("", response_model=list[NoticeOut])
async def list_notices(center: CenterDep, session: SessionDep, current: bool = False) -> list[Notice]:
    """The centre's notices in scrolling order (`current=true`: only today's)."""
    found = await repository.list_notices(session, center.id)
    today = clock.today_local()
    return [n for n in found if notices.shown_on(n, today)] if current else found


@router.patch("/{notice_id}", response_model=NoticeOut)
async def patch(body: NoticePatch, _: HallManager, notice: NoticeDep, center: CenterDep,
                session: SessionDep) -> Notice:
    """Change a notice's text, period or order (hall manager); publishes center.notices_changed."""
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    return await notices.update(session, center, notice, changes)


@router.delete("/{notice_id}", status_code=204)
async def delete(_: HallManager, notice: NoticeDep, center: CenterDep, session: SessionDep) -> Response:
    """Delete a notice (hall manager); publishes center.notices_changed."""
    await notices.delete(session, center, notice)
    return Response(status_code=204)
