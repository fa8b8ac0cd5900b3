"""The cases worker, `python -m services.cases.worker`: its outbox relay, its event consumers (read copies,
ratings) and the open-case gauges, counted by one leader once a minute."""

from services.cases import consumers
from services.cases.config import get_settings
from services.cases.metrics import OPEN_CASES_JOB
from shared.timers import PeriodicRunner
from shared.worker import WorkerContext, run_worker

HEALTH_PORT = 9102


def open_cases_runner(context: WorkerContext) -> PeriodicRunner:
    return PeriodicRunner(context.engine, [OPEN_CASES_JOB])


def main() -> int:
    return run_worker("cases", get_settings(), consumers=consumers.CONSUMERS, jobs=[open_cases_runner],
                      health_port=HEALTH_PORT)


if __name__ == "__main__":
    raise SystemExit(main())
