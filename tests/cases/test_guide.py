"""The service guide (办事指南, issue 22): an item's conditions, procedure, fee basis and service objects through
POST/PATCH /items and the public guide; its downloadable forms and samples, uploaded by the centre admin and
served to anyone; the guide shows no personal data; the compression target is a centre setting, and changing
it re-flags the items (item.upserted for those whose flag flips)."""

from __future__ import annotations

import hashlib
import json

import pytest

from shared.pii import assert_no_personal_data
from tests.cases.builders import A, B, admin, center, department, item, outbox

PHONE, EMAIL = "13812345678", "wang.wu@example.cn"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
GUIDE = {
    "conditions": ["申请人具有完全民事行为能力", "在本区有固定住所"],
    "procedure": [{"name": "申请", "description": "到窗口或网上提交材料"}, {"name": "受理", "description": None},
                  {"name": "审查", "description": None},
                  {"name": "决定", "description": "作出准予或不予许可的决定"}],
    "fee_basis": "《行政事业性收费项目目录》: 不收费",
    "service_objects": ["natural_person", "enterprise"],
}


@pytest.fixture
async def cases(service_client, tokens):
    async with service_client("cases") as client:
        await department(client, tokens, A, "D01", head_name="王五", head_phone=PHONE, head_email=EMAIL)
        yield client


def staff(tokens, center_id: str = A):
    return tokens.headers("clerk", [center_id], subject="u-clerk-1", department="D01", window="W03")


async def upload(client, tokens, code: str, name: str, content: bytes, content_type: str = "application/pdf",
                 kind: str = "form", center_id: str = A):
    return await client.put(f"/items/{center_id}/{code}/files/{name}", params={"kind": kind}, content=content,
                            headers=admin(tokens, center_id) | {"content-type": content_type})


# the guide's fields

async def test_an_item_carries_its_guide_into_the_public_guide_without_personal_data(cases, tokens):
    created = await item(cases, tokens, A, "I01", "D01", **GUIDE)
    patched = await cases.patch(f"/items/{A}/I01", headers=admin(tokens, A),
                                json={"conditions": ["在本区有固定住所"], "fee_basis": None})
    assert patched.status_code == 200, patched.text
    assert {k: created[k] for k in GUIDE} == GUIDE
    assert patched.json()["conditions"] == ["在本区有固定住所"] and patched.json()["fee_basis"] is None
    assert patched.json()["procedure"] == GUIDE["procedure"]  # what the patch did not name stays
    assert (await upload(cases, tokens, "I01", "申请表.pdf", PDF)).status_code == 201
    listed = await cases.get("/public/items", params={"center": A})
    one = await cases.get(f"/public/items/{A}/I01")
    assert listed.status_code == one.status_code == 200
    assert listed.json() == [one.json()]
    guide = one.json()
    assert (guide["conditions"], guide["procedure"], guide["service_objects"]) == (
        ["在本区有固定住所"], GUIDE["procedure"], GUIDE["service_objects"])
    assert [(f["name"], f["kind"], f["content_type"], f["size"]) for f in guide["files"]] == [
        ("申请表.pdf", "form", "application/pdf", len(PDF))]
    assert guide["speedup_percent"] == 75.0
    text = json.dumps([listed.json(), guide], ensure_ascii=False)
    assert_no_personal_data(text, PHONE, EMAIL, "王五")
    assert f"admin-{A}" not in text  # nor who uploaded the form


async def test_item_upserted_carries_the_guide_as_optional_additions(cases, tokens):
    await item(cases, tokens, A, "I01", "D01", **GUIDE)
    (event,) = await outbox(cases, "item.upserted")
    assert {k: event["data"][k] for k in GUIDE} == GUIDE
    assert event["version"] == 1 and event["data"]["compression_target_percent"] == 30


@pytest.mark.parametrize("extra,field", [
    ({"service_objects": ["martians"]}, "service_objects.0"),
    ({"procedure": [{"name": ""}]}, "procedure.0.name"),
    ({"conditions": [""]}, "conditions.0"),
    ({"procedure": [{"name": "申请", "colour": "red"}]}, "procedure.0.colour"),
])
async def test_a_bad_guide_field_is_refused_by_name(cases, tokens, extra, field):
    r = await cases.post("/items", headers=admin(tokens, A), json={
        "center_id": A, "code": "I09", "name": "事项", "department": "D01", "kind": "promised",
        "legal_limit_days": 20, "promised_limit_days": 5, **extra})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


# the downloadable forms and samples

async def test_a_form_is_uploaded_replaced_downloaded_and_removed(cases, tokens):
    await item(cases, tokens, A, "I01", "D01")
    first = await upload(cases, tokens, "I01", "申请表.pdf", PDF)
    again = await upload(cases, tokens, "I01", "申请表.pdf", PDF + b"%more\n")
    sample = await upload(cases, tokens, "I01", "示范文本.png", PNG, "image/png", kind="sample")
    assert (first.status_code, again.status_code, sample.status_code) == (201, 200, 201)
    got = await cases.get(f"/public/items/{A}/I01/files/申请表.pdf")
    assert got.status_code == 200 and got.content == PDF + b"%more\n"
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''%E7%94%B3%E8%AF%B7%E8%A1%A8.pdf"
    assert got.headers["etag"] == '"' + hashlib.sha256(PDF + b"%more\n").hexdigest() + '"'
    assert got.headers["x-content-type-options"] == "nosniff"
    cached = await cases.get(f"/public/items/{A}/I01/files/申请表.pdf", headers={"if-none-match": got.headers["etag"]})
    assert cached.status_code == 304 and cached.content == b""
    listed = await cases.get(f"/items/{A}/I01", headers=staff(tokens))
    assert [(f["name"], f["kind"]) for f in listed.json()["files"]] == [("申请表.pdf", "form"), ("示范文本.png", "sample")]
    gone = await cases.delete(f"/items/{A}/I01/files/申请表.pdf", headers=admin(tokens, A))
    assert gone.status_code == 204
    assert (await cases.get(f"/public/items/{A}/I01/files/申请表.pdf")).status_code == 404


@pytest.mark.parametrize("name,content,content_type,status,field", [
    ("表.html", b"<html></html>", "text/html", 415, "content-type"),
    ("表.pdf", b"<html>not a pdf</html>", "application/pdf", 422, "body"),
    ("表.pdf", b"", "application/pdf", 422, "body"),
    (".hidden.pdf", PDF, "application/pdf", 422, "name"),
])
async def test_an_upload_the_guide_cannot_offer_is_refused(cases, tokens, name, content, content_type, status, field):
    await item(cases, tokens, A, "I01", "D01")
    r = await upload(cases, tokens, "I01", name, content, content_type)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field
    assert (await cases.db.fetch("SELECT count(*) AS n FROM item_files"))[0]["n"] == 0


async def test_an_upload_over_the_size_limit_is_refused(service_client, tokens):
    async with service_client("cases", guide_file_max_bytes=1024) as client:
        await department(client, tokens, A, "D01")
        await item(client, tokens, A, "I01", "D01")
        r = await upload(client, tokens, "I01", "大表.pdf", PDF + b"0" * 1024)
        assert r.status_code == 413, r.text
        assert r.json()["code"] == "file_too_large"


async def test_the_files_of_an_item_out_of_the_guide_are_not_served(cases, tokens):
    await item(cases, tokens, A, "I01", "D01")
    assert (await upload(cases, tokens, "I01", "申请表.pdf", PDF)).status_code == 201
    r = await cases.patch(f"/items/{A}/I01", headers=admin(tokens, A), json={"active": False})
    assert r.status_code == 200, r.text
    assert (await cases.get(f"/public/items/{A}/I01/files/申请表.pdf")).status_code == 404
    clerk = await cases.put(f"/items/{A}/I01/files/x.pdf", content=PDF,
                            headers=staff(tokens) | {"content-type": "application/pdf"})
    assert clerk.status_code == 403


# the compression target, a centre setting

async def test_changing_the_centre_target_reflags_the_items_and_publishes_the_flipped_ones(cases, tokens):
    await item(cases, tokens, A, "FAST", "D01", legal_limit_days=20, promised_limit_days=10)  # 50 % faster
    await item(cases, tokens, A, "MID", "D01", legal_limit_days=20, promised_limit_days=14)  # 30 % faster
    await item(cases, tokens, A, "SLOW", "D01", legal_limit_days=20, promised_limit_days=18)  # 10 %
    before = await cases.get(f"/centers/{A}/settings", headers=staff(tokens))
    assert before.json() | {"updated_at": None} == {"center_id": A, "compression_target": 30, "default": True,
                                                     "updated_by": None, "updated_at": None, "reflagged": []}
    published = len(await outbox(cases, "item.upserted"))
    r = await cases.put(f"/centers/{A}/settings", headers=admin(tokens, A), json={"compression_target": 50})
    assert r.status_code == 200, r.text
    assert (r.json()["compression_target"], r.json()["default"], r.json()["reflagged"]) == (50, False, ["MID"])
    listed = await cases.get("/items", params={"center": A}, headers=staff(tokens))
    flags = {i["code"]: (i["meets_compression_target"], i["speedup_percent"], i["compression_target_percent"])
             for i in listed.json()}
    assert flags == {"FAST": (True, 50.0, 50), "MID": (False, 30.0, 50), "SLOW": (False, 10.0, 50)}
    flipped = (await outbox(cases, "item.upserted"))[published:]
    assert [(e["data"]["code"], e["data"]["meets_compression_target"], e["data"]["compression_target_percent"])
            for e in flipped] == [("MID", False, 50)]
    back = await cases.put(f"/centers/{A}/settings", headers=admin(tokens, A), json={"compression_target": 30})
    assert back.json()["reflagged"] == ["MID"]
    assert (await cases.get(f"/items/{A}/MID", headers=staff(tokens))).json()["meets_compression_target"] is True
    # another centre keeps the default
    await department(cases, tokens, B, "D01")
    other = await item(cases, tokens, B, "MID", "D01", legal_limit_days=20, promised_limit_days=14)
    assert (other["compression_target_percent"], other["meets_compression_target"]) == (30, True)


async def test_a_new_item_is_flagged_against_its_centres_own_target(cases, tokens):
    r = await cases.put(f"/centers/{A}/settings", headers=admin(tokens, A), json={"compression_target": 50})
    assert r.status_code == 200, r.text
    created = await item(cases, tokens, A, "MID", "D01", legal_limit_days=20, promised_limit_days=14)
    assert (created["meets_compression_target"], created["compression_target_percent"]) == (False, 50)
    (event,) = await outbox(cases, "item.upserted")
    assert event["data"]["meets_compression_target"] is False


@pytest.mark.parametrize("body,headers_of,status", [
    ({"compression_target": 40}, "admin", 422),
    ({"compression_target": 50, "extra": 1}, "admin", 422),
    ({"compression_target": 50}, "clerk", 403),
    ({"compression_target": 50}, "other_admin", 403),
])
async def test_the_target_is_30_or_50_set_by_the_centres_admin(cases, tokens, body, headers_of, status):
    headers = {"admin": admin(tokens, A), "clerk": staff(tokens), "other_admin": admin(tokens, B)}[headers_of]
    r = await cases.put(f"/centers/{A}/settings", headers=headers, json=body)
    assert r.status_code == status, r.text
    assert (await cases.db.fetch("SELECT count(*) AS n FROM center_settings"))[0]["n"] == 0


async def test_the_settings_of_a_centre_not_known_here_are_not_set(cases, tokens):
    system = tokens.headers("system_admin", None, subject="root")
    r = await cases.put("/centers/329999/settings", headers=system, json={"compression_target": 50})
    assert r.status_code == 404, r.text
    await center(cases, "329999")
    assert (await cases.put("/centers/329999/settings", headers=system,
                            json={"compression_target": 50})).status_code == 200
