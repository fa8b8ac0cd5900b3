"""The registry's Prometheus metrics beyond the per-event counter (registry.CASES): the open cases by centre,
kind and status, counted by the worker's leader once a minute (a count over the table, so it is right after
any restart, and no API replica has to agree with another)."""

from __future__ import annotations

from datetime import datetime, timedelta

from prometheus_client import Gauge
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.cases.transitions import OPEN_STATES
from shared.timers import PeriodicJob

OPEN_CASES = Gauge("hall_cases_open", "Open cases (accepted, not completed or withdrawn)",
                   ["center", "kind", "status"])
OVERDUE_CASES = Gauge("hall_cases_overdue", "Open cases past their due_at whose clock runs", ["center", "kind"])

_COUNT = text("""
    SELECT center_id, kind, status, count(*) AS n, count(*) FILTER (WHERE due_at < :now) AS overdue
    FROM cases WHERE status = ANY(:open) GROUP BY center_id, kind, status
""")


async def count_open_cases(session: AsyncSession, due: datetime) -> None:
    """The periodic job: set the open-case gauges from the table (labels that dropped to nothing go to 0)."""
    rows = (await session.execute(_COUNT, {"now": due, "open": list(OPEN_STATES)})).all()
    open_counts: dict[tuple[str, str, str], int] = {}
    overdue: dict[tuple[str, str], int] = {}
    for row in rows:
        open_counts[(row.center_id, row.kind, row.status)] = row.n
        if row.status not in ("supplement", "special", "forwarded"):
            overdue[(row.center_id, row.kind)] = overdue.get((row.center_id, row.kind), 0) + row.overdue
    for gauge, counts in ((OPEN_CASES, open_counts), (OVERDUE_CASES, overdue)):
        for labels in _known(gauge) - set(counts):
            gauge.labels(*labels).set(0)
        for labels, n in counts.items():
            gauge.labels(*labels).set(n)


def _known(gauge: Gauge) -> set[tuple[str, ...]]:
    return {tuple(sample.labels.values()) for metric in gauge.collect() for sample in metric.samples}


OPEN_CASES_JOB = PeriodicJob("cases.open_cases_gauge", timedelta(minutes=1), count_open_cases, catch_up="latest")
