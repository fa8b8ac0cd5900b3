"""The launcher's supervisor with real child processes: one that dies is restarted after a delay that
doubles while it keeps dying, the others keep running, and stopping leaves no process behind."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil

from shared.clock import monotonic
from shared.devinfra.supervisor import ChildSpec, Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def _run_until(supervisor: Supervisor, done, within: float = 10) -> None:
    deadline = monotonic() + within
    while not done() and monotonic() < deadline:
        supervisor.check()
        time.sleep(0.02)
    assert done(), "not reached in time"


def test_a_child_that_dies_is_restarted_with_growing_delays_while_the_others_keep_running(tmp_path: Path):
    lines: list[str] = []
    supervisor = Supervisor(first_delay=0.1, max_delay=0.4, say=lines.append)
    crasher = supervisor.start(ChildSpec("crasher", [sys.executable, "-c", "raise SystemExit(3)"],
                                         log=tmp_path / "crasher.log"))
    steady = supervisor.start(ChildSpec("steady", SLEEPER, log=tmp_path / "steady.log"))
    try:
        _run_until(supervisor, lambda: sum("crasher exited" in line for line in lines) >= 4)
        exits = [line for line in lines if "crasher exited" in line]
        assert exits[0] == f"crasher exited with 3; restarting in 0.1 s (see {tmp_path / 'crasher.log'})"
        assert [e.split("restarting in ")[1].split(" s")[0] for e in exits[:4]] == ["0.1", "0.2", "0.4", "0.4"]
        assert any(line.startswith("crasher restarted (pid ") for line in lines)
        assert crasher.pid not in [int(line.split("pid ")[1].rstrip(")")) for line in lines if "restarted" in line]
        assert steady.poll() is None and not any("steady" in line for line in lines)
    finally:
        supervisor.stop_all()
    assert not psutil.pid_exists(steady.pid) or psutil.Process(steady.pid).status() == psutil.STATUS_ZOMBIE


def test_stopping_takes_the_whole_process_group(tmp_path: Path):
    # a child that starts a grandchild of its own, as uvicorn's reloader or a shell would
    code = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
            " time.sleep(60)")
    supervisor = Supervisor(stop_timeout=5, say=lambda line: None)
    parent = supervisor.start(ChildSpec("parent", [sys.executable, "-c", code], log=tmp_path / "p.log"))
    deadline = monotonic() + 10
    while not psutil.Process(parent.pid).children() and monotonic() < deadline:
        time.sleep(0.02)
    grandchild = psutil.Process(parent.pid).children()[0]
    supervisor.stop_all()
    _, alive = psutil.wait_procs([grandchild], timeout=5)
    assert alive == []  # not left running once its parent was stopped


def test_a_self_starting_server_is_stopped_through_its_own_stop(tmp_path: Path):
    calls: list[str] = []

    def start():
        calls.append("start")
        return subprocess.Popen(SLEEPER)

    supervisor = Supervisor(say=lambda line: None)
    process = supervisor.start(ChildSpec("server", start=start, stop=lambda: (calls.append("stop"),
                                                                             process.kill(), process.wait())))
    supervisor.stop_all()
    assert calls == ["start", "stop"] and process.poll() is not None
