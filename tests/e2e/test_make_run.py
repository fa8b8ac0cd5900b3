"""`make run` smoke test: the launcher starts PostgreSQL, the broker, every service and the gateway; all
five answer /healthz through the gateway; SIGINT leaves no process behind; a second start finds the data."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from shared.auth import mint_token
from shared.devinfra.postgres import free_port

ROOT = Path(__file__).resolve().parents[2]


def _consecutive_free_ports(n: int) -> int:
    import socket

    for base in range(21000, 60000, 17):
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


class Launch:
    def __init__(self, var: Path) -> None:
        self.var = var
        self.gateway_port = free_port()
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("HALL_", "GATEWAY_", "NOTIFY_", "QUEUE_", "CASES_", "MONITOR_"))}
        self.env.update({
            "HALL_DEV_VAR_DIR": str(var), "HALL_DEV_PG_PORT": str(free_port()),
            "HALL_DEV_KAFKA_PORT": str(free_port()), "HALL_DEV_GATEWAY_PORT": str(self.gateway_port),
            "HALL_DEV_FIRST_SERVICE_PORT": str(_consecutive_free_ports(4)),
            "WORKER_HEALTH_PORT_BASE": str(_consecutive_free_ports(4) + 4),
        })
        self.proc: subprocess.Popen[bytes] | None = None
        self.tree: list[psutil.Process] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "shared.devinfra.run"], cwd=ROOT, env=self.env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            assert self.proc and self.proc.poll() is None, self.output()
            try:
                r = httpx.get(f"{self.url}/healthz", timeout=2)
                last = r.json()
                if r.status_code == 200:
                    return last
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"not healthy in {timeout}s: {last}")

    def record_tree(self) -> None:
        assert self.proc
        self.tree = psutil.Process(self.proc.pid).children(recursive=True)
        pid_file = self.var / "pg" / "postmaster.pid"
        postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
        self.tree += [postmaster, *postmaster.children(recursive=True)]

    def interrupt(self) -> int:
        assert self.proc
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(90)

    def survivors(self, grace: float = 10) -> list[list[str]]:
        """Processes of the recorded tree still alive `grace` seconds after the launcher returned."""
        deadline = time.monotonic() + grace
        while True:
            alive = [p for p in self.tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
            if not alive or time.monotonic() > deadline:
                return [p.cmdline() for p in alive]
            time.sleep(0.2)

    def output(self) -> str:
        if self.proc and self.proc.stdout and self.proc.poll() is not None:
            return self.proc.stdout.read().decode(errors="replace")
        return ""

    def token(self) -> str:
        key = json.loads((self.var / "secrets" / "dev.json").read_text())["GATEWAY_JWT_PRIVATE_KEY"]
        return mint_token(key, subject="smoke", role="system_admin", centers=["*"])


@pytest.fixture
def launch(tmp_path):
    run = Launch(tmp_path / "var")
    yield run
    if run.proc and run.proc.poll() is None:
        run.proc.kill()
    for p in run.tree:
        if p.is_running():
            p.kill()


def test_make_run_starts_everything_stops_cleanly_and_keeps_data(launch):
    launch.start()
    health = launch.wait_healthy()
    assert health["services"] == {"queue": "ok", "cases": "ok", "monitor": "ok", "notify": "ok"}
    for service in ("queue", "cases", "monitor", "notify"):
        r = httpx.get(f"{launch.url}/api/{service}/healthz", timeout=5)
        assert r.json() == {"status": "ok", "service": service}
    headers = {"Authorization": f"Bearer {launch.token()}"}
    created = httpx.post(f"{launch.url}/api/queue/centers", json={"id": "320102", "name": "玄武区政务服务中心"},
                         headers=headers, timeout=10)
    assert created.status_code == 201, created.text
    launch.record_tree()
    assert len(launch.tree) >= 6  # five servers, and postgres with its helpers at least

    assert launch.interrupt() == 0
    left = launch.survivors()
    assert left == [], left

    launch.start()
    launch.wait_healthy()
    again = httpx.get(f"{launch.url}/api/queue/centers/320102", headers={"Authorization": f"Bearer {launch.token()}"},
                      timeout=10)
    assert again.status_code == 200 and again.json()["name"] == "玄武区政务服务中心"
    launch.record_tree()
    assert launch.interrupt() == 0
