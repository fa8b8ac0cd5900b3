"""The queue's metrics move with what commits: tickets by event, wait and service times; a request that fails
counts nothing. The hall's gauges (waiting lines, longest waits against their thresholds, vacant windows) are
set by the worker's job from the tables, as the hall status reads them."""

from __future__ import annotations

from prometheus_client import REGISTRY

from services.queue.windows import count_hall
from tests.queue.builders import A, service
from tests.queue.test_ticket_actions import call, signed_in
from tests.queue.test_tickets import hall, issue
from tests.queue.test_windows import ab_hall, local


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
    assert 'hall_queue_tickets_total{center="320102",event="issued",service="HJ"}' in metrics.text


async def _count_hall(client) -> dict[str, float]:
    async with client.app.state.sessionmaker() as session, session.begin():
        await count_hall(session, local("09:00"))
    return {name: _value(f"hall_queue_{name}") for name in
            ("waiting_tickets", "longest_wait_seconds", "wait_threshold_seconds")} | {
        "vacant": REGISTRY.get_sample_value("hall_queue_windows_vacant", {"center": A})}


async def test_the_hall_gauges_follow_the_tables(service_client, tokens, fixed_clock):
    fixed_clock.set(local("09:00"))
    async with service_client("queue") as client:
        a, b = await ab_hall(client, tokens)  # 户籍 HJ: long wait over 30 minutes (the builder's default)
        empty = await _count_hall(client)
        await issue(client, tokens)
        fixed_clock.set(local("09:01"))
        await issue(client, tokens)
        await client.post(f"/centers/{A}/windows/1/away", json={"message": "马上回来"}, headers=a)
        fixed_clock.set(local("09:05"))
        vacant = await _count_hall(client)  # away 4 minutes (over 3) while two tickets wait
        await client.post(f"/centers/{A}/windows/1/sign-in", headers=b)
        await call(client, b)
        staffed = await _count_hall(client)
    assert empty == {"waiting_tickets": 0, "longest_wait_seconds": 0, "wait_threshold_seconds": 1800, "vacant": 0}
    assert vacant == {"waiting_tickets": 2, "longest_wait_seconds": 300, "wait_threshold_seconds": 1800,
                      "vacant": 1}
    assert staffed == {"waiting_tickets": 1, "longest_wait_seconds": 240, "wait_threshold_seconds": 1800,
                       "vacant": 0}


async def test_a_services_ticket_and_rating_series_exist_at_zero_before_their_first_count(service_client, tokens):
    """So that Prometheus's increase() counts the first rating: a child born at 1 has no step to see."""
    async with service_client("queue") as client:
        await hall(client, tokens)
        await service(client, tokens, "MX", "M", department="D09")  # no other test counts this service
        ratings_before = [REGISTRY.get_sample_value("hall_evaluations_total", {"center": A, "service": "MX",
                                                                               "rating": str(r)}) for r in range(1, 6)]
        await issue(client, tokens, "MX")
    assert ratings_before == [None] * 5
    assert [_value("hall_evaluations_total", service="MX", rating=str(r)) for r in range(1, 6)] == [0.0] * 5
    events = {e: REGISTRY.get_sample_value("hall_queue_tickets_total", {"center": A, "service": "MX", "event": e})
              for e in ("issued", "called", "finished", "no_show")}
    assert events == {"issued": 1.0, "called": 0.0, "finished": 0.0, "no_show": 0.0}
