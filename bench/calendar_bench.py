"""Benchmark of the working-day engine: ``add_working_days`` calls per second against a naive loop.

Why: supervision recomputes every open case's deadlines when the calendar changes (e.g. the 2027
schedule replaces the fallback), so the engine must stay fast: target >= 200,000 calls/s. The naive
loop walks day by day through the same layers (``WorkCalendar.is_working_day``), on the same inputs in
the same run, so the ratio shows what the precomputed year tables buy.

Run: ``uv run python bench/calendar_bench.py [seconds]``.
"""

from __future__ import annotations

import random
import sys
from datetime import date, timedelta
from pathlib import Path
from time import perf_counter

# `uv run python bench/calendar_bench.py` puts bench/ on sys.path, not the repo root.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from shared.calendar import WorkCalendar  # noqa: E402

TARGET_CALLS_PER_S = 200_000
_FIRST = date(2025, 1, 1).toordinal()
_LAST = date(2026, 12, 31).toordinal()


def make_inputs(count: int, seed: int = 2026) -> list[tuple[date, int, str | None]]:
    """Random (start in 2025-2026, n in 0..60, centre) triples; a quarter use a centre with overrides."""
    rng = random.Random(seed)
    return [
        (date.fromordinal(rng.randint(_FIRST, _LAST)), rng.randint(0, 60), "A" if rng.random() < 0.25 else None)
        for _ in range(count)
    ]


def make_calendar() -> WorkCalendar:
    """A calendar exercising the layers: a centre with a closure and a weekend opening."""
    return WorkCalendar(overrides={"A": {date(2026, 3, 4): "holiday", date(2026, 3, 8): "working"}}, version=1)


def naive_add(cal: WorkCalendar, start: date, n: int, center: str | None) -> date:
    """Day-by-day reference: step one day at a time, asking the layers whether it is a working day."""
    d, left = start, n
    one = timedelta(days=1)
    while left:
        d += one
        if cal.is_working_day(d, center):
            left -= 1
    return d


def _rate(fn, inputs: list[tuple[date, int, str | None]], seconds: float) -> tuple[float, int]:
    """Calls/s of fn over inputs, repeated until ``seconds`` have passed (at least one full pass)."""
    calls = 0
    began = perf_counter()
    while True:
        for start, n, center in inputs:
            fn(start, n, center)
        calls += len(inputs)
        elapsed = perf_counter() - began
        if elapsed >= seconds:
            return calls / elapsed, calls


def run_engine_bench(seconds: float = 2.0, inputs_count: int = 20_000) -> dict[str, float]:
    """Measure engine and naive calls/s on the same inputs; check they agree; return the figures."""
    cal = make_calendar()
    inputs = make_inputs(inputs_count)
    for start, n, center in inputs[:2_000]:  # same answers, and warms the lazily built year tables
        expected = naive_add(cal, start, n, center)
        got = cal.add_working_days(start, n, center)
        if got != expected:
            raise AssertionError(f"engine {got} != naive {expected} for {start} + {n} ({center})")
    engine_rate, engine_calls = _rate(cal.add_working_days, inputs, seconds)
    naive_rate, naive_calls = _rate(lambda s, n, c: naive_add(cal, s, n, c), inputs[:2_000], seconds)
    return {
        "engine_calls_per_s": engine_rate,
        "naive_calls_per_s": naive_rate,
        "ratio_engine_naive": engine_rate / naive_rate,
        "ratio_engine_target": engine_rate / TARGET_CALLS_PER_S,
        "engine_calls": float(engine_calls),
        "naive_calls": float(naive_calls),
    }


def main(argv: list[str]) -> int:
    seconds = float(argv[1]) if len(argv) > 1 else 2.0
    r = run_engine_bench(seconds)
    print(f"engine add_working_days: {r['engine_calls_per_s']:>12,.0f} calls/s")
    print(f"naive day-by-day loop:   {r['naive_calls_per_s']:>12,.0f} calls/s")
    print(f"ratio engine/naive:      {r['ratio_engine_naive']:>12.1f}x")
    print(f"ratio engine/target:     {r['ratio_engine_target']:>12.2f}x (target {TARGET_CALLS_PER_S:,}/s)")
    return 0 if r["engine_calls_per_s"] >= TARGET_CALLS_PER_S else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
