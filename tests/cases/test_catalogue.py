"""Departments (窗口单位), the item catalogue (事项目录) and the public guide (办事指南): a centre's admin
writes them, its staff read them, each change publishes its full state with the head's contacts masked and
sealed (never in clear); bad input is a 4xx naming the field and changes nothing; the guide tells a citizen
the due date of a case accepted today by the centre's calendar, and shows no person."""

from __future__ import annotations

import json

import pytest

from shared.pii import assert_no_personal_data, unseal
from tests.cases.builders import (
    A,
    B,
    admin,
    center,
    department,
    department_body,
    item,
    item_body,
    outbox,
)

PHONE, EMAIL = "13812345678", "wang.wu@example.cn"


@pytest.fixture
async def cases(service_client):
    async with service_client("cases") as client:
        yield client


# departments

async def test_a_department_is_created_listed_and_changed_with_the_head_masked(cases, tokens):
    created = await department(cases, tokens, A, "D01", head_name="王五", head_phone=PHONE, head_email=EMAIL,
                               chief_rep="u-chief-1")
    await department(cases, tokens, A, "D02")
    staff = tokens.headers("clerk", [A], department="D02")
    patched = await cases.patch(f"/departments/{A}/D01", headers=admin(tokens, A),
                                json={"name": "区市场监管局", "head_phone": "+86 139-0000-1111", "head_email": None})
    listed = await cases.get("/departments", params={"center": A}, headers=staff)
    one = await cases.get(f"/departments/{A}/D01", headers=staff)
    assert created["head_phone_masked"] == "138****5678" and created["head_email_masked"] == "w***@example.cn"
    assert created["chief_rep"] == "u-chief-1" and created["active"] is True
    assert patched.status_code == 200, patched.text
    assert (patched.json()["name"], patched.json()["head_phone_masked"], patched.json()["head_email_masked"]) == (
        "区市场监管局", "139****1111", None)
    assert patched.json()["head_name"] == "王五" and patched.json()["chief_rep"] == "u-chief-1"  # untouched stay
    assert [d["code"] for d in listed.json()] == ["D01", "D02"]
    assert one.json() == patched.json()
    for answer in (created, patched.json(), listed.json()):
        assert_no_personal_data(json.dumps(answer, ensure_ascii=False), PHONE, EMAIL, "13900001111")


async def test_department_events_carry_the_full_state_sealed_for_notify_never_in_clear(cases, tokens, secrets):
    await department(cases, tokens, A, "D01", head_name="王五", head_phone=PHONE, head_email=EMAIL,
                     chief_rep="u-chief-1")
    r = await cases.patch(f"/departments/{A}/D01", headers=admin(tokens, A), json={"chief_rep": "u-chief-2"})
    assert r.status_code == 200, r.text
    events = await outbox(cases, "department.upserted")
    rows = await cases.db.fetch("SELECT * FROM departments")
    assert [e["data"]["chief_rep"] for e in events] == ["u-chief-1", "u-chief-2"]
    assert [(e["subject"], e["center_id"]) for e in events] == [(f"{A}:D01", A)] * 2
    later = events[1]["data"]  # a change of another field still carries the contacts: the full state
    assert (later["name"], later["head_name"], later["head_phone_masked"], later["head_email_masked"]) == (
        "窗口单位 D01", "王五", "138****5678", "w***@example.cn")
    private = secrets["NOTIFY_SEAL_PRIVATE_KEY"]
    assert unseal(private, later["head_phone_sealed"]) == PHONE
    assert unseal(private, later["head_email_sealed"]) == EMAIL
    assert_no_personal_data(json.dumps(events, ensure_ascii=False), PHONE, EMAIL)
    assert_no_personal_data(str([dict(r) for r in rows]), PHONE, EMAIL)  # stored encrypted, not in clear


@pytest.mark.parametrize("extra,field", [
    ({"head_phone": "12345"}, "head_phone"),
    ({"head_email": "not-an-address"}, "head_email"),
    ({"code": "D 01"}, "code"),
    ({"name": ""}, "name"),
])
async def test_a_bad_department_is_422_naming_the_field(cases, tokens, extra, field):
    await center(cases, A)
    r = await cases.post("/departments", headers=admin(tokens, A), json=department_body(A, "D01") | extra)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert "12345" not in r.json()["detail"] and "not-an-address" not in r.json()["detail"]  # never echoed
    assert await outbox(cases, "department.upserted") == []


async def test_a_department_of_an_unknown_centre_or_a_taken_code_is_refused(cases, tokens):
    unknown = await cases.post("/departments", headers=admin(tokens, B), json=department_body(B, "D01"))
    await department(cases, tokens, A, "D01")
    taken = await cases.post("/departments", headers=admin(tokens, A), json=department_body(A, "D01"))
    missing = await cases.patch(f"/departments/{A}/D09", headers=admin(tokens, A), json={"name": "x"})
    nulled = await cases.patch(f"/departments/{A}/D01", headers=admin(tokens, A), json={"name": None})
    assert (unknown.status_code, unknown.json()["field"], unknown.json()["code"]) == (422, "center_id",
                                                                                     "unknown_center")
    assert (taken.status_code, taken.json()["field"]) == (409, "code")
    assert (missing.status_code, missing.json()["field"]) == (404, "code")
    assert (nulled.status_code, nulled.json()["field"]) == (422, "name")
    assert len(await outbox(cases, "department.upserted")) == 1


# items

async def test_an_item_is_created_with_defaults_listed_and_changed(cases, tokens):
    await department(cases, tokens, A, "D01")
    await department(cases, tokens, A, "D02")
    stages = [{"name": "审查", "limit_days": 3}, {"name": "决定", "limit_days": 2}]
    materials = [{"code": "M1", "name": "营业执照"}, {"code": "M2", "name": "身份证明", "required": False}]
    created = await item(cases, tokens, A, "I01", "D01", stages=stages, materials=materials, fees="不收费",
                         legal_basis="《食品经营许可管理办法》第十四条")
    await item(cases, tokens, A, "I02", "D02", kind="immediate", legal_limit_days=1, promised_limit_days=None)
    patched = await cases.patch(f"/items/{A}/I01", headers=admin(tokens, A),
                                json={"promised_limit_days": 8, "stages": [{"name": "审查", "limit_days": 8}],
                                      "warn_days": 2, "fees": None})
    staff = tokens.headers("supervisor", [A])
    all_items = await cases.get("/items", params={"center": A}, headers=staff)
    of_d02 = await cases.get("/items", params={"center": A, "department": "D02"}, headers=staff)
    one = await cases.get(f"/items/{A}/I01", headers=staff)
    assert (created["warn_days"], created["max_extension_days"], created["forward_followup_days"],
            created["special_limit_days"], created["active"]) == (1, 10, 20, 10, True)
    assert created["stages"] == stages and created["materials"][1] == materials[1]
    assert created["speedup_percent"] == 75.0
    assert patched.status_code == 200, patched.text
    assert (patched.json()["promised_limit_days"], patched.json()["warn_days"], patched.json()["fees"]) == (8, 2, None)
    assert patched.json()["materials"] == created["materials"] and patched.json()["legal_limit_days"] == 20
    assert [i["code"] for i in all_items.json()] == ["I01", "I02"]
    assert [(i["code"], i["kind"], i["promised_limit_days"]) for i in of_d02.json()] == [("I02", "immediate", 0)]
    assert one.json() == patched.json()


async def test_item_events_carry_the_full_state(cases, tokens):
    await department(cases, tokens, A, "D01")
    await item(cases, tokens, A, "I01", "D01", materials=[{"code": "M1", "name": "申请书"}], legal_basis="某法")
    r = await cases.patch(f"/items/{A}/I01", headers=admin(tokens, A), json={"active": False})
    assert r.status_code == 200, r.text
    events = await outbox(cases, "item.upserted")
    assert [(e["subject"], e["center_id"], e["data"]["active"]) for e in events] == [
        (f"{A}:I01", A, True), (f"{A}:I01", A, False)]
    last = events[-1]["data"]
    assert {k: last[k] for k in ("code", "name", "department", "kind", "legal_limit_days", "promised_limit_days",
                                 "warn_days", "max_extension_days", "forward_followup_days", "special_limit_days",
                                 "legal_basis", "meets_compression_target")} == {
        "code": "I01", "name": "事项 I01", "department": "D01", "kind": "promised", "legal_limit_days": 20,
        "promised_limit_days": 5, "warn_days": 1, "max_extension_days": 10, "forward_followup_days": 20,
        "special_limit_days": 10, "legal_basis": "某法", "meets_compression_target": True}
    assert last["materials"] == [{"code": "M1", "name": "申请书", "required": True}]


@pytest.mark.parametrize("extra,field,code", [
    ({"promised_limit_days": 21}, "promised_limit_days", "promised_over_legal"),
    ({"kind": "immediate", "promised_limit_days": 3}, "promised_limit_days", "immediate_has_no_limit"),
    ({"department": "D99"}, "department", "unknown_department"),
    ({"promised_limit_days": None}, "promised_limit_days", "validation_failed"),  # a promised item needs one
    ({"stages": [{"name": "审查", "limit_days": 4}, {"name": "决定", "limit_days": 2}]}, "stages",
     "stages_over_promised"),
    ({"stages": [{"name": "审查", "limit_days": 1}, {"name": "审查", "limit_days": 1}]}, "stages[1].name",
     "validation_failed"),
    ({"materials": [{"code": "M1", "name": "a"}, {"code": "M1", "name": "b"}]}, "materials[1].code",
     "validation_failed"),
    ({"kind": "urgent"}, "kind", None),
    ({"legal_limit_days": -1}, "legal_limit_days", None),
])
async def test_a_bad_item_is_refused_naming_the_field_and_nothing_is_added(cases, tokens, extra, field, code):
    await department(cases, tokens, A, "D01")
    r = await cases.post("/items", headers=admin(tokens, A), json=item_body(A, "I01", "D01", **extra))
    listed = await cases.get("/items", params={"center": A}, headers=admin(tokens, A))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    if code:
        assert r.json()["code"] == code
    assert listed.json() == [] and await outbox(cases, "item.upserted") == []


@pytest.mark.parametrize("change,field,code", [
    ({"legal_limit_days": 4}, "legal_limit_days", "promised_over_legal"),  # below the promised 5
    ({"promised_limit_days": 30}, "promised_limit_days", "promised_over_legal"),
    ({"kind": "immediate"}, "kind", "immediate_has_no_limit"),  # its promised limit is still 5
    ({"promised_limit_days": 2}, "promised_limit_days", "stages_over_promised"),  # its stages take 3
    ({"department": "D99"}, "department", "unknown_department"),
    ({"department": "D02"}, "department", "department_inactive"),
    ({"warn_days": None}, "warn_days", "validation_failed"),
])
async def test_a_bad_change_of_an_item_is_refused_naming_the_field_and_changes_nothing(cases, tokens, change,
                                                                                        field, code):
    await department(cases, tokens, A, "D01")
    await department(cases, tokens, A, "D02")
    r = await cases.patch(f"/departments/{A}/D02", headers=admin(tokens, A), json={"active": False})
    assert r.status_code == 200, r.text
    before = await item(cases, tokens, A, "I01", "D01", stages=[{"name": "审查", "limit_days": 3}])
    r = await cases.patch(f"/items/{A}/I01", headers=admin(tokens, A), json=change)
    after = await cases.get(f"/items/{A}/I01", headers=admin(tokens, A))
    assert r.status_code == (409 if code == "department_inactive" else 422), r.text
    assert (r.json()["field"], r.json()["code"]) == (field, code)
    assert after.json() == before
    assert len(await outbox(cases, "item.upserted")) == 1


async def test_the_compression_target_flags_items_whose_promise_is_not_fast_enough(cases, tokens):
    await department(cases, tokens, A, "D01")
    exactly = await item(cases, tokens, A, "I14", "D01", promised_limit_days=14)  # 20 x (1 - 30%) = 14
    slow = await item(cases, tokens, A, "I15", "D01", promised_limit_days=15)
    at_once = await item(cases, tokens, A, "I00", "D01", kind="immediate", legal_limit_days=0,
                         promised_limit_days=0)
    events = {e["data"]["code"]: e["data"]["meets_compression_target"] for e in await outbox(cases, "item.upserted")}
    assert (exactly["meets_compression_target"], slow["meets_compression_target"]) == (True, False)
    assert (slow["speedup_percent"], at_once["speedup_percent"], at_once["meets_compression_target"]) == (
        25.0, None, True)
    assert events == {"I14": True, "I15": False, "I00": True}


async def test_a_centre_may_set_a_stricter_compression_target(service_client, tokens):
    async with service_client("cases", compression_target_percent=50) as client:
        await department(client, tokens, A, "D01")
        fourteen = await item(client, tokens, A, "I14", "D01", promised_limit_days=14)
        ten = await item(client, tokens, A, "I10", "D01", promised_limit_days=10)
    assert (fourteen["meets_compression_target"], ten["meets_compression_target"]) == (False, True)


# who may

async def test_only_the_centres_admin_writes_and_only_its_staff_read(cases, tokens):
    await department(cases, tokens, A, "D01")
    await item(cases, tokens, A, "I01", "D01")
    await center(cases, B)
    clerk = tokens.headers("clerk", [A], department="D01")
    other_admin = admin(tokens, B)
    answers = {
        "clerk creates a department": await cases.post("/departments", headers=clerk,
                                                       json=department_body(A, "D02")),
        "clerk creates an item": await cases.post("/items", headers=clerk, json=item_body(A, "I02", "D01")),
        "clerk changes an item": await cases.patch(f"/items/{A}/I01", headers=clerk, json={"name": "x"}),
        "chief rep changes the department": await cases.patch(
            f"/departments/{A}/D01", headers=tokens.headers("chief_rep", [A], department="D01"), json={"name": "x"}),
        "another centre's admin creates here": await cases.post("/departments", headers=other_admin,
                                                                json=department_body(A, "D03")),
        "another centre's admin changes an item": await cases.patch(f"/items/{A}/I01", headers=other_admin,
                                                                    json={"name": "x"}),
        "another centre's admin reads": await cases.get("/items", params={"center": A}, headers=other_admin),
        "another centre's clerk reads": await cases.get(f"/departments/{A}/D01",
                                                        headers=tokens.headers("clerk", [B])),
        "a kiosk reads the staff catalogue": await cases.get("/items", params={"center": A},
                                                             headers=tokens.headers("kiosk", [A])),
    }
    read = await cases.get(f"/items/{A}/I01", headers=clerk)
    no_token = await cases.get("/departments", params={"center": A})
    assert {what: r.status_code for what, r in answers.items()} == {what: 403 for what in answers}
    assert answers["another centre's admin creates here"].json()["field"] == "center_id"
    assert read.status_code == 200 and read.json()["name"] == "事项 I01"  # nothing was changed
    assert no_token.status_code == 401
    assert len(await outbox(cases, "item.upserted")) == 1 and len(await outbox(cases, "department.upserted")) == 1


async def test_a_system_admin_writes_for_any_centre(cases, tokens):
    await center(cases, B)
    system = tokens.headers("system_admin", ["*"])
    r = await cases.post("/departments", headers=system, json=department_body(B, "D01"))
    assert r.status_code == 201, r.text
    r = await cases.post("/items", headers=system, json=item_body(B, "I01", "D01"))
    assert r.status_code == 201, r.text


# the public guide (办事指南)

async def test_the_guide_shows_the_due_date_of_a_case_accepted_today_across_the_spring_festival(cases, tokens):
    # the clock says Thu 2026-02-12; N = 5: 13 Feb, 14 Feb (调休), [15-23 Feb Spring Festival], 24, 25, 26 Feb
    await department(cases, tokens, A, "D01", head_name="王五", head_phone=PHONE, head_email=EMAIL)
    await item(cases, tokens, A, "I01", "D01", stages=[{"name": "审查", "limit_days": 5}],
               materials=[{"code": "M1", "name": "申请书"}], fees="不收费", legal_basis="某法")
    r = await cases.get(f"/public/items/{A}/I01")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["today"], body["due_date_if_accepted_today"], body["due_at_if_accepted_today"]) == (
        "2026-02-12", "2026-02-26", "2026-02-26T15:59:59Z")
    assert (body["name"], body["department_name"], body["kind"], body["legal_limit_days"],
            body["promised_limit_days"], body["fees"], body["legal_basis"]) == (
        "事项 I01", "窗口单位 D01", "promised", 20, 5, "不收费", "某法")
    assert body["stages"] == [{"name": "审查", "limit_days": 5}] and body["materials"][0]["code"] == "M1"
    assert body["fallback_years"] == []
    text = r.text
    assert "王五" not in text and "138****5678" not in text and "w***@" not in text and "head" not in text
    assert_no_personal_data(text, PHONE, EMAIL)


async def test_the_guide_counts_with_the_centres_own_calendar(cases, tokens):
    await department(cases, tokens, A, "D01")
    await department(cases, tokens, B, "D01")
    await item(cases, tokens, A, "I01", "D01")
    await item(cases, tokens, B, "I01", "D01")
    r = await cases.put("/calendar/overrides", params={"center": A}, headers=admin(tokens, A),
                        json={"days": [{"date": "2026-02-25", "kind": "holiday", "reason": "台风停工"}]})
    assert r.status_code == 200, r.text
    a = await cases.get(f"/public/items/{A}/I01")
    b = await cases.get(f"/public/items/{B}/I01")
    assert a.json()["due_date_if_accepted_today"] == "2026-02-27"  # Wed 25 Feb closed for A only
    assert b.json()["due_date_if_accepted_today"] == "2026-02-26"


async def test_an_immediate_item_is_due_today_and_inactive_items_are_hidden(cases, tokens):
    await department(cases, tokens, A, "D01")
    await department(cases, tokens, A, "D02")
    await item(cases, tokens, A, "I01", "D01", kind="immediate", promised_limit_days=0)
    await item(cases, tokens, A, "I02", "D01", active=False)
    await item(cases, tokens, A, "I03", "D02")
    r = await cases.patch(f"/departments/{A}/D02", headers=admin(tokens, A), json={"active": False})
    assert r.status_code == 200, r.text
    listed = await cases.get("/public/items", params={"center": A})
    inactive = await cases.get(f"/public/items/{A}/I02")
    of_inactive_department = await cases.get(f"/public/items/{A}/I03")
    unknown = await cases.get(f"/public/items/{A}/NOPE")
    assert [(i["code"], i["due_date_if_accepted_today"], i["due_at_if_accepted_today"]) for i in listed.json()] == [
        ("I01", "2026-02-12", "2026-02-12T15:59:59Z")]
    assert inactive.status_code == of_inactive_department.status_code == unknown.status_code == 404
    assert inactive.json()["field"] == "code"
