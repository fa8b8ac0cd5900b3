"""The clock table (issue 21, acceptance): cases across the 2026 holidays through the API, each accepted at
its own moment of the fixed clock, then paused and resumed (补正, 特别程序), extended (延期), expedited
(特事特办), advanced through stages, or caught by a centre override; after every step the case's due_date,
due_at, legal_due_at, warn_at, stage_due_at and clock_version are what a hand count gives.

Every expectation is counted by hand from the State Council notices (../shared/official-holidays.md): in
2026 weekends are off except the 调休 working days Sun 4 Jan, Sat 14 Feb, Sat 28 Feb, Sat 9 May,
Sun 20 Sep and Sat 10 Oct; the holidays are 1-3 Jan, 15-23 Feb, 4-6 Apr, 1-5 May, 19-21 Jun, 25-27 Sep and
1-7 Oct. The rules (DOMAIN.md "How the clock counts"): the acceptance day is not counted; N working days end
at 23:59:59 local of the N-th working day after it (15:59:59Z); a pause from P to R adds the working days d
with P < d <= R, at the resume; warn_at is 00:00 local (16:00Z the day before) of the working day W working
days before the due date, and none when that day is not after the acceptance date.

"n: date" in the comments is the n-th working day after the acceptance (or stage start) date."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pytest

from tests.cases.case_support import (
    A,
    accept,
    admin,
    chief,
    clerk,
    end_of,
    events,
    get_case,
    item,
    local,
    seed,
    start_of,
)


@dataclass(frozen=True)
class E:
    """The clock expected after a step: due date, legal due date, warning day (None: no warning), version,
    and the stage's due date (None for an item without stage limits)."""

    due: date
    legal: date
    warn: date | None
    version: int
    stage: date | None = None


@dataclass(frozen=True)
class Step:
    at: datetime
    who: str  # clerk | chief | admin
    action: str  # an action route, or "override" (the centre admin's PUT /calendar/overrides)
    body: dict[str, Any]
    expect: E


@dataclass(frozen=True)
class Row:
    id: str
    item: dict[str, Any]
    accepted: datetime
    expect: E
    steps: list[Step] = field(default_factory=list)


D = date
SUPPLEMENT = {"missing_materials": ["户口簿原件", "照片"]}
SPECIAL = {"procedure": "site_inspection", "reason": "现场核查"}
NOTE: dict[str, Any] = {}


def extension(days: int) -> dict[str, Any]:
    return {"days": days, "reason": "需补充核查"}


def expedite(days: int) -> dict[str, Any]:
    return {"promised_limit_days": days, "reason": "特事特办：重点项目"}


ROWS = [
    # Thu 12 Feb, N 5, L 20, W 1: 1: 13, 2: 14 (调休), [春节 15-23], 3: 24, 4: 25, 5: 26 -> due 26 Feb; warn 25 Feb;
    # legal 6: 27, 7: 28 (调休), 8-12: 2-6 Mar, 13-17: 9-13 Mar, 18: 16, 19: 17, 20: 18 -> 18 Mar.
    # 补正 Fri 13 Feb -> Tue 24 Feb spans the Spring Festival: d in (13, 24] = 14 (调休), 24 -> +2;
    # due 7: 28 Feb (调休 Saturday), warn 1 before = 27 Feb; legal 22: 19, 20 Mar -> 20 Mar; version 2.
    Row("supplement-over-spring-festival", dict(promised=5, legal=20, warn=1), local(2026, 2, 12),
        E(D(2026, 2, 26), D(2026, 3, 18), D(2026, 2, 25), 1), [
            Step(local(2026, 2, 13, 10), "clerk", "request-supplement", SUPPLEMENT,
                 E(D(2026, 2, 26), D(2026, 3, 18), D(2026, 2, 25), 1)),  # an open pause adds nothing yet
            Step(local(2026, 2, 24, 10), "clerk", "supplement", NOTE,
                 E(D(2026, 2, 28), D(2026, 3, 20), D(2026, 2, 27), 2)),
        ]),
    # Mon 2 Mar, N 3, L 10, W 1: 3, 4, 5 Mar -> due Thu 5 Mar, warn 4 Mar; legal 3-6, 9-13, 16 -> 16 Mar.
    # 特别程序 started and ended on Tue 3 Mar: d in (3, 3] is empty -> +0, nothing moves, version stays 1.
    Row("same-day-special-procedure", dict(promised=3, legal=10, warn=1), local(2026, 3, 2),
        E(D(2026, 3, 5), D(2026, 3, 16), D(2026, 3, 4), 1), [
            Step(local(2026, 3, 3, 10), "clerk", "start-special", SPECIAL,
                 E(D(2026, 3, 5), D(2026, 3, 16), D(2026, 3, 4), 1)),
            Step(local(2026, 3, 3, 16), "clerk", "end-special", NOTE,
                 E(D(2026, 3, 5), D(2026, 3, 16), D(2026, 3, 4), 1)),
        ]),
    # Mon 2 Mar, N 3, L 10, W 1 (due 5 Mar, warn 4 Mar, legal 16 Mar as above): an extension of 2 requested on
    # Tue 3 Mar and declined by the chief representative the same day moves nothing; version stays 1.
    Row("declined-extension", dict(promised=3, legal=10, warn=1), local(2026, 3, 2),
        E(D(2026, 3, 5), D(2026, 3, 16), D(2026, 3, 4), 1), [
            Step(local(2026, 3, 3, 10), "clerk", "request-extension", extension(2),
                 E(D(2026, 3, 5), D(2026, 3, 16), D(2026, 3, 4), 1)),
            Step(local(2026, 3, 3, 15), "chief", "decline-extension", {"reason": "理由不足"},
                 E(D(2026, 3, 5), D(2026, 3, 16), D(2026, 3, 4), 1)),
        ]),
    # Mon 30 Mar, N 3, L 10, W 1: 1: 31 Mar, 2: 1 Apr, 3: 2 Apr -> due Thu 2 Apr, warn 1 Apr; 4: 3 Apr,
    # [清明 4-6], 5: 7, 6: 8, 7: 9, 8: 10, 9: 13, 10: 14 -> legal 14 Apr.
    # Extension of 2 requested Wed 1 Apr (nothing moves while pending), approved the same day by the chief
    # representative: due 5: Tue 7 Apr over Qingming, warn 1 before = Fri 3 Apr; legal 12: 16 Apr; version 2.
    Row("extension-over-qingming", dict(promised=3, legal=10, warn=1), local(2026, 3, 30),
        E(D(2026, 4, 2), D(2026, 4, 14), D(2026, 4, 1), 1), [
            Step(local(2026, 4, 1, 10), "clerk", "request-extension", extension(2),
                 E(D(2026, 4, 2), D(2026, 4, 14), D(2026, 4, 1), 1)),
            Step(local(2026, 4, 1, 15), "chief", "approve-extension", NOTE,
                 E(D(2026, 4, 7), D(2026, 4, 16), D(2026, 4, 3), 2)),
        ]),
    # Thu 12 Feb, N 5 (due 26 Feb, warn 25 Feb, legal 18 Mar as above). 特事特办 on Fri 13 Feb to N 2:
    # 1: 13, 2: 14 (调休) -> due Sat 14 Feb; warn 1 before = 13 Feb, after the acceptance day; legal unchanged.
    Row("expedite-to-a-tiaoxiu-saturday", dict(promised=5, legal=20, warn=1), local(2026, 2, 12),
        E(D(2026, 2, 26), D(2026, 3, 18), D(2026, 2, 25), 1), [
            Step(local(2026, 2, 13, 10), "chief", "expedite", expedite(2),
                 E(D(2026, 2, 14), D(2026, 3, 18), D(2026, 2, 13), 2)),
        ]),
    # Thu 12 Feb, N 5; expedited at 11:00 the same day to N 0: due the end of the acceptance day 12 Feb (not yet
    # past), no warning (1 working day before 12 Feb is 11 Feb, not after the acceptance date).
    Row("expedite-to-the-acceptance-day", dict(promised=5, legal=20, warn=1), local(2026, 2, 12),
        E(D(2026, 2, 26), D(2026, 3, 18), D(2026, 2, 25), 1), [
            Step(local(2026, 2, 12, 11), "chief", "expedite", expedite(0),
                 E(D(2026, 2, 12), D(2026, 3, 18), None, 2)),
        ]),
    # 即办件, limit 0, accepted Tue 10 Mar: due the end of 10 Mar itself, legal too; no early warning.
    Row("immediate", dict(kind="immediate", promised=0, legal=0, warn=1), local(2026, 3, 10, 10),
        E(D(2026, 3, 10), D(2026, 3, 10), None, 1)),
    # 即办件 accepted on Sat 3 Oct, inside the National Day holiday (the centre opened): N = 0 ends at the end
    # of the acceptance date, even a holiday.
    Row("immediate-on-national-day", dict(kind="immediate", promised=0, legal=0, warn=1),
        local(2026, 10, 3, 10), E(D(2026, 10, 3), D(2026, 10, 3), None, 1)),
    # Fri 24 Apr, N 2, L 5, W 2 (W = N): 1: Mon 27, 2: Tue 28 -> due 28 Apr; 3: 29, 4: 30, [劳动节 1-5 May],
    # 5: Wed 6 May -> legal 6 May. Warning: 2 before 28 Apr = 27, 24 Apr: not after acceptance -> none.
    Row("warn-lead-equals-limit", dict(promised=2, legal=5, warn=2), local(2026, 4, 24),
        E(D(2026, 4, 28), D(2026, 5, 6), None, 1)),
    # Same acceptance, W 5 > N 2: 5 working days before 28 Apr lies well before acceptance -> none.
    Row("warn-lead-beyond-limit", dict(promised=2, legal=5, warn=5), local(2026, 4, 24),
        E(D(2026, 4, 28), D(2026, 5, 6), None, 1)),
    # Wed 29 Apr, N 5, L 10, W 1: 1: Thu 30 Apr, [劳动节 1-5 May], 2: 6, 3: 7, 4: 8, 5: Sat 9 (调休) -> due 9 May,
    # warn 8 May; 6: 11, 7: 12, 8: 13, 9: 14, 10: 15 -> legal 15 May.
    # 特别程序 from Thu 30 Apr to Wed 6 May spans Labour Day: d in (30 Apr, 6 May] = 6 May -> +1:
    # due 6: Mon 11 May, warn 1 before = Sat 9 May (调休); legal 11: Mon 18 May; version 2.
    Row("labour-day-special-procedure", dict(promised=5, legal=10, warn=1), local(2026, 4, 29),
        E(D(2026, 5, 9), D(2026, 5, 15), D(2026, 5, 8), 1), [
            Step(local(2026, 4, 30, 10), "clerk", "start-special", SPECIAL,
                 E(D(2026, 5, 9), D(2026, 5, 15), D(2026, 5, 8), 1)),
            Step(local(2026, 5, 6, 10), "clerk", "end-special", NOTE,
                 E(D(2026, 5, 11), D(2026, 5, 18), D(2026, 5, 9), 2)),
        ]),
    # Wed 23 Sep, N 5, L 15, W 1: 1: Thu 24, [中秋 25-27], 2: 28, 3: 29, 4: 30, [国庆 1-7 Oct], 5: Thu 8 Oct
    # -> due 8 Oct, warn 1 before = 30 Sep; 6: 9, 7: Sat 10 (调休), 8: 12, 9-12: 13-16, 13-15: 19-21 -> legal
    # 21 Oct. Extension of 3 requested Tue 29 Sep, approved Wed 30 Sep: due 8: Mon 12 Oct, warn 1 before =
    # Sat 10 Oct (调休); legal 18: 22, 23, Mon 26 Oct; version 2.
    Row("national-day-extension", dict(promised=5, legal=15, warn=1), local(2026, 9, 23),
        E(D(2026, 10, 8), D(2026, 10, 21), D(2026, 9, 30), 1), [
            Step(local(2026, 9, 29, 10), "clerk", "request-extension", extension(3),
                 E(D(2026, 10, 8), D(2026, 10, 21), D(2026, 9, 30), 1)),
            Step(local(2026, 9, 30, 10), "chief", "approve-extension", NOTE,
                 E(D(2026, 10, 12), D(2026, 10, 26), D(2026, 10, 10), 2)),
        ]),
    # Into 2027: the chinese-calendar package has no 2027 schedule and none is imported, so 2027 counts on the
    # Monday-to-Friday fallback (Fri 1 Jan 2027 is a working day there, no 元旦; the 2027 Spring Festival is
    # not known either). Mon 21 Dec 2026, N 10, L 30, W 2: 1-4: 22-25 Dec, 5-8: 28-31 Dec, 9: Fri 1 Jan 2027,
    # 10: Mon 4 Jan -> due 4 Jan 2027, warn 2 before = 1 Jan, 31 Dec -> 31 Dec 2026; legal 11-14: 5-8 Jan,
    # 15-19: 11-15, 20-24: 18-22, 25-29: 25-29 Jan, 30: Mon 1 Feb 2027.
    # 补正 Wed 30 Dec 2026 -> Tue 5 Jan 2027: d in (30 Dec, 5 Jan] = 31 Dec, 1 Jan, 4, 5 Jan -> +4: due 14:
    # Fri 8 Jan 2027, warn 2 before = 7, 6 -> 6 Jan 2027; legal 34: 2, 3, 4, 5 Feb -> Fri 5 Feb 2027; version 2.
    Row("into-2027-on-the-fallback", dict(promised=10, legal=30, warn=2), local(2026, 12, 21),
        E(D(2027, 1, 4), D(2027, 2, 1), D(2026, 12, 31), 1), [
            Step(local(2026, 12, 30, 10), "clerk", "request-supplement", SUPPLEMENT,
                 E(D(2027, 1, 4), D(2027, 2, 1), D(2026, 12, 31), 1)),
            Step(local(2027, 1, 5, 10), "clerk", "supplement", NOTE,
                 E(D(2027, 1, 8), D(2027, 2, 5), D(2027, 1, 6), 2)),
        ]),
    # Across New Year 2026 (the clock crosses from the 2025 table to 2026's): Wed 31 Dec 2025, N 3, L 5, W 1:
    # [元旦 1-3 Jan], 1: Sun 4 Jan (调休), 2: 5, 3: 6 -> due Tue 6 Jan, warn 5 Jan; 4: 7, 5: 8 -> legal 8 Jan.
    Row("over-new-year-2026", dict(promised=3, legal=5, warn=1), local(2025, 12, 31),
        E(D(2026, 1, 6), D(2026, 1, 8), D(2026, 1, 5), 1)),
    # Accepted at the weekend service on Sat 7 Mar (a plain weekend), N 2, L 3, W 1: 1: Mon 9, 2: 10 -> due
    # 10 Mar, warn 9 Mar; 3: 11 -> legal 11 Mar.
    Row("weekend-acceptance", dict(promised=2, legal=3, warn=1), local(2026, 3, 7, 10),
        E(D(2026, 3, 10), D(2026, 3, 11), D(2026, 3, 9), 1)),
    # Mon 15 Jun, N 5, L 10, W 1: 1: 16, 2: 17, 3: 18, [端午 19-21], 4: 22, 5: 23 -> due 23 Jun, warn 22 Jun;
    # 6-8: 24-26, 9: 29, 10: 30 -> legal 30 Jun; 11-13: 1-3 Jul, 14: 6, 15: 7 Jul.
    # 特别程序 Thu 18 -> Tue 23 Jun over Dragon Boat: d in (18, 23] = 22, 23 -> +2: due 7: 25 Jun, warn 24 Jun,
    # legal 12: 2 Jul; version 2. A second 特别程序 on Wed 24 Jun, ended the same day: +0, nothing moves.
    # Extension of 2 approved Thu 25 Jun: due 9: Mon 29 Jun, warn 1 before = Fri 26 Jun; legal 14: Mon 6 Jul;
    # version 3.
    Row("dragon-boat-two-specials-then-extension", dict(promised=5, legal=10, warn=1), local(2026, 6, 15),
        E(D(2026, 6, 23), D(2026, 6, 30), D(2026, 6, 22), 1), [
            Step(local(2026, 6, 18, 10), "clerk", "start-special", SPECIAL,
                 E(D(2026, 6, 23), D(2026, 6, 30), D(2026, 6, 22), 1)),
            Step(local(2026, 6, 23, 10), "clerk", "end-special", NOTE,
                 E(D(2026, 6, 25), D(2026, 7, 2), D(2026, 6, 24), 2)),
            Step(local(2026, 6, 24, 10), "clerk", "start-special", {**SPECIAL, "procedure": "expert_review"},
                 E(D(2026, 6, 25), D(2026, 7, 2), D(2026, 6, 24), 2)),
            Step(local(2026, 6, 24, 15), "clerk", "end-special", NOTE,
                 E(D(2026, 6, 25), D(2026, 7, 2), D(2026, 6, 24), 2)),
            Step(local(2026, 6, 25, 10), "clerk", "request-extension", extension(2),
                 E(D(2026, 6, 25), D(2026, 7, 2), D(2026, 6, 24), 2)),
            Step(local(2026, 6, 25, 11), "chief", "approve-extension", NOTE,
                 E(D(2026, 6, 29), D(2026, 7, 6), D(2026, 6, 26), 3)),
        ]),
    # A centre override arriving while the case is open: Mon 8 Jun, N 3, L 6, W 1: 9, 10, 11 -> due 11 Jun, warn
    # 10 Jun; 12, 15, 16 -> legal 16 Jun. On Tue 9 Jun the centre closes Wed 10 Jun (台风): 1: 9, 2: 11, 3: 12
    # -> due Fri 12 Jun, warn 11 Jun; 4: 15, 5: 16, 6: 17 -> legal 17 Jun; version 2 (cause calendar).
    Row("centre-override-while-open", dict(promised=3, legal=6, warn=1), local(2026, 6, 8),
        E(D(2026, 6, 11), D(2026, 6, 16), D(2026, 6, 10), 1), [
            Step(local(2026, 6, 9, 10), "admin", "override",
                 {"days": [{"date": "2026-06-10", "kind": "holiday", "reason": "台风停工"}]},
                 E(D(2026, 6, 12), D(2026, 6, 17), D(2026, 6, 11), 2)),
        ]),
    # Stage limits (审查 2, 决定 1), Thu 12 Feb, N 5, L 20, W 1 (due 26 Feb, warn 25 Feb, legal 18 Mar):
    # 审查 from 12 Feb: 1: 13, 2: 14 (调休) -> stage due 14 Feb. Advanced on Tue 24 Feb: 决定 from 24 Feb,
    # 1: 25 -> stage due 25 Feb; the case's clock does not move. 补正 Wed 25 -> Fri 27 Feb: d in (25, 27] =
    # 26, 27 -> +2: stage due 3 after 24 Feb: 25, 26, 27 -> 27 Feb; case due 7: Sat 28 Feb, warn 27 Feb,
    # legal 22: 20 Mar; version 2.
    Row("stages-review-then-decision",
        dict(promised=5, legal=20, warn=1, stages=[{"name": "审查", "limit_days": 2}, {"name": "决定", "limit_days": 1}]),
        local(2026, 2, 12), E(D(2026, 2, 26), D(2026, 3, 18), D(2026, 2, 25), 1, D(2026, 2, 14)), [
            Step(local(2026, 2, 24, 10), "clerk", "advance", NOTE,
                 E(D(2026, 2, 26), D(2026, 3, 18), D(2026, 2, 25), 1, D(2026, 2, 25))),
            Step(local(2026, 2, 25, 10), "clerk", "request-supplement", SUPPLEMENT,
                 E(D(2026, 2, 26), D(2026, 3, 18), D(2026, 2, 25), 1, D(2026, 2, 25))),
            Step(local(2026, 2, 27, 10), "clerk", "supplement", NOTE,
                 E(D(2026, 2, 28), D(2026, 3, 20), D(2026, 2, 27), 2, D(2026, 2, 27))),
        ]),
]


def clock_of(case: dict[str, Any]) -> dict[str, Any]:
    return {k: case[k] for k in ("due_date", "due_at", "legal_due_at", "warn_at", "stage_due_at", "clock_version")}


def expected(e: E) -> dict[str, Any]:
    return {"due_date": e.due.isoformat(), "due_at": end_of(e.due), "legal_due_at": end_of(e.legal),
            "warn_at": start_of(e.warn) if e.warn else None, "stage_due_at": end_of(e.stage) if e.stage else None,
            "clock_version": e.version}


async def take(client: Any, tokens: Any, case_no: str, step: Step) -> None:
    if step.action == "override":
        r = await client.put("/calendar/overrides", params={"center": A}, json=step.body, headers=admin(tokens))
    else:
        headers = chief(tokens) if step.who == "chief" else clerk(tokens)
        r = await client.post(f"/cases/{case_no}/{step.action}", json=step.body, headers=headers)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
async def test_the_clock_after_each_step_is_the_hand_count(service_client, tokens, fixed_clock, row: Row):
    fixed_clock.set(row.accepted)
    async with service_client("cases") as client:
        await seed(client)
        await item(client, **row.item)
        accepted = await accept(client, tokens)
        no = accepted["case_no"]
        case = await get_case(client, tokens, no)
        assert clock_of(case) == expected(row.expect)
        # the receipt (the 201) says what the stored case says
        assert {k: accepted[k] for k in ("due_date", "due_at", "legal_due_at", "warn_at")} == \
            {k: case[k] for k in ("due_date", "due_at", "legal_due_at", "warn_at")}
        for i, step in enumerate(row.steps):
            fixed_clock.set(step.at)
            await take(client, tokens, no, step)
            case = await get_case(client, tokens, no)
            assert clock_of(case) == expected(step.expect), f"after step {i + 1}: {step.action}"
            # every clock change is published: one case.due_changed per new version, carrying the new clock
            changed = [e for e in await events(client, "case.due_changed") if e["data"]["case"]["case_no"] == no]
            assert len(changed) == step.expect.version - 1, f"after step {i + 1}: {step.action}"
            if changed:
                assert changed[-1]["data"]["case"]["clock_version"] == step.expect.version
                assert changed[-1]["data"]["case"]["due_at"] == end_of(step.expect.due)
