"""Personal data of a case's applicant (issue 21, acceptance; DOMAIN.md "Personal data"): the public lookup
shows nothing of the person; staff see the masked forms only; no event, history row or log line holds the ID
number, the phone, the name or the lookup code in clear, while notify can unseal the phone and the code.
The fixed clock stands at Thu 12 Feb 2026 09:00 local."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.pii import assert_no_personal_data, find_personal_data, unseal
from tests.cases.case_support import (
    ID,
    NAME,
    PHONE,
    A,
    accept,
    act,
    chief,
    clerk,
    events,
    get_case,
    history,
    item,
    seed,
)
from tests.plugins.secret_scan import remember

ID_MASKED, PHONE_MASKED, NAME_MASKED = "1101**********002X", "138****5678", "欧***"
PUBLIC_FIELDS = {"case_no", "item_name", "department", "status", "stage", "accepted_on", "due_date", "paused",
                 "result", "completed_at"}
REFUSAL = {"reason": "不符合条件", "legal_basis": "《户口登记条例》"}


@pytest.fixture
async def cases(service_client):
    async with service_client("cases") as client:
        await seed(client)
        await item(client)
        await item(client, "ITEM2", stages=[{"name": "审查", "limit_days": 2}, {"name": "决定", "limit_days": 3}])
        yield client


def no_person(text: str, *also: str) -> None:
    assert_no_personal_data(text, ID, PHONE, NAME, *also)


async def every_kind_of_event(client: Any, tokens: Any) -> list[str]:
    """Cases taken through every action, so that the outbox holds every case event type; their lookup codes."""
    codes = []
    one = await accept(client, tokens)
    codes.append(one["lookup_code"])
    no = one["case_no"]
    for action, body, who in [
        ("request-supplement", {"missing_materials": ["户口簿原件"]}, clerk),
        ("supplement", {}, clerk),
        ("start-special", {"procedure": "hearing", "reason": "听证"}, clerk),
        ("end-special", {}, clerk),
        ("request-extension", {"days": 2, "reason": "核查"}, clerk),
        ("approve-extension", {}, chief),
        ("expedite", {"promised_limit_days": 3, "reason": "特事特办"}, chief),
        ("reassign", {"handler": "clerk-2", "reason": "B角接办"}, chief),
        ("complete", {}, clerk),
        ("deliver", {"method": "post"}, clerk),
    ]:
        await act(client, who(tokens), no, action, body)
    refused = await accept(client, tokens)
    codes.append(refused["lookup_code"])
    for action, body, who in [("propose-refusal", REFUSAL, clerk), ("return-refusal", {"reason": "再核"}, chief),
                              ("propose-refusal", REFUSAL, clerk), ("approve-refusal", {}, chief)]:
        await act(client, who(tokens), refused["case_no"], action, body)
    forwarded = await accept(client, tokens)
    codes.append(forwarded["lookup_code"])
    await act(client, clerk(tokens), forwarded["case_no"], "forward", {"to_authority": "市公安局"})
    await act(client, clerk(tokens), forwarded["case_no"], "record-forward-result", {"result": "approved"})
    withdrawn = await accept(client, tokens)
    codes.append(withdrawn["lookup_code"])
    await act(client, clerk(tokens), withdrawn["case_no"], "withdraw", {"reason": "申请人撤回"})
    staged = await accept(client, tokens, "ITEM2")
    codes.append(staged["lookup_code"])
    await act(client, clerk(tokens), staged["case_no"], "advance", {})
    for code in codes:
        remember(code, "lookup code")  # the suite's secret scan fails the run if a log line holds one
    return codes


async def test_the_public_lookup_shows_nothing_of_the_applicant(cases, tokens):
    body = await accept(cases, tokens)
    r = await cases.get(f"/public/cases/{body['case_no']}", params={"code": body["lookup_code"]})
    assert r.status_code == 200, r.text
    assert set(r.json()) == PUBLIC_FIELDS
    no_person(r.text, ID_MASKED, PHONE_MASKED, NAME_MASKED, NAME[0])


async def test_the_lookup_code_of_one_case_does_not_open_another(cases, tokens):
    first, second = await accept(cases, tokens), await accept(cases, tokens)
    crossed = await cases.get(f"/public/cases/{second['case_no']}", params={"code": first["lookup_code"]})
    unknown = await cases.get(f"/public/cases/{A}-20260212-000099", params={"code": first["lookup_code"]})
    assert crossed.status_code == unknown.status_code == 404
    assert {k: v for k, v in crossed.json().items() if k not in {"correlation_id", "instance"}} == \
        {k: v for k, v in unknown.json().items() if k not in {"correlation_id", "instance"}}


async def test_staff_see_the_applicant_masked_only(cases, tokens):
    no = (await accept(cases, tokens))["case_no"]
    case = await get_case(cases, tokens, no)
    assert (case["applicant_name_masked"], case["id_number_masked"], case["phone_masked"]) == \
        (NAME_MASKED, ID_MASKED, PHONE_MASKED)
    listed = await cases.get("/cases", params={"center": A}, headers=clerk(tokens))
    assert listed.status_code == 200 and [c["case_no"] for c in listed.json()["items"]] == [no]
    no_person(json.dumps(case, ensure_ascii=False))
    no_person(listed.text)
    # no stored form of the person other than the mask leaves the service (hash and ciphertexts stay inside)
    assert not {k for k in case if k.endswith(("_hash", "_encrypted"))}


async def test_no_event_holds_the_id_phone_name_or_lookup_code_in_clear(cases, tokens):
    codes = await every_kind_of_event(cases, tokens)
    found = await events(cases)
    case_types = {e["type"] for e in found if e["type"].startswith("case.")}
    assert case_types >= {"case.accepted", "case.paused", "case.resumed", "case.extension_requested",
                          "case.extended", "case.expedited", "case.due_changed", "case.reassigned",
                          "case.completed", "case.delivered", "case.refusal_proposed", "case.refusal_returned",
                          "case.refused", "case.forwarded", "case.forward_result_recorded", "case.withdrawn",
                          "case.stage_advanced"}
    text = "\n".join(json.dumps(e, ensure_ascii=False) for e in found)
    no_person(text, *codes)
    assert find_personal_data(text) == []


async def test_notify_can_unseal_the_phone_and_the_lookup_code(cases, tokens, secrets):
    body = await accept(cases, tokens)
    (accepted,) = await events(cases, "case.accepted")
    private = secrets["NOTIFY_SEAL_PRIVATE_KEY"]
    assert unseal(private, accepted["data"]["phone_sealed"]) == PHONE
    assert unseal(private, accepted["data"]["lookup_code_sealed"]) == body["lookup_code"]
    assert (accepted["data"]["id_number_masked"], accepted["data"]["phone_masked"]) == (ID_MASKED, PHONE_MASKED)


async def test_the_history_holds_no_personal_data(cases, tokens):
    await every_kind_of_event(cases, tokens)
    numbers = [r["case_no"] for r in await cases.db.fetch("SELECT case_no FROM cases")]
    rows = [row for no in numbers for row in await history(cases, tokens, no)]
    assert len(rows) > len(numbers)
    no_person(json.dumps(rows, ensure_ascii=False))


@pytest.mark.parametrize("applicant", [
    {"name": NAME, "id_number": ID[:-1] + "9", "phone": PHONE},  # checksum wrong: the service's 400
    {"name": NAME, "id_number": ID + "1", "phone": PHONE},  # 19 characters: the schema's 422
    {"name": NAME, "id_number": ID, "phone": "1381234567"},  # a phone a digit short
], ids=["bad-checksum", "too-long", "bad-phone"])
async def test_a_refused_id_or_phone_is_not_echoed_in_the_problem(cases, tokens, applicant):
    r = await cases.post("/cases", json={"center": A, "item_code": "ITEM1", "applicant": applicant},
                         headers=clerk(tokens))
    assert r.status_code in (400, 422), r.text
    assert r.json()["field"].startswith("applicant.")
    no_person(r.text, applicant["id_number"], applicant["phone"])
