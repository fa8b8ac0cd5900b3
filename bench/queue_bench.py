"""Benchmark of queue-calling (排队叫号) through the gateway: issue-ticket and call-next 1:1 against the database's
limit on the same SQL, then open-loop latency and call-next -> hall display feed (issue 19, "Benchmark").

Targets: through Envoy, 200 connections, HTTP requests/s >= 0.5 x what pgbench reaches running the same
statements against the same database, with zero errors; at a constant offered rate of half that throughput,
p99 <= 150 ms; call-next -> display feed client p99 <= 200 ms.

The mix. A window with an active ticket answers call-next with 409, so a call comes with the clerk's start and
finish. Each wrk connection is one window terminal and a kiosk beside it, and loops issue -> call-next -> start
-> finish; wrk runs one thread per connection, so each connection has its own Lua state and knows the ticket its
window holds. Issue and call-next are therefore exactly 1:1, start and finish come with every call, all four
are counted (and reported) apart, and the database limit is measured for the same cycle.

The hall: 4 centres of 50 windows (200 connections, one window each), one service (HJ, prefix A) that every
window serves at weight 1, every window's clerk signed in, 100 tickets waiting per centre. Each connection
alternates its issue and its call, so a centre's line stays within 50 of the 100 it starts a run with: call-next
never finds it empty, and both endpoints (the issue's wait estimate and the call's rule read the whole line) work
on the line of a busy hall. Before each wrk run, through the service's API, each line is brought back to 100 and
the connections begin where their windows stand: before the first run a quarter of the windows call a ticket and
a quarter call and start one, so the connections begin spread over the cycle's four steps (with 200 connections
and answers taking seconds, each goes round only a few times in a run, and all beginning with the issue would
over-count it); later runs begin where the previous one stopped. The centres are open all day, every day
(00:00-23:59:59.999999, weekends and holidays "open", dated exceptions for today and tomorrow) and close their
day at 23:59:59.999999, so the service runs on the real clock at any hour. A period cannot run past midnight: a
run that crosses local midnight (Asia/Shanghai) meets a new business day with an empty line (call-next answers
204, counted as "empty", not as an error), and the bench says so.

The database limit. pgbench (the PostgreSQL 18 wheel's) runs bench/queue_pgbench.sql: the statements the four
endpoints send, in their order, one transaction per request, as read from PostgreSQL's log; its header says what
differs and why. At start-up the service answers each endpoint twice with log_statement=all, and the fewest
statements each sent are compared with the script's: a mismatch is printed (the script is then out of date).
50 clients, 2 threads, prepared statements (asyncpg prepares too), on 4 centres of its own with the same windows
and backlog, so its tickets never join the lines wrk works on. One pgbench cycle is four transactions: four
requests' worth.

Throughput rounds alternate pgbench and wrk (after a short warm-up run of its own), with gateway_bench's
machinery: the service a uvicorn subprocess (uvloop + httptools, no access log), Envoy with `make run`'s
configuration and one worker thread, CPU use per process, a run during which the rest of the machine used over
a quarter of a core marked "!" and left out of the medians when a quiet round exists. The service's pool is its
default (QUEUE_DB_POOL_SIZE / QUEUE_DB_MAX_OVERFLOW in the environment change it). During each run
pg_stat_activity is sampled every 50 ms: what the service's pooled connections and pgbench's clients were doing
(idle in a transaction, waiting for a lock and of which kind, running a statement). The relay does not run in
this phase: it is not the endpoints' work, and on a two-CPU machine it would take its CPU from whichever side
runs. (It meets the broker once, while the hall is built, and stops; so its later start finds the cluster id
recorded and does not re-send every retained event.)

Latency, open loop. The queue worker (`python -m services.queue.worker`: the outbox relay) starts again against
the embedded broker (Tansu), after the outbox rows of the throughput phase were marked sent (relaying 10^5
events no display waits for would measure a backlog drain) and the tables vacuumed and analysed. One display per centre (SSE, a display token) reads
`/api/queue/feeds/display` through Envoy. A client in this process (asyncio, HTTP/1.1 keep-alive connections
opened on demand, so a send never waits for a free connection) offers half the measured throughput at a
constant rate, in the same mix: every fourth send an issue (centres in turn), the others a window's: the next
step of one in the middle of its cycle (its clerk starts and finishes at once), else a call by the window idle
longest. Latency runs from each request's scheduled send time, not from when it was sent (no coordinated
omission). call-next -> display is from the call's scheduled send to the moment its centre's display read the
`ticket.called` frame (also given from the call's answer). Every call must reach its display.

py-spy. If the throughput misses its target (or with --profile), one more wrk run is profiled with py-spy
(`py-spy record --nonblocking`, the service's process) and the bench prints where the service's CPU went: the
layers and endpoint functions inclusive, and the sampled frames by package and function. py-spy is not a project
dependency: it is taken from PATH or QUEUE_BENCH_PY_SPY (e.g. `uv tool install py-spy`); without it the bench
says so.

Misses are printed, not failed; the exit status is 1 only on errors: non-2xx answers (warm-ups included),
connection errors, pgbench failures, a call that never reached its display, a failed request in the service's
log (a request a stopped wrk left in flight can fail there unseen). wrk's "timeouts", requests it saw pending
for over 5 s while it went on waiting for them, are shown as ">5 s": slowness, not failure.

Run: ``uv run python bench/queue_bench.py [seconds per run]`` (``make bench-queue``); also QUEUE_BENCH_SECONDS
(default 10), _ROUNDS (2), _WARMUP (2 s), _QUIET_WAIT (3 s), _OPEN_SECONDS (15), or the matching --options;
--centres, --windows (per centre; connections = centres x windows), --backlog, --pgbench-clients, --profile.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from time import perf_counter, process_time, sleep
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
for path in (str(ROOT), str(BENCH_DIR)):
    if path not in sys.path:
        sys.path.insert(0, path)

import asyncpg  # noqa: E402
import gateway_bench as gb  # noqa: E402
import httpx  # noqa: E402

from services.queue.config import Settings as QueueSettings  # noqa: E402
from shared import clock  # noqa: E402
from shared.auth import mint_token  # noqa: E402
from shared.db import asyncpg_dsn, ensure_database  # noqa: E402
from shared.devinfra.kafka import EmbeddedKafka  # noqa: E402
from shared.devinfra.postgres import EmbeddedPostgres  # noqa: E402
from shared.events.relay import CLUSTER_STATE_KEY  # noqa: E402
from shared.migrate import upgrade  # noqa: E402

TARGET_RATIO = 0.5
TARGET_P99_MS = 150.0
TARGET_FEED_P99_MS = 200.0
SQL_SCRIPT = BENCH_DIR / "queue_pgbench.sql"
SERVICE = "HJ"
HTTP_CENTRE_BASE = 320100  # wrk's centres: 320101, 320102, ...
PGBENCH_CENTRE_BASE = 329900  # pgbench's: 329901, ... (the script's -D base)
STEPS = ("issue", "call", "start", "finish")
ALL_DAY = [{"start": "00:00:00", "end": "23:59:59.999999"}]
DAY_CLOSE = "23:59:59.999999"
TOKEN_TTL = timedelta(hours=3)


@dataclass
class Options:
    seconds: float
    rounds: int
    warmup: float
    quiet_wait: float
    open_seconds: float
    open_warmup: float
    centres: int
    windows: int
    backlog: int
    pgbench_clients: int
    pgbench_threads: int
    profile: bool
    show_statements: bool = False

    @property
    def connections(self) -> int:
        return self.centres * self.windows


def parse_args(argv: list[str]) -> Options:
    def env(name: str, default: float) -> str:
        return os.environ.get(f"QUEUE_BENCH_{name}", str(default))

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("seconds", nargs="?", type=float, default=float(env("SECONDS", 10)),
                        help="seconds per throughput run")
    parser.add_argument("--rounds", type=int, default=int(env("ROUNDS", 2)), help="pgbench + wrk pairs")
    parser.add_argument("--warmup", type=float, default=float(env("WARMUP", 2)),
                        help="seconds of wrk warm-up before each wrk run (0: none)")
    parser.add_argument("--quiet-wait", type=float, default=float(env("QUIET_WAIT", 3)),
                        help="at most this many seconds before each run for other processes to go quiet")
    parser.add_argument("--open-seconds", type=float, default=float(env("OPEN_SECONDS", 15)),
                        help="seconds of the open-loop run that are measured")
    parser.add_argument("--open-warmup", type=float, default=3.0, help="seconds of open loop before measuring")
    parser.add_argument("--centres", type=int, default=4)
    parser.add_argument("--windows", type=int, default=50, help="windows per centre (one wrk connection each)")
    parser.add_argument("--backlog", type=int, default=100, help="tickets waiting per centre before the load")
    parser.add_argument("--pgbench-clients", type=int, default=50)
    parser.add_argument("--pgbench-threads", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="profile a wrk run with py-spy even on target")
    parser.add_argument("--show-statements", action="store_true",
                        help="print the statements each endpoint sends (to update queue_pgbench.sql) and stop")
    a = parser.parse_args(argv)
    if a.pgbench_clients > a.centres * a.windows:
        parser.error("pgbench clients play one window each: at most centres x windows")
    return Options(a.seconds, a.rounds, a.warmup, a.quiet_wait, a.open_seconds, a.open_warmup, a.centres,
                   a.windows, a.backlog, a.pgbench_clients, a.pgbench_threads, a.profile, a.show_statements)


# --- the hall -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    centre: str
    number: str
    clerk: str  # the clerk's token, as a sign-in at this window's terminal gives it


@dataclass
class Hall:
    """The centres wrk and the open loop work on, and pgbench's own, with their tokens."""

    key: str
    http_centres: list[str]
    pgbench_centres: list[str]
    windows: dict[str, list[Window]] = field(default_factory=dict)  # centre -> its windows
    kiosks: dict[str, str] = field(default_factory=dict)  # centre -> kiosk token

    def token(self, role: str, subject: str, centres: list[str], **claims: str) -> str:
        return mint_token(self.key, subject=subject, role=role, centers=centres, ttl=TOKEN_TTL, **claims)

    def lanes(self) -> list[Window]:
        """The HTTP centres' windows in wrk's thread order: consecutive connections in different centres."""
        per_centre = [self.windows[c] for c in self.http_centres]
        return [w for group in zip(*per_centre, strict=True) for w in group]

    def window(self, centre: str, number: str) -> Window:
        return self.windows[centre][int(number) - 1]


async def build_hall(url: str, hall: Hall, windows: int, backlog: int, today: date) -> None:
    """Every centre through the service's own API: created, open all day, one service, its windows with their
    clerks signed in, and `backlog` tickets waiting."""
    admin = hall.token("system_admin", "bench-admin", ["*"])
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        async def call(method: str, path: str, token: str, body: Any = None) -> Any:
            async with limit:
                r = await http.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
            if r.status_code >= 300:
                raise RuntimeError(f"setting up the hall: {method} {path} -> {r.status_code} {r.text}")
            return r.json() if r.content else None

        async def centre(cid: str) -> None:
            await call("POST", "/centers", admin, {"id": cid, "name": f"基准测试中心 {cid}"})
            manager = hall.token("center_admin", f"admin-{cid}", [cid])
            exceptions = [{"date": str(day), "periods": ALL_DAY, "reason": "benchmark: open all day"}
                          for day in (today, today + timedelta(days=1))]
            await call("PUT", f"/centers/{cid}/schedule", manager, {
                "weekly": {str(d): ALL_DAY for d in range(1, 8)}, "weekend_mode": "open",
                "holiday_mode": "as_weekend", "exceptions": exceptions})
            settings = await call("GET", f"/centers/{cid}/settings", manager)
            await call("PUT", f"/centers/{cid}/settings", manager, {**settings, "day_close_time": DAY_CLOSE})
            await call("POST", f"/centers/{cid}/services", manager,
                       {"code": SERVICE, "name": "户籍业务", "prefix": "A", "department": "D01"})
            await asyncio.gather(*(call("POST", f"/centers/{cid}/windows", manager, {
                "number": str(n), "name": f"{n}号窗口", "department": "D01",
                "services": [{"service_code": SERVICE, "weight": 1}]}) for n in range(1, windows + 1)))
            hall.windows[cid] = [Window(cid, str(n), hall.token(
                "clerk", f"clerk-{cid}-{n}", [cid], department="D01", window=str(n), device=f"term-{cid}-{n}"))
                for n in range(1, windows + 1)]
            await asyncio.gather(*(call("POST", f"/centers/{cid}/windows/{w.number}/sign-in", w.clerk)
                                   for w in hall.windows[cid]))
            hall.kiosks[cid] = hall.token("kiosk", f"kiosk-{cid}", [cid], device=f"kiosk-{cid}")
            await asyncio.gather(*(call("POST", f"/centers/{cid}/tickets", hall.kiosks[cid], {"service_code": SERVICE})
                                   for _ in range(backlog)))

        await asyncio.gather(*(centre(c) for c in hall.http_centres + hall.pgbench_centres))


IN_FLIGHT = re.compile(r'^http_requests_in_flight\{service="queue"\} ([\d.]+)$', re.MULTILINE)


async def settle(http: httpx.AsyncClient, within: float = 30) -> None:
    """Until the service has finished the requests a stopped load client left behind (wrk exits with requests
    in flight, and the service completes them): none in flight but the scrape asking, twice in a row."""
    quiet, deadline = 0, perf_counter() + within
    while quiet < 2 and perf_counter() < deadline:
        found = IN_FLIGHT.search((await http.get("/metrics")).text)
        quiet = quiet + 1 if found is None or float(found.group(1)) <= 1 else 0
        await asyncio.sleep(0.05)


Phases = dict[tuple[str, str], tuple[str, str]]  # (centre, window) -> (first step, the ticket it holds or "")


async def stage_hall(url: str, db_url: str, hall: Hall, backlog: int, day: date, *, mode: str) -> Phases:
    """Before a run, through the API. mode "first": the hall as built; every fourth window calls a ticket and
    every fourth calls and starts one, so wrk's connections begin spread over the cycle's four steps (as in a
    steady state: a short run then counts each step about equally). mode "again": the windows as the last run
    left them (it stopped mid-cycle everywhere). mode "free": every ticket at a window finished (the open loop
    starts from free windows). Then each centre's line is brought back to `backlog`. Returns where each
    window's connection begins."""
    lanes = hall.lanes()
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await settle(http)  # wrk exits with requests in flight: the service finishes them first
        limit = asyncio.Semaphore(32)

        async def post(path: str, token: str, body: Any = None) -> Any:
            async with limit:
                r = await http.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
            if r.status_code not in (200, 201):
                raise RuntimeError(f"staging the hall: POST {path} -> {r.status_code} {r.text}")
            return r.json()

        async def call(window: Window, steps: tuple[str, ...] = ()) -> None:
            ticket = (await post(f"/centers/{window.centre}/windows/{window.number}/call-next", window.clerk))["id"]
            for step in steps:
                await post(f"/tickets/{ticket}/{step}", window.clerk)

        async def serve(window: Window, count: int) -> None:
            for _ in range(count):  # one after the other: a window holds one ticket at a time
                await call(window, ("start", "finish"))

        async def held() -> dict[tuple[str, str], tuple[int, str]]:
            conn = await asyncpg.connect(asyncpg_dsn(db_url))
            try:
                return {(r["center_id"], r["number"]): (r["id"], r["status"]) for r in await conn.fetch(
                    "SELECT w.center_id, w.number, t.id, t.status FROM windows w JOIN tickets t ON t.id = "
                    "w.active_ticket_id WHERE w.center_id = ANY($1::varchar[])", hall.http_centres)}
            finally:
                await conn.close()

        if mode == "first":
            await asyncio.gather(*(call(w, ("start",) if i % 4 == 3 else ()) for i, w in enumerate(lanes)
                                   if i % 4 >= 2))
        elif mode == "free":
            async def release(window: Window, ticket: int, status: str) -> None:
                for step in (("start", "finish") if status == "called" else ("finish",)):
                    await post(f"/tickets/{ticket}/{step}", window.clerk)

            await asyncio.gather(*(release(hall.window(*key), ticket, status)
                                   for key, (ticket, status) in (await held()).items()))
        holding = await held()
        conn = await asyncpg.connect(asyncpg_dsn(db_url))
        try:
            lines = {r["center_id"]: r["n"] for r in await conn.fetch(
                "SELECT center_id, count(*) AS n FROM tickets WHERE center_id = ANY($1::varchar[]) "
                "AND business_date = $2 AND status = 'waiting' GROUP BY center_id", hall.http_centres, day)}
        finally:
            await conn.close()
        work = []
        for centre in hall.http_centres:
            extra = lines.get(centre, 0) - backlog
            work += [post(f"/centers/{centre}/tickets", hall.kiosks[centre], {"service_code": SERVICE})
                     for _ in range(-extra)]
            free = [w for w in hall.windows[centre] if (w.centre, w.number) not in holding]
            work += [serve(w, len(range(i, extra, len(free)))) for i, w in enumerate(free[:max(0, extra)])]
        await asyncio.gather(*work)
    phases: Phases = {}
    for i, w in enumerate(lanes):
        ticket, status = holding.get((w.centre, w.number), (0, ""))
        first = {"called": "start", "serving": "finish"}.get(status, "issue" if i % 2 else "call")
        phases[(w.centre, w.number)] = (first, str(ticket) if ticket else "")
    return phases


# --- is the pgbench script still what the service sends? ----------------------------------------------------

SECTION = re.compile(r"^-- endpoint: (\S+)", re.MULTILINE)
LOGGED = re.compile(r"\] queue: LOG:  (?:statement|execute [^:]+): ")


def script_statements() -> dict[str, int]:
    """Statements per endpoint section of the pgbench script (each ends in ";" or "\\gset")."""
    text = SQL_SCRIPT.read_text()
    marks = list(SECTION.finditer(text))
    counts = {}
    for i, mark in enumerate(marks):
        body = text[mark.end(): marks[i + 1].start() if i + 1 < len(marks) else len(text)]
        lines = [ln.strip() for ln in body.splitlines()]
        counts[mark.group(1)] = sum(1 for ln in lines if ln and not ln.startswith("--")
                                    and (ln.endswith(";") or "\\gset" in ln))
    return counts


def log_since(log: Path, offset: int) -> str:
    with open(log, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


async def service_statements(pg: EmbeddedPostgres, db_url: str, url: str, window: Window,
                             kiosk: str, show: bool = False) -> tuple[dict[str, int], dict[str, str]]:
    """Two cycles of the four endpoints with every statement logged: the fewest statements each endpoint sent
    (a request that reloads the calendar copy after a NOTIFY sends a few more, once), and the JSON of the
    events they wrote (the envelopes pgbench inserts)."""
    log = pg.data_dir / "server.log"
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    counts: dict[str, int] = {}
    try:
        for name, value in (("log_statement", "'all'"), ("log_line_prefix", "'%m [%p] %a: '")):
            await conn.execute(f"ALTER SYSTEM SET {name} = {value}")
        await conn.execute("SELECT pg_reload_conf()")
        await asyncio.sleep(0.5)
        clerk = {"Authorization": f"Bearer {window.clerk}"}
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            for _ in range(2):
                ticket = 0
                for name in ("issue", "call-next", "start", "finish"):
                    path, headers, body = {
                        "issue": (f"/centers/{window.centre}/tickets", {"Authorization": f"Bearer {kiosk}"},
                                  {"service_code": SERVICE}),
                        "call-next": (f"/centers/{window.centre}/windows/{window.number}/call-next", clerk, None),
                    }.get(name, (f"/tickets/{ticket}/{name}", clerk, None))
                    mark = log.stat().st_size
                    r = await http.post(path, json=body, headers=headers)
                    if r.status_code not in (200, 201):
                        raise RuntimeError(f"statement probe: {name} -> {r.status_code} {r.text}")
                    if name == "call-next":
                        ticket = r.json()["id"]
                    await asyncio.sleep(0.3)  # the server writes its log as it goes: let the last lines land
                    logged = log_since(log, mark)
                    sent = len(LOGGED.findall(logged))
                    counts[name] = min(counts.get(name, sent), sent)
                    if show:  # --show-statements: what the pgbench script is written from
                        print(f"-- endpoint: {name} ({sent} statements)\n{logged}")
        envelopes = {row["type"]: row["envelope"] for row in await conn.fetch(
            "SELECT DISTINCT ON (type) type, envelope::text AS envelope FROM outbox WHERE key = $1 "
            "ORDER BY type, sequence DESC", window.centre)}
    finally:
        await conn.execute("ALTER SYSTEM RESET log_statement")
        await conn.execute("ALTER SYSTEM RESET log_line_prefix")
        await conn.execute("SELECT pg_reload_conf()")
        await conn.close()
    return counts, envelopes


# --- runs and their CPU ---------------------------------------------------------------------------------------

Watched = dict[str, Callable[[], float]]


def postgres_cpu_seconds(postmaster: int) -> float:
    """CPU time of the postmaster, its live backends, and the backends that have exited (their time is in the
    postmaster's cutime/cstime once it has reaped them): pgbench's backends end with pgbench."""
    try:
        fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return gb.family_cpu_seconds(postmaster) + (int(fields[13]) + int(fields[14])) / gb.TICKS


@dataclass
class Run:
    side: str  # "pgbench" or "http"
    round: int
    requests: int  # pgbench: transactions (four per cycle), the requests they stand for
    seconds: float
    counts: dict[str, int]  # per step
    p50_ms: float | None  # pgbench: the mean transaction
    p99_ms: float | None
    failures: dict[str, int]  # non-2xx, socket errors; pgbench: failed or aborted
    cpu: dict[str, float]
    sessions: str = ""  # Sessions.describe() of the database connections doing the work
    slow: int = 0  # wrk's "timeouts": requests it saw pending for over 5 s (it goes on waiting for them)
    refused: dict[str, int] = field(default_factory=dict)  # "step:status" -> answers, of the non-2xx ones

    @property
    def errors(self) -> int:
        return sum(self.failures.values())

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def busy(self) -> bool:
        return self.cpu.get("others", 0) > gb.BUSY_OTHERS


class Sessions:
    """What the database connections of one application (the service's pool, or pgbench's clients) are doing,
    sampled from pg_stat_activity every 50 ms while a run lasts: in a transaction or not, and within one,
    waiting for a lock (on which kind), running a statement, or idle in it (the client's turn)."""

    def __init__(self, db_url: str, application: str) -> None:
        self.dsn, self.application = asyncpg_dsn(db_url), application
        self.samples: list[collections.Counter[str]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Sessions:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._sample()), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    async def _sample(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while not self._stop.is_set():
                rows = await conn.fetch(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity WHERE application_name = $1",
                    self.application)
                counts = collections.Counter[str](connections=len(rows))
                for r in rows:
                    if r["state"] == "idle":
                        continue
                    counts["in a transaction"] += 1
                    if r["wait_event_type"] == "Lock":
                        counts[f"lock: {r['wait_event']}"] += 1
                    elif r["state"] == "active":
                        counts["running a statement"] += 1
                    else:
                        counts["idle in transaction"] += 1
                self.samples.append(counts)
                await asyncio.sleep(0.05)
        finally:
            await conn.close()

    def means(self) -> dict[str, float]:
        keys = sorted({k for c in self.samples for k in c},
                      key=lambda k: (k != "connections", k != "in a transaction", k))
        return {k: statistics.fmean(c.get(k, 0) for c in self.samples) for k in keys} if self.samples else {}

    def describe(self) -> str:
        return ", ".join(f"{name} {value:.1f}" for name, value in self.means().items())


def timed(args: list[str], timeout: float, watched: Watched) -> tuple[subprocess.CompletedProcess[str],
                                                                          dict[str, float]]:
    """Run a load client to its end; its output, and the CPU (share of one core) of it ("client"), of each
    watched process, and of the rest of the machine ("others")."""
    before = {name: f() for name, f in watched.items()}
    machine_before, children_before = gb.machine_cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
    own_before, started = process_time(), perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    wall = perf_counter() - started
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {name: (f() - before[name]) / wall for name, f in watched.items()}
    cpu["client"] = (children_after.ru_utime + children_after.ru_stime
                     - children_before.ru_utime - children_before.ru_stime) / wall
    own = (process_time() - own_before) / wall
    cpu["others"] = max(0.0, (gb.machine_cpu_seconds() - machine_before) / wall - sum(cpu.values()) - own)
    return result, cpu


WRK_LUA = """
-- queue_bench: one thread per connection, each one window terminal and a kiosk beside it, looping
-- issue -> call-next -> start -> finish. The lanes table (centre, window, clerk token, kiosk token, first
-- step, ticket held) is written above by queue_bench.py, in thread order.
local threads, taken = {}, 0

function setup(thread)
  taken = taken + 1
  local lane = lanes[taken]
  thread:set("centre", lane[1])
  thread:set("window_no", lane[2])
  thread:set("clerk", lane[3])
  thread:set("kiosk", lane[4])
  thread:set("first", lane[5])  -- where its window stands in the cycle: issue, call, start or finish
  thread:set("held", lane[6])  -- the ticket it holds when it begins with start or finish
  table.insert(threads, thread)
end

function init(args)
  counts = {issue = 0, call = 0, start = 0, finish = 0, empty = 0, bad = 0}
  refused = {}  -- "step status" -> how many
  state, ticket = first, held ~= "" and held or nil
  local base = "/api/queue/centers/" .. centre
  issue_request = wrk.format("POST", base .. "/tickets",
    {["Authorization"] = kiosk, ["Content-Type"] = "application/json"}, '{"service_code":"HJ"}')
  call_request = wrk.format("POST", base .. "/windows/" .. window_no .. "/call-next",
    {["Authorization"] = clerk, ["Content-Length"] = "0"})
end

function request()
  if state == "issue" then return issue_request end
  if state == "call" then return call_request end
  return wrk.format("POST", "/api/queue/tickets/" .. ticket .. "/" .. state,
    {["Authorization"] = clerk, ["Content-Length"] = "0"})
end

-- a refusal is counted (wrk counts it too) and the loop goes on from where the window stands
function response(status, headers, body)
  if status >= 300 then
    local key = state .. ":" .. status
    refused[key] = (refused[key] or 0) + 1
  end
  if state == "issue" then
    if status == 201 then counts.issue = counts.issue + 1 else counts.bad = counts.bad + 1 end
    state = "call"
  elseif state == "call" then
    if status == 200 then
      counts.call = counts.call + 1
      ticket, state = body:match('"id":(%d+)'), "start"
    elseif status == 204 then
      counts.empty = counts.empty + 1
      state = "issue"
    else
      counts.bad = counts.bad + 1
      ticket = body:match('"ticket_id":(%d+)')  -- 409: the ticket the window still holds
      state = ticket and "start" or "issue"
    end
  elseif state == "start" then
    if status == 200 then counts.start = counts.start + 1 else counts.bad = counts.bad + 1 end
    state = "finish"
  else
    if status == 200 then counts.finish = counts.finish + 1 else counts.bad = counts.bad + 1 end
    state = "issue"
  end
end

function done(summary, latency, requests)
  local t, r = {issue = 0, call = 0, start = 0, finish = 0, empty = 0, bad = 0}, {}
  for _, thread in ipairs(threads) do
    for k, v in pairs(thread:get("counts")) do t[k] = t[k] + v end
    for k, v in pairs(thread:get("refused")) do r[k] = (r[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(r) do table.insert(parts, k .. "=" .. v) end
  io.write("wrk-refused " .. table.concat(parts, " ") .. "\\n")
  local e = summary.errors
  io.write(string.format(
    "wrk-result requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d"
    .. " p99_us=%d issue=%d call=%d start=%d finish=%d empty=%d bad=%d\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), t.issue, t.call, t.start, t.finish, t.empty, t.bad))
end
"""


def lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_wrk_script(path: Path, hall: Hall, phases: Phases) -> None:
    rows = [f"  {{{lua_string(w.centre)}, {lua_string(w.number)}, {lua_string('Bearer ' + w.clerk)}, "
            f"{lua_string('Bearer ' + hall.kiosks[w.centre])}, {lua_string(phases[(w.centre, w.number)][0])}, "
            f"{lua_string(phases[(w.centre, w.number)][1])}}}," for w in hall.lanes()]
    path.write_text("lanes = {\n" + "\n".join(rows) + "\n}\n" + WRK_LUA)


@dataclass
class Load:
    """The load clients and what they need: wrk's script and URL, pgbench's command."""

    wrk: str
    wrk_script: Path
    url: str  # Envoy
    connections: int
    pgbench: list[str]  # without -T
    db_url: str

    def http(self, seconds: float, watched: Watched, side: str = "http", n: int = 0) -> Run:
        args = [self.wrk, "-t", str(self.connections), "-c", str(self.connections), "-d",
                f"{max(1, round(seconds))}s", "--timeout", "5s", "-s", str(self.wrk_script), self.url]
        with Sessions(self.db_url, "queue") as sessions:
            result, cpu = timed(args, seconds + 60, watched)
        line = next((ln for ln in result.stdout.splitlines() if ln.startswith("wrk-result ")), None)
        if result.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout}{result.stderr}")
        f = {k: int(v) for k, v in (item.split("=") for item in line.split()[1:])}
        refused = next((ln.split()[1:] for ln in result.stdout.splitlines() if ln.startswith("wrk-refused")), [])
        # wrk counts a non-2xx answer in "status" (the Lua script's "bad" counts the same ones)
        # wrk's "timeout" is no failure: every 2 s it counts the requests pending for over --timeout, and waits on
        failures = {"non-2xx": f["status"], "socket": f["connect"] + f["read"] + f["write"]}
        return Run(side, n, f["requests"], f["duration_us"] / 1e6, {s: f[s] for s in (*STEPS, "empty")},
                   f["p50_us"] / 1000, f["p99_us"] / 1000, failures, cpu, sessions.describe(), f["timeout"],
                   dict((k, int(v)) for k, _, v in (item.partition("=") for item in refused)))

    def database(self, seconds: float, watched: Watched, n: int = 0) -> Run:
        with Sessions(self.db_url, "pgbench") as sessions:
            result, cpu = timed([*self.pgbench, "-T", str(max(1, round(seconds)))], seconds + 60, watched)
        out = result.stdout + result.stderr

        def figure(pattern: str) -> float | None:
            found = re.search(pattern, out)
            return float(found.group(1)) if found else None

        tps, cycles = figure(r"tps = ([\d.]+)"), figure(r"actually processed: (\d+)")
        if tps is None or cycles is None:
            raise RuntimeError(f"pgbench failed ({result.returncode}):\n{out}")
        failed = int(figure(r"number of failed transactions: (\d+)") or 0)
        aborted = 1 if result.returncode != 0 else 0
        if aborted:
            print(f"pgbench exited with {result.returncode}:\n{out[-1500:]}", file=sys.stderr)
        latency = figure(r"latency average = ([\d.]+) ms")
        done = int(cycles)
        return Run("pgbench", n, 4 * done, done / tps, dict.fromkeys(STEPS, done),
                   latency / 4 if latency is not None else None, None, {"failed": failed + aborted}, cpu,
                   sessions.describe())


CPU_COLUMNS = ("client", "service", "envoy", "postgres", "others")


def print_header() -> None:
    print(f"\n{'run':<9}{'round':>5}{'req/s':>9}{'issue/s':>9}{'call/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
          f"{'non-2xx':>8}{'socket':>7}{'>5 s':>6}   CPU % of one core: {' / '.join(CPU_COLUMNS)}", flush=True)


def print_run(run: Run, label: str | None = None) -> None:
    cpu = " / ".join(f"{run.cpu.get(n, 0) * 100:3.0f}" for n in CPU_COLUMNS)
    p50 = "-" if run.p50_ms is None else f"{'~' if run.side == 'pgbench' else ''}{run.p50_ms:.1f}"
    p99 = "-" if run.p99_ms is None else f"{run.p99_ms:.1f}"
    f = run.failures
    errors = (f"{f.get('failed', 0):>8}{'':>7}{'':>6}" if run.side == "pgbench"
              else f"{f['non-2xx']:>8}{f['socket']:>7}{run.slow:>6}")
    print(f"{label or run.side:<9}{run.round:>5}{run.rps:>9,.0f}{run.counts['issue'] / run.seconds:>9,.0f}"
          f"{run.counts['call'] / run.seconds:>8,.0f}{p50:>8}{p99:>8}{errors}   {cpu}{' !' if run.busy else ''}",
          flush=True)


# --- the open loop --------------------------------------------------------------------------------------------

class Http1:
    """Keep-alive HTTP/1.1 connections to one server, opened whenever none is free: an open loop never waits
    for a connection, so a slow answer delays nobody's send."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0

    async def warm(self, n: int) -> None:
        self.idle += await asyncio.gather(*(self._open() for _ in range(n)))

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.opened += 1
        return await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, token: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Length: {len(body)}\r\n" + ("Content-Type: application/json\r\n" if body else "") + "\r\n")
        reader, writer = self.idle.pop() if self.idle else await self._open()
        try:
            writer.write(head.encode() + body)
            status, answer, keep = await self._read(reader)
        except BaseException:
            writer.close()
            raise
        if keep:
            self.idle.append((reader, writer))
        else:
            writer.close()
        return status, answer

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        keep = headers.get("connection", "").lower() != "close"
        if status in (204, 304) or status < 200:
            return status, b"", keep
        if "content-length" in headers:
            return status, await reader.readexactly(int(headers["content-length"])), keep
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            await reader.readuntil(b"\r\n")
            return status, b"".join(chunks), keep
        return status, await reader.read(), False

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


@dataclass
class Lane:
    """A window terminal of the open loop and the step it takes next."""

    window: Window
    step: str = "call"
    ticket: int | None = None


@dataclass
class OpenLoop:
    rate: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    lateness: list[float] = field(default_factory=list)  # the send's start behind its schedule
    calls: dict[int, tuple[float, float]] = field(default_factory=dict)  # measured calls: (scheduled, answered)
    seen: dict[int, float] = field(default_factory=dict)  # ticket.called frames read by a display
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    empty: int = 0
    starved: int = 0  # sends that waited for a free window (there are many more windows than calls in flight)
    sent: int = 0
    seconds: float = 0.0


async def watch_display(url: str, centre: str, token: str, seen: dict[int, float], connected: asyncio.Event) -> None:
    """A hall display (综合屏) of `centre`: notes when each call's frame has been read."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as http, http.stream(
            "GET", f"{url}/api/queue/feeds/display", params={"center": centre},
            headers={"Authorization": f"Bearer {token}"}) as response:
        response.raise_for_status()
        connected.set()
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                at = perf_counter()
                envelope = json.loads(line[6:])
                if envelope["type"] == "ticket.called":
                    seen.setdefault(envelope["data"]["ticket"]["ticket_id"], at)


async def probe_display(client: Http1, hall: Hall, seen: dict[int, float], within: float = 45) -> float:
    """Until a call shows on its display (the relay has created the topic, the feed has found it); seconds."""
    started = perf_counter()
    window = hall.lanes()[0]
    while perf_counter() - started < within:
        await client.post(f"/api/queue/centers/{window.centre}/tickets", hall.kiosks[window.centre],
                          json.dumps({"service_code": SERVICE}).encode())
        status, body = await client.post(
            f"/api/queue/centers/{window.centre}/windows/{window.number}/call-next", window.clerk)
        if status != 200:
            raise RuntimeError(f"display probe: call-next -> {status} {body!r}")
        ticket = json.loads(body)["id"]
        for step in ("start", "finish"):
            await client.post(f"/api/queue/tickets/{ticket}/{step}", window.clerk)
        for _ in range(20):
            if ticket in seen:
                return perf_counter() - started
            await asyncio.sleep(0.1)
    raise RuntimeError(f"no call reached a display within {within:.0f} s (relay, broker or feed not running)")


async def run_open_loop(client: Http1, hall: Hall, rate: float, warmup: float, seconds: float,
                        seen: dict[int, float]) -> OpenLoop:
    """`rate` requests/s on a fixed schedule for warmup + seconds; the sends scheduled after the warm-up count."""
    loop = OpenLoop(rate, seen=seen)
    # a window in the middle of its cycle takes the next window send (its clerk starts and finishes at once, as
    # wrk's connections do); otherwise the window idle longest calls
    serving: collections.deque[Lane] = collections.deque()
    idle = collections.deque(Lane(w) for w in hall.lanes())
    freed = asyncio.Event()
    pending: set[asyncio.Task[None]] = set()
    issue_body = json.dumps({"service_code": SERVICE}).encode()

    def record(kind: str, scheduled: float, measured: bool, status: int, ok: tuple[int, ...]) -> float:
        answered = perf_counter()
        if measured:
            loop.latencies[kind].append(answered - scheduled)
        if status not in ok:
            loop.errors[f"{kind} {status}"] += 1
        return answered

    async def issue(centre: str, scheduled: float, measured: bool) -> None:
        try:
            status, _ = await client.post(f"/api/queue/centers/{centre}/tickets", hall.kiosks[centre], issue_body)
        except Exception as exc:
            loop.errors[f"issue {type(exc).__name__}"] += 1
            return
        record("issue", scheduled, measured, status, (201,))

    async def step(lane: Lane, scheduled: float, measured: bool) -> None:
        w = lane.window
        path = (f"/api/queue/centers/{w.centre}/windows/{w.number}/call-next" if lane.step == "call"
                else f"/api/queue/tickets/{lane.ticket}/{lane.step}")
        try:
            status, body = await client.post(path, w.clerk)
            answered = record(lane.step, scheduled, measured, status, (200, 204) if lane.step == "call" else (200,))
            if lane.step == "call" and status == 200:
                lane.ticket = json.loads(body)["id"]
                if measured:
                    loop.calls[lane.ticket] = (scheduled, answered)
            elif lane.step == "call" and status == 204:
                loop.empty += 1
            elif lane.step == "call" and status == 409 and b'"ticket_id"' in body:
                lane.ticket, status = json.loads(body)["ticket_id"], 200  # the ticket it still holds: serve it
        except Exception as exc:  # a lost connection: the window tries the same step again
            loop.errors[f"{lane.step} {type(exc).__name__}"] += 1
            status = 0
        if status == 200 or (lane.step != "call" and status):  # a refused start still leaves a finish to try
            lane.step = {"call": "start", "start": "finish", "finish": "call"}[lane.step]
        (idle if lane.step == "call" else serving).append(lane)
        freed.set()

    started = perf_counter() + 0.2
    measure_from, end = started + warmup, started + warmup + seconds
    n = 0
    while (scheduled := started + n / rate) < end:
        delay = scheduled - perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        measured = scheduled >= measure_from
        if n % 4 == 0:
            task = asyncio.create_task(issue(hall.http_centres[(n // 4) % len(hall.http_centres)], scheduled,
                                             measured))
        else:
            while not (serving or idle):
                loop.starved += 1
                freed.clear()
                await freed.wait()
            task = asyncio.create_task(step((serving or idle).popleft(), scheduled, measured))
        if measured:
            loop.lateness.append(perf_counter() - scheduled)
            loop.sent += 1
        pending.add(task)
        task.add_done_callback(pending.discard)
        n += 1
    await asyncio.gather(*pending)
    loop.seconds = seconds
    return loop


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ms(values: list[float]) -> str:
    if not values:
        return "(none)"
    return (f"p50 {percentile(values, 0.5) * 1000:6.1f}  p99 {percentile(values, 0.99) * 1000:6.1f}  "
            f"max {max(values) * 1000:6.1f} ms")


# --- py-spy ---------------------------------------------------------------------------------------------------

def py_spy() -> str | None:
    return os.environ.get("QUEUE_BENCH_PY_SPY") or shutil.which("py-spy")


PACKAGES = (("services/queue", "services.queue (the endpoints)"), ("shared/", "shared (platform)"),
            ("sqlalchemy", "sqlalchemy"), ("asyncpg", "asyncpg"), ("pydantic", "pydantic"),
            ("fastapi", "fastapi"), ("starlette", "starlette"), ("uvicorn", "uvicorn"), ("jwt", "pyjwt"),
            ("cryptography", "cryptography"), ("prometheus_client", "prometheus_client"),
            ("asyncio/runners.py", "event loop (uvloop's C code)"), ("asyncio", "asyncio"), ("json", "json"))
# (label, a substring of a frame "function (path:line)"): a sample counts once if any of its frames has it
FOCUS = (("SQLAlchemy (ORM, core, and the driver under it)", "(sqlalchemy/"), ("asyncpg", "(asyncpg/"),
         ("pydantic", "(pydantic"), ("FastAPI dependencies (token, session, centre)", "solve_dependencies ("),
         ("issue_ticket", "issue_ticket (services/queue/tickets.py"), ("  estimate", "estimate (services/queue/"),
         ("  next_number", "next_number (shared/counters.py"),
         ("call_next", "call_next (services/queue/tickets.py"), ("  choose_next", "choose_next ("),
         ("start", "start (services/queue/tickets.py"), ("finish", "finish (services/queue/tickets.py"),
         ("waiting_tickets (the whole line)", "waiting_tickets (services/queue/repository.py"),
         ("publish_waiting_counts", "publish_waiting_counts ("), ("outbox publish", "publish (shared/events/outbox"),
         ("commit (the request's unit of work)", "commit (sqlalchemy/ext/asyncio/session.py"),
         ("response serialization", "serialize_response ("))


GREENLET_NOTE = ("SQLAlchemy's asyncio layer runs the ORM's work in a greenlet, whose stack does not show the "
                 "endpoint that asked, so an endpoint's share is its own code, SQLAlchemy's the rest")


def summarize_profile(raw: Path, top: int = 10, packages: tuple[tuple[str, str], ...] = PACKAGES,
                      focus: tuple[tuple[str, str], ...] = FOCUS, note: str = GREENLET_NOTE) -> list[str]:
    """py-spy's collapsed stacks: where the samples' innermost frames are (by package and function), and the
    share of samples inside the layers and functions that matter here (`focus`); cases_bench passes its own."""
    def package_of(frame: str) -> str:
        where = frame.rsplit("(", 1)[-1]
        return next((label for marker, label in packages if marker in where), "other")

    leaf_packages: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    inside: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n, frames = int(count), stack.split(";")
        total += n
        leaf_packages[package_of(frames[-1])] += n
        leaves[frames[-1].split(" (", 1)[0] + " [" + package_of(frames[-1]) + "]"] += n
        for label, marker in focus:
            if any(marker in f for f in frames):
                inside[label] += n
    if not total:
        return ["  (no samples)"]
    out = [f"  {total} samples of the busy service (idle time left out)",
           f"  inside (inclusive: the sample's stack has it; {note}):"]
    out += [f"    {label:<52}{inside[label] / total:6.1%}" for label, _ in focus]
    out.append("  innermost frame, by package:")
    out += [f"    {label:<52}{n / total:6.1%}" for label, n in leaf_packages.most_common()]
    out.append("  innermost frame, top functions:")
    out += [f"    {name[:70]:<72}{n / total:6.1%}" for name, n in leaves.most_common(top)]
    return out


def profile(stage: Callable[[], None], run_wrk: Callable[[], Run], service: gb.Server, work: Path,
            seconds: float) -> Run | None:
    """One more wrk run with py-spy sampling the service; prints the summary."""
    spy = py_spy()
    if spy is None:
        print("\nprofile: py-spy not found (not a project dependency): install it outside the project, e.g. "
              "`uv tool install py-spy`, or point QUEUE_BENCH_PY_SPY at one, and rerun")
        return None
    raw = work / "profile.txt"
    stage()
    sampler = subprocess.Popen([spy, "record", "--nonblocking", "--format", "raw", "--rate", "200", "-d",
                                str(max(1, round(seconds))), "-o", str(raw), "-p", str(service.process.pid)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sleep(0.5)
    run = run_wrk()
    _, err = sampler.communicate(timeout=60)
    print(f"\nprofile (py-spy record --nonblocking, 200 Hz, the service's process, during the wrk run "
          f"'profiled' above: {run.rps:,.0f} requests/s):")
    if not raw.exists():
        print(f"  py-spy wrote nothing: {err.strip()[-500:]}")
        return run
    for line in summarize_profile(raw):
        print(line)
    return run


# --- the whole -------------------------------------------------------------------------------------------------

class Worker:
    """The queue worker, `python -m services.queue.worker` (its outbox relay is what matters here)."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.work, self.env = work, env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        with open(self.work / "worker.log", "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.queue.worker"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**self.env, "WORKER_HEALTH_HOST": gb.HOST, "WORKER_HEALTH_PORT": str(gb.free_port())})
        return self.process.pid

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def exited(self) -> int | None:
        return self.process.poll() if self.process is not None else None


async def relay_caught_up(db_url: str, within: float = 30) -> None:
    """Until the relay has recorded the broker's cluster id (so a later start does not re-send every retained
    event: the throughput phase's are marked sent, never to be relayed) and sent every outbox row."""
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        deadline = perf_counter() + within
        while perf_counter() < deadline:
            recorded = await conn.fetchval("SELECT count(*) FROM platform_state WHERE key = $1", CLUSTER_STATE_KEY)
            unsent = await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            if recorded and not unsent:
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"the queue worker's relay did not catch up within {within:.0f} s")
    finally:
        await conn.close()


async def outbox_mark_sent(db_url: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        status = await conn.execute("UPDATE outbox SET sent_at = now() WHERE sent_at IS NULL")
        # that update, and the throughput phase's 10^4 tickets, leave work for autovacuum and stale statistics:
        # done now, so that the open loop measures the hall, not the aftermath of the bench's own bulk update
        await conn.execute("VACUUM (ANALYZE) outbox, tickets, daily_counters, windows")
        return int(status.split()[-1])
    finally:
        await conn.close()


async def line_lengths(db_url: str, centres: list[str], day: date) -> tuple[int, int]:
    """The shortest and longest waiting line among `centres` now."""
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        rows = await conn.fetch("SELECT center_id, count(*) AS n FROM tickets WHERE center_id = ANY($1::varchar[]) "
                                "AND business_date = $2 AND status = 'waiting' GROUP BY center_id", centres, day)
    finally:
        await conn.close()
    counts = [next((r["n"] for r in rows if r["center_id"] == c), 0) for c in centres]
    return min(counts), max(counts)


async def open_loop_phase(envoy_url: str, hall: Hall, rate: float, options: Options) -> tuple[OpenLoop, float]:
    host, port = envoy_url.removeprefix("http://").split(":")
    client = Http1(host, int(port))
    seen: dict[int, float] = {}
    displays = []
    try:
        for centre in hall.http_centres:
            connected = asyncio.Event()
            token = hall.token("display", f"display-{centre}", [centre], device=f"display-{centre}")
            displays.append(asyncio.create_task(watch_display(envoy_url, centre, token, seen, connected)))
            await asyncio.wait_for(connected.wait(), 15)
        await client.warm(32)
        ready_after = await probe_display(client, hall, seen)
        loop = await run_open_loop(client, hall, rate, options.open_warmup, options.open_seconds, seen)
        for _ in range(50):  # the last calls' frames are on their way
            if all(t in seen for t in loop.calls):
                break
            await asyncio.sleep(0.1)
        return loop, ready_after
    finally:
        client.close()
        for task in displays:
            task.cancel()
        await asyncio.gather(*displays, return_exceptions=True)


def report_open_loop(loop: OpenLoop, ready_after: float, cpu: dict[str, float]) -> tuple[float, float, int]:
    every = [v for values in loop.latencies.values() for v in values]
    feed = [loop.seen[t] - scheduled for t, (scheduled, _) in loop.calls.items() if t in loop.seen]
    after_answer = [loop.seen[t] - answered for t, (_, answered) in loop.calls.items() if t in loop.seen]
    missing = sum(1 for t in loop.calls if t not in loop.seen)
    p99 = percentile(every, 0.99) * 1000 if every else float("inf")
    feed_p99 = percentile(feed, 0.99) * 1000 if feed else float("inf")
    print(f"\nopen loop: {loop.rate:,.0f} requests/s offered for {loop.seconds:g} s (after warm-up), "
          f"{loop.sent} sent, {len(every)} answered; errors {sum(loop.errors.values())}"
          f"{' (' + ', '.join(f'{k}: {v}' for k, v in loop.errors.items()) + ')' if loop.errors else ''}; "
          f"empty calls {loop.empty}; "
          f"display live {ready_after:.1f} s after the relay started")
    print(f"  send lateness (client's own): {ms(loop.lateness)}; sends that waited for a free window: {loop.starved}")
    print(f"  latency from the scheduled send, all requests:  {ms(every)}   "
          f"p99/target {p99 / TARGET_P99_MS:.2f}  {gb.verdict(p99 <= TARGET_P99_MS)}")
    for kind in STEPS:
        print(f"    {kind:<8}{len(loop.latencies[kind]):>6}  {ms(loop.latencies[kind])}")
    print(f"  call-next -> display feed client, from the call's scheduled send: {ms(feed)}   "
          f"p99/target {feed_p99 / TARGET_FEED_P99_MS:.2f}  {gb.verdict(feed_p99 <= TARGET_FEED_P99_MS)}")
    print(f"    from the call's answer: {ms(after_answer)}; {len(feed)}/{len(loop.calls)} calls read by their "
          f"display, {missing} missing")
    print("  CPU % of one core: " + ", ".join(f"{name} {share * 100:.0f}" for name, share in cpu.items()))
    return p99, feed_p99, missing


def service_errors(log: Path) -> collections.Counter[str]:
    """The failed requests in the service's log (JSON, one entry a line), by message and exception. A failure
    is logged by the app's error handler and again by uvicorn ("Exception in ASGI application"): the larger of
    the two counts is the number of failed requests."""
    found: dict[bool, collections.Counter[str]] = {False: collections.Counter(), True: collections.Counter()}
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("level") in ("ERROR", "CRITICAL"):
                detail = str(entry.get("exc") or "").strip().splitlines()
                text = f"{str(entry.get('msg')).strip()}{': ' + detail[-1] if detail else ''}"[:300]
                found[str(entry.get("logger", "")).startswith("uvicorn")][text] += 1
    return max(found.values(), key=lambda c: sum(c.values()))


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    began = perf_counter()
    with tempfile.TemporaryDirectory(prefix="queue-bench-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        wrk = gb.ensure_wrk()
        pg = EmbeddedPostgres(work / "pg", gb.free_port(), fast_unsafe=True)
        stack.callback(pg.destroy)
        pg.start()
        kafka = EmbeddedKafka(gb.free_port(), work / "kafka.log")
        stack.callback(kafka.stop, True)
        kafka.start()
        db_url = pg.url("bench_queue")
        asyncio.run(ensure_database(db_url))
        upgrade("queue", db_url)
        postmaster = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
        secrets = gb.devsecrets.generate()
        env = {**gb.base_env(), **secrets, "QUEUE_DATABASE_URL": db_url, "QUEUE_MIGRATE_ON_START": "false",
               "HALL_KAFKA_BOOTSTRAP": kafka.bootstrap, "HALL_LOG_LEVEL": "WARNING"}
        service = gb.spawn("queue", "services.queue.main:create_app", ROOT, work, env)
        stack.callback(gb.stop, service)
        gb.wait_ready(service, "/healthz")
        envoy = gb.start_envoy(stack, work, {"queue": service.port}, service.port, secrets["HALL_JWT_PUBLIC_KEY"])
        # the relay meets the broker once now, while the hall is built, and stops before the throughput phase
        worker = Worker(work, env)
        stack.callback(worker.stop)
        worker.start()

        today = clock.today_local()
        hall = Hall(secrets["GATEWAY_JWT_PRIVATE_KEY"],
                    [str(HTTP_CENTRE_BASE + i) for i in range(1, options.centres + 1)],
                    [str(PGBENCH_CENTRE_BASE + i) for i in range(1, options.centres + 1)])
        setup_started = perf_counter()
        asyncio.run(build_hall(service.url, hall, options.windows, options.backlog, today))
        setup_s = perf_counter() - setup_started
        probe_window = hall.lanes()[0]
        sent, envelopes = asyncio.run(service_statements(pg, db_url, service.url, probe_window,
                                                         hall.kiosks[probe_window.centre], options.show_statements))
        if options.show_statements:
            return 0
        scripted = script_statements()
        wanted = ("ticket.issued", "queue.waiting_counts", "ticket.called", "ticket.started", "ticket.finished")
        if missing_types := [t for t in wanted if t not in envelopes]:
            raise RuntimeError(f"the probe cycle wrote no {missing_types} event")

        asyncio.run(relay_caught_up(db_url))
        worker.stop()
        pgbench_bin = pg.bin / "pgbench" if (pg.bin / "pgbench").exists() else shutil.which("pgbench")
        if pgbench_bin is None:
            raise SystemExit("pgbench not found (neither in the PostgreSQL wheel nor on PATH)")
        pgbench = [str(pgbench_bin), "-h", gb.HOST, "-p", str(pg.port), "-U", "postgres", "-n", "-M", "prepared",
                   "-c", str(options.pgbench_clients), "-j", str(options.pgbench_threads), "-f", str(SQL_SCRIPT),
                   "-D", f"day={today}", "-D", f"centres={options.centres}", "-D", f"base={PGBENCH_CENTRE_BASE}",
                   "-D", f"env_issued={envelopes['ticket.issued']}",
                   "-D", f"env_waiting={envelopes['queue.waiting_counts']}",
                   "-D", f"env_called={envelopes['ticket.called']}",
                   "-D", f"env_started={envelopes['ticket.started']}",
                   "-D", f"env_finished={envelopes['ticket.finished']}", "bench_queue"]
        load = Load(wrk, work / "queue.lua", envoy.url, options.connections, pgbench, db_url)
        staged = ["first"]

        def stage() -> None:
            phases = asyncio.run(stage_hall(service.url, db_url, hall, options.backlog, today, mode=staged[0]))
            staged[0] = "again"
            write_wrk_script(load.wrk_script, hall, phases)

        def stage_quietly() -> None:
            stage()
            gb.wait_quiet(watched, options.quiet_wait)

        def staged_http(seconds: float, side: str, n: int = 0) -> Run:
            stage_quietly()
            return load.http(seconds, watched, side, n)

        assert envoy.process is not None
        envoy_pid = envoy.process.pid
        watched: Watched = {"service": lambda: gb.proc_cpu_seconds(service.process.pid),
                            "envoy": lambda: gb.proc_cpu_seconds(envoy_pid),
                            "postgres": lambda: postgres_cpu_seconds(postmaster)}

        loop_http = " + ".join(o.split("=")[1] for o in gb.server_options() if "=" in o) or "asyncio + h11"
        defaults = QueueSettings.model_fields
        pool = (os.environ.get("QUEUE_DB_POOL_SIZE", str(defaults["db_pool_size"].default)),
                os.environ.get("QUEUE_DB_MAX_OVERFLOW", str(defaults["db_max_overflow"].default)))
        print(f"queue benchmark: issue-ticket and call-next 1:1 (each call with its start and finish) through Envoy "
              f"{gb.envoy_version()} (1 worker thread); the queue service: one uvicorn process ({loop_http}), "
              f"pool {pool[0]}+{pool[1]}; PostgreSQL 18 (fsync off); {os.cpu_count()} CPUs shared by all")
        print(f"hall: {options.centres} centres x {options.windows} windows (clerks signed in), one service, "
              f"{options.backlog} tickets waiting per centre at the start; pgbench on {options.centres} centres of "
              f"its own, the same shape; set up in {setup_s:.1f} s")
        print(f"load: wrk {gb.wrk_version(wrk)}, {options.connections} connections (one thread each: one window and "
              f"a kiosk), {options.seconds:g} s per run after {options.warmup:g} s of warm-up; pgbench "
              f"{options.pgbench_clients} clients, {options.pgbench_threads} threads, -M prepared, "
              f"{SQL_SCRIPT.name}; {options.rounds} rounds alternating pgbench / wrk")
        drift = {name: (sent.get(name), n) for name, n in scripted.items() if sent.get(name) != n}
        print("statements per request, the service's (logged) / the pgbench script's: "
              + ", ".join(f"{name} {sent.get(name)}/{n}" for name, n in scripted.items())
              + ("" if not drift else "   ! the script is out of date for " + ", ".join(drift)))
        started_day = clock.today_local()

        print_header()
        rounds: list[tuple[Run, Run]] = []
        failures = seen_non_2xx = 0
        for n in range(1, options.rounds + 1):
            gb.wait_quiet(watched, options.quiet_wait)
            database = load.database(options.seconds, watched, n)
            print_run(database)
            if options.warmup > 0:
                warm = staged_http(options.warmup, "warm-up", n)
                failures += warm.errors
                seen_non_2xx += warm.failures["non-2xx"]
            http = staged_http(options.seconds, "http", n)
            seen_non_2xx += http.failures["non-2xx"]
            print_run(http, "wrk")
            lines_after = asyncio.run(line_lengths(db_url, hall.http_centres, today))
            failures += database.errors + http.errors
            rounds.append((database, http))

        quiet = [(d, h) for d, h in rounds if not (d.busy or h.busy)]
        used = quiet or rounds
        http_rps = median([h.rps for _, h in used])
        db_rps = median([d.rps for d, _ in used])
        ratio = median([h.rps / d.rps for d, h in used])
        http_errors = sum(h.errors for _, h in rounds)
        kinds, refused = collections.Counter[str](), collections.Counter[str]()
        for _, h in rounds:
            kinds.update(h.failures)
            refused.update(h.refused)
        error_text = f"errors {http_errors}" + (f" ({', '.join(f'{k} {v}' for k, v in kinds.items() if v)})"
                                                if http_errors else "")
        if refused:
            error_text += f" [{', '.join(f'{k} x{v}' for k, v in sorted(refused.items()))}]"
        if slow := sum(h.slow for _, h in rounds):
            error_text += f"; seen pending over 5 s: {slow}"
        print(f"\nthroughput, medians over {'the quiet' if quiet else 'all'} rounds ({len(used)} of {len(rounds)}):")
        steps = " + ".join(f"{s} {median([h.counts[s] / h.seconds for _, h in used]):,.0f}" for s in STEPS)
        print(f"  HTTP through Envoy, {options.connections} connections: {http_rps:,.0f} requests/s ({steps}); "
              f"p99 {median([h.p99_ms or 0 for _, h in used]):.0f} ms (closed loop); {error_text}; "
              f"empty calls {sum(h.counts['empty'] for _, h in rounds)}")
        print(f"  pgbench, the same statements, {options.pgbench_clients} clients: {db_rps:,.0f} transactions/s "
              f"({db_rps / 4:,.0f} cycles/s: issue-ticket and call-next {db_rps / 2:,.0f}/s)")
        print(f"  HTTP / pgbench: {ratio:.2f} (per round {', '.join(f'{h.rps / d.rps:.2f}' for d, h in rounds)})   "
              f"target >= {TARGET_RATIO:.2f} and 0 errors: "
              f"{gb.verdict(ratio >= TARGET_RATIO and http_errors == 0)}")
        print(f"  waiting line per centre at the end of the last run: {lines_after[0]}-{lines_after[1]} (brought back "
              f"to {options.backlog} between runs)")
        print("  database connections, mean over the last round's run (sampled every 50 ms):")
        print(f"    the service's pool ({pool[0]}+{pool[1]}): {rounds[-1][1].sessions}")
        print(f"    pgbench's {options.pgbench_clients} clients: {rounds[-1][0].sessions}")
        if not quiet:
            print(f"  ! no quiet round: other processes used over {gb.BUSY_OTHERS:.0%} of a core during every round")

        if options.profile or ratio < TARGET_RATIO:
            profiled = profile(stage_quietly, lambda: load.http(options.seconds, watched, "profiled"), service, work,
                               options.seconds)
            if profiled is not None:
                print_run(profiled, "profiled")
                failures += profiled.errors
                seen_non_2xx += profiled.failures["non-2xx"]
        asyncio.run(stage_hall(service.url, db_url, hall, options.backlog, today, mode="free"))

        # latency: the relay and the displays join; the throughput phase's events were never for a display
        marked = asyncio.run(outbox_mark_sent(db_url))
        worker_pid = worker.start()
        rate = http_rps / 2
        assert kafka.process is not None
        kafka_pid = kafka.process.pid
        open_watched: Watched = {**watched, "worker": lambda: gb.proc_cpu_seconds(worker_pid),
                                 "broker": lambda: gb.proc_cpu_seconds(kafka_pid)}
        gb.wait_quiet(open_watched, options.quiet_wait)
        before = {name: f() for name, f in open_watched.items()}
        machine_before, own_before, wall_before = gb.machine_cpu_seconds(), process_time(), perf_counter()
        with contextlib.suppress(ImportError):
            import uvloop  # the client's own cost stays small: it shares the CPUs with all it measures

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        loop, ready_after = asyncio.run(open_loop_phase(envoy.url, hall, rate, options))
        wall = perf_counter() - wall_before
        cpu = {name: (f() - before[name]) / wall for name, f in open_watched.items()}
        cpu["bench client"] = (process_time() - own_before) / wall
        cpu["others"] = max(0.0, (gb.machine_cpu_seconds() - machine_before) / wall - sum(cpu.values()))
        print(f"\n(before the open loop: {marked:,} outbox rows of the throughput phase marked sent; the queue worker "
              f"started)", end="")
        p99, feed_p99, missing = report_open_loop(loop, ready_after, cpu)
        if worker.exited() is not None:
            print(f"! the queue worker exited with {worker.exited()}", file=sys.stderr)
            failures += 1
        failures += sum(loop.errors.values()) + missing
        seen_non_2xx += sum(n for kind, n in loop.errors.items() if kind.split()[-1].isdigit())

        print(f"\nsummary: throughput {http_rps:,.0f} requests/s = {ratio:.2f} of pgbench's {db_rps:,.0f} "
              f"(target >= {TARGET_RATIO}) {gb.verdict(ratio >= TARGET_RATIO and http_errors == 0)}; "
              f"open loop at {rate:,.0f}/s p99 {p99:.0f} ms (<= {TARGET_P99_MS:.0f}) "
              f"{gb.verdict(p99 <= TARGET_P99_MS)}; "
              f"call-next -> display p99 {feed_p99:.0f} ms (<= {TARGET_FEED_P99_MS:.0f}) "
              f"{gb.verdict(feed_p99 <= TARGET_FEED_P99_MS)}; a MISS is reported, not failed")
        if clock.today_local() != started_day:
            print("! the run crossed local midnight: the business day changed under it (new lines, numbers from 1)")
        if problems := service_errors(service.log):
            # a request wrk left in flight at the end of a run can fail in the service unseen by any client: count
            # the failures beyond the non-2xx answers the clients saw (those are counted already)
            logged = sum(problems.values())
            failures += max(0, logged - seen_non_2xx)
            print(f"! the service logged {logged} failed requests ({seen_non_2xx} non-2xx answers reached wrk): "
                  + "; ".join(f"{text} (x{n})" for text, n in problems.most_common(5)))
        print(f"{perf_counter() - began:.0f} s in all")
        if failures:
            print(f"FAILED: {failures} errors (non-2xx answers, connection errors, pgbench failures, calls that "
                  f"never reached a display, errors in the service's log; warm-ups included)", file=sys.stderr)
            return 1
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
