"""Builders for the cases tests: a centre as the queue announces it (its read copy), departments and items
through the service's API, read-copy events applied as the consumer applies them, and the outbox."""

from __future__ import annotations

import json
from typing import Any

import httpx

from services.cases.consumers import CONSUMERS
from shared.events.catalog import CenterUpserted, UserUpserted, WindowUpserted
from shared.events.envelope import Envelope, EventData

A = "320102"
B = "320104"


async def outbox(client: httpx.AsyncClient, type_: str | None = None) -> list[dict[str, Any]]:
    """The envelopes the service published, in order; only those of `type_` when given."""
    rows = await client.db.fetch(  # type: ignore[attr-defined]
        "SELECT envelope FROM outbox WHERE $1::text IS NULL OR type = $1 ORDER BY sequence", type_)
    return [json.loads(r["envelope"]) if isinstance(r["envelope"], str) else r["envelope"] for r in rows]


def envelope(producer: str, payload: EventData, sequence: int, *, subject: str,
             center_id: str | None = None) -> Envelope:
    """An event as the producer's relay sends it, with its outbox sequence."""
    return Envelope.wrap(producer, payload, subject=subject, center_id=center_id).model_copy(
        update={"sequence": sequence})


async def apply(client: httpx.AsyncClient, *envelopes: Envelope) -> None:
    """Apply events through the cases consumers' handlers (by type), in one transaction."""
    handlers = {type_: handler for spec in CONSUMERS for type_, handler in spec.handlers.items()}
    async with client.app.state.sessionmaker() as session, session.begin():  # type: ignore[attr-defined]
        for event in envelopes:
            await handlers[event.type](session, event)


async def center(client: httpx.AsyncClient, center_id: str = A, *, sequence: int = 1,
                 name: str | None = None) -> None:
    """The queue's centre, as cases copies it from center.upserted (again: harmless, an older sequence)."""
    payload = CenterUpserted(id=center_id, name=name or f"中心 {center_id}", address=None)
    await apply(client, envelope("queue", payload, sequence, subject=center_id, center_id=center_id))


def window_event(sequence: int, number: str = "W03", center_id: str = A, **changes: Any) -> Envelope:
    payload = WindowUpserted(**{"center_id": center_id, "number": number, "name": f"{number} 号窗口",
                                "department": "D01", "services": [], "a_clerk": None, "b_clerk": None,
                                **changes})
    return envelope("queue", payload, sequence, subject=f"window:{center_id}:{number}", center_id=center_id)


def user_event(sequence: int, user_id: str = "u-clerk-1", **changes: Any) -> Envelope:
    payload = UserUpserted(**{"id": user_id, "display_name": "张三", "role": "clerk", "centers": [A],
                              "department": "D01", **changes})
    return envelope("identity", payload, sequence, subject=user_id)


def admin(tokens: Any, center_id: str) -> dict[str, str]:
    return tokens.headers("center_admin", [center_id], subject=f"admin-{center_id}")


def department_body(center_id: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"center_id": center_id, "code": code, "name": f"窗口单位 {code}", **extra}


async def department(client: httpx.AsyncClient, tokens: Any, center_id: str = A, code: str = "D01",
                     **extra: Any) -> dict[str, Any]:
    """A department of the centre (the centre's copy made first), created by the centre's admin."""
    await center(client, center_id)
    r = await client.post("/departments", json=department_body(center_id, code, **extra),
                          headers=admin(tokens, center_id))
    assert r.status_code == 201, r.text
    return r.json()


def item_body(center_id: str, code: str, department_code: str, **extra: Any) -> dict[str, Any]:
    """A promised item (承诺件): legal 20, promised 5 working days, unless `extra` says otherwise."""
    return {"center_id": center_id, "code": code, "name": f"事项 {code}", "department": department_code,
            "kind": "promised", "legal_limit_days": 20, "promised_limit_days": 5, **extra}


async def item(client: httpx.AsyncClient, tokens: Any, center_id: str = A, code: str = "I01",
               department_code: str = "D01", **extra: Any) -> dict[str, Any]:
    """An item of the centre's catalogue (its department must exist: see `department`)."""
    r = await client.post("/items", json=item_body(center_id, code, department_code, **extra),
                          headers=admin(tokens, center_id))
    assert r.status_code == 201, r.text
    return r.json()
