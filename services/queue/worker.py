"""The queue worker, `python -m services.queue.worker`: relays its events to Kafka; keeps the calendar and
staff copies; closes each centre's day at its day-close time (what still waits expires)."""

from datetime import timedelta

from services.queue import consumers, tickets
from services.queue.config import get_settings
from shared.timers import PeriodicJob, PeriodicRunner
from shared.worker import WorkerContext, run_worker

HEALTH_PORT = 9101
# every 5 minutes: a centre's day-close time (23:00 by default) is met within 5 minutes; a centre whose close
# the worker missed (it was down) is closed at the next run, its earlier days too
DAY_CLOSE = PeriodicJob("queue.day_close", timedelta(minutes=5), tickets.close_due_days, catch_up="latest")


def day_close_runner(context: WorkerContext) -> PeriodicRunner:
    return PeriodicRunner(context.engine, [DAY_CLOSE])


def main() -> int:
    return run_worker("queue", get_settings(), consumers=consumers.CONSUMERS, jobs=[day_close_runner],
                      health_port=HEALTH_PORT)


if __name__ == "__main__":
    raise SystemExit(main())
