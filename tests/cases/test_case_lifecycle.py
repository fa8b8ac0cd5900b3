"""A case through the API: acceptance with its number and clock, the actions of the state machine, refusals
through the chief representative, the audit trail and the events. Dates are counted by hand from the State
Council notices (../shared/official-holidays.md); the fixed clock starts at Thu 2026-02-12 09:00 local."""

import json
from datetime import UTC, datetime

import pytest

from shared.pii import find_personal_data
from tests.cases.case_support import NAME, A, accept, act, case_body, chief, clerk, events


async def test_acceptance_numbers_the_case_and_sets_its_clock(cases, tokens):
    body = await accept(cases, tokens)
    assert body["case_no"] == f"{A}-20260212-000001"
    # Thu 12 Feb, N = 5: 13, 14 (调休), [春节 15-23], 24, 25, 26 -> end of Thu 26 Feb; W = 1 -> 00:00 of 25 Feb
    assert body["due_date"] == "2026-02-26"
    assert body["due_at"] == "2026-02-26T15:59:59Z"
    assert body["warn_at"] == "2026-02-24T16:00:00Z"
    assert len(body["lookup_code"]) == 8
    second = await accept(cases, tokens)
    assert second["case_no"] == f"{A}-20260212-000002"
    assert second["lookup_code"] != body["lookup_code"]

    (accepted, _) = await events(cases, "case.accepted")
    data = accepted["data"]
    assert data["case"]["handler"] == {"id": "clerk-1", "display_name": "王小明"}
    assert data["case"]["window"] == "3" and data["case"]["clock_version"] == 1
    assert data["case"]["applicant_masked"] == NAME[0] + "***"
    assert find_personal_data(json.dumps(accepted, ensure_ascii=False)) == []
    assert body["lookup_code"] not in json.dumps(accepted)


async def test_supplement_pause_moves_the_due_dates_by_the_working_days_paused(cases, tokens, fixed_clock):
    no = (await accept(cases, tokens))["case_no"]
    fixed_clock.set(datetime(2026, 2, 13, 2, 0, tzinfo=UTC))  # Fri 13 Feb 10:00
    await act(cases, clerk(tokens), no, "request-supplement", {"missing_materials": ["户口簿原件", "照片"]})
    fixed_clock.set(datetime(2026, 2, 25, 2, 0, tzinfo=UTC))  # Wed 25 Feb: 14 (调休), 24, 25 -> +3: 27, 28 (调休), 2 Mar
    out = await act(cases, clerk(tokens), no, "supplement", {})
    assert out["due_date"] == "2026-03-02" and out["clock_version"] == 2
    changed = await events(cases, "case.due_changed")
    assert changed[-1]["data"]["previous"]["due_at"] == "2026-02-26T15:59:59Z"
    assert changed[-1]["data"]["case"]["due_at"] == "2026-03-02T15:59:59Z"
    second = await cases.post(f"/cases/{no}/request-supplement", json={"missing_materials": ["x"]},
                              headers=clerk(tokens))
    assert second.status_code == 409 and second.json()["code"] == "second_supplement"


async def test_refusal_only_through_the_chief_representative(cases, tokens):
    no = (await accept(cases, tokens))["case_no"]
    direct = await cases.post(f"/cases/{no}/complete", json={"result": "refused"}, headers=clerk(tokens))
    assert direct.status_code == 409 and direct.json()["code"] == "refusal_needs_approval"
    await act(cases, clerk(tokens), no, "propose-refusal", {"reason": "材料不符", "legal_basis": "《户口登记条例》"})
    by_clerk = await cases.post(f"/cases/{no}/approve-refusal", json={}, headers=clerk(tokens))
    assert by_clerk.status_code == 403
    other_dept = await cases.post(f"/cases/{no}/approve-refusal", json={}, headers=chief(tokens, department="other"))
    assert other_dept.status_code == 403
    out = await act(cases, chief(tokens), no, "approve-refusal", {})
    assert out["status"] == "completed" and out["result"] == "refused"
    assert [e["type"] for e in await events(cases)][-2:] == ["case.refused", "case.completed"]


async def test_illegal_transition_names_state_and_allowed_actions(cases, tokens):
    no = (await accept(cases, tokens))["case_no"]
    r = await cases.post(f"/cases/{no}/deliver", json={}, headers=clerk(tokens))
    assert r.status_code == 409
    problem = r.json()
    assert problem["state"] == "in_progress" and "complete" in problem["allowed"]
    assert [e["type"] for e in await events(cases) if e["type"].startswith("case.")] == ["case.accepted"]


async def test_history_rows_cannot_be_changed_even_by_sql(cases, tokens):
    no = (await accept(cases, tokens))["case_no"]
    import asyncpg
    conn = await asyncpg.connect(cases.db.dsn)
    try:
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await conn.execute("UPDATE case_history SET reason = 'x' WHERE case_no = $1", no)
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await conn.execute("DELETE FROM case_history WHERE case_no = $1", no)
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await conn.execute("TRUNCATE case_history")
    finally:
        await conn.close()
    history = (await cases.get(f"/cases/{no}/history", headers=clerk(tokens))).json()
    assert [h["action"] for h in history] == ["accept"]


async def test_public_lookup_shows_no_person_and_hides_unknown_and_wrong_alike(cases, tokens):
    body = await accept(cases, tokens)
    r = await cases.get(f"/public/cases/{body['case_no']}", params={"code": body["lookup_code"]})
    assert r.status_code == 200
    text = r.text
    assert NAME[0] not in text and find_personal_data(text) == [] and "138" not in text
    assert r.json()["due_date"] == "2026-02-26"
    wrong = await cases.get(f"/public/cases/{body['case_no']}", params={"code": "AAAAAAAA"})
    unknown = await cases.get(f"/public/cases/{A}-20260212-999999", params={"code": body["lookup_code"]})
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_a_centre_override_moves_the_open_cases_it_touches(cases, tokens):
    no = (await accept(cases, tokens))["case_no"]
    done = (await accept(cases, tokens))["case_no"]
    await act(cases, clerk(tokens), done, "complete", {})
    admin = tokens.headers("center_admin", [A], subject="admin-a")
    r = await cases.put("/calendar/overrides", params={"center": A}, headers=admin,
                        json={"days": [{"date": "2026-02-25", "kind": "holiday", "reason": "台风停工"}]})
    assert r.status_code == 200, r.text
    case = (await cases.get(f"/cases/{no}", headers=clerk(tokens))).json()
    # 13, 14 (调休), 24, [25 now a holiday], 26, 27
    assert case["due_date"] == "2026-02-27" and case["clock_version"] == 2
    changed = await events(cases, "case.due_changed")
    assert [(e["data"]["case"]["case_no"], e["data"]["cause"]) for e in changed] == [(no, "calendar")]
    completed = (await cases.get(f"/cases/{done}", headers=clerk(tokens))).json()
    assert completed["due_date"] == "2026-02-26" and completed["clock_version"] == 1
    history = (await cases.get(f"/cases/{no}/history", headers=clerk(tokens))).json()
    assert history[-1]["action"] == "due_changed" and history[-1]["actor_id"] == "system"


async def test_a_retried_acceptance_answers_the_first_and_keeps_the_code_out_of_the_store(cases, tokens):
    headers = {**clerk(tokens), "Idempotency-Key": "terminal-3-attempt-1"}
    first = await cases.post("/cases", json=case_body(), headers=headers)
    again = await cases.post("/cases", json=case_body(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(await events(cases, "case.accepted")) == 1
    stored = await cases.db.fetch("SELECT body::text AS body FROM idempotency_keys")
    assert first.json()["lookup_code"] not in stored[0]["body"]
    other = await cases.post("/cases", json=case_body(materials=["身份证"]), headers=headers)
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"
