"""Metrics of complaints and follow-ups: received and closed counters (at commit), open gauges (the leader
counts them once a minute, as the open-alert gauges)."""

from __future__ import annotations

from datetime import datetime, timedelta

from prometheus_client import Counter, Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.monitor.complaints.models import Complaint, Followup
from shared.metrics import at_commit
from shared.timers import PeriodicJob

COMPLAINTS = Counter("hall_monitor_complaints_total", "Complaints received (投诉)", ["center", "channel", "severity"])
COMPLAINTS_CLOSED = Counter("hall_monitor_complaints_closed_total",
                            "Complaints closed, by outcome (resolved, upheld, dismissed) and on time or late",
                            ["center", "severity", "outcome", "on_time"])
FOLLOWUPS = Counter("hall_monitor_followups_total", "Follow-ups of bad ratings by event (opened, overdue, done)",
                    ["center", "event"])
OPEN_COMPLAINTS = Gauge("hall_monitor_open_complaints", "Complaints not closed yet", ["center", "severity"])
OPEN_FOLLOWUPS = Gauge("hall_monitor_open_followups", "Follow-ups of bad ratings not done yet", ["center"])


def received(session: AsyncSession, center: str, channel: str, severity: str) -> None:
    at_commit(session, COMPLAINTS.labels(center, channel, severity).inc)


def closed(session: AsyncSession, center: str, severity: str, outcome: str, on_time: bool) -> None:
    at_commit(session, COMPLAINTS_CLOSED.labels(center, severity, outcome, "yes" if on_time else "no").inc)


def followup(session: AsyncSession, center: str, event: str) -> None:
    at_commit(session, FOLLOWUPS.labels(center, event).inc)


async def count_open(session: AsyncSession, _due: datetime) -> None:
    """The periodic job: the open complaint and follow-up gauges from the tables (partial counts by index)."""
    complaints = (await session.execute(
        select(Complaint.center_id, Complaint.severity, func.count()).where(Complaint.status == "open")
        .group_by(Complaint.center_id, Complaint.severity))).all()
    followups = (await session.execute(
        select(Followup.center_id, func.count()).where(Followup.status == "open").group_by(Followup.center_id))).all()
    OPEN_COMPLAINTS.clear()
    for center, severity, n in complaints:
        OPEN_COMPLAINTS.labels(center, severity).set(n)
    OPEN_FOLLOWUPS.clear()
    for center, n in followups:
        OPEN_FOLLOWUPS.labels(center).set(n)


OPEN_JOB = PeriodicJob("monitor.open_complaints_gauge", timedelta(minutes=1), count_open, catch_up="latest")
