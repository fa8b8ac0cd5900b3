"""Builders of a hall for the queue tests: a centre, its services and windows, through the service's API."""

from __future__ import annotations

import json
from typing import Any

import httpx

A = "320102"
B = "320104"


async def outbox(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    rows = await client.db.fetch("SELECT envelope FROM outbox ORDER BY sequence")  # type: ignore[attr-defined]
    return [json.loads(r["envelope"]) if isinstance(r["envelope"], str) else r["envelope"] for r in rows]


async def center(client: httpx.AsyncClient, tokens: Any, center_id: str = A) -> dict[str, Any]:
    r = await client.post("/centers", json={"id": center_id, "name": f"中心 {center_id}"},
                          headers=tokens.headers("system_admin", ["*"]))
    assert r.status_code == 201, r.text
    return r.json()


def service_body(code: str, prefix: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "name": f"业务 {code}", "prefix": prefix, **extra}


async def service(client: httpx.AsyncClient, tokens: Any, code: str, prefix: str, center_id: str = A,
                  **extra: Any) -> dict[str, Any]:
    r = await client.post(f"/centers/{center_id}/services", json=service_body(code, prefix, **extra),
                          headers=tokens.headers("center_admin", [center_id]))
    assert r.status_code == 201, r.text
    return r.json()


async def window(client: httpx.AsyncClient, tokens: Any, number: str, weights: dict[str, int],
                 center_id: str = A, **extra: Any) -> dict[str, Any]:
    body = {"number": number, "name": f"{number} 号窗口",
            "services": [{"service_code": c, "weight": w} for c, w in weights.items()], **extra}
    r = await client.post(f"/centers/{center_id}/windows", json=body, headers=tokens.headers("center_admin", [center_id]))
    assert r.status_code == 201, r.text
    return r.json()
