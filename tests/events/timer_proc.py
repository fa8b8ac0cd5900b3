"""A timer runner in its own process, for the two-process tests.

`python tests/events/timer_proc.py <database url> <runner name> [--handler-ms N]`: fires `proc.fire`
timers; each fire inserts (timer id, key, runner) into the test's scratch table `timer_fire_log` in the
fire's own transaction. Prints "ready" once running; stops on SIGTERM (or dies on SIGKILL).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402

from shared.db import make_engine  # noqa: E402
from shared.timers import Timer, TimerRunner  # noqa: E402


async def main(url: str, runner: str, handler_ms: int) -> None:
    engine = make_engine(url, pool_size=2, max_overflow=2, application_name=f"timer-proc-{runner}")

    async def fire(session: AsyncSession, payload: dict[str, Any], timer: Timer) -> None:
        await asyncio.sleep(handler_ms / 1000)  # a handler that takes a while: kills land mid-transaction
        await session.execute(text("INSERT INTO timer_fire_log (timer_id, key, runner) VALUES (:id, :key, :runner)"),
                              {"id": timer.id, "key": timer.key, "runner": runner})

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    try:
        await TimerRunner(engine, {"proc.fire": fire}, poll_interval=0.05, batch_size=5).run(stop)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("runner")
    parser.add_argument("--handler-ms", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.runner, args.handler_ms))
