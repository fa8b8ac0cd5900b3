"""The gateway over real sockets: routes /api/<service>/... to the four services, streams both ways
unbuffered, turns a stopped service into a quick 502 and a slow one into a 504, and forwards only
end-to-end headers. Every server is a real uvicorn on a free port (ASGITransport would buffer bodies)."""

from __future__ import annotations

import asyncio
import gc
import gzip
import hashlib
import importlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from services.gateway import proxy as proxy_module
from services.gateway.config import Settings
from services.gateway.main import create_app as create_gateway
from shared import clock as clock_module
from shared.clock import FixedClock, monotonic
from shared.devinfra.postgres import free_port
from tests.conftest import service_settings
from tests.gateway.upstream_app import NOTICE_DISPOSITION, create_upstream_app

SERVICES = ("queue", "cases", "monitor", "notify")
HALL_NOW = datetime(2026, 2, 12, 1, 0, tzinfo=UTC)  # Thu 09:00 Asia/Shanghai
PROBLEM = "application/problem+json"
CENTER = {"id": "320102", "name": "玄武区政务服务中心"}


class Running:
    """A uvicorn server serving `app` in this event loop."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = free_port()
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


@asynccontextmanager
async def gateway(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway on uvicorn with these settings, and a client of it."""
    app = create_gateway(Settings(**settings), configure_logs=False)
    async with serving(app) as running, httpx.AsyncClient(base_url=running.url, timeout=10) as client:
        client.gateway_app = app  # type: ignore[attr-defined]
        yield client


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["code"] == code and body["detail"]
    return body


@pytest.fixture(scope="module")
async def hall(service_databases) -> AsyncIterator[dict[str, str]]:
    """The four real services on uvicorn, sharing one fixed clock: {"queue_url": ..., ...}."""
    previous = clock_module.get_clock()
    async with AsyncExitStack() as stack:
        urls = {}
        for service in SERVICES:
            main = importlib.import_module(f"services.{service}.main")
            app = main.create_app(service_settings(service, service_databases(service)),
                                  clock=FixedClock(HALL_NOW))
            urls[f"{service}_url"] = (await stack.enter_async_context(serving(app))).url
        yield urls
    clock_module.set_clock(previous)  # each service's start-up installed its clock process-wide


@pytest.fixture(scope="module")
async def hall_gateway(hall: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway(**hall) as client:
        yield client


@pytest.fixture
async def upstream() -> AsyncIterator[Running]:
    """A fresh test upstream (tests/gateway/upstream_app.py) on uvicorn."""
    async with serving(create_upstream_app()) as running:
        yield running


# routing to the real services

@pytest.mark.parametrize("service", SERVICES)
async def test_each_service_answers_under_its_own_name(hall_gateway, service):
    health = await hall_gateway.get(f"/api/{service}/healthz")
    now = await hall_gateway.get(f"/api/{service}/time")
    spec = await hall_gateway.get(f"/api/{service}/openapi.json")
    assert health.json() == {"status": "ok", "service": service}
    assert now.json() == {"now": HALL_NOW.isoformat(), "today_local": "2026-02-12"}
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
    r = await hall_gateway.get("/api/queue/centers", headers={"X-Correlation-ID": "kiosk-7-req-42"})
    # the 401 problem is written by the queue service, with the id that reached it
    assert_problem(r, 401, "missing_token")
    assert r.json()["correlation_id"] == "kiosk-7-req-42"
    assert r.headers.get_list("x-correlation-id") == ["kiosk-7-req-42"]


async def test_without_a_correlation_id_the_gateway_gives_one_to_the_service(hall_gateway):
    r = await hall_gateway.get("/api/queue/centers")
    assert_problem(r, 401, "missing_token")
    assert r.headers.get_list("x-correlation-id") == [r.json()["correlation_id"]]


async def test_gateway_health_lists_every_service_ok(hall_gateway):
    r = await hall_gateway.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "services": dict.fromkeys(SERVICES, "ok")}


# streaming both ways

async def test_a_streamed_response_arrives_frame_by_frame(upstream):
    arrivals: list[tuple[str, float]] = []
    async with gateway(queue_url=upstream.url) as client:
        async with client.stream("GET", "/api/queue/stream", params={"frames": 5, "interval": 0.2}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            pending = ""
            async for text in r.aiter_text():
                pending += text
                while "\n\n" in pending:
                    frame, pending = pending.split("\n\n", 1)
                    arrivals.append((frame, monotonic()))
    produced = upstream.app.state.frames
    assert [frame for frame, _ in arrivals] == [f"id: {n}\ndata: frame {n}" for n in range(5)]
    # the first frame was in the client's hands while the service was still producing: 4 frames x 0.2 s
    # after it the last one was made; a buffering gateway would deliver the first after the last
    first_arrived, last_produced = arrivals[0][1], produced[-1][1]
    assert last_produced - first_arrived >= 0.5, (first_arrived, produced)
    assert arrivals[-1][1] - first_arrived >= 0.5


async def test_a_client_leaving_a_stream_ends_it_at_the_service(upstream):
    async with gateway(queue_url=upstream.url) as client:
        async with client.stream("GET", "/api/queue/stream", params={"frames": 200, "interval": 0.02}) as r:
            async for _ in r.aiter_raw():
                break
        made, deadline = -1, monotonic() + 3
        while len(upstream.app.state.frames) != made and monotonic() < deadline:
            made = len(upstream.app.state.frames)
            await asyncio.sleep(0.2)  # 10 frames' time: a stream still running would grow meanwhile
        assert len(upstream.app.state.frames) == made < 200
        assert client.gateway_app.state.upstream.in_flight == 0  # its upstream response was let go


async def test_a_streamed_upload_passes_through_unbuffered(upstream):
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

    async with gateway(queue_url=upstream.url) as client:
        r = await client.post("/api/queue/upload", content=chunks())
    assert r.status_code == 200, r.text
    assert r.json() == {"bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest(),
                        "transfer_encoding": "chunked"}


async def test_a_chunked_body_is_forwarded_whatever_the_method(upstream):
    async def body() -> AsyncIterator[bytes]:
        yield b"reason=duplicate"

    async with gateway(queue_url=upstream.url) as client:
        r = await client.request("DELETE", "/api/queue/echo/tickets/7", content=body())
    assert r.json()["method"] == "DELETE" and r.json()["body_bytes"] == len(b"reason=duplicate")


async def test_more_callers_than_connections_wait_their_turn(upstream):
    async with gateway(queue_url=upstream.url, max_connections=8) as client:
        answers = await asyncio.gather(*(client.get("/api/queue/slow", params={"seconds": 0.2})
                                         for _ in range(24)))
        assert client.gateway_app.state.upstream.in_flight == 0
    assert [a.status_code for a in answers] == [200] * 24
    assert all(a.json() == {"finished": True} for a in answers)


# failures of a service

async def test_a_stopped_service_is_a_quick_502_and_degrades_health(hall, upstream):
    async with gateway(**{**hall, "queue_url": upstream.url}, upstream_timeout=10) as client:
        assert (await client.get("/api/queue/healthz")).status_code == 200  # a pooled connection exists
        await upstream.stop()
        started = monotonic()
        r = await client.get("/api/queue/healthz")
        elapsed = monotonic() - started
        health = await client.get("/healthz")
    assert assert_problem(r, 502, "upstream_unavailable")["service"] == "queue"
    assert elapsed < 2, elapsed  # refused at once, not held for the 10 s upstream_timeout
    assert health.status_code == 503
    assert health.json()["status"] == "degraded"
    services = health.json()["services"]
    assert services.pop("queue").startswith("unreachable")
    assert services == dict.fromkeys(SERVICES[1:], "ok")


async def test_a_slow_service_is_a_504_after_upstream_timeout(upstream):
    async with gateway(queue_url=upstream.url, upstream_timeout=0.5) as client:
        started = monotonic()
        r = await client.get("/api/queue/slow", params={"seconds": 5})
        elapsed = monotonic() - started
    assert assert_problem(r, 504, "upstream_timeout")["service"] == "queue"
    assert 0.45 <= elapsed < 3, elapsed


async def test_an_unknown_service_is_a_404_problem():
    async with gateway() as client:
        r = await client.get("/api/archive/records")
    body = assert_problem(r, 404, "unknown_service")
    assert body["field"] == "service"


# what is forwarded

async def test_hop_by_hop_request_headers_stay_at_the_gateway(upstream):
    headers = {"Connection": "keep-alive, X-Client-Private", "Keep-Alive": "timeout=30", "TE": "trailers",
               "Proxy-Authorization": "Basic Zm9vOmJhcg==", "X-Client-Private": "1", "X-End-To-End": "kept"}
    async with gateway(queue_url=upstream.url) as client:
        r = await client.get("/api/queue/echo/headers", headers=headers)
    seen = dict(r.json()["headers"])
    assert seen["x-end-to-end"] == "kept"
    assert seen["host"] == f"127.0.0.1:{upstream.port}"
    assert not seen.keys() & {"keep-alive", "te", "proxy-authorization", "x-client-private"}
    # the gateway's own connection to the service may say keep-alive; the client's header is not passed on
    assert "x-client-private" not in seen.get("connection", "").lower()


async def test_hop_by_hop_response_headers_stay_at_the_gateway(upstream):
    async with gateway(queue_url=upstream.url) as client:
        r = await client.get("/api/queue/echo/headers")
    assert r.headers["x-upstream-kept"] == "1"
    assert not r.headers.keys() & {"keep-alive", "proxy-authenticate", "x-upstream-private"}
    assert "x-upstream-private" not in r.headers.get("connection", "")
    # the gateway's server writes its own Date and Server; the service's are not repeated
    assert len(r.headers.get_list("date")) == 1 and len(r.headers.get_list("server")) <= 1


async def test_the_gateway_adds_no_headers_of_its_own(upstream):
    async with gateway(queue_url=upstream.url) as client:
        client.headers.clear()  # httpx's own Accept, Accept-Encoding, User-Agent, Connection
        r = await client.get("/api/queue/echo/headers")
    # only what a proxy must add; an Accept-Encoding: gzip added here would get compressed bytes to a
    # caller that never asked for them
    assert sorted(name for name, _ in r.json()["headers"]) == [
        "host", "x-correlation-id", "x-forwarded-for", "x-forwarded-prefix"]


async def test_a_body_gets_only_its_framing_added(upstream):
    async def chunks() -> AsyncIterator[bytes]:
        yield b"reason=duplicate"

    async with gateway(queue_url=upstream.url) as client:
        client.headers.clear()
        whole = await client.post("/api/queue/echo/headers", content=b"reason=duplicate")
        streamed = await client.post("/api/queue/echo/headers", content=chunks())
    # no Content-Type: application/octet-stream of the gateway's own for a body that came without one
    assert sorted(name for name, _ in whole.json()["headers"]) == [
        "content-length", "host", "x-correlation-id", "x-forwarded-for", "x-forwarded-prefix"]
    assert sorted(name for name, _ in streamed.json()["headers"]) == [
        "host", "transfer-encoding", "x-correlation-id", "x-forwarded-for", "x-forwarded-prefix"]
    assert whole.json()["body_bytes"] == streamed.json()["body_bytes"] == len(b"reason=duplicate")


async def test_a_cookie_set_for_one_caller_never_reaches_another(upstream):
    async with gateway(queue_url=upstream.url) as alice:
        login = await alice.get("/api/queue/login")
        async with httpx.AsyncClient(base_url=str(alice.base_url)) as bob:
            r = await bob.get("/api/queue/echo/headers")
    assert "session=alice-secret" in login.headers["set-cookie"]  # passed on to the caller it was for
    assert "cookie" not in dict(r.json()["headers"])


async def test_an_escaped_path_reaches_the_service_as_written(upstream):
    async with gateway(queue_url=upstream.url) as client:
        r = await client.get("/api/queue/echo/files/a%2Fb%3Fc%20d", params={"q": "1 2"})
    # decoded, "a%2Fb%3Fc" would become the path "a/b" with the query "c"
    assert r.json()["raw_path"] == "/echo/files/a%2Fb%3Fc%20d"
    assert r.json()["query"] == "q=1+2"



async def test_header_values_in_utf8_pass_both_ways(upstream):
    async with gateway(queue_url=upstream.url) as client:
        sent = await client.get("/api/queue/echo/headers", headers={"X-Applicant-Name": "张三".encode()})
        notice = await client.get("/api/queue/notice")
    assert dict(sent.json()["headers"])["x-applicant-name"].encode("latin-1") == "张三".encode()
    assert notice.status_code == 200
    assert (b"content-disposition", NOTICE_DISPOSITION.encode()) in notice.headers.raw


async def test_the_service_sees_one_forwarded_for_chain(upstream):
    async with gateway(queue_url=upstream.url) as client:
        direct = await client.get("/api/queue/echo/headers")
        relayed = await client.get("/api/queue/echo/headers", headers={"X-Forwarded-For": "203.0.113.7"})

    def forwarded(r: httpx.Response) -> list[str]:
        return [value for name, value in r.json()["headers"] if name == "x-forwarded-for"]

    assert forwarded(direct) == ["127.0.0.1"]
    # uvicorn trusts X-Forwarded-For from 127.0.0.1, so 203.0.113.7 is the gateway's client: named once
    assert forwarded(relayed) == ["203.0.113.7"]


# the aiohttp session and the ASGI proxy in front of the router

@pytest.fixture
async def upstream_plus() -> AsyncIterator[Running]:
    """The test upstream with a few more routes: /cut records how an upload ended, /quiet streams nothing
    for 30 s, /gzip answers compressed bytes, /both answers GET and HEAD."""
    app = create_upstream_app()
    app.state.uploads = []
    app.state.upload_ended = asyncio.Event()
    app.state.quiet_ended = asyncio.Event()

    @app.post("/cut")
    async def cut(request: Request) -> dict[str, int]:
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if chunk:
                    app.state.upload_started.set()
        except ClientDisconnect:
            app.state.uploads.append(("cut", size))
            raise
        finally:
            app.state.upload_ended.set()
        app.state.uploads.append(("complete", size))
        return {"bytes": size}

    @app.get("/gzip")
    async def compressed() -> Response:
        return Response(GZIPPED, media_type="text/plain", headers={"Content-Encoding": "gzip"})

    @app.get("/quiet")
    async def quiet() -> StreamingResponse:
        """An event stream that has nothing to say for a long while."""

        async def produce() -> AsyncIterator[bytes]:
            try:
                await asyncio.sleep(30)
                yield b"data: late\n\n"
            finally:
                app.state.quiet_ended.set()

        return StreamingResponse(produce(), media_type="text/event-stream")

    @app.api_route("/both", methods=["GET", "HEAD"])
    async def both() -> Response:
        return Response(b"twelve bytes", media_type="text/plain")

    async with serving(app) as running:
        yield running


GZIPPED = gzip.compress("受理通知 ".encode() * 100)


async def test_an_upload_slower_than_upstream_timeout_is_no_504_while_it_streams(upstream):
    async def slowly() -> AsyncIterator[bytes]:
        for _ in range(6):  # 1.2 s in all, never 0.5 s without a piece
            yield b"x" * 1000
            await asyncio.sleep(0.2)

    async with gateway(queue_url=upstream.url, upstream_timeout=0.5) as client:
        r = await client.post("/api/queue/upload", content=slowly())
    assert r.status_code == 200, r.text
    assert r.json()["bytes"] == 6000


async def test_a_client_cutting_its_upload_short_cuts_it_at_the_service(upstream_plus):
    async with gateway(queue_url=upstream_plus.url) as client:
        reader, writer = await asyncio.open_connection("127.0.0.1", client.base_url.port)
        writer.write(b"POST /api/queue/cut HTTP/1.1\r\nHost: gateway\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"400\r\n" + b"x" * 1024 + b"\r\n")
        await writer.drain()
        await asyncio.wait_for(upstream_plus.app.state.upload_started.wait(), 5)
        writer.close()  # gone mid-body, without the last chunk
        await asyncio.wait_for(upstream_plus.app.state.upload_ended.wait(), 5)
    # a gateway that ended the body cleanly would have the service take the first KiB for the whole upload
    assert upstream_plus.app.state.uploads == [("cut", 1024)]


async def test_a_client_leaving_a_silent_stream_ends_it_at_the_service(upstream_plus):
    async with gateway(queue_url=upstream_plus.url) as client:
        async with client.stream("GET", "/api/queue/quiet") as r:
            assert r.status_code == 200  # the head came; the first event would come in 30 s
        # gone before a single byte of the body: the stream ends now, not when it next has something to say
        await asyncio.wait_for(upstream_plus.app.state.quiet_ended.wait(), 3)
        assert client.gateway_app.state.upstream.in_flight == 0


async def test_compressed_bytes_pass_as_the_service_sent_them(upstream_plus):
    async with gateway(queue_url=upstream_plus.url) as client:
        async with client.stream("GET", "/api/queue/gzip", headers={"Accept-Encoding": "gzip"}) as r:
            raw = b"".join([chunk async for chunk in r.aiter_raw()])
    assert r.headers["content-encoding"] == "gzip"
    assert raw == GZIPPED


async def test_a_head_request_answers_the_head_alone(upstream_plus):
    async with gateway(queue_url=upstream_plus.url) as client:
        head = await client.head("/api/queue/both")
        get = await client.get("/api/queue/both")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"] == "12"
    assert get.content == b"twelve bytes"


async def test_a_header_value_that_is_not_utf8_is_refused_not_altered(upstream):
    async with gateway(queue_url=upstream.url) as client:
        r = await client.get("/api/queue/echo/headers", headers={"X-Applicant-Name": "张三".encode("gbk")})
    body = assert_problem(r, 400, "invalid_header")
    assert body["field"] == "x-applicant-name"


async def test_a_method_the_proxy_does_not_forward_is_a_405_problem(upstream):
    async with gateway(queue_url=upstream.url) as client:
        r = await client.request("TRACE", "/api/queue/echo/headers")
    assert_problem(r, 405, "method_not_allowed")


async def test_an_unexpected_failure_in_the_proxy_is_a_500_problem(upstream, monkeypatch):
    def broken(scope: dict[str, Any]) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(proxy_module, "_forward_headers", broken)
    async with gateway(queue_url=upstream.url) as client:
        r = await client.get("/api/queue/echo/headers")
    # written by the error page, as for any route of the app: an answer, not a dropped connection
    assert_problem(r, 500, "internal_error")


async def test_proxied_requests_are_counted_under_the_route_template(upstream):
    async with gateway(queue_url=upstream.url) as client:
        await client.get("/api/queue/echo/files/7", headers={"X-Correlation-ID": "kiosk-7-req-43"})
        metrics = (await client.get("/metrics")).text
    counted = [line for line in metrics.splitlines() if line.startswith("http_requests_total{")
               and 'service="gateway"' in line and 'route="/api/{service}/{path:path}"' in line]
    assert counted, metrics


async def test_the_collector_runs_less_often_while_the_gateway_runs(upstream):
    before = gc.get_threshold()
    async with gateway(queue_url=upstream.url, gc_threshold=12_345):
        during = gc.get_threshold()
    assert during == (12_345, *before[1:])
    assert gc.get_threshold() == before
