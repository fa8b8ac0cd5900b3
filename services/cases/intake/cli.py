"""The import of open cases for a centre going live, from the command line, against the service's database:

    python -m services.cases.intake.cli import FILE --center 320102 [--format csv|json] [--charset gb18030]

The same checks and the same single transaction as POST /import: a file with one bad row imports nothing,
and every problem is printed (row, field, reason); exit status 1. A progress bar on stderr follows the
checking, the sealing and the writing; the summary goes to stdout. Settings come from the environment
(CASES_DATABASE_URL and the HALL_ secrets, as the service reads them)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import getpass
import sys
import time
from pathlib import Path
from typing import Literal, TextIO

from services.cases import registry
from services.cases.config import get_settings
from services.cases.intake import importer
from shared import clock
from shared.calendar.store import load_calendar
from shared.db import make_engine, make_sessionmaker
from shared.pii import PersonalData

PHASES = {"check": "checking", "seal": "sealing ", "write": "writing "}


class ProgressBar:
    """A one-line bar redrawn in place on a terminal (one line per phase otherwise), at most ten times a
    second."""

    def __init__(self, out: TextIO = sys.stderr, width: int = 30) -> None:
        self.out, self.width = out, width
        self.phase: str | None = None
        self.started = self.drawn = 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase != self.phase:
            self.finish()
            self.phase, self.started = phase, now
        elif done < total and now - self.drawn < 0.1:
            return
        self.drawn = now
        filled = self.width * done // max(total, 1)
        rate = done / max(now - self.started, 1e-6)
        line = (f"{PHASES.get(phase, phase)} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{done:>7}/{total} {rate:>8.0f}/s")
        if self.out.isatty():
            self.out.write("\r" + line)
        elif done == total:
            self.out.write(line + "\n")
        self.out.flush()

    def finish(self) -> None:
        if self.phase is not None and self.out.isatty():
            self.out.write("\n")
            self.out.flush()
        self.phase = None


async def run_import(path: Path, center: str, fmt: Literal["csv", "json"], charset: str, actor: str,
                     progress: importer.Progress | None) -> int:
    raw = await asyncio.to_thread(path.read_bytes)
    settings = get_settings()
    hall = settings.hall
    clock.set_clock(hall.build_clock())
    pii = PersonalData(base64.b64decode(hall.pii_hash_key.get_secret_value()),
                       base64.b64decode(hall.pii_encryption_key.get_secret_value()), hall.notify_seal_public_key)
    engine = make_engine(settings.database_url, pool_size=1, max_overflow=0, application_name="cases-import")
    try:
        async with make_sessionmaker(engine)() as session:
            async with session.begin():
                ctx = registry.Context(pii=pii, calendar=await load_calendar(session))
                try:
                    import_id, done = await importer.import_cases(
                        session, ctx, importer.Actor(actor, "cli"), center, raw, fmt, via="cli",
                        charset=charset, max_rows=settings.import_max_rows, progress=progress)
                except importer.ImportRejected as rejected:
                    if isinstance(progress, ProgressBar):
                        progress.finish()
                    print(f"nothing imported: {rejected.detail}", file=sys.stderr)
                    for e in rejected.errors:
                        print(f"row {e.row}, {e.field}: {e.reason} ({e.code})", file=sys.stderr)
                    return 1
    finally:
        await engine.dispose()
    if isinstance(progress, ProgressBar):
        progress.finish()
    overdue = sum(p.case.overdue_at_import for p in done)
    print(f"import {import_id}: {len(done)} cases of centre {center} imported, {overdue} already overdue")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.cases.intake.cli", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    imp = commands.add_parser("import", help="import open cases from a previous system (CSV or JSON)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--center", required=True, help="the centre going live")
    imp.add_argument("--format", choices=("csv", "json"), help="default: from the file's extension")
    imp.add_argument("--charset", default="utf-8", help="the CSV's encoding (utf-8; an Excel export: gb18030)")
    imp.add_argument("--actor", default=f"cli:{getpass.getuser()}"[:32], help="who imports, for the audit trail")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    fmt: Literal["csv", "json"] = args.format or ("json" if args.file.suffix.lower() == ".json" else "csv")
    progress = None if args.quiet else ProgressBar()
    return asyncio.run(run_import(args.file, args.center, fmt, args.charset, args.actor, progress))


if __name__ == "__main__":
    sys.exit(main())
