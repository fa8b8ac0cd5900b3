"""Benchmark of case registration (办件登记) through the gateway against the database's limit on the same SQL,
open-loop latency, and the re-keying of open cases' clocks after a calendar change (issue 21, "Benchmark").

Targets: POST /api/cases/cases through Envoy at 50 concurrent clients >= 500 requests/s and >= 0.5 x what
pgbench reaches running the same statements against the same database in the same run, with zero errors; at a
constant offered rate of half that throughput, p99 <= 100 ms. The re-key of 100,000 open cases after a calendar
change has no target: its seconds and rows per second are printed.

The hall. 4 centres (320101-320104) with a department, one item (promised 5, legal 20 working days, early
warning 1 day) and the clerks: 50 clients spread over the centres, one clerk each (staff rows, so the handler's
name comes from the read copy), the token a sign-in at a window gives (role clerk, the centre, the department,
the window). Each registration takes the next number of its centre's daily counter row (a row lock held to
the commit: that is what makes the numbers gap-free), so with 4 centres 12-13 clients share each row: a hall
where one centre's whole floor registers at once would queue on a single row. wrk (2 threads, 25 connections
each, keep-alive) sends each request as the next of the 50 clerks in turn; the answer must be 201.

If the next year has neither the package's official schedule nor an import (the autumn before the State
Council publishes it), it is imported first (Monday-Friday, 1 January a holiday), as a centre does: otherwise
a case whose legal limit runs into it would count on the Monday-Friday fallback and every registration would
also write the "calendar missing" alert row.

The database limit. pgbench (the PostgreSQL 18 wheel's) runs bench/cases_pgbench.sql: the statements the
route sends, in its order, one transaction per request, as read from PostgreSQL's log; its header says what
differs and why. At start-up the service answers POST /cases three times with log_statement=all, and the fewest
statements a request sent are compared with the script's (a mismatch is printed: the script is then out of
date); --show-statements prints them and stops. The values the script inserts are the probe case's own (its
due dates, the applicant's hashes, masks and encrypted forms, the case.accepted envelope). 50 clients, 2 threads,
-M prepared (asyncpg prepares too), on 4 centres of its own (329901-329904) shaped the same, so its numbers never
join the ones wrk takes.

Throughput rounds alternate pgbench and wrk (after a short warm-up run of its own), with gateway_bench's
and queue_bench's machinery: the service a uvicorn subprocess (uvloop + httptools, no access log), Envoy with
`make run`'s configuration and one worker thread, CPU use per process, a run during which the rest of the
machine used over a quarter of a core marked "!" and left out of the medians when a quiet round exists,
pg_stat_activity sampled every 50 ms. The service's pool is 20+10 here (its default is smaller; CASES_DB_POOL_SIZE
/ CASES_DB_MAX_OVERFLOW / CASES_DB_POOL_PRE_PING in the environment change it), printed with the pre-ping setting.
The outbox relay does not run: it is not the route's work, and on a two-CPU machine it would take its CPU from
whichever side runs (the events stay in the outbox).

Latency, open loop. A client in this process (asyncio, HTTP/1.1 keep-alive connections opened on demand, so a
send never waits for a free connection) offers half the measured throughput at a constant rate through Envoy,
the 50 clerks in turn. Latency runs from each request's scheduled send time (no coordinated omission).

py-spy. If the throughput misses a target (or with --profile), one more wrk run is profiled with py-spy
(`py-spy record --nonblocking`, the service's process) and the bench prints where the service's CPU went. py-spy
is not a project dependency: CASES_BENCH_PY_SPY, else PATH, else ~/.local/bin/py-spy; without it the bench says so.

Re-key. 100,000 open cases of a centre of their own (320199) are written straight by SQL (INSERT ... SELECT
generate_series), in 10 groups: accepted on each of the last 5 working days (today included), of two items
(promised 5 / legal 20, warn 1; promised 15 / legal 20, warn 3), their due dates counted by the service's own
clock function (services/cases/deadlines.py) on the calendar as the service has it. Then, timed, through the
service (direct: Envoy's 30 s route timeout is not what is measured), `PUT /calendar/overrides?center=320199`
makes the next working day a holiday (a typhoon closure); every one of those cases' periods contains it. The
number of cases that should move is counted by the same clock function on the new calendar, and checked by SQL
against the cases whose clock_version went to 2, the due_changed history rows and the case.due_changed outbox
rows. Then a year import (`PUT /calendar/years/Y`, JSON, system admin) of the year of the second working day
after the override: that year as the service counts it now, plus that day a holiday; it re-keys every open case
of the year (the registered ones too): counted and checked the same way.

Misses are printed, not failed; the exit status is 1 only on errors: non-2xx answers (warm-ups included),
connection errors, pgbench failures, a re-key that moved other counts than expected, a failed request in the
service's log.

Run: ``uv run python bench/cases_bench.py [seconds per run]`` (``make bench-cases``); also CASES_BENCH_SECONDS
(default 10), _ROUNDS (2), _WARMUP (2 s), _QUIET_WAIT (3 s), _OPEN_SECONDS (15), _REKEY_CASES (100000), or the
matching --options; --centres, --clients, --pgbench-clients, --profile, --show-statements.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
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
import queue_bench as qb  # noqa: E402

from services.cases import deadlines  # noqa: E402
from services.cases.config import Settings as CasesSettings  # noqa: E402
from shared import clock  # noqa: E402
from shared.auth import mint_token  # noqa: E402
from shared.calendar.engine import WorkCalendar, YearData  # noqa: E402
from shared.calendar.store import load_calendar  # noqa: E402
from shared.db import asyncpg_dsn, ensure_database, make_engine, make_sessionmaker  # noqa: E402
from shared.devinfra.postgres import EmbeddedPostgres  # noqa: E402
from shared.migrate import upgrade  # noqa: E402

TARGET_RPS = 500.0
TARGET_RATIO = 0.5
TARGET_P99_MS = 100.0
SQL_SCRIPT = BENCH_DIR / "cases_pgbench.sql"
HTTP_CENTRE_BASE = 320100  # wrk's centres: 320101, 320102, ...
PGBENCH_CENTRE_BASE = 329900  # pgbench's: 329901, ... (the script's -D base)
REKEY_CENTRE = "320199"
DEPT = "gov-ga"
ITEM = "HJ0101"
REKEY_ITEMS = (("HJ0101", 5, 20, 1), ("HJ0102", 15, 20, 3))  # code, promised, legal, warn
POOL = ("20", "10")
TOKEN_TTL = timedelta(hours=3)
APPLICANT = {"name": "张三", "id_number": "11010519491231002X", "phone": "13812345678"}
MATERIALS = ["身份证"]
CASES_PATH = "/api/cases/cases"


@dataclass
class Options:
    seconds: float
    rounds: int
    warmup: float
    quiet_wait: float
    open_seconds: float
    open_warmup: float
    centres: int
    clients: int
    pgbench_clients: int
    pgbench_threads: int
    rekey_cases: int
    profile: bool
    show_statements: bool
    keep_profile: Path | None = None


def parse_args(argv: list[str]) -> Options:
    def env(name: str, default: float) -> str:
        return os.environ.get(f"CASES_BENCH_{name}", str(default))

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
    parser.add_argument("--clients", type=int, default=50, help="wrk connections, one clerk each")
    parser.add_argument("--pgbench-clients", type=int, default=50)
    parser.add_argument("--pgbench-threads", type=int, default=2)
    parser.add_argument("--rekey-cases", type=int, default=int(env("REKEY_CASES", 100_000)),
                        help="open cases re-keyed after the calendar change (0: no re-key phase)")
    parser.add_argument("--profile", action="store_true", help="profile a wrk run with py-spy even on target")
    parser.add_argument("--keep-profile", type=Path, default=None,
                        help="also copy py-spy's raw collapsed stacks to this file")
    parser.add_argument("--show-statements", action="store_true",
                        help="print the statements POST /cases sends (to update cases_pgbench.sql) and stop")
    a = parser.parse_args(argv)
    if not 1 <= a.centres <= 98:
        parser.error("--centres: 1 to 98 (320101... ; 320199 is the re-key's own)")
    if a.clients < a.centres or a.clients % 2:
        parser.error("--clients: an even number, at least one per centre (wrk runs 2 threads)")
    return Options(a.seconds, a.rounds, a.warmup, a.quiet_wait, a.open_seconds, a.open_warmup, a.centres,
                   a.clients, a.pgbench_clients, a.pgbench_threads, a.rekey_cases, a.profile, a.show_statements,
                   a.keep_profile)


# --- the hall -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Clerk:
    centre: str
    staff_id: str
    token: str


@dataclass
class Hall:
    key: str
    http_centres: list[str]
    pgbench_centres: list[str]
    clerks: list[Clerk] = field(default_factory=list)  # wrk's and the open loop's, consecutive ones in other centres

    def token(self, role: str, subject: str, centres: list[str], *, department: str | None = None,
              window: str | None = None) -> str:
        return mint_token(self.key, subject=subject, role=role, centers=centres, ttl=TOKEN_TTL,
                          department=department, window=window)

    def body(self, centre: str) -> bytes:
        return json.dumps({"center": centre, "item_code": ITEM, "applicant": APPLICANT, "materials": MATERIALS},
                          ensure_ascii=False).encode()


async def seed(db_url: str, hall: Hall, clients: int) -> None:
    """By SQL, as the catalogue's and identity's events would leave them: per centre a department, the items,
    and staff rows for the clerks (wrk's in the HTTP centres, one per pgbench centre, one for the re-key)."""
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        centres = hall.http_centres + hall.pgbench_centres + [REKEY_CENTRE]
        await conn.executemany(
            "INSERT INTO departments (center_id, code, name, active, created_at, updated_at) "
            "VALUES ($1, $2, '公安局', true, now(), now())", [(c, DEPT) for c in centres])
        await conn.executemany(
            "INSERT INTO items (center_id, code, name, department, kind, legal_limit_days, promised_limit_days, "
            "stages, warn_days, max_extension_days, forward_followup_days, special_limit_days, materials, active, "
            "created_at, updated_at) VALUES ($1, $2, $3, $4, 'promised', $5, $6, '[]', $7, 10, 20, 10, "
            "'[{\"name\": \"身份证\"}]', true, now(), now())",
            [(c, code, f"户籍迁移 {code}", DEPT, legal, promised, warn)
             for c in centres for code, promised, legal, warn in REKEY_ITEMS])
        per_centre = {c: [f"clerk-{c}-{n}" for n in range(1, clients // len(hall.http_centres) + 2)]
                      for c in hall.http_centres}
        for i in range(clients):
            centre = hall.http_centres[i % len(hall.http_centres)]
            staff = per_centre[centre][i // len(hall.http_centres)]
            hall.clerks.append(Clerk(centre, staff, hall.token("clerk", staff, [centre], department=DEPT,
                                                               window=str(i // len(hall.http_centres) + 1))))
        staff_rows = [(c.staff_id, [c.centre]) for c in hall.clerks]
        staff_rows += [(f"clerk-{c}-1", [c]) for c in hall.pgbench_centres + [REKEY_CENTRE]]
        await conn.executemany(
            "INSERT INTO staff (id, display_name, role, centers, department, active, updated_at, "
            "last_event_sequence) VALUES ($1, '王小明', 'clerk', $2, $3, true, now(), 1)",
            [(s, c, DEPT) for s, c in staff_rows])
    finally:
        await conn.close()


async def calendar_now(db_url: str) -> WorkCalendar:
    """The calendar as the service loads it (shared.calendar.store.load_calendar)."""
    engine = make_engine(db_url, pool_size=1, max_overflow=0, application_name="bench")
    try:
        async with make_sessionmaker(engine)() as session:
            return await load_calendar(session)
    finally:
        await engine.dispose()


def year_as_counted(calendar: WorkCalendar, year: int, holidays: Collection[date] = ()) -> dict[str, Any]:
    """The JSON year import of `year` as `calendar` counts it now (centre-independent), plus `holidays`."""
    days = []
    d = date(year, 1, 1)
    while d.year == year:
        working = calendar.is_working_day(d) and d not in holidays
        if working != (d.weekday() < 5):
            days.append({"date": d.isoformat(), "kind": "working" if working else "holiday"})
        d += timedelta(days=1)
    return {"year": year, "days": days}


async def import_missing_years(url: str, db_url: str, hall: Hall, today: date) -> list[int]:
    """Import this and next year when they would count on the Monday-Friday fallback (1 January a holiday)."""
    calendar = await calendar_now(db_url)
    missing = sorted(calendar.fallback_years(within=range(today.year, today.year + 2)))
    admin = hall.token("system_admin", "bench-admin", ["*"])
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for year in missing:
            r = await http.put(f"/calendar/years/{year}",
                               content=json.dumps(year_as_counted(calendar, year, {date(year, 1, 1)})).encode(),
                               headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/json"})
            if r.status_code != 200:
                raise RuntimeError(f"PUT /calendar/years/{year} -> {r.status_code} {r.text}")
    return missing


# --- is the pgbench script still what the service sends? ----------------------------------------------------

LOGGED = re.compile(r"\] cases: LOG:  (?:statement|execute [^:]+): ")
# SQLAlchemy's pre-ping on asyncpg: BEGIN, an empty statement (not logged), ROLLBACK, before the request's own
PING = re.compile(r"\] cases: LOG:  statement: ROLLBACK;")


def script_statements() -> int:
    """Statements of the pgbench script (lines ending in ";" or "\\gset", outside comments)."""
    lines = [ln.strip() for ln in SQL_SCRIPT.read_text().splitlines()]
    return sum(1 for ln in lines if ln and not ln.startswith("--") and (ln.endswith(";") or "\\gset" in ln))


@dataclass
class Probe:
    statements: int  # the fewest a request sent, the pool's pre-ping left out
    pings: int  # the pool's pre-pings (BEGIN, `;`, ROLLBACK) per request
    case: asyncpg.Record  # the last probe case's row
    envelope: str  # its case.accepted envelope
    details: str  # its audit entry's details


async def probe(pg: EmbeddedPostgres, db_url: str, url: str, hall: Hall, show: bool) -> Probe:
    """Three registrations with every statement logged (the first may load the calendar); the case row and
    event the last wrote."""
    log = pg.data_dir / "server.log"
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    fewest, pings = 10**6, 0
    clerk = hall.clerks[0]
    try:
        for name, value in (("log_statement", "'all'"), ("log_line_prefix", "'%m [%p] %a: '")):
            await conn.execute(f"ALTER SYSTEM SET {name} = {value}")
        await conn.execute("SELECT pg_reload_conf()")
        await asyncio.sleep(0.5)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            for _ in range(3):
                mark = log.stat().st_size
                r = await http.post("/cases", content=hall.body(clerk.centre), headers={
                    "Authorization": f"Bearer {clerk.token}", "Content-Type": "application/json"})
                if r.status_code != 201:
                    raise RuntimeError(f"statement probe: POST /cases -> {r.status_code} {r.text}")
                case_no = r.json()["case_no"]
                await asyncio.sleep(0.3)  # the server writes its log as it goes: let the last lines land
                logged = qb.log_since(log, mark)
                ping = len(PING.findall(logged))
                sent = len(LOGGED.findall(logged)) - 2 * ping
                if sent < fewest:
                    fewest, pings = sent, ping
                if show:
                    print(f"-- POST /cases ({sent} statements, {ping} pre-ping)\n{logged}")
        case = await conn.fetchrow("SELECT * FROM cases WHERE case_no = $1", case_no)
        envelope = await conn.fetchval("SELECT envelope::text FROM outbox WHERE type = 'case.accepted' "
                                       "AND envelope->'data'->'case'->>'case_no' = $1", case_no)
        details = await conn.fetchval("SELECT details::text FROM case_history WHERE case_no = $1", case_no)
    finally:
        await conn.execute("ALTER SYSTEM RESET log_statement")
        await conn.execute("ALTER SYSTEM RESET log_line_prefix")
        await conn.execute("SELECT pg_reload_conf()")
        await conn.close()
    if case is None or envelope is None or details is None:
        raise RuntimeError("statement probe: the case, its audit entry or its case.accepted event is missing")
    return Probe(fewest, pings, case, envelope, details)


def pgbench_defines(p: Probe, today: date, centres: int) -> list[str]:
    """The script's -D variables: the probe case's values."""
    c = p.case

    def ts(v: datetime | None) -> str:
        return v.isoformat() if v is not None else ""

    values = {
        "day": today.isoformat(), "centres": str(centres), "base": str(PGBENCH_CENTRE_BASE),
        "due_at": ts(c["due_at"]), "legal_due_at": ts(c["legal_due_at"]), "warn_at": ts(c["warn_at"]),
        "lookup_hash": c["lookup_code_hash"], "name_masked": c["applicant_name_masked"],
        "name_enc": c["applicant_name_encrypted"].hex(), "applicant_hash": c["applicant_hash"],
        "id_masked": c["id_number_masked"], "id_enc": c["id_number_encrypted"].hex(),
        "phone_hash": c["phone_hash"], "phone_masked": c["phone_masked"], "phone_enc": c["phone_encrypted"].hex(),
        "envelope": p.envelope, "details": p.details,
    }
    return [arg for k, v in values.items() for arg in ("-D", f"{k}={v}")]


# --- runs -----------------------------------------------------------------------------------------------------

WRK_LUA = """
-- cases_bench: every request the next clerk's registration (each thread starts at its own place in the list);
-- the answer must be 201. The clerks table (centre, token, body) is written above by cases_bench.py.
local threads, started = {}, 0

function setup(thread)
  thread:set("offset", started * math.floor(#clerks / 2))
  started = started + 1
  table.insert(threads, thread)
end

function init(args)
  created, refused = 0, {}
  requests = {}
  for i, c in ipairs(clerks) do
    requests[i] = wrk.format("POST", "/api/cases/cases",
      {["Authorization"] = "Bearer " .. c[2], ["Content-Type"] = "application/json"}, c[3])
  end
  n = offset
end

function request()
  n = n % #requests + 1
  return requests[n]
end

function response(status, headers, body)
  if status == 201 then created = created + 1 else refused[status] = (refused[status] or 0) + 1 end
end

function done(summary, latency, requests)
  local total, r = 0, {}
  for _, thread in ipairs(threads) do
    total = total + thread:get("created")
    for k, v in pairs(thread:get("refused")) do r[k] = (r[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(r) do table.insert(parts, k .. "=" .. v) end
  io.write("wrk-refused " .. table.concat(parts, " ") .. "\\n")
  local e = summary.errors
  io.write(string.format(
    "wrk-result requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d"
    .. " p99_us=%d created=%d\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), total))
end
"""


def write_wrk_script(path: Path, hall: Hall) -> None:
    rows = [f"  {{{qb.lua_string(c.centre)}, {qb.lua_string(c.token)}, "
            f"{qb.lua_string(hall.body(c.centre).decode())}}}," for c in hall.clerks]
    path.write_text("clerks = {\n" + "\n".join(rows) + "\n}\n" + WRK_LUA)


@dataclass
class Run:
    side: str  # "pgbench", "http", "warm-up", "profiled"
    round: int
    requests: int
    seconds: float
    p50_ms: float | None  # pgbench: the mean transaction
    p99_ms: float | None
    failures: dict[str, int]
    cpu: dict[str, float]
    sessions: str = ""
    slow: int = 0
    refused: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return sum(self.failures.values())

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def busy(self) -> bool:
        return self.cpu.get("others", 0) > gb.BUSY_OTHERS


IN_FLIGHT = re.compile(r'^http_requests_in_flight\{service="cases"\} ([\d.]+)$', re.MULTILINE)


def settle(url: str, within: float = 30) -> None:
    """Until the service has finished what a stopped wrk left in flight (none but the scrape, twice)."""
    quiet, deadline = 0, perf_counter() + within
    with httpx.Client(base_url=url, timeout=5) as http:
        while quiet < 2 and perf_counter() < deadline:
            found = IN_FLIGHT.search(http.get("/metrics").text)
            quiet = quiet + 1 if found is None or float(found.group(1)) <= 1 else 0
            sleep(0.05)


@dataclass
class Load:
    wrk: str
    wrk_script: Path
    url: str  # Envoy
    service_url: str
    connections: int
    pgbench: list[str]  # without -T
    db_url: str

    def http(self, seconds: float, watched: qb.Watched, side: str = "http", n: int = 0) -> Run:
        args = [self.wrk, "-t", "2", "-c", str(self.connections), "-d", f"{max(1, round(seconds))}s",
                "--timeout", "5s", "-s", str(self.wrk_script), self.url]
        with qb.Sessions(self.db_url, "cases") as sessions:
            result, cpu = qb.timed(args, seconds + 60, watched)
        settle(self.service_url)
        line = next((ln for ln in result.stdout.splitlines() if ln.startswith("wrk-result ")), None)
        if result.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout}{result.stderr}")
        f = {k: int(v) for k, v in (item.split("=") for item in line.split()[1:])}
        refused = next((ln.split()[1:] for ln in result.stdout.splitlines() if ln.startswith("wrk-refused")), [])
        failures = {"non-2xx": f["status"], "socket": f["connect"] + f["read"] + f["write"]}
        return Run(side, n, f["requests"], f["duration_us"] / 1e6, f["p50_us"] / 1000, f["p99_us"] / 1000,
                   failures, cpu, sessions.describe(), f["timeout"],
                   dict((k, int(v)) for k, _, v in (item.partition("=") for item in refused)))

    def database(self, seconds: float, watched: qb.Watched, n: int = 0) -> Run:
        with qb.Sessions(self.db_url, "pgbench") as sessions:
            result, cpu = qb.timed([*self.pgbench, "-T", str(max(1, round(seconds)))], seconds + 60, watched)
        out = result.stdout + result.stderr

        def figure(pattern: str) -> float | None:
            found = re.search(pattern, out)
            return float(found.group(1)) if found else None

        tps, done = figure(r"tps = ([\d.]+)"), figure(r"actually processed: (\d+)")
        if tps is None or done is None:
            raise RuntimeError(f"pgbench failed ({result.returncode}):\n{out}")
        failed = int(figure(r"number of failed transactions: (\d+)") or 0)
        aborted = 1 if result.returncode != 0 else 0
        if aborted:
            print(f"pgbench exited with {result.returncode}:\n{out[-1500:]}", file=sys.stderr)
        return Run("pgbench", n, int(done), done / tps, figure(r"latency average = ([\d.]+) ms"), None,
                   {"failed": failed + aborted}, cpu, sessions.describe())


CPU_COLUMNS = ("client", "service", "envoy", "postgres", "others")


def print_header() -> None:
    print(f"\n{'run':<9}{'round':>5}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'non-2xx':>8}{'socket':>7}{'>5 s':>6}"
          f"   CPU % of one core: {' / '.join(CPU_COLUMNS)}", flush=True)


def print_run(run: Run, label: str | None = None) -> None:
    cpu = " / ".join(f"{run.cpu.get(n, 0) * 100:3.0f}" for n in CPU_COLUMNS)
    p50 = "-" if run.p50_ms is None else f"{'~' if run.side == 'pgbench' else ''}{run.p50_ms:.1f}"
    p99 = "-" if run.p99_ms is None else f"{run.p99_ms:.1f}"
    f = run.failures
    errors = (f"{f.get('failed', 0):>8}{'':>7}{'':>6}" if run.side == "pgbench"
              else f"{f['non-2xx']:>8}{f['socket']:>7}{run.slow:>6}")
    print(f"{label or run.side:<9}{run.round:>5}{run.rps:>9,.0f}{p50:>8}{p99:>8}{errors}   {cpu}"
          f"{' !' if run.busy else ''}", flush=True)


# --- the open loop --------------------------------------------------------------------------------------------

@dataclass
class OpenLoop:
    rate: float
    latencies: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    sent: int = 0
    seconds: float = 0.0
    connections: int = 0


async def open_loop(envoy_url: str, hall: Hall, rate: float, warmup: float, seconds: float) -> OpenLoop:
    host, port = envoy_url.removeprefix("http://").split(":")
    client = qb.Http1(host, int(port))
    loop = OpenLoop(rate)
    pending: set[asyncio.Task[None]] = set()
    bodies = {c: hall.body(c) for c in hall.http_centres}

    async def register(clerk: Clerk, scheduled: float, measured: bool) -> None:
        try:
            status, _ = await client.post(CASES_PATH, clerk.token, bodies[clerk.centre])
        except Exception as exc:  # noqa: BLE001 - counted, reported
            loop.errors[type(exc).__name__] += 1
            return
        if measured:
            loop.latencies.append(perf_counter() - scheduled)
        if status != 201:
            loop.errors[str(status)] += 1

    try:
        await client.warm(32)
        started = perf_counter() + 0.2
        measure_from, end = started + warmup, started + warmup + seconds
        n = 0
        while (scheduled := started + n / rate) < end:
            delay = scheduled - perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            measured = scheduled >= measure_from
            task = asyncio.create_task(register(hall.clerks[n % len(hall.clerks)], scheduled, measured))
            if measured:
                loop.lateness.append(perf_counter() - scheduled)
                loop.sent += 1
            pending.add(task)
            task.add_done_callback(pending.discard)
            n += 1
        await asyncio.gather(*pending)
    finally:
        loop.connections = client.opened
        client.close()
    loop.seconds = seconds
    return loop


# --- py-spy ---------------------------------------------------------------------------------------------------

def py_spy() -> str | None:
    local = Path.home() / ".local" / "bin" / "py-spy"
    return (os.environ.get("CASES_BENCH_PY_SPY") or shutil.which("py-spy")
            or (str(local) if local.exists() else None))


PACKAGES = (("services/cases", "services.cases (the route)"), ("shared/", "shared (platform)"),
            ("sqlalchemy", "sqlalchemy"), ("asyncpg", "asyncpg"), ("pydantic", "pydantic"),
            ("fastapi", "fastapi"), ("starlette", "starlette"), ("uvicorn", "uvicorn"), ("jwt", "pyjwt"),
            ("cryptography", "cryptography"), ("prometheus_client", "prometheus_client"),
            ("asyncio/runners.py", "event loop (uvloop's C code)"), ("asyncio", "asyncio"), ("json", "json"),
            ("uuid", "uuid"), ("secrets", "secrets"), ("hmac", "hmac"), ("zoneinfo", "zoneinfo"))
FOCUS = (("SQLAlchemy (session, pool, the adapter)", "(sqlalchemy/"), ("asyncpg", "(asyncpg/"),
         ("pydantic", "(pydantic"), ("FastAPI dependencies (token, session, calendar)", "solve_dependencies ("),
         ("request body validation", "request_body_to_args ("),
         ("accept (registry)", "accept (services/cases/registry.py"),
         ("  item_for_accept", "item_for_accept (services/cases/statements.py"),
         ("  deadlines.compute", "compute (services/cases/deadlines.py"),
         ("  personal data (hash, mask, encrypt, seal)", "(shared/pii.py"),
         ("  Case() (ORM object)", "__init__ (<string>"), ("  facts (event payload)", "facts (services/cases/"),
         ("  insert_case", "insert_case (services/cases/statements.py"),
         ("  outbox publish_all", "publish_all (shared/events/outbox"),
         ("  lookup code (secrets.choice x 8)", "_lookup_code (services/cases/registry.py"),
         ("token verification", "(shared/auth.py"),
         ("the pool's pre-ping (BEGIN, `;`, ROLLBACK)", "_async_ping ("),
         ("a sync dependency in a worker thread", "run_in_threadpool ("),
         ("commit (the request's unit of work)", "commit (sqlalchemy/ext/asyncio/session.py"),
         ("response serialization", "serialize_response ("))


def profile(load: Load, watched: qb.Watched, service: gb.Server, work: Path, seconds: float,
            quiet_wait: float, keep: Path | None) -> Run | None:
    spy = py_spy()
    if spy is None:
        print("\nprofile: py-spy not found (not a project dependency): install it outside the project, e.g. "
              "`uv tool install py-spy`, or point CASES_BENCH_PY_SPY at one, and rerun")
        return None
    raw = work / "profile.txt"
    gb.wait_quiet(watched, quiet_wait)
    sampler = subprocess.Popen([spy, "record", "--nonblocking", "--format", "raw", "--rate", "200", "-d",
                                str(max(1, round(seconds))), "-o", str(raw), "-p", str(service.process.pid)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sleep(0.5)
    run = load.http(seconds, watched, "profiled")
    _, err = sampler.communicate(timeout=60)
    print_run(run, "profiled")
    print(f"\nprofile (py-spy record --nonblocking, 200 Hz, the service's process, during the wrk run "
          f"'profiled' above: {run.rps:,.0f} requests/s):")
    if not raw.exists():
        print(f"  py-spy wrote nothing: {err.strip()[-500:]}")
        return run
    for line in qb.summarize_profile(raw, 12, PACKAGES, FOCUS, "what runs in SQLAlchemy's greenlet does not show "
                                     "the route above it"):
        print(line)
    if keep is not None:
        shutil.copyfile(raw, keep)
        print(f"  (py-spy's raw stacks copied to {keep})")
    return run


# --- the re-key -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Group:
    """Open cases alike in everything their clock depends on."""

    centre: str
    accepted_on: date
    promised: int
    legal: int
    warn: int
    count: int

    def inputs(self) -> deadlines.ClockInputs:
        return deadlines.ClockInputs(center_id=self.centre, accepted_on=self.accepted_on,
                                     promised_days=self.promised, legal_days=self.legal, warn_days=self.warn,
                                     stage_started_on=self.accepted_on)


def moves(group: Group, before: WorkCalendar, after: WorkCalendar) -> bool:
    """Whether the re-key gives these cases a new clock_version (services/cases/registry.apply_deadlines)."""
    a, b = deadlines.compute(before, group.inputs()), deadlines.compute(after, group.inputs())
    return (a.due_at, a.legal_due_at, a.warn_at) != (b.due_at, b.legal_due_at, b.warn_at)


_REKEY_INSERT = """
    INSERT INTO cases (case_no, center_id, item_code, item_name, department, kind, status, stages, stage_index,
                       stage_started_on, lookup_code_hash, source, materials, accepted_at, accepted_on,
                       promised_limit_days, legal_limit_days, warn_days, extension_days, max_extension_days,
                       special_limit_days, forward_followup_days, due_at, legal_due_at, warn_at, stage_due_at,
                       clock_version, supplement_count, special_count, expedited, handler_id, handler_name, "window",
                       applicant_name_masked, applicant_name_encrypted, applicant_hash, id_number_masked,
                       id_number_encrypted, phone_hash, phone_masked, phone_encrypted, imported, overdue_at_import,
                       created_at, updated_at)
    SELECT $1::text || '-' || to_char($2::date, 'YYYYMMDD') || '-' || lpad((g + $3::int)::text, 6, '0'), $1::text,
           $4::text, '户籍迁移 ' || $4::text, $5::text, 'promised', 'in_progress', '[]'::jsonb, 0, $2::date,
           md5(g::text || $4::text) || md5($4::text), 'window', '["身份证"]'::jsonb, $6::timestamptz, $2::date,
           $7::int, $8::int, $9::int, 0, 10, 10, 20, $10::timestamptz, $11::timestamptz, $12::timestamptz, NULL, 1,
           0, 0, false, $13::text, '王小明', '1', '张*', $14::bytea, md5(g::text) || md5(g::text || 'x'),
           '110105********002X', $14::bytea, md5(g::text || 'p') || md5('p'), '138****5678', $14::bytea, false,
           false, $6::timestamptz, $6::timestamptz
    FROM generate_series(1, $15::int) AS g
"""


async def write_open_cases(db_url: str, groups: list[Group], calendar: WorkCalendar) -> float:
    """The groups' cases, straight by SQL, with the due dates the service's clock gives them; seconds."""
    started = perf_counter()
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        numbered: collections.Counter[date] = collections.Counter()
        blob = os.urandom(48)
        async with conn.transaction():
            for g in groups:
                code = next(c for c, p, legal, w in REKEY_ITEMS if (p, legal, w) == (g.promised, g.legal, g.warn))
                due = deadlines.compute(calendar, g.inputs())
                accepted_at = datetime.combine(g.accepted_on, time(9), tzinfo=clock.LOCAL_TZ).astimezone(UTC)
                await conn.execute(_REKEY_INSERT, g.centre, g.accepted_on, numbered[g.accepted_on], code, DEPT,
                                   accepted_at, g.promised, g.legal, g.warn, due.due_at, due.legal_due_at,
                                   due.warn_at, f"clerk-{g.centre}-1", blob, g.count)
                numbered[g.accepted_on] += g.count
        await conn.execute("VACUUM (ANALYZE) cases")
    finally:
        await conn.close()
    return perf_counter() - started


async def open_groups(db_url: str) -> list[Group]:
    """Every open case, grouped by what its clock depends on (none of the bench's cases is paused, extended or
    staged)."""
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        odd = await conn.fetchval("SELECT count(*) FROM cases WHERE status IN ('completed', 'delivered', "
                                  "'withdrawn') OR paused_on IS NOT NULL OR extension_days <> 0 OR stages <> '[]'")
        if odd:
            raise RuntimeError(f"{odd} cases are closed, paused, extended or staged: the expected count is off")
        rows = await conn.fetch(
            "SELECT center_id, accepted_on, promised_limit_days, legal_limit_days, warn_days, count(*) AS n "
            "FROM cases GROUP BY 1, 2, 3, 4, 5")
    finally:
        await conn.close()
    return [Group(r["center_id"], r["accepted_on"], r["promised_limit_days"], r["legal_limit_days"],
                  r["warn_days"], r["n"]) for r in rows]


@dataclass
class Rekey:
    label: str
    seconds: float
    examined: int  # the open cases the change can touch (the bounds of services/cases/rekey.py)
    expected: int  # of those, the ones the clock function moves
    versions_before: dict[int, int]  # clock_version -> cases
    versions: dict[int, int]
    history: int  # due_changed audit entries written
    events: int  # case.due_changed outbox rows written

    @property
    def changed(self) -> int:
        """Cases whose clock_version rose (by one each: one change)."""
        if sum(self.versions_before.values()) != sum(self.versions.values()):
            raise RuntimeError("cases appeared or vanished during a re-key")
        return (sum(v * n for v, n in self.versions.items())
                - sum(v * n for v, n in self.versions_before.items()))

    @property
    def ok(self) -> bool:
        return self.changed == self.expected == self.history == self.events


async def counts(db_url: str) -> tuple[dict[int, int], int, int]:
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        versions = {r["clock_version"]: r["n"] for r in await conn.fetch(
            "SELECT clock_version, count(*) AS n FROM cases GROUP BY 1 ORDER BY 1")}
        history = await conn.fetchval("SELECT count(*) FROM case_history WHERE action = 'due_changed'")
        events = await conn.fetchval("SELECT count(*) FROM outbox WHERE type = 'case.due_changed'")
    finally:
        await conn.close()
    return versions, history, events


async def timed_change(url: str, db_url: str, label: str, path: str, token: str, body: dict[str, Any],
                       in_scope: list[Group], before: WorkCalendar, after: WorkCalendar,
                       watched: qb.Watched) -> Rekey:
    """One calendar change through the service, timed to its answer, and what it did to the cases."""
    expected = sum(g.count for g in in_scope if moves(g, before, after))
    versions_before, history_before, events_before = await counts(db_url)
    gb.wait_quiet(watched, 3)
    async with httpx.AsyncClient(base_url=url, timeout=900) as http:
        started = perf_counter()
        r = await http.put(path, content=json.dumps(body, ensure_ascii=False).encode(),
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        seconds = perf_counter() - started
    if r.status_code != 200:
        raise RuntimeError(f"PUT {path} -> {r.status_code} {r.text[:500]}")
    versions, history, events = await counts(db_url)
    return Rekey(label, seconds, sum(g.count for g in in_scope), expected, versions_before, versions,
                 history - history_before, events - events_before)


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=clock.LOCAL_TZ).astimezone(UTC)


async def rekey_phase(url: str, db_url: str, hall: Hall, n_cases: int, today: date,
                      watched: qb.Watched) -> tuple[list[Rekey], float, int]:
    """Write the open cases, then the override and the year import, each timed and checked."""
    calendar = await calendar_now(db_url)
    accepted = [calendar.subtract_working_days(today, k, REKEY_CENTRE) for k in range(4, 0, -1)] + [today]
    kinds = [(day, item) for day in accepted for item in REKEY_ITEMS]
    groups = [Group(REKEY_CENTRE, day, p, legal, w, n_cases // len(kinds) + (i < n_cases % len(kinds)))
              for i, (day, (_, p, legal, w)) in enumerate(kinds)]
    wrote = await write_open_cases(db_url, groups, calendar)
    results = []

    # a centre override: the next working day after today a holiday for the re-key centre; it touches the
    # centre's open cases whose legal due is today or later
    closed = calendar.add_working_days(today, 1, REKEY_CENTRE)
    in_scope = [g for g in await open_groups(db_url) if g.centre == REKEY_CENTRE
                and deadlines.compute(calendar, g.inputs()).legal_due_at >= local_midnight(today)]
    results.append(await timed_change(
        url, db_url, f"override: {closed} a holiday for centre {REKEY_CENTRE}",
        f"/calendar/overrides?center={REKEY_CENTRE}",
        hall.token("center_admin", f"admin-{REKEY_CENTRE}", [REKEY_CENTRE]),
        {"days": [{"date": closed.isoformat(), "kind": "holiday", "reason": "台风停工 (benchmark)"}]},
        in_scope, calendar, calendar.with_override(REKEY_CENTRE, closed, "holiday"), watched))

    # a year import: the year of the second working day after today, as counted now, that day a holiday; it
    # touches the open cases accepted by the year's end whose legal due is in the year or later
    calendar = await calendar_now(db_url)
    second = calendar.add_working_days(today, 2)
    body = year_as_counted(calendar, second.year, {second})
    after = calendar.with_imported_year(YearData(
        second.year, frozenset(date.fromisoformat(d["date"]) for d in body["days"] if d["kind"] == "holiday"),
        frozenset(date.fromisoformat(d["date"]) for d in body["days"] if d["kind"] == "working")))
    in_scope = [g for g in await open_groups(db_url) if g.accepted_on <= date(second.year, 12, 31)
                and deadlines.compute(calendar, g.inputs()).legal_due_at >= local_midnight(date(second.year, 1, 1))]
    results.append(await timed_change(
        url, db_url, f"year import: {second.year} as counted, {second} a holiday", f"/calendar/years/{second.year}",
        hall.token("system_admin", "bench-admin", ["*"]), body, in_scope, calendar, after, watched))
    return results, wrote, len(groups)


# --- the whole -------------------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    began = perf_counter()
    with tempfile.TemporaryDirectory(prefix="cases-bench-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        wrk = gb.ensure_wrk()
        pg = EmbeddedPostgres(work / "pg", gb.free_port(), fast_unsafe=True)
        stack.callback(pg.destroy)
        pg.start()
        db_url = pg.url("bench_cases")
        asyncio.run(ensure_database(db_url))
        upgrade("cases", db_url)
        postmaster = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
        secrets = gb.devsecrets.generate()
        pool = (os.environ.get("CASES_DB_POOL_SIZE", POOL[0]), os.environ.get("CASES_DB_MAX_OVERFLOW", POOL[1]))
        defaults = CasesSettings.model_fields
        pre_ping = os.environ.get("CASES_DB_POOL_PRE_PING", str(defaults["db_pool_pre_ping"].default)).lower()
        env = {**gb.base_env(), **secrets, "CASES_DATABASE_URL": db_url, "CASES_MIGRATE_ON_START": "false",
               "CASES_DB_POOL_SIZE": pool[0], "CASES_DB_MAX_OVERFLOW": pool[1], "CASES_DB_POOL_PRE_PING": pre_ping,
               "HALL_LOG_LEVEL": "WARNING"}
        service = gb.spawn("cases", "services.cases.main:create_app", ROOT, work, env)
        stack.callback(gb.stop, service)
        gb.wait_ready(service, "/healthz")
        envoy = gb.start_envoy(stack, work, {"cases": service.port}, service.port, secrets["HALL_JWT_PUBLIC_KEY"])

        today = clock.today_local()
        hall = Hall(secrets["GATEWAY_JWT_PRIVATE_KEY"],
                    [str(HTTP_CENTRE_BASE + i) for i in range(1, options.centres + 1)],
                    [str(PGBENCH_CENTRE_BASE + i) for i in range(1, options.centres + 1)])
        asyncio.run(seed(db_url, hall, options.clients))
        imported = asyncio.run(import_missing_years(service.url, db_url, hall, today))
        found = asyncio.run(probe(pg, db_url, service.url, hall, options.show_statements))
        if options.show_statements:
            return 0
        scripted = script_statements()
        pgbench_bin = pg.bin / "pgbench" if (pg.bin / "pgbench").exists() else shutil.which("pgbench")
        if pgbench_bin is None:
            raise SystemExit("pgbench not found (neither in the PostgreSQL wheel nor on PATH)")
        pgbench = [str(pgbench_bin), "-h", gb.HOST, "-p", str(pg.port), "-U", "postgres", "-n", "-M", "prepared",
                   "-c", str(options.pgbench_clients), "-j", str(options.pgbench_threads), "-f", str(SQL_SCRIPT),
                   *pgbench_defines(found, today, options.centres), "bench_cases"]
        load = Load(wrk, work / "cases.lua", envoy.url, service.url, options.clients, pgbench, db_url)
        write_wrk_script(load.wrk_script, hall)

        assert envoy.process is not None
        envoy_pid = envoy.process.pid
        watched: qb.Watched = {"service": lambda: gb.proc_cpu_seconds(service.process.pid),
                               "envoy": lambda: gb.proc_cpu_seconds(envoy_pid),
                               "postgres": lambda: qb.postgres_cpu_seconds(postmaster)}
        loop_http = " + ".join(o.split("=")[1] for o in gb.server_options() if "=" in o) or "asyncio + h11"
        print(f"cases benchmark: POST /api/cases/cases (case registration) through Envoy {gb.envoy_version()} "
              f"(1 worker thread); the cases service: one uvicorn process ({loop_http}), pool {pool[0]}+{pool[1]} "
              f"(the service's default: {defaults['db_pool_size'].default}+{defaults['db_max_overflow'].default}), "
              f"pre-ping {pre_ping}; PostgreSQL 18 (fsync off); {os.cpu_count()} CPUs shared by all")
        print(f"hall: {options.centres} centres ({', '.join(hall.http_centres)}), {options.clients} clerks spread "
              f"over them (~{options.clients / options.centres:.1f} per centre's daily counter row), one item "
              f"(promised 5, legal 20 working days); pgbench on {options.centres} centres of its own"
              + (f"; imported {', '.join(map(str, imported))} (no official schedule yet: Mon-Fri, 1 Jan a holiday)"
                 if imported else ""))
        print(f"load: wrk {gb.wrk_version(wrk)}, 2 threads, {options.clients} connections, {options.seconds:g} s "
              f"per run after {options.warmup:g} s of warm-up; pgbench {options.pgbench_clients} clients, "
              f"{options.pgbench_threads} threads, -M prepared, {SQL_SCRIPT.name}; {options.rounds} rounds "
              f"alternating pgbench / wrk; the outbox relay not running")
        drift = found.statements != scripted
        print(f"statements per registration, the service's (logged) / the pgbench script's: {found.statements}/"
              f"{scripted}" + (f", and the pool's pre-ping (`;`, not in the script) {found.pings}" if found.pings
                               else "") + ("   ! the script is out of date" if drift else ""))
        started_day = clock.today_local()

        print_header()
        rounds: list[tuple[Run, Run]] = []
        failures = seen_non_2xx = 0
        for n in range(1, options.rounds + 1):
            gb.wait_quiet(watched, options.quiet_wait)
            database = load.database(options.seconds, watched, n)
            print_run(database)
            if options.warmup > 0:
                gb.wait_quiet(watched, options.quiet_wait)
                warm = load.http(options.warmup, watched, "warm-up", n)
                failures += warm.errors
                seen_non_2xx += warm.failures["non-2xx"]
            gb.wait_quiet(watched, options.quiet_wait)
            http = load.http(options.seconds, watched, "http", n)
            seen_non_2xx += http.failures["non-2xx"]
            print_run(http, "wrk")
            failures += database.errors + http.errors
            rounds.append((database, http))

        quiet = [(d, h) for d, h in rounds if not (d.busy or h.busy)]
        used = quiet or rounds
        http_rps = qb.median([h.rps for _, h in used])
        db_rps = qb.median([d.rps for d, _ in used])
        ratio = qb.median([h.rps / d.rps for d, h in used])
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
        on_target = http_rps >= TARGET_RPS and ratio >= TARGET_RATIO and http_errors == 0
        print(f"\nthroughput, medians over {'the quiet' if quiet else 'all'} rounds ({len(used)} of {len(rounds)}):")
        print(f"  HTTP through Envoy, {options.clients} connections: {http_rps:,.0f} registrations/s "
              f"(target >= {TARGET_RPS:.0f}: {gb.verdict(http_rps >= TARGET_RPS)}); p99 "
              f"{qb.median([h.p99_ms or 0 for _, h in used]):.0f} ms (closed loop); {error_text}")
        print(f"  pgbench, the same statements, {options.pgbench_clients} clients: {db_rps:,.0f} transactions/s")
        print(f"  HTTP / pgbench: {ratio:.2f} (per round {', '.join(f'{h.rps / d.rps:.2f}' for d, h in rounds)})   "
              f"target >= {TARGET_RATIO:.2f} and 0 errors: {gb.verdict(ratio >= TARGET_RATIO and http_errors == 0)}")
        print("  database connections, mean over the last round's run (sampled every 50 ms):")
        print(f"    the service's pool ({pool[0]}+{pool[1]}): {rounds[-1][1].sessions}")
        print(f"    pgbench's {options.pgbench_clients} clients: {rounds[-1][0].sessions}")
        if not quiet:
            print(f"  ! no quiet round: other processes used over {gb.BUSY_OTHERS:.0%} of a core during every round")

        if options.profile or not on_target:
            profiled = profile(load, watched, service, work, options.seconds, options.quiet_wait,
                               options.keep_profile)
            if profiled is not None:
                failures += profiled.errors
                seen_non_2xx += profiled.failures["non-2xx"]

        # latency, open loop
        rate = http_rps / 2
        gb.wait_quiet(watched, options.quiet_wait)
        before = {name: f() for name, f in watched.items()}
        machine_before, own_before, wall_before = gb.machine_cpu_seconds(), process_time(), perf_counter()
        with contextlib.suppress(ImportError):
            import uvloop  # the client's own cost stays small: it shares the CPUs with all it measures

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        loop = asyncio.run(open_loop(envoy.url, hall, rate, options.open_warmup, options.open_seconds))
        wall = perf_counter() - wall_before
        cpu = {name: (f() - before[name]) / wall for name, f in watched.items()}
        cpu["bench client"] = (process_time() - own_before) / wall
        cpu["others"] = max(0.0, (gb.machine_cpu_seconds() - machine_before) / wall - sum(cpu.values()))
        p99 = qb.percentile(loop.latencies, 0.99) * 1000 if loop.latencies else float("inf")
        p50 = qb.percentile(loop.latencies, 0.5) * 1000 if loop.latencies else float("inf")
        open_errors = sum(loop.errors.values())
        seen_non_2xx += sum(n for kind, n in loop.errors.items() if kind.isdigit())
        failures += open_errors
        print(f"\nopen loop: {rate:,.0f} registrations/s offered through Envoy for {loop.seconds:g} s (after "
              f"{options.open_warmup:g} s of warm-up), {loop.sent} sent, {len(loop.latencies)} answered, "
              f"{loop.connections} connections; errors {open_errors}"
              + (f" ({', '.join(f'{k}: {v}' for k, v in loop.errors.items())})" if loop.errors else ""))
        print(f"  send lateness (client's own): {qb.ms(loop.lateness)}")
        print(f"  latency from the scheduled send: {qb.ms(loop.latencies)}   p99/target {p99 / TARGET_P99_MS:.2f}  "
              f"{gb.verdict(p99 <= TARGET_P99_MS)}")
        print("  CPU % of one core: " + ", ".join(f"{name} {share * 100:.0f}" for name, share in cpu.items()))

        # re-key
        rekeys: list[Rekey] = []
        if options.rekey_cases > 0:
            settle(service.url)
            rekeys, wrote, n_groups = asyncio.run(rekey_phase(service.url, db_url, hall, options.rekey_cases, today,
                                                              watched))
            print(f"\nre-key: {options.rekey_cases:,} open cases of centre {REKEY_CENTRE} written by SQL in "
                  f"{wrote:.1f} s ({n_groups} groups: accepted on the last 5 working days, 2 items), then each "
                  f"change through the service (direct), timed to its answer (the change, the re-key and the "
                  f"commit are one transaction)")
            for r in rekeys:
                failures += 0 if r.ok else 1
                print(f"  {r.label}: {r.seconds:.1f} s; examined {r.examined:,} open cases "
                      f"({r.examined / r.seconds:,.0f}/s), re-keyed {r.changed:,} ({r.changed / r.seconds:,.0f} "
                      f"rows/s); expected {r.expected:,}, audit entries {r.history:,}, case.due_changed events "
                      f"{r.events:,}: {'as expected' if r.ok else 'MISMATCH'}")
            print("  clock_version of all cases after: "
                  + ", ".join(f"v{v} {n:,}" for v, n in sorted(rekeys[-1].versions.items())))

        print(f"\nsummary: registration {http_rps:,.0f}/s (>= {TARGET_RPS:.0f}) {gb.verdict(http_rps >= TARGET_RPS)}, "
              f"{ratio:.2f} of pgbench's {db_rps:,.0f}/s (>= {TARGET_RATIO}) "
              f"{gb.verdict(ratio >= TARGET_RATIO and http_errors == 0)}; open loop at {rate:,.0f}/s p50 {p50:.0f} ms "
              f"p99 {p99:.0f} ms (<= {TARGET_P99_MS:.0f}) {gb.verdict(p99 <= TARGET_P99_MS)}"
              + "".join(f"; {r.label.split(':')[0]} re-key {r.changed:,} cases in {r.seconds:.1f} s "
                        f"({r.changed / r.seconds:,.0f} rows/s)" for r in rekeys)
              + "; a MISS is reported, not failed")
        if clock.today_local() != started_day:
            print("! the run crossed local midnight: the business day changed under it (numbers from 1 again)")
        if problems := qb.service_errors(service.log):
            logged = sum(problems.values())
            failures += max(0, logged - seen_non_2xx)
            print(f"! the service logged {logged} failed requests ({seen_non_2xx} non-2xx answers reached a client): "
                  + "; ".join(f"{text} (x{n})" for text, n in problems.most_common(5)))
        print(f"{perf_counter() - began:.0f} s in all")
        if failures:
            print(f"FAILED: {failures} errors (non-2xx answers, connection errors, pgbench failures, re-key counts "
                  f"off, errors in the service's log; warm-ups included)", file=sys.stderr)
            return 1
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
