"""The notify worker, `python -m services.notify.worker`: its outbox relay (the feed messages), its event
consumers (contacts and the planner), the dispatcher that sends, the timers (quiet hours' end, appointment
reminders) and the leader's status gauges."""

from __future__ import annotations

import asyncio

from services.notify import consumers, metrics, planner
from services.notify.channels.registry import build_channels, close_channels
from services.notify.config import Settings, get_settings
from services.notify.dispatcher import Dispatcher
from shared.timers import PeriodicRunner, TimerRunner
from shared.worker import WorkerContext, run_worker

HEALTH_PORT = 9104


class DispatcherComponent:
    """The dispatcher with its channels, opened for the worker's life and closed after."""

    def __init__(self, context: WorkerContext) -> None:
        assert isinstance(context.settings, Settings)
        self.context = context

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.context.settings
        assert isinstance(settings, Settings)
        channels = build_channels(settings)
        try:
            await Dispatcher(self.context.engine, settings, channels).run(stop)
        finally:
            await close_channels(channels)


def timer_runner(context: WorkerContext) -> TimerRunner:
    return TimerRunner(context.engine, planner.TIMER_HANDLERS, batch_size=100)


def periodic_runner(context: WorkerContext) -> PeriodicRunner:
    return PeriodicRunner(context.engine, [metrics.STATUS_JOB])


def main() -> int:
    settings = get_settings()
    planner.configure(settings)
    return run_worker("notify", settings, consumers=consumers.CONSUMERS,
                      jobs=[periodic_runner, DispatcherComponent], timers=[timer_runner], health_port=HEALTH_PORT)


if __name__ == "__main__":
    raise SystemExit(main())
