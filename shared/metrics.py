"""Prometheus metrics: request count, latency by route template, requests in flight; `/metrics`.

Label values are bounded: the route template (never the raw path), the method, the status class.
The same ASGI middleware carries the correlation id in and out of every request.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.clock import monotonic
from shared.logging import correlation_id

# no `<family>_created` series beside every counter and histogram child: a timestamp per label set that no
# rule or panel reads, doubling the series Prometheus keeps (imported before any metric is defined)
disable_created_metrics()  # type: ignore[no-untyped-call]

CORRELATION_HEADER = "X-Correlation-ID"
_SAFE_CID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_SAFE_PREFIX = re.compile(r"^(/api/[a-z]{1,20}|/ui)$")  # the gateway's mounts (deploy/envoy)

REQUESTS = Counter("http_requests_total", "HTTP requests handled", ["service", "method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds", "Time to the response's first byte, by route template",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
IN_FLIGHT = Gauge("http_requests_in_flight", "HTTP requests being handled", ["service"])
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "<unmatched>"


class RequestContextMiddleware:
    """Pure ASGI (so streamed bodies stay streamed): correlation id + request metrics."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        self._in_flight = IN_FLIGHT.labels(service)
        # label children looked up once per (method, route[, status]): .labels() is costly per request
        self._latency: dict[tuple[str, str], Any] = {}
        self._requests: dict[tuple[str, str, str], Any] = {}

    def _observe(self, method: str, route: str, seconds: float) -> None:
        child = self._latency.get((method, route))
        if child is None:
            child = self._latency[(method, route)] = LATENCY.labels(self.service, method, route)
        child.observe(seconds)

    def _count(self, method: str, route: str, status: str) -> None:
        child = self._requests.get((method, route, status))
        if child is None:
            child = self._requests[(method, route, status)] = REQUESTS.labels(self.service, method, route, status)
        child.inc()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        prefix = headers.get(b"x-forwarded-prefix", b"").decode("latin-1")
        if _SAFE_PREFIX.match(prefix) and not scope.get("root_path"):
            # behind the gateway at /api/<svc>: the OpenAPI page and its "servers" point there
            scope = {**scope, "root_path": prefix}
        incoming = headers.get(CORRELATION_HEADER.lower().encode(), b"").decode("latin-1")
        cid = incoming if _SAFE_CID.match(incoming or "") else uuid.uuid4().hex
        token = correlation_id.set(cid)
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        started = monotonic()
        status: dict[str, Any] = {"code": 500, "timed": False}
        self._in_flight.inc()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers") or [])
                headers.append((CORRELATION_HEADER.lower().encode(), cid.encode()))
                message = {**message, "headers": headers}
                self._observe(method, _route_of(scope), monotonic() - started)
                status["timed"] = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self._in_flight.dec()
            route = _route_of(scope)
            if not status["timed"]:
                self._observe(method, route, monotonic() - started)
            self._count(method, route, f"{status['code'] // 100}xx")
            correlation_id.reset(token)


async def metrics_endpoint(request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


_PENDING = "hall.metrics.pending"


def _flush_pending(session: Session) -> None:
    for record in session.info.pop(_PENDING, []):
        record()


def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def at_commit(session: AsyncSession, record: Callable[[], None]) -> None:
    """Run `record` once the session's transaction commits (never if it rolls back): a business metric
    counts what happened, not what was tried."""
    sync = session.sync_session
    if not sync.info.get("hall.metrics.listening"):
        event.listen(sync, "after_commit", _flush_pending)
        event.listen(sync, "after_rollback", _drop_pending)
        sync.info["hall.metrics.listening"] = True
    sync.info.setdefault(_PENDING, []).append(record)
