"""The public pages in a real browser, on a phone (390x844) and on the hall's PC (1366x768): booking and cancelling
an appointment online (网上预约), the case lookup (办件查询), the public board (办件公示), the service guide
(办事指南) with each item's QR code, and a complaint (投诉). No token anywhere: the pages call the services'
public routes only; a refusal is shown in Chinese words, never an HTTP status."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.ui.harness import CENTRE, HJ_001, MORNING, Hall, created, shot, wait_for

PHONE = (390, 844)
PC = (1366, 768)
DEPARTMENT = "D01"
ITEM = "HJ-001"
APPLICANT = "欧阳娜娜"
ID = "11010519491231002X"
BOOKER_PHONE = "13912345678"
MASKED = "欧***"  # as the board shows the applicant (shared.pii.mask_name)
TOMORROW = MORNING.date() + timedelta(days=1)  # Wednesday 2026-12-09, a working day


@dataclass
class Seeded:
    case_no: str
    lookup_code: str


@pytest.fixture(scope="module")
def seeded(hall: Hall) -> Seeded:
    return seed_public(hall)


def seed_public(hall: Hall) -> Seeded:
    """A department and two items of the guide, a case the clerk accepted, slots of 户籍办理 every day
    09:00-12:00 by the hour, two places each, and a complaint by phone (the monitor knows the centre)."""
    created(hall, "POST", "/cases/departments",
                   json={"center_id": CENTRE, "code": DEPARTMENT, "name": "区公安分局"})
    hall.ok("POST", "/cases/items", json=HJ_001)
    hall.ok("POST", "/cases/items", json={
        "center_id": CENTRE, "code": "HJ-002", "name": "居民身份证换领", "department": DEPARTMENT,
        "kind": "immediate", "legal_limit_days": 0, "fees": "20 元"})
    case = created(hall, "POST", "/cases/cases", headers=hall.clerk, json={
        "center": CENTRE, "item_code": ITEM, "applicant": {"name": APPLICANT, "id_number": ID},
        "materials": ["居民身份证", "居民户口簿"]})
    slots = [{"weekday": d, "start": "09:00", "end": "12:00", "minutes": 60, "capacity": 2} for d in range(1, 8)]
    hall.ok("PATCH", f"/queue/centers/{CENTRE}/services/HJ", json={"slots": slots})
    # the monitor's read copy of the centre comes by the broker: the public complaint needs it
    created(hall, "POST", "/monitor/complaints", json={
        "center": CENTRE, "channel": "phone", "severity": "simple", "category": "办事效率",
        "subject": {"window": "2"}, "text": "电话反映：等候时间较长"})
    return Seeded(case_no=case["case_no"], lookup_code=case["lookup_code"])


def _local_day(day: date) -> str:
    return f"{day.month}月{day.day}日"


def ready(page: Any) -> Any:
    page.locator("body[data-ready]").wait_for(state="attached", timeout=20000)
    return page


def shots(page: Any, name: str) -> None:
    """The page on the phone it was opened on, then on the hall's PC; at neither size does it scroll sideways."""
    for width, height in (PHONE, PC):
        page.set_viewport_size({"width": width, "height": height})
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} at {width}x{height} is {overflow} px too wide"
        shot(page, name)


def on_phone(open_page: Any, path: str) -> Any:
    return ready(open_page(path, width=PHONE[0], height=PHONE[1]))


# 网上预约

def choose_tomorrows_first_slot(page: Any) -> str:
    page.select_option("#service_code", "HJ")
    page.select_option("#day", TOMORROW.isoformat())
    slot = page.locator("#slots label.slot:not(.full)").first
    slot.click()
    return str(slot.locator("input").get_attribute("value"))


def appointments_of(hall: Hall, day: date) -> dict[str, dict[str, Any]]:
    listed = hall.ok("GET", f"/queue/centers/{CENTRE}/appointments", params={"date": day.isoformat()})
    return {a["code"]: a for a in listed}


def test_an_appointment_is_booked_on_a_phone_shows_its_code_and_is_cancelled(open_page, hall, seeded):
    page = on_phone(open_page, f"/ui/appointments?center={CENTRE}")
    start = choose_tomorrows_first_slot(page)
    page.fill("#phone", BOOKER_PHONE)
    shots(page, "appointments")
    page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
    page.get_by_role("button", name="提交预约").click()
    booked = page.locator("#booked")
    booked.wait_for(state="visible")
    code = page.locator("#booked-code").inner_text()
    assert re.fullmatch(r"[A-Z0-9]{4,16}", code)
    assert page.locator("#booked-time").inner_text().startswith(_local_day(TOMORROW))
    assert page.evaluate("() => document.activeElement.id") == "booked"  # a screen reader reads it out
    stored = appointments_of(hall, TOMORROW)[code]
    assert (stored["status"], stored["channel"], stored["slot_start"]) == ("booked", "online", start)
    assert stored["phone_masked"] == "139****5678"
    shot(page, "appointments-booked")

    page.fill("#cancel-code", code.lower())  # typed as it comes: the page upper-cases it
    page.fill("#cancel-phone", BOOKER_PHONE)
    page.get_by_role("button", name="取消预约").click()
    page.locator("#cancel-result.ok").filter(has_text=f"预约 {code}").filter(has_text="已取消").wait_for()
    assert booked.is_hidden()
    assert appointments_of(hall, TOMORROW)[code]["status"] == "cancelled"
    shot(page, "appointments-cancelled")


def test_a_bad_phone_number_gets_the_message_under_the_phone_field(open_page, hall, seeded):
    page = on_phone(open_page, f"/ui/appointments?center={CENTRE}")
    choose_tomorrows_first_slot(page)
    page.fill("#phone", "12345678901")  # 11 digits, but no mainland mobile number: the service refuses it
    page.get_by_role("button", name="提交预约").click()
    under = page.locator("#book-form-phone-error")
    under.wait_for(state="visible")
    words = under.inner_text()
    assert "手机号码" in words and not re.search(r"HTTP|422|must", words)
    assert page.locator("#phone").get_attribute("aria-invalid") == "true"
    assert page.evaluate("() => document.activeElement.id") == "phone"
    assert page.locator("#booked").is_hidden()
    assert page.locator("#book-form-slot_start-error").is_hidden()  # only the field at fault is marked
    shot(page, "appointments-bad-phone")


# 办件查询

def test_the_lookup_shows_the_seeded_cases_state_in_words(open_page, seeded):
    page = on_phone(open_page, "/ui/lookup")
    page.get_by_label("办件编号").fill(seeded.case_no)
    page.get_by_label("查询码").fill(seeded.lookup_code.lower())
    page.get_by_role("button", name="查询").click()
    found = page.locator("#case")
    found.wait_for(state="visible")
    assert page.locator("#case-no").inner_text() == seeded.case_no
    assert page.locator("#case-state").inner_text() == "办理中"
    assert page.locator("#case-item").inner_text() == "户口迁移登记"
    assert page.locator("#case-department").inner_text() == "区公安分局"  # named from the centre's guide
    assert re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日前", page.locator("#case-due").inner_text())
    assert page.locator("#case-accepted").inner_text() == f"{MORNING.year}年{MORNING.month}月{MORNING.day}日"
    assert APPLICANT not in page.locator("body").inner_text()
    shots(page, "lookup")


def test_the_receipts_qr_address_asks_at_once(open_page, seeded):
    page = on_phone(open_page, f"/ui/case?no={seeded.case_no}&code={seeded.lookup_code}")
    assert page.locator("#case-state").inner_text() == "办理中"
    assert page.get_by_label("办件编号").input_value() == seeded.case_no


def test_a_wrong_lookup_code_or_an_unknown_case_gets_the_same_chinese_refusal(open_page, seeded):
    page = on_phone(open_page, "/ui/lookup")
    refusal = page.locator("#lookup-error")
    said = []
    for case_no, code in ((seeded.case_no, "ZZZZ2222"), (f"{CENTRE}-20261208-999999", seeded.lookup_code)):
        page.get_by_label("办件编号").fill(case_no)
        page.get_by_label("查询码").fill(code)
        page.get_by_role("button", name="查询").click()
        refusal.wait_for(state="visible")
        said.append(refusal.inner_text())
        assert page.locator("#case").is_hidden()
        shot(page, "lookup-refused")
        page.get_by_label("查询码").fill("")
        page.get_by_role("button", name="查询").click()  # a new question clears the last answer
        refusal.wait_for(state="hidden")
    assert said[0] == said[1] and "未查到该办件" in said[0]
    assert not re.search(r"HTTP|404|not found", said[0], re.IGNORECASE)
    assert page.locator("#lookup-form-code-error").inner_text() == "请填写查询码"  # and the empty code, as such


# 办件公示

def test_the_board_shows_the_seeded_case_with_the_applicants_name_masked(open_page, seeded):
    page = on_phone(open_page, f"/ui/board?center={CENTRE}")
    entry = page.locator(f"li.board-entry[data-case='{seeded.case_no}']")
    entry.wait_for()
    assert entry.locator(".applicant").inner_text() == MASKED
    assert "户口迁移登记" in entry.inner_text() and "区公安分局" in entry.inner_text()
    assert "受理日期" in entry.inner_text()
    assert APPLICANT not in page.content()  # nowhere on the page, not even hidden
    assert re.fullmatch(r"更新于 09:[3-5]\d", page.locator("#updated").inner_text())  # by the hall's clock
    shots(page, "board")


def test_the_board_reads_again_every_minute(open_page, hall, seeded):
    page = on_phone(open_page, f"/ui/board?center={CENTRE}")
    page.clock.install()  # the page's timers from its next load on: a minute passes when the test says so
    page.reload()
    ready(page).locator(f"li.board-entry[data-case='{seeded.case_no}']").wait_for()
    later = hall.ok("POST", "/cases/cases", headers=hall.clerk, json={
        "center": CENTRE, "item_code": ITEM, "applicant": {"name": "张三", "id_number": "110105198001011238"},
        "materials": ["居民身份证"]})
    page.clock.run_for(59000)
    assert page.locator(f"li.board-entry[data-case='{later['case_no']}']").count() == 0
    page.clock.run_for(2000)
    entry = page.locator(f"li.board-entry[data-case='{later['case_no']}']")
    entry.wait_for(timeout=10000)
    assert entry.locator(".applicant").inner_text() == "张*"
    assert page.locator("li.board-entry").first.get_attribute("data-case") == later["case_no"]  # newest first


# 办事指南

def test_the_guide_lists_the_items_and_opens_one_with_its_materials_qr_and_pdf(open_page, hall, seeded):
    page = on_phone(open_page, f"/ui/guide?center={CENTRE}")
    items = page.locator("#items > li")
    assert items.count() == 2
    assert page.locator("#match-count").inner_text() == "共 2 项"
    page.get_by_label("事项名称或编码").fill("身份证")
    wait_for(lambda: page.locator("#items > li:visible").count() == 1, what="the search to leave one item")
    assert "居民身份证换领" in page.locator("#items > li:visible").inner_text()
    page.get_by_label("事项名称或编码").fill("")
    wait_for(lambda: page.locator("#items > li:visible").count() == 2, what="both items back")
    shots(page, "guide")

    page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
    item = page.locator(f"#item-{ITEM}")
    item.locator("summary").click()
    opened(page, item)
    assert f"item={ITEM}" in page.url  # the address now opens this item
    pdf = item.get_by_role("link", name=re.compile("PDF"))
    answer = httpx.get(f"{hall.url}{pdf.get_attribute('href')}", timeout=30)
    assert answer.status_code == 200 and answer.content.startswith(b"%PDF")
    shots(page, "guide-item")


def opened(page: Any, item: Any) -> None:
    """The item is open with its limits, materials, conditions and procedure, and its QR code has loaded."""
    assert item.get_attribute("open") is not None
    materials = item.locator(".materials li")
    materials.first.wait_for()
    assert [m.split()[0] for m in materials.all_inner_texts()] == ["居民身份证", "居民户口簿", "房屋产权证明"]
    assert "按需提交" in materials.nth(2).inner_text()
    assert item.locator(".legal-limit").inner_text() == "20 个工作日"
    assert item.locator(".promised-limit").inner_text() == "5 个工作日"
    assert item.locator(".fees").inner_text() == "不收费"
    assert item.locator(".conditions li").all_inner_texts() == ["在本区有合法固定住所", "本人或其直系亲属申请"]
    assert item.locator(".procedure li").first.inner_text() == "申请：到窗口提交材料"
    qr = item.locator("img.qr")
    wait_for(lambda: qr.evaluate("img => img.complete && img.naturalWidth > 0"), what="the QR code drawn")
    assert qr.get_attribute("src").endswith(f"/ui/qr/guide/{CENTRE}/{ITEM}.svg")


def test_the_guides_item_address_opens_it_directly(open_page, seeded):
    page = on_phone(open_page, f"/ui/guide?center={CENTRE}&item={ITEM}")
    item = page.locator(f"#item-{ITEM}")
    opened(page, item)
    assert page.locator("#item-HJ-002").get_attribute("open") is None
    assert page.evaluate("() => document.activeElement.parentElement.id") == f"item-{ITEM}"
    shot(page, "guide-item-direct")
    # the printed notices' QR codes name the item code=
    other = on_phone(open_page, f"/ui/guide?center={CENTRE}&code=HJ-002")
    assert other.locator("#item-HJ-002").get_attribute("open") is not None


# 投诉建议

def fill_complaint(page: Any, contact: str) -> None:
    page.get_by_label("投诉类别").select_option("服务态度")
    page.get_by_label("窗口号").fill("1")
    page.get_by_label("投诉内容").fill("窗口工作人员办理时接听私人电话，等了十分钟。")
    page.get_by_label("联系电话（选填）").fill(contact)


def test_a_complaint_is_filed_and_its_number_and_answer_by_moment_shown(open_page, hall, seeded):
    page = on_phone(open_page, f"/ui/complaints?center={CENTRE}")
    assert page.get_by_label("部门", exact=True).locator("option", has_text="区公安分局").count() == 1
    fill_complaint(page, BOOKER_PHONE)
    shots(page, "complaints")
    page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
    page.get_by_role("button", name="提交投诉").click()
    filed = page.locator("#filed")
    filed.wait_for(state="visible")
    number = page.locator("#filed-number").inner_text()
    assert number and filed.get_attribute("data-number") == number
    assert re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}前答复", page.locator("#filed-due").inner_text())
    assert number in page.locator("#filed-text").inner_text()
    recorded = hall.ok("GET", "/monitor/complaints", params={"center": CENTRE, "limit": 200})["items"]
    mine = next(c for c in recorded if c["number"] == number)
    assert (mine["channel"], mine["category"], mine["window"]) == ("public", "服务态度", "1")
    assert mine["contact_masked"] == "139****5678"
    shot(page, "complaints-filed")


def test_a_bad_contact_number_gets_the_message_under_the_contact_field(open_page, seeded):
    page = on_phone(open_page, f"/ui/complaints?center={CENTRE}")
    fill_complaint(page, "12345")
    page.get_by_role("button", name="提交投诉").click()
    under = page.locator("#complaint-form-contact-error")
    under.wait_for(state="visible")
    assert "联系电话" in under.inner_text() and not re.search(r"HTTP|400|contact", under.inner_text())
    assert page.locator("#filed").is_hidden()
    shot(page, "complaints-bad-contact")


# without a centre

@pytest.mark.parametrize("name", ["appointments", "board", "guide", "complaints"])
def test_a_page_without_a_centre_shows_the_no_centre_message(open_page, name):
    page = on_phone(open_page, f"/ui/{name}")
    message = page.locator("#no-center")
    assert message.is_visible() and "服务中心" in message.inner_text()
    assert page.locator("form").count() == 0
    shot(page, f"{name}-no-center")
