"""The cases' printed notices through the API (issue 22, acceptance "PDFs"): each PDF's text holds the case
number and the due date as printed; no ID or phone number in clear anywhere in the file; a notice the case has
not (yet) is a 409 naming it, an unknown kind a 404; the routes answer 401/403/404 as GET /cases/{case_no}; the
one-time notice; the service guide needs no token and prints what the item holds, and nothing of a person.

The fixed clock stands at Thu 12 Feb 2026 09:00 local; ITEM1 (N 5, L 20) accepted then is due at the end of
Thu 26 Feb (13, 14 (调休), [春节 15-23], 24, 25, 26), its legal limit (20) at the end of Wed 18 Mar (27 Feb,
28 Feb (调休), then 2-6, 9-13, 16-18 Mar)."""

from __future__ import annotations

import io

import pypdf
import pypdfium2 as pdfium
import pytest

from tests.cases.case_support import (
    DEPT,
    ID,
    NAME,
    OTHER,
    PHONE,
    A,
    B,
    accept,
    act,
    chief,
    clerk,
    item,
    seed,
    sql,
)

DUE = "2026年02月26日"
REFUSAL = {"reason": "申请人不符合迁入条件", "legal_basis": "《中华人民共和国户口登记条例》第十条"}


@pytest.fixture
async def cases(service_client):
    async with service_client("cases", public_base_url="https://hall.example",
                              center_phones={A: "025-84201234"}) as client:
        await seed(client)
        await item(client)
        await item(client, center=B)
        await sql(client, "INSERT INTO centers (id, name, address, updated_at, last_event_sequence) "
                          "VALUES ($1, '玄武区政务服务中心', '北京东路1号', now(), 1)", A)
        yield client


async def pdf(client, path: str, headers: dict[str, str] | None = None, status: int = 200, **params: str):
    r = await client.get(path, headers=headers or {}, params=params)
    assert r.status_code == status, r.text
    if status != 200:
        assert r.headers["content-type"].startswith("application/problem+json")
        return r.json()
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"].startswith("inline; filename=")
    assert r.content.startswith(b"%PDF-")
    return r.content


def text_of(body: bytes) -> str:
    return "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(body)).pages)


def assert_no_personal_data_in_clear(body: bytes) -> None:
    """Neither in the text a reader extracts nor anywhere in the file's bytes (metadata, streams)."""
    text = text_of(body)
    for secret in (ID, PHONE):
        assert secret not in text
        assert secret.encode() not in body
        assert secret.encode("utf-16-be") not in body


async def test_the_receipt_prints_the_case_its_clock_and_the_applicant_masked(cases, tokens):
    no = (await accept(cases, tokens))["case_no"]
    body = await pdf(cases, f"/cases/{no}/documents/receipt.pdf", clerk(tokens))
    text = text_of(body)
    for printed in ("承诺件告知单", "玄武区政务服务中心", "公安局", no, DUE, "2026年02月12日 09:00",
                    "户籍迁移", "身份证", "户口簿", "5个工作日", "20个工作日", "2026年03月18日", NAME,
                    "1101**********002X", "138****5678", "王小明", "咨询电话：025-84201234"):
        assert printed in text, printed
    assert "本单不再显示" in text  # the lookup code is not stored in clear: the receipt says where it is
    assert_no_personal_data_in_clear(body)
    page = pdfium.PdfDocument(body)[0].render(scale=1, grayscale=True).to_pil().convert("L")
    assert sum(1 for v in page.tobytes() if v < 128) > 5000  # the page is printed, glyphs and QR code


async def test_the_receipt_prints_the_lookup_code_given_once_only_when_it_matches(cases, tokens):
    accepted = await accept(cases, tokens)
    no, code = accepted["case_no"], accepted["lookup_code"]
    text = text_of(await pdf(cases, f"/cases/{no}/documents/receipt.pdf", clerk(tokens), code=code))
    assert f"查询码：{code}" in text
    wrong = await pdf(cases, f"/cases/{no}/documents/receipt.pdf", clerk(tokens), 400,
                      code="ABCDEFGH" if code != "ABCDEFGH" else "HGFEDCBA")
    assert (wrong["field"], wrong["code"]) == ("code", "lookup_code_mismatch")


async def test_the_supplement_notice_lists_every_missing_material_once_requested(cases, tokens):
    no = (await accept(cases, tokens))["case_no"]
    refused = await pdf(cases, f"/cases/{no}/documents/supplement.pdf", clerk(tokens), 409)
    assert (refused["field"], refused["code"]) == ("kind", "document_not_applicable")
    await act(cases, clerk(tokens), no, "request-supplement", {"missing_materials": ["户口迁移证", "准迁证"]})
    body = await pdf(cases, f"/cases/{no}/documents/supplement.pdf", clerk(tokens))
    text = text_of(body)
    for printed in ("补正材料告知书", no, "户口迁移证", "准迁证", DUE, "2026年02月12日"):
        assert printed in text, printed
    assert_no_personal_data_in_clear(body)


async def test_the_extension_notice_prints_days_reason_new_due_date_and_approver(cases, tokens):
    no = (await accept(cases, tokens))["case_no"]
    assert (await pdf(cases, f"/cases/{no}/documents/extension.pdf", clerk(tokens), 409))["code"] == \
        "document_not_applicable"
    await act(cases, clerk(tokens), no, "request-extension", {"days": 3, "reason": "需要外省协查"})
    # requested, not yet approved: still no extension to tell the applicant of
    await pdf(cases, f"/cases/{no}/documents/extension.pdf", clerk(tokens), 409)
    await act(cases, chief(tokens), no, "approve-extension", {})
    body = await pdf(cases, f"/cases/{no}/documents/extension.pdf", clerk(tokens))
    text = text_of(body)
    # 26 Feb + 3 working days: Fri 27 Feb, Sat 28 Feb (调休), Mon 2 Mar
    for printed in ("延期办理告知书", no, "3个工作日", "需要外省协查", "2026年03月02日", "陈首席"):
        assert printed in text, printed
    assert_no_personal_data_in_clear(body)


async def test_the_refusal_notice_prints_reason_basis_and_the_chief_representative(cases, tokens):
    no = (await accept(cases, tokens))["case_no"]
    await act(cases, clerk(tokens), no, "propose-refusal", REFUSAL)
    # proposed is not refused: the notice comes only with the chief representative's approval
    assert (await pdf(cases, f"/cases/{no}/documents/refusal.pdf", clerk(tokens), 409))["field"] == "kind"
    await act(cases, chief(tokens), no, "approve-refusal", {})
    body = await pdf(cases, f"/cases/{no}/documents/refusal.pdf", clerk(tokens))
    text = text_of(body)
    for printed in ("不予办理通知书", no, DUE, REFUSAL["reason"], REFUSAL["legal_basis"], "陈首席", "行政复议"):
        assert printed in text, printed
    assert_no_personal_data_in_clear(body)


async def test_the_agency_sheet_of_a_case_accepted_for_agency(cases, tokens):
    plain = (await accept(cases, tokens))["case_no"]
    assert (await pdf(cases, f"/cases/{plain}/documents/agency.pdf", clerk(tokens), 409))["code"] == \
        "document_not_applicable"
    no = (await accept(cases, tokens, source="agent", agent="clerk-2", mandate={
        "mandator": "欧阳娜娜", "reference": "WT-2026-001", "signed_on": "2026-02-11", "scope": "代为办理户籍迁移"}))["case_no"]
    body = await pdf(cases, f"/cases/{no}/documents/agency.pdf", clerk(tokens))
    text = text_of(body)
    for printed in ("全程代办承办单", no, DUE, "WT-2026-001", "代为办理户籍迁移", "李四", "2026年02月11日"):
        assert printed in text, printed
    assert_no_personal_data_in_clear(body)


async def test_an_unknown_kind_is_a_404_naming_it(cases, tokens):
    no = (await accept(cases, tokens))["case_no"]
    problem = await pdf(cases, f"/cases/{no}/documents/invoice.pdf", clerk(tokens), 404)
    assert (problem["field"], problem["code"]) == ("kind", "unknown_document")


async def test_the_documents_answer_as_the_case_does_to_who_may_not_read_it(cases, tokens):
    no = (await accept(cases, tokens))["case_no"]
    path = f"/cases/{no}/documents/receipt.pdf"
    for headers, status in ((clerk(tokens, "clerk-3", department=OTHER), 403), (clerk(tokens, center=B), 403),
                            (tokens.headers("kiosk", [A]), 403), ({}, 401)):
        as_case = await cases.get(f"/cases/{no}", headers=headers)
        as_pdf = await cases.get(path, headers=headers)
        assert as_pdf.status_code == as_case.status_code == status, as_pdf.text
        assert as_pdf.json()["code"] == as_case.json()["code"]
    for headers in (tokens.headers("supervisor", [A]), chief(tokens)):
        await pdf(cases, path, headers)
    missing = f"/cases/{A}-20260212-999999"
    assert (await cases.get(missing, headers=clerk(tokens))).status_code == 404
    await pdf(cases, f"{missing}/documents/receipt.pdf", clerk(tokens), 404)


async def test_the_one_time_notice_prints_its_number_and_everything_missing(cases, tokens):
    r = await cases.post("/notices/incomplete", headers=clerk(tokens), json={
        "center": A, "item_code": "ITEM1", "missing": ["户口簿原件", "迁入地同意证明"],
        "applicant": {"name": NAME, "id_number": ID, "phone": PHONE}})
    assert r.status_code == 201, r.text
    no = r.json()["notice_no"]
    body = await pdf(cases, f"/notices/{no}.pdf", clerk(tokens, "clerk-3", department=OTHER))
    text = text_of(body)
    for printed in ("一次性告知书", no, "户口簿原件", "迁入地同意证明", "户籍迁移", "2026年02月12日", "王小明"):
        assert printed in text, printed
    assert_no_personal_data_in_clear(body)
    await pdf(cases, f"/notices/{no}.pdf", clerk(tokens, center=B), 403)
    await pdf(cases, f"/notices/{A}-YC-20260212-9999.pdf", clerk(tokens), 404)


async def test_the_guide_needs_no_token_and_prints_what_the_item_holds(cases, tokens):
    await sql(cases, "UPDATE items SET conditions = $1::jsonb, procedure = $2::jsonb, fee_basis = $3, fees = $4, "
                     "service_objects = $5::jsonb, materials = $6::jsonb, legal_basis = $7 "
                     "WHERE center_id = $8 AND code = 'ITEM1'",
              '["在本区有合法稳定住所"]', '[{"name": "申请", "description": "到窗口提交材料"}, {"name": "审核"}]',
              "苏价费〔2026〕1号", "免费", '["natural_person"]',
              '[{"code": "M1", "name": "居民户口簿", "required": true}]', "《户口登记条例》", A)
    await accept(cases, tokens)  # a case of the item exists: nothing of its applicant belongs in the guide
    body = await pdf(cases, f"/public/items/{A}/ITEM1/guide.pdf")
    text = text_of(body)
    for printed in ("办事指南", "户籍迁移", "公安局", "申请条件", "在本区有合法稳定住所", "办理流程", "到窗口提交材料",
                    "审核", "居民户口簿", "苏价费〔2026〕1号", "自然人", "《户口登记条例》", DUE,
                    "5个工作日", "20个工作日"):
        assert printed in text, printed
    assert NAME not in text and "欧阳" not in text
    assert_no_personal_data_in_clear(body)


async def test_the_guide_leaves_out_the_parts_an_item_lacks(cases):
    text = text_of(await pdf(cases, f"/public/items/{A}/ITEM1/guide.pdf"))
    for absent in ("申请条件", "办理流程", "收费标准及依据", "服务对象", "设定依据"):
        assert absent not in text, absent
    await pdf(cases, f"/public/items/{A}/NOPE/guide.pdf", status=404)
    await sql(cases, "UPDATE departments SET active = false WHERE center_id = $1 AND code = $2", A, DEPT)
    await pdf(cases, f"/public/items/{A}/ITEM1/guide.pdf", status=404)  # as the guide itself: not shown
