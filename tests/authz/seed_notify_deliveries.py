"""The notify deliveries' seed for the policy test (policy.d/notify_deliveries.yaml): dead deliveries of the
centre written straight to the service's table (a delivery comes from an event; no route makes one), so a
replay has one to replay."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from services.notify.models import Delivery
from shared import clock


async def seed_deliveries(client: httpx.AsyncClient, center: str
                          ) -> tuple[dict[str, Any], dict[str, Callable[[], Awaitable[Any]]]]:
    """(values, fresh) for Seeds: {delivery}, and fresh_dead_delivery."""
    maker = client.app.state.sessionmaker  # type: ignore[attr-defined]

    async def dead() -> int:
        now = clock.now()
        async with maker() as session, session.begin():
            delivery = Delivery(
                key=uuid.uuid4(), event_id=uuid.uuid4(), event_type="sanction.issued", occurred_at=now,
                center_id=center, recipient_key=f"recipient:{uuid.uuid4().hex[:8]}", channel="email",
                template_key="sanction_issued_email", address_masked="o***@example.cn", address_sealed=None,
                subject="策略测试", body="策略测试", params={}, urgent=False, status="dead", attempts=1,
                budget_from=0, next_attempt_at=now, created_at=now, dead_at=now, last_error="test")
            session.add(delivery)
            await session.flush()
            return int(delivery.id)

    return {"delivery": await dead()}, {"fresh_dead_delivery": dead}
