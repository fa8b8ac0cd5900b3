"""Grafana's dashboards, generated: a compact spec here (dashboards -> rows -> panels -> PromQL targets)
rendered to standard dashboard JSON in deploy/grafana/dashboards/, which Grafana loads through the file
provider of deploy/grafana/provisioning/ (datasource uid `hall-prometheus`).

`python -m shared.devinfra.grafana render` writes the files; `... check` exits 1 when a committed file is
not what this module makes.

Conventions (an observability test evaluates every expression against a real Prometheus): panels are flat
(rows are `row` panels without targets); the one template variable is `center`, used only as
`center=~"$center"`; the one interval macro is `$__rate_interval`; fixed windows otherwise (`[1h]`, `[1d]`).
Gauges a worker's leader sets from the tables are taken with `max by` over all their labels before any
`sum`, so a second replica never counts twice. A metric label `job` is renamed `exported_job` by the scrape
(it clashes with the target's own `job`).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = ROOT / "deploy" / "grafana" / "dashboards"
DATASOURCE_UID = "hall-prometheus"
DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": DATASOURCE_UID}
SCHEMA_VERSION = 39
GRID_WIDTH = 24

PanelType = Literal["timeseries", "stat", "gauge", "table", "bargauge"]
Json = dict[str, Any]

# ----------------------------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    type: PanelType
    unit: str
    targets: tuple[Target, ...]
    description: str = ""
    width: int = 0  # 0: the type's default
    height: int = 0
    min: float | None = None
    max: float | None = None
    # threshold steps: the base colour, then (value, colour) from that value up
    base_color: str = "green"
    steps: tuple[tuple[float, str], ...] = ()
    # value -> (text, colour) mappings, e.g. `up`
    mappings: tuple[tuple[str, str, str], ...] = ()
    stacked: bool = False
    dashed: str = ""  # a regex of series names drawn dashed (a threshold beside its value)


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    by_center: bool = False
    tags: tuple[str, ...] = field(default=("hall",))
    time_from: str = "now-6h"

    @property
    def filename(self) -> str:
        return {"hall-platform": "platform.json", "hall-operations": "hall.json",
                "hall-supervision": "supervision.json"}[self.uid]


# ------------------------------------------------------------------------------------ PromQL helpers

RATE_INTERVAL = "$__rate_interval"
CENTER = 'center=~"$center"'


def sel(metric: str, *matchers: str) -> str:
    """A selector: `metric{m1,m2}` (just `metric` without matchers)."""
    return f"{metric}{{{','.join(matchers)}}}" if matchers else metric


def rate(metric: str, *matchers: str) -> str:
    return f"rate({sel(metric, *matchers)}[{RATE_INTERVAL}])"


def increase(metric: str, *matchers: str, window: str = "1h") -> str:
    return f"increase({sel(metric, *matchers)}[{window}])"


def sum_by(labels: str, inner: str) -> str:
    return f"sum by ({labels}) ({inner})" if labels else f"sum({inner})"


def gauge(metric: str, keys: str, by: str, *matchers: str) -> str:
    """A leader-set gauge: one value per `keys` (all its labels), then summed `by`."""
    return sum_by(by, f"max by ({keys}) ({sel(metric, *matchers)})")


def quantile(q: float, by: str, histogram: str, *matchers: str) -> str:
    return f"histogram_quantile({q}, sum by ({by}, le) ({rate(histogram + '_bucket', *matchers)}))"


def ts(title: str, unit: str, *targets: Target, **kw: Any) -> Panel:
    return Panel(title, "timeseries", unit, targets, **kw)


def stat(title: str, unit: str, *targets: Target, **kw: Any) -> Panel:
    return Panel(title, "stat", unit, targets, **kw)


def bars(title: str, unit: str, *targets: Target, **kw: Any) -> Panel:
    return Panel(title, "bargauge", unit, targets, **kw)


T = Target

# ------------------------------------------------------------------------------------------- platform

_HTTP_5XX = sum_by("service", rate("http_requests_total", 'status="5xx"'))
_HTTP_5XX_SHARE = f"{_HTTP_5XX} / {sum_by('service', rate('http_requests_total'))}"

PLATFORM = Dashboard(
    uid="hall-platform",
    title="平台 Platform",
    description="Services, targets, events (relay, consumers), timers, feeds, the Envoy gateway, the calendar",
    tags=("hall", "platform"),
    time_from="now-3h",
    rows=(
        Row("服务 Services", (
            ts("请求速率 Request rate", "reqps",
               T(sum_by("service", rate("http_requests_total")), "{{service}}")),
            ts("错误率 Error rate (5xx share)", "percentunit", T(_HTTP_5XX_SHARE, "{{service}}"), min=0),
            ts("响应时间 Duration p50 / p99", "s",
               T(quantile(0.5, "service", "http_request_duration_seconds"), "{{service}} p50"),
               T(quantile(0.99, "service", "http_request_duration_seconds"), "{{service}} p99")),
            ts("处理中请求 Requests in flight", "short",
               T(sum_by("service", "http_requests_in_flight"), "{{service}}")),
            stat("采集目标 Targets up", "none", T("min by (app, process) (up)", "{{app}} {{process}}"),
                 width=24, height=5, base_color="red", steps=((1, "green"),),
                 mappings=(("0", "DOWN", "red"), ("1", "UP", "green"))),
        )),
        Row("事件发布 Event relay", (
            ts("已发布 Published /s", "ops",
               T(sum_by("service", rate("hall_relay_published_total")), "{{service}}")),
            ts("发送失败与重发 Failed and resent /s", "ops",
               T(sum_by("service", rate("hall_relay_failed_total")), "{{service}} failed"),
               T(sum_by("service", rate("hall_relay_resends_total")), "{{service}} resent")),
            ts("发件箱积压 Outbox backlog", "short",
               T("max by (service) (hall_outbox_backlog)", "{{service}}"), width=24),
        )),
        Row("事件消费 Consumers", (
            ts("已处理 Processed /s", "ops",
               T(sum_by("consumer", rate("hall_consumer_processed_total")), "{{consumer}}")),
            ts("暂时失败 Transient failures /s", "ops",
               T(sum_by("consumer", rate("hall_consumer_failed_total")), "{{consumer}}")),
            ts("消费滞后 Lag (messages)", "short", T(sum_by("consumer", "hall_consumer_lag"), "{{consumer}}")),
            ts("死信与挂起键 Dead letters and parked keys", "short",
               T("max by (consumer) (hall_dead_letters)", "{{consumer}} dead letters"),
               T("max by (consumer) (hall_parked_keys)", "{{consumer}} parked keys")),
        )),
        Row("定时器与周期任务 Timers and periodic jobs", (
            ts("定时器触发 Timers fired / failed /s", "ops",
               T(sum_by("kind", rate("hall_timers_fired_total")), "{{kind}} fired"),
               T(sum_by("kind", rate("hall_timer_failures_total")), "{{kind}} failed")),
            ts("到期未触发 Timers due", "short", T("max by (app) (hall_timers_due)", "{{app}}")),
            ts("周期任务 Periodic job runs / failures /s", "ops",
               T(sum_by("app, exported_job", rate("hall_periodic_runs_total")), "{{exported_job}} runs"),
               T(sum_by("app, exported_job", rate("hall_periodic_failures_total")), "{{exported_job}} failed"),
               width=24),
        )),
        Row("实时推送 Feeds", (
            ts("连接客户端 Feed clients", "short", T(sum_by("feed", "hall_feed_clients"), "{{feed}}")),
            ts("推送事件 Feed events /s", "ops",
               T(sum_by("feed, outcome", rate("hall_feed_events_total")), "{{feed}} {{outcome}}")),
        )),
        Row("网关 Gateway (Envoy)", (
            ts("上游请求 Upstream requests /s by cluster", "reqps",
               T(sum_by("envoy_cluster_name", rate("envoy_cluster_upstream_rq_total")), "{{envoy_cluster_name}}")),
            ts("响应类别 Upstream responses /s by class", "reqps",
               T(sum_by("envoy_response_code_class", rate("envoy_cluster_upstream_rq_xx")),
                 "{{envoy_response_code_class}}xx"), stacked=True),
            ts("健康实例 Healthy members", "short",
               T("min by (envoy_cluster_name) (envoy_cluster_membership_healthy)", "{{envoy_cluster_name}}")),
            ts("限流 Rate-limited /s", "reqps",
               T(sum_by("envoy_local_http_ratelimit_prefix", rate("envoy_http_local_rate_limit_rate_limited")),
                 "{{envoy_local_http_ratelimit_prefix}}")),
            ts("下游请求 Downstream requests /s", "reqps",
               T(sum_by("envoy_http_conn_manager_prefix", rate("envoy_http_downstream_rq_total")),
                 "{{envoy_http_conn_manager_prefix}}"), width=24),
        )),
        Row("工作日历 Calendar", (
            stat("日历剩余时间 Calendar schedule remaining", "s",
                 T("max(hall_calendar_schedule_remaining_seconds)", "remaining"),
                 description="Time until the first year with no official or imported schedule",
                 base_color="red", steps=((30 * 86400, "orange"), (90 * 86400, "green"))),
            stat("回退年份 Fallback years in use", "none",
                 T("max by (year) (hall_calendar_fallback_year_in_use)", "{{year}}"),
                 description="1: a date in use falls in a year counted Monday-Friday (import its schedule)",
                 steps=((1, "red"),)),
        )),
    ),
)

# --------------------------------------------------------------------------------------------- hall


def _tickets_per_hour(event: str) -> str:
    return sum_by("service", increase("hall_queue_tickets_total", f'event="{event}"', CENTER))


_SATISFIED = 'rating=~"3|4|5"'


def _satisfaction(by: str) -> str:
    satisfied = sum_by(by, increase("hall_evaluations_total", CENTER, _SATISFIED, window="1d"))
    return f"{satisfied} / {sum_by(by, increase('hall_evaluations_total', CENTER, window='1d'))}"


HALL = Dashboard(
    uid="hall-operations",
    title="大厅运行 Hall operations",
    description="The hall now: waiting tickets and waits per service, windows, calls, no-shows, ratings",
    tags=("hall", "queue"),
    by_center=True,
    rows=(
        Row("排队 Queue now", (
            bars("当前等候 Waiting now", "short",
                 T(gauge("hall_queue_waiting_tickets", "center, service", "service", CENTER), "{{service}}")),
            ts("最长等候与阈值 Longest wait vs threshold", "s",
               T(f"max by (center, service) ({sel('hall_queue_longest_wait_seconds', CENTER)})",
                 "{{center}} {{service}} longest"),
               T(f"max by (center, service) ({sel('hall_queue_wait_threshold_seconds', CENTER)})",
                 "{{center}} {{service}} threshold"), dashed="/ threshold$/"),
        )),
        Row("等候与办理时长 Waits and service times", (
            ts("等候时长 Wait p50 / p90", "s",
               T(quantile(0.5, "service", "hall_queue_wait_seconds", CENTER), "{{service}} p50"),
               T(quantile(0.9, "service", "hall_queue_wait_seconds", CENTER), "{{service}} p90")),
            ts("办理时长 Service time p50", "s",
               T(quantile(0.5, "service", "hall_queue_service_seconds", CENTER), "{{service}} p50")),
        )),
        Row("窗口 Windows", (
            bars("窗口状态 Windows by state", "short",
                 T(gauge("hall_queue_windows", "center, state", "state", CENTER), "{{state}}"), width=8),
            stat("空岗窗口 Vacant windows", "short",
                 T(gauge("hall_queue_windows_vacant", "center", "", CENTER), "vacant"),
                 width=4, steps=((1, "red"),)),
            stat("失联窗口 Silent windows", "short",
                 T(gauge("hall_queue_windows_silent", "center", "", CENTER), "silent"),
                 width=4, steps=((1, "orange"),)),
            ts("窗口事件 Window events per hour", "short",
               T(sum_by("event", increase("hall_queue_window_events_total", CENTER)), "{{event}}"), width=8),
        )),
        Row("叫号 Tickets", (
            ts("每小时叫号 Calls per hour", "short", T(_tickets_per_hour("called"), "{{service}}"), width=8),
            ts("每小时取号 Tickets issued per hour", "short", T(_tickets_per_hour("issued"), "{{service}}"),
               width=8),
            ts("每小时过号 No-shows per hour", "short", T(_tickets_per_hour("no_show"), "{{service}}"),
               width=8),
        )),
        Row("好差评 Ratings", (
            Panel("满意率 Satisfaction (ratings 3-5, last 24 h)", "gauge", "percentunit",
                  (T(_satisfaction(""), "satisfied"),), width=8, min=0, max=1,
                  base_color="red", steps=((0.8, "orange"), (0.9, "green"))),
            bars("各事项满意率 Satisfaction by service (24 h)", "percentunit",
                 T(_satisfaction("service"), "{{service}}"), width=8, min=0, max=1,
                 base_color="red", steps=((0.8, "orange"), (0.9, "green"))),
            bars("评价分布 Ratings by value (24 h)", "short",
                 T(sum_by("rating", increase("hall_evaluations_total", CENTER, window="1d")), "{{rating}}"),
                 width=8),
        )),
    ),
)

# -------------------------------------------------------------------------------------- supervision


def _cases_per_day(event: str) -> str:
    return sum_by("", increase("hall_cases_total", f'event="{event}"', CENTER, window="1d"))


def _sanctions(level: str) -> str:
    return gauge("hall_monitor_sanctions_this_year", "center, level", "", CENTER, f'level="{level}"')


SUPERVISION = Dashboard(
    uid="hall-supervision",
    title="电子监察 Supervision",
    description="Cases and their deadlines, alerts, sanctions, findings, complaints, notifications",
    tags=("hall", "supervision"),
    by_center=True,
    time_from="now-7d",
    rows=(
        Row("办件 Cases", (
            Panel("在办件 Open cases by kind and status", "table", "short",
                  (T(gauge("hall_cases_open", "center, kind, status", "kind, status", CENTER)),)),
            bars("超期件 Overdue cases", "short",
                 T(gauge("hall_cases_overdue", "center, kind", "kind", CENTER), "{{kind}}"),
                 steps=((1, "red"),)),
            ts("每日办件 Cases per day: accepted, completed on time, late", "short",
               T(_cases_per_day("accepted"), "受理 accepted"),
               T(_cases_per_day("completed_on_time"), "按时办结 on time"),
               T(_cases_per_day("completed_late"), "超期办结 late")),
            ts("告知与首问 Notices and inquiries per day", "short",
               T(sum_by("", increase("hall_notices_total", CENTER, window="1d")), "一次性告知 notices"),
               T(sum_by("event", increase("hall_inquiries_total", CENTER, window="1d")), "首问 {{event}}")),
        )),
        Row("预警 Alerts", (
            ts("预警 Alerts raised per hour", "short",
               T(sum_by("kind, level", increase("hall_monitor_alerts_total", CENTER)), "{{kind}} {{level}}")),
            bars("未处理预警 Open alerts by kind", "short",
                 T(gauge("hall_monitor_open_alerts", "center, kind, level", "kind", CENTER), "{{kind}}")),
            ts("预警延迟 Due lag p99", "s",
               T(quantile(0.99, "kind", "hall_monitor_due_lag_seconds"), "{{kind}}"), width=24,
               description="From a due moment (warn_at, due_at, ...) to its alert"),
        )),
        Row("问责与投诉 Sanctions, findings, complaints", (
            stat("本年处分 Sanctions this year", "short",
                 T(_sanctions("warning"), "警告 warning"), T(_sanctions("criticism"), "通报批评 criticism"),
                 width=8, steps=((1, "orange"),)),
            stat("未结投诉 Open complaints", "short",
                 T(gauge("hall_monitor_open_complaints", "center, severity", "severity", CENTER), "{{severity}}"),
                 width=8, steps=((1, "orange"),)),
            stat("未完成回访 Open follow-ups", "short",
                 T(gauge("hall_monitor_open_followups", "center", "", CENTER), "follow-ups"),
                 width=8, steps=((1, "orange"),)),
            ts("监察发现 Findings per day", "short",
               T(sum_by("source, event", increase("hall_monitor_findings_total", CENTER, window="1d")),
                 "{{source}} {{event}}")),
            ts("收到投诉 Complaints received per day", "short",
               T(sum_by("channel, severity", increase("hall_monitor_complaints_total", CENTER, window="1d")),
                 "{{channel}} {{severity}}")),
        )),
        Row("通知 Notifications", (
            ts("投递结果 Deliveries by outcome /s", "ops",
               T(sum_by("channel, outcome", rate("hall_notify_deliveries_total")), "{{channel}} {{outcome}}")),
            ts("发送尝试 Provider attempts by outcome /s", "ops",
               T(sum_by("channel, outcome", rate("hall_notify_attempts_total")), "{{channel}} {{outcome}}")),
            stat("死信投递 Dead deliveries", "short",
                 T("max(hall_notify_unfinished_deliveries{status=\"dead\"})", "dead"),
                 width=8, steps=((1, "red"),)),
            ts("未完成投递 Unfinished deliveries by status", "short",
               T("max by (status) (hall_notify_unfinished_deliveries)", "{{status}}"), width=8),
            ts("投递延迟 Delivery latency p99", "s",
               T(quantile(0.99, "channel", "hall_notify_delivery_latency_seconds"), "{{channel}}"), width=8),
        )),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (PLATFORM, HALL, SUPERVISION)

# ------------------------------------------------------------------------------------------- render

_DEFAULT_SIZE: dict[str, tuple[int, int]] = {  # (width, height)
    "timeseries": (12, 8), "stat": (6, 5), "gauge": (6, 6), "bargauge": (12, 8), "table": (12, 8)}
_REDUCE: Json = {"calcs": ["lastNotNull"], "fields": "", "values": False}


def _targets(panel: Panel) -> list[Json]:
    out = []
    for i, target in enumerate(panel.targets):
        item: Json = {"datasource": dict(DATASOURCE), "refId": chr(ord("A") + i), "expr": target.expr,
                      "legendFormat": target.legend or "__auto"}
        if panel.type == "table":
            item.update(format="table", instant=True, range=False)
        else:
            item.update(instant=False, range=True)
        out.append(item)
    return out


def _field_config(panel: Panel) -> Json:
    steps: list[Json] = [{"color": panel.base_color, "value": None}]
    steps += [{"color": color, "value": value} for value, color in panel.steps]
    defaults: Json = {"unit": panel.unit, "color": {"mode": "palette-classic" if panel.type == "timeseries"
                                                    else "thresholds"},
                      "thresholds": {"mode": "absolute", "steps": steps}, "mappings": []}
    if panel.min is not None:
        defaults["min"] = panel.min
    if panel.max is not None:
        defaults["max"] = panel.max
    if panel.mappings:
        defaults["mappings"] = [{"type": "value", "options": {
            value: {"text": text, "color": color, "index": i}
            for i, (value, text, color) in enumerate(panel.mappings)}}]
    if panel.type == "timeseries":
        defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 20 if panel.stacked else 10,
                              "showPoints": "never", "spanNulls": False,
                              "stacking": {"mode": "normal" if panel.stacked else "none", "group": "A"}}
    overrides: list[Json] = []
    if panel.dashed:
        overrides.append({"matcher": {"id": "byRegexp", "options": panel.dashed}, "properties": [
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}]})
    return {"defaults": defaults, "overrides": overrides}


def _options(panel: Panel) -> Json:
    if panel.type == "timeseries":
        return {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "desc"}}
    if panel.type == "stat":
        return {"reduceOptions": dict(_REDUCE), "colorMode": "value", "graphMode": "area",
                "justifyMode": "auto", "orientation": "auto", "textMode": "auto"}
    if panel.type == "gauge":
        return {"reduceOptions": dict(_REDUCE), "showThresholdLabels": False, "showThresholdMarkers": True}
    if panel.type == "bargauge":
        return {"reduceOptions": dict(_REDUCE), "displayMode": "gradient", "orientation": "horizontal",
                "showUnfilled": True}
    return {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"]}}


def render_dashboard(dashboard: Dashboard) -> Json:
    """The dashboard's JSON model: rows as `row` panels, every panel after its row, positions computed."""
    panels: list[Json] = []
    y = 0
    for row in dashboard.rows:
        panels.append({"id": len(panels) + 1, "type": "row", "title": row.title, "collapsed": False,
                       "datasource": dict(DATASOURCE), "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
                       "panels": []})
        y += 1
        x = line_height = 0
        for panel in row.panels:
            width = panel.width or _DEFAULT_SIZE[panel.type][0]
            height = panel.height or _DEFAULT_SIZE[panel.type][1]
            if x + width > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            item: Json = {"id": len(panels) + 1, "type": panel.type, "title": panel.title,
                          "datasource": dict(DATASOURCE), "gridPos": {"h": height, "w": width, "x": x, "y": y},
                          "fieldConfig": _field_config(panel), "options": _options(panel),
                          "targets": _targets(panel)}
            if panel.description:
                item["description"] = panel.description
            if panel.type == "table":
                item["transformations"] = [{"id": "organize", "options": {"excludeByName": {"Time": True}}}]
            panels.append(item)
            x += width
            line_height = max(line_height, height)
        y += line_height
    variables: list[Json] = []
    if dashboard.by_center:
        query = "label_values(hall_queue_tickets_total, center)"
        variables.append({"name": "center", "label": "中心 Center", "type": "query",
                          "datasource": dict(DATASOURCE), "query": query, "definition": query,
                          "refresh": 2, "multi": True, "includeAll": True, "allValue": ".*",
                          "current": {}, "options": [], "regex": "", "sort": 1, "hide": 0})
    return {
        "uid": dashboard.uid, "title": dashboard.title, "description": dashboard.description,
        "tags": list(dashboard.tags), "schemaVersion": SCHEMA_VERSION, "version": 1, "id": None,
        "editable": False, "graphTooltip": 1, "timezone": "browser", "refresh": "30s",
        "time": {"from": dashboard.time_from, "to": "now"}, "timepicker": {}, "fiscalYearStartMonth": 0,
        "weekStart": "", "liveNow": False, "links": [], "annotations": {"list": []},
        "templating": {"list": variables}, "panels": panels,
    }


def rendered_files() -> dict[Path, str]:
    """Every dashboard file and the text it should hold."""
    return {DASHBOARDS_DIR / d.filename: json.dumps(render_dashboard(d), ensure_ascii=False, indent=2) + "\n"
            for d in DASHBOARDS}


def main(argv: list[str]) -> int:
    """`render`: write the dashboards; `check`: exit 1 if a committed one differs from the generator's."""
    if len(argv) != 1 or argv[0] not in {"render", "check"}:
        print("usage: python -m shared.devinfra.grafana render|check", file=sys.stderr)
        return 2
    stale = []
    for path, text in rendered_files().items():
        if argv[0] == "render":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {os.path.relpath(path, ROOT)}")
        elif not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(os.path.relpath(path, ROOT))
    if stale:
        print(f"stale (run python -m shared.devinfra.grafana render): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
