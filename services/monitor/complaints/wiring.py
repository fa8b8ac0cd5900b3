"""What supervision II (complaints) adds to the monitor's worker: every rating from the queue topic (a bad one
opens a follow-up), the timers at the follow-ups' and complaints' due moments, and the open gauges."""

from services.monitor.complaints import followups, metrics, register
from shared.events.consumer import Handler
from shared.timers import PeriodicJob, TimerHandler

QUEUE_HANDLERS: dict[str, Handler] = {"evaluation.submitted": followups.on_evaluation}
CASES_HANDLERS: dict[str, Handler] = {}
TIMER_HANDLERS: dict[str, TimerHandler] = {followups.TIMER: followups.on_due, register.TIMER: register.on_due}
JOBS: list[PeriodicJob] = [metrics.OPEN_JOB]
