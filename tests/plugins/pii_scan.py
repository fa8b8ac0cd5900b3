"""The suite's personal-data scan of notify's rows (issue 25): every delivery row, delivery attempt and feed
event the suite leaves in notify's database is checked for an ID card or mobile number in clear, and the run
fails on one found, each reported by table, row and column with the number masked; it fails as well if the
scan read fewer delivery rows or feed events than the suite produced.

When the rows are read: `tests/conftest.py`'s `ServiceDatabase.before_emptied` hooks, which a database runs
before each `reset()` truncates its tables (so the rows the previous tests left) and before the session drops
it (what the last test left). A hook list there rather than a patch of `reset` from here: the two places that
empty a database say so where they do it, and a third one added later can call the same hooks.

What is read: every row of every table of notify's database (alembic_version aside): `deliveries` (body,
subject, address_masked, params, last_error, ...), `delivery_attempts` (error, provider_id), the `outbox`
(a feed event is a `delivery.feed_posted` row; its text is in its envelope's data), and the read copies and
recipients, which hold only masked and sealed forms. Each value, and each string and number inside a JSON
value, is matched with the log scan's patterns (tests/plugins/secret_scan.py): a number counts only standing
alone, so the hex of a keyed hash and the base64 of a sealed value (`shared.pii.seal`) are not findings,
where `shared.pii.find_personal_data` (digits only around) would flag a digit run inside a digest.

What the suite produced: the deliveries notify's planner inserted in this process, read at session end from
`hall_notify_deliveries_planned_total` in prometheus_client's REGISTRY (incremented per inserted row, at
commit), and the feed events among them (its `channel="feed"` samples: each feed delivery is posted as one
`delivery.feed_posted` outbox row in the same transaction). Processes the tests start (a worker, a
dispatcher) add rows this process does not count, so the rule is scanned ≥ produced; less means rows were
emptied unscanned: a way of emptying notify's database that runs no hook, or a database made some other way.
Each pytest process has its own databases, counters and scan, so parallel runs check themselves.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from tests.plugins.secret_scan import PATTERNS as LOG_PATTERNS
from tests.plugins.secret_scan import _count, mask

SERVICES = ("notify",)  # whose databases are scanned
PATTERNS: dict[str, re.Pattern[str]] = {kind: LOG_PATTERNS[kind] for kind in ("ID card number", "mobile number")}
PLANNED_METRIC = "hall_notify_deliveries_planned"  # services.notify.metrics.PLANNED, its family name
FEED_EVENT = "delivery.feed_posted"
MAX_SHOWN = 50  # findings shown in the report
EXCERPT = 160  # characters of a value shown around its first masked number

_TABLES = """
    SELECT c.relname AS name,
           coalesce(array_agg(a.attname ORDER BY k.ord) FILTER (WHERE a.attname IS NOT NULL), '{}') AS key
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
    LEFT JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
    LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'alembic_version'
    GROUP BY c.relname ORDER BY c.relname
"""


def spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every ID card and mobile number in clear in `text`, overlapping ones merged."""
    found = sorted(((m.start(), m.end(), kind) for kind, pattern in PATTERNS.items() for m in pattern.finditer(text)),
                   key=lambda s: (s[0], -s[1]))
    merged: list[tuple[int, int, str]] = []
    for start, end, kind in found:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]), merged[-1][2])
        else:
            merged.append((start, end, kind))
    return merged


def masked(text: str, found: list[tuple[int, int, str]] | None = None) -> str:
    """`text` with each number in clear replaced by secret_scan's mask (its first 3 characters and length)."""
    found = spans(text) if found is None else found
    for start, end, kind in reversed(found):
        text = text[:start] + mask(kind, text[start:end]) + text[end:]
    return text


def _excerpt(text: str) -> str:
    if len(text) <= EXCERPT:
        return text
    start = max(0, text.find("[masked ") - EXCERPT // 3)
    return ("…" if start else "") + text[start:start + EXCERPT] + "…"


def _leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, text) of every string and integer in a JSON value, dict keys included (`params.document.data`)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield path, str(key)
            yield from _leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value
    elif isinstance(value, int) and not isinstance(value, bool):
        yield path, str(value)


@dataclass
class Finding:
    table: str
    row: str  # its primary key, masked
    column: str  # a column, or a path inside a JSON column, masked
    kinds: list[str]
    value: str  # masked excerpt
    source: str  # which tests wrote it, when it was read

    def lines(self) -> list[str]:
        return [f"- {self.table} {self.row}, column {self.column}: {', '.join(self.kinds)} ({self.source})",
                f"    {self.value}"]


@dataclass(frozen=True)
class Produced:
    """What the suite made in this process: delivery rows the planner inserted, and feed events among them."""

    deliveries: int = 0
    feed_events: int = 0


def produced_here(registry: CollectorRegistry = REGISTRY) -> Produced:
    """The planner's counter as this process holds it (zero if notify's metrics were never imported)."""
    deliveries = feed = 0.0
    for family in registry.collect():
        if family.name != PLANNED_METRIC:
            continue
        for sample in family.samples:
            if sample.name == f"{PLANNED_METRIC}_total":
                deliveries += sample.value
                if sample.labels.get("channel") == "feed":
                    feed += sample.value
    return Produced(int(deliveries), int(feed))


@dataclass
class Scanner:
    """Reads a database's rows, finds numbers in clear and counts what it read."""

    rows: Counter[str] = field(default_factory=Counter)  # table -> rows scanned
    feed_events: int = 0
    findings: list[Finding] = field(default_factory=list)
    leaks: int = 0  # values with a number in clear (findings holds the first MAX_SHOWN)
    errors: list[str] = field(default_factory=list)
    scans: int = 0
    seconds: float = 0.0
    context: str = "before the first test"  # when a scan happens
    written_since: str = "the session's start"  # the last reset before it: the rows are the tests' since
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # --- one row ----------------------------------------------------------------------------------------

    def scan_row(self, table: str, row: Mapping[str, Any], key: list[str] | tuple[str, ...] = ("id",)) -> int:
        """Check every column of one row (a JSON object, as `to_jsonb` gives it); the values found, counted."""
        with self._lock:
            self.rows[table] += 1
            if table == "outbox" and row.get("type") == FEED_EVENT:
                self.feed_events += 1
        named = ", ".join(f"{column}={row.get(column)}" for column in key if column in row) or "(no primary key)"
        found = 0
        for column, value in row.items():
            for path, text in _leaves(value, column):
                hits = spans(text)
                if not hits:
                    continue
                found += 1
                with self._lock:
                    self.leaks += 1
                    if len(self.findings) < MAX_SHOWN:
                        self.findings.append(Finding(table, masked(named), masked(path),
                                                     sorted({kind for _, _, kind in hits}),
                                                     _excerpt(masked(text, hits)), self.source))
        return found

    # --- a database -------------------------------------------------------------------------------------

    async def scan_database(self, dsn: str) -> None:
        """Every row of every table of the database at `dsn` (alembic_version aside)."""
        started = time.perf_counter()
        conn = await asyncpg.connect(dsn)
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                for table in await conn.fetch(_TABLES):
                    name = table["name"].replace('"', '""')
                    async for record in conn.cursor(f'SELECT to_jsonb(t)::text AS row FROM "{name}" AS t'):
                        self.scan_row(table["name"], json.loads(record["row"]), list(table["key"]))
        finally:
            await conn.close()
            with self._lock:
                self.scans += 1
                self.seconds += time.perf_counter() - started

    async def before_emptied(self, db: Any) -> None:
        """The conftest hook: a service database is about to be truncated or dropped."""
        if db.service not in SERVICES:
            return
        try:
            await self.scan_database(db.dsn)
        except Exception as error:  # noqa: BLE001 - the test goes on; the run fails at its end, naming this
            with self._lock:
                self.errors.append(f"{db.service}'s database could not be scanned ({self.source}): "
                                   f"{type(error).__name__}: {masked(str(error))}")
        self.written_since = f"the reset {self.context}"

    @property
    def source(self) -> str:
        return f"written since {self.written_since}, read {self.context}"

    # --- the verdict ------------------------------------------------------------------------------------

    @property
    def deliveries(self) -> int:
        return self.rows["deliveries"]

    def shortfalls(self, produced: Produced) -> list[str]:
        """Why the scan cannot vouch for the suite's rows: it read fewer than were produced, or a scan failed."""
        problems = list(self.errors)
        missing = "rows were truncated or dropped unscanned: a way of emptying notify's database runs no " \
                  "ServiceDatabase.before_emptied hook (tests/conftest.py), or a test made one some other way"
        if self.deliveries < produced.deliveries:
            problems.append(f"notify's planner inserted {produced.deliveries} delivery rows in this process but "
                            f"the scan read {self.deliveries}: {missing}")
        if self.feed_events < produced.feed_events:
            problems.append(f"notify's planner posted {produced.feed_events} feed events ({FEED_EVENT}) in this "
                            f"process but the scan read {self.feed_events}: {missing}")
        return problems

    def failed(self, produced: Produced) -> bool:
        return bool(self.leaks or self.shortfalls(produced))

    def report(self, produced: Produced) -> list[str]:
        others = sum(self.rows.values()) - self.deliveries - self.rows["delivery_attempts"] - self.feed_events
        scanned = (f"{_count(self.deliveries, 'delivery row')} (≥ {produced.deliveries} planned here), "
                   f"{_count(self.rows['delivery_attempts'], 'attempt')}, {_count(self.feed_events, 'feed event')} "
                   f"(≥ {produced.feed_events} posted here) and {_count(others, 'other row')} of notify's tables "
                   f"scanned in {_count(self.scans, 'database scan')}, {self.seconds:.2f} s")
        problems = self.shortfalls(produced)
        if not self.leaks and not problems:
            return [f"{scanned}: no phone or ID number in clear"]
        lines = [f"{scanned}; the run fails:"]
        if self.leaks:
            lines.append(f"{_count(self.leaks, 'value')} with a phone or ID number in clear:")
            for finding in self.findings:
                lines += finding.lines()
            if self.leaks > len(self.findings):
                lines.append(f"- and {self.leaks - len(self.findings)} more")
        lines += [f"- {problem}" for problem in problems]
        return lines


SCANNER = Scanner()


# --- the hooks ----------------------------------------------------------------------------------------------

_undo: list[Any] = []


def pytest_configure(config: pytest.Config) -> None:
    # the conftest as pytest loaded it (not imported again: another module would hold other hooks); absent when
    # a run has no such conftest (the plugin's own pytester runs), and then there is nothing to scan
    conftest = sys.modules.get("tests.conftest")
    hooks = getattr(getattr(conftest, "ServiceDatabase", None), "before_emptied", None)
    if isinstance(hooks, list):
        hooks.append(SCANNER.before_emptied)
        _undo.append(lambda: hooks.remove(SCANNER.before_emptied))


def pytest_unconfigure(config: pytest.Config) -> None:
    while _undo:
        _undo.pop()()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    SCANNER.context = f"at {item.nodeid}"
    try:
        return (yield)
    finally:
        SCANNER.context = f"after {item.nodeid}"


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if nextitem is None:  # the session's fixtures go with the last test: the databases are dropped
        SCANNER.context = "at the session's end"


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # trylast: after the runner's own sessionfinish, which tears down what is left (the databases' drop and its
    # scan) when a run stopped early (-x)
    if SCANNER.failed(produced_here()) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    produced = produced_here()
    lines = SCANNER.report(produced)
    if SCANNER.failed(produced):
        terminalreporter.section("pii scan", sep="=", red=True, bold=True)
        for line in lines:
            terminalreporter.write_line(line)
    else:
        terminalreporter.write_line(f"pii scan: {lines[0]}")
