"""The supervisor of `make run`: starts each child from its spec, restarts one that exits with exponential
backoff (one line per exit and per restart) while the others keep serving, and stops them all, process
groups included, on the way out.

Single-threaded on purpose: the launcher's signal handler only calls `request_stop()`, and every wait here
is a short sleep that checks it, so Ctrl-C during a backoff wait or a restart still stops everything.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shared.clock import monotonic
from shared.waiting import Backoff


class Process(Protocol):
    """What a child's start returns: a `subprocess.Popen`, or a stand-in for a server that detaches itself.

    `poll()` is None while it runs, then what to print as its exit status.
    """

    pid: int

    def poll(self) -> int | str | None: ...


@dataclass(frozen=True)
class ChildSpec:
    """One child of the launcher.

    By default `argv` is spawned with `env`, its output appended to `log`, in a session of its own (a
    terminal's Ctrl-C reaches the launcher only, which then stops the children). An embedded server that
    starts itself gives `start` (returns its process; raises if it did not come up) and `stop` instead.
    `after_start` runs after every start (e.g. create the broker's topics); if it raises, the start failed.
    """

    name: str
    argv: Sequence[str] = ()
    env: Mapping[str, str] | None = None
    log: Path | None = None
    start: Callable[[], Process] | None = None
    stop: Callable[[], None] | None = None
    after_start: Callable[[], None] | None = None


@dataclass
class _Child:
    spec: ChildSpec
    backoff: Backoff
    process: Process | None = None
    started_at: float = 0.0
    restart_at: float = 0.0  # while `process` is None: when to try again


class Supervisor:
    """Restart delays go `first_delay`, doubling, up to `max_delay`; a child that stayed up `stable_after`
    seconds starts again from `first_delay`."""

    def __init__(self, *, first_delay: float = 0.5, max_delay: float = 15.0, stable_after: float = 30.0,
                 stop_timeout: float = 15.0, say: Callable[[str], None] | None = None) -> None:
        self.first_delay, self.max_delay = first_delay, max_delay
        self.stable_after = stable_after
        self.stop_timeout = stop_timeout
        self.say = say or (lambda line: print(line, flush=True))
        self.stopping = False
        self._children: list[_Child] = []

    def request_stop(self, *_: object) -> None:
        """Ask `run()` to return (usable as a signal handler: it only sets a flag)."""
        self.stopping = True

    def start(self, spec: ChildSpec) -> Process:
        """Start a child for the first time and supervise it from now on; raises if it does not come up."""
        child = _Child(spec, Backoff(self.first_delay, self.max_delay))
        self._children.append(child)  # before launching: stop_all() cleans up even a half-started one
        self._launch(child)
        assert child.process is not None
        return child.process

    def run(self, poll_interval: float = 0.2) -> None:
        """Watch the children, restarting those that exit, until `request_stop()`."""
        while not self.stopping:
            self.check()
            time.sleep(poll_interval)

    def check(self) -> None:
        """One round: notice exits, schedule restarts, restart those whose delay is over."""
        for child in self._children:
            if self.stopping:
                return
            name, where = child.spec.name, _log_hint(child.spec)
            if child.process is not None:
                status = child.process.poll()
                if status is None:
                    continue
                child.process = None
                self._halt(child)  # whatever the child left in its process group goes with it
                delay = self._next_delay(child)
                self.say(f"{name} exited with {status}; restarting in {delay:g} s{where}")
            elif monotonic() >= child.restart_at:
                try:
                    self._launch(child)
                except Exception as exc:
                    delay = self._next_delay(child)
                    self.say(f"{name} did not restart ({type(exc).__name__}: {exc}); "
                             f"retrying in {delay:g} s{where}")
                else:
                    assert child.process is not None
                    self.say(f"{name} restarted (pid {child.process.pid})")

    def stop_all(self) -> None:
        """Stop every child: the spawned ones together (SIGTERM to the group, SIGKILL after `stop_timeout`),
        then the self-starting servers in reverse start order (the broker before the database)."""
        self.stopping = True
        spawned = [(c, c.process) for c in self._children
                   if c.spec.stop is None and isinstance(c.process, subprocess.Popen)]
        for _, process in spawned:
            _signal_group(process, signal.SIGTERM)
        deadline = monotonic() + self.stop_timeout
        for child, _ in spawned:
            assert isinstance(child.process, subprocess.Popen)
            try:
                child.process.wait(max(0.1, deadline - monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child.process, signal.SIGKILL)
                child.process.wait()
            _signal_group(child.process, signal.SIGKILL)  # a grandchild that outlived its parent
            child.process = None
        for child in reversed(self._children):
            if child.spec.stop is not None:
                try:
                    child.spec.stop()
                except Exception as exc:
                    self.say(f"{child.spec.name} did not stop cleanly: {type(exc).__name__}: {exc}")
                child.process = None

    # --- internals --------------------------------------------------------------------------------

    def _launch(self, child: _Child) -> None:
        spec = child.spec
        try:
            if spec.start is not None:
                child.process = spec.start()
            else:
                out = open(spec.log, "ab") if spec.log else subprocess.DEVNULL  # noqa: SIM115
                try:
                    child.process = subprocess.Popen(list(spec.argv), env=dict(spec.env) if spec.env else None,
                                                     stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
                finally:
                    if not isinstance(out, int):
                        out.close()  # the child holds its own descriptor
            child.started_at = monotonic()
            if spec.after_start is not None:
                spec.after_start()
        except BaseException:
            self._halt(child)
            raise

    def _halt(self, child: _Child) -> None:
        """Make sure nothing of the child runs any more (after it exited, or a start that failed)."""
        process, child.process = child.process, None
        if child.spec.stop is not None:
            with contextlib.suppress(Exception):
                child.spec.stop()
        elif isinstance(process, subprocess.Popen):
            _signal_group(process, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)

    def _next_delay(self, child: _Child) -> float:
        if child.started_at and monotonic() - child.started_at >= self.stable_after:
            child.backoff.reset()
        delay = child.backoff.next()
        child.restart_at = monotonic() + delay
        return delay


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # the child leads its own session, so its pid is its process group's id
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _log_hint(spec: ChildSpec) -> str:
    return f" (see {spec.log})" if spec.log else ""
