"""The hall's screens in a real browser (issue 26): the kiosk issues a ticket whose QR page shows its place; a
clerk's call reaches the display highlighted with its announcement queued; the display survives a gateway
restart without missing a call; the window screen follows sign-in and away."""

from __future__ import annotations

import re
from typing import Any

from tests.ui.harness import CENTRE, Hall, shot, wait_for


def kiosk(open_page: Any, hall: Hall) -> Any:
    page = open_page(f"/ui/kiosk#key={hall.kiosk_key}")
    page.get_by_role("listitem").filter(has_text="户籍办理").wait_for()
    return page


def test_the_kiosk_issues_a_ticket_whose_qr_page_shows_its_place(open_page, hall):
    page = kiosk(open_page, hall)
    assert "#key=" not in page.url  # the key left the address bar once stored
    shot(page, "kiosk")
    page.get_by_role("listitem").filter(has_text="户籍办理").click()
    slip = page.locator("#ticket")
    slip.wait_for(state="visible")
    number = page.locator("#ticket-number").inner_text()
    assert re.fullmatch(r"A\d{3}", number)
    ahead = int(page.locator("#slip-ahead").inner_text().split()[0])
    shot(page, "kiosk-ticket")
    qr = page.locator("#slip-qr")
    wait_for(lambda: qr.evaluate("img => img.complete && img.naturalWidth > 0"), what="the QR code drawn")
    ticket_id, code = slip.get_attribute("data-ticket-id"), slip.get_attribute("data-code")

    phone = open_page(f"/ui/ticket/{ticket_id}?code={code}", width=390, height=844)
    phone.locator("#number").filter(has_text=number).wait_for()
    assert phone.locator("#state").inner_text() == "等候中"
    assert phone.locator("#ahead").inner_text() == f"{ahead} 人"
    shot(phone, "ticket-phone")


def test_a_closed_service_gets_the_kiosks_clear_message(open_page, hall):
    page = kiosk(open_page, hall)
    hall.ok("PATCH", f"/queue/centers/{CENTRE}/services/SB", json={"daily_limit_per_person": None, "active": False})
    # the kiosk still shows the button it loaded: a tap now gets the service's refusal in words
    page.get_by_role("listitem").filter(has_text="社保业务").click()
    message = page.locator("#message-text")
    message.wait_for(state="visible")
    assert message.inner_text() and "HTTP" not in message.inner_text()
    hall.ok("PATCH", f"/queue/centers/{CENTRE}/services/SB", json={"active": True})


def test_a_call_appears_highlighted_on_the_display_and_its_announcement_is_queued(open_page, hall):
    display = open_page(f"/ui/display#key={hall.display_key}")
    display.locator("#live[data-state=open]").wait_for(timeout=15000)
    issued = hall.ok("POST", f"/queue/centers/{CENTRE}/tickets", json={"service_code": "HJ"})
    hall.ok("POST", f"/queue/centers/{CENTRE}/windows/1/sign-in", headers=hall.clerk)
    called = hall.ok("POST", f"/queue/centers/{CENTRE}/windows/1/call-next", headers=hall.clerk)
    row = display.locator("tr.newest-row[data-window='1']")
    row.wait_for(timeout=10000)
    assert row.locator(".number").inner_text() == called["number"]
    spoken = display.evaluate("() => window.hallDisplay.announcer.log")
    digits = "".join("零一二三四五六七八九"[int(d)] for d in called["number"][1:])
    assert f"{called['number'][0]}{digits}" in spoken[-1]  # A007 is read A零零七
    assert display.locator("#newest").inner_text().find(called["number"]) >= 0
    shot(display, "display")
    # a recall is spoken again
    hall.ok("POST", f"/queue/tickets/{called['id']}/recall", headers=hall.clerk)
    wait_for(lambda: len(display.evaluate("() => window.hallDisplay.announcer.log")) == len(spoken) + 1,
             what="the recall queued")
    assert issued["number"]
