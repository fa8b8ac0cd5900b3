"""The gateway: the one public entry. Routes /api/<service>/... to each service; aggregates health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.gateway.config import Settings, get_settings
from services.gateway.proxy import UpstreamPool, forward
from shared.errors import install_error_handlers
from shared.logging import configure_logging
from shared.metrics import RequestContextMiddleware, metrics_endpoint

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def create_app(settings: Settings | None = None, configure_logs: bool = True) -> FastAPI:
    settings = settings or get_settings()
    if configure_logs:
        configure_logging(settings.service_name, settings.log_level)
    upstreams = settings.upstreams()
    io_timeouts = httpx.Timeout(settings.stream_idle_timeout, connect=settings.connect_timeout)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limits = httpx.Limits(max_connections=settings.max_connections,
                              max_keepalive_connections=settings.max_keepalive,
                              keepalive_expiry=settings.keepalive_expiry)
        pool = UpstreamPool(limits)
        # the client runs the health probes; the proxy sends through its pool directly (see proxy.forward)
        async with httpx.AsyncClient(transport=pool, timeout=io_timeouts, follow_redirects=False) as client:
            app.state.client = client
            app.state.pool = pool
            yield

    app = FastAPI(title="Hall gateway", version="0.1.0", lifespan=lifespan,
                  description="One public entry: /api/<service>/... for queue, cases, monitor, notify.")
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, service=settings.service_name)

    @app.get("/livez", tags=["platform"])
    async def livez() -> dict[str, str]:
        """Liveness of the gateway process itself."""
        return {"status": "ok", "service": "gateway"}

    @app.get("/healthz", tags=["platform"])
    async def healthz(request: Request) -> JSONResponse:
        """Health of every service behind the gateway (503 if any is down)."""
        client: httpx.AsyncClient = request.app.state.client

        async def probe(name: str, base: str) -> tuple[str, str]:
            try:
                r = await client.get(f"{base}/healthz", timeout=settings.health_timeout)
                return name, "ok" if r.status_code == 200 else f"status {r.status_code}"
            except httpx.HTTPError as exc:
                return name, f"unreachable ({type(exc).__name__})"

        results = dict(await asyncio.gather(*(probe(n, b) for n, b in upstreams.items())))
        healthy = all(v == "ok" for v in results.values())
        return JSONResponse({"status": "ok" if healthy else "degraded", "services": results},
                            status_code=200 if healthy else 503)

    app.add_api_route("/metrics", metrics_endpoint, include_in_schema=False)

    @app.api_route("/api/{service}/{path:path}", methods=METHODS, tags=["proxy"])
    async def proxy(service: str, path: str, request: Request):  # noqa: ANN201 - a streamed response
        """Forward to a service, streaming both ways."""
        return await forward(request, request.app.state.pool, upstreams, service, path,
                             settings.upstream_timeout, io_timeouts)

    return app
