"""全程代办 (issue 22): a case accepted with source agent records the mandate (委托) and the assigned agent, a
clerk or chief representative of the item's department; the case's readers see it; the agent (or the chief
representative) hands the result back once the case is completed, with the fee settlement, audited and
published once. The fixed clock stands at Thu 12 Feb 2026 09:00 local."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.pii import assert_no_personal_data
from tests.cases.case_support import (
    ID,
    NAME,
    PHONE,
    accept,
    act,
    case_body,
    chief,
    clerk,
    events,
    history,
    manager,
    sql,
)

MANDATOR = "南京欧阳贸易有限公司"
MANDATE = {"mandator": MANDATOR, "reference": "WT-2026-0012", "signed_on": "2026-02-11", "scope": "代为申请户籍迁移并领取结果"}
AGENT = "clerk-2"  # 李四, a clerk of the item's department gov-ga


def agency_case(**extra: Any) -> dict[str, Any]:
    return {"source": "agent", "mandate": MANDATE, "agent": AGENT, **extra}


async def hand_back(client: Any, headers: dict[str, str], case_no: str, **body: Any) -> Any:
    return await client.post(f"/cases/{case_no}/hand-back", json={"fees_settled": "免费", **body}, headers=headers)


async def test_an_agency_case_records_the_mandate_and_the_agent_for_its_readers(cases, tokens):
    no = (await accept(cases, tokens, **agency_case()))["case_no"]
    r = await cases.get(f"/cases/{no}/agency", headers=manager(tokens))
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["agent_id"], out["agent_name"], out["assigned_by"]) == (AGENT, "李四", "clerk-1")
    assert (out["mandate_reference"], out["mandate_signed_on"], out["mandate_scope"]) == \
        ("WT-2026-0012", "2026-02-11", MANDATE["scope"])
    assert out["mandator_masked"] == "南*********" and MANDATOR not in r.text
    assert (out["handed_back_at"], out["fees_settled"]) == (None, None)
    (accepted,) = await events(cases, "case.accepted")
    assert accepted["data"]["source"] == "agent"
    assert accepted["data"]["agent"] == {"id": AGENT, "display_name": "李四"}
    assert (await history(cases, tokens, no))[0]["details"]["agent"] == AGENT
    assert MANDATOR not in json.dumps(accepted, ensure_ascii=False)


async def test_the_agency_is_read_as_the_case_is(cases, tokens):
    no = (await accept(cases, tokens, **agency_case()))["case_no"]
    r = await cases.get(f"/cases/{no}/agency", headers=clerk(tokens, "clerk-3", department="gov-sw"))
    assert r.status_code == 403
    plain = (await accept(cases, tokens))["case_no"]
    r = await cases.get(f"/cases/{plain}/agency", headers=clerk(tokens))
    assert (r.status_code, r.json()["code"]) == (404, "no_agency")


@pytest.mark.parametrize(("extra", "status", "field", "code"), [
    ({"source": "agent", "agent": AGENT}, 400, "mandate", "agency_incomplete"),
    ({"source": "agent", "mandate": MANDATE}, 400, "agent", "agency_incomplete"),
    ({"mandate": MANDATE}, 400, "mandate", "agency_only"),
    ({"agent": AGENT}, 400, "agent", "agency_only"),
    (agency_case(agent="clerk-3"), 409, "agent", "wrong_agent"),  # another department's clerk
    (agency_case(agent="clerk-b1"), 409, "agent", "wrong_agent"),  # another centre's clerk
    (agency_case(agent="nobody"), 409, "agent", "unknown_agent"),
    (agency_case(mandate={**MANDATE, "signed_on": "2026-02-13"}), 400, "mandate.signed_on",
     "mandate_after_acceptance"),
    (agency_case(mandate={**MANDATE, "scope": ""}), 422, "mandate.scope", "validation_failed"),
])
async def test_an_agency_acceptance_needs_its_mandate_and_an_agent_of_the_department(cases, tokens, extra,
                                                                                    status, field, code):
    r = await cases.post("/cases", json=case_body(**extra), headers=clerk(tokens))
    assert (r.status_code, r.json()["field"], r.json()["code"]) == (status, field, code), r.text
    assert await events(cases, "case.accepted") == []
    assert (await sql(cases, "SELECT count(*) AS n FROM case_agencies"))[0]["n"] == 0


async def test_the_agent_hands_the_result_back_once_the_case_is_completed(cases, tokens):
    no = (await accept(cases, tokens, **agency_case()))["case_no"]
    r = await hand_back(cases, clerk(tokens, AGENT), no)
    assert (r.status_code, r.json()["code"]) == (409, "not_completed")
    await act(cases, clerk(tokens), no, "complete")
    r = await hand_back(cases, clerk(tokens, AGENT), no, fees_settled="已缴 50.00 元", note="结果已交申请人")
    assert r.status_code == 200, r.text
    assert (r.json()["fees_settled"], r.json()["handed_back_by"], r.json()["hand_back_note"]) == \
        ("已缴 50.00 元", AGENT, "结果已交申请人")
    assert r.json()["handed_back_at"] == "2026-02-12T01:00:00Z"
    (event,) = await events(cases, "case.handed_back")
    data = event["data"]
    assert (data["case"]["case_no"], data["case"]["status"], data["agent"]["id"], data["fees_settled"]) == \
        (no, "completed", AGENT, "已缴 50.00 元")
    entry = (await history(cases, tokens, no))[-1]
    assert (entry["action"], entry["actor_id"], entry["from_status"], entry["to_status"]) == \
        ("hand-back", AGENT, "completed", "completed")
    assert entry["details"] == {"agent": AGENT, "fees_settled": "已缴 50.00 元"}
    r = await hand_back(cases, clerk(tokens, AGENT), no)
    assert (r.status_code, r.json()["code"]) == (409, "already_handed_back")
    assert len(await events(cases, "case.handed_back")) == 1
    assert_no_personal_data(json.dumps(event, ensure_ascii=False), ID, PHONE, NAME)


async def test_the_chief_representative_hands_back_for_the_agent_another_clerk_does_not(cases, tokens):
    no = (await accept(cases, tokens, **agency_case()))["case_no"]
    await act(cases, clerk(tokens), no, "complete")
    await act(cases, clerk(tokens), no, "deliver", {"method": "window"})
    r = await hand_back(cases, clerk(tokens), no)  # the handler, not the agent
    assert (r.status_code, r.json()["code"]) == (403, "not_the_agent")
    r = await hand_back(cases, clerk(tokens, "clerk-3", department="gov-sw"), no)
    assert (r.status_code, r.json()["code"]) == (403, "wrong_department")
    r = await hand_back(cases, chief(tokens), no)  # delivered: handing back comes after delivery too
    assert r.status_code == 200 and r.json()["handed_back_by"] == "chief-1"


async def test_a_case_without_agency_or_withdrawn_is_not_handed_back(cases, tokens):
    plain = (await accept(cases, tokens))["case_no"]
    await act(cases, clerk(tokens), plain, "complete")
    r = await hand_back(cases, chief(tokens), plain)
    assert (r.status_code, r.json()["code"]) == (404, "no_agency")
    withdrawn = (await accept(cases, tokens, **agency_case()))["case_no"]
    await act(cases, clerk(tokens), withdrawn, "withdraw", {"reason": "申请人撤回"})
    r = await hand_back(cases, clerk(tokens, AGENT), withdrawn)
    assert (r.status_code, r.json()["code"]) == (409, "not_completed")
    assert await events(cases, "case.handed_back") == []
