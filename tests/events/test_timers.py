"""Durable timers fire exactly once at their due moment by the shared clock, across restarts, runners in
two processes and a kill -9; periodic jobs catch up missed moments in order under one leader."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared import clock
from shared.db import make_engine, make_sessionmaker
from shared.timers import PeriodicJob, PeriodicRunner, Timer, TimerRunner, cancel, schedule

ROOT = Path(__file__).resolve().parents[2]
TIMER_PROC = Path(__file__).with_name("timer_proc.py")
T0 = datetime(2026, 2, 12, 1, 0, tzinfo=UTC)  # the fixed_clock's start: Thu 09:00 Asia/Shanghai

SCRATCH = """
CREATE TABLE IF NOT EXISTS timer_fire_log (
    n bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, timer_id bigint NOT NULL, key text NOT NULL,
    runner text NOT NULL, at timestamptz);
CREATE TABLE IF NOT EXISTS periodic_run_log (
    n bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, job text NOT NULL, due_at timestamptz NOT NULL,
    runner text NOT NULL);
"""


@pytest.fixture
async def db(service_databases):
    """The monitor test database, emptied, with the scratch fire logs (dropped afterwards: they are no
    part of any service's schema)."""
    database = service_databases("monitor")
    await database.reset()
    conn_engine = make_engine(database.url, pool_size=1)
    async with conn_engine.begin() as conn:
        for statement in filter(str.strip, SCRATCH.split(";")):
            await conn.execute(text(statement))
    await conn_engine.dispose()
    yield database
    await database.fetch("DROP TABLE IF EXISTS timer_fire_log")
    await database.fetch("DROP TABLE IF EXISTS periodic_run_log")


@pytest.fixture
async def engine(db) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(db.url)
    yield eng
    await eng.dispose()


async def eventually(check: Callable[[], Any], within: float = 10.0, interval: float = 0.05) -> Any:
    deadline = clock.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if clock.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s (last: {result!r})")
        await asyncio.sleep(interval)


async def arm(engine: AsyncEngine, kind: str, key: str, due_at: datetime, payload: dict[str, Any] | None = None,
              **kwargs: Any) -> bool:
    async with make_sessionmaker(engine)() as session, session.begin():
        return await schedule(session, kind, key, due_at, payload or {}, **kwargs)


def logging_handler(runner: str = "test") -> Callable[[AsyncSession, dict[str, Any], Timer], Any]:
    async def handle(session: AsyncSession, payload: dict[str, Any], timer: Timer) -> None:
        await session.execute(text("INSERT INTO timer_fire_log (timer_id, key, runner, at) VALUES (:i, :k, :r, :a)"),
                              {"i": timer.id, "k": timer.key, "r": runner, "a": clock.now()})
    return handle


class Running:
    """A runner's `run(stop)` as a background task."""

    def __init__(self, runner: TimerRunner | PeriodicRunner) -> None:
        self.runner = runner
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(runner.run(self.stop_event))

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, 10)


async def fire_log(db) -> list[tuple[str, str]]:
    return [(r["key"], r["runner"]) for r in await db.fetch("SELECT key, runner FROM timer_fire_log ORDER BY n")]


# --- one-shot timers -----------------------------------------------------------------------------


async def test_timer_fires_once_when_the_clock_reaches_its_due_moment(db, engine, fixed_clock):
    due = T0 + timedelta(minutes=10)
    fired_before = REGISTRY.get_sample_value("hall_timers_fired_total", {"kind": "case.warn"}) or 0
    await arm(engine, "case.warn", "case-1", due, {"case": "case-1"})
    running = Running(TimerRunner(engine, {"case.warn": logging_handler()}, poll_interval=0.05))
    try:
        await asyncio.sleep(0.3)
        fixed_clock.advance(minutes=9, seconds=59)
        await asyncio.sleep(0.3)
        assert await fire_log(db) == []  # not one instant early
        fixed_clock.advance(seconds=1)
        await eventually(lambda: fire_log(db))
        await asyncio.sleep(0.3)
        fixed_clock.advance(hours=1)
        await asyncio.sleep(0.3)
    finally:
        await running.stop()
    assert await fire_log(db) == [("case-1", "test")]
    row = (await db.fetch("SELECT fired_at, attempts, last_error FROM timers"))[0]
    assert row["fired_at"] == due and row["attempts"] == 1 and row["last_error"] is None
    assert (await db.fetch("SELECT at FROM timer_fire_log"))[0]["at"] == due
    assert REGISTRY.get_sample_value("hall_timers_fired_total", {"kind": "case.warn"}) == fired_before + 1


async def test_rescheduling_moves_an_armed_timer_but_not_a_fired_one_unless_rearmed(db, engine, fixed_clock):
    runner = TimerRunner(engine, {"t": logging_handler()}, poll_interval=0.05)
    assert await arm(engine, "t", "k", T0 + timedelta(minutes=5), {"v": 1})
    assert await arm(engine, "t", "k", T0 + timedelta(minutes=1), {"v": 2})  # moved earlier
    fixed_clock.advance(minutes=1)
    assert await runner.fire_due() == 1
    assert await arm(engine, "t", "k", T0 + timedelta(minutes=30), {"v": 3}) is False  # fired: left alone
    fixed_clock.advance(hours=1)
    assert await runner.fire_due() == 0
    assert await arm(engine, "t", "k", clock.now(), {"v": 4}, rearm=True)
    assert await runner.fire_due() == 1
    rows = await db.fetch("SELECT count(*) AS n, max(payload->>'v') AS v FROM timers")
    assert rows[0]["n"] == 1 and rows[0]["v"] == "4"
    assert await fire_log(db) == [("k", "test"), ("k", "test")]

    await arm(engine, "t", "gone", clock.now(), {})
    async with make_sessionmaker(engine)() as session, session.begin():
        assert await cancel(session, "t", "gone")
        assert not await cancel(session, "t", "k")  # fired timers are not cancelled
    assert await runner.fire_due() == 0


async def test_a_timer_scheduled_before_a_restart_fires_once_after_it(db, engine, fixed_clock):
    await arm(engine, "day.close", "320102", T0 + timedelta(hours=14))
    first = Running(TimerRunner(engine, {"day.close": logging_handler("first")}, poll_interval=0.05))
    await asyncio.sleep(0.2)
    await first.stop()  # the process goes down before the timer is due
    fixed_clock.advance(hours=20)
    second = Running(TimerRunner(engine, {"day.close": logging_handler("second")}, poll_interval=0.05))
    try:
        await eventually(lambda: fire_log(db))
        await asyncio.sleep(0.3)
    finally:
        await second.stop()
    assert await fire_log(db) == [("320102", "second")]


async def test_a_failing_handler_backs_off_without_holding_up_other_timers(db, engine, fixed_clock):
    calls = {"bad": 0}

    async def flaky(session: AsyncSession, payload: dict[str, Any], timer: Timer) -> None:
        calls["bad"] += 1
        await session.execute(text("INSERT INTO timer_fire_log (timer_id, key, runner) VALUES (0, 'partial', 'x')"))
        if calls["bad"] < 3:
            raise RuntimeError("smtp down")

    await arm(engine, "bad", "b", T0)
    await arm(engine, "good", "g", T0 + timedelta(seconds=1))
    runner = TimerRunner(engine, {"bad": flaky, "good": logging_handler()}, poll_interval=0.05,
                         retry_base=timedelta(seconds=30), retry_max=timedelta(minutes=1))
    fixed_clock.advance(seconds=1)
    assert await runner.fire_due() == 2
    assert await fire_log(db) == [("g", "test")]  # the failed handler's write was rolled back
    bad = (await db.fetch("SELECT due_at, attempts, last_error, fired_at FROM timers WHERE kind = 'bad'"))[0]
    assert bad["attempts"] == 1 and bad["last_error"] == "RuntimeError: smtp down" and bad["fired_at"] is None
    assert bad["due_at"] == clock.now() + timedelta(seconds=30)

    fixed_clock.advance(seconds=29)
    assert await runner.fire_due() == 0  # backing off
    fixed_clock.advance(seconds=1)
    assert await runner.fire_due() == 1
    bad = (await db.fetch("SELECT due_at, attempts FROM timers WHERE kind = 'bad'"))[0]
    assert bad["attempts"] == 2 and bad["due_at"] == clock.now() + timedelta(minutes=1)  # doubled, capped
    fixed_clock.advance(minutes=1)
    assert await runner.fire_due() == 1
    bad = (await db.fetch("SELECT fired_at, attempts, last_error FROM timers WHERE kind = 'bad'"))[0]
    assert bad["fired_at"] == clock.now() and bad["attempts"] == 3 and bad["last_error"] is None
    assert [k for k, _ in await fire_log(db)] == ["g", "partial"]


# --- two runner processes ------------------------------------------------------------------------


def start_runner(db, name: str, handler_ms: int, *, ready: bool = False) -> subprocess.Popen[bytes]:
    """A runner process; with `ready`, its stdout is a pipe for wait_ready()."""
    return subprocess.Popen([sys.executable, str(TIMER_PROC), db.url, name, "--handler-ms", str(handler_ms)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE if ready else subprocess.DEVNULL)


def wait_ready(process: subprocess.Popen[bytes]) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == b"ready", line


async def arm_many(engine: AsyncEngine, count: int) -> None:
    async with make_sessionmaker(engine)() as session, session.begin():
        for i in range(count):  # real clock: all due now, in a known order
            await schedule(session, "proc.fire", f"t{i:03d}", clock.now() - timedelta(seconds=1), {"i": i})


async def unfired(db) -> int:
    return (await db.fetch("SELECT count(*) AS n FROM timers WHERE fired_at IS NULL"))[0]["n"]


async def assert_each_fired_once(db, count: int) -> dict[str, int]:
    per_timer = await db.fetch(
        "SELECT t.key, t.fired_at, count(l.n) AS fires FROM timers t LEFT JOIN timer_fire_log l ON l.timer_id = t.id "
        "GROUP BY t.key, t.fired_at")
    assert len(per_timer) == count
    assert [r["key"] for r in per_timer if r["fires"] != 1 or r["fired_at"] is None] == []
    return {r["runner"]: r["n"] for r in await db.fetch(
        "SELECT runner, count(*) AS n FROM timer_fire_log GROUP BY runner")}


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


async def test_two_runner_processes_fire_each_of_200_timers_exactly_once(db, engine):
    runners = [start_runner(db, "a", 5, ready=True), start_runner(db, "b", 5, ready=True)]
    try:
        await asyncio.gather(*(asyncio.to_thread(wait_ready, p) for p in runners))
        await arm_many(engine, 200)
        await eventually(lambda: _none_left(db), within=30)
    finally:
        for process in runners:
            stop_process(process)
    by_runner = await assert_each_fired_once(db, 200)
    assert sum(by_runner.values()) == 200
    assert by_runner.get("a", 0) > 0 and by_runner.get("b", 0) > 0, by_runner  # both did share the work


async def test_killing_one_runner_mid_way_leaves_the_other_to_finish_none_twice(db, engine):
    victim, survivor = start_runner(db, "victim", 20, ready=True), start_runner(db, "survivor", 20, ready=True)
    try:
        # both running before there is work (on a loaded machine one start-up can take longer than the
        # other's whole share), then killed once the victim has committed some of it
        await asyncio.gather(*(asyncio.to_thread(wait_ready, p) for p in (victim, survivor)))
        await arm_many(engine, 200)
        await eventually(lambda: _fired_by(db, "victim", 5), within=20, interval=0.01)
        victim.send_signal(signal.SIGKILL)  # mid-batch: its open transaction dies with it
        victim.wait(5)
        killed_at = await db.fetch("SELECT count(*) AS n FROM timer_fire_log")
        assert killed_at[0]["n"] < 200
        await eventually(lambda: _none_left(db), within=30)
    finally:
        stop_process(victim)
        stop_process(survivor)
    by_runner = await assert_each_fired_once(db, 200)
    assert by_runner.get("survivor", 0) > 0 and by_runner.get("victim", 0) > 0, by_runner


async def _none_left(db) -> bool:
    return await unfired(db) == 0


async def _fired_by(db, runner: str, n: int) -> bool:
    rows = await db.fetch("SELECT count(*) AS n FROM timer_fire_log WHERE runner = $1", runner)
    return rows[0]["n"] >= n


# --- periodic jobs -------------------------------------------------------------------------------


def periodic_logger(runner: str, job: str = "tick") -> Callable[[AsyncSession, datetime], Any]:
    async def handle(session: AsyncSession, due_at: datetime) -> None:
        await session.execute(text("INSERT INTO periodic_run_log (job, due_at, runner) VALUES (:j, :d, :r)"),
                              {"j": job, "d": due_at, "r": runner})
    return handle


async def runs(db) -> list[tuple[datetime, str]]:
    return [(r["due_at"], r["runner"]) for r in await db.fetch("SELECT due_at, runner FROM periodic_run_log ORDER BY n")]


async def test_periodic_job_runs_every_missed_due_moment_once_in_order(db, engine, fixed_clock):
    job = PeriodicJob("tick", timedelta(minutes=1), periodic_logger("r"))
    first = Running(PeriodicRunner(engine, [job], poll_interval=0.05))
    await eventually(lambda: runs(db))
    await first.stop()
    assert await runs(db) == [(T0, "r")]  # never run before: the latest due moment runs once

    fixed_clock.advance(minutes=5, seconds=30)  # down for five due moments
    second = Running(PeriodicRunner(engine, [job], poll_interval=0.05))
    try:
        await eventually(lambda: _runs_at_least(db, 6))
        await asyncio.sleep(0.3)
    finally:
        await second.stop()
    assert [due for due, _ in await runs(db)] == [T0 + timedelta(minutes=i) for i in range(6)]
    state = (await db.fetch("SELECT last_due_at FROM periodic_jobs WHERE name = 'tick'"))[0]
    assert state["last_due_at"] == T0 + timedelta(minutes=5)


async def test_a_latest_only_job_collapses_missed_moments_into_the_last(db, engine, fixed_clock):
    job = PeriodicJob("tick", timedelta(minutes=1), periodic_logger("r"), catch_up="latest")
    runner = PeriodicRunner(engine, [job])
    await runner.run_next(job)
    fixed_clock.advance(minutes=5)
    assert await runner.run_next(job) == 0
    assert await runner.run_next(job) > 0  # nothing more due
    assert [due for due, _ in await runs(db)] == [T0, T0 + timedelta(minutes=5)]


def test_catch_up_is_capped_at_the_most_recent_moments():
    job = PeriodicJob("tick", timedelta(hours=1), periodic_logger("r"), max_catch_up=3)
    now = T0 + timedelta(hours=10, minutes=5)
    assert job.next_to_run(T0, now) == T0 + timedelta(hours=8)  # 10 missed: only the last 3 run
    assert job.next_to_run(T0 + timedelta(hours=8), now) == T0 + timedelta(hours=9)
    assert job.next_to_run(T0 + timedelta(hours=10), now) == T0 + timedelta(hours=11)  # not due yet
    day_close = PeriodicJob("day-close", timedelta(days=1), periodic_logger("r"),
                            anchor=datetime(2026, 1, 1, 23, 0, tzinfo=clock.LOCAL_TZ))
    assert day_close.latest_due(T0) == datetime(2026, 2, 11, 15, 0, tzinfo=UTC)  # 23:00 local the day before


async def test_two_periodic_runners_run_each_due_moment_once_and_the_standby_takes_over(db, engine, fixed_clock):
    other_engine = make_engine(db.url)
    job_a = PeriodicJob("tick", timedelta(minutes=1), periodic_logger("a"))
    job_b = PeriodicJob("tick", timedelta(minutes=1), periodic_logger("b"))
    a = Running(PeriodicRunner(engine, [job_a], poll_interval=0.05, takeover_interval=0.1))
    b = Running(PeriodicRunner(other_engine, [job_b], poll_interval=0.05, takeover_interval=0.1))
    try:
        await eventually(lambda: runs(db))
        for i in range(1, 4):
            fixed_clock.advance(minutes=1)
            await eventually(lambda i=i: _runs_at_least(db, i + 1))
        await asyncio.sleep(0.3)
        leader, standby = (a, b) if a.runner.leads("tick") else (b, a)
        assert not standby.runner.leads("tick")
        await leader.stop()  # the leader goes away; its lock goes with its connection
        fixed_clock.advance(minutes=2)
        await eventually(lambda: _runs_at_least(db, 6))
        await asyncio.sleep(0.3)
        assert standby.runner.leads("tick")
    finally:
        for running in (a, b):
            if not running.task.done():
                await running.stop()
        await other_engine.dispose()
    history = await runs(db)
    assert [due for due, _ in history] == [T0 + timedelta(minutes=i) for i in range(6)]
    first_leader = history[0][1]
    assert {r for _, r in history[:4]} == {first_leader}
    assert {r for _, r in history[4:]} == {"a", "b"} - {first_leader}


async def _runs_at_least(db, n: int) -> bool:
    return len(await runs(db)) >= n


def test_the_poll_interval_shrinks_with_a_faster_simulated_clock_down_to_a_tenth_of_a_second():
    from datetime import UTC, datetime

    from shared.timers import _scaled

    start = datetime(2026, 12, 7, 0, 30, tzinfo=UTC)
    previous = clock.set_clock(clock.SimulatedClock(clock.wall_now(), start, speed=120))
    try:
        fast = _scaled(1.0), _scaled(0.05)
        clock.set_clock(clock.SimulatedClock(clock.wall_now(), start, speed=4))
        slow = _scaled(1.0)
    finally:
        clock.set_clock(previous)
    real = _scaled(1.0)
    assert fast == (0.1, 0.05) and slow == 0.25 and real == 1.0
