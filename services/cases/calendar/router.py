"""Calendar endpoints of the cases service: overrides, year import, deadlines, days."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from services.cases.calendar import service
from services.cases.calendar.schemas import (
    DayOut,
    DaysOut,
    DeadlineOut,
    OverrideOut,
    OverridesIn,
    OverridesOut,
    YearOut,
)
from shared.auth import CurrentUser, Principal, Role, require
from shared.calendar import CalendarImportError, parse_year_csv, parse_year_json
from shared.calendar.store import CalendarDep
from shared.db import SessionDep
from shared.errors import AppError

router = APIRouter(prefix="/calendar", tags=["calendar"])
MAX_RANGE_DAYS = 5 * 366
MAX_WORKING_DAYS = 1000
CenterQuery = Annotated[str | None, Query(alias="center", pattern=r"^[A-Za-z0-9]{2,32}$",
                                          description="centre id; omit for the deployment-wide calendar")]


def _may_see(user: Principal, center: str | None) -> None:
    if center is not None:
        user.check_center(center)


@router.get("/overrides", response_model=OverridesOut)
async def get_overrides(calendar: CalendarDep, user: CurrentUser,
                        center: Annotated[str, Query(pattern=r"^[A-Za-z0-9]{2,32}$")]) -> OverridesOut:
    """A centre's own holidays and working days."""
    user.check_center(center)
    days = [OverrideOut(date=d, kind="working" if w else "holiday")
            for d, w in sorted(calendar.overrides.get(center, {}).items())]
    return OverridesOut(center_id=center, calendar_version=calendar.version, days=days)


@router.put("/overrides", response_model=OverridesOut)
async def put_overrides(body: OverridesIn, session: SessionDep,
                        user: Annotated[Principal, Depends(require(Role.CENTER_ADMIN, Role.SYSTEM_ADMIN))],
                        center: Annotated[str, Query(pattern=r"^[A-Za-z0-9]{2,32}$")]) -> OverridesOut:
    """Make today or later dates holidays or working days for one centre (audited; publishes calendar.changed)."""
    user.check_center(center)
    change = await service.set_overrides(session, center, body, user)
    return OverridesOut(center_id=center, calendar_version=change.calendar_version,
                        days=[OverrideOut(date=d.date, kind=d.kind, reason=d.name) for d in change.days])


@router.put("/years/{year}", response_model=YearOut,
            openapi_extra={"requestBody": {"content": {
                "text/csv": {"schema": {"type": "string"}, "example": "date,kind,name\n2027-01-01,holiday,元旦\n"},
                "application/json": {"schema": {"type": "object"}}}}})
async def put_year(year: int, request: Request, session: SessionDep,
                   user: Annotated[Principal, Depends(require(Role.SYSTEM_ADMIN))]) -> YearOut:
    """Import a whole year's official schedule (CSV `date,kind[,name]` or JSON), e.g. 2027 (system admin)."""
    if not 2000 <= year <= 2100:
        raise AppError("year must be between 2000 and 2100", field="year", status=422, code="validation_failed")
    raw = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    try:
        if content_type == "application/json":
            data = parse_year_json(raw)
            if data.year != year:
                raise CalendarImportError("year", f"body is for {data.year}, the path says {year}")
        elif content_type in ("text/csv", "text/plain"):
            data = parse_year_csv(raw.decode("utf-8-sig"), year)
        else:
            raise AppError("send text/csv or application/json", field="content-type", status=415,
                           code="unsupported_media_type")
    except CalendarImportError as exc:
        raise AppError(exc.reason, field=exc.field, status=422, code="invalid_calendar") from exc
    except UnicodeDecodeError as exc:
        raise AppError("the CSV must be UTF-8", field="body", status=422, code="invalid_calendar") from exc
    change = await service.import_year(session, data, user)
    return YearOut(year=year, calendar_version=change.calendar_version, holidays=len(data.holidays),
                   working_weekend_days=len(data.workdays))


@router.get("/deadline", response_model=DeadlineOut, response_model_by_alias=True)
async def deadline(calendar: CalendarDep, session: SessionDep, user: CurrentUser,
                   from_: Annotated[date, Query(alias="from", description="acceptance date (not counted)")],
                   working_days: Annotated[int, Query(ge=0, le=MAX_WORKING_DAYS)],
                   center: CenterQuery = None) -> DeadlineOut:
    """The due moment of a limit of N working days from a date: end of the N-th working day after it."""
    _may_see(user, center)
    due = calendar.add_working_days(from_, working_days, center)
    fallback = sorted(calendar.fallback_years(within=range(from_.year, due.year + 1)))
    if fallback:
        await service.note_fallback(session, calendar, fallback, from_)
    return DeadlineOut(from_date=from_, working_days=working_days, center_id=center, due_date=due,
                       due_at=calendar.due_at(from_, working_days, center), fallback_years=fallback,
                       calendar_version=calendar.version)


@router.get("/days", response_model=DaysOut)
async def days(calendar: CalendarDep, session: SessionDep, user: CurrentUser,
               from_: Annotated[date, Query(alias="from")], to: Annotated[date, Query()],
               center: CenterQuery = None) -> DaysOut:
    """Each day of a range (at most 5 years): working or not, and where that comes from."""
    _may_see(user, center)
    if to < from_:
        raise AppError("'to' must not be before 'from'", field="to", status=422, code="validation_failed")
    if (to - from_).days > MAX_RANGE_DAYS:
        raise AppError("the range may span at most 5 years", field="to", status=422, code="range_too_long")
    out = []
    day = from_
    while day <= to:
        out.append(DayOut(date=day, working=calendar.is_working_day(day, center),
                          source=calendar.day_source(day, center)))
        day += timedelta(days=1)
    fallback = sorted(calendar.fallback_years(within=range(from_.year, to.year + 1)))
    if fallback:
        await service.note_fallback(session, calendar, fallback, from_)
    return DaysOut(center_id=center, calendar_version=calendar.version, fallback_years=fallback, days=out)

