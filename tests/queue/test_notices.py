"""Hall notices (公告) and the display's scrolling area: each change publishes center.notices_changed with every
notice not yet ended (in scrolling order), the complaint phone and the items' limits and fees; the board shows
today's notices and the away messages."""

from __future__ import annotations

from services.queue.notices import copy_item
from shared.events.catalog import ItemUpserted
from shared.events.envelope import Envelope
from tests.queue.builders import A, center, outbox, service, window
from tests.queue.test_tickets import at_window

TODAY, TOMORROW, YESTERDAY = "2026-02-12", "2026-02-13", "2026-02-11"


def scrolls(events: list[dict]) -> list[dict]:
    return [e["data"] for e in events if e["type"] == "center.notices_changed"]


async def test_each_change_of_the_notices_publishes_the_whole_scrolling_area(service_client, tokens):
    async with service_client("queue") as client:
        await center(client, tokens)
        manager = tokens.headers("hall_manager", [A])
        url = f"/centers/{A}/notices"
        later = await client.post(url, headers=manager, json={"text": "周六上午预约服务", "position": 2,
                                                              "starts_on": TOMORROW})
        first = await client.post(url, headers=manager, json={"text": "请保管好随身财物", "position": 1})
        await client.post(url, headers=manager, json={"text": "昨日停电通知", "ends_on": YESTERDAY, "position": 0})
        changed = await client.patch(f"{url}/{first.json()['id']}", headers=manager, json={"text": "请勿吸烟"})
        deleted = await client.delete(f"{url}/{later.json()['id']}", headers=manager)
        gone = await client.delete(f"{url}/{later.json()['id']}", headers=manager)
        today = await client.get(f"{url}?current=true", headers=tokens.headers("display", [A]))
        events = await outbox(client)
    assert later.status_code == 201 and first.status_code == 201
    assert changed.status_code == 200 and changed.json()["text"] == "请勿吸烟"
    assert deleted.status_code == 204 and gone.status_code == 404
    texts = [[n["text"] for n in s["notices"]] for s in scrolls(events)]
    assert texts == [["周六上午预约服务"], ["请保管好随身财物", "周六上午预约服务"],
                     ["请保管好随身财物", "周六上午预约服务"],  # the ended notice is not carried
                     ["请勿吸烟", "周六上午预约服务"], ["请勿吸烟"]]
    assert scrolls(events)[0]["notices"][0]["starts_on"] == TOMORROW
    assert [n["text"] for n in today.json()] == ["请勿吸烟"]  # not tomorrow's, nor yesterday's


async def test_only_the_hall_manager_edits_notices_and_a_bad_period_names_its_field(service_client, tokens):
    async with service_client("queue") as client:
        await center(client, tokens)
        url = f"/centers/{A}/notices"
        clerk = await client.post(url, json={"text": "x"}, headers=tokens.headers("clerk", [A]))
        other = await client.post(url, json={"text": "x"}, headers=tokens.headers("hall_manager", ["320104"]))
        backwards = await client.post(url, json={"text": "x", "starts_on": TOMORROW, "ends_on": TODAY},
                                      headers=tokens.headers("hall_manager", [A]))
        empty = await client.post(url, json={"text": ""}, headers=tokens.headers("hall_manager", [A]))
        events = await outbox(client)
    assert clerk.status_code == 403 and other.status_code == 403
    assert backwards.status_code == 422 and backwards.json()["field"] == "ends_on"
    assert empty.status_code == 422 and empty.json()["field"] == "text"
    assert not scrolls(events)


async def test_the_complaint_hotline_and_the_catalogues_items_join_the_scrolling_area(service_client, tokens):
    async with service_client("queue") as client:
        await center(client, tokens)
        admin = tokens.headers("center_admin", [A])
        r = await client.put(f"/centers/{A}/settings", json={"complaint_hotline": "025-12345"}, headers=admin)
        assert r.status_code == 200, r.text
        await client.put(f"/centers/{A}/settings", json={"complaint_hotline": "025-12345", "recall_limit": 3},
                         headers=admin)  # the phone unchanged: the area is not published again
        bad = await client.put(f"/centers/{A}/settings", json={"complaint_hotline": "call us"}, headers=admin)

        async def item(sequence: int, fees: str) -> None:
            payload = ItemUpserted(center_id=A, code="HJ-01", name="户口迁移", department="D01", kind="promised",
                                   legal_limit_days=20, promised_limit_days=5, fees=fees)
            envelope = Envelope.wrap("cases", payload, subject="item:HJ-01", center_id=A).model_copy(
                update={"sequence": sequence})
            async with client.app.state.sessionmaker() as session, session.begin():
                await copy_item(session, envelope)

        await item(5, "不收费")
        await item(4, "收费 10 元")  # older: changes nothing
        board = await client.get(f"/centers/{A}/display", headers=tokens.headers("display", [A]))
        events = await outbox(client)
    assert bad.status_code == 422 and bad.json()["field"] == "complaint_hotline"
    areas = scrolls(events)
    assert [a["complaint_hotline"] for a in areas] == ["025-12345", "025-12345"]
    assert areas[-1]["items"] == [{"code": "HJ-01", "name": "户口迁移", "promised_limit_days": 5,
                                   "legal_limit_days": 20, "fees": "不收费"}]
    assert board.json()["complaint_hotline"] == "025-12345" and board.json()["items"][0]["fees"] == "不收费"


async def test_the_board_shows_todays_notices_and_the_away_message(service_client, tokens):
    async with service_client("queue") as client:
        await center(client, tokens)
        await service(client, tokens, "HJ", "A")
        await window(client, tokens, "1", {"HJ": 1})
        await window(client, tokens, "2", {"HJ": 1})
        manager = tokens.headers("hall_manager", [A])
        await client.post(f"/centers/{A}/notices", headers=manager, json={"text": "今日系统升级"})
        await client.post(f"/centers/{A}/notices", headers=manager, json={"text": "明日通知", "starts_on": TOMORROW})
        clerk = at_window(tokens, "1", "u-1")
        await client.post(f"/centers/{A}/windows/1/sign-in", headers=clerk)
        await client.post(f"/centers/{A}/windows/1/away", headers=clerk, json={"message": "3分钟内返回"})
        await client.post(f"/centers/{A}/windows/2/close", headers=manager, json={"reason": "业务学习"})
        board = await client.get(f"/centers/{A}/display", headers=tokens.headers("display", [A]))
    body = board.json()
    assert [n["text"] for n in body["notices"]] == ["今日系统升级"]
    signs = {w["number"]: w for w in body["windows"]}
    assert (signs["1"]["state"], signs["1"]["away_message"]) == ("away", "3分钟内返回")
    assert (signs["2"]["state"], signs["2"]["closed_reason"]) == ("closed", "业务学习")
