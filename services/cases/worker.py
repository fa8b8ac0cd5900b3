"""The cases worker, `python -m services.cases.worker`: its outbox relay, its event consumers (read copies,
ratings), the open-case and calendar gauges, counted by one leader once a minute, and the timers of joint sub-tasks
(超时默认)."""

from services.cases import consumers
from services.cases.calendar.service import CALENDAR_JOB
from services.cases.config import get_settings
from services.cases.joint import lead as joint_lead
from services.cases.joint import service as joint_service
from services.cases.metrics import OPEN_CASES_JOB
from shared.timers import PeriodicRunner, TimerRunner
from shared.worker import WorkerContext, run_worker

HEALTH_PORT = 9102


def open_cases_runner(context: WorkerContext) -> PeriodicRunner:
    return PeriodicRunner(context.engine, [OPEN_CASES_JOB, CALENDAR_JOB])


def joint_timer_runner(context: WorkerContext) -> TimerRunner:
    return TimerRunner(context.engine, {joint_lead.TIMER_KIND: joint_service.deem_on_timeout})


def main() -> int:
    return run_worker("cases", get_settings(), consumers=consumers.CONSUMERS, jobs=[open_cases_runner],
                      timers=[joint_timer_runner], health_port=HEALTH_PORT)


if __name__ == "__main__":
    raise SystemExit(main())
