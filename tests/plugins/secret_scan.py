"""The suite's secret scan (issue 18): every log line a run produces is checked for secrets in clear, and one
found fails the run, with each offending line reported masked.

Log lines scanned:
- every log record that reaches the root logger, where a service's one JSON handler sits (uvicorn's records
  too, which `shared.logging.configure_logging` routes there), formatted as the services write it
  (`JsonFormatter`), extras and tracebacks included;
- the log files of the processes the suite starts: the embedded broker's, PostgreSQL's and Envoy's when they
  stop (their fixtures delete some right after); this run's `var/test-*-<pid>*` files and directories before
  each test's teardown (a `make run` launch of tests/e2e logs under var/test-e2e-<pid>-<test>/ and its
  fixture deletes it); every `*.log` under a test's tmp_path after its teardown (relay and worker processes).

Secrets: JWTs, device keys, argon2 hashes, PEM private keys, ID card and mobile numbers in clear, and every
value registered: the secrets `shared.devsecrets.generate()` returns (public keys excepted), each password
hashed or checked and each refresh token and device key issued by `services.identity.credentials`, the
secrets a launched hall keeps in its var/secrets/*.json, and whatever a test passes to `remember()`.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.logging import JsonFormatter

ROOT = Path(__file__).resolve().parents[2]
VAR = ROOT / "var"
MIN_REGISTERED = 8  # a shorter registered value could not be told from ordinary text
MAX_SHOWN = 50  # distinct offending lines shown in the report

# A number in clear stands alone: no letter, digit or decimal point before it (so no run inside a hex id, a
# digest or a float), unless the character before is a JSON escape (`\n`) of a formatted line.
_START = r"(?:(?<![0-9A-Za-z.])|(?<=\\[nrt]))"
_END = r"(?![0-9A-Za-z])(?!\.\d)"
_URLSAFE = "A-Za-z0-9_-"

PATTERNS: dict[str, re.Pattern[str]] = {
    "jwt": re.compile(rf"(?<![{_URLSAFE}])eyJ[{_URLSAFE}]+\.[{_URLSAFE}]+\.[{_URLSAFE}]*"),
    # services.identity.credentials.new_device_key: `hk_` and token_urlsafe(32)
    "device key": re.compile(rf"(?<![{_URLSAFE}])hk_[{_URLSAFE}]{{43}}(?![{_URLSAFE}])"),
    "argon2 hash": re.compile(r"\$argon2(?:id|i|d)\$[^\s\"']*"),
    "private key": re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"
                              r"(?:(?:(?!-----).)*-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)?"),
    # 6-digit region, a birth date of 18xx-20xx, 3 digits and a check character (GB 11643)
    "ID card number": re.compile(_START + r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
                                          r"\d{3}[\dXx]" + _END),
    "mobile number": re.compile(_START + r"(?:\+?86[- ]?)?1[3-9]\d{9}" + _END),
}


def _kept(kind: str, value: str) -> str:
    """What a mask shows of a value: only what every value of its kind starts with, or a phone's carrier
    and an ID's province; nothing of a registered value."""
    if kind in ("jwt", "device key"):
        return value[:3]
    if kind == "argon2 hash":
        return value[:value.find("$", 1) + 1]
    if kind == "private key":
        return value[:value.find("-----", 5) + 5]
    if kind in ("ID card number", "mobile number"):
        return value[:3]
    return ""


def mask(kind: str, value: str) -> str:
    return f"[masked {kind} {_kept(kind, value)}…, {len(value)} chars]"


@dataclass
class Finding:
    source: str
    line: str  # masked
    kinds: list[str]
    count: int = 1


@dataclass
class _FileState:
    inode: int
    offset: int = 0
    lines: int = 0


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _excerpt(line: str, width: int = 600) -> str:
    if len(line) <= width:
        return line
    first = max(line.find("[masked "), 0)
    start = max(0, first - width // 3)
    return ("…" if start else "") + line[start:start + width] + "…"


class Scanner:
    """Finds secrets in lines and remembers the offending ones, masked."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._values: dict[str, str] = {}  # a registered value (or its form in a JSON line) -> its label
        self._registered: re.Pattern[str] | None = None
        self._files: dict[Path, _FileState] = {}
        self._secret_files: dict[Path, float] = {}
        self._formatter = JsonFormatter("pytest")
        self.findings: dict[str, Finding] = {}
        self.leaks = 0
        self.records = 0
        self.file_lines = 0
        self.seconds = 0.0
        self.context = "before the first test"

    # --- what is a secret -------------------------------------------------------------------------------

    def remember(self, value: Any, label: str = "registered secret") -> None:
        """Register a secret value: any log line holding it fails the run."""
        if not isinstance(value, str) or len(value) < MIN_REGISTERED:
            return
        forms = {value, json.dumps(value, ensure_ascii=False)[1:-1]}
        # a PEM or other multi-line value: each body line on its own, as a raw log file would split it
        forms |= {part.strip() for part in value.splitlines()
                  if len(part.strip()) >= 16 and not part.strip().startswith("-----")}
        with self._lock:
            new = {form: label for form in forms if len(form) >= MIN_REGISTERED and form not in self._values}
            if new:
                self._values.update(new)
                self._registered = None

    def _registered_pattern(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._registered is None and self._values:
                alternatives = sorted(self._values, key=len, reverse=True)
                self._registered = re.compile("|".join(map(re.escape, alternatives)))
            return self._registered

    def matches(self, line: str) -> list[tuple[int, int, str]]:
        """(start, end, kind) of every secret in `line`, overlapping ones merged."""
        spans = [(m.start(), m.end(), kind) for kind, pattern in PATTERNS.items() for m in pattern.finditer(line)]
        registered = self._registered_pattern()
        if registered is not None:
            spans += [(m.start(), m.end(), self._values.get(m.group(), "registered secret"))
                      for m in registered.finditer(line)]
        merged: list[tuple[int, int, str]] = []
        for start, end, kind in sorted(spans, key=lambda s: (s[0], -s[1])):
            if merged and start < merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]), merged[-1][2])
            else:
                merged.append((start, end, kind))
        return merged

    def masked(self, line: str, spans: list[tuple[int, int, str]] | None = None) -> str:
        spans = self.matches(line) if spans is None else spans
        for start, end, kind in reversed(spans):
            line = line[:start] + mask(kind, line[start:end]) + line[end:]
        return line

    # --- scanning ---------------------------------------------------------------------------------------

    def scan_line(self, source: str, line: str) -> bool:
        """Check one log line; True (and the line remembered, masked) if it holds a secret."""
        spans = self.matches(line)
        if not spans:
            return False
        shown = _excerpt(self.masked(line, spans))
        with self._lock:
            self.leaks += 1
            if shown in self.findings:
                self.findings[shown].count += 1
            elif len(self.findings) < MAX_SHOWN:
                self.findings[shown] = Finding(source, shown, sorted({kind for _, _, kind in spans}))
        return True

    def scan_record(self, record: logging.LogRecord) -> bool:
        started = time.perf_counter()
        try:
            line = self._formatter.format(record)
        except Exception:  # noqa: BLE001 - a record its handlers cannot format either: scan what it holds
            line = f"{record.msg!r} {record.args!r} {record.__dict__!r}"
        self.records += 1
        try:
            return self.scan_line(f"log record of {record.name!r} during {self.context}", line)
        finally:
            self.seconds += time.perf_counter() - started

    def scan_file(self, path: Path, *, final: bool = False) -> None:
        """The lines added to `path` since it was last scanned; a last line without its newline waits for it,
        unless `final` (its writer has stopped)."""
        started = time.perf_counter()
        with self._lock:
            try:
                self._scan_file(path, final)
            finally:
                self.seconds += time.perf_counter() - started

    def _scan_file(self, path: Path, final: bool) -> None:
        try:
            stat = path.stat()
            state = self._files.get(path)
            if state is None or state.inode != stat.st_ino or stat.st_size < state.offset:
                state = self._files[path] = _FileState(stat.st_ino)  # new, or replaced since
            if stat.st_size == state.offset:
                return
            with path.open("rb") as file:
                file.seek(state.offset)
                data = file.read()
        except OSError:
            return
        if not final:
            data = data[:data.rfind(b"\n") + 1]
        state.offset += len(data)
        for raw in data.splitlines():
            state.lines += 1
            self.file_lines += 1
            self.scan_line(f"{_relative(path)}:{state.lines}", raw.decode("utf-8", errors="replace"))

    def remember_secret_files(self, directory: Path) -> None:
        """The secrets a launched hall generated for itself (var/secrets/dev.json, demo-admin.json)."""
        for path in directory.glob("secrets/*.json"):
            try:
                modified = path.stat().st_mtime
                if self._secret_files.get(path) == modified:
                    continue
                stored = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            self._secret_files[path] = modified
            if isinstance(stored, dict):
                for key, value in stored.items():
                    if "PUBLIC" not in key.upper() and key != "username":
                        self.remember(value, f"secret {key} of {_relative(path)}")

    def scan_run_artifacts(self, *, final: bool = False) -> None:
        """This run's files and directories under var/: `test-<what>-<pid>...` (tests/conftest.py RUN_ID)."""
        if not VAR.is_dir():
            return
        mine = re.compile(rf"test-[A-Za-z0-9]+-{os.getpid()}(?:[-.]|$)")
        for entry in sorted(VAR.iterdir()):
            if not mine.match(entry.name):
                continue
            if entry.is_dir():
                self.remember_secret_files(entry)
                for path in sorted({*entry.glob("*.log"), *entry.glob("*/*.log")}):
                    self.scan_file(path, final=final)
            elif entry.suffix == ".log":
                self.scan_file(entry, final=final)

    def scan_tree(self, directory: Path) -> None:
        for path in sorted(directory.rglob("*.log")):
            self.scan_file(path, final=True)

    # --- the report -------------------------------------------------------------------------------------

    def report(self) -> list[str]:
        scanned = (f"{_count(self.records, 'log record')} and {_count(self.file_lines, 'line')} of "
                   f"{_count(len(self._files), 'log file')} scanned in {self.seconds:.2f} s")
        if not self.leaks:
            return [f"{scanned}: no secret in clear"]
        lines = [f"{_count(self.leaks, 'log line')} with a secret in clear ({scanned}); the run fails:"]
        for finding in self.findings.values():
            repeated = f" ({finding.count} such lines)" if finding.count > 1 else ""
            lines += [f"- {finding.source}: {', '.join(finding.kinds)}{repeated}", f"    {finding.line}"]
        hidden = self.leaks - sum(f.count for f in self.findings.values())
        if hidden:
            lines.append(f"- and {_count(hidden, 'more line')}")
        return lines


SCANNER = Scanner()


def remember(value: Any, label: str = "registered secret") -> None:
    """Register a secret a test made: the run fails if any log line holds it."""
    SCANNER.remember(value, label)


# --- where the suite's secrets and log lines come from ------------------------------------------------------


def reaches_root(logger: logging.Logger) -> bool:
    """Whether a record handled by `logger` reaches the root logger's handlers (the services' JSON handler)."""
    current: logging.Logger | None = logger
    while current is not None and current.parent is not None:
        if not current.propagate:
            return False
        current = current.parent
    return True


def _scanning_call_handlers(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
        # uvicorn's own propagate=False loggers are a test-run artefact: configure_logging routes them to root
        if reaches_root(self) or record.name.partition(".")[0] == "uvicorn":
            SCANNER.scan_record(record)
        original(self, record)

    return call_handlers


def _remembering_result(label: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def made(*args: Any, **kwargs: Any) -> Any:
            value = original(*args, **kwargs)
            SCANNER.remember(value, label)
            return value

        return made

    return wrap


def _remembering_password(position: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def given(*args: Any, **kwargs: Any) -> Any:
            SCANNER.remember(kwargs.get("password", args[position] if len(args) > position else None), "password")
            return original(*args, **kwargs)

        return given

    return wrap


def _remembering_devsecrets(original: Callable[[], dict[str, str]]) -> Callable[[], dict[str, str]]:
    @functools.wraps(original)
    def generate() -> dict[str, str]:
        values = original()
        for key, value in values.items():
            if "PUBLIC" not in key:
                SCANNER.remember(value, f"development secret {key}")
        return values

    return generate


def _scanning_after_stop(log_of: Callable[[Any], Path | None]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def stop(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return original(self, *args, **kwargs)
            finally:
                path = log_of(self)
                if path is not None:
                    SCANNER.scan_file(Path(path), final=True)

        return stop

    return wrap


# (module, attribute path, wrapper): each wrapped for the session and put back at its end
_WRAPS: list[tuple[str, str, Callable[[Any], Any]]] = [
    ("logging", "Logger.callHandlers", _scanning_call_handlers),
    ("shared.devsecrets", "generate", _remembering_devsecrets),
    ("services.identity.credentials", "hash_password", _remembering_password(0)),
    ("services.identity.credentials", "verify_password", _remembering_password(1)),
    ("services.identity.credentials", "new_refresh_token", _remembering_result("refresh token")),
    ("services.identity.credentials", "new_device_key", _remembering_result("device key")),
    ("shared.devinfra.kafka", "EmbeddedKafka.stop", _scanning_after_stop(lambda broker: broker.log_path)),
    ("shared.devinfra.envoy", "EmbeddedEnvoy.stop", _scanning_after_stop(lambda gateway: gateway.log_path)),
    ("shared.devinfra.postgres", "EmbeddedPostgres.stop", _scanning_after_stop(lambda pg: pg.data_dir / "server.log")),
]
_undo: list[Callable[[], None]] = []


def pytest_configure(config: pytest.Config) -> None:
    for module_name, path, wrapper in _WRAPS:
        owner: Any = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        original = owner.__dict__[name]
        setattr(owner, name, wrapper(original))
        _undo.append(functools.partial(setattr, owner, name, original))


def pytest_unconfigure(config: pytest.Config) -> None:
    while _undo:
        _undo.pop()()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    SCANNER.context = item.nodeid
    try:
        return (yield)
    finally:
        SCANNER.context = f"after {item.nodeid}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    SCANNER.scan_run_artifacts()  # before the fixtures go: a launched hall's fixture deletes its var/ directory
    tmp_path = getattr(item, "funcargs", {}).get("tmp_path")
    try:
        return (yield)
    finally:
        if isinstance(tmp_path, Path):  # after: the processes a fixture stops have written their last lines
            SCANNER.scan_tree(tmp_path)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    SCANNER.scan_run_artifacts(final=True)
    if SCANNER.leaks and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = SCANNER.report()
    if SCANNER.leaks:
        terminalreporter.section("secret scan", sep="=", red=True, bold=True)
        for line in lines:
            terminalreporter.write_line(line)
    else:
        terminalreporter.write_line(f"secret scan: {lines[0]}")
