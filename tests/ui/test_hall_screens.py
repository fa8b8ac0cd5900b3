"""The hall's screens in a real browser (issue 26): the kiosk issues a ticket whose QR page shows its place; a
clerk's call reaches the display highlighted with its announcement queued; the display survives a gateway
restart without missing a call; the window screen follows sign-in and away."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from typing import Any

import httpx

from shared.clock import LOCAL_TZ, wall_now
from tests.ui.harness import CENTRE, MORNING, Hall, clerk_at, png, shot, wait_for


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
    # (at the second screen size the board opens with window 1's earlier call highlighted: wait for this one)
    row = display.locator("tr.newest-row[data-window='1']").filter(has_text=called["number"])
    row.wait_for(timeout=10000)
    assert row.locator(".number").inner_text() == called["number"]
    spoken = display.evaluate("() => window.hallDisplay.announcer.log")
    assert spoken_form(called["number"]) in spoken[-1]  # A007 is read A零零七
    assert display.locator("#newest").inner_text().find(called["number"]) >= 0
    shot(display, "display")
    # a recall is spoken again
    hall.ok("POST", f"/queue/tickets/{called['id']}/recall", headers=hall.clerk)
    wait_for(lambda: len(display.evaluate("() => window.hallDisplay.announcer.log")) == len(spoken) + 1,
             what="the recall queued")
    assert issued["number"]
    hall.ok("POST", f"/queue/tickets/{called['id']}/skip", headers=hall.clerk)  # window 1 free for the next run


def test_the_display_reconnects_after_the_gateway_restarts_and_misses_no_call(open_page, hall, launched):
    display = open_page(f"/ui/display#key={hall.display_key}")
    live = display.locator("#live[data-state=open]")
    live.wait_for(timeout=15000)
    clerk = clerk_at(hall, "2", "li.na", "李娜")
    hall.ok("POST", f"/queue/centers/{CENTRE}/windows/2/sign-in", headers=clerk)
    for _ in range(2):
        hall.ok("POST", f"/queue/centers/{CENTRE}/tickets", json={"service_code": "SB"})
    envoy = launched.envoy()
    envoy.kill()  # the launcher's supervisor starts it again
    display.locator("#live[data-state=reconnecting]").wait_for(timeout=15000)
    # meanwhile the window calls twice, straight at the queue service (the gateway is down)
    queue = f"http://127.0.0.1:{launched.env['HALL_DEV_FIRST_SERVICE_PORT']}"
    numbers = []
    for _ in range(2):
        called = httpx.post(f"{queue}/centers/{CENTRE}/windows/2/call-next", headers=clerk, timeout=10)
        assert called.status_code == 200, called.text
        numbers.append(called.json()["number"])
        for step in ("start", "finish"):
            assert httpx.post(f"{queue}/tickets/{called.json()['id']}/{step}", headers=clerk, timeout=10).is_success
    live.wait_for(timeout=30000)  # back, with a fresh connection
    recent = display.locator("#recent")
    for number in numbers:
        recent.get_by_text(number, exact=True).wait_for(timeout=10000)
    spoken = display.evaluate("() => window.hallDisplay.announcer.log")
    said = [n for s in spoken for n in numbers if spoken_form(n) in s]
    assert said == numbers  # each said once, in the order called
    assert display.evaluate("() => window.hallDisplay.feed.connections") >= 2
    assert display.evaluate("() => window.hallDisplay.boards") == 1  # resumed from its event id: no reload
    hall.ok("POST", f"/queue/centers/{CENTRE}/windows/2/sign-out", headers=clerk)


def spoken_form(number: str) -> str:
    return number[0] + "".join("零一二三四五六七八九"[int(d)] for d in number[1:])


def test_the_window_screen_follows_sign_in_and_away(open_page, hall):
    screen = open_page(f"/ui/window-screen/3#key={hall.display_key}")
    away = screen.locator("#ws-away")
    away.filter(has_text="本窗口暂无工作人员").wait_for(timeout=15000)
    clerk = clerk_at(hall, "3", "wang.fang", "王芳", photo=png())
    hall.ok("POST", f"/queue/centers/{CENTRE}/windows/3/sign-in", headers=clerk)
    screen.locator("#ws-clerk-name").filter(has_text="王芳").wait_for(timeout=10000)
    assert away.is_hidden()
    assert screen.locator("#ws-post").inner_text() == "A 岗"
    photo = screen.locator("#ws-photo")
    wait_for(lambda: photo.evaluate("img => img.complete && img.naturalWidth === 60"), what="the clerk's photo")
    shot(screen, "window-screen")
    hall.ok("POST", f"/queue/centers/{CENTRE}/windows/3/away", headers=clerk, json={"message": "去复印材料，5 分钟回来"})
    away.filter(has_text="去复印材料，5 分钟回来").wait_for(timeout=10000)
    shot(screen, "window-screen-away")
    hall.ok("POST", f"/queue/centers/{CENTRE}/windows/3/back", headers=clerk)
    away.wait_for(state="hidden", timeout=10000)
    hall.ok("POST", f"/queue/centers/{CENTRE}/tickets", json={"service_code": "HJ"})
    called = hall.ok("POST", f"/queue/centers/{CENTRE}/windows/3/call-next", headers=clerk)
    screen.locator("#ws-current").filter(has_text=called["number"]).wait_for(timeout=10000)
    hall.ok("POST", f"/queue/tickets/{called['id']}/skip", headers=clerk)
    hall.ok("POST", f"/queue/centers/{CENTRE}/windows/3/sign-out", headers=clerk)
    away.filter(has_text="本窗口暂无工作人员").wait_for(timeout=10000)
    assert screen.locator("#ws-clerk").is_hidden()


def test_the_screens_show_the_halls_time_not_their_own(open_page, hall):
    """The hall runs a simulated morning (09:30 on 2026-12-08) whatever the machine's clock says; the kiosk and
    the display show the hall's time, as every service reads it."""
    kiosk_page = kiosk(open_page, hall)
    display = open_page(f"/ui/display#key={hall.display_key}")
    for page in (kiosk_page, display):
        clock = page.locator("#clock")

        def shows_the_halls_minute(clock: Any = clock) -> bool:
            hall_now = datetime.fromisoformat(httpx.get(f"{hall.url}/ui/time", timeout=10).json()["now"])
            minutes = {(hall_now + timedelta(minutes=d)).astimezone(LOCAL_TZ).strftime("%H:%M") for d in (-1, 0)}
            return clock.inner_text() in minutes

        wait_for(shows_the_halls_minute, within=15, what="the hall's time on the screen")
    machine = wall_now()
    hall_day = datetime.fromisoformat(httpx.get(f"{hall.url}/ui/time", timeout=10).json()["now"])
    if abs((hall_day - machine).total_seconds()) > 120:  # unless this run happens at 09:30 Shanghai
        assert display.locator("#clock").inner_text() != machine.astimezone(LOCAL_TZ).strftime("%H:%M")


def test_an_appointment_checks_in_at_the_kiosk_by_its_code(open_page, hall):
    slots = [{"weekday": d, "start": "09:00", "end": "12:00", "minutes": 60, "capacity": 3} for d in range(1, 8)]
    hall.ok("PATCH", f"/queue/centers/{CENTRE}/services/SB", json={"slots": slots})
    booked = hall.ok("POST", f"/queue/public/centers/{CENTRE}/appointments", headers={}, json={
        "service_code": "SB", "slot_start": MORNING.replace(hour=10, minute=0).isoformat(),
        "phone": f"138{secrets.randbelow(10**8):08d}"})  # a new booker at each screen size
    page = kiosk(open_page, hall)
    page.get_by_label("预约签到").fill(booked["code"].lower())  # typed as it comes: the kiosk reads it in capitals
    page.get_by_role("button", name="签到取号").click()
    slip = page.locator("#ticket")
    slip.wait_for(state="visible")
    assert re.fullmatch(r"B\d{3}", page.locator("#ticket-number").inner_text())
    assert page.locator("#slip-service").inner_text().startswith("社保业务")
    shot(page, "kiosk-check-in")
    page.locator("#ticket-close").click()
    # the same code twice: the appointment is used, and the kiosk says so in words
    page.get_by_label("预约签到").fill(booked["code"])
    page.get_by_role("button", name="签到取号").click()
    message = page.locator("#message-text")
    message.wait_for(state="visible")
    assert message.inner_text() and "HTTP" not in message.inner_text() and "409" not in message.inner_text()
