"""What the embedded servers (Envoy, Tansu, Prometheus) share: waiting for a child's HTTP readiness, and
stopping it with a grace period."""

from __future__ import annotations

import subprocess
import time
import urllib.request

from shared.clock import monotonic

# loopback only: never through a proxy the environment names
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_http_ready(url: str, process: subprocess.Popen[bytes] | None, name: str, timeout: float = 30,
                    interval: float = 0.05) -> None:
    """Until `url` answers 200, or raise if `process` exits first or `timeout` passes."""
    deadline = monotonic() + timeout
    while monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        try:
            with _DIRECT.open(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except (OSError, ValueError):
            pass  # not listening yet
        time.sleep(interval)
    raise TimeoutError(f"{name} did not become ready")


def terminate(process: subprocess.Popen[bytes] | None, grace: float, kill: bool = False) -> None:
    """SIGTERM (SIGKILL with `kill`), and SIGKILL if it is still there after `grace` seconds."""
    if process is None or process.poll() is not None:
        return
    process.kill() if kill else process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
