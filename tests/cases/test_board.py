"""The public board (办件公示, issue 22): without a token, a centre's latest cases accepted, completed or delivered,
newest first and each once, with item, status, stage, date and the applicant's masked name; the board and its
JSON hold no personal data and no lookup code. The fixed clock starts at Thu 12 Feb 2026 09:00 local."""

from __future__ import annotations

from typing import Any

from shared.pii import assert_no_personal_data
from tests.cases import builders
from tests.cases.case_support import ID, NAME, PHONE, A, B, accept, act, case_body, clerk, item, local

ENTRY_FIELDS = {"case_no", "item_name", "department", "status", "stage", "event", "on", "applicant"}


async def board(client: Any, **params: Any) -> Any:
    return await client.get("/public/board", params={"center": A, **params})


async def test_the_board_shows_the_latest_progress_each_case_once_newest_first(cases, tokens, fixed_clock):
    await builders.center(cases, A)
    first = (await accept(cases, tokens))["case_no"]
    second = (await accept(cases, tokens, applicant={"name": "张三", "id_number": ID}))["case_no"]
    withdrawn = (await accept(cases, tokens))["case_no"]
    await act(cases, clerk(tokens), withdrawn, "withdraw", {"reason": "申请人撤回"})
    fixed_clock.set(local(2026, 2, 13, 10))
    await act(cases, clerk(tokens), first, "complete")
    fixed_clock.set(local(2026, 2, 24, 10))
    await act(cases, clerk(tokens), first, "deliver", {"method": "window"})
    r = await board(cases)
    assert r.status_code == 200, r.text
    entries = r.json()["entries"]
    assert [(e["case_no"], e["event"], e["status"], e["on"]) for e in entries] == [
        (first, "delivered", "delivered", "2026-02-24"), (second, "accepted", "in_progress", "2026-02-12")]
    assert [e["applicant"] for e in entries] == ["欧***", "张*"]
    assert (entries[0]["item_name"], entries[0]["department"], entries[0]["stage"]) == ("户籍迁移", "公安局", "办理")
    assert all(set(e) == ENTRY_FIELDS for e in entries)
    assert (await board(cases, limit=1)).json()["entries"][0]["case_no"] == first


async def test_the_board_and_its_json_hold_no_personal_data(cases, tokens):
    await builders.center(cases, A)
    codes = [(await accept(cases, tokens))["lookup_code"] for _ in range(3)]
    r = await cases.post("/cases", json=case_body(applicant={"name": "李小龙", "id_number": ID, "phone": PHONE,
                                                             "org": "南京某某有限公司"}), headers=clerk(tokens))
    codes.append(r.json()["lookup_code"])
    r = await board(cases)
    assert len(r.json()["entries"]) == 4
    assert_no_personal_data(r.text, ID, PHONE, NAME, "李小龙", "南京某某有限公司", *codes)
    assert "1101" not in r.text and "138" not in r.text  # not even the masked ID or phone


async def test_a_centre_board_shows_its_own_cases_and_an_unknown_centre_has_none(cases, tokens):
    await builders.center(cases, A)
    await builders.center(cases, B)
    await item(cases, center=B)
    await accept(cases, tokens, headers=clerk(tokens, "clerk-b1", center=B), center=B)
    assert (await board(cases)).json()["entries"] == []
    assert len((await board(cases, center=B)).json()["entries"]) == 1
    r = await board(cases, center="999999")
    assert (r.status_code, r.json()["code"]) == (404, "unknown_center")
    assert (await board(cases, limit=51)).status_code == 422
