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


async def test_a_business_clock_far_from_now_does_not_expire_a_fresh_token(service_client, tokens, fixed_clock):
    # token lifetimes count in wall time (Envoy checks them too and cannot read the hall's clock)
    token = tokens.mint("system_admin", ["*"], ttl=timedelta(minutes=10))
    answers = []
    async with service_client("queue") as client:
        for shift in (timedelta(days=800), timedelta(days=-1600)):
            fixed_clock.advance(shift)
            answers.append(await client.get("/centers", headers={"Authorization": f"Bearer {token}"}))
    assert [a.status_code for a in answers] == [200, 200], answers[-1].text


async def test_a_token_past_its_expiry_in_wall_time_is_401(service_client, tokens, fixed_clock):
    from shared.clock import wall_now

    fixed_clock.set(wall_now() - timedelta(days=30))  # the business clock is no excuse either way
    token = tokens.mint("system_admin", ["*"], ttl=timedelta(minutes=10),
                        issued_at=wall_now() - timedelta(minutes=11))
    async with service_client("queue") as client:
        r = await client.get("/centers", headers={"Authorization": f"Bearer {token}"})
    assert_problem(r, 401, "token_expired", field="Authorization")


def token_app(public_key: str):
    from fastapi import FastAPI

    from shared.auth import CurrentFeedUser, CurrentUser, TokenVerifier
    from shared.errors import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)
    app.state.token_verifier = TokenVerifier(public_key, "hall-gateway", "hall")

    @app.get("/feeds/x")
    async def feed(user: CurrentFeedUser) -> dict[str, str]:
        return {"sub": user.subject}

    @app.get("/centers")
    async def ordinary(user: CurrentUser) -> dict[str, str]:
        return {"sub": user.subject}

    return app


async def test_access_token_in_the_query_counts_on_a_feed_route_only(tokens, secrets):
    import httpx

    token = tokens.mint("display", ["320102"], subject="display-1")
    app = token_app(secrets["HALL_JWT_PUBLIC_KEY"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        feed = await client.get("/feeds/x", params={"access_token": token})
        ordinary = await client.get("/centers", params={"access_token": token})
    assert feed.status_code == 200 and feed.json() == {"sub": "display-1"}
    assert_problem(ordinary, 401, "missing_token")  # ordinary routes never read the query for a token


async def test_a_feed_stream_ends_at_its_tokens_expiry(tokens, secrets):
    import asyncio

    import httpx
    from fastapi import Depends

    from shared.auth import current_feed_principal
    from shared.clock import monotonic, wall_now
    from shared.feeds import Feed
    from tests.gateway.test_gateway import serving

    app = token_app(secrets["HALL_JWT_PUBLIC_KEY"])
    feed = Feed("127.0.0.1:1", "hall.test.v1", name="expiry-test", ready_timeout=0.05, keepalive_seconds=0.2)
    app.include_router(feed.router("/feeds/live", dependencies=[Depends(current_feed_principal)]))
    # expires about 2 s from now (whole seconds in the token, 5 s leeway only at verification)
    token = tokens.mint("display", ["320102"], ttl=timedelta(minutes=10),
                        issued_at=wall_now() - timedelta(minutes=10) + timedelta(seconds=2))
    async with serving(app) as running, httpx.AsyncClient(base_url=running.url, timeout=10) as client:
        started = monotonic()
        async with client.stream("GET", "/feeds/live", params={"access_token": token}) as r:
            assert r.status_code == 200
            body = b"".join([chunk async for chunk in r.aiter_raw()])
        elapsed = monotonic() - started
    assert b"keep-alive" in body  # it was live until then
    assert elapsed < 4, elapsed  # ended by the server at expiry, not held open
    await asyncio.sleep(0)


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
