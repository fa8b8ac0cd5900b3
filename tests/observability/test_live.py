"""Observability on a running hall (issue 28's acceptance): `make run`'s launcher starts Prometheus (Debian's,
from .tools/) on the jobs of deploy/prometheus/prometheus.yml; a short scripted load runs (tickets issued, called,
served and rated; a case accepted; cases imported already late); then every process's /metrics parses with the
Prometheus text parser and holds the families the README documents for it, every target is up, and every
expression of every dashboard panel and every alerting rule evaluates through the HTTP API without an error,
the key ones (named below) with data."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from shared.devinfra.prometheus import PROMTOOL
from tests.e2e.test_make_run import ROOT, Launch, running_hall
from tests.ui.harness import CENTRE, HJ_001, MORNING, Hall, created, launch_env, seed, wait_for

GRAFANA = ROOT / "deploy" / "grafana" / "dashboards"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
README = ROOT / "README.md"
APIS = ("queue", "cases", "monitor", "notify", "identity", "terminals")
WORKERS = ("queue", "cases", "monitor", "notify", "identity")

# what the load must make visible: each expression returns at least one series (with a value above 0 where
# `positive`), so a renamed metric, a job not scraped or a gauge nobody sets fails here
KEY_QUERIES: dict[str, bool] = {
    'up{job=~"hall-.*"} == 1': True,
    'sum(hall_queue_tickets_total{event="issued"})': True,
    'sum(hall_queue_tickets_total{event="finished"})': True,
    "sum(hall_queue_wait_seconds_count)": True,
    "hall_queue_waiting_tickets": False,
    "hall_queue_longest_wait_seconds": False,
    "hall_queue_wait_threshold_seconds": True,
    "hall_queue_windows_vacant": False,
    'sum(hall_queue_windows{state="open"})': True,
    "sum(hall_evaluations_total)": True,
    'sum(hall_cases_total{event="accepted"})': True,
    "sum(hall_cases_open)": True,
    "sum(hall_cases_overdue)": True,
    "sum(hall_monitor_open_alerts)": True,
    "sum(hall_relay_published_total)": True,
    "sum(hall_consumer_processed_total)": True,
    "hall_consumer_lag": False,
    "hall_outbox_backlog": False,
    "hall_calendar_schedule_remaining_seconds": True,
    "sum(envoy_cluster_upstream_rq_total)": True,
    'sum(rate(http_requests_total{status="2xx"}[1m]))': True,
    "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))": True,
}


@dataclass
class Observed:
    launch: Launch
    hall: Hall
    prometheus: str
    visible: bool = False  # every key query has shown data once

    def query(self, expr: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=30)
        body: dict[str, Any] = answer.json()
        assert answer.status_code == 200 and body["status"] == "success", (expr, answer.status_code, body)
        return body["data"]  # type: ignore[no-any-return]


def _load(hall: Hall, launch: Launch) -> None:
    """A short hall morning: six tickets, three served and rated (one badly), one called and left waiting for
    nobody; a case accepted at window 1; two cases of the previous system imported already late."""
    issued = [hall.ok("POST", f"/queue/centers/{CENTRE}/tickets", json={"service_code": code})
              for code in ("HJ", "HJ", "SB", "HJ", "SB", "HJ")]
    hall.ok("POST", f"/queue/centers/{CENTRE}/windows/1/sign-in", headers=hall.clerk)
    for rating in (5, 4, 1):
        called = hall.ok("POST", f"/queue/centers/{CENTRE}/windows/1/call-next", headers=hall.clerk)
        hall.ok("POST", f"/queue/tickets/{called['id']}/start", headers=hall.clerk)
        hall.ok("POST", f"/queue/tickets/{called['id']}/finish", headers=hall.clerk)
        ticket = next(t for t in issued if t["id"] == called["id"])
        hall.ok("POST", f"/queue/public/tickets/{called['id']}/evaluation", headers={},
                params={"code": ticket["lookup_code"]}, json={"rating": rating})
    created(hall, "POST", "/cases/departments", within=60, json={"center_id": CENTRE, "code": "D01", "name": "区公安分局"})
    hall.ok("POST", "/cases/items", json=HJ_001)
    created(hall, "POST", "/cases/cases", headers=hall.clerk, within=60, json={
        "center": CENTRE, "item_code": "HJ-001", "applicant": {"name": "上官婉儿", "id_number": "11010519491231002X"},
        "materials": ["居民身份证", "居民户口簿"]})
    handler = next(u for u in _items(hall.ok("GET", "/auth/users", params={"center": CENTRE}))
                   if u["username"] == "zhang.min")
    late = (MORNING - timedelta(days=40)).date()  # a 20-day limit, long gone
    answer = created(hall, "POST", f"/cases/import?center={CENTRE}", launch.auth(), within=60, json={"cases": [
        {"legacy_no": f"OLD-{n}", "item_code": "HJ-001", "accepted_at": f"{late.isoformat()} 10:00",
         "handler": handler["id"], "applicant": {"name": "司马相如", "id_number": "11010519491231002X"}}
        for n in (1, 2)]})
    assert answer["overdue"] == 2, answer


def _items(listed: Any) -> list[dict[str, Any]]:
    return list(listed["items"] if isinstance(listed, dict) else listed)


@pytest.fixture(scope="module")
def observed() -> Iterator[Observed]:
    env = {**launch_env(), "HALL_DEV_PROMETHEUS_SCRAPE_INTERVAL": "1s"}
    with running_hall("observability", env) as launch:
        launch.wait_for_line("prometheus   http://", timeout=60)
        hall = seed(launch.url, launch.auth())
        _load(hall, launch)
        yield Observed(launch, hall, f"http://127.0.0.1:{launch.env['HALL_DEV_PROMETHEUS_PORT']}")


def _scrape(url: str) -> dict[str, str]:
    """A process's /metrics parsed by the Prometheus text parser (and passing promtool's lint): family name →
    type."""
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200, (url, answer.status_code)
    linted = subprocess.run([str(PROMTOOL), "check", "metrics"], input=answer.text, capture_output=True, text=True,
                            timeout=60)
    assert linted.returncode == 0, (url, linted.stdout, linted.stderr)
    return {family.name: family.type for family in text_string_to_metric_families(answer.text)}


def _process_urls(launch: Launch) -> dict[str, str]:
    first, base = int(launch.env["HALL_DEV_FIRST_SERVICE_PORT"]), int(launch.env["WORKER_HEALTH_PORT_BASE"])
    urls = {name: f"http://127.0.0.1:{first + i}/metrics" for i, name in enumerate(APIS)}
    urls |= {f"{name}-worker": f"http://127.0.0.1:{base + i}/metrics" for i, name in enumerate(WORKERS)}
    return urls


_ROW = re.compile(r"^\| `(?P<name>[a-z_:]+)` \| (?P<type>counter|gauge|histogram) \| [^|]* \| (?P<where>[^|]+) \|")


def documented_families(readme: str = README.read_text()) -> dict[str, tuple[str, set[str]]]:
    """The README's table of metric families: name (as exposed, `_total` on counters) → (type, processes)."""
    table = readme.split("<!-- metrics:begin -->", 1)[1].split("<!-- metrics:end -->", 1)[0]
    families: dict[str, tuple[str, set[str]]] = {}
    for line in table.splitlines():
        match = _ROW.match(line)
        if match is None:
            continue
        where: set[str] = set()
        for part in (p.strip() for p in match["where"].split(",")):
            if part == "every API":
                where |= set(APIS)
            elif part == "every worker":
                where |= {f"{w}-worker" for w in WORKERS}
            else:
                assert part in APIS or part.removesuffix("-worker") in WORKERS, (match["name"], part)
                where.add(part)
        families[match["name"]] = (match["type"], where)
    return families


def _base(name: str, kind: str) -> str:
    return name.removesuffix("_total") if kind == "counter" else name


def test_every_process_serves_the_documented_families(observed: Observed) -> None:
    documented = documented_families()
    assert len(documented) >= 55, len(documented)
    served = {process: _scrape(url) for process, url in _process_urls(observed.launch).items()}
    for name, (kind, where) in documented.items():
        for process in where:
            assert served[process].get(_base(name, kind)) == kind, (name, process, kind)
    ours = {name for families in served.values() for name in families if name.startswith(("hall_", "http_"))}
    undocumented = ours - {_base(name, kind) for name, (kind, _) in documented.items()}
    assert not undocumented, f"families served but not in the README's table: {sorted(undocumented)}"


def test_prometheus_scrapes_every_process_and_the_gateway(observed: Observed) -> None:
    answer = httpx.get(f"{observed.prometheus}/api/v1/targets", timeout=10).json()
    targets = answer["data"]["activeTargets"]
    seen = {(t["labels"]["app"], t["labels"]["process"]) for t in targets}
    assert seen == {(a, "api") for a in APIS} | {(w, "worker") for w in WORKERS} | {("gateway", "gateway")}

    def all_up() -> bool:
        return all(t["health"] == "up" for t in httpx.get(f"{observed.prometheus}/api/v1/targets",
                                                             timeout=10).json()["data"]["activeTargets"])

    wait_for(all_up, 30, "every target up", every=1)


def dashboard_expressions() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expression) of every target of every panel, with the dashboard variables
    put in as Grafana would for "all centres"."""
    found = []
    for path in sorted(GRAFANA.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"].replace("$__rate_interval", "1m").replace("$center", ".*")
                found.append((dashboard["uid"], panel["title"], expr))
    return found


def rule_expressions() -> list[tuple[str, str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [(rule.get("alert") or rule["record"], rule["expr"]) for group in groups for rule in group["rules"]]


def _load_visible(observed: Observed) -> None:
    """Until every key query returns data (once per module)."""
    if observed.visible:
        return
    missing: dict[str, Any] = {}

    def every_key_has_data() -> bool:
        missing.clear()
        for expr, positive in KEY_QUERIES.items():
            result = observed.query(expr)["result"]
            if not result or (positive and not any(float(r["value"][1]) > 0 for r in result)):
                missing[expr] = result
        return not missing

    # the slowest: the cases worker counts overdue cases once a minute; the monitor's alert comes by Kafka
    try:
        wait_for(every_key_has_data, 150, "data of every key query", every=1)
    except AssertionError:
        raise AssertionError(f"key queries without data: {missing}") from None
    observed.visible = True


def test_every_key_query_returns_data(observed: Observed) -> None:
    _load_visible(observed)
    for expr in KEY_QUERIES:
        assert observed.query(expr)["result"], expr


# the panels an operator opens first: each must show the load (dashboard uid, panel title)
KEY_PANELS: list[tuple[str, str]] = [
    ("hall-platform", "请求速率 Request rate"), ("hall-platform", "响应时间 Duration p50 / p99"),
    ("hall-platform", "采集目标 Targets up"), ("hall-platform", "已发布 Published /s"),
    ("hall-platform", "已处理 Processed /s"), ("hall-platform", "上游请求 Upstream requests /s by cluster"),
    ("hall-platform", "日历剩余时间 Calendar schedule remaining"),
    ("hall-operations", "当前等候 Waiting now"), ("hall-operations", "最长等候与阈值 Longest wait vs threshold"),
    ("hall-operations", "等候时长 Wait p50 / p90"), ("hall-operations", "窗口状态 Windows by state"),
    ("hall-operations", "每小时叫号 Calls per hour"), ("hall-operations", "满意率 Satisfaction (ratings 3-5, last 24 h)"),
    ("hall-supervision", "在办件 Open cases by kind and status"), ("hall-supervision", "超期件 Overdue cases"),
    ("hall-supervision", "未处理预警 Open alerts by kind"),
]


def test_every_dashboard_and_rule_expression_evaluates_and_the_key_panels_show_the_load(
        observed: Observed) -> None:
    _load_visible(observed)
    panels = dashboard_expressions()
    rules = rule_expressions()
    assert len(panels) >= 30 and len(rules) >= 15, (len(panels), len(rules))
    results = {(uid, title, expr): observed.query(expr)["result"] for uid, title, expr in panels}
    for _name, expr in rules:
        observed.query(expr)  # an alert's condition is empty while nothing is wrong: it must only evaluate
    shown = {(uid, title) for (uid, title, _), result in results.items() if result}
    titles = {(uid, title) for uid, title, _ in panels}
    for key in KEY_PANELS:
        assert key in titles, f"no panel {key}"
        assert key in shown, f"the panel {key} shows nothing after the load"
    answer = httpx.get(f"{observed.prometheus}/api/v1/rules", timeout=10).json()
    loaded = [rule for group in answer["data"]["groups"] for rule in group["rules"]]
    assert {r["name"] for r in loaded} == {name for name, _ in rules}
    assert all(r["health"] in ("ok", "unknown") for r in loaded), [(r["name"], r.get("lastError")) for r in loaded
                                                                   if r["health"] == "err"]


def test_the_documented_table_is_read_as_written() -> None:
    readme = ("<!-- metrics:begin -->\n| `hall_x_total` | counter | a | queue, every worker | x |\n"
              "| `hall_y` | gauge | b | every API | y |\n<!-- metrics:end -->")
    families = documented_families(readme)
    assert families["hall_x_total"] == ("counter", {"queue"} | {f"{w}-worker" for w in WORKERS})
    assert families["hall_y"] == ("gauge", set(APIS))
    assert _base("hall_x_total", "counter") == "hall_x" and Path(README).exists()
