"""A retried POST with the same Idempotency-Key returns the first answer and changes nothing."""

import asyncio

CENTER = {"id": "320102", "name": "玄武区政务服务中心"}


async def test_same_key_twice_creates_one_row_and_returns_the_same_body(service_client, tokens):
    headers = {**tokens.headers("system_admin", ["*"]), "Idempotency-Key": "kiosk-7-0001"}
    async with service_client("queue") as client:
        first = await client.post("/centers", json=CENTER, headers=headers)
        second = await client.post("/centers", json=CENTER, headers=headers)
        rows = await client.db.fetch("SELECT id FROM centers")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers.get("idempotent-replayed") == "true"
    assert [r["id"] for r in rows] == ["320102"]


async def test_without_a_key_a_repeat_is_a_conflict(service_client, tokens):
    headers = tokens.headers("system_admin", ["*"])
    async with service_client("queue") as client:
        assert (await client.post("/centers", json=CENTER, headers=headers)).status_code == 201
        assert (await client.post("/centers", json=CENTER, headers=headers)).status_code == 409


async def test_same_key_with_another_body_is_refused(service_client, tokens):
    headers = {**tokens.headers("system_admin", ["*"]), "Idempotency-Key": "k-1"}
    async with service_client("queue") as client:
        assert (await client.post("/centers", json=CENTER, headers=headers)).status_code == 201
        r = await client.post("/centers", json={**CENTER, "id": "320104"}, headers=headers)
        rows = await client.db.fetch("SELECT id FROM centers")
    assert r.status_code == 422
    assert r.json()["code"] == "idempotency_key_reused" and r.json()["field"] == "Idempotency-Key"
    assert [row["id"] for row in rows] == ["320102"]


async def test_concurrent_retries_with_one_key_create_one_row(service_client, tokens):
    headers = {**tokens.headers("system_admin", ["*"]), "Idempotency-Key": "k-race"}
    async with service_client("queue") as client:
        answers = await asyncio.gather(*(client.post("/centers", json=CENTER, headers=headers) for _ in range(5)))
        rows = await client.db.fetch("SELECT id FROM centers")
    assert {a.status_code for a in answers} == {201}
    assert len({a.text for a in answers}) == 1
    assert len(rows) == 1


async def test_a_failed_request_does_not_burn_the_key(service_client, tokens):
    key = {"Idempotency-Key": "k-retry-after-fix"}
    async with service_client("queue") as client:
        denied = await client.post("/centers", json=CENTER, headers={**tokens.headers("clerk", ["320102"]), **key})
        assert denied.status_code == 403
        ok = await client.post("/centers", json=CENTER, headers={**tokens.headers("system_admin", ["*"]), **key})
    assert ok.status_code == 201
