"""The one way a service is put together: settings, clock, logging, errors, metrics, database, health."""

from __future__ import annotations

import base64
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from shared import clock as clock_module
from shared.auth import TokenVerifier
from shared.calendar.store import CalendarCache
from shared.db import database_ready, make_engine, make_sessionmaker
from shared.errors import ServiceUnavailable, install_error_handlers
from shared.logging import configure_logging
from shared.metrics import RequestContextMiddleware, metrics_endpoint
from shared.migrate import upgrade_async
from shared.pii import PersonalData
from shared.settings import ServiceSettings

log = logging.getLogger("shared.app")


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter] = (),
    tags: Sequence[dict[str, str]] = (),
    clock: clock_module.Clock | None = None,
    on_startup: Sequence[Callable[[FastAPI, AsyncExitStack], Awaitable[Any]]] = (),
    configure_logs: bool = True,
    database: bool = True,
) -> FastAPI:
    """Build a service app; `clock` overrides the settings' clock (tests pass a FixedClock). With
    `database=False` (the terminals' pages) there is no engine, migration or calendar cache, and /readyz
    answers as soon as the process does."""
    hall = settings.hall
    if configure_logs:
        configure_logging(settings.service_name, hall.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        clock_module.set_clock(clock or hall.build_clock())
        async with AsyncExitStack() as stack:
            if database:
                if settings.migrate_on_start:
                    await upgrade_async(settings.service_name, settings.database_url)
                engine = make_engine(settings.database_url, pool_size=settings.db_pool_size,
                                     max_overflow=settings.db_max_overflow, pool_timeout=settings.db_pool_timeout,
                                     pre_ping=settings.db_pool_pre_ping,
                                     application_name=settings.service_name)
                app.state.engine = engine
                app.state.sessionmaker = make_sessionmaker(engine)
                stack.push_async_callback(engine.dispose)
                await app.state.calendar_cache.start(settings.database_url)
                stack.push_async_callback(app.state.calendar_cache.stop)
            for hook in on_startup:
                await hook(app, stack)
            # what start-up built (modules, routes, models, the calendar) lives as long as the process: out of
            # the collector's reach, a full collection scans only what requests made (bench-queue measured full
            # collections of 130-200 ms on a busy two-CPU machine without this, each one a stall of every request)
            gc.collect()
            gc.freeze()
            log.info("started", extra={"event": "startup"})
            yield

    app = FastAPI(title=title, description=description, version="0.1.0", lifespan=lifespan,
                  openapi_tags=[{"name": "platform", "description": "health, readiness, metrics, time"},
                                *tags])
    app.state.settings = settings
    app.state.calendar_cache = CalendarCache()
    app.state.token_verifier = TokenVerifier(hall.jwt_public_key, hall.jwt_issuer, hall.jwt_audience)
    app.state.pii = PersonalData(base64.b64decode(hall.pii_hash_key.get_secret_value()),
                                 base64.b64decode(hall.pii_encryption_key.get_secret_value()),
                                 hall.notify_seal_public_key)
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, service=settings.service_name)
    app.include_router(platform_router(settings.service_name, database=database))
    for router in routers:
        app.include_router(router)
    return app


def platform_router(service: str, *, database: bool = True) -> APIRouter:
    router = APIRouter(tags=["platform"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok", "service": service}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: the service's own database answers (never the broker: the outbox covers it); a service
        without a database is ready once it answers."""
        try:
            if database:
                await database_ready(request.app.state.engine)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            raise ServiceUnavailable(f"database not reachable: {type(exc).__name__}", code="db_unavailable") from exc
        return JSONResponse({"status": "ready", "service": service})

    @router.get("/time")
    async def time_now() -> dict[str, str | float]:
        """The service's "now" by the shared clock, today's Asia/Shanghai business date, and how fast the clock
        runs (the hall's screens show this time, not their own)."""
        now = clock_module.now()
        return {"now": now.isoformat(), "today_local": clock_module.local_date(now).isoformat(),
                "speed": clock_module.speed()}

    router.add_api_route("/metrics", metrics_endpoint, include_in_schema=False)
    return router
