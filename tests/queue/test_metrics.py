"""The queue's metrics move with what commits: tickets by event, the waiting gauge, wait and service times;
a request that fails counts nothing."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tests.queue.builders import A
from tests.queue.test_ticket_actions import call, signed_in
from tests.queue.test_tickets import hall, issue


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"center": A, "service": "HJ", **labels}) or 0.0


async def test_tickets_waits_and_service_times_are_counted_at_commit(service_client, tokens, fixed_clock):
    before = {e: _value("hall_queue_tickets_total", event=e) for e in ("issued", "called", "finished", "no_show")}
    waits, served = _value("hall_queue_wait_seconds_count"), _value("hall_queue_service_seconds_sum")
    async with service_client("queue") as client:
        await hall(client, tokens)
        clerk = await signed_in(client, tokens)
        first, second = await issue(client, tokens), await issue(client, tokens)
        refused = await client.post(f"/tickets/{second['id']}/skip", headers=clerk)  # not called: a 409
        fixed_clock.advance(minutes=2)
        await call(client, clerk)
        await client.post(f"/tickets/{first['id']}/start", headers=clerk)
        fixed_clock.advance(minutes=5)
        await client.post(f"/tickets/{first['id']}/finish", headers=clerk)
        await call(client, clerk)
        await client.post(f"/tickets/{second['id']}/skip", headers=clerk)
        metrics = await client.get("/metrics")
    assert refused.status_code == 409
    after = {e: _value("hall_queue_tickets_total", event=e) for e in before}
    assert {e: after[e] - before[e] for e in before} == {"issued": 2, "called": 2, "finished": 1, "no_show": 1}
    assert _value("hall_queue_wait_seconds_count") - waits == 2
    assert _value("hall_queue_service_seconds_sum") - served == 300
    assert _value("hall_queue_waiting_tickets") == 0
    assert 'hall_queue_tickets_total{center="320102",event="issued",service="HJ"}' in metrics.text
