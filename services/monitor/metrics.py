"""The monitor's Prometheus metrics: alerts raised and open, findings, sanctions, and the due-work lag (how
late a due moment was acted on). Counted when the transaction commits (shared.metrics.at_commit); the open
gauges are counted by the worker's leader once a minute."""

from __future__ import annotations

from datetime import datetime, timedelta

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.monitor.models import Alert, Sanction
from shared import clock
from shared.metrics import at_commit
from shared.timers import PeriodicJob

ALERTS = Counter("hall_monitor_alerts_total", "Alerts raised, by kind and level", ["center", "kind", "level"])
ALERTS_RESOLVED = Counter("hall_monitor_alerts_resolved_total", "Alerts resolved (by a person or the system)",
                          ["center", "kind", "level"])
OPEN_ALERTS = Gauge("hall_monitor_open_alerts", "Alerts not resolved yet", ["center", "kind", "level"])
FINDINGS = Counter("hall_monitor_findings_total", "Findings by what happened to them (recorded, confirmed, "
                   "excused)", ["center", "source", "event"])
SANCTIONS = Counter("hall_monitor_sanctions_total", "Sanctions by what happened to them (issued, reclassified, "
                    "rectified, revoked)", ["center", "level", "event"])
SANCTIONS_YEAR = Gauge("hall_monitor_sanctions_this_year", "Sanctions of this local year not revoked (the "
                       "departments' ladders: 警告, 通报批评)", ["center", "level"])
# a due moment is acted on within the timer runner's poll (about a second) unless the worker was down
DUE_LAG = Histogram("hall_monitor_due_lag_seconds", "From a due moment (warn_at, due_at, ...) to its alert",
                    ["kind"], buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600, 86400))


def _label(center: str | None) -> str:
    return center or "-"


def raised(session: AsyncSession, center: str | None, kind: str, level: str, lag_s: float | None) -> None:
    def record() -> None:
        ALERTS.labels(_label(center), kind, level).inc()
        if lag_s is not None:
            DUE_LAG.labels(kind).observe(max(0.0, lag_s))

    at_commit(session, record)


def resolved(session: AsyncSession, center: str | None, kind: str, level: str) -> None:
    at_commit(session, ALERTS_RESOLVED.labels(_label(center), kind, level).inc)


def finding(session: AsyncSession, center: str, source: str, event: str) -> None:
    at_commit(session, FINDINGS.labels(center, source, event).inc)


def sanction(session: AsyncSession, center: str, level: str, event: str) -> None:
    at_commit(session, SANCTIONS.labels(center, level, event).inc)


async def count_open_alerts(session: AsyncSession, due: datetime) -> None:
    """The periodic job: the open-alert and this year's sanction gauges from the tables."""
    rows = (await session.execute(
        select(Alert.center_id, Alert.kind, Alert.level, func.count())
        .where(Alert.status != "resolved").group_by(Alert.center_id, Alert.kind, Alert.level))).all()
    OPEN_ALERTS.clear()
    for center, kind, level, n in rows:
        OPEN_ALERTS.labels(_label(center), kind, level).set(n)
    year = clock.local_date(due).year
    counted = (await session.execute(
        select(Sanction.center_id, Sanction.level, func.count())
        .where(Sanction.year == year, Sanction.status != "revoked").group_by(Sanction.center_id, Sanction.level))).all()
    SANCTIONS_YEAR.clear()
    for center, level, n in counted:
        SANCTIONS_YEAR.labels(center, level).set(n)


OPEN_ALERTS_JOB = PeriodicJob("monitor.open_alerts_gauge", timedelta(minutes=1), count_open_alerts,
                              catch_up="latest")
