"""The window terminal (窗口工作台, issue 27) in a real browser: a clerk logs in on window 4's terminal through the
page itself, signs in at the window, calls, starts and finishes a kiosk ticket with the page's buttons; accepts a
case for the current ticket and downloads its receipt PDF; gives the one-time notice when a required material is
missing; sees an imported overdue case red in the open cases and its alert in the window's messages; steps away
with a message, comes back and signs out; and a chief representative approves the extension the clerk asked for."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.ui.harness import CENTRE, CLERK_PASSWORD, HJ_001, MORNING, Hall, created, shot, wait_for

WINDOW = "4"
DEPARTMENT = "D01"  # the harness's clerks' department; the public pages seed it too, with the same items
ITEM = "HJ-001"
CLERK = ("zhao.lei", "赵磊")
CHIEF = ("qian.jun", "钱军")


@dataclass
class Desk:
    terminal_key: str
    clerk_id: str
    chief_id: str


def id_number(seed: int) -> str:
    """A resident ID number with its checksum (born 1985-06-15, a sequence from `seed`)."""
    base = f"32010219850615{seed % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return base + "10X98765432"[sum(int(c) * w for c, w in zip(base, weights, strict=True)) % 11]


def _person(hall: Hall, username: str, name: str, role: str) -> str:
    if username not in hall.people:
        user = hall.ok("POST", "/auth/users", json={
            "username": username, "password": CLERK_PASSWORD, "display_name": name, "post_title": "综合受理窗口",
            "role": role, "centers": [CENTRE], "department": DEPARTMENT})
        hall.people[username] = user["id"]
    return hall.people[username]


@pytest.fixture(scope="module")
def desk(hall: Hall) -> Desk:
    """Window 4 serving 户籍 and 社保, department D01 with item HJ-001 (as the public pages seed them), a clerk and a
    chief representative of D01, and window 4's terminal key."""
    created(hall, "POST", f"/queue/centers/{CENTRE}/windows", exists_ok=True, json={
        "number": WINDOW, "name": "综合受理 4 号窗口", "department": DEPARTMENT,
        "services": [{"service_code": "HJ", "weight": 1}, {"service_code": "SB", "weight": 1}]})
    created(hall, "POST", "/cases/departments", exists_ok=True,
            json={"center_id": CENTRE, "code": DEPARTMENT, "name": "区公安分局"})
    created(hall, "POST", "/cases/items", exists_ok=True, json=HJ_001)
    key = hall.ok("POST", "/auth/device-keys", json={"role": "terminal", "center_id": CENTRE,
                                                    "label": "4 号窗口终端", "window": WINDOW})["key"]
    return Desk(terminal_key=key, clerk_id=_person(hall, *CLERK, "clerk"),
                chief_id=_person(hall, *CHIEF, "chief_rep"))


# the page

def log_in(page: Any, username: str) -> Any:
    """The person's sign-in on the page's own form (after the terminal's key was taken from #key=); the gateway's
    sign-in limit (per address, shared by every test) is waited out as a clerk would."""
    form = page.locator("#signin-form")
    form.wait_for(state="visible", timeout=30000)
    for _ in range(8):
        page.fill("#signin-username", username)
        page.fill("#signin-password", CLERK_PASSWORD)
        page.get_by_role("button", name="登录").click()
        wait_for(lambda: page.locator("body[data-ready]").count() or page.locator("#signin-error").is_visible(),
                 within=30, what="the sign-in answered")
        if page.locator("body[data-ready]").count():
            return page
        error = page.locator("#signin-error").inner_text()
        assert "过多" in error, f"sign-in refused: {error}"
        time.sleep(6)
    raise AssertionError("the sign-in stayed rate-limited")


def terminal(open_page: Any, desk: Desk, username: str = CLERK[0]) -> Any:
    page = open_page(f"/ui/window#key={desk.terminal_key}")
    log_in(page, username)
    assert "#key=" not in page.url
    return page


def at_window(page: Any) -> None:
    """Signed in at the window with no ticket active (whatever an earlier run left)."""
    if page.locator("#sign-in").is_enabled():
        page.get_by_role("button", name="签到上岗").click()
    page.locator("#wt-state[data-state=open]").wait_for(timeout=10000)
    ticket = page.locator("body").get_attribute("data-ticket")
    if ticket == "called":
        page.locator("#skip").click()
    elif ticket == "serving":
        page.locator("#finish").click()
    page.locator("body[data-ticket=none]").wait_for(timeout=10000)


def leave(page: Any) -> None:
    """Signed out of the window (the other tests find it as they left it)."""
    if page.locator("#sign-out").is_enabled():
        page.locator("#sign-out").click()
    page.locator("#wt-state[data-state=signed_out]").wait_for(timeout=10000)


def call_until(page: Any, number: str) -> None:
    """Call next until `number` is called (tickets other tests left waiting for 户籍 or 社保 are skipped)."""
    for _ in range(40):
        page.locator("#call-next").click()
        page.locator("body[data-ticket=called]").wait_for(timeout=10000)
        if page.locator("#current-number").inner_text() == number:
            return
        page.locator("#skip").click()
        page.locator("body[data-ticket=none]").wait_for(timeout=10000)
    raise AssertionError(f"{number} was never called at window {WINDOW}")


def window_status(hall: Hall) -> dict[str, Any]:
    status = hall.ok("GET", f"/queue/centers/{CENTRE}/status")
    return next(w for w in status["windows"] if w["number"] == WINDOW)


def waiting_shown(page: Any, service: str) -> int:
    return int(page.locator(f"#waiting li[data-service={service}] .count").inner_text().split()[0])


def ticket_status(hall: Hall, issued: dict[str, Any]) -> str:
    return str(hall.ok("GET", f"/queue/public/tickets/{issued['id']}", headers={},
                       params={"code": issued["lookup_code"]})["status"])


def fill_applicant(page: Any, name: str, seed: int) -> None:
    page.get_by_label("办理事项").select_option(ITEM)
    page.get_by_label("申请人姓名").fill(name)
    page.get_by_label("身份证号码").fill(id_number(seed))


def pdf_downloaded(page: Any, button: str) -> bytes:
    with page.expect_download() as download:
        page.get_by_role("button", name=button).click()
    path = download.value.path()
    assert path is not None
    with open(path, "rb") as pdf:
        return pdf.read()


# the tests

def test_a_kiosk_ticket_is_called_started_and_finished_with_the_pages_buttons(open_page, hall, desk):
    page = terminal(open_page, desk)
    shot(page, "window-terminal-signed-out")
    assert page.locator("#call-next").is_disabled()  # nothing to call before signing in at the window
    at_window(page)
    page.locator("#live[data-state=open]").wait_for(timeout=15000)
    wait_for(lambda: page.evaluate("() => window.hallWindowTerminal.state.beats") >= 1, what="the terminal's beat")
    assert window_status(hall)["heartbeat_age_s"] is not None
    issued = hall.ok("POST", f"/queue/centers/{CENTRE}/tickets", json={"service_code": "HJ"})
    # the waiting count follows the hall live (the display feed), as the queue counts it
    wait_for(lambda: waiting_shown(page, "HJ") == next(
        s["waiting"] for s in hall.ok("GET", f"/queue/centers/{CENTRE}/status")["services"] if s["code"] == "HJ"),
        within=15, what="the live waiting count of 户籍办理")
    call_until(page, issued["number"])
    assert "已呼叫" in page.locator("#current-status").inner_text()
    assert window_status(hall)["current_ticket"]["id"] == issued["id"]
    shot(page, "window-terminal-called")
    page.get_by_role("button", name="重呼").click()
    page.locator("#current-status").filter(has_text="已重呼 1 次").wait_for(timeout=10000)
    page.get_by_role("button", name="开始办理").click()
    page.locator("body[data-ticket=serving]").wait_for(timeout=10000)
    assert ticket_status(hall, issued) == "serving"
    shot(page, "window-terminal-serving")
    page.get_by_role("button", name="办结").click()
    page.locator("body[data-ticket=none]").wait_for(timeout=10000)
    assert page.locator("#current-number").inner_text() == "—"
    assert ticket_status(hall, issued) == "done"
    assert window_status(hall)["current_ticket"] is None
    leave(page)


def test_a_ticket_in_service_is_transferred_to_another_service(open_page, hall, desk):
    page = terminal(open_page, desk)
    at_window(page)
    issued = hall.ok("POST", f"/queue/centers/{CENTRE}/tickets", json={"service_code": "HJ"})
    call_until(page, issued["number"])
    page.keyboard.press("F7")  # 开始办理 by its key
    page.locator("body[data-ticket=serving]").wait_for(timeout=10000)
    page.get_by_role("button", name="转办", exact=True).click()
    page.get_by_label("转办至").select_option("service:SB")
    shot(page, "window-terminal-transfer")
    page.get_by_role("button", name="确认转办").click()
    page.locator("body[data-ticket=none]").wait_for(timeout=10000)
    assert ticket_status(hall, issued) == "waiting"  # first in 社保业务's line now
    # window 4 serves 社保 too: the transferred ticket is the next it calls
    page.keyboard.press("F2")
    page.locator("body[data-ticket=called]").wait_for(timeout=10000)
    assert page.locator("#current-number").inner_text() == issued["number"]
    page.get_by_role("button", name="过号").click()
    page.locator("body[data-ticket=none]").wait_for(timeout=10000)
    assert ticket_status(hall, issued) == "no_show"
    leave(page)


def test_the_clerk_accepts_a_case_for_the_current_ticket_and_downloads_its_receipt(open_page, hall, desk):
    page = terminal(open_page, desk)
    at_window(page)
    issued = hall.ok("POST", f"/queue/centers/{CENTRE}/tickets", json={"service_code": "HJ"})
    call_until(page, issued["number"])
    page.get_by_role("button", name="开始办理").click()
    page.locator("body[data-ticket=serving]").wait_for(timeout=10000)
    fill_applicant(page, "司马相如", secrets.randbelow(1000))
    page.get_by_label("居民身份证").check()
    page.get_by_label("居民户口簿").check()
    assert page.locator("#accept-missing").is_hidden()
    assert page.get_by_label(f"关联当前号票 {issued['number']}").is_checked()
    shot(page, "window-terminal-accept")
    page.get_by_role("button", name="受理", exact=True).click()
    result = page.locator("#accept-result")
    result.wait_for(state="visible", timeout=15000)
    case_no = page.locator("#accepted-no").inner_text()
    code = page.locator("#accepted-code").inner_text()
    assert case_no.startswith(f"{CENTRE}-20261208-") and len(code) == 8
    case = hall.ok("GET", f"/cases/cases/{case_no}")
    assert (case["ticket_id"], case["handler_id"], case["window"]) == (issued["id"], desk.clerk_id, WINDOW)
    assert case["materials"] == ["居民身份证", "居民户口簿"]
    assert page.locator("#accepted-due").inner_text().startswith(f"{case['due_date'][5:7].lstrip('0')}月")
    shot(page, "window-terminal-accepted")
    pdf = pdf_downloaded(page, "下载受理回执（PDF）")
    assert pdf.startswith(b"%PDF")
    # the lookup code the applicant was given works on the public lookup
    public = hall.ok("GET", f"/cases/public/cases/{case_no}", headers={}, params={"code": code})
    assert public["status"] == "in_progress"
    page.get_by_role("button", name="办结").click()
    page.locator("body[data-ticket=none]").wait_for(timeout=10000)
    leave(page)


def test_a_missing_required_material_gives_the_one_time_notice_and_its_pdf(open_page, hall, desk):
    page = terminal(open_page, desk)
    fill_applicant(page, "欧阳修", secrets.randbelow(1000))
    page.get_by_label("居民身份证").check()
    missing = page.locator("#accept-missing")
    missing.filter(has_text="居民户口簿").wait_for(timeout=5000)
    assert "居民身份证" not in missing.inner_text()
    page.get_by_role("button", name="出具一次性告知书").click()
    page.locator("#notice-result").wait_for(state="visible", timeout=15000)
    notice_no = page.locator("#notice-no").inner_text()
    assert notice_no.startswith(f"{CENTRE}-YC-20261208-")
    assert page.locator("#notice-missing li").all_inner_texts() == ["居民户口簿"]
    notice = hall.ok("GET", f"/cases/notices/{notice_no}")
    assert [m["name"] for m in notice["missing"]] == ["居民户口簿"] and notice["case_no"] is None
    shot(page, "window-terminal-notice")
    assert pdf_downloaded(page, "下载一次性告知书（PDF）").startswith(b"%PDF")
    # 继续受理 keeps the notice's number for the applicant's return with everything
    page.get_by_role("button", name="继续受理").last.click()
    assert page.get_by_label("一次性告知书编号", exact=False).input_value() == notice_no


def _import(hall: Hall, desk: Desk, rows: list[tuple[str, Any]]) -> dict[str, str]:
    """Open cases of window 4's clerk from a previous system, accepted at the given moments: their numbers by
    legacy number (retried while cases has not yet heard of the clerk)."""
    run = secrets.token_hex(3)
    body = {"cases": [{"legacy_no": f"OLD-{run}-{label}", "item_code": ITEM, "accepted_at": at.isoformat(),
                       "handler": desk.clerk_id, "window": WINDOW,
                       "applicant": {"name": f"诸葛{label}", "id_number": id_number(i + secrets.randbelow(900))},
                       "materials": ["居民身份证", "居民户口簿"]} for i, (label, at) in enumerate(rows)]}
    answers: list[httpx.Response] = []

    def attempt() -> bool:
        answers.append(hall.api("POST", "/cases/import", params={"center": CENTRE}, json=body))
        return answers[-1].status_code == 201

    wait_for(attempt, within=30, what=f"the import (last: {answers[-1].text if answers else ''})")
    return {c["legacy_no"].split("-")[-1]: c["case_no"] for c in answers[-1].json()["cases"]}


def test_the_open_cases_are_coloured_by_their_clock_and_the_overdue_alert_reaches_the_window(open_page, hall, desk):
    # 5 working days promised: accepted 11-20 was due 11-27 (超期); 12-02 is due 12-09, warned from 12-08 (预警);
    # this morning's is due 12-15 (正常)
    cases = _import(hall, desk, [("red", MORNING - timedelta(days=18)), ("yellow", MORNING - timedelta(days=6)),
                                 ("green", MORNING - timedelta(minutes=20))])
    page = terminal(open_page, desk)
    page.get_by_role("tab", name="在办件").click()
    for colour, word in (("red", "超期"), ("yellow", "预警"), ("green", "正常")):
        row = page.locator(f"#cases tr[data-case='{cases[colour]}']")
        row.wait_for(timeout=10000)
        assert row.get_attribute("data-due") == colour
        assert row.locator(".due").inner_text().startswith(word)
    red = page.locator(f"#cases tr[data-case='{cases['red']}'] .due")
    # (the list is drawn again as the window's messages come: read the colour of the row drawn last)
    wait_for(lambda: red.evaluate("e => getComputedStyle(e).color") == "rgb(164, 0, 15)", what="red (--error)")
    assert "11月27日" in red.inner_text()
    shot(page, "window-terminal-cases")
    # the monitor's overdue alert names window 4: notify posts it to the window's feed, shown live
    page.get_by_role("tab", name="消息").click()
    page.locator("#messages li").filter(has_text=f"超时：办件{cases['red']}").wait_for(timeout=45000)
    shot(page, "window-terminal-messages")


def test_the_clerk_steps_away_with_a_message_comes_back_and_signs_out(open_page, hall, desk):
    page = terminal(open_page, desk)
    at_window(page)
    page.get_by_role("button", name="暂离", exact=True).click()
    page.get_by_label("去向留言").fill("去复印材料，5 分钟回来")
    page.get_by_role("button", name="确认暂离").click()
    page.locator("#wt-state[data-state=away]").wait_for(timeout=10000)
    assert "去复印材料，5 分钟回来" in page.locator("#wt-state").inner_text()
    assert page.locator("#call-next").is_disabled()
    status = window_status(hall)
    assert (status["state"], status["away_message"]) == ("away", "去复印材料，5 分钟回来")
    shot(page, "window-terminal-away")
    page.get_by_role("button", name="回岗").click()
    page.locator("#wt-state[data-state=open]").wait_for(timeout=10000)
    assert window_status(hall)["state"] == "open"
    page.get_by_role("button", name="签退").click()
    page.locator("#wt-state[data-state=signed_out]").wait_for(timeout=10000)
    status = window_status(hall)
    assert status["state"] == "signed_out" and status["clerk"] is None
    assert page.locator("#sign-in").is_enabled()
    shot(page, "window-terminal-signed-out-again")


def test_the_chief_representative_approves_the_extension_the_clerk_asked_for(open_page, hall, desk):
    case_no = _import(hall, desk, [("ext", MORNING - timedelta(minutes=30))])["ext"]
    page = terminal(open_page, desk)
    page.get_by_role("tab", name="在办件").click()
    row = page.locator(f"#cases tr[data-case='{case_no}']")
    row.get_by_role("button", name="延期").click()
    dialog = page.locator("#ask")
    dialog.get_by_label("延期工作日数", exact=False).fill("3")
    dialog.get_by_label("延期理由").fill("需要补充核查户籍档案")
    dialog.get_by_role("button", name="确定").click()
    row.filter(has_text="延期待审批").wait_for(timeout=10000)
    assert hall.ok("GET", f"/cases/cases/{case_no}")["status"] == "extension_pending"
    # the clerk signs out of the account; the chief representative signs in at the same terminal
    page.get_by_role("button", name="退出登录").click()
    log_in(page, CHIEF[0])
    page.get_by_role("tab", name="审批").click()
    pending = page.locator(f"#approvals tr[data-case='{case_no}']")
    pending.filter(has_text="延期 3 个工作日").wait_for(timeout=10000)
    shot(page, "window-terminal-approvals")
    pending.get_by_role("button", name="批准延期").click()
    page.locator("#ask").get_by_role("button", name="确定").click()
    pending.wait_for(state="detached", timeout=10000)
    case = hall.ok("GET", f"/cases/cases/{case_no}")
    assert (case["status"], case["extension_days"]) == ("in_progress", 3)
    page.get_by_role("button", name="退出登录").click()
    page.locator("#signin-form").wait_for(state="visible", timeout=10000)


def test_a_first_inquiry_referred_to_another_window_is_registered(open_page, hall, desk):
    question = f"咨询新生儿落户需要哪些材料（{secrets.token_hex(2)}）"
    page = terminal(open_page, desk)
    page.get_by_role("tab", name="首问登记").click()
    page.get_by_label("咨询方式").select_option("phone")
    page.get_by_label("咨询内容").fill(question)
    page.get_by_label("引导至其他窗口").check()
    page.get_by_label("引导至窗口").select_option("1")
    page.get_by_role("button", name="登记", exact=True).click()
    page.locator("#inquiry-done").filter(has_text="已引导至 1 号窗口").wait_for(timeout=10000)
    page.locator("#inquiries li").filter(has_text=question).wait_for(timeout=10000)
    shot(page, "window-terminal-inquiry")
    registered = [i for i in hall.ok("GET", "/cases/inquiries", params={"center": CENTRE, "limit": 200})["items"]
                  if i["question"] == question]
    assert len(registered) == 1
    i = registered[0]
    assert (i["status"], i["referred_window"], i["channel"], i["taken_by"], i["window"]) == (
        "referred", "1", "phone", desk.clerk_id, WINDOW)
