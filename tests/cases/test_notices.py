"""One-time notices of missing materials (一次性告知书, issue 22): numbered per centre and local day without gaps,
no case and no clock, notice.issued with the missing materials and the phone sealed for notify, the staff
reads with the applicant masked, and an acceptance that refers to one (same centre, item and applicant, once).
The fixed clock stands at Thu 12 Feb 2026 09:00 local; ITEM1 (N 5) lists three materials."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from shared.pii import assert_no_personal_data, unseal
from tests.cases.case_support import (
    ID,
    NAME,
    PHONE,
    A,
    B,
    accept,
    case_body,
    clerk,
    end_of,
    events,
    item,
    local,
    manager,
    seed,
    sql,
)

MATERIALS = [{"code": "SFZ", "name": "居民身份证", "required": True},
             {"code": "HKB", "name": "户口簿", "required": True},
             {"code": "ZP", "name": "近期免冠照片", "required": False}]
OTHER_ID = "110105199001011232"


@pytest.fixture
async def cases(service_client):
    async with service_client("cases") as client:
        await seed(client)
        for center in (A, B):
            await item(client, center=center)
        await item(client, "ITEM2")
        await sql(client, "UPDATE items SET materials = $1::jsonb WHERE code = 'ITEM1'", json.dumps(MATERIALS))
        yield client


def notice_body(*missing: str, center: str = A, item_code: str = "ITEM1", **applicant: Any) -> dict[str, Any]:
    return {"center": center, "item_code": item_code, "missing": list(missing) or ["HKB"],
            "applicant": {"name": NAME, "id_number": ID, "phone": PHONE, **applicant}}


async def issue(client: Any, tokens: Any, body: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = await client.post("/notices/incomplete", json=body or notice_body(), headers=headers or clerk(tokens))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_a_notice_is_numbered_per_centre_and_day_and_lists_the_materials_by_name(cases, tokens):
    first = await issue(cases, tokens, notice_body("HKB", "近期免冠照片"))
    assert first["notice_no"] == "320102-YC-20260212-0001"
    assert first["missing"] == [{"code": "HKB", "name": "户口簿"}, {"code": "ZP", "name": "近期免冠照片"}]
    assert (first["issued_by"], first["issued_by_name"], first["window"]) == ("clerk-1", "王小明", "3")
    assert (first["applicant_name_masked"], first["id_number_masked"], first["phone_masked"]) == \
        ("欧***", "1101**********002X", "138****5678")
    assert (await issue(cases, tokens))["notice_no"] == "320102-YC-20260212-0002"
    other_centre = await issue(cases, tokens, notice_body(center=B),
                               clerk(tokens, "clerk-b1", center=B))
    assert other_centre["notice_no"] == "320104-YC-20260212-0001"


async def test_the_numbers_start_again_each_local_day_and_a_refused_notice_takes_none(cases, tokens, fixed_clock):
    await issue(cases, tokens)
    r = await cases.post("/notices/incomplete", json=notice_body("HKB", "结婚证"), headers=clerk(tokens))
    assert r.status_code == 400 and r.json()["field"] == "missing[1]" and r.json()["code"] == "unknown_material"
    assert (await issue(cases, tokens))["notice_no"] == "320102-YC-20260212-0002"  # no gap
    fixed_clock.set(local(2026, 2, 13, 0, 5))  # just after local midnight: a new day
    assert (await issue(cases, tokens))["notice_no"] == "320102-YC-20260213-0001"


async def test_a_notice_opens_no_case_and_its_event_seals_the_phone_for_notify(cases, tokens, secrets):
    notice = await issue(cases, tokens, notice_body("SFZ", "HKB"))
    assert (await sql(cases, "SELECT count(*) AS n FROM cases"))[0]["n"] == 0
    assert await events(cases, "case.accepted") == []
    (issued,) = await events(cases, "notice.issued")
    data = issued["data"]
    assert (data["notice_no"], data["department"], data["missing"]) == (notice["notice_no"], "gov-ga",
                                                                        ["居民身份证", "户口簿"])
    assert (data["applicant_masked"], data["phone_masked"], data["issued_by"]["id"]) == ("欧***", "138****5678",
                                                                                         "clerk-1")
    assert unseal(secrets["NOTIFY_SEAL_PRIVATE_KEY"], data["phone_sealed"]) == PHONE
    assert_no_personal_data(json.dumps(issued, ensure_ascii=False), ID, PHONE, NAME)


async def test_an_item_that_lists_no_materials_takes_them_as_written(cases, tokens):
    notice = await issue(cases, tokens, notice_body("户口簿原件", item_code="ITEM2"))
    assert notice["missing"] == [{"code": None, "name": "户口簿原件"}]


@pytest.mark.parametrize(("body", "status", "field", "code"), [
    (notice_body("HKB", "户口簿"), 400, "missing[1]", "repeated_material"),  # its code, then its name
    (notice_body(item_code="NOPE"), 404, "item_code", "unknown_item"),
    (notice_body(id_number="110105194912310020"), 400, "applicant.id_number", "invalid_id_number"),
    ({**notice_body(), "missing": []}, 422, "missing", "validation_failed"),
    ({**notice_body(), "case_no": "x"}, 422, "case_no", "validation_failed"),
])
async def test_a_bad_notice_is_a_problem_naming_the_field(cases, tokens, body, status, field, code):
    r = await cases.post("/notices/incomplete", json=body, headers=clerk(tokens))
    assert (r.status_code, r.json()["field"], r.json()["code"]) == (status, field, code), r.text
    assert await events(cases, "notice.issued") == []


async def test_a_clerk_of_another_department_or_centre_issues_none_for_the_item(cases, tokens):
    r = await cases.post("/notices/incomplete", json=notice_body(), headers=clerk(tokens, "clerk-3",
                                                                                   department="gov-sw"))
    assert r.status_code == 403 and r.json()["code"] == "wrong_department"
    r = await cases.post("/notices/incomplete", json=notice_body(center=B), headers=clerk(tokens))
    assert r.status_code == 403 and r.json()["code"] == "wrong_center"


async def test_staff_of_the_centre_read_the_days_notices_masked(cases, tokens, fixed_clock):
    first = await issue(cases, tokens)
    fixed_clock.set(local(2026, 2, 13))
    second = await issue(cases, tokens)
    r = await cases.get("/notices", params={"center": A, "date": "2026-02-12"}, headers=manager(tokens))
    assert r.status_code == 200 and [n["notice_no"] for n in r.json()] == [first["notice_no"]]
    r = await cases.get("/notices", params={"center": A}, headers=manager(tokens))  # today by the clock
    assert [n["notice_no"] for n in r.json()] == [second["notice_no"]]
    r = await cases.get(f"/notices/{first['notice_no']}", headers=clerk(tokens, "clerk-3", department="gov-sw"))
    assert r.status_code == 200 and r.json()["id_number_masked"] == "1101**********002X"
    assert_no_personal_data(r.text, ID, PHONE, NAME)
    r = await cases.get(f"/notices/{first['notice_no']}", headers=clerk(tokens, "clerk-b1", center=B))
    assert r.status_code == 403
    assert (await cases.get("/notices/320102-YC-20260212-0099", headers=manager(tokens))).status_code == 404


async def test_an_acceptance_on_a_notice_records_it_and_starts_its_own_clock(cases, tokens, fixed_clock):
    notice = await issue(cases, tokens)
    fixed_clock.set(local(2026, 2, 25, 10))  # the applicant comes back on Wed 25 Feb with everything
    accepted = await accept(cases, tokens, notice_no=notice["notice_no"])
    # the clock starts at acceptance (25 Feb), not at the notice: 26, 27, 28 (调休), 2, 3 Mar
    assert accepted["due_at"].replace("+00:00", "Z") == end_of(date(2026, 3, 3))
    r = await cases.get(f"/cases/{accepted['case_no']}", headers=clerk(tokens))
    assert r.json()["notice_no"] == notice["notice_no"]
    (event,) = await events(cases, "case.accepted")
    assert event["data"]["notice_no"] == notice["notice_no"]
    r = await cases.get(f"/notices/{notice['notice_no']}", headers=clerk(tokens))
    assert r.json()["case_no"] == accepted["case_no"]


async def test_a_notice_is_followed_by_one_case_only(cases, tokens):
    notice = await issue(cases, tokens)
    await accept(cases, tokens, notice_no=notice["notice_no"])
    r = await cases.post("/cases", json=case_body(notice_no=notice["notice_no"]), headers=clerk(tokens))
    assert (r.status_code, r.json()["field"], r.json()["code"]) == (409, "notice_no", "notice_used")


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"item_code": "ITEM2"}, 409, "notice_other_item"),
    ({"applicant": {"name": "张三", "id_number": OTHER_ID}}, 409, "notice_other_applicant"),
    ({"notice_no": "320102-YC-20260212-0042"}, 404, "unknown_notice"),
])
async def test_an_acceptance_refers_only_to_a_notice_of_its_centre_item_and_applicant(cases, tokens, change,
                                                                                    status, code):
    notice = await issue(cases, tokens)
    body = {**case_body(notice_no=notice["notice_no"]), **change}
    r = await cases.post("/cases", json=body, headers=clerk(tokens))
    assert (r.status_code, r.json()["field"], r.json()["code"]) == (status, "notice_no", code), r.text
    assert await events(cases, "case.accepted") == []
    assert (await sql(cases, "SELECT case_no FROM notices"))[0]["case_no"] is None


async def test_a_notice_of_another_centre_is_unknown_to_an_acceptance(cases, tokens):
    notice = await issue(cases, tokens, notice_body(center=B), clerk(tokens, "clerk-b1", center=B))
    r = await cases.post("/cases", json=case_body(notice_no=notice["notice_no"]), headers=clerk(tokens))
    assert (r.status_code, r.json()["code"]) == (404, "unknown_notice")
