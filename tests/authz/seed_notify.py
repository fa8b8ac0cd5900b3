"""The notify service's seed for the policy test (policy.d/notify_recipients.yaml): a recipient of the centre,
made through the service's own API, and fresh ones (with a subscription each) for the routes that spend one."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

_numbers = itertools.count(1)


async def seed_notify(client: httpx.AsyncClient, admin: dict[str, str],
                      center: str) -> tuple[dict[str, Any], dict[str, Callable[[], Awaitable[Any]]]]:
    """(values, fresh) for Seeds: {recipient}, and fresh_{recipient, subscription}."""

    async def recipient() -> int:
        n = next(_numbers)
        r = await client.post("/recipients", headers=admin, json={
            "kind": "email", "name": f"策略测试邮箱{n}", "center_id": center, "address": f"policy{n}@example.cn"})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    async def subscription() -> int:
        r = await client.post("/subscriptions", headers=admin, json={
            "recipient_id": await recipient(), "event_types": ["sanction.issued"], "center_id": center,
            "channel": "email"})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    return {"recipient": await recipient()}, {"fresh_recipient": recipient, "fresh_subscription": subscription}
