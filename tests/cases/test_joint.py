"""Joint cases (联办件, issue 22) through the API: a joint item is accepted only at a window the queue flags for
joint approval; the lead case dispatches sub-tasks, each due its own limit in working days after the dispatch
date; a department answers, or is deemed to consent by the system at its deadline (the durable timer, driven
by the fixed clock and a TimerRunner) or when absent from the joint review (超时默认、缺席默认); the lead case
completes only once every sub-task is settled; a pause of the lead case moves the open sub-tasks' deadlines.

The fixed clock stands at Thu 12 Feb 2026 09:00 local. Counted from ../shared/official-holidays.md: a
sub-task dispatched then with limit 3 is due at the end of Tue 24 Feb (13, 14 (调休), [春节 15-23], 24), with
limit 5 at the end of Thu 26 Feb (25, 26); the joint item JOINT1 (promised 10) is due at the end of 4 Mar."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from services.cases.joint.lead import TIMER_KIND
from services.cases.joint.service import deem_on_timeout
from shared.timers import TimerRunner
from tests.cases.builders import apply, window_event
from tests.cases.case_support import (
    DEPT,
    OTHER,
    A,
    accept,
    act,
    case_body,
    chief,
    clerk,
    end_of,
    events,
    history,
    item,
    local,
    seed,
    sql,
)

ZJ, HB = "gov-zj", "gov-hb"  # 住建局, 环保局: two more departments of centre A
JOINT = "JOINT1"  # DEPT's joint item (联办件), promised 10, legal 20, free
JOINT_WINDOW, ORDINARY_WINDOW = "3", "5"


@pytest.fixture
async def cases(service_client):
    async with service_client("cases") as client:
        await seed(client)
        for code, name in ((ZJ, "住建局"), (HB, "环保局")):
            await sql(client, "INSERT INTO departments (center_id, code, name, active, created_at, updated_at) "
                              "VALUES ($1, $2, $3, true, now(), now())", A, code, name)
        await item(client, JOINT, kind="joint", promised=10, legal=20)
        await item(client, "ITEM1")
        await item(client, "SW1", department=OTHER)
        await item(client, "ZJ1", department=ZJ)
        for code, fees in ((JOINT, "免费"), ("SW1", "工本费10元"), ("ZJ1", "200元"), ("ITEM1", "每平方米3元")):
            await sql(client, "UPDATE items SET fees = $2 WHERE center_id = $1 AND code = $3", A, fees, code)
        # the queue's windows as cases copies them: 3 flagged for joint approval (联办窗口), 5 ordinary
        await apply(client, window_event(1, JOINT_WINDOW, department=DEPT, joint_approval=True),
                    window_event(2, ORDINARY_WINDOW, department=DEPT))
        yield client


def dept_clerk(tokens: Any, department: str, subject: str | None = None) -> dict[str, str]:
    return clerk(tokens, subject or f"clerk-{department}", department=department)


async def joint_case(client: httpx.AsyncClient, tokens: Any) -> str:
    return str((await accept(client, tokens, JOINT))["case_no"])


async def dispatch(client: httpx.AsyncClient, tokens: Any, case_no: str, department: str, limit_days: int,
                   headers: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    r = await client.post(f"/cases/{case_no}/subtasks", json={"department": department, "limit_days": limit_days,
                                                              **extra}, headers=headers or clerk(tokens))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def opinion(client: httpx.AsyncClient, headers: dict[str, str], case_no: str, subtask_id: int,
                  value: str = "agree", comment: str = "同意") -> httpx.Response:
    return await client.post(f"/cases/{case_no}/subtasks/{subtask_id}/opinion",
                             json={"opinion": value, "comment": comment}, headers=headers)


async def subtasks(client: httpx.AsyncClient, tokens: Any, case_no: str) -> dict[str, dict[str, Any]]:
    r = await client.get(f"/cases/{case_no}/subtasks", headers=clerk(tokens))
    assert r.status_code == 200, r.text
    return {s["department"]: s for s in r.json()}


def timer_runner(client: httpx.AsyncClient) -> TimerRunner:
    return TimerRunner(client.app.state.engine, {TIMER_KIND: deem_on_timeout})  # type: ignore[attr-defined]


# the acceptance test

async def test_a_joint_case_completes_once_each_department_answered_or_was_deemed_to_consent(cases, tokens,
                                                                                           fixed_clock):
    no = await joint_case(cases, tokens)
    sw = await dispatch(cases, tokens, no, OTHER, 3, item_code="SW1", note="请审核纳税信息")
    zj = await dispatch(cases, tokens, no, ZJ, 3, item_code="ZJ1")
    hb = await dispatch(cases, tokens, no, HB, 5)
    assert (sw["due_at"], zj["due_at"], hb["due_at"]) == \
        (end_of(date(2026, 2, 24)), end_of(date(2026, 2, 24)), end_of(date(2026, 2, 26)))
    assert sw["status"] == "pending" and sw["dispatched_on"] == "2026-02-12"

    # 税务局 answers in time
    fixed_clock.set(local(2026, 2, 13, 10))
    r = await opinion(cases, dept_clerk(tokens, OTHER, "clerk-3"), no, sw["id"], comment="纳税信息无异常")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["opinion"], r.json()["on_time"]) == ("answered", "agree", True)

    # the lead case cannot complete while sub-tasks are open; the problem names them
    r = await cases.post(f"/cases/{no}/complete", json={}, headers=clerk(tokens))
    assert r.status_code == 409 and r.json()["code"] == "subtasks_open", r.text
    assert {s["department"] for s in r.json()["open"]} == {ZJ, HB}

    runner = timer_runner(cases)
    fixed_clock.set(local(2026, 2, 24, 23, 59, 59))  # 住建局's last instant: not yet deemed
    await runner.fire_due()
    assert (await subtasks(cases, tokens, no))[ZJ]["status"] == "pending"
    fixed_clock.set(local(2026, 2, 25, 9))  # 住建局 let its deadline pass: 超时默认
    await runner.fire_due()
    now = await subtasks(cases, tokens, no)
    assert (now[ZJ]["status"], now[ZJ]["deemed_cause"], now[ZJ]["answered_by"]) == \
        ("deemed_consented", "timeout", "system")
    assert now[HB]["status"] == "pending"  # due the end of 26 Feb

    # 环保局 invited to the joint review and absent: 缺席默认
    r = await cases.post(f"/cases/{no}/joint-reviews", headers=clerk(tokens), json={
        "held_at": "2026-02-25T00:30:00Z", "invited": [DEPT, HB], "attended": [DEPT]})
    assert r.status_code == 201, r.text
    review_id = r.json()["id"]
    assert (r.json()["absent"], r.json()["deemed_consented"]) == ([HB], [hb["id"]])
    now = await subtasks(cases, tokens, no)
    assert (now[HB]["status"], now[HB]["deemed_cause"], now[HB]["review_id"]) == \
        ("deemed_consented", "absent", review_id)

    done = await act(cases, clerk(tokens), no, "complete", {"note": "联办完成"})
    assert (done["status"], done["result"]) == ("completed", "approved")

    # one bill: the lead's item is free, 税务局's 10 元, 住建局's 200 元, 环保局 named no item
    r = await cases.get(f"/cases/{no}/bill", headers=clerk(tokens))
    assert r.status_code == 200, r.text
    bill = r.json()
    assert [(ln["department"], ln["fees"], ln["amount"]) for ln in bill["lines"]] == [
        (DEPT, "免费", "0.00"), (OTHER, "工本费10元", "10.00"), (ZJ, "200元", "200.00"), (HB, None, "0.00")]
    assert (bill["total"], bill["complete"]) == ("210.00", True)

    # every change is in the case's history, the system's deemed consents among them
    trail = [(h["action"], h["actor_id"]) for h in await history(cases, tokens, no)]
    assert trail == [("accept", "clerk-1"), ("dispatch-subtask", "clerk-1"), ("dispatch-subtask", "clerk-1"),
                     ("dispatch-subtask", "clerk-1"), ("subtask-opinion", "clerk-3"), ("deem-consent", "system"),
                     ("joint-review", "clerk-1"), ("deem-consent", "system"), ("complete", "clerk-1")]
    published = [e["type"] for e in await events(cases) if e["type"].startswith("joint.")]
    assert published == ["joint.subtask_dispatched"] * 3 + [
        "joint.subtask_answered", "joint.subtask_deemed_consented", "joint.review_recorded",
        "joint.subtask_deemed_consented"]
    deemed = [e["data"] for e in await events(cases, "joint.subtask_deemed_consented")]
    assert [(d["cause"], d["subtask"]["department"], d["review_id"]) for d in deemed] == \
        [("timeout", ZJ, None), ("absent", HB, review_id)]


async def test_a_joint_item_at_an_ordinary_window_is_refused(cases, tokens):
    for window, code in ((ORDINARY_WINDOW, "not_joint_window"), ("9", "not_joint_window")):
        r = await cases.post("/cases", json=case_body(JOINT), headers=clerk(tokens, window=window))
        assert r.status_code == 409, r.text
        assert (r.json()["code"], r.json()["field"]) == (code, "window")
    no_window = tokens.headers("clerk", [A], subject="clerk-1", department=DEPT)
    r = await cases.post("/cases", json=case_body(JOINT), headers=no_window)
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (409, "no_window", "window")
    assert await sql(cases, "SELECT case_no FROM cases") == []
    # an ordinary item is accepted at an ordinary window as before
    assert (await accept(cases, tokens, headers=clerk(tokens, window=ORDINARY_WINDOW)))["kind"] == "promised"


async def test_a_window_unflagged_by_the_queue_no_longer_takes_joint_items(cases, tokens):
    await apply(cases, window_event(3, JOINT_WINDOW, department=DEPT, joint_approval=False))
    r = await cases.post("/cases", json=case_body(JOINT), headers=clerk(tokens))
    assert (r.status_code, r.json()["code"]) == (409, "not_joint_window")


# the lead case's pause stops its sub-tasks' clocks

async def test_a_pause_of_the_lead_case_moves_the_open_subtasks_deadlines_and_their_timers(cases, tokens,
                                                                                         fixed_clock):
    no = await joint_case(cases, tokens)
    zj = await dispatch(cases, tokens, no, ZJ, 3)
    sw = await dispatch(cases, tokens, no, OTHER, 3)
    assert (await opinion(cases, dept_clerk(tokens, OTHER, "clerk-3"), no, sw["id"])).status_code == 200
    fixed_clock.set(local(2026, 2, 13, 10))  # Fri 13 Feb
    await act(cases, clerk(tokens), no, "start-special", {"procedure": "site_inspection", "reason": "现场核查"})
    runner = timer_runner(cases)
    fixed_clock.set(local(2026, 2, 25, 9))  # past the sub-task's first due moment (end of 24 Feb): paused
    await runner.fire_due()
    assert (await subtasks(cases, tokens, no))[ZJ]["status"] == "pending"
    await act(cases, clerk(tokens), no, "end-special", {"note": "核查完毕"})
    # paused Fri 13, resumed Wed 25: 14 (调休), 24, 25 -> +3 working days: 3 + 3 after 12 Feb = Fri 27 Feb
    now = await subtasks(cases, tokens, no)
    assert (now[ZJ]["due_at"], now[ZJ]["due_date"]) == (end_of(date(2026, 2, 27)), "2026-02-27")
    assert now[OTHER]["due_at"] == sw["due_at"]  # answered: its deadline no longer matters
    resumed = (await history(cases, tokens, no))[-1]
    assert resumed["action"] == "end-special"
    assert resumed["details"]["subtasks_moved"] == [{"id": zj["id"], "department": ZJ,
                                                     "previous_due_at": zj["due_at"].replace("Z", "+00:00"),
                                                     "due_at": end_of(date(2026, 2, 27)).replace("Z", "+00:00")}]
    fixed_clock.set(local(2026, 2, 27, 23, 59, 59))
    await runner.fire_due()
    assert (await subtasks(cases, tokens, no))[ZJ]["status"] == "pending"
    fixed_clock.set(local(2026, 2, 28, 0, 0, 1))  # the re-armed timer fires after the moved deadline
    await runner.fire_due()
    assert (await subtasks(cases, tokens, no))[ZJ]["status"] == "deemed_consented"


async def test_a_lead_case_withdrawn_leaves_its_open_subtasks_unfired(cases, tokens, fixed_clock):
    no = await joint_case(cases, tokens)
    await dispatch(cases, tokens, no, ZJ, 3)
    await act(cases, clerk(tokens), no, "withdraw", {"reason": "申请人撤回"})
    fixed_clock.set(local(2026, 2, 25, 9))
    await timer_runner(cases).fire_due()
    assert (await subtasks(cases, tokens, no))[ZJ]["status"] == "pending"
    assert await events(cases, "joint.subtask_deemed_consented") == []
    assert (await history(cases, tokens, no))[-1]["details"]["subtasks_left_open"] == [ZJ]


# who may do what, and what is refused

async def test_an_opinion_after_deemed_consent_is_a_conflict(cases, tokens, fixed_clock):
    no = await joint_case(cases, tokens)
    zj = await dispatch(cases, tokens, no, ZJ, 3)
    fixed_clock.set(local(2026, 2, 25, 9))
    await timer_runner(cases).fire_due()
    r = await opinion(cases, dept_clerk(tokens, ZJ), no, zj["id"], "disagree", "不同意")
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (409, "subtask_settled", "subtask_id")
    assert (await subtasks(cases, tokens, no))[ZJ]["opinion"] is None
    assert [h["action"] for h in await history(cases, tokens, no)][-1] == "deem-consent"


async def test_another_departments_clerk_may_not_answer_a_subtask(cases, tokens):
    no = await joint_case(cases, tokens)
    zj = await dispatch(cases, tokens, no, ZJ, 3)
    for headers in (dept_clerk(tokens, HB), clerk(tokens)):  # 环保局's clerk, and the lead's own
        r = await opinion(cases, headers, no, zj["id"])
        assert (r.status_code, r.json()["code"]) == (403, "wrong_department"), r.text
    r = await opinion(cases, chief(tokens, "chief-zj", department=ZJ), no, zj["id"])  # 住建局's chief rep may
    assert r.status_code == 200, r.text
    # the department asked reads the case's sub-tasks and bill; a department not asked does not
    assert (await cases.get(f"/cases/{no}/subtasks", headers=dept_clerk(tokens, ZJ))).status_code == 200
    assert (await cases.get(f"/cases/{no}/bill", headers=dept_clerk(tokens, ZJ))).status_code == 200
    r = await cases.get(f"/cases/{no}/subtasks", headers=dept_clerk(tokens, HB))
    assert (r.status_code, r.json()["code"]) == (403, "wrong_department")


async def test_only_the_handler_or_the_chief_representative_dispatches(cases, tokens):
    no = await joint_case(cases, tokens)
    r = await cases.post(f"/cases/{no}/subtasks", json={"department": ZJ, "limit_days": 3},
                         headers=clerk(tokens, "clerk-2"))
    assert (r.status_code, r.json()["code"]) == (403, "not_handler")
    r = await cases.post(f"/cases/{no}/subtasks", json={"department": ZJ, "limit_days": 3},
                         headers=dept_clerk(tokens, ZJ))
    assert (r.status_code, r.json()["code"]) == (403, "wrong_department")
    assert (await dispatch(cases, tokens, no, ZJ, 3, headers=chief(tokens)))["dispatched_by"] == "chief-1"


@pytest.mark.parametrize(("body", "status", "code", "field"), [
    ({"department": DEPT, "limit_days": 3}, 409, "own_department", "department"),
    ({"department": "gov-xx", "limit_days": 3}, 404, "unknown_department", "department"),
    ({"department": ZJ, "limit_days": 3, "item_code": "SW1"}, 409, "wrong_department_item", "item_code"),
    ({"department": ZJ, "limit_days": 3, "item_code": "NOPE"}, 404, "unknown_item", "item_code"),
    ({"department": ZJ, "limit_days": -1}, 422, None, "limit_days"),
])
async def test_a_bad_dispatch_is_a_problem_naming_the_field(cases, tokens, body, status, code, field):
    no = await joint_case(cases, tokens)
    r = await cases.post(f"/cases/{no}/subtasks", json=body, headers=clerk(tokens))
    assert r.status_code == status, r.text
    problem = r.json()
    assert problem.get("field") == field or field in str(problem.get("errors")), problem
    if code is not None:
        assert problem["code"] == code
    assert await sql(cases, "SELECT id FROM joint_subtasks") == []
    assert await sql(cases, "SELECT id FROM timers") == []


async def test_a_department_is_dispatched_once_and_only_a_joint_case_has_subtasks(cases, tokens):
    no = await joint_case(cases, tokens)
    await dispatch(cases, tokens, no, ZJ, 3)
    r = await cases.post(f"/cases/{no}/subtasks", json={"department": ZJ, "limit_days": 5}, headers=clerk(tokens))
    assert (r.status_code, r.json()["code"]) == (409, "already_dispatched")
    ordinary = (await accept(cases, tokens))["case_no"]
    r = await cases.post(f"/cases/{ordinary}/subtasks", json={"department": ZJ, "limit_days": 3},
                         headers=clerk(tokens))
    assert (r.status_code, r.json()["code"]) == (409, "not_joint")


async def test_a_paused_lead_case_sends_out_no_subtask(cases, tokens):
    no = await joint_case(cases, tokens)
    await act(cases, clerk(tokens), no, "request-supplement", {"missing_materials": ["营业执照"]})
    r = await cases.post(f"/cases/{no}/subtasks", json={"department": ZJ, "limit_days": 3}, headers=clerk(tokens))
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (409, "lead_not_running", "status")


# a disagreeing department

async def test_a_disagreeing_department_lets_the_case_complete_only_as_refused(cases, tokens):
    no = await joint_case(cases, tokens)
    zj = await dispatch(cases, tokens, no, ZJ, 3)
    r = await opinion(cases, dept_clerk(tokens, ZJ), no, zj["id"], "disagree", "规划不符")
    assert r.status_code == 200 and r.json()["opinion"] == "disagree"
    r = await cases.post(f"/cases/{no}/complete", json={}, headers=clerk(tokens))
    assert (r.status_code, r.json()["code"]) == (409, "subtask_disagreed")
    assert [d["department"] for d in r.json()["disagreed"]] == [ZJ]
    await act(cases, clerk(tokens), no, "propose-refusal", {"reason": "住建局不同意：规划不符",
                                                            "legal_basis": "《城乡规划法》第四十条"})
    done = await act(cases, chief(tokens), no, "approve-refusal", {"note": "同意"})
    assert (done["status"], done["result"]) == ("completed", "refused")


# the joint review

async def test_a_review_names_only_departments_asked_and_deems_none_present(cases, tokens):
    no = await joint_case(cases, tokens)
    zj = await dispatch(cases, tokens, no, ZJ, 3)
    r = await cases.post(f"/cases/{no}/joint-reviews", headers=clerk(tokens),
                         json={"held_at": "2026-02-12T01:00:00Z", "invited": [ZJ, HB], "attended": [ZJ]})
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (409, "no_subtask", "invited")
    r = await cases.post(f"/cases/{no}/joint-reviews", headers=clerk(tokens),
                         json={"held_at": "2026-02-12T01:00:00Z", "invited": [ZJ], "attended": [HB]})
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (400, "not_invited", "attended")
    r = await cases.post(f"/cases/{no}/joint-reviews", headers=clerk(tokens),
                         json={"held_at": "2026-02-12T02:00:00Z", "invited": [ZJ], "attended": []})
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (400, "future_review", "held_at")
    r = await cases.post(f"/cases/{no}/joint-reviews", headers=clerk(tokens),
                         json={"held_at": "2026-02-12T01:00:00Z", "invited": [DEPT, ZJ], "attended": [DEPT, ZJ]})
    assert r.status_code == 201 and r.json()["deemed_consented"] == [], r.text
    assert (await subtasks(cases, tokens, no))[ZJ]["status"] == "pending"
    assert zj["status"] == "pending"
    review = (await events(cases, "joint.review_recorded"))[-1]["data"]
    assert (review["attended"], review["absent"]) == ([DEPT, ZJ], [])


async def test_a_bill_with_a_fee_per_unit_shows_its_text_and_is_not_complete(cases, tokens):
    await sql(cases, "UPDATE items SET fees = '每平方米3元' WHERE center_id = $1 AND code = $2", A, "ZJ1")
    no = await joint_case(cases, tokens)
    await dispatch(cases, tokens, no, OTHER, 3, item_code="SW1")
    await dispatch(cases, tokens, no, ZJ, 3, item_code="ZJ1")
    bill = (await cases.get(f"/cases/{no}/bill", headers=clerk(tokens))).json()
    assert [ln["amount"] for ln in bill["lines"]] == ["0.00", "10.00", None]
    assert bill["lines"][2]["fees"] == "每平方米3元"
    assert (bill["total"], bill["complete"]) == ("10.00", False)
