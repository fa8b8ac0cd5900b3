"""Metric names follow Prometheus's conventions (`promtool check metrics`: `_total` on counters, base units,
no unit in a gauge's name that is not a base one) and labels stay bounded: no ticket, case, user or person
in a label, so a busy hall adds no series. Every family the processes register is in the README's table."""

from __future__ import annotations

import importlib
import subprocess

from prometheus_client import REGISTRY, generate_latest

from shared.devinfra.prometheus import PROMTOOL
from tests.observability.test_live import documented_families

PROCESSES = ("services.queue.main", "services.cases.main", "services.monitor.main", "services.notify.main",
             "services.identity.main", "services.terminals.main", "services.queue.worker", "services.cases.worker",
             "services.monitor.worker", "services.notify.worker", "services.identity.worker")
# a label named like one of these would take a value per ticket, case or person
UNBOUNDED = {"id", "ticket", "ticket_id", "number", "case", "case_no", "user", "user_id", "clerk", "clerk_id",
             "applicant", "phone", "id_number", "name", "lookup_code", "email", "address", "correlation_id"}


def _ours() -> list:
    for module in PROCESSES:
        importlib.import_module(module)
    return [f for f in REGISTRY.collect() if f.name.startswith(("hall_", "http_"))]


def _lint(exposition: bytes) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL.exists(), f"{PROMTOOL} is missing: run `make prometheus`"
    return subprocess.run([str(PROMTOOL), "check", "metrics"], input=exposition.decode(), capture_output=True,
                          text=True, timeout=60)


def test_every_family_passes_promtools_naming_lint() -> None:
    _ours()
    linted = _lint(generate_latest(REGISTRY))
    assert linted.returncode == 0 and not (linted.stdout + linted.stderr).strip(), linted.stdout + linted.stderr


def test_the_lint_refuses_a_name_against_the_conventions() -> None:
    bad = b"# HELP hall_wait_minutes w\n# TYPE hall_wait_minutes gauge\nhall_wait_minutes 3\n"
    linted = _lint(bad)
    assert linted.returncode != 0 and "hall_wait_minutes" in linted.stdout + linted.stderr


def test_labels_are_bounded_and_every_family_is_described_and_documented() -> None:
    families = _ours()
    assert len(families) >= 55
    for family in families:
        assert family.documentation.strip(), family.name
        labels = {label for sample in family.samples for label in sample.labels}
        labels |= set(getattr(REGISTRY._names_to_collectors.get(family.name), "_labelnames", ()))
        assert not labels & UNBOUNDED, (family.name, labels & UNBOUNDED)
    documented = {name.removesuffix("_total") for name in documented_families()}
    missing = {family.name for family in families} - documented
    assert not missing, f"registered but not in the README's table: {sorted(missing)}"
