"""Waiting without blocking shutdown: interruptible pauses and exponential backoff, for every loop that
retries (relay, consumers, timers). Durations only; "now" still comes from shared.clock."""

from __future__ import annotations

import asyncio


class Backoff:
    """first, 2x first, 4x first ... capped at `cap`; `reset()` after a success."""

    def __init__(self, first: float, cap: float) -> None:
        self.first, self.cap, self.current = first, cap, first

    def next(self) -> float:
        delay, self.current = self.current, min(self.cap, self.current * 2)
        return delay

    def reset(self) -> None:
        self.current = self.first


async def pause(stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None) -> None:
    """Sleep up to `seconds`, returning early when `stop` (or `wake`) is set."""
    waiters = [asyncio.ensure_future(event.wait()) for event in (stop, wake) if event is not None]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
