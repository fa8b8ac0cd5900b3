"""Every error is a problem+json with the right status and, where there is one, the field; auth refuses
tokens of another centre, a wrong role, another department, a tampered signature and an expired token."""

from datetime import timedelta

import pytest

PROBLEM = "application/problem+json"
CENTER = {"id": "320102", "name": "玄武区政务服务中心"}


def assert_problem(response, status: int, code: str | None = None, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["detail"]
    if code:
        assert body["code"] == code
    if field:
        assert body["field"] == field or any(e["field"] == field for e in body.get("errors", []))
    return body


async def test_unknown_route_is_a_404_problem(service_client, tokens):
    async with service_client("queue") as client:
        r = await client.get("/no/such/route")
    assert_problem(r, 404, "not_found")


async def test_malformed_body_names_the_body(service_client, tokens):
    async with service_client("queue") as client:
        r = await client.post("/centers", content=b"{not json", headers={
            **tokens.headers("system_admin", ["*"]), "content-type": "application/json"})
    assert_problem(r, 422, "validation_failed")


async def test_wrong_type_names_the_field(service_client, tokens):
    async with service_client("queue") as client:
        r = await client.post("/centers", json={"id": "320102", "name": 12},
                              headers=tokens.headers("system_admin", ["*"]))
    assert_problem(r, 422, "validation_failed", field="name")


async def test_missing_field_is_named(service_client, tokens):
    async with service_client("queue") as client:
        r = await client.post("/centers", json={"name": "x"}, headers=tokens.headers("system_admin", ["*"]))
    assert_problem(r, 422, field="id")


async def test_missing_token_is_401(service_client):
    async with service_client("queue") as client:
        r = await client.get("/centers")
    body = assert_problem(r, 401, "missing_token", field="Authorization")
    assert r.headers["www-authenticate"] == "Bearer"
    assert body["instance"] == "/centers"


async def test_token_expires_when_the_shared_clock_moves(service_client, tokens, fixed_clock):
    token = tokens.mint("system_admin", ["*"], ttl=timedelta(minutes=10))
    async with service_client("queue") as client:
        ok = await client.get("/centers", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        fixed_clock.advance(minutes=11)
        r = await client.get("/centers", headers={"Authorization": f"Bearer {token}"})
    assert_problem(r, 401, "token_expired", field="Authorization")


async def test_tampered_signature_is_401(service_client, tokens):
    token = tokens.mint("system_admin", ["*"])
    head, payload, sig = token.split(".")
    forged = f"{head}.{payload}.{sig[:-4]}{'AAAA' if sig[-4:] != 'AAAA' else 'BBBB'}"
    async with service_client("queue") as client:
        r = await client.get("/centers", headers={"Authorization": f"Bearer {forged}"})
    assert_problem(r, 401, "invalid_token")


async def test_token_signed_by_another_key_is_401(service_client):
    from shared import devsecrets
    from shared.auth import mint_token

    other = devsecrets.generate()["GATEWAY_JWT_PRIVATE_KEY"]
    token = mint_token(other, subject="x", role="system_admin", centers=["*"])
    async with service_client("queue") as client:
        r = await client.get("/centers", headers={"Authorization": f"Bearer {token}"})
    assert_problem(r, 401, "invalid_token")


async def test_wrong_role_is_403(service_client, tokens):
    async with service_client("queue") as client:
        r = await client.post("/centers", json=CENTER, headers=tokens.headers("clerk", ["320102"]))
    assert_problem(r, 403, "wrong_role")


async def test_token_of_another_centre_is_403(service_client, tokens):
    async with service_client("queue") as client:
        created = await client.post("/centers", json=CENTER, headers=tokens.headers("system_admin", ["*"]))
        assert created.status_code == 201
        mine = await client.get("/centers/320102", headers=tokens.headers("hall_manager", ["320102"]))
        other = await client.get("/centers/320102", headers=tokens.headers("hall_manager", ["320104"]))
    assert mine.status_code == 200
    assert_problem(other, 403, "wrong_center", field="center_id")


async def test_list_shows_only_the_callers_centres(service_client, tokens):
    admin = tokens.headers("system_admin", ["*"])
    async with service_client("queue") as client:
        for cid in ("320102", "320104"):
            assert (await client.post("/centers", json={"id": cid, "name": cid}, headers=admin)).status_code == 201
        r = await client.get("/centers", headers=tokens.headers("hall_manager", ["320104"]))
    assert [c["id"] for c in r.json()] == ["320104"]


def test_clerk_of_another_department_is_refused():
    from shared.auth import Principal, Role
    from shared.errors import Forbidden

    clerk = Principal(subject="c1", role=Role.CLERK, centers=("320102",), department="D-TAX")
    clerk.check_department("D-TAX")
    with pytest.raises(Forbidden) as refused:
        clerk.check_department("D-LAND")
    assert refused.value.code == "wrong_department"
    # a supervisor is not bound to a department
    Principal(subject="s", role=Role.SUPERVISOR, centers=("320102",)).check_department("D-LAND")


async def test_duplicate_centre_is_a_409_naming_the_field(service_client, tokens):
    admin = tokens.headers("system_admin", ["*"])
    async with service_client("queue") as client:
        await client.post("/centers", json=CENTER, headers=admin)
        r = await client.post("/centers", json=CENTER, headers=admin)
    assert_problem(r, 409, "center_exists", field="id")
