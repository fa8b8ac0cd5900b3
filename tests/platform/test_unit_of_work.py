"""The request's transaction commits before the response is sent: a failed commit is a 5xx, never a 201
for nothing; health and readiness answer; the OpenAPI document carries titles and tags."""

from sqlalchemy import text

from shared.db import SessionDep


async def test_a_commit_that_fails_is_a_500_problem_not_a_201(service_client):
    async with service_client("queue") as client:
        app = client.app

        @app.post("/_test/deferred-violation", status_code=201)
        async def violate(session: SessionDep) -> dict:
            # a deferred constraint is checked at COMMIT, after the endpoint has returned
            await session.execute(text(
                "CREATE TEMP TABLE t (id int UNIQUE DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP"))
            await session.execute(text("INSERT INTO t VALUES (1), (1)"))
            return {"created": True}

        r = await client.post("/_test/deferred-violation")
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "internal_error"


async def test_a_rolled_back_request_leaves_nothing(service_client, tokens):
    async with service_client("queue") as client:
        r = await client.post("/centers", json={"id": "x!", "name": "bad"},
                              headers=tokens.headers("system_admin", ["*"]))
        rows = await client.db.fetch("SELECT * FROM centers")
    assert r.status_code == 422 and rows == []


async def test_health_readiness_metrics_and_openapi(service_client, tokens):
    async with service_client("monitor") as client:
        assert (await client.get("/healthz")).json() == {"status": "ok", "service": "monitor"}
        assert (await client.get("/readyz")).json()["status"] == "ready"
        await client.get("/no-such-route")
        metrics = (await client.get("/metrics")).text
        spec = (await client.get("/openapi.json")).json()
    assert 'http_requests_total{method="GET",route="/healthz",service="monitor",status="2xx"}' in metrics
    assert 'route="<unmatched>"' in metrics and "/no-such-route" not in metrics  # bounded labels
    assert spec["info"]["title"] == "Hall monitor service"
    assert any(t["name"] == "platform" for t in spec["tags"])


async def test_readiness_fails_when_the_database_is_away(service_client):
    async with service_client("notify") as client:
        await client.app.state.engine.dispose()
        client.app.state.engine.url  # noqa: B018 - still configured
        from sqlalchemy.ext.asyncio import create_async_engine

        client.app.state.engine = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
        r = await client.get("/readyz")
    assert r.status_code == 503 and r.json()["code"] == "db_unavailable"


async def test_an_exhausted_pool_is_a_503_to_retry_not_a_500(service_client, tokens):
    from shared.db import make_engine, make_sessionmaker

    async with service_client("queue") as client:
        app = client.app
        tiny = make_engine(app.state.engine.url.render_as_string(hide_password=False), pool_size=1,
                           max_overflow=0, pool_timeout=0.2)
        app.state.engine, app.state.sessionmaker = tiny, make_sessionmaker(tiny)
        admin = tokens.headers("system_admin", ["*"])
        try:
            async with tiny.connect() as held:  # the pool's only connection, busy elsewhere
                await held.execute(text("SELECT 1"))
                busy = await client.post("/centers", json={"id": "320102", "name": "x"}, headers=admin)
            after = await client.post("/centers", json={"id": "320102", "name": "x"}, headers=admin)
        finally:
            await tiny.dispose()
    assert busy.status_code == 503, busy.text
    assert busy.json()["code"] == "busy" and busy.headers["retry-after"] == "1"
    assert after.status_code == 201  # nothing of the refused request was kept: the same centre is created now


async def test_statements_sent_to_the_driver_commit_and_roll_back_with_the_request(service_client):
    from shared.db import driver_connection
    from shared.errors import Conflict

    async with service_client("queue") as client:
        app = client.app
        @app.post("/_test/driver/{n}", status_code=201)
        async def write(n: int, session: SessionDep) -> dict:
            # the first statement of the request goes to the driver: it must still be inside the transaction
            await (await driver_connection(session)).execute(
                "INSERT INTO daily_counters (scope, business_date, value) VALUES ($1, '2026-12-02', 1)", f"probe:{n}")
            if n == 2:
                raise Conflict("refused after the write")
            return {"n": n}

        kept = await client.post("/_test/driver/1")
        refused = await client.post("/_test/driver/2")
        rows = [r["scope"] for r in await client.db.fetch("SELECT scope FROM daily_counters ORDER BY scope")]
    assert kept.status_code == 201 and refused.status_code == 409
    assert rows == ["probe:1"]  # the refused request's row went with its rollback
