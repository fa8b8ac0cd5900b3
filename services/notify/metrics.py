"""The notify service's Prometheus metrics (issue 25 item 5): deliveries by channel and outcome, attempts, dead
letters, held messages, and the delivery latency from the event to the provider's acceptance. Labels are
bounded (channel, outcome, template key); never a recipient, an address or an event id."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify.models import Delivery
from shared.metrics import at_commit
from shared.timers import PeriodicJob

PLANNED = Counter("hall_notify_deliveries_planned_total", "Deliveries planned from events (one per event, recipient "
                  "and channel)", ["channel", "template"])
DELIVERIES = Counter("hall_notify_deliveries_total", "Deliveries finished, by channel and outcome (sent, dead)",
                     ["channel", "outcome"])
ATTEMPTS = Counter("hall_notify_attempts_total", "Attempts at a provider, by channel and outcome (accepted, failed, "
                   "rejected, interrupted)", ["channel", "outcome"])
HELD = Counter("hall_notify_held_total", "SMS held for the quiet hours (22:00-08:00 local)", ["template"])
DEFERRED = Counter("hall_notify_rate_limited_total", "SMS deferred by the per-recipient rate limit", ["template"])
STATUS = Gauge("hall_notify_unfinished_deliveries", "Deliveries not sent yet, by status now (pending, held, sending, dead)", ["status"])
LATENCY = Histogram("hall_notify_delivery_latency_seconds", "From the event's occurred_at to the provider's "
                    "acceptance", ["channel"],
                    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 36000, 86400))


def planned(session: AsyncSession, channel: str, template: str, count: int = 1) -> None:
    at_commit(session, lambda: PLANNED.labels(channel, template).inc(count))


def held(session: AsyncSession, template: str) -> None:
    at_commit(session, lambda: HELD.labels(template).inc())


async def count_statuses(session: AsyncSession) -> dict[str, int]:
    rows = (await session.execute(select(Delivery.status, func.count()).where(
        Delivery.status.in_(("pending", "held", "sending", "dead"))).group_by(Delivery.status))).all()
    counts = {status: 0 for status in ("pending", "held", "sending", "dead")}
    counts.update({status: n for status, n in rows})
    return counts


async def _refresh(session: AsyncSession, _due: object) -> None:
    for status, n in (await count_statuses(session)).items():
        STATUS.labels(status).set(n)


STATUS_JOB = PeriodicJob("notify.delivery_status", timedelta(seconds=30), _refresh, catch_up="latest")
"""The leader counts the deliveries by status twice a minute (the held and dead gauges)."""
