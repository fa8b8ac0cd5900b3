"""Shared set-up of the case acceptance tests (test_case_clock_table, test_case_rules, test_case_concurrency,
test_case_personal_data): departments, items and staff seeded by SQL (as test_case_lifecycle does), tokens
of each role, the API calls, and what the outbox holds. Times are given as local Asia/Shanghai wall time."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

A = "320102"  # the centre under test
B = "320104"  # a second centre
DEPT = "gov-ga"  # 公安局, the department of the items and of clerk-1, clerk-2, chief-1
OTHER = "gov-sw"  # 税务局, another department of centre A (clerk-3)
ID = "11010519491231002X"
PHONE = "13812345678"
NAME = "欧阳娜娜"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(y: int, m: int, d: int, hh: int = 9, mm: int = 0, ss: int = 0) -> datetime:
    """A local wall time in Shanghai, as the UTC instant the fixed clock takes."""
    return datetime(y, m, d, hh, mm, ss, tzinfo=SHANGHAI).astimezone(UTC)


def end_of(d: date) -> str:
    """The instant a limit ending on local date `d` runs out: 23:59:59 local (UTC+8) = 15:59:59Z."""
    return f"{d.isoformat()}T15:59:59Z"


def start_of(d: date) -> str:
    """00:00 local of `d`, i.e. 16:00Z of the day before."""
    return f"{(d - timedelta(days=1)).isoformat()}T16:00:00Z"


async def sql(client: httpx.AsyncClient, statement: str, *args: Any) -> list[Any]:
    return await client.db.fetch(statement, *args)  # type: ignore[attr-defined]


async def seed(client: httpx.AsyncClient) -> None:
    """Departments of A (DEPT with chief-1 as chief representative, OTHER) and of B; the staff copies."""
    for center, code, name in ((A, DEPT, "公安局"), (A, OTHER, "税务局"), (B, DEPT, "公安局")):
        await sql(client, "INSERT INTO departments (center_id, code, name, chief_rep, active, created_at, updated_at) "
                          "VALUES ($1, $2, $3, 'chief-1', true, now(), now())", center, code, name)
    staff = [("clerk-1", "王小明", "clerk", A, DEPT), ("clerk-2", "李四", "clerk", A, DEPT),
             ("clerk-3", "赵六", "clerk", A, OTHER), ("chief-1", "陈首席", "chief_rep", A, DEPT),
             ("clerk-b1", "钱七", "clerk", B, DEPT)]
    for seq, (uid, name, role, center, dept) in enumerate(staff, start=1):
        await sql(client, "INSERT INTO staff (id, display_name, role, centers, department, active, updated_at, "
                          "last_event_sequence) VALUES ($1, $2, $3, $4, $5, true, now(), $6)",
                  uid, name, role, [center], dept, seq)


async def item(client: httpx.AsyncClient, code: str = "ITEM1", *, center: str = A, department: str = DEPT,
               kind: str = "promised", promised: int = 5, legal: int = 20, warn: int = 1,
               stages: list[dict[str, Any]] | None = None, max_extension: int = 10, follow_up: int = 20,
               special: int = 10) -> str:
    await sql(client,
              "INSERT INTO items (center_id, code, name, department, kind, legal_limit_days, promised_limit_days, "
              "stages, warn_days, max_extension_days, forward_followup_days, special_limit_days, materials, "
              "active, created_at, updated_at) VALUES ($1, $2, '户籍迁移', $3, $4, $5, $6, $7::jsonb, $8, $9, $10, "
              "$11, '[]', true, now(), now())",
              center, code, department, kind, legal, promised, json.dumps(stages or []), warn, max_extension,
              follow_up, special)
    return code


# who calls

def clerk(tokens: Any, subject: str = "clerk-1", *, department: str = DEPT, center: str = A,
          window: str = "3") -> dict[str, str]:
    return tokens.headers("clerk", [center], subject=subject, department=department, window=window)


def chief(tokens: Any, subject: str = "chief-1", *, department: str = DEPT) -> dict[str, str]:
    return tokens.headers("chief_rep", [A], subject=subject, department=department)


def manager(tokens: Any) -> dict[str, str]:
    return tokens.headers("hall_manager", [A], subject="manager-1")


def admin(tokens: Any, center: str = A) -> dict[str, str]:
    return tokens.headers("center_admin", [center], subject=f"admin-{center}")


# the API

def case_body(item_code: str = "ITEM1", *, center: str = A, **extra: Any) -> dict[str, Any]:
    return {"center": center, "item_code": item_code,
            "applicant": {"name": NAME, "id_number": ID, "phone": PHONE},
            "materials": ["身份证", "户口簿"], **extra}


async def accept(client: httpx.AsyncClient, tokens: Any, item_code: str = "ITEM1",
                 headers: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    r = await client.post("/cases", json=case_body(item_code, **extra), headers=headers or clerk(tokens))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def act(client: httpx.AsyncClient, headers: dict[str, str], case_no: str, action: str,
              body: dict[str, Any] | None = None) -> dict[str, Any]:
    r = await client.post(f"/cases/{case_no}/{action}", json=body or {}, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def get_case(client: httpx.AsyncClient, tokens: Any, case_no: str) -> dict[str, Any]:
    r = await client.get(f"/cases/{case_no}", headers=clerk(tokens))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def history(client: httpx.AsyncClient, tokens: Any, case_no: str) -> list[dict[str, Any]]:
    r = await client.get(f"/cases/{case_no}/history", headers=clerk(tokens))
    assert r.status_code == 200, r.text
    return list(r.json())


async def events(client: httpx.AsyncClient, type_: str | None = None) -> list[dict[str, Any]]:
    """Every envelope in the outbox, in order (only `type_` when given)."""
    rows = await sql(client, "SELECT type, envelope FROM outbox ORDER BY sequence")
    found = [json.loads(r["envelope"]) if isinstance(r["envelope"], str) else r["envelope"] for r in rows]
    return [e for e in found if type_ is None or e["type"] == type_]


async def outbox_text(client: httpx.AsyncClient) -> str:
    rows = await sql(client, "SELECT envelope::text AS e FROM outbox ORDER BY sequence")
    return "\n".join(r["e"] for r in rows)
