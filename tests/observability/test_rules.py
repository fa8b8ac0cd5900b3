"""Prometheus alerting rules (deploy/prometheus): promtool accepts the configuration and the rules and passes
their unit tests (rules.test.yml); every alert has a severity and English and Chinese annotations; every
alert has a unit test where it fires and one where it does not; the alerts the platform promises exist.
promtool comes from `make prometheus` (.tools/prometheus): without it these tests fail, they never skip."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
PROMTOOL = ROOT / ".tools" / "prometheus" / "usr" / "bin" / "promtool"
CJK = re.compile(r"[\u4e00-\u9fff]")

PROMISED = {
    "ServiceDown", "GatewayServiceUnhealthy", "GatewayRateLimiting", "HighErrorRate", "HighLatencyP99",
    "OutboxBacklogGrowing", "ConsumerLag", "DeadLetters", "RelayResends", "CalendarMissingForYear",
    "CalendarScheduleEnding", "NotificationsDead",
    "WaitingLineOverThreshold", "OverdueCasesRising", "VacantWindows", "SatisfactionLow",
}


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((PROMETHEUS / name).read_text(encoding="utf-8"))


def alerts(rules: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]


def untested_alerts(rules: dict[str, Any], tests: dict[str, Any]) -> dict[str, list[str]]:
    """The alerts of `rules` lacking a unit test where they fire, or one where they do not:
    {alert: ["fires" and/or "does not fire"]}."""
    cases = [case for test in tests.get("tests", []) for case in test.get("alert_rule_test", [])]
    fires = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    missing: dict[str, list[str]] = {}
    for name in (rule["alert"] for rule in alerts(rules)):
        lacks = [what for what, seen in (("fires", fires), ("does not fire", quiet)) if name not in seen]
        if lacks:
            missing[name] = lacks
    return missing


@pytest.mark.parametrize("args", [
    ["check", "config", "prometheus.yml"],
    ["check", "rules", "rules.yml"],
    ["test", "rules", "rules.test.yml"],
], ids=" ".join)
def test_promtool(args: list[str]) -> None:
    assert PROMTOOL.is_file(), f"promtool not found at {PROMTOOL}: run `make prometheus`"
    done = subprocess.run([str(PROMTOOL), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"promtool {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


def test_every_alert_has_a_severity_and_both_languages() -> None:
    for rule in alerts(load("rules.yml")):
        name, notes = rule["alert"], rule.get("annotations", {})
        assert rule.get("labels", {}).get("severity") in {"critical", "warning"}, name
        for key in ("summary", "description"):
            assert notes.get(key, "").strip(), f"{name}: no {key}"
            assert notes[key].isascii(), f"{name}: {key} is not plain English: {notes[key]}"
        for key in ("summary_zh", "description_zh"):
            assert notes.get(key, "").strip(), f"{name}: no {key}"
            assert CJK.search(notes[key]), f"{name}: {key} has no Chinese: {notes[key]}"


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    assert untested_alerts(load("rules.yml"), load("rules.test.yml")) == {}


def test_an_alert_without_unit_tests_is_reported() -> None:
    rules = load("rules.yml")
    rules["groups"][0]["rules"].append({"alert": "Untested", "expr": "vector(1)"})
    tests = load("rules.test.yml")
    assert untested_alerts(rules, tests) == {"Untested": ["fires", "does not fire"]}
    # one that only ever fires in its tests lacks the quiet case
    tests["tests"].append({"alert_rule_test": [{"alertname": "Untested", "exp_alerts": [{"exp_labels": {}}]}]})
    assert untested_alerts(rules, tests) == {"Untested": ["does not fire"]}


def test_the_promised_alerts_exist() -> None:
    names = [rule["alert"] for rule in alerts(load("rules.yml"))]
    assert PROMISED <= set(names), f"missing: {sorted(PROMISED - set(names))}"
    assert len(names) == len(set(names)), "an alert name is used twice"
    groups = {group["name"] for group in load("rules.yml")["groups"]}
    assert groups == {"hall-platform", "hall-operations"}
