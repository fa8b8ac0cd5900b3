"""The statements of case registration, the registry's busiest route, sent straight to asyncpg inside the
request session's transaction (`shared.db.driver_connection`), as the queue's hall-floor routes are.

Registration reads the item with the handler's name in one statement, then takes the daily number and
writes the case and its first audit entry in a second. The number's counter row stays locked until the
transaction ends (that is what makes the numbers gap-free), so it is taken last, just before the outbox row
and the commit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.cases.models import Case
from shared.db import driver_connection


@dataclass(frozen=True)
class AcceptRow:
    code: str
    name: str
    department: str
    kind: str
    legal_limit_days: int
    promised_limit_days: int
    stages: list[dict[str, Any]]
    warn_days: int
    max_extension_days: int
    forward_followup_days: int
    special_limit_days: int
    active: bool
    handler_name: str | None


_ITEM_FOR_ACCEPT = """
    SELECT i.code, i.name, i.department, i.kind, i.legal_limit_days, i.promised_limit_days, i.stages::text AS stages,
           i.warn_days, i.max_extension_days, i.forward_followup_days, i.special_limit_days, i.active,
           (SELECT s.display_name FROM staff s WHERE s.id = $3) AS handler_name
    FROM items i WHERE i.center_id = $1 AND i.code = $2
"""


async def item_for_accept(session: AsyncSession, center_id: str, item_code: str, handler_id: str) -> AcceptRow | None:
    db = await driver_connection(session)
    row = await db.fetchrow(_ITEM_FOR_ACCEPT, center_id, item_code, handler_id)
    if row is None:
        return None
    values = dict(row)
    values["stages"] = json.loads(values["stages"])
    return AcceptRow(**values)


_INSERTED = ("center_id", "item_code", "item_name", "department", "kind", "status", "stages", "stage_index", "stage_started_on",
             "lookup_code_hash", "source", "ticket_id", "notice_no", "materials", "accepted_at", "accepted_on",
             "promised_limit_days", "legal_limit_days", "warn_days", "extension_days", "max_extension_days",
             "special_limit_days", "forward_followup_days", "due_at", "legal_due_at", "warn_at", "stage_due_at",
             "clock_version", "supplement_count", "special_count", "expedited", "handler_id", "handler_name", "window",
             "applicant_name_masked", "applicant_name_encrypted", "applicant_hash", "id_number_masked",
             "id_number_encrypted", "phone_hash", "phone_masked", "phone_encrypted", "org", "imported",
             "overdue_at_import", "created_at", "updated_at")
_JSON = {"stages", "materials"}
_N = len(_INSERTED)
_INSERT_CASE = f"""
    WITH n AS (
        INSERT INTO daily_counters (scope, business_date, value) VALUES ($1, $2, 1)
        ON CONFLICT (scope, business_date) DO UPDATE SET value = daily_counters.value + 1
        RETURNING value
    ), c AS (
        INSERT INTO cases (case_no, {", ".join(f'"{c}"' for c in _INSERTED)})
        SELECT $3 || '-' || to_char($2::date, 'YYYYMMDD') || '-' || lpad(n.value::text, greatest(6, length(n.value::text)), '0'),
               {", ".join(f"${i + 4}::jsonb" if c in _JSON else f"${i + 4}" for i, c in enumerate(_INSERTED))}
        FROM n
        RETURNING case_no, accepted_at
    ), h AS (
        INSERT INTO case_history (case_no, at, actor_id, actor_role, action, from_status, to_status, from_stage,
                                  to_stage, reason, details)
        SELECT c.case_no, ${_N + 4}, ${_N + 5}, ${_N + 6}, ${_N + 7}, NULL, 'in_progress', NULL, ${_N + 8}, NULL,
               ${_N + 9}::jsonb
        FROM c
    )
    SELECT case_no FROM c
"""


async def insert_case(session: AsyncSession, case: Case, history: dict[str, Any]) -> str:
    """Number and insert the case with its first audit entry; returns the case number."""
    db = await driver_connection(session)
    values = [json.dumps(getattr(case, c), ensure_ascii=False) if c in _JSON else getattr(case, c) for c in _INSERTED]
    case_no = await db.fetchval(
        _INSERT_CASE, f"case:{case.center_id}", case.accepted_on, case.center_id, *values,
        case.updated_at, history["actor_id"], history["actor_role"], history["action"], history["to_stage"],
        json.dumps(history["details"], ensure_ascii=False))
    return str(case_no)
