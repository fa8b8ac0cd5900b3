"""The shared clock: a fixed clock drives a service's answers; processes sharing a simulated anchor agree;
ruff refuses wall-clock reads outside shared/clock.py."""

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared import clock

ROOT = Path(__file__).resolve().parents[2]


async def test_moving_the_fixed_clock_changes_the_service_answer(service_client, fixed_clock):
    async with service_client("cases") as client:
        before = (await client.get("/time")).json()
        fixed_clock.set(datetime(2026, 2, 12, 15, 59, 59, tzinfo=UTC))  # 23:59:59 Shanghai
        late = (await client.get("/time")).json()
        fixed_clock.advance(seconds=1)  # local midnight: a new business date
        after = (await client.get("/time")).json()
    assert before == {"now": "2026-02-12T01:00:00+00:00", "today_local": "2026-02-12", "speed": 0.0}
    assert late["today_local"] == "2026-02-12"
    assert after == {"now": "2026-02-12T16:00:00+00:00", "today_local": "2026-02-13", "speed": 0.0}


def test_simulated_clock_runs_at_its_speed_from_the_anchor():
    sim = clock.SimulatedClock(real_start=clock.RealClock().now(), sim_start=datetime(2026, 2, 12, 1, tzinfo=UTC),
                               speed=60)
    first = sim.now()
    assert abs((first - datetime(2026, 2, 12, 1, tzinfo=UTC)).total_seconds()) < 60  # < 1 real second
    with pytest.raises(ValueError):
        clock.SimulatedClock(real_start=first, sim_start=first, speed=0)
    previous = clock.set_clock(sim)
    try:
        assert clock.speed() == 60  # what /time tells the hall's screens, so they run the hall's time on
    finally:
        clock.set_clock(previous)
    assert clock.speed() in (0.0, 1.0)  # back to the test's fixed clock or the real one


_PROBE = """
import json, sys
from shared.settings import HallSettings
from shared import clock
clock.set_clock(HallSettings().build_clock())
start = clock.monotonic()
print(json.dumps({"now": clock.now().isoformat(), "mono": start}))
"""


def _probe(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True, timeout=60)
    return json.loads(out.stdout)


def test_two_processes_with_the_same_simulated_anchor_agree(secrets):
    import os

    real_start = clock.RealClock().now() - timedelta(minutes=1)
    env = {**os.environ, "HALL_CLOCK_MODE": "simulated", "HALL_CLOCK_SIM_REAL_START": real_start.isoformat(),
           "HALL_CLOCK_SIM_START": "2026-02-12T01:00:00+00:00", "HALL_CLOCK_SPEED": "60",
           "PYTHONPATH": str(ROOT)}
    a_started = clock.RealClock().now()
    a = datetime.fromisoformat(_probe(env)["now"])
    b_started = clock.RealClock().now()
    b = datetime.fromisoformat(_probe(env)["now"])
    # both are about one simulated hour past the anchor (60x for one real minute) ...
    for value in (a, b):
        assert timedelta(minutes=59) < value - datetime(2026, 2, 12, 1, tzinfo=UTC) < timedelta(minutes=75)
    # ... and they differ by what the real time between the two starts is worth at 60x, nothing more
    expected = (b_started - a_started) * 60
    assert abs((b - a) - expected) < timedelta(seconds=60 * 3)


def test_ruff_rejects_a_planted_wall_clock_read(tmp_path):
    planted = ROOT / "services" / "queue" / "_planted_clock_read.py"
    planted.write_text("from datetime import datetime\n\n\ndef stamp():\n    return datetime.now()\n")
    try:
        result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(planted)], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
    finally:
        planted.unlink()
    assert result.returncode != 0
    assert "TID251" in result.stdout and "datetime.datetime.now" in result.stdout
    clean = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "shared/clock.py"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert clean.returncode == 0, clean.stdout


def test_wall_time_ignores_the_installed_business_clock():
    # token lifetimes count in wall time: a fixed or simulated hall clock must not move them
    previous = clock.set_clock(clock.FixedClock(datetime(2001, 1, 1, tzinfo=UTC)))
    try:
        wall = clock.wall_now()
        assert clock.now().year == 2001
        assert wall.tzinfo is not None and wall.year >= 2025
    finally:
        clock.set_clock(previous)
