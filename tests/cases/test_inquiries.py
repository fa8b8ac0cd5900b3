"""The inquiry register (首问负责制, issue 22): the person first asked registers the inquiry as the taker, with
exactly one outcome (answered, referred, or a reply promised in the future; a referral may carry a promise);
the contact is sealed for notify and masked; the taker, a chief representative or the hall manager answers a
pending one later; the monitor sees a missed promise through the events alone. The fixed clock stands at
Thu 12 Feb 2026 09:00 local."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.pii import assert_no_personal_data, unseal
from tests.cases.case_support import PHONE, A, B, chief, clerk, events, local, manager

EMAIL = "zhang.san@example.cn"
TOMORROW_NOON = "2026-02-13T12:00:00+08:00"


def inquiry_body(**extra: Any) -> dict[str, Any]:
    return {"center": A, "channel": "on_site", "question": "户口迁入需要带什么材料？", **extra}


async def inquiry_events(client: Any) -> list[dict[str, Any]]:
    return [e for e in await events(client) if e["type"].startswith("inquiry.")]


async def register(client: Any, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    r = await client.post("/inquiries", json=inquiry_body(**extra), headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def answer(client: Any, headers: dict[str, str], inquiry_id: int, text: str = "带户口簿和身份证") -> Any:
    return await client.post(f"/inquiries/{inquiry_id}/answer", json={"answer": text}, headers=headers)


async def test_an_inquiry_answered_at_once_names_its_taker(cases, tokens):
    out = await register(cases, clerk(tokens), answer="户口簿、身份证", item_code="ITEM1")
    assert (out["status"], out["taken_by"], out["taken_by_name"], out["window"]) == ("answered", "clerk-1",
                                                                                    "王小明", "3")
    assert (out["department"], out["answered_by"], out["on_time"]) == ("gov-ga", "clerk-1", None)
    (registered,) = await events(cases, "inquiry.registered")
    facts = registered["data"]["inquiry"]
    assert (facts["id"], facts["status"], facts["taken_by"]["id"], facts["promised_reply_at"]) == \
        (out["id"], "answered", "clerk-1", None)


async def test_the_person_first_asked_registers_it_whatever_the_department(cases, tokens):
    out = await register(cases, clerk(tokens, "clerk-3", department="gov-sw"), item_code="ITEM1",
                         referred_window="5")
    assert (out["status"], out["referred_window"], out["taken_by"], out["department"]) == \
        ("referred", "5", "clerk-3", "gov-ga")


async def test_a_promised_reply_is_pending_and_its_event_carries_the_promise_and_the_sealed_contact(
        cases, tokens, secrets):
    out = await register(cases, manager(tokens), channel="phone", promised_reply_at=TOMORROW_NOON, contact=PHONE)
    assert (out["status"], out["contact_masked"], out["promised_reply_at"]) == \
        ("pending", "138****5678", "2026-02-13T04:00:00Z")
    (registered,) = await events(cases, "inquiry.registered")
    data = registered["data"]
    assert data["inquiry"]["promised_reply_at"] == "2026-02-13T04:00:00Z"
    assert data["contact_masked"] == "138****5678"
    assert unseal(secrets["NOTIFY_SEAL_PRIVATE_KEY"], data["contact_sealed"]) == PHONE
    assert_no_personal_data(json.dumps(registered, ensure_ascii=False), PHONE)


async def test_an_e_mail_contact_is_masked_and_sealed_too(cases, tokens, secrets):
    out = await register(cases, clerk(tokens), channel="email", referred_window="5",
                         promised_reply_at=TOMORROW_NOON, contact=EMAIL)
    assert (out["status"], out["referred_window"], out["contact_masked"]) == ("pending", "5", "z***@example.cn")
    (registered,) = await events(cases, "inquiry.registered")
    assert unseal(secrets["NOTIFY_SEAL_PRIVATE_KEY"], registered["data"]["contact_sealed"]) == EMAIL
    assert EMAIL not in json.dumps(registered)


async def test_an_inquiry_past_its_promised_reply_time_is_visible_to_the_monitor_through_its_events(
        cases, tokens, fixed_clock):
    out = await register(cases, clerk(tokens), channel="phone", promised_reply_at=TOMORROW_NOON)
    fixed_clock.set(local(2026, 2, 13, 14))  # two hours after the promise
    r = await answer(cases, clerk(tokens), out["id"])
    assert r.status_code == 200 and (r.json()["status"], r.json()["on_time"]) == ("answered", False)
    registered, answered = await inquiry_events(cases)
    assert registered["type"] == "inquiry.registered" and answered["type"] == "inquiry.answered"
    # what the monitor needs, from the events only: the promise, then an answer after it, marked late
    assert registered["data"]["inquiry"]["promised_reply_at"] == "2026-02-13T04:00:00Z"
    assert answered["data"]["inquiry"]["id"] == registered["data"]["inquiry"]["id"]
    assert (answered["data"]["on_time"], answered["data"]["by"]) == (False, "clerk-1")
    assert answered["data"]["answered_at"] > registered["data"]["inquiry"]["promised_reply_at"]


async def test_an_answer_by_the_promise_is_on_time(cases, tokens, fixed_clock):
    out = await register(cases, clerk(tokens), promised_reply_at=TOMORROW_NOON)
    fixed_clock.set(local(2026, 2, 13, 11, 59))
    r = await answer(cases, clerk(tokens), out["id"])
    assert r.json()["on_time"] is True
    assert (await events(cases, "inquiry.answered"))[0]["data"]["on_time"] is True


@pytest.mark.parametrize(("extra", "field", "code"), [
    ({"answer": "可以", "referred_window": "5"}, "referred_window", "answered_at_once"),
    ({"answer": "可以", "promised_reply_at": TOMORROW_NOON}, "promised_reply_at", "answered_at_once"),
    ({}, "answer", "no_outcome"),
    ({"promised_reply_at": "2026-02-12T08:59:00+08:00"}, "promised_reply_at", "promise_in_past"),
    ({"promised_reply_at": "2026-02-13T12:00:00"}, "promised_reply_at", "naive_time"),
    ({"answer": "可以", "contact": "12345"}, "contact", "invalid_contact"),
])
async def test_an_inquiry_has_exactly_one_outcome_and_a_promise_in_the_future(cases, tokens, extra, field, code):
    r = await cases.post("/inquiries", json=inquiry_body(**extra), headers=clerk(tokens))
    assert (r.status_code, r.json()["field"], r.json()["code"]) == (400, field, code), r.text
    assert await inquiry_events(cases) == []


async def test_an_unknown_item_or_channel_or_another_centre_is_refused(cases, tokens):
    r = await cases.post("/inquiries", json=inquiry_body(answer="是", item_code="NOPE"), headers=clerk(tokens))
    assert (r.status_code, r.json()["field"]) == (404, "item_code")
    r = await cases.post("/inquiries", json=inquiry_body(answer="是", channel="fax"), headers=clerk(tokens))
    assert (r.status_code, r.json()["field"]) == (422, "channel")
    r = await cases.post("/inquiries", json=inquiry_body(answer="是", center=B), headers=clerk(tokens))
    assert r.status_code == 403


async def test_the_taker_a_chief_representative_or_the_hall_manager_answers_another_clerk_does_not(cases, tokens):
    pending = [(await register(cases, clerk(tokens), item_code="ITEM1", promised_reply_at=TOMORROW_NOON))["id"]
               for _ in range(3)]
    r = await answer(cases, clerk(tokens, "clerk-2"), pending[0])
    assert (r.status_code, r.json()["code"]) == (403, "not_responsible")
    r = await answer(cases, chief(tokens, department="gov-sw"), pending[0])  # the item is gov-ga's
    assert (r.status_code, r.json()["code"]) == (403, "wrong_department")
    assert (await answer(cases, chief(tokens), pending[0])).json()["answered_by"] == "chief-1"
    assert (await answer(cases, manager(tokens), pending[1])).json()["answered_by"] == "manager-1"
    assert (await answer(cases, clerk(tokens), pending[2])).json()["answered_by"] == "clerk-1"


async def test_only_a_pending_inquiry_is_answered_and_once(cases, tokens):
    at_once = await register(cases, clerk(tokens), answer="是")
    referred = await register(cases, clerk(tokens), referred_window="5")
    pending = await register(cases, clerk(tokens), promised_reply_at=TOMORROW_NOON)
    assert (await answer(cases, clerk(tokens), pending["id"])).status_code == 200
    for inquiry in (at_once, referred, pending):
        r = await answer(cases, clerk(tokens), inquiry["id"], "再答一次")
        assert (r.status_code, r.json()["code"]) == (409, "not_pending")
    assert len(await events(cases, "inquiry.answered")) == 1
    assert (await answer(cases, clerk(tokens), 999999)).status_code == 404


async def test_the_register_lists_by_status_and_time_a_page_at_a_time(cases, tokens, fixed_clock):
    first = await register(cases, clerk(tokens), answer="是")
    fixed_clock.set(local(2026, 2, 12, 10))
    second = await register(cases, clerk(tokens), promised_reply_at=TOMORROW_NOON, contact=PHONE)
    third = await register(cases, clerk(tokens), promised_reply_at=TOMORROW_NOON)
    await register(cases, clerk(tokens, "clerk-b1", center=B), center=B, answer="是")
    supervisor = tokens.headers("supervisor", [A], subject="sup-1")
    r = await cases.get("/inquiries", params={"center": A, "limit": 2}, headers=supervisor)
    assert [i["id"] for i in r.json()["items"]] == [first["id"], second["id"]]
    r = await cases.get("/inquiries", params={"center": A, "after": r.json()["next_after"]}, headers=supervisor)
    assert [i["id"] for i in r.json()["items"]] == [third["id"]] and r.json()["next_after"] is None
    r = await cases.get("/inquiries", params={"center": A, "status": "pending", "since": "2026-02-12T09:30:00+08:00"},
                        headers=supervisor)
    assert [i["id"] for i in r.json()["items"]] == [second["id"], third["id"]]
    assert_no_personal_data(r.text, PHONE)
    assert r.json()["items"][0]["contact_masked"] == "138****5678"
    r = await cases.get("/inquiries", params={"center": B}, headers=supervisor)
    assert r.status_code == 403
