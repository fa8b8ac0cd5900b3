"""Evaluation after service (好差评): once per ticket, by the evaluator of the window that served it or by the
person with the lookup code; evaluation.submitted names ticket, window, clerk, service and the case; a
rating outside 1-5, another window's evaluator and a case of another centre are refused."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from tests.queue.builders import A, outbox
from tests.queue.test_ticket_actions import call, signed_in
from tests.queue.test_tickets import hall, issue


def evaluator(tokens, window: str = "1") -> dict[str, str]:
    return tokens.headers("evaluator", [A], window=window, device=f"pad-{window}")


async def served(client, tokens) -> tuple[dict, dict[str, str]]:
    """A ticket served to its end at window 1 by clerk u-1, and that clerk's headers."""
    clerk = await signed_in(client, tokens)
    ticket = await issue(client, tokens)
    await call(client, clerk)
    for step in ("start", "finish"):
        r = await client.post(f"/tickets/{ticket['id']}/{step}", headers=clerk)
        assert r.status_code == 200, r.text
    return ticket, clerk


def rated(rating: str) -> float:
    return REGISTRY.get_sample_value("hall_evaluations_total", {"center": A, "service": "HJ", "rating": rating}) or 0


async def test_a_rating_once_per_ticket_with_what_the_registry_and_monitor_need(service_client, tokens):
    before = rated("4")
    async with service_client("queue") as client:
        await hall(client, tokens)
        ticket, _ = await served(client, tokens)
        first = await client.post(f"/tickets/{ticket['id']}/evaluation", headers=evaluator(tokens),
                                  json={"rating": 4, "comment": "办事快", "case_no": f"{A}-20260212-000017"})
        twice = await client.post(f"/tickets/{ticket['id']}/evaluation", headers=evaluator(tokens),
                                  json={"rating": 5})
        online = await client.post(f"/public/tickets/{ticket['id']}/evaluation?code={ticket['lookup_code']}",
                                   json={"rating": 1})
        events = await outbox(client)
    assert first.status_code == 201 and first.json()["channel"] == "evaluator", first.text
    assert twice.status_code == 409 and twice.json()["code"] == "already_evaluated"
    assert online.status_code == 409 and online.json()["code"] == "already_evaluated"
    (submitted,) = [e for e in events if e["type"] == "evaluation.submitted"]
    data = submitted["data"]
    assert {k: data[k] for k in ("ticket_id", "service_code", "department", "window", "clerk_id", "rating", "comment",
                                  "case_no", "channel", "ticket_number", "post")} == {
        "ticket_id": ticket["id"], "service_code": "HJ", "department": "D01", "window": "1", "clerk_id": "u-1",
        "rating": 4, "comment": "办事快", "case_no": f"{A}-20260212-000017", "channel": "evaluator",
        "ticket_number": "A001", "post": "A"}
    assert rated("4") - before == 1


async def test_out_of_range_another_windows_evaluator_and_unserved_tickets_are_refused(service_client, tokens):
    async with service_client("queue") as client:
        await hall(client, tokens)
        ticket, _ = await served(client, tokens)
        waiting = await issue(client, tokens)
        nine = await client.post(f"/tickets/{ticket['id']}/evaluation", headers=evaluator(tokens), json={"rating": 9})
        zero = await client.post(f"/tickets/{ticket['id']}/evaluation", headers=evaluator(tokens), json={"rating": 0})
        elsewhere = await client.post(f"/tickets/{ticket['id']}/evaluation", headers=evaluator(tokens, "2"),
                                      json={"rating": 5})
        kiosk = await client.post(f"/tickets/{ticket['id']}/evaluation", headers=tokens.headers("kiosk", [A]),
                                  json={"rating": 5})
        foreign_case = await client.post(f"/tickets/{ticket['id']}/evaluation", headers=evaluator(tokens),
                                         json={"rating": 5, "case_no": "320104-20260212-000001"})
        not_served = await client.post(f"/tickets/{waiting['id']}/evaluation", headers=evaluator(tokens),
                                       json={"rating": 5})
        wrong_code = await client.post(f"/public/tickets/{ticket['id']}/evaluation?code=ZZZZZZ", json={"rating": 5})
        rows = await client.db.fetch("SELECT count(*) AS n FROM evaluations")
        events = await outbox(client)
    assert nine.status_code == 422 and nine.json()["field"] == "rating"
    assert zero.status_code == 422 and zero.json()["field"] == "rating"
    assert elsewhere.status_code == 403 and elsewhere.json()["code"] == "wrong_window"
    assert kiosk.status_code == 403
    assert foreign_case.status_code == 422 and foreign_case.json()["field"] == "case_no"
    assert not_served.status_code == 409 and not_served.json()["code"] == "not_served"
    assert wrong_code.status_code == 404
    assert rows[0]["n"] == 0 and not [e for e in events if e["type"] == "evaluation.submitted"]


async def test_the_person_rates_online_with_the_lookup_code_and_two_ratings_at_once_make_one(service_client, tokens):
    async with service_client("queue") as client:
        await hall(client, tokens)
        ticket, _ = await served(client, tokens)
        url = f"/public/tickets/{ticket['id']}/evaluation?code={ticket['lookup_code'].lower()}"
        answers = await asyncio.gather(client.post(url, json={"rating": 2, "comment": "等太久"}),
                                       client.post(f"/tickets/{ticket['id']}/evaluation", headers=evaluator(tokens),
                                                   json={"rating": 5}))
        rows = await client.db.fetch("SELECT rating, channel FROM evaluations")
    assert sorted(r.status_code for r in answers) == [201, 409]
    assert len(rows) == 1
