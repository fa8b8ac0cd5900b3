"""KPIs of the cases (DOMAIN.md "Electronic supervision"), from the read model only, each one SQL aggregate.

Period: local dates `from`..`to` inclusive (Asia/Shanghai). A case counts as accepted in the period by its
acceptance moment and as completed by its completion moment, so a day's row says what happened that day.

| KPI | definition |
|---|---|
| accepted | cases accepted in the period (imported ones by their original acceptance) |
| expedited | of those, marked 特事特办 |
| completed | cases completed (办结, approved or refused) in the period |
| promised_on_time_rate | 承诺件按时办结率: promised cases completed on time / promised cases completed |
| immediate_on_the_spot_rate | 即办件当场办结率: immediate cases completed on their acceptance day / immediate cases completed |
| completed_late, overdue_days | cases completed late, and the sum of their working days late |
| speedup_rate | 提速率: mean of (legal − promised) / legal over the cases accepted (items with a legal limit) |
| open_overdue | (no group by day) cases open now, running, past their due moment |
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock

GroupBy = Literal["department", "window", "item", "day", "none"]
LOCAL = "Asia/Shanghai"
_KEYS: dict[str, tuple[str, str]] = {  # group -> (key of the acceptance side, key of the completion side)
    "department": ("department", "department"),
    "window": ("coalesce(\"window\", '-')", "coalesce(\"window\", '-')"),
    "item": ("item_code", "item_code"),
    "day": (f"((accepted_at AT TIME ZONE '{LOCAL}')::date)::text", f"((completed_at AT TIME ZONE '{LOCAL}')::date)::text"),
    "none": ("'all'", "'all'"),
}


@dataclass(frozen=True)
class CaseKpis:
    key: str
    accepted: int
    expedited: int
    completed: int
    promised_completed: int
    promised_on_time: int
    promised_on_time_rate: float | None
    immediate_completed: int
    immediate_on_the_spot: int
    immediate_on_the_spot_rate: float | None
    completed_late: int
    overdue_days: int
    speedup_rate: float | None
    open_overdue: int | None


def _sql(group: str) -> str:
    accepted_key, completed_key = _KEYS[group]
    # open overdue is a state now, not an event of the period: not per day
    open_overdue = "" if group == "day" else f""", o AS (
            SELECT {accepted_key} AS k, count(*) AS open_overdue
            FROM case_clocks WHERE center_id = :center AND closed_at IS NULL AND NOT paused AND due_at < :now
            GROUP BY 1
        )"""
    join_open = "" if group == "day" else " FULL JOIN o ON o.k = coalesce(a.k, c.k)"
    key = "coalesce(a.k, c.k)" if group == "day" else "coalesce(a.k, c.k, o.k)"
    open_column = "NULL::bigint" if group == "day" else "coalesce(o.open_overdue, 0)"
    return f"""
        WITH a AS (
            SELECT {accepted_key} AS k, count(*) AS accepted, count(*) FILTER (WHERE expedited) AS expedited,
                   avg((legal_limit_days - promised_limit_days)::numeric / legal_limit_days)
                       FILTER (WHERE legal_limit_days > 0) AS speedup_rate
            FROM case_clocks WHERE center_id = :center AND accepted_at >= :start AND accepted_at < :end
            GROUP BY 1
        ), c AS (
            SELECT {completed_key} AS k, count(*) AS completed,
                   count(*) FILTER (WHERE kind = 'promised') AS promised_completed,
                   count(*) FILTER (WHERE kind = 'promised' AND NOT completed_late) AS promised_on_time,
                   count(*) FILTER (WHERE kind = 'immediate') AS immediate_completed,
                   count(*) FILTER (WHERE kind = 'immediate' AND (completed_at AT TIME ZONE '{LOCAL}')::date
                                    = (accepted_at AT TIME ZONE '{LOCAL}')::date) AS immediate_on_the_spot,
                   count(*) FILTER (WHERE completed_late) AS completed_late,
                   coalesce(sum(overdue_working_days) FILTER (WHERE completed_late), 0) AS overdue_days
            FROM case_clocks WHERE center_id = :center AND completed_at >= :start AND completed_at < :end
            GROUP BY 1
        ){open_overdue}
        SELECT {key} AS key, coalesce(a.accepted, 0) AS accepted, coalesce(a.expedited, 0) AS expedited,
               coalesce(c.completed, 0) AS completed, coalesce(c.promised_completed, 0) AS promised_completed,
               coalesce(c.promised_on_time, 0) AS promised_on_time,
               coalesce(c.immediate_completed, 0) AS immediate_completed,
               coalesce(c.immediate_on_the_spot, 0) AS immediate_on_the_spot,
               coalesce(c.completed_late, 0) AS completed_late, coalesce(c.overdue_days, 0) AS overdue_days,
               a.speedup_rate, {open_column} AS open_overdue
        FROM a FULL JOIN c ON a.k = c.k{join_open}
        ORDER BY 1
    """


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return clock.local_instant(start), clock.local_instant(end + timedelta(days=1))


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def case_kpis(session: AsyncSession, center_id: str, start: date, end: date,
                    group_by: GroupBy = "none") -> list[CaseKpis]:
    lo, hi = _bounds(start, end)
    rows = (await session.execute(text(_sql(group_by)),
                                  {"center": center_id, "start": lo, "end": hi, "now": clock.now()})).mappings().all()
    out = []
    for r in rows:
        out.append(CaseKpis(
            key=r["key"], accepted=r["accepted"], expedited=r["expedited"], completed=r["completed"],
            promised_completed=r["promised_completed"], promised_on_time=r["promised_on_time"],
            promised_on_time_rate=_rate(r["promised_on_time"], r["promised_completed"]),
            immediate_completed=r["immediate_completed"], immediate_on_the_spot=r["immediate_on_the_spot"],
            immediate_on_the_spot_rate=_rate(r["immediate_on_the_spot"], r["immediate_completed"]),
            completed_late=r["completed_late"], overdue_days=int(r["overdue_days"]),
            speedup_rate=round(float(r["speedup_rate"]), 4) if r["speedup_rate"] is not None else None,
            open_overdue=r["open_overdue"]))
    return out


def to_csv(rows: list[CaseKpis]) -> str:
    """The cases' figures as CSV: the header even when there is no row."""
    return rows_to_csv(rows) if rows else "\ufeff" + ",".join(CaseKpis.__dataclass_fields__) + "\r\n"


# --- the hall's KPIs: tickets, waits, service times, no-shows, satisfaction ---------------------------------------

_HALL_KEYS: dict[str, str] = {"department": "coalesce(department, '-')", "window": "coalesce(\"window\", '-')",
                              "item": "service_code", "day": "business_date::text", "none": "'all'"}


def _hall_sql(group: str) -> str:
    key = _HALL_KEYS[group]
    return f"""
        WITH t AS (
            SELECT {key} AS k, count(*) AS tickets, count(*) FILTER (WHERE wait_s IS NOT NULL) AS called,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY wait_s) FILTER (WHERE wait_s IS NOT NULL) AS wait_p50,
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY wait_s) FILTER (WHERE wait_s IS NOT NULL) AS wait_p90,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY service_s) FILTER (WHERE status = 'done') AS service_p50,
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY service_s) FILTER (WHERE status = 'done') AS service_p90,
                   count(*) FILTER (WHERE status = 'no_show') AS no_shows
            FROM hall_tickets WHERE center_id = :center AND business_date BETWEEN :start AND :end
            GROUP BY 1
        ), r AS (
            SELECT {key} AS k, count(*) AS ratings, count(*) FILTER (WHERE rating >= 3) AS satisfied
            FROM ratings WHERE center_id = :center AND business_date BETWEEN :start AND :end
            GROUP BY 1
        )
        SELECT coalesce(t.k, r.k) AS key, coalesce(t.tickets, 0) AS tickets, coalesce(t.called, 0) AS called,
               t.wait_p50, t.wait_p90, t.service_p50, t.service_p90, coalesce(t.no_shows, 0) AS no_shows,
               coalesce(r.ratings, 0) AS ratings, coalesce(r.satisfied, 0) AS satisfied
        FROM t FULL JOIN r ON t.k = r.k
        ORDER BY 1
    """


@dataclass(frozen=True)
class HallKpis:
    key: str
    tickets: int
    called: int
    wait_p50_s: float | None
    wait_p90_s: float | None
    service_p50_s: float | None
    service_p90_s: float | None
    no_shows: int
    no_show_rate: float | None
    ratings: int
    satisfied: int
    satisfaction_rate: float | None


def _seconds(value: object) -> float | None:
    return round(float(value), 1) if value is not None else None  # type: ignore[arg-type]


async def hall_kpis(session: AsyncSession, center_id: str, start: date, end: date,
                    group_by: GroupBy = "none") -> list[HallKpis]:
    rows = (await session.execute(text(_hall_sql(group_by)),
                                  {"center": center_id, "start": start, "end": end})).mappings().all()
    return [HallKpis(key=r["key"], tickets=r["tickets"], called=r["called"], wait_p50_s=_seconds(r["wait_p50"]),
                     wait_p90_s=_seconds(r["wait_p90"]), service_p50_s=_seconds(r["service_p50"]),
                     service_p90_s=_seconds(r["service_p90"]), no_shows=r["no_shows"],
                     no_show_rate=_rate(r["no_shows"], r["called"]), ratings=r["ratings"], satisfied=r["satisfied"],
                     satisfaction_rate=_rate(r["satisfied"], r["ratings"]))
            for r in rows]


def rows_to_csv(rows: list[Any]) -> str:
    """Dataclass rows as CSV (UTF-8 with a BOM, so a spreadsheet opens the Chinese keys right)."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(asdict(rows[0])), lineterminator="\r\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in asdict(row).items()})
    return "\ufeff" + buffer.getvalue()
