"""What supervision II (complaints) adds to the monitor's worker: event handlers (queue topic, cases topic), timer
handlers and periodic jobs. Empty until its work fills them in."""

from shared.events.consumer import Handler
from shared.timers import PeriodicJob, TimerHandler

QUEUE_HANDLERS: dict[str, Handler] = {}
CASES_HANDLERS: dict[str, Handler] = {}
TIMER_HANDLERS: dict[str, TimerHandler] = {}
JOBS: list[PeriodicJob] = []
