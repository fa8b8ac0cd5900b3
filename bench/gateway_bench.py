"""Benchmark of the gateway's cost: requests/s and latency to a bare JSON service, direct and through the gateway.

Why: every public call crosses the gateway, so it must not halve the hall's capacity nor add visible
latency: targets gateway/direct requests/s >= 0.65 and added p50 <= 2 ms at 50 and 200 connections.
A bare endpoint (``{"ok": true}``, no database) isolates the gateway: its own cost is all that differs.

Both servers are uvicorn subprocesses like a deployment (uvloop + httptools when installed); the gateway
runs with its deployed defaults (`make run`: INFO logs, no access log). The load comes from this process:
a raw asyncio HTTP/1.1 keep-alive client (N connections, each sending GET and reading the head and the
Content-Length or chunked body), several times cheaper per request than an httpx client, so the client
is not what is measured. Direct and gateway runs alternate at each concurrency, in one run; 1 connection
shows the hop's own latency, 50 and 200 add queueing (p50 is then about N / throughput).

Client, service and gateway share the machine's CPUs (2 on the reference machine), and so do whatever
else runs there: the table shows each process's CPU use and "others" (the rest of the machine during
the run), and the summary the gateway's CPU time per request, the figure least moved by contention.

Run: ``uv run python bench/gateway_bench.py [seconds per run, default 8]``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter, process_time, sleep

# `uv run python bench/gateway_bench.py` puts bench/ on sys.path, not the repo root.
ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fastapi import FastAPI  # noqa: E402

TARGET_RATIO = 0.65
TARGET_ADDED_P50_MS = 2.0
HOST = "127.0.0.1"
PATH = "/ping"
CONCURRENCY = (1, 50, 200)  # 1: the hop's own latency, without queueing
WARMUP_S = 1.0
TICKS = os.sysconf("SC_CLK_TCK")


def create_bare_app() -> FastAPI:
    """The stand-in service: one JSON endpoint, nothing else (no middleware, no database)."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get(PATH)
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    return app


# processes

def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _server_options() -> list[str]:
    options = ["--no-access-log", "--log-level", "warning"]
    for module, flag in (("uvloop", "--loop=uvloop"), ("httptools", "--http=httptools")):
        try:
            __import__(module)
            options.append(flag)
        except ImportError:
            pass
    return options


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS


def machine_cpu_seconds() -> float:
    """CPU time all processes of the machine have used so far (Linux /proc/stat, every core)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / TICKS


def spawn(name: str, factory: str, app_dir: Path, logs: Path, env: dict[str, str]) -> Server:
    port = _free_port()
    log = logs / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", factory, "--app-dir", str(app_dir),
             "--host", HOST, "--port", str(port), *_server_options()],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Server(name, port, process, log)


def wait_ready(server: Server, target: str, timeout: float = 20.0) -> None:
    """Poll until `target` answers 200; fail with the server's log if it exits or never does."""
    deadline = perf_counter() + timeout
    while perf_counter() < deadline:
        if server.process.poll() is not None:
            break
        try:
            with socket.create_connection((HOST, server.port), timeout=1) as s:
                s.sendall(f"GET {target} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        sleep(0.1)
    tail = server.log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"{server.name} did not become ready on port {server.port}:\n{tail}")


def stop(servers: list[Server]) -> None:
    """Terminate every server we started (SIGTERM, then SIGKILL after 5 s)."""
    for server in servers:
        if server.process.poll() is None:
            server.process.terminate()
    for server in servers:
        try:
            server.process.wait(5)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


# the load client

@dataclass
class Run:
    target: str
    connections: int
    seconds: float
    latencies: list[float]
    errors: int
    cpu: dict[str, float]  # share of one core, by process

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one response (head, then a Content-Length or chunked body); return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lowered = head.lower()
    at = lowered.find(b"\r\ncontent-length:")
    if at >= 0:
        end = lowered.index(b"\r\n", at + 2)
        await reader.readexactly(int(lowered[at + 17:end]))
    elif b"\r\ntransfer-encoding: chunked" in lowered:
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")  # no trailers: the empty line after the last chunk
    return status


async def _connection(port: int, target: str, measure_from: float, stop_at: float,
                      latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    request = f"GET {target} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: gateway-bench\r\n\r\n".encode()
    try:
        while (started := perf_counter()) < stop_at:
            writer.write(request)
            status = await _read_response(reader)
            finished = perf_counter()
            if started >= measure_from and finished <= stop_at:
                if status == 200:
                    latencies.append(finished - started)
                else:
                    errors.append(status)
    finally:
        writer.close()


async def load(name: str, port: int, target: str, connections: int, seconds: float,
               servers: list[Server]) -> Run:
    """`connections` keep-alive connections sending GET `target` back to back for WARMUP_S + `seconds`."""
    latencies: list[float] = []
    errors: list[int] = []
    now = perf_counter()
    measure_from, stop_at = now + WARMUP_S, now + WARMUP_S + seconds
    tasks = [asyncio.create_task(_connection(port, target, measure_from, stop_at, latencies, errors))
             for _ in range(connections)]
    await asyncio.sleep(max(0.0, measure_from - perf_counter()))
    cpu_before = {s.name: s.cpu_seconds() for s in servers} | {"client": process_time(),
                                                                "machine": machine_cpu_seconds()}
    await asyncio.sleep(max(0.0, stop_at - perf_counter()))
    cpu_after = {s.name: s.cpu_seconds() for s in servers} | {"client": process_time(),
                                                              "machine": machine_cpu_seconds()}
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    if failed:
        raise RuntimeError(f"{len(failed)} of {connections} connections failed: {failed[0]!r}")
    cpu = {name: (cpu_after[name] - cpu_before[name]) / seconds for name in cpu_after}
    cpu["others"] = max(0.0, cpu.pop("machine") - sum(cpu.values()))  # processes not of this benchmark
    return Run(name, connections, seconds, latencies, len(errors), cpu)


def _event_loop_runner() -> asyncio.Runner:
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


# the report

def report(runs: list[Run], http: str, load_average: tuple[float, float]) -> bool:
    print(f"\ngateway benchmark: GET {PATH} on a bare FastAPI app, direct vs through the gateway "
          f"(/api/queue{PATH})")
    print(f"servers: uvicorn subprocesses ({http}); load: raw asyncio HTTP/1.1 keep-alive client in this "
          f"process; {os.cpu_count()} CPUs shared by all; 1-min load average {load_average[0]:.1f} before, "
          f"{load_average[1]:.1f} after")
    if importlib.util.find_spec("sniffio") is None:
        print("note: sniffio is not installed; httpcore then searches sys.path for it on every request "
              "(a few hundred us of gateway CPU each)")
    print(f"\n{'conns':>5}  {'path':<8}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
          f"   CPU % of one core: client / service / gateway / others")
    for run in runs:
        cpu = " / ".join(f"{run.cpu.get(n, 0) * 100:3.0f}" for n in ("client", "service", "gateway", "others"))
        print(f"{run.connections:>5}  {run.target:<8}{run.rps:>10,.0f}{run.percentile_ms(0.5):>9.2f}"
              f"{run.percentile_ms(0.99):>9.2f}{run.errors:>8}   {cpu}")
    print(f"\n{'conns':>5}  {'gateway/direct req/s':>21}  {'added p50 ms':>12}  {'gateway CPU/request':>20}")
    met = True
    by = {(r.connections, r.target): r for r in runs}
    for n in CONCURRENCY:
        direct, gateway = by[(n, "direct")], by[(n, "gateway")]
        ratio = gateway.rps / direct.rps
        added = gateway.percentile_ms(0.5) - direct.percentile_ms(0.5)
        per_request_us = gateway.cpu["gateway"] / gateway.rps * 1e6
        gated = n > 1
        ok = ratio >= TARGET_RATIO and added <= TARGET_ADDED_P50_MS
        met &= ok or not gated
        verdict = (("meets" if ok else "MISSES") + " targets") if gated else "(latency of the hop alone)"
        print(f"{n:>5}  {ratio:>21.2f}  {added:>12.2f}  {per_request_us:>17.0f} us  {verdict}")
    print(f"targets at 50 and 200 connections: ratio >= {TARGET_RATIO}, added p50 <= {TARGET_ADDED_P50_MS} ms")
    return met


def main(argv: list[str]) -> int:
    seconds = float(argv[1]) if len(argv) > 1 else 8.0
    # SIGTERM (e.g. from make's parent) ends like Ctrl-C, through the finally that stops the servers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as logs:
        try:
            path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
            env = {**os.environ, "PYTHONPATH": path}
            service = spawn("service", "gateway_bench:create_bare_app", BENCH_DIR, Path(logs), env)
            servers.append(service)
            wait_ready(service, PATH)
            gateway_env = {**env, "GATEWAY_QUEUE_URL": f"http://{HOST}:{service.port}"}
            gateway = spawn("gateway", "services.gateway.main:create_app", ROOT, Path(logs), gateway_env)
            servers.append(gateway)
            wait_ready(gateway, f"/api/queue{PATH}")
            runs: list[Run] = []
            load_before = os.getloadavg()[0]
            with _event_loop_runner() as runner:
                for n in CONCURRENCY:
                    duration = min(seconds, 3.0) if n == 1 else seconds
                    for name, port, target in (("direct", service.port, PATH),
                                               ("gateway", gateway.port, f"/api/queue{PATH}")):
                        run = runner.run(load(name, port, target, n, duration, servers))
                        runs.append(run)
                        print(f"  {n:>3} connections {name:<8} {run.rps:>8,.0f} req/s", flush=True)
            http = " + ".join(o.split("=")[1] for o in _server_options() if "=" in o) or "asyncio + h11"
            return 0 if report(runs, http, (load_before, os.getloadavg()[0])) else 1
        finally:
            stop(servers)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
