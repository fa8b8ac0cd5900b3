"""The Grafana dashboards, statically: the committed JSON is what shared/devinfra/grafana.py renders, every
panel queries the provisioned datasource, the expressions use no variable but `$center` and
`$__rate_interval`, promtool parses every one (as a recording rule), and every metric they name is one the
services register."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from shared.devinfra import grafana

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = ROOT / ".tools" / "prometheus" / "usr" / "bin" / "promtool"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
UIDS = {"platform.json": "hall-platform", "hall.json": "hall-operations", "supervision.json": "hall-supervision"}
MODULES = ("services.queue.worker", "services.cases.worker", "services.monitor.worker", "services.notify.worker",
           "services.identity.worker", "services.queue.main", "services.cases.main", "services.monitor.main",
           "services.notify.main", "services.identity.main", "services.terminals.main")
METRIC_TOKEN = re.compile(r"(?<![A-Za-z0-9_:])(?:hall|http)_[a-z_]+")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("_sum", "_count", "_created"), "gauge": ()}


def _dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(DASHBOARDS.glob("*.json"))}


def _exprs() -> list[str]:
    return [target["expr"] for dashboard in _dashboards().values() for panel in dashboard["panels"]
            for target in panel.get("targets", [])]


def _as_evaluated(expr: str) -> str:
    return expr.replace("$center", ".*").replace("$__rate_interval", "1m")


def test_the_committed_dashboards_are_what_the_generator_renders():
    stale = [str(path.relative_to(ROOT)) for path, text in grafana.rendered_files().items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    assert not stale, f"run `python -m shared.devinfra.grafana render`: {stale}"
    assert set(_dashboards()) == set(UIDS)
    assert grafana.main(["check"]) == 0


def test_every_panel_queries_the_provisioned_datasource():
    provisioned = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))["datasources"]
    assert len(provisioned) == 1 and provisioned[0]["isDefault"] and provisioned[0]["type"] == "prometheus"
    uid = provisioned[0]["uid"]
    dashboards = _dashboards()
    assert {name: d["uid"] for name, d in dashboards.items()} == UIDS  # unique and stable
    for name, dashboard in dashboards.items():
        assert dashboard["schemaVersion"] == 39
        for variable in dashboard["templating"]["list"]:
            assert variable["name"] == "center" and variable["datasource"]["uid"] == uid
        for panel in dashboard["panels"]:
            where = f"{name}: {panel['title']}"
            assert "panels" not in panel or not panel["panels"], f"{where}: panels must not nest in rows"
            if panel["type"] == "row":
                assert not panel.get("targets"), where
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": uid}, where
            assert panel["targets"], f"{where}: no query"
            for i, target in enumerate(panel["targets"]):
                assert target["refId"] == chr(ord("A") + i), where
                assert target["datasource"] == {"type": "prometheus", "uid": uid}, where
                assert target["expr"].strip(), f"{where}: empty expression"


def test_expressions_use_only_center_and_the_rate_interval():
    for expr in _exprs():
        rest = expr.replace('center=~"$center"', "").replace("[$__rate_interval]", "")
        assert "$" not in rest, f"a variable other than center=~\"$center\" or [$__rate_interval]: {expr}"
        assert "$__range" not in expr and "$__interval" not in expr, expr


def test_promtool_parses_every_expression(tmp_path):
    if not PROMTOOL.exists():
        pytest.fail(f"{PROMTOOL.relative_to(ROOT)} is missing: run make prometheus")
    exprs = _exprs()
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard:expr_{i}", "expr": _as_evaluated(expr)} for i, expr in enumerate(exprs)]}]}
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    done = subprocess.run([str(PROMTOOL), "check", "rules", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(exprs)} rules found" in done.stdout, done.stdout


def _registered_names() -> set[str]:
    for module in MODULES:
        importlib.import_module(module)
    names: set[str] = set()
    for metric in REGISTRY.collect():
        names.add(metric.name)
        names.update(metric.name + suffix for suffix in SUFFIXES.get(metric.type, ()))
        names.update(sample.name for sample in metric.samples)
    return names


def test_every_metric_the_dashboards_name_is_registered():
    known = _registered_names()
    named = {token for expr in _exprs() for token in METRIC_TOKEN.findall(expr)}
    assert named, "no hall_ or http_ metric found in the expressions"
    assert not named - known, f"not registered by any service: {sorted(named - known)}"
