"""`make demo`, short (issue 29's acceptance): two simulated hours of the previous working day at 200x, the whole
hall launched as `make run` does, played through the gateway. No error; what the demo did (tickets, calls,
no-shows, waits, service times, ratings, cases) is what the monitor's KPIs report of that day; the vacant
window, the overdue imports, the confirmed finding and the complaint reached the supervision office."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from shared.devinfra.demo import VACANT_WINDOW
from tests.e2e.test_make_run import ROOT, Launch


@pytest.fixture(scope="module")
def summary() -> dict:
    var = ROOT / "var" / "test-demo"
    shutil.rmtree(var, ignore_errors=True)
    launch = Launch(var)
    out = var / "summary.json"
    var.mkdir(parents=True)
    try:
        ran = subprocess.run([sys.executable, "-m", "shared.devinfra.demo", "--hours", "2", "--speed", "200",
                              "--summary-json", str(out)], cwd=ROOT, env=launch.env, capture_output=True, text=True,
                             timeout=400)
        assert ran.returncode == 0, (ran.stdout[-3000:], ran.stderr[-3000:])
        assert "what the monitor reports" in ran.stdout
        return json.loads(out.read_text())
    finally:
        shutil.rmtree(var, ignore_errors=True)


def test_the_demo_ran_a_busy_morning_without_an_error(summary: dict) -> None:
    driver = summary["driver"]
    assert driver["errors"] == [] and summary["tickets_before"] == 0  # a fresh var/: nothing of an earlier play
    assert driver["tickets"] >= 40 and driver["served"] >= 30, driver
    assert driver["cases"] >= 5 and driver["refused"] == 1 and driver["imported_late"] == 3, driver
    assert driver["ratings"] > driver["satisfied"] > 0, driver  # mostly good, some bad
    assert driver["complaints"] == 1 and driver["confirmed"] == 1, driver


def test_its_figures_are_the_monitors_kpis_of_the_day(summary: dict) -> None:
    driver, hall, cases = summary["driver"], summary["kpis"]["hall"], summary["kpis"]["cases"]
    for name in ("tickets", "called", "no_shows", "ratings", "satisfied"):
        assert driver[name] == hall[name], (name, driver[name], hall[name])
    for name in ("wait_p50_s", "wait_p90_s", "service_p50_s"):
        assert abs(driver[name] - hall[name]) <= 1.0, (name, driver[name], hall[name])  # KPIs round to 0.1 s
    assert driver["cases"] == cases["accepted"]


def test_the_supervision_office_saw_the_day(summary: dict) -> None:
    alerts = summary["alerts"]
    assert alerts.get("overdue/red", 0) >= 3, alerts
    vacant = [t for t in summary["alert_texts"] if t.startswith("vacant_window")]
    assert vacant and all(f"{VACANT_WINDOW}号窗口" in t for t in vacant), vacant  # the window left away, only it
    assert summary["sanctions"] == {"warning": 1}
    assert any(k.startswith("sms/") for k in summary["deliveries"]), summary["deliveries"]
