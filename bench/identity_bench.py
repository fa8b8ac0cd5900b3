"""Benchmark of the identity service (统一身份认证): one sign-in's time with the argon2 parameters chosen, and
device-key exchanges per second.

Why: a sign-in costs one argon2id verification by design (services/identity/credentials.py: 12 MiB, 3 passes,
one lane), so it must stay short enough for a clerk not to notice and for a morning's sign-ins not to queue:
target <= 50 ms for one sign-in here. Kiosks, displays, evaluators and window terminals exchange their device
keys for 15-minute tokens, a few hundred devices in a county hall, each every few minutes; the exchange must
never be what limits a restart of every device at once. It checks the key by a keyed hash (HMAC-SHA256 through
shared.pii, not argon2: the key is 256 random bits, nothing to stretch), then one indexed SELECT and an
Ed25519 signature, so its cost is the request's own. Target >= 500 exchanges/s, direct to one uvicorn worker on
this 2-core machine with wrk, PostgreSQL and the service sharing the cores. Measured here (three runs, a shared
machine): 590-830/s, the service at a full core (1.3-1.7 ms of its CPU per exchange: request, session, query,
commit, signature). 500/s is below the worst of those, so a neighbour's burst does not turn it into a MISS,
while an accidental argon2 (~20 ms of CPU, i.e. ~50/s) or a per-exchange cost grown by half does; and it is far
above the need (every device of a hall restarting at once is served within a second or two).

- sign-in: one clerk (created through the admin API with a system admin's token), `POST /login` with the right
  password, N times one after the other on one keep-alive connection, direct to the service: median, p90 and
  max, and the service's CPU time per sign-in; beside them argon2's own verification in this process
  (credentials.verify_password on a hash made by credentials.hash_password, the service's parameters) as the
  floor, and the share of a sign-in it is. Then a few sign-ins through Envoy (`/api/auth/login`), at most 8: the
  edge allows 10 per client address at once, then one every 6 s. Only the right password is ever sent and the
  series stops at the first refusal, so the lockout (10 failures in 15 minutes) is never approached.
- key exchange: a kiosk key of centre 320102 (identity keeps no centre table: a centre is an id in the key),
  `POST /token {"key": ...}` driven by wrk (a Lua script sets the method, body and Content-Type; its done()
  hook reports p50 and p99) direct to the service at 10 and 50 connections. The edge rate-limits /token per
  address as it does /login, so through Envoy a throughput figure would be the limit's; one exchange through it
  shows the route works, and exchanges/s is the service's capacity.

The machinery is gateway_bench.py's: an embedded PostgreSQL 18 (fast, unsafe: a benchmark's data), the
service as a uvicorn subprocess (uvloop + httptools, no access log), Envoy (one worker thread) with `make
run`'s configuration and every cluster at the identity service, the CPU columns with "others" (the rest of the
machine; a run during which they used over a quarter of a core is marked "!" and left out of the medians
when a quiet run exists), and a wait of a few seconds before each run for the machine to go quiet.

Misses are printed, not failed; the exit status is 1 only if a sign-in or an exchange was refused or a wrk run
had errors or non-2xx answers.

Run: ``uv run python bench/identity_bench.py [seconds per wrk run]`` (``make bench-gateway``, after
gateway_bench.py); also IDENTITY_BENCH_SECONDS (default 4), _ROUNDS (2), _WARMUP (1 s), _WRK_THREADS (1),
_QUIET_WAIT (3 s), _LOGINS (50), _ENVOY_LOGINS (8, at most 8), _ARGON2_SAMPLES (20), _ENVOY (1; 0: no
Envoy), or the matching --options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import secrets
import signal
import statistics
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from time import perf_counter, process_time

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
for path in (str(ROOT), str(BENCH_DIR)):
    if path not in sys.path:
        sys.path.insert(0, path)

import gateway_bench as gb  # noqa: E402
import jwt  # noqa: E402

from services.identity import credentials  # noqa: E402
from shared import devsecrets  # noqa: E402
from shared.auth import mint_token  # noqa: E402
from shared.db import ensure_database  # noqa: E402
from shared.devinfra.postgres import EmbeddedPostgres  # noqa: E402
from shared.migrate import upgrade  # noqa: E402

TARGET_LOGIN_MS = 50.0
TARGET_EXCHANGES_PER_S = 500.0
EXCHANGE_CONNECTIONS = (10, 50)
ENVOY_LOGINS_MAX = 8  # the edge's bucket: 10 sign-ins at once per address, then one every 6 s
WARMUP_LOGINS = 2  # the first sign-ins open the pool's connections: not counted
CENTER = "320102"
GATEWAY_PREFIX = "/api/auth"

EXCHANGE_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"key": "%s"}'
wrk.headers["Content-Type"] = "application/json"
"""


@dataclass
class Options:
    load: gb.Options  # the wrk runs'
    logins: int
    envoy_logins: int
    argon2_samples: int
    envoy: bool


def parse_args(argv: list[str]) -> Options:
    """Options from the command line, else IDENTITY_BENCH_<NAME>."""

    def env(name: str, default: float) -> str:
        return os.environ.get(f"IDENTITY_BENCH_{name}", str(default))

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("seconds", nargs="?", type=float, default=float(env("SECONDS", 4)),
                        help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=int(env("ROUNDS", 2)), help="wrk runs per connection count")
    parser.add_argument("--warmup", type=float, default=float(env("WARMUP", 1)),
                        help="seconds of warm-up before each wrk run (0: none)")
    parser.add_argument("--threads", type=int, default=int(env("WRK_THREADS", 1)), help="wrk threads")
    parser.add_argument("--quiet-wait", type=float, default=float(env("QUIET_WAIT", 3)),
                        help="at most this many seconds before each run for other processes to go quiet (0: none)")
    parser.add_argument("--logins", type=int, default=int(env("LOGINS", 50)), help="sign-ins timed direct")
    parser.add_argument("--envoy-logins", type=int, default=int(env("ENVOY_LOGINS", ENVOY_LOGINS_MAX)),
                        help=f"sign-ins timed through Envoy (at most {ENVOY_LOGINS_MAX}: the edge's rate limit)")
    parser.add_argument("--argon2-samples", type=int, default=int(env("ARGON2_SAMPLES", 20)),
                        help="argon2 verifications timed in this process")
    parser.add_argument("--no-envoy", action="store_true", default=env("ENVOY", 1) in ("0", "false", "no"),
                        help="no Envoy (no sign-in or exchange through the gateway)")
    args = parser.parse_args(argv)
    return Options(gb.Options(args.seconds, args.rounds, args.warmup, args.threads, args.quiet_wait),
                   max(1, args.logins), max(0, min(args.envoy_logins, ENVOY_LOGINS_MAX)),
                   max(1, args.argon2_samples), not args.no_envoy)


# the service and its data

def start_identity(stack: contextlib.ExitStack, work: Path, secrets_env: dict[str, str]) -> tuple[gb.Server, int]:
    """An embedded PostgreSQL with the identity schema and the identity service on it; the postmaster's pid."""
    pg = EmbeddedPostgres(work / "pg", gb.free_port(), fast_unsafe=True)
    stack.callback(pg.destroy)
    pg.start()
    url = pg.url("bench_identity")
    asyncio.run(ensure_database(url))
    upgrade("identity", url)
    env = {**gb.base_env(), **secrets_env, "IDENTITY_DATABASE_URL": url, "IDENTITY_MIGRATE_ON_START": "false",
           "HALL_LOG_LEVEL": "WARNING"}
    identity = gb.spawn("identity", "services.identity.main:create_app", ROOT, work, env)
    stack.callback(gb.stop, identity)
    gb.wait_ready(identity, "/healthz")
    postmaster = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    return identity, postmaster


def post_json(url: str, body: dict[str, object], token: str | None = None) -> tuple[int, dict[str, object], str]:
    """The status, JSON answer and Server header of one POST (an error status is returned, not raised)."""
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read()), answer.headers.get("server", "")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}"), exc.headers.get("server", "")


def admin_create(identity: gb.Server, admin_token: str, path: str, body: dict[str, object]) -> dict[str, object]:
    status, answer, _ = post_json(identity.url + path, body, admin_token)
    if status != 201:
        raise RuntimeError(f"POST {path} answered {status}: {answer}")
    return answer


# sign-in

@dataclass
class Series:
    """Sign-ins timed one after the other: milliseconds each, and the CPU it took (share of one core)."""

    name: str
    ms: list[float]
    refused: int
    cpu: dict[str, float]
    service_cpu_ms: float  # the service's CPU time per sign-in

    @property
    def median(self) -> float:
        return statistics.median(self.ms)

    @property
    def p90(self) -> float:
        return statistics.quantiles(self.ms, n=10, method="inclusive")[-1] if len(self.ms) > 1 else self.ms[0]

    @property
    def busy(self) -> bool:
        return self.cpu.get("others", 0) > gb.BUSY_OTHERS


def machine_share(watched: dict[str, Callable[[], float]], work: Callable[[], None]) -> tuple[dict[str, float], float]:
    """Run `work`; the CPU (share of one core) of each watched process and of the rest of the machine
    ("others": this script's own CPU left out), and the wall time it took."""
    before = {n: f() for n, f in watched.items()}
    machine_before, own_before, started = gb.machine_cpu_seconds(), process_time(), perf_counter()
    work()
    wall = perf_counter() - started
    cpu = {n: (f() - before[n]) / wall for n, f in watched.items()}
    own = (process_time() - own_before) / wall
    cpu["others"] = max(0.0, (gb.machine_cpu_seconds() - machine_before) / wall - sum(cpu.values()) - own)
    return cpu, wall


def timed_logins(name: str, base: str, path: str, username: str, password: str, count: int,
                 watched: dict[str, Callable[[], float]], via_envoy: bool, warmup: int = 0) -> Series:
    """`warmup` + `count` sign-ins on one keep-alive connection, one at a time; stops at the first refusal, so
    that a wrong setup never piles up failures towards the lockout."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    body = json.dumps({"username": username, "password": password}).encode()
    headers = {"Content-Type": "application/json"}
    ms: list[float] = []
    refused = 0

    def sign_in() -> bool:
        nonlocal refused
        started = perf_counter()
        connection.request("POST", path, body, headers)
        answer = connection.getresponse()
        data = answer.read()
        elapsed = (perf_counter() - started) * 1000
        through_envoy = answer.getheader("server", "") == "hall-gateway"
        if answer.status != 200 or "access_token" not in json.loads(data) or through_envoy != via_envoy:
            refused += 1
            print(f"! {name}: sign-in answered {answer.status} (server {answer.getheader('server')!r}): "
                  f"{data[:300]!r}", file=sys.stderr)
            return False
        ms.append(elapsed)
        return True

    try:
        for _ in range(warmup):
            if not sign_in():
                break
        ms.clear()
        if refused:
            return Series(name, [float("nan")], refused, {}, float("nan"))
        service_before = watched["service"]()

        def series() -> None:
            for _ in range(count):
                if not sign_in():
                    return

        cpu, _ = machine_share(watched, series)
        service_ms = (watched["service"]() - service_before) * 1000 / max(1, len(ms))
        return Series(name, ms or [float("nan")], refused, cpu, service_ms)
    finally:
        connection.close()


def argon2_floor(samples: int) -> list[float]:
    """Milliseconds of one argon2 verification (the right password) in this process: the service's parameters."""
    password = secrets.token_urlsafe(16)
    password_hash = credentials.hash_password(password)
    times = []
    for _ in range(samples + 1):
        started = perf_counter()
        if not credentials.verify_password(password_hash, password):
            raise RuntimeError("argon2 refused the password it just hashed")
        times.append((perf_counter() - started) * 1000)
    return times[1:]  # the first one pays for the first allocation of its memory


def argon2_parameters() -> str:
    h = credentials.HASHER
    return (f"argon2id t={h.time_cost}, m={h.memory_cost // 1024} MiB, p={h.parallelism}, "
            f"hash {h.hash_len} B, salt {h.salt_len} B")


def print_logins(series: list[Series], floor: list[float]) -> None:
    cpu_columns = ("service", "envoy", "postgres", "others")
    print(f"\n{'sign-in':<28}{'n':>4}{'median ms':>11}{'p90 ms':>9}{'max ms':>9}{'service CPU ms':>16}   "
          f"CPU % of one core: {' / '.join(cpu_columns)}")
    print(f"{'argon2 verify (this process)':<28}{len(floor):>4}{statistics.median(floor):>11.1f}"
          f"{statistics.quantiles(floor, n=10, method='inclusive')[-1] if len(floor) > 1 else floor[0]:>9.1f}"
          f"{max(floor):>9.1f}{'':>16}")
    for s in series:
        cpu = " / ".join(f"{s.cpu.get(n, 0) * 100:3.0f}" for n in cpu_columns)
        print(f"{s.name:<28}{len(s.ms):>4}{s.median:>11.1f}{s.p90:>9.1f}{max(s.ms):>9.1f}{s.service_cpu_ms:>16.1f}"
              f"   {cpu}{' !' if s.busy else ''}")
    if any(s.busy for s in series):
        print(f"! = other processes used over {gb.BUSY_OTHERS:.0%} of a core during the series: its times say more "
              f"about the machine; the service's CPU per sign-in is the steadier figure")


# key exchange

def exchange_summary(runs: list[gb.Run]) -> tuple[float, float, float, float, int]:
    """Medians over the quiet runs (all when none was quiet): req/s, p50, p99, service CPU us per exchange;
    and how many runs were quiet."""
    quiet = [r for r in runs if not r.busy]
    used = quiet or runs
    return (statistics.median(r.rps for r in used), statistics.median(r.p50_ms for r in used),
            statistics.median(r.p99_ms for r in used),
            statistics.median(r.cpu["service"] / r.rps * 1e6 for r in used), len(quiet))


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = perf_counter()
    with tempfile.TemporaryDirectory(prefix="identity-bench-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        secrets_env = devsecrets.generate()
        identity, postmaster = start_identity(stack, work, secrets_env)
        envoy = (gb.start_envoy(stack, work, {}, identity.port, secrets_env["HALL_JWT_PUBLIC_KEY"])
                 if options.envoy else None)
        watched = {"service": lambda: gb.proc_cpu_seconds(identity.process.pid),
                   "postgres": lambda: gb.family_cpu_seconds(postmaster)}
        if envoy is not None:
            assert envoy.process is not None
            envoy_pid = envoy.process.pid
            watched["envoy"] = lambda: gb.proc_cpu_seconds(envoy_pid)

        admin = mint_token(secrets_env["GATEWAY_JWT_PRIVATE_KEY"], subject="bench-admin", role="system_admin",
                              centers=["*"], ttl=timedelta(hours=1))
        username, password = "bench.clerk", secrets.token_urlsafe(16)
        admin_create(identity, admin, "/users", {
            "username": username, "password": password, "display_name": "压测窗口人员", "role": "clerk",
            "centers": [CENTER], "department": "D01"})
        device = admin_create(identity, admin, "/device-keys",
                              {"role": "kiosk", "center_id": CENTER, "label": "压测取号机"})
        key = str(device["key"])

        print(f"identity benchmark: the identity service (uvicorn, one worker) on an embedded PostgreSQL 18"
              f"{f'; Envoy {gb.envoy_version()} (1 worker thread) in front for the gateway figures' if envoy else ''}")
        print(f"password hashing: {argon2_parameters()} (services/identity/credentials.py); "
              f"{os.cpu_count()} CPUs shared by all")
        print(f"lockout: {WARMUP_LOGINS} + {options.logins} sign-ins direct and {options.envoy_logins if envoy else 0}"
              f" through Envoy, all with the right password, each series stopping at the first refusal (10 failures "
              f"in 15 minutes lock a user; a success clears them)")

        failures = 0
        gb.wait_quiet(watched, options.load.quiet_wait)
        direct = timed_logins("direct POST /login", identity.url, "/login", username, password, options.logins,
                              watched, via_envoy=False, warmup=WARMUP_LOGINS)
        failures += direct.refused
        series = [direct]
        if envoy is not None and options.envoy_logins and not failures:
            gb.wait_quiet(watched, options.load.quiet_wait)
            through = timed_logins(f"via Envoy {GATEWAY_PREFIX}/login", envoy.url, f"{GATEWAY_PREFIX}/login",
                                   username, password, options.envoy_logins, watched, via_envoy=True)
            failures += through.refused
            series.append(through)
        floor = argon2_floor(options.argon2_samples)
        print_logins(series, floor)
        if envoy is not None:
            print(f"(through Envoy at most {ENVOY_LOGINS_MAX} sign-ins: the edge rate-limits {GATEWAY_PREFIX}/login "
                  f"per client address, 10 at once, then one every 6 s; more would measure its 429s)")
        if not direct.refused:
            ratio = direct.median / TARGET_LOGIN_MS
            share = statistics.median(floor) / direct.median
            print(f"one sign-in: median {direct.median:.1f} ms / target {TARGET_LOGIN_MS:.0f} ms = {ratio:.2f} "
                  f"{gb.verdict(direct.median <= TARGET_LOGIN_MS)}; argon2's verification (median "
                  f"{statistics.median(floor):.1f} ms here) is {share:.0%} of it, the rest the request, two queries, "
                  f"a refresh-token row and the commit")
            if envoy is not None and len(series) > 1 and not series[1].refused:
                print(f"through Envoy: median {series[1].median:.1f} ms ({series[1].median - direct.median:+.1f} ms "
                      f"against direct, {len(series[1].ms)} sign-ins)")

        # key exchange: the same key every time, as a device restarting and exchanging again would
        status, answer, _ = post_json(identity.url + "/token", {"key": key})
        if status != 200 or "access_token" not in answer:
            raise RuntimeError(f"POST /token answered {status}: {answer}")
        claims = jwt.decode(str(answer["access_token"]), options={"verify_signature": False})
        print(f"\nkey exchange: POST /token {{\"key\": \"hk_...\"}} -> {claims['role']} token of centre "
              f"{claims['centers']}, {answer['expires_in']} s; the key is checked by a keyed hash (HMAC-SHA256 via "
              f"shared.pii, credentials.new_device_key: 256 random bits), not argon2")
        if envoy is not None:
            status, answer, server = post_json(f"{envoy.url}{GATEWAY_PREFIX}/token", {"key": key})
            ok = status == 200 and "access_token" in answer and server == "hall-gateway"
            failures += not ok
            print(f"one exchange through Envoy ({GATEWAY_PREFIX}/token): {status}{'' if ok else ' FAILED'}; "
                  f"exchanges/s is measured direct: the edge rate-limits {GATEWAY_PREFIX}/token per client address "
                  f"(10 at once, then one every 6 s), so through it the figure would be that limit, not the service")
        script = work / "exchange.lua"
        script.write_text(EXCHANGE_SCRIPT % key + gb.WRK_SCRIPT)
        wrk = gb.Wrk(gb.ensure_wrk(), script, options.load.threads)
        target = gb.Target("direct", identity.url + "/token", {}, lambda body: True, watched, via_envoy=False)
        print(gb.describe_load(wrk, options.load, "(one side: direct)"))
        gb.print_header()
        summaries = []
        for connections in EXCHANGE_CONNECTIONS:
            runs, warmup_failures = gb.measure(wrk, "exchange", connections, [target], options.load)
            failures += warmup_failures + sum(r.errors + r.non_2xx for r in runs)
            summaries.append((connections, runs, *exchange_summary(runs)))
        print(f"\nmedians over the quiet runs (all when none was quiet); target >= {TARGET_EXCHANGES_PER_S:.0f} "
              f"exchanges/s (direct, one uvicorn worker)")
        print(f"{'conns':>6}{'exchanges/s':>13}{'p50 ms':>9}{'p99 ms':>9}{'service CPU/exchange':>22}"
              f"{'/ target':>10}  {'':<5}{'quiet':>6}")
        for connections, runs, rps, p50, p99, cpu_us, quiet in summaries:
            print(f"{connections:>6}{rps:>13,.0f}{p50:>9.2f}{p99:>9.2f}{cpu_us:>19.0f} us"
                  f"{rps / TARGET_EXCHANGES_PER_S:>10.2f}  {gb.verdict(rps >= TARGET_EXCHANGES_PER_S):<5}"
                  f"{quiet:>4}/{len(runs)}")
        print(f"targets: one sign-in <= {TARGET_LOGIN_MS:.0f} ms, exchanges >= {TARGET_EXCHANGES_PER_S:.0f}/s; "
              f"a MISS is reported, not failed; {perf_counter() - started:.0f} s in all")
        if failures:
            print(f"FAILED: {failures} refused sign-ins or exchanges, errors or non-2xx answers (warm-ups included)",
                  file=sys.stderr)
            return 1
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
