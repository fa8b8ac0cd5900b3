"""Benchmark of the import of open cases (issue 22, "Benchmark"): 100,000 cases of a centre going live, through
the intake CLI (`python -m services.cases.intake.cli import`), its progress bar on this terminal.

The hall: one centre (320188) with a department, two items (promised 5 / legal 20, and promised 15 / legal 20
with the stages 审查 5 and 决定 10) and 20 clerks (staff rows: the handlers the rows name). The file: a CSV of
100,000 rows accepted on the last 40 calendar days (random instants, Asia/Shanghai), each with a checksum-valid
ID number and a phone; one in ten had a finished 补正, one in twenty is still in a 特别程序, one in twenty had an
approved extension of 3 days; the rest plainly in progress. Some are overdue by then, as a real go-live has.

Timed: the CLI process from start to exit (reading, checking every row, the personal data and seals, the
numbers, COPY of cases, pauses, history and legacy numbers, the 100,000 case.accepted outbox rows, the commit).
Printed: seconds, rows per second, and the counts checked afterwards by SQL (cases, history rows, outbox rows,
imported_cases); the exit status is 1 if the CLI failed or a count is off. No target: the figure is reported.

Run: ``uv run python bench/cases_import_bench.py [rows]`` (``make bench-cases``); also CASES_IMPORT_BENCH_ROWS.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from time import perf_counter

# `uv run python bench/cases_import_bench.py` puts bench/ on sys.path, not the repo root.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from shared import clock, devsecrets  # noqa: E402
from shared.db import asyncpg_dsn, ensure_database  # noqa: E402
from shared.devinfra.postgres import EmbeddedPostgres, free_port  # noqa: E402
from shared.migrate import upgrade  # noqa: E402

CENTER = "320188"
DEPARTMENT = "D01"
CLERKS = [f"bench-clerk-{i}" for i in range(20)]
LOCAL = timedelta(hours=8)  # Asia/Shanghai has no daylight saving time
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(rng: random.Random) -> str:
    """A resident ID number of Nanjing's Xuanwu district with a valid check digit."""
    born = datetime(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))
    body = f"320102{born:%Y%m%d}{rng.randrange(1000):03d}"
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, WEIGHTS, strict=True)) % 11]


def make_csv(path: Path, rows: int, now: datetime, seed: int = 22) -> None:
    rng = random.Random(seed)
    surnames, given = "王李张刘陈杨赵黄周吴", "伟芳娜敏静丽强磊军洋"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("legacy_no,item_code,accepted_at,stage,handler,applicant_name,id_number,phone,pauses,"
                  "extension_days,extension_approved\n")
        for n in range(rows):
            accepted = now - timedelta(seconds=rng.randrange(40 * 86400) + 3600)
            local = accepted + LOCAL
            on = local.date()
            item, stage = ("B2", "审查") if n % 3 == 0 else ("B1", "")
            pauses, ext_days, ext_ok = "", "", ""
            kind = n % 20
            today = (now + LOCAL).date()
            if kind in (1, 2) and (today - on).days >= 3:  # a finished 补正 of a day or two
                pauses = f"supplement:{on + timedelta(days=1)}..{on + timedelta(days=kind + 1)}"
            elif kind == 3 and (today - on).days >= 1:  # still in a special procedure
                pauses = f"special:{on + timedelta(days=1)}.."
            elif kind == 4:
                ext_days, ext_ok = "3", "true"
            name = rng.choice(surnames) + rng.choice(given)
            phone = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
            out.write(f"OLD-{n:07d},{item},{local:%Y-%m-%d %H:%M:%S},{stage},{CLERKS[n % len(CLERKS)]},{name},"
                      f"{id_number(rng)},{phone},{pauses},{ext_days},{ext_ok}\n")


async def seed(db_url: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        await conn.execute("INSERT INTO centers (id, name, updated_at, last_event_sequence) "
                           "VALUES ($1, '基准中心', now(), 1)", CENTER)
        await conn.execute("INSERT INTO departments (center_id, code, name, active, created_at, updated_at) "
                           "VALUES ($1, $2, '区市场监督管理局', true, now(), now())", CENTER, DEPARTMENT)
        for code, promised, stages in (("B1", 5, "[]"),
                                       ("B2", 15, '[{"name": "审查", "limit_days": 5}, {"name": "决定", "limit_days": 10}]')):
            await conn.execute(
                "INSERT INTO items (center_id, code, name, department, kind, legal_limit_days, promised_limit_days, "
                "stages, created_at, updated_at) VALUES ($1, $2, '食品经营许可', $3, 'promised', 20, $4, $5::jsonb, "
                "now(), now())", CENTER, code, DEPARTMENT, promised, stages)
        for seq, clerk in enumerate(CLERKS, start=1):
            await conn.execute("INSERT INTO staff (id, display_name, role, centers, department, active, updated_at, "
                               "last_event_sequence) VALUES ($1, $2, 'clerk', $3, $4, true, now(), $5)",
                               clerk, f"办事员{seq}", [CENTER], DEPARTMENT, seq)
    finally:
        await conn.close()


async def counts(db_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        return {
            "cases": await conn.fetchval("SELECT count(*) FROM cases WHERE imported"),
            "history": await conn.fetchval("SELECT count(*) FROM case_history WHERE action = 'import'"),
            "events": await conn.fetchval("SELECT count(*) FROM outbox WHERE type = 'case.accepted'"),
            "imported_cases": await conn.fetchval("SELECT count(*) FROM imported_cases"),
            "overdue": await conn.fetchval("SELECT count(*) FROM cases WHERE overdue_at_import"),
        }
    finally:
        await conn.close()


def main(argv: list[str]) -> int:
    rows = int(argv[0]) if argv else int(os.environ.get("CASES_IMPORT_BENCH_ROWS", "100000"))
    with tempfile.TemporaryDirectory(prefix="cases-import-bench-") as tmp:
        work = Path(tmp)
        pg = EmbeddedPostgres(work / "pg", free_port(), fast_unsafe=True)
        pg.start()
        try:
            db_url = pg.url("bench_cases_import")
            asyncio.run(ensure_database(db_url))
            upgrade("cases", db_url)
            asyncio.run(seed(db_url))
            now = clock.now()  # the real clock, as the CLI it starts reads it
            path = work / "open-cases.csv"
            began = perf_counter()
            make_csv(path, rows, now)
            print(f"file: {rows} rows, {path.stat().st_size / 1e6:.1f} MB, written in {perf_counter() - began:.1f} s")
            env = {**os.environ, **devsecrets.generate(), "CASES_DATABASE_URL": db_url, "HALL_LOG_LEVEL": "WARNING"}
            began = perf_counter()
            done = subprocess.run([sys.executable, "-m", "services.cases.intake.cli", "import", str(path),
                                   "--center", CENTER, "--actor", "bench"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  text=True)
            seconds = perf_counter() - began
            print(done.stdout.strip())
            if done.returncode != 0:
                print(f"FAILED: the CLI exited with {done.returncode}")
                return 1
            found = asyncio.run(counts(db_url))
        finally:
            pg.destroy()
    print(f"import of {rows} cases: {seconds:.1f} s, {rows / seconds:.0f} rows/s "
          f"({found['overdue']} overdue at import)")
    wrong = {k: v for k, v in found.items() if k != "overdue" and v != rows}
    if wrong:
        print(f"FAILED: counts off: {wrong} (want {rows} each)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
