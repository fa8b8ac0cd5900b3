"""Benchmark of the deadline endpoint through the gateway (Envoy), beside a bare endpoint of the same service.

`GET /api/cases/calendar/deadline?...` (JWT check, the calendar, the engine) against `GET /api/cases/healthz`
(no database: the service's own liveness route, which Envoy forwards once the edge has checked the token;
not Envoy's /healthz) of the
same cases process behind the same Envoy, alternating, so the ratio shows what the calendar endpoint costs
beyond a request's fixed cost (HTTP, middleware, the hop). Both carry the same bearer token. Real processes:
an embedded PostgreSQL 18, the cases service as a uvicorn subprocess, Envoy (one worker thread) with `make
run`'s configuration, every cluster pointed at the cases service; the load is wrk. The machinery (and the
"!" for a run during which other processes were busy) is gateway_bench.py's, which also compares the same
deadline endpoint direct and through Envoy.

The exit status is 1 only if a run had errors or non-2xx answers.
Run: `uv run python bench/calendar_endpoint_bench.py [seconds]` (`make bench-calendar`, after the engine's
bench); also CALENDAR_ENDPOINT_BENCH_SECONDS (default 4), _ROUNDS (2), _WARMUP, _WRK_THREADS, _QUIET_WAIT.
"""

from __future__ import annotations

import contextlib
import signal
import statistics
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
for path in (str(ROOT), str(BENCH_DIR)):
    if path not in sys.path:
        sys.path.insert(0, path)

import gateway_bench as gb  # noqa: E402

CONNECTIONS = 50
BARE = "/api/cases/healthz"
DEADLINE = f"/api/cases{gb.DEADLINE}"


def is_cases_health(body: dict[str, object]) -> bool:
    return body == {"status": "ok", "service": "cases"}  # Envoy's own /healthz would say "gateway"


def main(argv: list[str]) -> int:
    options = gb.parse_args(argv, __doc__.split("\n", 1)[0], env_prefix="CALENDAR_ENDPOINT_BENCH", rounds=2)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="calendar-bench-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        wrk = gb.setup_wrk(work, options)
        secrets = gb.devsecrets.generate()
        cases, token, postmaster = gb.start_cases(stack, work, secrets)
        envoy = gb.start_envoy(stack, work, {}, cases.port, secrets["HALL_JWT_PUBLIC_KEY"])
        auth = {"Authorization": f"Bearer {token}"}
        cpu = gb.watch(cases, envoy, postmaster)
        targets = [gb.Target("healthz", envoy.url + BARE, auth, is_cases_health, cpu, via_envoy=True),
                   gb.Target("deadline", envoy.url + DEADLINE, auth, gb.is_deadline, cpu, via_envoy=True)]
        answer = [target.preflight() for target in targets][-1]
        print(f"\ncalendar endpoint through the gateway: Envoy {gb.envoy_version()} (1 worker thread), "
              f"{CONNECTIONS} connections; cases service and PostgreSQL behind it")
        print(gb.describe_load(wrk, options, "healthz/deadline"))
        print(f"deadline: GET {DEADLINE} -> due {answer['due_date']}, fallback years {answer['fallback_years']}")
        gb.print_header()
        runs, warmup_failures = gb.measure(wrk, "cases", CONNECTIONS, targets, options)
        c = gb.compare(runs, base="healthz", other="deadline")
        print(f"\nmedians over {'the quiet' if c.quiet else 'all'} rounds ({len(c.used)} of {len(c.pairs)}):")
        print(f"{'endpoint':<36}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
        for name, side in (("bare /api/cases/healthz", 0), ("deadline", 1)):
            of_side = [pair[side] for pair in c.used]
            print(f"{name + ' via Envoy':<36}{statistics.median(r.rps for r in of_side):>9,.0f}"
                  f"{statistics.median(r.p50_ms for r in of_side):>9.2f}"
                  f"{statistics.median(r.p99_ms for r in of_side):>9.2f}")
        print(f"deadline / bare requests/s: {c.ratio:.2f} (per round {c.round_ratios()}); "
              f"p50 added by the endpoint's own work: {c.added_p50:.2f} ms")
        failures = warmup_failures + sum(r.errors + r.non_2xx for r in runs)
        if failures:
            print(f"FAILED: {failures} errors or non-2xx answers (warm-ups included)", file=sys.stderr)
            return 1
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
