"""Benchmark of the deadline endpoint through the gateway, beside a bare endpoint through the gateway.

`GET /api/cases/calendar/deadline?...` (JWT check, the calendar version read, the engine) against
`GET /api/cases/healthz` (no auth, no database) of the same cases process behind the same gateway, in
one run, so the ratio shows what the calendar endpoint itself costs. Real processes: an embedded
PostgreSQL 18, the cases service and the gateway as uvicorn subprocesses; the load is the raw asyncio
keep-alive client of gateway_bench.py. Run: `uv run python bench/calendar_endpoint_bench.py [seconds]`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from time import perf_counter

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
for path in (str(ROOT), str(BENCH_DIR)):
    if path not in sys.path:
        sys.path.insert(0, path)

import gateway_bench as gb  # noqa: E402

from shared import devsecrets  # noqa: E402
from shared.auth import mint_token  # noqa: E402
from shared.db import ensure_database  # noqa: E402
from shared.devinfra.postgres import EmbeddedPostgres, free_port  # noqa: E402
from shared.migrate import upgrade  # noqa: E402

CONNECTIONS = 50
DEADLINE = "/api/cases/calendar/deadline?from=2026-02-12&working_days=20&center=320102"
BARE = "/api/cases/healthz"


async def _connection(port: int, target: str, token: str, until: float, latencies: list[float],
                      errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(gb.HOST, port)
    request = (f"GET {target} HTTP/1.1\r\nHost: {gb.HOST}\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
    try:
        while (started := perf_counter()) < until:
            writer.write(request)
            status = await gb._read_response(reader)
            (latencies.append(perf_counter() - started) if status == 200 else errors.append(status))
    finally:
        writer.close()


async def load(port: int, target: str, token: str, seconds: float) -> tuple[float, float, float, int]:
    latencies: list[float] = []
    errors: list[int] = []
    warm_until = perf_counter() + 1.0
    await asyncio.gather(*(_connection(port, target, token, warm_until, [], []) for _ in range(CONNECTIONS)))
    until = perf_counter() + seconds
    await asyncio.gather(*(_connection(port, target, token, until, latencies, errors)
                           for _ in range(CONNECTIONS)))
    ordered = sorted(latencies)
    return (len(ordered) / seconds, ordered[len(ordered) // 2] * 1000, ordered[int(len(ordered) * 0.99)] * 1000,
            len(errors))


def main(argv: list[str]) -> int:
    seconds = float(argv[1]) if len(argv) > 1 else 8.0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="calendar-bench-", dir=ROOT / "var" if (ROOT / "var").exists() else None))
    pg = EmbeddedPostgres(work / "pg", free_port(), fast_unsafe=True)
    servers: list[gb.Server] = []
    try:
        pg.start()
        url = pg.url("bench_cases")
        asyncio.run(ensure_database(url))
        upgrade("cases", url)
        secrets = devsecrets.generate()
        env = {**os.environ, **secrets, "CASES_DATABASE_URL": url, "CASES_MIGRATE_ON_START": "false",
               "HALL_LOG_LEVEL": "WARNING",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        cases = gb.spawn("cases", "services.cases.main:create_app", ROOT, work, env)
        servers.append(cases)
        gb.wait_ready(cases, "/healthz")
        gateway = gb.spawn("gateway", "services.gateway.main:create_app", ROOT, work,
                           {**env, "GATEWAY_CASES_URL": f"http://{gb.HOST}:{cases.port}"})
        servers.append(gateway)
        gb.wait_ready(gateway, BARE)
        token = mint_token(secrets["GATEWAY_JWT_PRIVATE_KEY"], subject="bench", role="clerk", centers=["320102"])
        with gb._event_loop_runner() as runner:
            bare = runner.run(load(gateway.port, BARE, token, seconds))
            deadline = runner.run(load(gateway.port, DEADLINE, token, seconds))
        print(f"\ncalendar endpoint through the gateway, {CONNECTIONS} connections, {seconds:g} s each, "
              f"{os.cpu_count()} CPUs shared by load client, gateway, cases and PostgreSQL")
        print(f"{'endpoint':<34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for name, (rps, p50, p99, errors) in (("bare /healthz via gateway", bare), ("deadline via gateway", deadline)):
            print(f"{name:<34} {rps:>8,.0f} {p50:>8.2f} {p99:>8.2f} {errors:>7}")
        print(f"deadline / bare requests/s: {deadline[0] / bare[0]:.2f}")
        return 0 if deadline[3] == 0 else 1
    finally:
        gb.stop(servers)
        pg.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
