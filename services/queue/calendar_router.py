"""Opening days of a centre, from the queue service's copy of the calendar (kept from calendar.changed)."""

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from shared.auth import CurrentUser
from shared.calendar.store import CalendarDep
from shared.errors import AppError

router = APIRouter(prefix="/centers", tags=["centers"])
MAX_DAYS = 366


class OpeningDay(BaseModel):
    date: date
    working: bool
    source: str


class OpeningDays(BaseModel):
    center_id: str
    calendar_version: int
    days: list[OpeningDay]


@router.get("/{center_id}/calendar", response_model=OpeningDays)
async def opening_days(center_id: str, calendar: CalendarDep, user: CurrentUser,
                       from_: Annotated[date, Query(alias="from")], to: Annotated[date, Query()]) -> OpeningDays:
    """Which days the centre works (official schedule, imported years and the centre's own overrides)."""
    user.check_center(center_id)
    if to < from_ or (to - from_).days >= MAX_DAYS:
        raise AppError("'to' must be on or after 'from' and within a year of it", field="to", status=422,
                       code="validation_failed")
    days = [from_ + timedelta(days=i) for i in range((to - from_).days + 1)]
    return OpeningDays(center_id=center_id, calendar_version=calendar.version, days=[
        OpeningDay(date=d, working=calendar.is_working_day(d, center_id), source=calendar.day_source(d, center_id))
        for d in days])
