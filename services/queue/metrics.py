"""The queue's Prometheus metrics: tickets by what happened to them, the waiting line, waits and service
times, per centre and service. Counted when the transaction commits, so a rolled-back call counts nothing."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession

from shared.metrics import at_commit

TICKETS = Counter("hall_queue_tickets_total", "Tickets by what happened to them (issued, called, finished, "
                  "no_show, expired, cancelled, transferred, requeued)", ["center", "service", "event"])
# the hall's state now, set by the worker's leader from the tables every 15 s (right after any restart, and
# no API replica has to agree with another): services.queue.windows.count_hall
WAITING = Gauge("hall_queue_waiting_tickets", "Tickets waiting now", ["center", "service"])
LONGEST_WAIT = Gauge("hall_queue_longest_wait_seconds", "The longest current wait of a ticket still waiting",
                     ["center", "service"])
WAIT_THRESHOLD = Gauge("hall_queue_wait_threshold_seconds", "The service's long-wait threshold "
                       "(wait_threshold_minutes): a longer wait is a long-wait alert", ["center", "service"])
VACANT = Gauge("hall_queue_windows_vacant", "Windows vacant now (空岗): signed in, away or silent over the "
               "centre's vacancy minutes while tickets wait for them", ["center"])
# a hall's waits run from seconds to hours; service times from a minute to an hour
WAIT = Histogram("hall_queue_wait_seconds", "From a ticket's effective arrival to its call", ["center", "service"],
                 buckets=(30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800))
SERVICE = Histogram("hall_queue_service_seconds", "From a ticket's start at a window to its finish or transfer",
                    ["center", "service"], buckets=(30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800, 2700, 3600))

WINDOWS = Gauge("hall_queue_windows", "Active windows by state (open, away, closed, signed_out), as the heartbeat "
                "job last counted them", ["center", "state"])
SILENT = Gauge("hall_queue_windows_silent", "Signed-in windows whose heartbeat is lost (90 s without a beat)",
               ["center"])
WINDOW_EVENTS = Counter("hall_queue_window_events_total", "Window events (away, back, closed, heartbeat_lost, "
                        "heartbeat_restored)", ["center", "event"])
EVALUATIONS = Counter("hall_evaluations_total", "Ratings of services (好差评), 1 非常不满意 ... 5 非常满意",
                      ["center", "service", "rating"])
WINDOW_STATES = ("open", "away", "closed", "signed_out")
TICKET_EVENTS = ("issued", "called", "finished", "no_show", "expired", "cancelled", "transferred", "requeued")
_PREPARED: set[tuple[str, str]] = set()


def prepare(center: str, service: str) -> None:
    """Every ticket-event and rating child of a centre's service, at 0: Prometheus's increase() and rate() see
    a series' first step only from a sample before it, so a rating counted by a child born at 1 would be
    missed (at start-up for the services known, and at each issue for one created since)."""
    if (center, service) in _PREPARED:
        return
    for event in TICKET_EVENTS:
        TICKETS.labels(center, service, event)
    for rating in range(1, 6):
        EVALUATIONS.labels(center, service, str(rating))
    _PREPARED.add((center, service))


async def prepare_known(session: AsyncSession) -> None:
    from sqlalchemy import text

    for center, service in (await session.execute(text("SELECT center_id, code FROM services"))).all():
        prepare(center, service)


def count(session: AsyncSession, center: str, service: str, what: str) -> None:
    prepare(center, service)
    at_commit(session, TICKETS.labels(center, service, what).inc)


def waited(session: AsyncSession, center: str, service: str, seconds: float) -> None:
    at_commit(session, lambda: WAIT.labels(center, service).observe(seconds))


def served(session: AsyncSession, center: str, service: str, seconds: float) -> None:
    at_commit(session, lambda: SERVICE.labels(center, service).observe(seconds))


def window_event(session: AsyncSession, center: str, what: str) -> None:
    at_commit(session, WINDOW_EVENTS.labels(center, what).inc)


def windows(session: AsyncSession, center: str, counts: dict[str, int]) -> None:
    def record() -> None:
        for state in WINDOW_STATES:
            WINDOWS.labels(center, state).set(counts.get(state, 0))
        SILENT.labels(center).set(counts.get("silent", 0))

    at_commit(session, record)


def hall(session: AsyncSession, center: str, lines: dict[str, tuple[int, int, int]], vacant: int) -> None:
    """The hall's gauges of one centre: per service (waiting, longest wait in s, threshold in s)."""
    def record() -> None:
        for service, (n, longest, threshold) in lines.items():
            WAITING.labels(center, service).set(n)
            LONGEST_WAIT.labels(center, service).set(longest)
            WAIT_THRESHOLD.labels(center, service).set(threshold)
        VACANT.labels(center).set(vacant)

    at_commit(session, record)


def evaluated(session: AsyncSession, center: str, service: str, rating: int) -> None:
    at_commit(session, EVALUATIONS.labels(center, service, str(rating)).inc)
