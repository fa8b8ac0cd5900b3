"""The queue's Prometheus metrics: tickets by what happened to them, the waiting line, waits and service
times, per centre and service. Counted when the transaction commits, so a rolled-back call counts nothing."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

TICKETS = Counter("hall_queue_tickets_total", "Tickets by what happened to them (issued, called, finished, "
                  "no_show, expired, cancelled, transferred, requeued)", ["center", "service", "event"])
WAITING = Gauge("hall_queue_waiting_tickets", "Tickets waiting now", ["center", "service"])
# a hall's waits run from seconds to hours; service times from a minute to an hour
WAIT = Histogram("hall_queue_wait_seconds", "From a ticket's effective arrival to its call", ["center", "service"],
                 buckets=(30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800))
SERVICE = Histogram("hall_queue_service_seconds", "From a ticket's start at a window to its finish or transfer",
                    ["center", "service"], buckets=(30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800, 2700, 3600))

_PENDING = "queue.metrics.pending"


def _flush(session: Session) -> None:
    for record in session.info.pop(_PENDING, []):
        record()


def _drop(session: Session) -> None:
    session.info.pop(_PENDING, None)


def at_commit(session: AsyncSession, record: Callable[[], None]) -> None:
    """Run `record` once the session's transaction commits (never if it rolls back)."""
    sync = session.sync_session
    if not sync.info.get("queue.metrics.listening"):
        event.listen(sync, "after_commit", _flush)
        event.listen(sync, "after_rollback", _drop)
        sync.info["queue.metrics.listening"] = True
    sync.info.setdefault(_PENDING, []).append(record)


def count(session: AsyncSession, center: str, service: str, what: str) -> None:
    at_commit(session, TICKETS.labels(center, service, what).inc)


def waited(session: AsyncSession, center: str, service: str, seconds: float) -> None:
    at_commit(session, lambda: WAIT.labels(center, service).observe(seconds))


def served(session: AsyncSession, center: str, service: str, seconds: float) -> None:
    at_commit(session, lambda: SERVICE.labels(center, service).observe(seconds))


def waiting(session: AsyncSession, center: str, counts: dict[str, int]) -> None:
    def record() -> None:
        for service, n in counts.items():
            WAITING.labels(center, service).set(n)

    at_commit(session, record)
