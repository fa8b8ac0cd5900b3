"""The supervision office's reports: KPIs (and, with supervision II, window scores and bulletins)."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from services.monitor import bulletin, kpis, scores
from services.monitor.models import ScoreBonus, ScoreSettings
from shared import clock
from shared.auth import Principal, Role, require
from shared.db import SessionDep
from shared.documents.render import render
from shared.errors import AppError

router = APIRouter(tags=["reports"])

Reader = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.CENTER_ADMIN, Role.SYSTEM_ADMIN))]
Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR))]
Admin = Annotated[Principal, Depends(require(Role.CENTER_ADMIN, Role.SYSTEM_ADMIN))]
Month = Annotated[str, Query(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$", description="yyyy-mm, local")]
MAX_DAYS = 400
MONTH = re.compile(r"^20[0-9]{2}-(0[1-9]|1[0-2])$")


@router.get("/kpis", responses={200: {"content": {"text/csv": {}}}})
async def get_kpis(session: SessionDep, user: Reader,
                   center: Annotated[str, Query(pattern=r"^[A-Za-z0-9]{2,32}$")],
                   from_: Annotated[date, Query(alias="from")], to: date,
                   group_by: kpis.GroupBy = "none",
                   format: Literal["json", "csv"] = "json",
                   table: Annotated[Literal["cases", "hall"], Query(description="which table the CSV holds")] = "cases",
                   ) -> Any:
    """The cases' KPIs of a centre over local dates from..to (inclusive), per department, window, item or day
    (see the README for each definition next to its SQL); `?format=csv` for a spreadsheet."""
    user.check_center(center)
    if to < from_:
        raise AppError("to is before from", field="to", status=422, code="invalid_period")
    if (to - from_).days > MAX_DAYS:
        raise AppError(f"a period is at most {MAX_DAYS} days", field="to", status=422, code="period_too_long")
    rows = await kpis.case_kpis(session, center, from_, to, group_by)
    hall = await kpis.hall_kpis(session, center, from_, to, group_by)
    if format == "csv":
        name = f"kpis-{table}-{center}-{from_:%Y%m%d}-{to:%Y%m%d}-{group_by}.csv"
        body = kpis.to_csv(rows) if table == "cases" else kpis.rows_to_csv(hall)
        return Response(body, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f"attachment; filename={name}"})
    return {"center": center, "from": from_, "to": to, "group_by": group_by, "rows": [asdict(r) for r in rows],
            "hall": [asdict(r) for r in hall]}


# --- window scores (窗口考评) ----------------------------------------------------------------------------------

@router.get("/scores", responses={200: {"content": {"text/csv": {}}}})
async def get_scores(session: SessionDep, user: Reader, center: Annotated[str, Query(pattern=r"^[A-Za-z0-9]{2,32}$")],
                     month: Month, format: Literal["json", "csv"] = "json") -> Any:
    """Every window's score of the month, ranked, with each deduction (kind, its occurrence in the month, the
    points, when, what) and each bonus listed."""
    user.check_center(center)
    ranked = await scores.month_scores(session, center, month)
    if format == "csv":
        lines = ["\ufeffrank,window,score,deducted,bonus," + ",".join(scores.KINDS)]
        for s in ranked:
            counts = [str(sum(d.points for d in s.deductions if d.kind == kind)) for kind in scores.KINDS]
            lines.append(",".join([str(s.rank), s.window, str(s.score), str(s.deducted), str(s.bonus), *counts]))
        return Response("\r\n".join(lines) + "\r\n", media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f"attachment; filename=scores-{center}-{month}.csv"})
    return {"center": center, "month": month, "windows": [asdict(s) for s in ranked]}


class BonusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    center: str = Field(pattern=r"^[A-Za-z0-9]{2,32}$")
    window: str = Field(min_length=1, max_length=16)
    month: str = Field(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$")
    points: int = Field(ge=1, le=20)
    reason: str = Field(min_length=1, max_length=500)


@router.post("/scores/bonus", status_code=201)
async def grant_bonus(body: BonusIn, session: SessionDep, user: Supervisor) -> dict[str, Any]:
    """表彰: bonus points for a window's month, with the reason."""
    user.check_center(body.center)
    bonus = ScoreBonus(center_id=body.center, window=body.window, month=body.month, points=body.points,
                       reason=body.reason, granted_by=user.subject, granted_at=clock.now())
    session.add(bonus)
    await session.flush()
    return {"id": bonus.id, "center": body.center, "window": body.window, "month": body.month,
            "points": body.points, "reason": body.reason, "granted_by": user.subject}


class ScoreSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deductions: dict[Literal["warning", "criticism", "manual_finding", "vacancy", "bad_rating", "complaint_upheld"],
                     list[Annotated[int, Field(ge=0, le=100)]]] = Field(
        default_factory=dict, description="points for the 1st, 2nd, ... occurrence of a kind in a month; the last repeats")
    publish_ranking: bool | None = Field(None, description="the month's ranking on the public page (unchanged if absent)")


@router.get("/centers/{center_id}/score-settings")
async def get_score_settings(center_id: str, session: SessionDep, user: Reader) -> dict[str, Any]:
    user.check_center(center_id)
    return await _settings_out(session, center_id)


async def _settings_out(session: SessionDep, center_id: str) -> dict[str, Any]:
    row = await session.get(ScoreSettings, center_id)
    return {"center_id": center_id, "deductions": await scores.deductions_of(session, center_id),
            "publish_ranking": bool(row and row.publish_ranking)}


@router.put("/centers/{center_id}/score-settings")
async def put_score_settings(center_id: str, body: ScoreSettingsIn, session: SessionDep,
                             user: Admin) -> dict[str, Any]:
    """The deductions per kind and repeat; kinds not given keep the default 3, 5, 10."""
    user.check_center(center_id)
    for kind, scale in body.deductions.items():
        if not scale:
            raise AppError(f"{kind} needs at least one step", field=f"deductions.{kind}", status=422,
                           code="empty_scale")
    row = await session.get(ScoreSettings, center_id, with_for_update=True)
    values: dict[str, list[int]] = {str(k): list(v) for k, v in body.deductions.items()}
    if row is None:
        session.add(ScoreSettings(center_id=center_id, deductions=values, publish_ranking=bool(body.publish_ranking),
                                  updated_at=clock.now(), updated_by=user.subject))
    else:
        row.deductions, row.updated_at, row.updated_by = values, clock.now(), user.subject
        if body.publish_ranking is not None:
            row.publish_ranking = body.publish_ranking
    await session.flush()
    return await _settings_out(session, center_id)


@router.get("/public/scores", tags=["public"])
async def public_ranking(session: SessionDep, center: Annotated[str, Query(pattern=r"^[A-Za-z0-9]{2,32}$")],
                         month: Month) -> dict[str, Any]:
    """The month's window ranking, if the centre publishes it (window, rank, score: no deduction detail)."""
    row = await session.get(ScoreSettings, center)
    if row is None or not row.publish_ranking:
        raise AppError(f"centre {center} does not publish its ranking", field="center", status=404,
                       code="not_published")
    ranked = await scores.month_scores(session, center, month)
    return {"center": center, "month": month,
            "windows": [{"rank": s.rank, "window": s.window, "score": s.score} for s in ranked]}


@router.get("/scores/yearly", responses={200: {"content": {"text/csv": {}}}})
async def yearly(session: SessionDep, user: Reader, center: Annotated[str, Query(pattern=r"^[A-Za-z0-9]{2,32}$")],
                 year: Annotated[int, Query(ge=2000, le=2100)], format: Literal["json", "csv"] = "json") -> Any:
    """The year per department: its windows' mean score per month (up to this month), what was deducted by kind,
    and the sanctions that count (警告, 通报批评)."""
    user.check_center(center)
    departments = await scores.yearly(session, center, year)
    if format == "csv":
        months = [f"{year}-{m:02d}" for m in range(1, 13)]
        lines = ["\ufeffdepartment," + ",".join(months) + "," + ",".join(f"deducted_{k}" for k in scores.KINDS)
                 + ",warnings,criticisms"]
        for d in departments:
            lines.append(",".join([str(d["department"]), *(str(d["months"].get(m, "")) for m in months),
                                   *(str(d["deducted"][k]) for k in scores.KINDS),
                                   str(d["sanctions"]["warning"]), str(d["sanctions"]["criticism"])]))
        return Response("\r\n".join(lines) + "\r\n", media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f"attachment; filename=yearly-{center}-{year}.csv"})
    return {"center": center, "year": year, "departments": departments}


@router.get("/bulletins/{month}.pdf", response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
async def bulletin_pdf(month: str, session: SessionDep, user: Reader,
                       center: Annotated[str, Query(pattern=r"^[A-Za-z0-9]{2,32}$")]) -> Response:
    """The monthly bulletin (通报): KPIs, sanctions, window ranking, as an A4 PDF."""
    if not MONTH.fullmatch(month):
        raise AppError("the month is yyyy-mm", field="month", status=422, code="invalid_month")
    user.check_center(center)
    document = await bulletin.bulletin(session, center, month)
    body = await run_in_threadpool(render, document)
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": f"inline; filename=bulletin-{center}-{month}.pdf",
                             "Cache-Control": "no-store"})
