"""The supervision office's reports: KPIs (and, with supervision II, window scores and bulletins)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from services.monitor import kpis
from shared.auth import Principal, Role, require
from shared.db import SessionDep
from shared.errors import AppError

router = APIRouter(tags=["reports"])

Reader = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.CENTER_ADMIN, Role.SYSTEM_ADMIN))]
MAX_DAYS = 400


@router.get("/kpis", responses={200: {"content": {"text/csv": {}}}})
async def get_kpis(session: SessionDep, user: Reader,
                   center: Annotated[str, Query(pattern=r"^[A-Za-z0-9]{2,32}$")],
                   from_: Annotated[date, Query(alias="from")], to: date,
                   group_by: kpis.GroupBy = "none",
                   format: Literal["json", "csv"] = "json") -> Any:
    """The cases' KPIs of a centre over local dates from..to (inclusive), per department, window, item or day
    (see the README for each definition next to its SQL); `?format=csv` for a spreadsheet."""
    user.check_center(center)
    if to < from_:
        raise AppError("to is before from", field="to", status=422, code="invalid_period")
    if (to - from_).days > MAX_DAYS:
        raise AppError(f"a period is at most {MAX_DAYS} days", field="to", status=422, code="period_too_long")
    rows = await kpis.case_kpis(session, center, from_, to, group_by)
    if format == "csv":
        name = f"kpis-{center}-{from_:%Y%m%d}-{to:%Y%m%d}-{group_by}.csv"
        return Response(kpis.to_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f"attachment; filename={name}"})
    return {"center": center, "from": from_, "to": to, "group_by": group_by, "rows": [asdict(r) for r in rows]}
