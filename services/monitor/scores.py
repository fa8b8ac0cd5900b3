"""Window scores per month (窗口考评): 100 points, less a deduction for every warning, criticism, vacancy, bad
rating, upheld complaint and manual finding of the window in the month, each repeat of a kind in the month
costing more ("每次分别减3、5、10分": the first 3, the second 5, the third and later 10, per centre setting),
plus the bonus points the office grants (表彰). From the read model and supervision's own records only.

What counts, by the local month of its moment:
- warning, criticism: a sanction (not revoked) of an overdue finding whose case was handled at the window,
  by its issue moment;
- manual_finding: a finding recorded by hand against the window (spot check, discipline, media),
  confirmed, by its confirmation moment (its sanction is not counted again);
- vacancy: a vacant_window alert of the window, by its raising moment;
- bad_rating: a rating of 2 不满意 or 1 非常不满意 of a service at the window, by its moment;
- complaint_upheld: a complaint about the window closed as upheld, by its closing moment.
A score does not fall below 0. Windows are those the queue has set up (active), plus any window that has
something counted or a bonus in the month."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.monitor.models import ScoreSettings
from shared import clock

KINDS = ("warning", "criticism", "manual_finding", "vacancy", "bad_rating", "complaint_upheld")
DEFAULT_DEDUCTIONS: dict[str, list[int]] = {kind: [3, 5, 10] for kind in KINDS}
KIND_WORDS = {"warning": "警告", "criticism": "通报批评", "manual_finding": "督查发现问题", "vacancy": "空岗",
              "bad_rating": "差评", "complaint_upheld": "投诉属实"}

_COUNTED = """
    SELECT 'warning' AS kind, f."window" AS win, s.issued_at AS at, s.notice_no AS ref
      FROM sanctions s JOIN findings f ON f.id = s.finding_id
     WHERE s.center_id = :center AND s.status <> 'revoked' AND s.level = 'warning' AND f.source = 'overdue'
       AND f."window" IS NOT NULL AND s.issued_at >= :lo AND s.issued_at < :hi
    UNION ALL
    SELECT 'criticism', f."window", s.issued_at, s.notice_no
      FROM sanctions s JOIN findings f ON f.id = s.finding_id
     WHERE s.center_id = :center AND s.status <> 'revoked' AND s.level = 'criticism' AND f.source = 'overdue'
       AND f."window" IS NOT NULL AND s.issued_at >= :lo AND s.issued_at < :hi
    UNION ALL
    SELECT 'manual_finding', "window", decided_at, 'finding:' || id
      FROM findings
     WHERE center_id = :center AND source <> 'overdue' AND status = 'confirmed' AND "window" IS NOT NULL
       AND decided_at >= :lo AND decided_at < :hi
    UNION ALL
    SELECT 'vacancy', "window", raised_at, 'alert:' || id
      FROM alerts
     WHERE center_id = :center AND kind = 'vacant_window' AND "window" IS NOT NULL
       AND raised_at >= :lo AND raised_at < :hi
    UNION ALL
    SELECT 'bad_rating', "window", submitted_at, 'rating:' || evaluation_id
      FROM ratings
     WHERE center_id = :center AND rating <= 2 AND "window" IS NOT NULL
       AND submitted_at >= :lo AND submitted_at < :hi
    UNION ALL
    SELECT 'complaint_upheld', "window", closed_at, number
      FROM complaints
     WHERE center_id = :center AND status = 'upheld' AND "window" IS NOT NULL
       AND closed_at >= :lo AND closed_at < :hi
    ORDER BY 2, 1, 3, 4
"""


@dataclass
class Deduction:
    kind: str
    occurrence: int
    points: int
    at: datetime
    ref: str


@dataclass
class Bonus:
    points: int
    reason: str
    granted_by: str
    granted_at: datetime


@dataclass
class WindowScore:
    window: str
    score: int
    deducted: int
    bonus: int
    rank: int = 0
    deductions: list[Deduction] = field(default_factory=list)
    bonuses: list[Bonus] = field(default_factory=list)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """`yyyy-mm` -> [its first local midnight, the next month's), in UTC."""
    year, mon = int(month[:4]), int(month[5:7])
    first = date(year, mon, 1)
    after = date(year + (mon == 12), mon % 12 + 1, 1)
    return clock.local_instant(first), clock.local_instant(after)


async def deductions_of(session: AsyncSession, center_id: str) -> dict[str, list[int]]:
    row = await session.get(ScoreSettings, center_id)
    return {**DEFAULT_DEDUCTIONS, **(row.deductions if row else {})}


def points(scale: list[int], occurrence: int) -> int:
    """The n-th occurrence's points (1-based): the last step repeats."""
    return scale[min(occurrence, len(scale)) - 1]


async def month_scores(session: AsyncSession, center_id: str, month: str) -> list[WindowScore]:
    lo, hi = month_bounds(month)
    scales = await deductions_of(session, center_id)
    windows = {r[0] for r in (await session.execute(text(
        "SELECT number FROM hall_windows WHERE center_id = :center AND active"), {"center": center_id})).all()}
    scores: dict[str, WindowScore] = {}

    def score_of(window: str) -> WindowScore:
        return scores.setdefault(window, WindowScore(window=window, score=100, deducted=0, bonus=0))

    seen: dict[tuple[str, str], int] = {}
    for kind, window, at, ref in (await session.execute(text(_COUNTED),
                                                        {"center": center_id, "lo": lo, "hi": hi})).all():
        n = seen[(window, kind)] = seen.get((window, kind), 0) + 1
        cost = points(scales[kind], n)
        entry = score_of(window)
        entry.deductions.append(Deduction(kind=kind, occurrence=n, points=cost, at=at, ref=ref))
        entry.deducted += cost
    for row in (await session.execute(text(
            "SELECT \"window\", points, reason, granted_by, granted_at FROM score_bonuses "
            "WHERE center_id = :center AND month = :month ORDER BY id"), {"center": center_id, "month": month})).all():
        entry = score_of(row.window)
        entry.bonuses.append(Bonus(points=row.points, reason=row.reason, granted_by=row.granted_by,
                                   granted_at=row.granted_at))
        entry.bonus += row.points
    for window in windows:
        score_of(window)
    out = sorted(scores.values(), key=lambda s: s.window)
    for s in out:
        s.score = max(0, 100 - s.deducted + s.bonus)
    ranked = sorted(out, key=lambda s: (-s.score, _window_order(s.window)))
    for place, s in enumerate(ranked, 1):
        s.rank = place
    return ranked


def _window_order(window: str) -> tuple[int, Any]:
    return (0, int(window)) if window.isdigit() else (1, window)


async def yearly(session: AsyncSession, center_id: str, year: int) -> list[dict[str, Any]]:
    """Per department (its windows as the queue set them up): the mean window score of each month of `year`
    up to the current one, the deductions of the year by kind, and the year's sanctions that count."""
    departments = {r[0]: r[1] or "-" for r in (await session.execute(text(
        "SELECT number, department FROM hall_windows WHERE center_id = :center"), {"center": center_id})).all()}
    today = clock.today_local()
    last = 12 if year < today.year else (today.month if year == today.year else 0)
    out: dict[str, dict[str, Any]] = {}

    def of(dept: str) -> dict[str, Any]:
        return out.setdefault(dept, {"department": dept, "months": {}, "deducted": dict.fromkeys(KINDS, 0),
                                     "sanctions": {"warning": 0, "criticism": 0}})

    for month in range(1, last + 1):
        key = f"{year}-{month:02d}"
        per: dict[str, list[int]] = {}
        for s in await month_scores(session, center_id, key):
            dept = departments.get(s.window, "-")
            per.setdefault(dept, []).append(s.score)
            for d in s.deductions:
                of(dept)["deducted"][d.kind] += d.points
        for dept, values in per.items():
            of(dept)["months"][key] = round(sum(values) / len(values), 1)
    for dept, level, n in (await session.execute(text(
            "SELECT department, level, count(*) FROM sanctions WHERE center_id = :center AND year = :year "
            "AND status <> 'revoked' GROUP BY 1, 2"), {"center": center_id, "year": year})).all():
        of(dept)["sanctions"][level] = n
    return sorted(out.values(), key=lambda d: str(d["department"]))
