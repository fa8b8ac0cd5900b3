"""The supervision board (电子监察, issue 27) in a real browser: a case imported already overdue raises its alert
live on the board; confirming its finding there issues a 警告 with its notice text (and PDF), a second overdue case
of the same department a 通报批评; a spot check recorded on the board with a photo as evidence appears in the list;
the month's KPI chart draws the month's cases and its CSV downloads; a complaint from the public page is listed and
answered. Each test makes its own department (the ladder counts per department and year), so it runs again at the
second screen size in the same hall."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ui.harness import CENTRE, MORNING, Hall, created, png, shot, wait_for

PASSWORD = "supervision office password 1"
SUPERVISOR = "zhou.jian"  # 周健, of the supervision office (督查股)
HANDLER = "chen.jing"     # 陈静, the clerk the imported cases name as their handler
APPLICANT = {"name": "司马相如", "id_number": "11010519491231002X"}
MONTH = MORNING.strftime("%Y-%m")


@dataclass
class Office:
    handler_id: str


@pytest.fixture(scope="module")
def office(hall: Hall, launched: Any) -> Office:
    """The office's supervisor and a clerk to name as the imported cases' handler."""
    admin = launched.auth()  # fresh: the session's seed token may be older than its 15 minutes
    created(hall, "POST", "/auth/users", admin, within=60, exists_ok=True, json={
        "username": SUPERVISOR, "password": PASSWORD, "display_name": "周健", "post_title": "督查股",
        "role": "supervisor", "centers": [CENTRE]})
    created(hall, "POST", "/auth/users", admin, within=60, exists_ok=True, json={
        "username": HANDLER, "password": PASSWORD, "display_name": "陈静", "post_title": "综合受理窗口",
        "role": "clerk", "centers": [CENTRE], "department": "D01"})
    users = hall.ok("GET", "/auth/users", admin, params={"center": CENTRE})
    listed = users["items"] if isinstance(users, dict) else users
    handler = next(u for u in listed if u["username"] == HANDLER)
    return Office(handler_id=handler["id"])


def department(hall: Hall, launched: Any, promised: int = 5) -> tuple[str, str, str]:
    """A new department with one promised item (5 working days by default): (code, name, item code)."""
    admin = launched.auth()
    code = f"JC{secrets.token_hex(2).upper()}"
    name = f"区监察测试局{code[-4:]}"
    created(hall, "POST", "/cases/departments", admin, within=60, exists_ok=True, json={"center_id": CENTRE, "code": code, "name": name})
    item = f"{code}-01"
    hall.ok("POST", "/cases/items", admin, json={
        "center_id": CENTRE, "code": item, "name": f"营业执照变更登记（{code}）", "department": code, "kind": "promised",
        "legal_limit_days": 20, "promised_limit_days": promised})
    return code, name, item


def import_case(hall: Hall, launched: Any, office: Office, item: str, accepted_at: str) -> dict[str, Any]:
    """One open case from the previous system, accepted at `accepted_at`; retried until cases knows the handler."""
    legacy = f"OLD-{secrets.token_hex(4)}"
    answer = created(hall, "POST", f"/cases/import?center={CENTRE}", launched.auth(), within=60, exists_ok=True, json={"cases": [{
        "legacy_no": legacy, "item_code": item, "accepted_at": accepted_at, "handler": office.handler_id,
        "applicant": APPLICANT}]})
    assert answer is not None
    case: dict[str, Any] = answer["cases"][0]
    return case


def board(open_page: Any) -> Any:
    """The board, signed in as the supervisor (a sign-in refused by the gateway's rate limit is tried again),
    drawn and live."""
    page = open_page("/ui/supervision")
    for _ in range(20):
        page.locator("#signin-username").wait_for(state="visible", timeout=15000)
        page.fill("#signin-username", SUPERVISOR)
        page.fill("#signin-password", PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.wait_for_function(
            "() => !document.getElementById('board').hidden || !document.getElementById('signin-error').hidden")
        if not page.locator("#board").is_hidden():
            break
        error = page.locator("#signin-error").inner_text()
        assert "尝试次数过多" in error, error
        time.sleep(6)  # the gateway gives one more sign-in every 6 s per address
    page.locator("body[data-ready='1']").wait_for(state="attached", timeout=30000)
    page.locator("#live[data-state=open]").wait_for(timeout=30000)
    return page


def decide(page: Any, button: Any, text: str) -> None:
    """A decision through the board's dialog: the button, the text, 确定."""
    button.click()
    dialog = page.locator("#decide")
    dialog.wait_for(state="visible")
    page.fill("#decide-text", text)
    page.locator("#decide-ok").click()
    dialog.wait_for(state="hidden", timeout=15000)


def downloaded(page: Any, button: Any) -> tuple[str, bytes]:
    with page.expect_download(timeout=20000) as info:
        button.click()
    download = info.value
    return download.suggested_filename, Path(download.path()).read_bytes()


def test_an_overdue_import_alerts_live_and_two_confirmations_climb_the_ladder(open_page, hall, launched, office):
    page = board(open_page)
    code, name, item = department(hall, launched)
    # accepted on Mon 2 Nov: due at the end of Mon 9 Nov (5 working days), long past on 8 Dec
    first = import_case(hall, launched, office, item, "2026-11-02T10:00:00+08:00")
    assert first["overdue_at_import"] is True
    alert = page.locator(f"#alerts li[data-kind=overdue][data-case='{first['case_no']}']")
    alert.wait_for(timeout=90000)  # the monitor's timer fires at once, its alert comes by the live feed
    assert "超时" in alert.inner_text() and first["case_no"] in alert.inner_text()
    assert page.locator("#alerts li").first.get_attribute("data-case") == first["case_no"]  # newest first
    shot(page, "supervision-alert")

    # its finding waits for a person (imported already overdue); confirming it issues the year's 警告
    row = page.locator(f"#findings tr[data-case='{first['case_no']}'][data-status=pending]")
    row.wait_for(timeout=30000)
    assert "导入前已超时" in row.inner_text()
    decide(page, row.locator("[data-act=confirm]"), "经核查，超时属实")
    page.locator("#status").filter(has_text="警告").wait_for(timeout=15000)
    page.get_by_role("tab", name="问责与整改").click()
    warning = page.locator(f"#sanctions li[data-case='{first['case_no']}']")
    warning.wait_for(timeout=15000)
    assert warning.get_attribute("data-level") == "warning"
    assert "警告" in warning.locator("h3").inner_text()
    notice = warning.locator(".sv-notice").inner_text()
    assert first["case_no"] in notice and f"对{name}予以警告" in notice and "第1次" in notice
    assert warning.locator(".sv-due").count() == 1  # its rectification deadline
    shot(page, "supervision-warning")
    filename, pdf = downloaded(page, warning.locator("[data-act=pdf]"))
    assert filename.endswith(".pdf") and pdf.startswith(b"%PDF")

    # a second overdue case of the same department, later: 通报批评
    second = import_case(hall, launched, office, item, "2026-11-09T10:00:00+08:00")
    page.locator(f"#alerts li[data-kind=overdue][data-case='{second['case_no']}']").wait_for(timeout=90000)
    page.get_by_role("tab", name="待核查").click()
    row = page.locator(f"#findings tr[data-case='{second['case_no']}'][data-status=pending]")
    row.wait_for(timeout=30000)
    decide(page, row.locator("[data-act=confirm]"), "")  # the reason is optional
    page.locator("#status").filter(has_text="通报批评").wait_for(timeout=15000)
    page.get_by_role("tab", name="问责与整改").click()
    criticism = page.locator(f"#sanctions li[data-case='{second['case_no']}']")
    criticism.wait_for(timeout=15000)
    assert criticism.get_attribute("data-level") == "criticism"
    assert "通报批评" in criticism.locator("h3").inner_text()
    assert f"对{name}予以通报批评" in criticism.locator(".sv-notice").inner_text()
    assert warning.get_attribute("data-level") == "warning"  # the first keeps its place on the ladder
    shot(page, "supervision-criticism")


def test_a_spot_check_recorded_on_the_board_with_evidence_is_listed(open_page, hall, launched, office):
    code, name, _ = department(hall, launched)
    page = board(open_page)
    words = f"现场抽查：{code} 窗口人员离岗未挂暂离牌 {secrets.token_hex(3)}"
    page.select_option("#spot-department", code)
    page.select_option("#spot-window", "2")
    page.fill("#spot-text", words)
    page.set_input_files("#spot-files", files=[{"name": "现场照片.png", "mimeType": "image/png", "buffer": png()}])
    page.locator("#spot-form button[type=submit]").click()
    page.locator("#spot-result").filter(has_text="已登记").wait_for(timeout=15000)
    assert "附件 1 个" in page.locator("#spot-result").inner_text()
    row = page.locator("#findings tr[data-status=pending]").filter(has_text=words)
    row.wait_for(timeout=15000)
    text = row.inner_text()
    assert "现场抽查" in text and name in text and "2 号窗口" in text and "附件：现场照片.png" in text
    assert page.locator("#spot-text").input_value() == ""  # the form is ready for the next one
    shot(page, "supervision-spot-check")
    filename, evidence = downloaded(page, row.get_by_role("button", name="附件：现场照片.png"))
    assert evidence == png()


def test_the_kpi_charts_draw_the_months_cases_and_the_csv_downloads(open_page, hall, launched, office):
    _, _, item = department(hall, launched, promised=20)
    case = import_case(hall, launched, office, item, "2026-12-02T10:00:00+08:00")  # this month, not yet due
    assert case["overdue_at_import"] is False
    page = board(open_page)
    page.get_by_role("tab", name="指标与考评").click()
    page.locator("#chart-days canvas").wait_for(timeout=20000)

    def drawn() -> bool:  # the monitor learns of the case by the broker: refreshed until the chart counts it
        accepted = page.evaluate("() => window.hallSupervision.charts.days && window.hallSupervision.charts.days.data[1]")
        if accepted and len(accepted) >= 2 and accepted[1] >= 1:  # day 2 of the month
            return True
        page.locator("#kpis-reload").click()
        time.sleep(1)
        return False

    wait_for(drawn, within=60, what="the day chart counting the case of 2 December")
    assert page.locator("#chart-days").get_attribute("data-points") == str(MORNING.day)
    assert page.locator("#chart-scores canvas").count() == 1
    windows = page.evaluate("() => window.hallSupervision.charts.scores.data[1]")
    assert windows and all(0 <= score <= 120 for score in windows)
    assert page.locator("#scores tr[data-window]").count() == len(windows)
    assert page.locator("#kpi-month dt").filter(has_text="受理").count() == 1
    shot(page, "supervision-kpis")

    filename, body = downloaded(page, page.locator("[data-export=cases]"))
    assert filename.endswith(".csv")
    lines = body.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("key,accepted,")
    day = next(line.split(",") for line in lines[1:] if line.startswith(f"{MONTH}-02,"))
    assert int(day[1]) >= 1
    filename, body = downloaded(page, page.locator("[data-export=scores]"))
    assert body.decode("utf-8-sig").splitlines()[0].startswith("rank,window,score")


def test_a_public_complaint_is_listed_with_its_deadline_and_answered(open_page, hall, office):
    words = f"窗口工作人员态度生硬，解释不清 {secrets.token_hex(3)}"
    receipt = created(hall, "POST", "/monitor/public/complaints", {}, within=60, exists_ok=True, json={
        "center": CENTRE, "category": "服务态度", "subject": {"window": "3"}, "text": words})
    page = board(open_page)
    page.get_by_role("tab", name="投诉与回访").click()
    row = page.locator(f"#complaints tr[data-number='{receipt['number']}']")
    row.wait_for(timeout=15000)
    text = row.inner_text()
    assert words in text and "网上" in text and "3 号窗口" in text and "待处理" in text
    assert row.locator(".sv-due").count() == 1  # general: by the end of the next working day
    shot(page, "supervision-complaints")
    decide(page, row.get_by_role("button", name="已处理"), "已约谈当事窗口人员并向投诉人致歉")
    row.wait_for(state="detached", timeout=15000)  # no longer open
    page.select_option("#complaints-filter", "all")
    closed = page.locator(f"#complaints tr[data-number='{receipt['number']}'][data-status=resolved]")
    closed.wait_for(timeout=15000)
    assert "已约谈当事窗口人员" in closed.inner_text()


def test_the_board_reconnects_after_the_gateway_restarts_and_shows_the_alert_it_missed(open_page, hall, launched,
                                                                                       office):
    _, _, item = department(hall, launched)
    page = board(open_page)
    live = page.locator("#live[data-state=open]")
    envoy = launched.envoy()
    envoy.kill()  # the launcher's supervisor starts it again
    page.locator("#live[data-state=reconnecting]").wait_for(timeout=15000)
    # meanwhile a case is imported already overdue, straight at the cases service (the gateway is down)
    cases = f"http://127.0.0.1:{int(launched.env['HALL_DEV_FIRST_SERVICE_PORT']) + 1}"
    imported: list[httpx.Response] = []

    def imports() -> bool:
        imported.append(httpx.post(f"{cases}/import", params={"center": CENTRE}, headers=launched.auth(), timeout=15,
                                   json={"cases": [{"legacy_no": f"OLD-{secrets.token_hex(4)}", "item_code": item,
                                                    "accepted_at": "2026-11-02T10:00:00+08:00",
                                                    "handler": office.handler_id, "applicant": APPLICANT}]}))
        return imported[-1].status_code == 201

    wait_for(imports, within=60, what=f"the import (last: {imported[-1].text[:300] if imported else ''})")
    case_no = imported[-1].json()["cases"][0]["case_no"]
    live.wait_for(timeout=30000)  # back, with a fresh token and its last event id
    page.locator(f"#alerts li[data-kind=overdue][data-case='{case_no}']").wait_for(timeout=90000)
    assert page.evaluate("() => window.hallSupervision.feed.connections") >= 2
    assert page.evaluate("() => window.hallSupervision.state.loads") == 1  # resumed from its event id: no reload
    shot(page, "supervision-reconnected")
