"""The rules of a case beyond its clock (issue 21, acceptance), through the API: refusal only through the
chief representative (否定事项报备制); every refused request (an illegal transition, a second 补正, a second
or too long extension, a pause or extension of an overdue case, an unknown item, the wrong centre, department
or role) is a problem+json that changes nothing and publishes nothing; forwarding (上报) with its follow-up
moment; late completion with its overdue working days; reassignment; the audit trail.

Dates are counted by hand from ../shared/official-holidays.md. Unless a test moves it, the fixed clock stands
at Thu 12 Feb 2026 09:00 local; the item ITEM1 has N 5, L 20, W 1, extension limit 10, follow-up 20: accepted
then, a case is due at the end of Thu 26 Feb (13, 14 (调休), [春节 15-23], 24, 25, 26)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest

from tests.cases.case_support import (
    ID,
    OTHER,
    A,
    B,
    accept,
    act,
    case_body,
    chief,
    clerk,
    end_of,
    events,
    get_case,
    history,
    item,
    local,
    manager,
    seed,
    sql,
)

ITEM_STAGED = "ITEM2"  # stages 审查 2, 决定 3
REFUSAL = {"reason": "申请人不符合迁入条件", "legal_basis": "《中华人民共和国户口登记条例》第十条"}
IN_PROGRESS_ALLOWED = ["advance", "complete", "expedite", "forward", "propose-refusal", "reassign",
                       "request-extension", "request-supplement", "start-special", "withdraw"]


@pytest.fixture
async def cases(service_client):
    async with service_client("cases") as client:
        await seed(client)
        await item(client)
        await item(client, ITEM_STAGED, stages=[{"name": "审查", "limit_days": 2}, {"name": "决定", "limit_days": 3}])
        await item(client, center=B)
        yield client


# refusal (否定事项报备制)

async def test_proposed_refusal_approved_by_the_chief_representative_completes_as_refused(cases, tokens):
    no = (await accept(cases, tokens))["case_no"]
    proposed = await act(cases, clerk(tokens), no, "propose-refusal", REFUSAL)
    assert proposed["status"] == "refusal_pending" and proposed["result"] is None
    out = await act(cases, chief(tokens), no, "approve-refusal", {"note": "同意不予受理"})
    assert (out["status"], out["result"]) == ("completed", "refused")
    refused, completed = (await events(cases))[-2:]
    assert refused["type"] == "case.refused" and completed["type"] == "case.completed"
    assert (refused["data"]["reason"], refused["data"]["legal_basis"]) == (REFUSAL["reason"], REFUSAL["legal_basis"])
    assert (refused["data"]["proposed_by"], refused["data"]["approved_by"]) == ("clerk-1", "chief-1")
    assert completed["data"]["result"] == "refused"


async def test_a_returned_refusal_sends_the_case_back_to_the_clerk(cases, tokens):
    no = (await accept(cases, tokens))["case_no"]
    await act(cases, clerk(tokens), no, "propose-refusal", REFUSAL)
    out = await act(cases, chief(tokens), no, "return-refusal", {"reason": "理由不充分，请补充核查"})
    assert (out["status"], out["result"], out["refusal_reason"], out["refusal_basis"]) == \
        ("in_progress", None, None, None)
    assert (await events(cases))[-1]["type"] == "case.refusal_returned"


async def test_the_same_applicant_refused_twice_for_one_item_shows_in_the_events(cases, tokens):
    numbers = []
    for _ in range(2):
        no = (await accept(cases, tokens))["case_no"]
        await act(cases, clerk(tokens), no, "propose-refusal", REFUSAL)
        await act(cases, chief(tokens), no, "approve-refusal", {})
        numbers.append(no)
    other = await cases.post("/cases", json=case_body(applicant={"name": "路人甲", "id_number": "440306199002154562"}),
                             headers=clerk(tokens))
    assert other.status_code == 201, other.text
    await act(cases, clerk(tokens), other.json()["case_no"], "propose-refusal", REFUSAL)
    await act(cases, chief(tokens), other.json()["case_no"], "approve-refusal", {})

    refused = await events(cases, "case.refused")
    by_person_and_item: dict[tuple[str, str], list[str]] = {}
    for e in refused:
        key = (e["data"]["case"]["applicant_hash"], e["data"]["case"]["item"]["code"])
        by_person_and_item.setdefault(key, []).append(e["data"]["case"]["case_no"])
    assert sorted(by_person_and_item.values(), key=len) == [[other.json()["case_no"]], numbers]
    # the hash is the applicant's keyed hash, the same one their acceptance carried
    accepted = (await events(cases, "case.accepted"))[0]
    assert (accepted["data"]["case"]["applicant_hash"], "ITEM1") in by_person_and_item


# refused requests: a problem naming what is wrong, nothing changed, nothing published

Setup = Callable[[Any, Any, Any, str], Awaitable[None]]


async def nothing(client: Any, tokens: Any, clock: Any, no: str) -> None:
    return None


def steps(*moves: tuple[str, str, dict[str, Any]] | Any) -> Setup:
    """A set-up of (who, action, body) moves; a datetime among them moves the fixed clock."""
    async def run(client: Any, tokens: Any, clock: Any, no: str) -> None:
        for m in moves:
            if not isinstance(m, tuple):
                clock.set(m)
                continue
            who, action, body = m
            await act(client, chief(tokens) if who == "chief" else clerk(tokens), no, action, body)
    return run


PAST_DUE = local(2026, 2, 27, 0, 0, 1)  # one second into Fri 27 Feb: due_at (26 Feb 23:59:59) has passed
SUPPLEMENT = {"missing_materials": ["户口簿原件"]}
SPECIAL = {"procedure": "expert_review", "reason": "专家评审"}
EXTEND = {"days": 3, "reason": "需实地核查"}
FORWARD = {"to_authority": "市公安局", "reason": "需上级审批"}


def headers_for(tokens: Any, who: str) -> dict[str, str]:
    return {
        "clerk": lambda: clerk(tokens),
        "chief": lambda: chief(tokens),
        "manager": lambda: manager(tokens),
        "clerk-of-B": lambda: clerk(tokens, "clerk-b1", center=B),
        "clerk-of-other-dept": lambda: clerk(tokens, "clerk-3", department=OTHER),
        "chief-of-other-dept": lambda: chief(tokens, "chief-2", department=OTHER),
        "terminal": lambda: tokens.headers("terminal", [A], subject="terminal-3", window="3"),
        "kiosk": lambda: tokens.headers("kiosk", [A], subject="kiosk-1"),
    }[who]()


@dataclass(frozen=True)
class Refused:
    id: str
    who: str
    action: str  # an action of the case, or "accept" (POST /cases)
    body: dict[str, Any]
    status: int
    code: str
    field: str | None
    setup: Setup = nothing
    extra: dict[str, Any] = field(default_factory=dict)  # more members of the problem
    item_code: str = "ITEM1"


REFUSED = [
    # illegal transitions: 409 naming the state and the actions it allows
    Refused("deliver-before-completion", "clerk", "deliver", {}, 409, "illegal_transition", "status",
            extra={"state": "in_progress", "allowed": IN_PROGRESS_ALLOWED}),
    Refused("supplement-when-nothing-was-asked", "clerk", "supplement", {}, 409, "illegal_transition", "status",
            extra={"state": "in_progress", "allowed": IN_PROGRESS_ALLOWED}),
    Refused("end-special-while-waiting-for-supplement", "clerk", "end-special", {}, 409, "illegal_transition",
            "status", steps(("clerk", "request-supplement", SUPPLEMENT)),
            extra={"state": "supplement", "allowed": ["reassign", "supplement", "withdraw"]}),
    Refused("complete-while-forwarded", "clerk", "complete", {}, 409, "illegal_transition", "status",
            steps(("clerk", "forward", FORWARD)),
            extra={"state": "forwarded", "allowed": ["reassign", "record-forward-result"]}),
    Refused("anything-after-withdrawal", "clerk", "complete", {}, 409, "illegal_transition", "status",
            steps(("clerk", "withdraw", {"reason": "申请人撤回"})), extra={"state": "withdrawn", "allowed": []}),
    Refused("extension-requested-twice-while-pending", "clerk", "request-extension", EXTEND, 409,
            "illegal_transition", "status", steps(("clerk", "request-extension", EXTEND)),
            extra={"state": "extension_pending"}),
    # refusal only through the chief representative
    Refused("clerk-completes-as-refused", "clerk", "complete", {"result": "refused"}, 409,
            "refusal_needs_approval", "result"),
    Refused("clerk-approves-own-refusal", "clerk", "approve-refusal", {}, 403, "wrong_role", None,
            steps(("clerk", "propose-refusal", REFUSAL))),
    Refused("chief-of-another-department-approves", "chief-of-other-dept", "approve-refusal", {}, 403,
            "wrong_department", "department", steps(("clerk", "propose-refusal", REFUSAL))),
    # one 补正, one extension within the item's limit
    Refused("second-supplement", "clerk", "request-supplement", SUPPLEMENT, 409, "second_supplement",
            "missing_materials", steps(("clerk", "request-supplement", SUPPLEMENT), ("clerk", "supplement", {}))),
    Refused("second-extension-after-one-approved", "clerk", "request-extension", EXTEND, 409,
            "second_extension", "days", steps(("clerk", "request-extension", EXTEND), ("chief", "approve-extension", {}))),
    Refused("extension-beyond-the-items-limit", "clerk", "request-extension", {"days": 11, "reason": "x"}, 409,
            "extension_too_long", "days"),
    # neither a pause nor an extension after due_at
    Refused("supplement-of-an-overdue-case", "clerk", "request-supplement", SUPPLEMENT, 409, "case_overdue",
            "due_at", steps(PAST_DUE)),
    Refused("special-procedure-of-an-overdue-case", "clerk", "start-special", SPECIAL, 409, "case_overdue",
            "due_at", steps(PAST_DUE)),
    Refused("forwarding-an-overdue-case", "clerk", "forward", FORWARD, 409, "case_overdue", "due_at",
            steps(PAST_DUE)),
    Refused("extension-of-an-overdue-case", "clerk", "request-extension", EXTEND, 409, "case_overdue", "due_at",
            steps(PAST_DUE)),
    Refused("extension-approved-after-due", "chief", "approve-extension", {}, 409, "case_overdue", "due_at",
            steps(local(2026, 2, 26, 17), ("clerk", "request-extension", EXTEND), PAST_DUE)),
    # 特事特办, stages
    Refused("clerk-expedites", "clerk", "expedite", {"promised_limit_days": 2, "reason": "急"}, 403, "wrong_role", None),
    Refused("expedite-not-shorter", "chief", "expedite", {"promised_limit_days": 5, "reason": "急"}, 409,
            "not_shorter", "promised_limit_days"),
    Refused("expedite-to-a-limit-already-past", "chief", "expedite", {"promised_limit_days": 1, "reason": "急"}, 409,
            "limit_in_past", "promised_limit_days", steps(local(2026, 2, 24, 10))),  # 1 working day ended 13 Feb
    Refused("complete-before-the-last-stage", "clerk", "complete", {}, 409, "not_last_stage", "stage",
            item_code=ITEM_STAGED),
    Refused("advance-past-the-last-stage", "clerk", "advance", {}, 409, "last_stage", "stage"),
    # reassignment
    Refused("reassign-to-a-clerk-of-another-department", "chief", "reassign",
            {"handler": "clerk-3", "reason": "工作调整"}, 409, "wrong_handler", "handler"),
    Refused("reassign-to-a-clerk-of-another-centre", "chief", "reassign",
            {"handler": "clerk-b1", "reason": "工作调整"}, 409, "wrong_handler", "handler"),
    Refused("reassign-to-an-unknown-user", "chief", "reassign", {"handler": "nobody", "reason": "工作调整"}, 409,
            "unknown_handler", "handler"),
    Refused("clerk-reassigns", "clerk", "reassign", {"handler": "clerk-2", "reason": "工作调整"}, 403, "wrong_role", None),
    # who may act
    Refused("clerk-of-another-centre-acts", "clerk-of-B", "request-supplement", SUPPLEMENT, 403, "wrong_center",
            "center_id"),
    Refused("clerk-of-another-department-acts", "clerk-of-other-dept", "request-supplement", SUPPLEMENT, 403,
            "wrong_department", "department"),
    Refused("window-terminal-acts", "terminal", "complete", {}, 403, "wrong_role", None),
    # acceptance
    Refused("unknown-item", "clerk", "accept", case_body("NOPE"), 404, "unknown_item", "item_code"),
    Refused("clerk-of-another-centre-accepts", "clerk-of-B", "accept", case_body(), 403, "wrong_center", "center_id"),
    Refused("clerk-of-another-department-accepts", "clerk-of-other-dept", "accept", case_body(), 403,
            "wrong_department", "department"),
    Refused("kiosk-accepts", "kiosk", "accept", case_body(), 403, "wrong_role", None),
    Refused("terminal-accepts", "terminal", "accept", case_body(), 403, "wrong_role", None),
    # the payload's shape
    Refused("supplement-naming-no-material", "clerk", "request-supplement", {"missing_materials": []}, 422,
            "validation_failed", "missing_materials"),
]


async def snapshot(client: Any, tokens: Any, no: str) -> tuple[Any, ...]:
    outbox = await sql(client, "SELECT count(*) AS n FROM outbox")
    numbers = await sql(client, "SELECT case_no FROM cases ORDER BY case_no")
    return (await get_case(client, tokens, no), await history(client, tokens, no), outbox[0]["n"],
            [r["case_no"] for r in numbers])


@pytest.mark.parametrize("row", REFUSED, ids=[r.id for r in REFUSED])
async def test_a_refused_request_is_a_problem_and_changes_nothing(cases, tokens, fixed_clock, row: Refused):
    no = (await accept(cases, tokens, row.item_code))["case_no"]
    await row.setup(cases, tokens, fixed_clock, no)
    before = await snapshot(cases, tokens, no)
    headers = headers_for(tokens, row.who)
    if row.action == "accept":
        r = await cases.post("/cases", json=row.body, headers=headers)
    else:
        r = await cases.post(f"/cases/{no}/{row.action}", json=row.body, headers=headers)
    assert r.status_code == row.status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert (problem["code"], problem.get("field")) == (row.code, row.field)
    for key, value in row.extra.items():
        assert problem[key] == value
    assert await snapshot(cases, tokens, no) == before


async def test_an_unknown_item_is_named_in_the_problem(cases, tokens):
    r = await cases.post("/cases", json=case_body("NOPE"), headers=clerk(tokens))
    assert r.status_code == 404
    assert "NOPE" in r.json()["detail"] and r.json()["errors"] == [{"field": "item_code", "reason": r.json()["detail"]}]


# forwarding (上报件)

async def test_forwarding_stops_the_clock_and_sets_a_follow_up_20_working_days_on(cases, tokens, fixed_clock):
    no = (await accept(cases, tokens))["case_no"]
    fixed_clock.set(local(2026, 2, 24, 10))
    out = await act(cases, clerk(tokens), no, "forward", FORWARD)
    # forwarded Tue 24 Feb, 20 working days: 1-4: 25, 26, 27, 28 (调休) Feb, 5-9: 2-6 Mar, 10-14: 9-13 Mar,
    # 15-19: 16-20 Mar, 20: Mon 23 Mar -> follow-up at the end of 23 Mar
    assert (out["status"], out["paused_kind"], out["forwarded_to"]) == ("forwarded", "forward", "市公安局")
    assert out["follow_up_at"] == end_of(date(2026, 3, 23))
    forwarded = (await events(cases, "case.forwarded"))[-1]["data"]
    assert (forwarded["forwarded_on"], forwarded["follow_up_at"]) == ("2026-02-24", "2026-03-23T15:59:59Z")


async def test_a_recorded_forward_result_completes_on_time_when_the_forwarded_days_cover_it(
        cases, tokens, fixed_clock):
    no = (await accept(cases, tokens))["case_no"]
    fixed_clock.set(local(2026, 2, 24, 10))
    await act(cases, clerk(tokens), no, "forward", FORWARD)
    fixed_clock.set(local(2026, 3, 9, 10))  # Mon 9 Mar, well past the original due date (26 Feb)
    out = await act(cases, clerk(tokens), no, "record-forward-result", {"result": "approved", "note": "市局批复同意"})
    # stopped (24 Feb, 9 Mar] = 25, 26, 27, 28 Feb, 2-6, 9 Mar -> +10: due 15th working day after 12 Feb:
    # 13, 14, 24-28 Feb (7), 2-6 Mar (12), 9, 10, 11 -> Wed 11 Mar; completed 9 Mar: on time
    assert (out["status"], out["result"], out["completed_late"], out["overdue_working_days"]) == \
        ("completed", "approved", False, 0)
    assert out["due_date"] == "2026-03-11"
    completed = (await events(cases, "case.completed"))[-1]["data"]
    assert (completed["completed_late"], completed["overdue_working_days"]) == (False, 0)


async def test_a_recorded_forward_result_publishes_the_resume_before_the_completion(cases, tokens, fixed_clock):
    no = (await accept(cases, tokens))["case_no"]
    fixed_clock.set(local(2026, 2, 24, 10))
    await act(cases, clerk(tokens), no, "forward", FORWARD)
    fixed_clock.set(local(2026, 2, 26, 10))
    await act(cases, clerk(tokens), no, "record-forward-result", {"result": "approved"})
    # a consumer applying the events in order must not see the clock run again after the case completed
    assert [e["type"] for e in await events(cases)][-4:] == [
        "case.resumed", "case.due_changed", "case.forward_result_recorded", "case.completed"]


# late completion

@pytest.mark.parametrize(("done_at", "late", "days"), [
    (local(2026, 2, 26, 23, 59, 59), False, 0),  # the last second of the due day is on time
    (local(2026, 2, 27, 0, 0, 30), True, 1),  # Fri 27 Feb: d in (26 Feb, 27 Feb] = 27 -> 1
    (local(2026, 3, 1, 10), True, 2),  # Sun 1 Mar: 27, 28 (调休); Sunday itself not a working day -> 2
    (local(2026, 3, 4, 10), True, 5),  # Wed 4 Mar: 27, 28 (调休), 2, 3, 4 -> 5
], ids=["last-second", "next-morning", "on-a-sunday", "a-week-later"])
async def test_completion_records_lateness_in_working_days(cases, tokens, fixed_clock, done_at, late, days):
    no = (await accept(cases, tokens))["case_no"]
    fixed_clock.set(done_at)
    out = await act(cases, clerk(tokens), no, "complete", {})
    assert (out["completed_late"], out["overdue_working_days"]) == (late, days)
    completed = (await events(cases, "case.completed"))[-1]["data"]
    assert (completed["completed_late"], completed["overdue_working_days"]) == (late, days)


# reassignment (AB角)

async def test_reassigning_to_another_clerk_of_the_department_is_audited(cases, tokens):
    no = (await accept(cases, tokens))["case_no"]
    out = await act(cases, chief(tokens), no, "reassign", {"handler": "clerk-2", "reason": "A角休假，B角接办"})
    assert (out["handler_id"], out["handler_name"], out["status"]) == ("clerk-2", "李四", "in_progress")
    last = (await history(cases, tokens, no))[-1]
    assert (last["action"], last["actor_id"], last["reason"], last["details"]) == \
        ("reassign", "chief-1", "A角休假，B角接办", {"from": "clerk-1", "to": "clerk-2"})
    event = (await events(cases, "case.reassigned"))[-1]["data"]
    assert event["from_handler"]["id"] == "clerk-1" and event["case"]["handler"] == {"id": "clerk-2",
                                                                                      "display_name": "李四"}


# the audit trail

async def test_every_action_appends_one_history_row_with_actor_states_and_reason(cases, tokens, fixed_clock):
    no = (await accept(cases, tokens))["case_no"]
    moves: list[tuple[Any, str, str, dict[str, Any]]] = [
        (local(2026, 2, 13, 10), "clerk", "request-supplement", {"missing_materials": ["照片"], "reason": "缺照片"}),
        (local(2026, 2, 24, 9), "clerk", "supplement", {"note": "材料已补齐"}),
        (local(2026, 2, 24, 10), "clerk", "request-extension", {"days": 2, "reason": "需实地核查"}),
        (local(2026, 2, 24, 11), "chief", "approve-extension", {"note": "同意延期"}),
        (local(2026, 2, 25, 9), "clerk", "propose-refusal", REFUSAL),
        (local(2026, 2, 25, 10), "chief", "return-refusal", {"reason": "请补充核查"}),
        (local(2026, 2, 25, 11), "chief", "reassign", {"handler": "clerk-2", "reason": "B角接办"}),
        (local(2026, 2, 26, 9), "clerk-2", "complete", {"note": "准予迁入"}),
        (local(2026, 2, 26, 10), "clerk-2", "deliver", {"method": "post"}),
    ]
    for at, who, action, body in moves:
        fixed_clock.set(at)
        headers = chief(tokens) if who == "chief" else clerk(tokens, who if who != "clerk" else "clerk-1")
        await act(cases, headers, no, action, body)
    rows = await history(cases, tokens, no)
    assert [(h["action"], h["actor_id"], h["actor_role"], h["from_status"], h["to_status"], h["reason"])
            for h in rows] == [
        ("accept", "clerk-1", "clerk", None, "in_progress", None),
        ("request-supplement", "clerk-1", "clerk", "in_progress", "supplement", "缺照片"),
        ("supplement", "clerk-1", "clerk", "supplement", "in_progress", "材料已补齐"),
        ("request-extension", "clerk-1", "clerk", "in_progress", "extension_pending", "需实地核查"),
        ("approve-extension", "chief-1", "chief_rep", "extension_pending", "in_progress", "同意延期"),
        ("propose-refusal", "clerk-1", "clerk", "in_progress", "refusal_pending", REFUSAL["reason"]),
        ("return-refusal", "chief-1", "chief_rep", "refusal_pending", "in_progress", "请补充核查"),
        ("reassign", "chief-1", "chief_rep", "in_progress", "in_progress", "B角接办"),
        ("complete", "clerk-2", "clerk", "in_progress", "completed", "准予迁入"),
        ("deliver", "clerk-2", "clerk", "completed", "delivered", None),
    ]
    assert [h["at"] for h in rows] == [local(2026, 2, 12).isoformat().replace("+00:00", "Z")] + \
        [at.isoformat().replace("+00:00", "Z") for at, *_ in moves]


async def test_a_case_of_another_department_is_not_shown_to_its_clerks(cases, tokens):
    no = (await accept(cases, tokens))["case_no"]
    r = await cases.get(f"/cases/{no}", headers=clerk(tokens, "clerk-3", department=OTHER))
    assert r.status_code == 403 and r.json()["code"] == "wrong_department"
    listed = await cases.get("/cases", params={"center": A}, headers=clerk(tokens, "clerk-3", department=OTHER))
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert ID not in r.text
