"""The worker process of a service: its outbox relay plus consumers, timers and jobs, with health and metrics.

`python -m services.<svc>.worker` calls `run_worker`. Components are objects with
`async run(stop: asyncio.Event)` that return once `stop` is set; a factory taking the `WorkerContext`
(engine, sessionmaker, settings, broker address) may stand in for one. SIGTERM or SIGINT sets `stop`;
a component that raises stops the whole worker with exit code 1, so the supervisor (Kubernetes,
`make run`) restarts it rather than leaving a worker running with a part missing.

A tiny HTTP server answers `/healthz` (the process runs), `/readyz` (the database AND the broker answer:
a worker without its broker cannot do its job, unlike the API, which the outbox covers) and `/metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

import uvicorn
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, disable_created_metrics, generate_latest
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared import clock
from shared.db import database_ready, make_engine, make_sessionmaker
from shared.events.kafka import cluster_id, new_admin
from shared.events.relay import Relay
from shared.logging import configure_logging
from shared.migrate import upgrade_async
from shared.settings import ServiceSettings

log = logging.getLogger("shared.worker")
disable_created_metrics()  # type: ignore[no-untyped-call]  # as every API does (shared/metrics.py)

# the order `make run` starts the services in: WORKER_HEALTH_PORT_BASE + this index is a worker's port
SERVICE_ORDER = ("queue", "cases", "monitor", "notify", "identity")


class WorkerOptions(BaseSettings):
    """Deployment options of worker processes (env prefix WORKER_); they win over run_worker's arguments."""

    model_config = SettingsConfigDict(env_prefix="WORKER_", extra="ignore")

    health_host: str = "0.0.0.0"
    health_port: int | None = None  # this worker's health port
    health_port_base: int | None = None  # queue at base, cases base + 1, ... (several workers on one host)
    outbox_retention_days: float | None = None
    shutdown_grace_seconds: float = 10.0
    readiness_timeout_seconds: float = 2.0


@runtime_checkable
class Component(Protocol):
    async def run(self, stop: asyncio.Event) -> None: ...


@dataclass(frozen=True)
class WorkerContext:
    """What a component factory may need to build its component."""

    service: str
    settings: ServiceSettings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    bootstrap: str


ComponentSpec = Component | Callable[[WorkerContext], Component]


def run_worker(service_name: str, settings: ServiceSettings, *, consumers: Iterable[ComponentSpec] = (),
               jobs: Iterable[ComponentSpec] = (), timers: Iterable[ComponentSpec] = (),
               health_port: int = 9100, retention_days: float = 7.0, relay: bool = True) -> int:
    """Run the worker until SIGTERM/SIGINT; returns the process exit code."""
    return asyncio.run(serve_worker(service_name, settings, consumers=consumers, jobs=jobs, timers=timers,
                                    health_port=health_port, retention_days=retention_days, relay=relay))


async def serve_worker(service_name: str, settings: ServiceSettings, *, consumers: Iterable[ComponentSpec] = (),
                       jobs: Iterable[ComponentSpec] = (), timers: Iterable[ComponentSpec] = (),
                       health_port: int = 9100, retention_days: float = 7.0, relay: bool = True,
                       stop: asyncio.Event | None = None, options: WorkerOptions | None = None) -> int:
    """The worker's body, for callers that own the event loop (tests may pass their own `stop`)."""
    options = options or WorkerOptions()
    hall = settings.hall
    configure_logging(f"{service_name}-worker", hall.log_level)
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)  # the health server's start/stop chatter
    clock.set_clock(hall.build_clock())
    stop = stop or asyncio.Event()
    with _stop_on_signals(stop):
        if settings.migrate_on_start:
            await upgrade_async(service_name, settings.database_url)
        engine = make_engine(settings.database_url, pool_size=settings.db_pool_size,
                             max_overflow=settings.db_max_overflow, pool_timeout=settings.db_pool_timeout,
                             pre_ping=settings.db_pool_pre_ping,
                             application_name=f"{service_name}-worker")
        context = WorkerContext(service_name, settings, engine, make_sessionmaker(engine), hall.kafka_bootstrap)
        components: list[tuple[str, Component]] = []
        relay_component: Relay | None = None
        if relay:
            days = options.outbox_retention_days if options.outbox_retention_days is not None else retention_days
            relay_component = Relay(settings.database_url, hall.kafka_bootstrap, service_name,
                                    retention=timedelta(days=days),
                                    replication_factor=hall.kafka_replication_factor)
            components.append(("relay", relay_component))
        for kind, specs in (("consumer", consumers), ("job", jobs), ("timer", timers)):
            for spec in specs:
                component = _build(spec, context)
                components.append((f"{kind}:{getattr(component, 'name', type(component).__name__)}", component))
        health = HealthServer(service_name, engine, hall.kafka_bootstrap, relay_component,
                              readiness_timeout=options.readiness_timeout_seconds)
        port = _health_port(service_name, options, health_port)
        try:
            await health.start(options.health_host, port)
            log.info("worker started", extra={"event": "worker_started", "components": [n for n, _ in components],
                                              "health_port": health.port})
            return await _supervise(components, stop, options.shutdown_grace_seconds)
        finally:
            await health.stop()
            await engine.dispose()
            log.info("worker stopped", extra={"event": "worker_stopped"})


def _build(spec: ComponentSpec, context: WorkerContext) -> Component:
    # a class has `run` too (unbound): only an instance is a component, a class is a factory
    if not isinstance(spec, type) and isinstance(spec, Component):
        return spec
    if callable(spec):
        component = spec(context)
        if isinstance(component, Component):
            return component
    raise TypeError(f"{spec!r} is neither a component (async run(stop)) nor a factory of one")


def _health_port(service: str, options: WorkerOptions, default: int) -> int:
    if options.health_port is not None:
        return options.health_port
    if options.health_port_base is not None and service in SERVICE_ORDER:
        return options.health_port_base + SERVICE_ORDER.index(service)
    return default


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (tests): the caller sets `stop` itself
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def _supervise(components: Sequence[tuple[str, Component]], stop: asyncio.Event, grace: float) -> int:
    """Run the components until `stop`; a component that fails stops them all (exit code 1)."""
    tasks: dict[asyncio.Task[object], str] = {
        asyncio.create_task(component.run(stop), name=name): name for name, component in components}
    stopping: asyncio.Task[object] = asyncio.create_task(stop.wait())
    exit_code = 0
    running = set(tasks)
    try:
        while running and not stop.is_set():
            done, running = await asyncio.wait(running | {stopping}, return_when=asyncio.FIRST_COMPLETED)
            running.discard(stopping)
            for task in done - {stopping}:
                if task.cancelled():
                    continue
                if (error := task.exception()) is not None:
                    log.error("worker component failed; stopping the worker",
                              extra={"event": "component_failed", "component": tasks[task]}, exc_info=error)
                    exit_code = 1
                    stop.set()
                elif not stop.is_set():
                    log.warning("worker component returned before stop",
                                extra={"event": "component_returned", "component": tasks[task]})
        stop.set()
        if running:
            _, late = await asyncio.wait(running, timeout=grace)
            for task in late:
                log.warning("worker component did not stop in time; cancelling",
                            extra={"event": "component_cancelled", "component": tasks[task]})
                task.cancel()
            results = await asyncio.gather(*running, return_exceptions=True)
            for task, result in zip(running, results, strict=True):
                if isinstance(result, Exception):
                    log.error("worker component failed while stopping",
                              extra={"event": "component_failed", "component": tasks[task]}, exc_info=result)
                    exit_code = 1
    finally:
        stopping.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, stopping, return_exceptions=True)
    return exit_code


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the worker owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HealthServer:
    """`/healthz`, `/readyz` and `/metrics` of a worker, on its own port."""

    def __init__(self, service: str, engine: AsyncEngine, bootstrap: str, relay: Relay | None = None, *,
                 readiness_timeout: float = 2.0) -> None:
        self.service = service
        self.engine = engine
        self.bootstrap = bootstrap
        self.relay = relay
        self.readiness_timeout = readiness_timeout
        self.port: int | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._admin_lock = asyncio.Lock()  # concurrent probes share one admin client
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.app = Starlette(routes=[
            Route("/healthz", self.healthz), Route("/readyz", self.readyz), Route("/metrics", self.metrics),
        ])

    async def start(self, host: str, port: int) -> None:
        # bind here, so a taken port fails the start with a clear OSError (and port 0 picks a free one)
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        sock.listen(64)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="off")
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="health-server")

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)
        if self._admin is not None:
            with contextlib.suppress(Exception):
                await self._admin.close()
            self._admin = None

    async def healthz(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "service": self.service})

    async def readyz(self, request: Request) -> JSONResponse:
        checks: dict[str, Any] = {"database": await self._check(self._database),
                                  "broker": await self._check(self._broker)}
        ready = all(value == "ok" for value in checks.values())
        if self.relay is not None:
            checks["relay"] = "leader" if self.relay.is_leader else "standby"
        return JSONResponse({"status": "ready" if ready else "unavailable", "service": self.service, **checks},
                            status_code=200 if ready else 503)

    async def metrics(self, request: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    async def _check(self, probe: Callable[[], Any]) -> str:
        try:
            await asyncio.wait_for(probe(), self.readiness_timeout)
        except Exception as exc:  # any failure means not ready
            return f"unavailable: {type(exc).__name__}"
        return "ok"

    async def _database(self) -> None:
        await database_ready(self.engine)

    async def _broker(self) -> None:
        async with self._admin_lock:
            try:
                if self._admin is None:
                    self._admin = new_admin(self.bootstrap)
                    await self._admin.start()
                await cluster_id(self._admin)
            except BaseException:
                admin, self._admin = self._admin, None
                if admin is not None:
                    with contextlib.suppress(Exception):
                        await admin.close()
                raise
