"""The monitor worker, `python -m services.monitor.worker`: its outbox relay, its event consumers (the read
model of cases, which arms the due moments), the timer runner that fires them (any number of workers share
it), and the leader's periodic jobs (overdue days every morning, the open-alert gauges)."""

from services.monitor import consumers, watch
from services.monitor.complaints import wiring as complaints
from services.monitor.config import get_settings
from services.monitor.hall import wiring as hall
from services.monitor.metrics import OPEN_ALERTS_JOB
from shared.timers import PeriodicRunner, TimerRunner
from shared.worker import WorkerContext, run_worker

HEALTH_PORT = 9103


def timer_runner(context: WorkerContext) -> TimerRunner:
    return TimerRunner(context.engine, {**watch.TIMER_HANDLERS, **hall.TIMER_HANDLERS, **complaints.TIMER_HANDLERS},
                       batch_size=100)


def periodic_runner(context: WorkerContext) -> PeriodicRunner:
    return PeriodicRunner(context.engine, [watch.OVERDUE_DAYS_JOB, OPEN_ALERTS_JOB, *hall.JOBS, *complaints.JOBS])


def main() -> int:
    return run_worker("monitor", get_settings(), consumers=consumers.CONSUMERS,
                      jobs=[periodic_runner], timers=[timer_runner], health_port=HEALTH_PORT)


if __name__ == "__main__":
    raise SystemExit(main())
