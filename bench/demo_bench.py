"""`make bench-demo`: a whole compressed hall day (`make demo` at 200x, 07:30 to 17:45 of the previous working
day) in its own var/ and ports; its wall time against the 5-minute target, and the platform's resource use
during it: CPU seconds per process (sampled from the launcher's process tree every second), each database's
size at the end of the day, and the day's volume (tickets, cases, events). The base of the sizing in the
README ("Scaling")."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import asyncpg
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.test_make_run import Launch  # noqa: E402 - the launcher's env with free ports

LIMIT_S = 300.0
SPEED = 200


def _name(process: psutil.Process) -> str:
    command = " ".join(process.cmdline())
    for marker in ("services.", "shared.devinfra.run", "postgres", "envoy", "tansu", "prometheus"):
        if marker in command:
            if marker == "services.":
                part = command.split("services.", 1)[1].split()[0]
                return part.replace(".main:create_app", "").replace(".", "-")
            return marker.split(".")[-1]
    return process.name()


async def _sizes(port: str) -> dict[str, int]:
    conn = await asyncpg.connect(host="127.0.0.1", port=int(port), user="postgres", database="postgres")
    try:
        rows = await conn.fetch("SELECT datname, pg_database_size(datname) AS size FROM pg_database "
                                "WHERE datname LIKE 'hall_%'")
        return {r["datname"]: int(r["size"]) for r in rows}
    finally:
        await conn.close()


def main() -> int:
    var = ROOT / "var" / "bench-demo"
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    launch = Launch(var)
    summary_path = var / "summary.json"
    started = time.monotonic()
    demo = subprocess.Popen([sys.executable, "-m", "shared.devinfra.demo", "--speed", str(SPEED), "--summary-json",
                             str(summary_path)], cwd=ROOT, env=launch.env)
    cpu: dict[int, tuple[str, float]] = {}
    sizes: dict[str, int] = {}
    last_size = 0.0
    while demo.poll() is None:
        try:
            tree = psutil.Process(demo.pid).children(recursive=True)
        except psutil.Error:
            tree = []
        # the embedded PostgreSQL is detached by pg_ctl: its postmaster (found by its data directory under var/)
        # and its backends are not the launcher's children
        for process in psutil.process_iter():
            try:
                if str(var) in " ".join(process.cmdline()) and "postgres" in process.name():
                    tree += [process, *process.children(recursive=True)]
            except psutil.Error:
                continue
        for process in tree:
            try:
                times = process.cpu_times()
                cpu[process.pid] = (_name(process), times.user + times.system)
            except psutil.Error:
                continue
        if time.monotonic() - last_size > 10:
            try:
                sizes = asyncio.run(_sizes(launch.env["HALL_DEV_PG_PORT"]))
            except (OSError, asyncpg.PostgresError):
                pass
            last_size = time.monotonic()
        time.sleep(1)
    wall = time.monotonic() - started
    if demo.returncode != 0 or not summary_path.exists():
        print(f"bench-demo: the demo failed (exit {demo.returncode})")
        return 1
    summary = json.loads(summary_path.read_text())
    by_name: dict[str, float] = defaultdict(float)
    for name, seconds in cpu.values():
        by_name[name] += seconds
    driver = summary["driver"]
    print(f"\nbench-demo: a whole day at {SPEED}x in {wall:.0f} s of wall time (limit {LIMIT_S:.0f} s: "
          f"ratio {wall / LIMIT_S:.2f})")
    print(f"  the day: {driver['tickets']} tickets, {driver['served']} served, {driver['cases']} cases, "
          f"{sum(summary['deliveries'].values())} deliveries, {sum(summary['alerts'].values())} alerts")
    total = sum(by_name.values())
    print(f"  CPU seconds during the run ({total:.0f} in all; {total / wall:.2f} cores on average):")
    for name, seconds in sorted(by_name.items(), key=lambda kv: -kv[1]):
        print(f"    {name:<22} {seconds:7.1f} s")
    print("  databases at the end of the day:")
    for name, size in sorted(sizes.items()):
        print(f"    {name:<22} {size / 2**20:7.1f} MiB")
    (var / "bench.json").write_text(json.dumps({"wall_s": wall, "cpu_s": by_name, "db_bytes": sizes,
                                                "summary": summary}, ensure_ascii=False, indent=1))
    if os.environ.get("BENCH_KEEP") != "1":
        shutil.rmtree(var, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
