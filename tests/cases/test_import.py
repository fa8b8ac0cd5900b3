"""The import of open cases from a previous system (issue 22): a file with one bad row imports nothing and
names every bad row and field; a good file, JSON or CSV, imports every case with its original clock (the due
dates services/cases/deadlines.py gives for the original acceptance, pauses and extension), flagged imported,
with `case.accepted` (imported, overdue_at_import), an `import` audit entry and the previous system's number;
the CLI does the same against the service's database.

The fixed clock stands at Thu 12 Feb 2026 09:00 local. ITEM1: promised 5, legal 20 working days; ITEM2 the
same with the stages 审查 2 and 决定 3. Counted by hand (../shared/official-holidays.md): accepted Mon 2 Feb, a
case of ITEM1 was due at the end of Mon 9 Feb (3, 4, 5, 6, 9): overdue at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from services.cases import deadlines
from shared.calendar.engine import WorkCalendar
from shared.pii import assert_no_personal_data
from tests.cases.case_support import (
    ID,
    NAME,
    PHONE,
    A,
    B,
    admin,
    clerk,
    end_of,
    events,
    item,
    local,
    seed,
    sql,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def cases(service_client):
    async with service_client("cases") as client:
        await seed(client)
        await item(client, "ITEM1")
        await item(client, "ITEM2", stages=[{"name": "审查", "limit_days": 2}, {"name": "决定", "limit_days": 3}])
        await item(client, "ITEM1", center=B)
        yield client


def row(legacy_no: str, accepted_at: str, **extra: Any) -> dict[str, Any]:
    return {"legacy_no": legacy_no, "item_code": "ITEM1", "accepted_at": accepted_at, "handler": "clerk-1",
            "window": "3", "applicant": {"name": NAME, "id_number": ID, "phone": PHONE}, **extra}


# four open cases: overdue; a finished 补正; an approved extension and an open 特别程序 at stage 决定; a pending
# extension (accepted on the same day as the first, later)
GOOD = [
    row("OLD-001", "2026-02-02T10:00:00+08:00"),
    row("OLD-002", "2026-02-10 14:30", pauses=[{"kind": "supplement", "from": "2026-02-10", "to": "2026-02-11",
                                                 "missing_materials": ["户口簿"]}]),
    row("OLD-003", "2026-02-11T09:15:00+08:00", item_code="ITEM2", stage="决定", stage_started_on="2026-02-11",
        pauses=[{"kind": "special", "from": "2026-02-12", "reason": "专家评审"}],
        extension={"days": 3, "approved": True, "reason": "需实地核查"}),
    row("OLD-004", "2026-02-02T16:00:00+08:00", extension={"days": 2, "approved": False}),
]
CSV = (
    "legacy_no,item_code,accepted_at,stage,stage_started_on,handler,window,applicant_name,id_number,phone,pauses,"
    "extension_days,extension_approved,extension_reason\n"
    f"OLD-001,ITEM1,2026-02-02T10:00:00+08:00,,,clerk-1,3,{NAME},{ID},{PHONE},,,,\n"
    f"OLD-002,ITEM1,2026-02-10 14:30,,,clerk-1,3,{NAME},{ID},{PHONE},supplement:2026-02-10..2026-02-11,,,\n"
    f"OLD-003,ITEM2,2026-02-11T09:15:00+08:00,决定,2026-02-11,clerk-1,3,{NAME},{ID},{PHONE},"
    "special:2026-02-12..:专家评审,3,是,需实地核查\n"
    f"OLD-004,ITEM1,2026-02-02T16:00:00+08:00,,,clerk-1,3,{NAME},{ID},{PHONE},,2,false,\n"
)


def expected(accepted_on: date, *, extension: int = 0, pauses: tuple[deadlines.Pause, ...] = (),
             stage_started_on: date | None = None, stage_limit: int | None = None) -> deadlines.Deadlines:
    return deadlines.compute(WorkCalendar(), deadlines.ClockInputs(
        center_id=A, accepted_on=accepted_on, promised_days=5, legal_days=20, warn_days=1,
        extension_days=extension, pauses=pauses, stage_started_on=stage_started_on, stage_limit_days=stage_limit))


CLOCKS = {
    "OLD-001": expected(date(2026, 2, 2)),
    "OLD-002": expected(date(2026, 2, 10), pauses=(deadlines.Pause(date(2026, 2, 10), date(2026, 2, 11)),)),
    "OLD-003": expected(date(2026, 2, 11), extension=3, pauses=(deadlines.Pause(date(2026, 2, 12), None),),
                        stage_started_on=date(2026, 2, 11), stage_limit=3),
    "OLD-004": expected(date(2026, 2, 2)),
}


async def post_import(client, tokens, body: Any, *, content_type: str = "application/json",
                      center: str = A, headers: dict[str, str] | None = None):
    content = body if isinstance(body, str | bytes) else json.dumps(body, ensure_ascii=False)
    return await client.post("/import", params={"center": center}, content=content,
                             headers=(headers or admin(tokens)) | {"content-type": content_type})


async def imported_state(client) -> dict[str, Any]:
    counts = {}
    for table in ("cases", "case_pauses", "case_history", "imported_cases", "case_imports", "outbox",
                  "daily_counters"):
        counts[table] = (await sql(client, f"SELECT count(*) AS n FROM {table}"))[0]["n"]
    return counts


def iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


async def check_imported(client, tokens, answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every case of GOOD as the service now has it, checked against its original clock."""
    by_legacy = {c["legacy_no"]: c for c in answer["cases"]}
    assert sorted(by_legacy) == ["OLD-001", "OLD-002", "OLD-003", "OLD-004"]
    found = {}
    for legacy, clock in CLOCKS.items():
        r = await client.get(f"/cases/{by_legacy[legacy]['case_no']}", headers=clerk(tokens))
        assert r.status_code == 200, r.text
        case = found[legacy] = r.json()
        assert (case["due_at"], case["legal_due_at"], case["warn_at"], case["stage_due_at"]) == (
            iso(clock.due_at), iso(clock.legal_due_at), iso(clock.warn_at), iso(clock.stage_due_at)), legacy
        assert case["imported"] is True and case["clock_version"] == 1
    return found


# a good file

async def test_a_good_json_file_imports_every_case_with_its_original_clock(cases, tokens):
    r = await post_import(cases, tokens, {"cases": GOOD})
    assert r.status_code == 201, r.text
    answer = r.json()
    assert (answer["rows"], answer["overdue"]) == (4, 2)
    found = await check_imported(cases, tokens, answer)
    one, two, three, four = (found[k] for k in ("OLD-001", "OLD-002", "OLD-003", "OLD-004"))
    # by hand: accepted Mon 2 Feb, due end of Mon 9 Feb; 补正 10→11 Feb moved the other one day, to Wed 25 Feb
    assert one["due_at"] == end_of(date(2026, 2, 9)) and two["due_at"] == end_of(date(2026, 2, 25))
    # numbered by the original acceptance date, in acceptance order within the day
    assert (one["case_no"], four["case_no"], two["case_no"], three["case_no"]) == (
        f"{A}-20260202-000001", f"{A}-20260202-000002", f"{A}-20260210-000001", f"{A}-20260211-000001")
    assert (one["status"], two["status"], three["status"], four["status"]) == (
        "in_progress", "in_progress", "special", "extension_pending")
    assert (one["overdue_at_import"], two["overdue_at_import"], three["overdue_at_import"],
            four["overdue_at_import"]) == (True, False, False, True)
    assert (three["stage"], three["stage_index"], three["extension_days"], three["paused_kind"],
            three["paused_on"]) == ("决定", 1, 3, "special", "2026-02-12")
    assert (four["extension_days"], four["extension_request_days"]) == (0, 2)
    assert [(p["kind"], p["paused_on"], p["resumed_on"], p["missing_materials"]) for p in two["pauses"]] == [
        ("supplement", "2026-02-10", "2026-02-11", ["户口簿"])]
    assert three["pauses"][0]["reason"] == "专家评审" and three["pauses"][0]["limit_at"] == end_of(date(2026, 3, 4))
    assert one["accepted_at"] == "2026-02-02T02:00:00Z" and two["accepted_at"] == "2026-02-10T06:30:00Z"
    assert (one["handler_name"], one["applicant_name_masked"], one["id_number_masked"]) == (
        "王小明", "欧***", "1101**********002X")


async def test_each_imported_case_is_audited_and_published_as_accepted_imported(cases, tokens):
    r = await post_import(cases, tokens, {"cases": GOOD})
    assert r.status_code == 201, r.text
    by_legacy = {c["legacy_no"]: c["case_no"] for c in r.json()["cases"]}
    accepted = {e["data"]["case"]["case_no"]: e["data"] for e in await events(cases, "case.accepted")}
    assert set(accepted) == set(by_legacy.values())
    first = accepted[by_legacy["OLD-001"]]
    assert (first["case"]["imported"], first["case"]["overdue_at_import"]) == (True, True)
    assert accepted[by_legacy["OLD-002"]]["case"]["overdue_at_import"] is False
    assert accepted[by_legacy["OLD-003"]]["case"]["status"] == "special"
    assert first["case"]["due_at"] == end_of(date(2026, 2, 9)) and first["lookup_code_sealed"]
    history = await sql(cases, "SELECT case_no, action, actor_id, actor_role, to_status, to_stage, details "
                               "FROM case_history ORDER BY case_no")
    assert [(h["action"], h["actor_id"], h["actor_role"]) for h in history] == [
        ("import", f"admin-{A}", "center_admin")] * 4
    details = {h["case_no"]: json.loads(h["details"]) for h in history}
    assert details[by_legacy["OLD-001"]]["legacy_no"] == "OLD-001"
    legacy = await sql(cases, "SELECT legacy_no, case_no FROM imported_cases ORDER BY legacy_no")
    assert {r["legacy_no"]: r["case_no"] for r in legacy} == by_legacy
    assert_no_personal_data(r.text + json.dumps(list(accepted.values()), ensure_ascii=False), ID, PHONE, NAME)


async def test_a_csv_file_imports_the_same_cases_with_the_same_clocks(cases, tokens):
    r = await post_import(cases, tokens, CSV, content_type="text/csv")
    assert r.status_code == 201, r.text
    found = await check_imported(cases, tokens, r.json())
    assert (found["OLD-003"]["status"], found["OLD-003"]["extension_days"]) == ("special", 3)
    assert (found["OLD-004"]["status"], found["OLD-004"]["extension_request_days"]) == ("extension_pending", 2)
    assert [e["data"]["case"]["overdue_at_import"] for e in await events(cases, "case.accepted")].count(True) == 2


async def test_a_csv_file_in_gb18030_is_read_by_its_declared_charset(cases, tokens):
    r = await post_import(cases, tokens, CSV.encode("gb18030"), content_type="text/csv; charset=gb18030")
    assert r.status_code == 201, r.text
    assert {c["legacy_no"] for c in r.json()["cases"]} == {"OLD-001", "OLD-002", "OLD-003", "OLD-004"}


# a bad file imports nothing

async def test_a_json_file_with_bad_rows_imports_nothing_and_names_every_row_and_field(cases, tokens):
    before = await imported_state(cases)
    bad = [GOOD[0], {**GOOD[1], "applicant": {"name": NAME, "id_number": "110105194912310021"}},
           GOOD[2], {**GOOD[3], "item_code": "NOPE"}, {**GOOD[0], "legacy_no": "OLD-005", "accepted_at": "soon"}]
    r = await post_import(cases, tokens, {"cases": bad})
    assert r.status_code == 422, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "import_invalid" and (problem["row"], problem["field"]) == (2, "applicant.id_number")
    assert [(e["row"], e["field"], e["code"]) for e in problem["errors"]] == [
        (2, "applicant.id_number", "invalid_id_number"), (4, "item_code", "unknown_item"),
        (5, "accepted_at", "validation_failed")]
    assert await imported_state(cases) == before  # nothing written: no case, number, history or event


async def test_a_csv_file_with_one_bad_row_imports_nothing_and_names_the_row_and_column(cases, tokens):
    before = await imported_state(cases)
    lines = CSV.splitlines()
    lines[3] = lines[3].replace(PHONE, "12345")
    r = await post_import(cases, tokens, "\n".join(lines) + "\n", content_type="text/csv")
    assert r.status_code == 422, r.text
    assert [(e["row"], e["field"], e["code"]) for e in r.json()["errors"]] == [(3, "phone", "invalid_phone")]
    assert await imported_state(cases) == before


@pytest.mark.parametrize("change,field,code", [
    ({"pauses": [{"kind": "supplement", "from": "2026-02-01", "to": "2026-02-03"}]}, "pauses[0].from",
     "pause_before_acceptance"),
    ({"pauses": [{"kind": "special", "from": "2026-02-03", "to": "2026-02-05"},
                 {"kind": "special", "from": "2026-02-04", "to": "2026-02-06"}]}, "pauses[1].from", "pauses_overlap"),
    ({"pauses": [{"kind": "special", "from": "2026-02-03"}, {"kind": "special", "from": "2026-02-05"}]},
     "pauses[0].to", "open_pause_not_last"),
    ({"pauses": [{"kind": "supplement", "from": "2026-02-03", "to": "2026-02-04"},
                 {"kind": "supplement", "from": "2026-02-05", "to": "2026-02-06"}]}, "pauses[1].kind",
     "second_supplement"),
    ({"pauses": [{"kind": "forward", "from": "2026-02-03", "to": "2026-02-05"}]}, "pauses[0].to", "forward_resumed"),
    ({"pauses": [{"kind": "special", "from": "2026-02-10"}]}, "pauses[0].from", "pause_after_due"),
    ({"pauses": [{"kind": "special", "from": "2026-02-03", "to": "2026-02-13"}]}, "pauses[0].to", "pause_in_future"),
    ({"extension": {"days": 11, "approved": True}}, "extension.days", "extension_too_long"),
    ({"extension": {"days": 2, "approved": False}, "pauses": [{"kind": "special", "from": "2026-02-03"}]},
     "extension.approved", "pending_and_paused"),
    ({"stage": "决定"}, "stage", "unknown_stage"),
    ({"handler": "nobody"}, "handler", "unknown_handler"),
    ({"handler": "clerk-b1"}, "handler", "wrong_handler"),
    ({"accepted_at": "2026-02-12T09:00:01+08:00"}, "accepted_at", "future_acceptance"),
    ({"stage_started_on": "2026-02-01"}, "stage_started_on", "stage_start_out_of_range"),
    ({"source": "agent"}, "source", "validation_failed"),
    ({"pauses": [{"kind": "hold", "from": "2026-02-03"}]}, "pauses[0].kind", "validation_failed"),
])
async def test_each_rule_of_the_clock_refuses_the_row_by_its_field(cases, tokens, change, field, code):
    bad = {**row("OLD-009", "2026-02-02T10:00:00+08:00"), **change}
    r = await post_import(cases, tokens, {"cases": [GOOD[1], bad]})
    assert r.status_code == 422, r.text
    assert [(e["row"], e["field"], e["code"]) for e in r.json()["errors"]] == [(2, field, code)]
    assert (await imported_state(cases))["cases"] == 0


async def test_a_legacy_number_is_imported_once(cases, tokens):
    twice = await post_import(cases, tokens, {"cases": [GOOD[0], GOOD[1], {**GOOD[2], "legacy_no": "OLD-001"}]})
    assert [(e["row"], e["field"], e["code"]) for e in twice.json()["errors"]] == [
        (3, "legacy_no", "duplicate_legacy_no")]
    assert (await post_import(cases, tokens, {"cases": GOOD[:1]})).status_code == 201
    again = await post_import(cases, tokens, {"cases": GOOD[:2]})
    assert again.status_code == 422, again.text
    assert [(e["row"], e["field"], e["code"]) for e in again.json()["errors"]] == [
        (1, "legacy_no", "already_imported")]
    other_centre = await post_import(cases, tokens, {"cases": [{**GOOD[0], "handler": "clerk-b1"}]}, center=B,
                                     headers=admin(tokens, B))
    assert other_centre.status_code == 201, other_centre.text  # legacy numbers are a centre's own


@pytest.mark.parametrize("body,content_type,status,field", [
    ("legacy_no,colour\nX,red\n", "text/csv", 422, "colour"),
    ("{not json", "application/json", 422, "body"),
    ('{"cases": []}', "application/json", 422, "cases"),
    ("<xml/>", "application/xml", 415, "content-type"),
])
async def test_a_file_the_import_cannot_read_is_refused_whole(cases, tokens, body, content_type, status, field):
    r = await post_import(cases, tokens, body, content_type=content_type)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field


async def test_only_a_centre_admin_of_the_centre_imports(cases, tokens):
    assert (await post_import(cases, tokens, {"cases": GOOD}, headers=clerk(tokens))).status_code == 403
    assert (await post_import(cases, tokens, {"cases": GOOD}, headers=admin(tokens, B))).status_code == 403
    assert (await imported_state(cases))["cases"] == 0


# the CLI

def run_cli(client, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CASES_DATABASE_URL": client.db.url, "HALL_CLOCK_MODE": "fixed",
           "HALL_CLOCK_FIXED_AT": local(2026, 2, 12).isoformat()}
    return subprocess.run([sys.executable, "-m", "services.cases.intake.cli", "import", str(path), "--center", A,
                           "--actor", "go-live", *extra], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


async def test_the_cli_imports_a_file_in_one_transaction_with_a_progress_bar(cases, tokens, tmp_path):
    path = tmp_path / "open-cases.csv"
    path.write_text(CSV, encoding="utf-8")
    done = run_cli(cases, path)
    assert done.returncode == 0, done.stderr
    assert "4 cases of centre 320102 imported, 2 already overdue" in done.stdout
    assert "checking [" in done.stderr and "writing  [" in done.stderr and "4/4" in done.stderr
    rows = await sql(cases, "SELECT legacy_no, c.due_at, c.imported FROM imported_cases i JOIN cases c USING "
                            "(case_no) ORDER BY legacy_no")
    assert [(r["legacy_no"], r["due_at"], r["imported"]) for r in rows] == [
        (k, CLOCKS[k].due_at, True) for k in sorted(CLOCKS)]
    history = await sql(cases, "SELECT DISTINCT actor_id, actor_role, action FROM case_history")
    assert [tuple(h) for h in history] == [("go-live", "cli", "import")]
    assert len(await events(cases, "case.accepted")) == 4


async def test_the_cli_refuses_a_bad_file_whole_and_prints_every_problem(cases, tokens, tmp_path):
    path = tmp_path / "open-cases.json"
    path.write_text(json.dumps({"cases": [GOOD[0], {**GOOD[1], "item_code": "NOPE"}]}), encoding="utf-8")
    done = run_cli(cases, path, "--quiet")
    assert done.returncode == 1
    assert "row 2, item_code: centre 320102 has no active item NOPE (unknown_item)" in done.stderr
    assert (await imported_state(cases))["cases"] == 0
