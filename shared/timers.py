"""Durable one-shot timers and leader-locked periodic jobs, both driven by the shared clock.

Timers (`timers` table): `schedule()` arms one in the caller's transaction; a `TimerRunner` fires each
due timer exactly once. The handler's writes and `fired_at` commit in one transaction on a row held
`FOR UPDATE SKIP LOCKED`, so two runners never both fire a timer, and a crash before the commit only
means the timer fires again later (it is never committed twice).

Periodic jobs (`periodic_jobs` table): a `PeriodicRunner` runs each job at its due moments
`anchor + k * interval` under a per-job session-level advisory lock (one leader per job; the others
try again every `takeover_interval` and take over when the leader's connection dies). The due moment
that ran is stored as `last_due_at` in the handler's transaction, so after downtime every missed
moment runs once, in order (at most `max_catch_up` of them: the oldest beyond that are skipped and
logged), or only the latest one for a job declared `catch_up="latest"`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from prometheus_client import Counter, Gauge
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from shared import clock
from shared.db import make_sessionmaker, try_advisory_lock
from shared.tables import periodic_jobs, timers
from shared.waiting import pause

log = logging.getLogger("shared.timers")

TIMERS_DUE = Gauge("hall_timers_due", "Timers whose due moment has passed and that have not fired yet")
TIMERS_FIRED = Counter("hall_timers_fired_total", "Timers fired (handler committed)", ["kind"])
TIMER_FAILURES = Counter("hall_timer_failures_total", "Timer handler failures (retried with backoff)", ["kind"])
PERIODIC_RUNS = Counter("hall_periodic_runs_total", "Due moments of periodic jobs that ran", ["job"])
PERIODIC_FAILURES = Counter("hall_periodic_failures_total", "Periodic job runs that failed (retried)", ["job"])

MAX_CATCH_UP = 1000
"""Default cap on the missed due moments a periodic job runs after downtime (older ones are skipped)."""


# --- one-shot timers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Timer:
    """A timer row as its handler sees it (`attempts` counts the tries before this one)."""

    id: int
    kind: str
    key: str
    due_at: datetime
    payload: dict[str, Any]
    created_at: datetime
    attempts: int
    last_error: str | None


TimerHandler = Callable[[AsyncSession, dict[str, Any], Timer], Awaitable[None]]


async def schedule(session: AsyncSession, kind: str, key: str, due_at: datetime, payload: Mapping[str, Any],
                   *, rearm: bool = False) -> bool:
    """Arm timer (kind, key) for `due_at`, in the caller's transaction.

    An unfired timer of the same (kind, key) is moved (new due_at and payload, attempts reset). A timer
    that has already fired is left alone unless `rearm=True`, which arms it again. Returns whether the
    timer is now armed for `due_at`.
    """
    if due_at.tzinfo is None:
        raise ValueError("due_at must be timezone-aware")
    stmt = pg_insert(timers).values(kind=kind, key=key, due_at=due_at, payload=dict(payload),
                                    created_at=clock.now(), attempts=0)
    changes: dict[str, Any] = {"due_at": stmt.excluded.due_at, "payload": stmt.excluded.payload,
                               "attempts": 0, "last_error": None}
    if rearm:
        changes["fired_at"] = None
    upsert = stmt.on_conflict_do_update(
        index_elements=[timers.c.kind, timers.c.key], set_=changes,
        where=None if rearm else timers.c.fired_at.is_(None),
    ).returning(timers.c.id)
    return (await session.execute(upsert)).first() is not None


async def cancel(session: AsyncSession, kind: str, key: str) -> bool:
    """Cancel an unfired timer (its row is deleted); a fired timer stays as the record that it fired.

    Returns whether an armed timer was cancelled.
    """
    stmt = (timers.delete().where(timers.c.kind == kind, timers.c.key == key, timers.c.fired_at.is_(None))
            .returning(timers.c.id))
    return (await session.execute(stmt)).first() is not None


class TimerRunner:
    """Fires due timers of the kinds it has handlers for; run one or many (any process, any replica).

    Each poll takes up to `batch_size` due timers `FOR UPDATE SKIP LOCKED` (through the partial index
    `ix_timers_due`) and runs each handler in a savepoint of that transaction, then sets `fired_at`.
    A failing handler's writes are rolled back; the timer's `attempts` and `last_error` are recorded
    and its `due_at` moves later by `backoff(attempts)`, so it neither blocks nor spins on the others.
    """

    def __init__(self, engine: AsyncEngine, handlers: Mapping[str, TimerHandler], *,
                 poll_interval: float = 1.0, batch_size: int = 10,
                 retry_base: timedelta = timedelta(seconds=5), retry_max: timedelta = timedelta(minutes=10)) -> None:
        if not handlers:
            raise ValueError("a TimerRunner needs at least one handler")
        self.engine = engine
        self.handlers = dict(handlers)
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.retry_base = retry_base
        self.retry_max = retry_max
        self._sessionmaker = make_sessionmaker(engine)
        self._wake = asyncio.Event()

    def backoff(self, attempts: int) -> timedelta:
        """How much later a timer is tried again after its `attempts`-th failure (bounded)."""
        return min(self.retry_base * (1 << min(max(attempts - 1, 0), 20)), self.retry_max)

    def wake(self) -> None:
        """Poll now (e.g. after scheduling a timer due at once, or after moving a test clock)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Fire due timers until `stop` is set; database errors are logged and retried."""
        stopper = asyncio.create_task(_set_when(stop, self._wake))
        try:
            while not stop.is_set():
                try:
                    taken = await self.fire_due()
                    if taken >= self.batch_size:
                        continue  # more may be due: no sleep
                    delay = await self._delay_until_next()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("timer poll failed", extra={"event": "timer_poll_failed"})
                    delay = _scaled(self.poll_interval)
                if delay > 0:
                    await pause(self._wake, delay)
                self._wake.clear()
        finally:
            stopper.cancel()

    async def fire_due(self) -> int:
        """One batch: fire (or fail and back off) up to `batch_size` due timers. Returns how many it took."""
        now = clock.now()
        fired: list[str] = []
        failed: list[str] = []
        async with self._sessionmaker() as session, session.begin():
            rows = (await session.execute(
                select(timers)
                .where(timers.c.fired_at.is_(None), timers.c.due_at <= now,
                       timers.c.kind.in_(list(self.handlers)))
                .order_by(timers.c.due_at, timers.c.id)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            )).mappings().all()
            for row in rows:
                timer = Timer(id=row["id"], kind=row["kind"], key=row["key"], due_at=row["due_at"],
                              payload=row["payload"], created_at=row["created_at"], attempts=row["attempts"],
                              last_error=row["last_error"])
                try:
                    async with session.begin_nested():
                        await self.handlers[timer.kind](session, timer.payload, timer)
                        await session.execute(update(timers).where(timers.c.id == timer.id).values(
                            fired_at=clock.now(), attempts=timers.c.attempts + 1, last_error=None))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    attempts = timer.attempts + 1
                    retry_at = clock.now() + self.backoff(attempts)
                    log.warning("timer handler failed", exc_info=True, extra={
                        "event": "timer_failed", "kind": timer.kind, "key": timer.key, "attempts": attempts,
                        "retry_at": retry_at.isoformat()})
                    await session.execute(update(timers).where(timers.c.id == timer.id).values(
                        attempts=attempts, last_error=f"{type(exc).__name__}: {exc}"[:2000], due_at=retry_at))
                    failed.append(timer.kind)
                else:
                    fired.append(timer.kind)
        for kind in fired:  # counted once committed
            TIMERS_FIRED.labels(kind).inc()
        for kind in failed:
            TIMER_FAILURES.labels(kind).inc()
        return len(rows)

    async def _delay_until_next(self) -> float:
        """Seconds to sleep: until the next due timer by the shared clock, at most `poll_interval`."""
        now = clock.now()
        async with self.engine.connect() as conn:
            due = (await conn.execute(select(func.count()).select_from(timers).where(
                timers.c.fired_at.is_(None), timers.c.due_at <= now))).scalar_one()
            next_due = (await conn.execute(select(func.min(timers.c.due_at)).where(
                timers.c.fired_at.is_(None), timers.c.kind.in_(list(self.handlers))))).scalar()
        TIMERS_DUE.set(due)
        if next_due is None or next_due <= now:
            # nothing armed, or what is due is held by another runner right now
            return _scaled(self.poll_interval)
        return min(_real_seconds(next_due - now), _scaled(self.poll_interval))


# --- periodic jobs -------------------------------------------------------------------------------

PeriodicHandler = Callable[[AsyncSession, datetime], Awaitable[None]]
DEFAULT_ANCHOR = datetime(2000, 1, 1, tzinfo=clock.LOCAL_TZ)  # 00:00 Asia/Shanghai: daily jobs at local midnight


@dataclass(frozen=True)
class PeriodicJob:
    """Work due at every `anchor + k * interval` (k any integer), e.g. a daily 23:00 day close.

    A job that has never run starts with the latest due moment at or before now. After downtime it
    runs every missed moment once, oldest first (`catch_up="all"`, at most `max_catch_up`), or only
    the latest (`catch_up="latest"`). The handler gets the due moment, not "now".
    """

    name: str
    interval: timedelta
    handler: PeriodicHandler
    anchor: datetime = DEFAULT_ANCHOR
    catch_up: Literal["all", "latest"] = "all"
    max_catch_up: int = MAX_CATCH_UP

    def __post_init__(self) -> None:
        if self.interval <= timedelta(0):
            raise ValueError("interval must be positive")
        if self.anchor.tzinfo is None:
            raise ValueError("anchor must be timezone-aware")
        if self.max_catch_up < 1:
            raise ValueError("max_catch_up must be >= 1")

    def latest_due(self, now: datetime) -> datetime:
        """The last due moment at or before `now`."""
        return (self.anchor + ((now - self.anchor) // self.interval) * self.interval).astimezone(UTC)

    def next_to_run(self, last_due: datetime | None, now: datetime) -> datetime:
        """The due moment to run next after `last_due` (may lie in the future: then nothing is due)."""
        latest = self.latest_due(now)
        if last_due is None or self.catch_up == "latest":
            return latest if last_due is None or latest > last_due else last_due + self.interval
        following = self.latest_due(last_due) + self.interval
        missed = (latest - following) // self.interval + 1
        if missed > self.max_catch_up:
            skipped_to = latest - (self.max_catch_up - 1) * self.interval
            log.warning("periodic job missed more due moments than it catches up", extra={
                "event": "periodic_catch_up_capped", "job": self.name, "missed": missed,
                "skipped_from": following.isoformat(), "resumes_at": skipped_to.isoformat()})
            return skipped_to
        return following


class PeriodicRunner:
    """Runs periodic jobs; any number of instances, one leader per job at a time.

    Leadership is a session-level `pg_try_advisory_lock("hall:periodic:<job>")` held on one dedicated
    connection for the runner's life: when the leading process dies its connection closes, the lock
    goes with it, and a standby takes over within `takeover_interval`. Each run also re-reads
    `periodic_jobs` `FOR UPDATE` and skips a moment already recorded, so even a leader that lost its
    connection without noticing cannot run a due moment twice.
    """

    def __init__(self, engine: AsyncEngine, jobs: list[PeriodicJob], *, poll_interval: float = 1.0,
                 takeover_interval: float = 2.0, retry_base: float = 1.0, retry_max: float = 60.0) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise ValueError("periodic job names must be unique")
        self.engine = engine
        self.jobs = list(jobs)
        self.poll_interval = poll_interval
        self.takeover_interval = takeover_interval
        self.retry_base = retry_base
        self.retry_max = retry_max
        self._sessionmaker = make_sessionmaker(engine)
        self._lock_conn: AsyncConnection | None = None
        self._lock_guard = asyncio.Lock()
        self._held: set[str] = set()

    def leads(self, job_name: str) -> bool:
        """Whether this runner holds the job's leader lock (as far as it knows)."""
        return job_name in self._held

    async def run(self, stop: asyncio.Event) -> None:
        """Run every job until `stop` is set, then release the leader locks."""
        try:
            await asyncio.gather(*(self._job_loop(job, stop) for job in self.jobs))
        finally:
            await self._release_all()

    async def _job_loop(self, job: PeriodicJob, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                if not await self._lead(job.name):
                    await pause(stop, self.takeover_interval)
                    continue
                delay = await self.run_next(job)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                PERIODIC_FAILURES.labels(job.name).inc()
                log.exception("periodic job failed", extra={"event": "periodic_failed", "job": job.name,
                                                             "failures": failures})
                delay = min(self.retry_base * 2 ** (failures - 1), self.retry_max)
            if delay > 0:
                await pause(stop, delay)

    async def run_next(self, job: PeriodicJob) -> float:
        """Run the job's next due moment if it is due (one transaction). Returns seconds until it is worth
        looking again: 0 when it ran (more may be due), else until the next due moment, at most
        `poll_interval`."""
        async with self._sessionmaker() as session, session.begin():
            await session.execute(pg_insert(periodic_jobs).values(name=job.name).on_conflict_do_nothing())
            last_due = (await session.execute(
                select(periodic_jobs.c.last_due_at).where(periodic_jobs.c.name == job.name).with_for_update()
            )).scalar_one()
            now = clock.now()
            due = job.next_to_run(last_due, now)
            if due > now:
                return min(_real_seconds(due - now), _scaled(self.poll_interval))
            await job.handler(session, due)
            await session.execute(update(periodic_jobs).where(periodic_jobs.c.name == job.name)
                                  .values(last_due_at=due, last_run_at=now))
        PERIODIC_RUNS.labels(job.name).inc()
        log.info("periodic job ran", extra={"event": "periodic_ran", "job": job.name, "due_at": due.isoformat()})
        return 0.0

    async def _lead(self, name: str) -> bool:
        """Hold (or try to take) the job's leader lock; a broken lock connection drops every lock."""
        async with self._lock_guard:
            try:
                if self._lock_conn is None:
                    self._lock_conn = await self.engine.connect()
                    self._held.clear()
                conn = self._lock_conn
                if name in self._held:
                    await conn.execute(text("SELECT 1"))  # the session (and so the lock) is still there
                elif await try_advisory_lock(conn, _lock_name(name)):
                    self._held.add(name)
                    log.info("periodic job leader", extra={"event": "periodic_leader", "job": name})
                await conn.commit()  # session-level locks outlive the transaction; don't sit idle in one
                return name in self._held
            except Exception:
                log.warning("leader lock connection lost", exc_info=True, extra={"event": "periodic_lock_lost"})
                await self._drop_lock_conn()
                return False

    async def _release_all(self) -> None:
        async with self._lock_guard:
            conn, self._lock_conn = self._lock_conn, None
            self._held.clear()
            if conn is None:
                return
            try:
                await conn.execute(text("SELECT pg_advisory_unlock_all()"))
                await conn.commit()
                await conn.close()
            except Exception:
                # never hand a connection that may still hold locks back to the pool
                await conn.invalidate()
                await conn.close()

    async def _drop_lock_conn(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        self._held.clear()
        if conn is not None:
            try:
                await conn.invalidate()
                await conn.close()
            except Exception:
                log.debug("closing a broken lock connection failed", exc_info=True)


def _lock_name(job: str) -> str:
    return f"hall:periodic:{job}"  # pg_advisory_lock key: shared.db.advisory_key of this name


# --- waiting on the shared clock -----------------------------------------------------------------


def _scaled(poll_interval: float) -> float:
    """A poll interval in real seconds that shrinks with a faster simulated clock, so a demo day at 120x looks
    every 0.1 s (12 simulated seconds) rather than every 2 simulated minutes; never under 0.1 s, which would
    only load the database."""
    return max(poll_interval / max(1.0, clock.speed()), min(poll_interval, 0.1))


def _real_seconds(delta: timedelta) -> float:
    """Real seconds until a span of clock time has passed (a simulated clock may run faster)."""
    speed = getattr(clock.get_clock(), "speed", 1.0)
    return max(delta.total_seconds() / speed, 0.0)


async def _set_when(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()
