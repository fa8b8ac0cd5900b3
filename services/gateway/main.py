"""The gateway: the one public entry. Routes /api/<service>/... to each service; aggregates health."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.config import Settings, get_settings
from services.gateway.proxy import METHODS, PROXY_PATH, Proxy, Upstream, proxied
from shared.errors import install_error_handlers
from shared.logging import configure_logging
from shared.metrics import RequestContextMiddleware, metrics_endpoint


class Gateway(FastAPI):
    """FastAPI, but a request for a service (/api/<service>/...) goes from the server straight to
    `proxy_stack`: the error page, `RequestContextMiddleware`, `Proxy`.

    It skips FastAPI's own per-request layers (native OpenTelemetry, body-size limit, exception
    middleware, routing), ~15% of the gateway's CPU per request. The gateway sets no body limit and
    configures no OpenTelemetry; its Prometheus metrics and correlation ids cover proxied requests.
    """

    proxy_stack: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.proxy_stack is not None and proxied(scope) is not None:
            scope["app"] = self  # as Starlette sets it: the error handlers are found through it
            await self.proxy_stack(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, configure_logs: bool = True) -> FastAPI:
    settings = settings or get_settings()
    if configure_logs:
        configure_logging(settings.service_name, settings.log_level)
    upstreams = settings.upstreams()
    upstream = Upstream(settings)
    health_timeout = aiohttp.ClientTimeout(total=settings.health_timeout)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        previous = gc.get_threshold()
        if settings.gc_threshold:
            gc.set_threshold(settings.gc_threshold, *previous[1:])  # see Settings.gc_threshold
        try:
            async with upstream:
                yield
        finally:
            gc.set_threshold(*previous)

    app = Gateway(title="Hall gateway", version="0.1.0", lifespan=lifespan,
                  description="One public entry: /api/<service>/... for queue, cases, monitor, notify.")
    app.state.upstream = upstream
    install_error_handlers(app)

    @app.get("/livez", tags=["platform"])
    async def livez() -> dict[str, str]:
        """Liveness of the gateway process itself."""
        return {"status": "ok", "service": "gateway"}

    @app.get("/healthz", tags=["platform"])
    async def healthz() -> JSONResponse:
        """Health of every service behind the gateway (503 if any is down)."""

        async def probe(name: str, base: str) -> tuple[str, str]:
            try:
                async with upstream.session.get(f"{base}/healthz", timeout=health_timeout,
                                                allow_redirects=False) as r:
                    return name, "ok" if r.status == 200 else f"status {r.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                return name, f"unreachable ({type(exc).__name__})"

        results = dict(await asyncio.gather(*(probe(n, b) for n, b in upstreams.items())))
        healthy = all(v == "ok" for v in results.values())
        return JSONResponse({"status": "ok" if healthy else "degraded", "services": results},
                            status_code=200 if healthy else 503)

    app.add_api_route("/metrics", metrics_endpoint, include_in_schema=False)

    async def proxy(service: str, path: str) -> None:
        """Forward to a service, streaming both ways."""
        # documents the route; its requests never get here: Gateway.__call__ hands them to Proxy
        raise RuntimeError("/api/{service}/... is served by Proxy")

    app.add_api_route(PROXY_PATH, proxy, methods=list(METHODS), tags=["proxy"])
    route = next(r for r in app.router.routes if isinstance(r, APIRoute) and r.path == PROXY_PATH)
    app.add_middleware(RequestContextMiddleware, service=settings.service_name)
    # as FastAPI builds its own stack: the error page (500 problem+json), then the same middleware
    app.proxy_stack = ServerErrorMiddleware(
        RequestContextMiddleware(Proxy(upstream, route), service=settings.service_name),
        handler=app.exception_handlers[Exception], debug=app.debug)
    return app
