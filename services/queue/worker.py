"""The queue worker, `python -m services.queue.worker`: relays its events to Kafka; keeps the calendar, staff
and item copies; closes each centre's day at its day-close time (what still waits expires); finds the windows
whose heartbeat is lost (90 s without a beat) and counts the windows by state; sets the hall's gauges
(waiting lines, longest waits, vacant windows)."""

from datetime import timedelta

from services.queue import consumers, notices, tickets, windows
from services.queue.config import get_settings
from shared.timers import PeriodicJob, PeriodicRunner
from shared.worker import WorkerContext, run_worker

HEALTH_PORT = 9101
# every 5 minutes: a centre's day-close time (23:00 by default) is met within 5 minutes; a centre whose close
# the worker missed (it was down) is closed at the next run, its earlier days too
DAY_CLOSE = PeriodicJob("queue.day_close", timedelta(minutes=5), tickets.close_due_days, catch_up="latest")
# every 10 s: a heartbeat is lost within 100 s of the last beat; only the latest moment matters after downtime
HEARTBEATS = PeriodicJob("queue.heartbeats", timedelta(seconds=10), windows.detect_lost_heartbeats,
                         catch_up="latest")
# every 15 s: the waiting lines, longest waits and vacant windows as gauges (Prometheus scrapes every 15 s)
HALL_GAUGES = PeriodicJob("queue.hall_gauges", timedelta(seconds=15), windows.count_hall, catch_up="latest")


def day_close_runner(context: WorkerContext) -> PeriodicRunner:
    return PeriodicRunner(context.engine, [DAY_CLOSE, HEARTBEATS, HALL_GAUGES])


def main() -> int:
    return run_worker("queue", get_settings(), consumers=[*consumers.CONSUMERS, notices.items_consumer()],
                      jobs=[day_close_runner],
                      health_port=HEALTH_PORT)


if __name__ == "__main__":
    raise SystemExit(main())
