"""The one injectable "now" of every process: real, fixed, or simulated from one shared anchor.

Nothing else in the project reads the wall clock (ruff TID251 bans it outside this module), so tests
and the hall simulator can drive a whole business day in minutes and every process agrees on "now".
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Protocol
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, at: datetime) -> None:
        self._at = _aware(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = _aware(at)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._at += delta if delta is not None else timedelta(**kwargs)
        return self._at


class SimulatedClock:
    """Simulated time from one anchor: at real instant `real_start` it is `sim_start`, running `speed`x.

    Every process given the same three values reports the same "now" without talking to the others.
    """

    def __init__(self, real_start: datetime, sim_start: datetime, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.real_start = _aware(real_start)
        self.sim_start = _aware(sim_start)
        self.speed = speed

    def now(self) -> datetime:
        elapsed = datetime.now(UTC) - self.real_start
        return self.sim_start + elapsed * self.speed


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("clock instants must be timezone-aware")
    return at.astimezone(UTC)


def monotonic() -> float:
    """Seconds on a monotonic counter, for measuring durations (metrics, backoff), never for "now"."""
    return time.monotonic()


def wall_now() -> datetime:
    """The real wall-clock instant in UTC, whatever the process clock: token lifetimes (`iat`, `exp`) count
    in it everywhere, because Envoy checks them at the edge and cannot read a simulated clock. Business
    logic keeps `now()`."""
    return datetime.now(UTC)


def local_date(at: datetime) -> date:
    """The Asia/Shanghai business date of an instant."""
    return at.astimezone(LOCAL_TZ).date()


def local_instant(day: date, at: dtime = dtime(0)) -> datetime:
    """The instant (UTC) of the Asia/Shanghai wall time `at` on local date `day`; midnight by default."""
    return datetime.combine(day, at.replace(tzinfo=None), tzinfo=LOCAL_TZ).astimezone(UTC)


_clock: Clock = RealClock()


def get_clock() -> Clock:
    return _clock


def set_clock(clock: Clock) -> Clock:
    """Install the process-wide clock (at start-up from settings, or by a test). Returns the old one."""
    global _clock
    previous, _clock = _clock, clock
    return previous


def now() -> datetime:
    return _clock.now()


def speed() -> float:
    """How many seconds of "now" pass in a real second: 1 on the real clock, 0 on a fixed one, the speed of a
    simulated one (a screen runs the hall's time on from one reading)."""
    if isinstance(_clock, FixedClock):
        return 0.0
    if isinstance(_clock, SimulatedClock):
        return _clock.speed
    return 1.0


def today_local() -> date:
    """Today's business date in Asia/Shanghai, by the process clock."""
    return local_date(_clock.now())


def clock_from_settings(mode: str, fixed_at: datetime | None, sim_real_start: datetime | None,
                        sim_start: datetime | None, speed: float) -> Clock:
    """Build the clock the settings describe (HALL_CLOCK_MODE = real | fixed | simulated)."""
    if mode == "real":
        return RealClock()
    if mode == "fixed":
        if fixed_at is None:
            raise ValueError("HALL_CLOCK_FIXED_AT is required when HALL_CLOCK_MODE=fixed")
        return FixedClock(fixed_at)
    if mode == "simulated":
        if sim_real_start is None or sim_start is None:
            raise ValueError("HALL_CLOCK_SIM_REAL_START and HALL_CLOCK_SIM_START are required when simulated")
        return SimulatedClock(sim_real_start, sim_start, speed)
    raise ValueError(f"unknown clock mode {mode!r}")
