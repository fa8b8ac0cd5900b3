"""`make run`: the embedded PostgreSQL and broker (unless configured otherwise), every service and worker,
and the gateway, as child processes; Ctrl-C (SIGINT) or SIGTERM stops them all and leaves nothing behind.

A second run reuses the data under var/. Everything is configured through HALL_DEV_* settings.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import devsecrets
from shared.db import ensure_database
from shared.devinfra.kafka import EmbeddedKafka
from shared.devinfra.postgres import EmbeddedPostgres
from shared.events.kafka import ensure_topics, new_admin
from shared.migrate import SERVICES_WITH_DB, upgrade

SERVICES = SERVICES_WITH_DB  # each has its own database and worker


class DevSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HALL_DEV_", extra="ignore")

    var_dir: Path = Path("var")
    database_url: str | None = None  # a server URL (no database); unset: start the embedded server
    pg_port: int = 55432
    kafka_bootstrap: str | None = None  # unset: start the embedded broker
    kafka_port: int = 59092
    host: str = "127.0.0.1"
    gateway_port: int = 8000
    first_service_port: int = 8001
    workers: bool = True


def _server_url(dev: DevSettings, pg: EmbeddedPostgres | None) -> str:
    return pg.url() if pg else dev.database_url.rstrip("/")  # type: ignore[union-attr]


def _db_url(server_url: str, service: str) -> str:
    base = server_url.rsplit("/", 1)[0] if server_url.count("/") > 2 else server_url
    return f"{base}/hall_{service}"


async def _create_topics(bootstrap: str) -> None:
    admin = new_admin(bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin)
    finally:
        await admin.close()


def main() -> int:
    dev = DevSettings()
    var = dev.var_dir.resolve()
    (var / "log").mkdir(parents=True, exist_ok=True)
    env = devsecrets.apply(var, dict(os.environ))
    pg = kafka = None
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        if dev.database_url is None:
            pg = EmbeddedPostgres(var / "pg", dev.pg_port)
            pg.start()
        server = _server_url(dev, pg)
        if dev.kafka_bootstrap is None:
            kafka = EmbeddedKafka(dev.kafka_port, var / "log" / "kafka.log")
            kafka.start()
            env["HALL_KAFKA_BOOTSTRAP"] = kafka.bootstrap
        else:
            env["HALL_KAFKA_BOOTSTRAP"] = dev.kafka_bootstrap
        # every topic with its declared partitions before any process asks for one (Tansu would
        # auto-create a missing topic with 4 partitions on a reader's first metadata request)
        asyncio.run(_create_topics(env["HALL_KAFKA_BOOTSTRAP"]))
        for offset, service in enumerate(SERVICES):
            url = _db_url(server, service)
            env[f"{service.upper()}_DATABASE_URL"] = url
            asyncio.run(ensure_database(url))
            # once here, so the API and worker processes below need not each run Alembic again
            upgrade(service, url)
            env.setdefault(f"{service.upper()}_MIGRATE_ON_START", "false")
            env[f"GATEWAY_{service.upper()}_URL"] = f"http://{dev.host}:{dev.first_service_port + offset}"

        def spawn(name: str, args: list[str]) -> None:
            log = open(var / "log" / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
            proc = subprocess.Popen([sys.executable, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            children.append((name, proc))

        for offset, service in enumerate(SERVICES):
            spawn(service, ["-m", "uvicorn", "--factory", f"services.{service}.main:create_app",
                            "--host", dev.host, "--port", str(dev.first_service_port + offset),
                            "--no-access-log", "--timeout-graceful-shutdown", "5"])
            if dev.workers and Path(f"services/{service}/worker.py").exists():
                spawn(f"{service}-worker", ["-m", f"services.{service}.worker"])
        spawn("gateway", ["-m", "uvicorn", "--factory", "services.gateway.main:create_app", "--host", dev.host,
                          "--port", str(dev.gateway_port), "--no-access-log", "--timeout-graceful-shutdown", "5"])
        gateway = f"http://{dev.host}:{dev.gateway_port}"
        print("hall platform running (Ctrl-C stops everything)", flush=True)
        print(f"  gateway      {gateway}   health {gateway}/healthz", flush=True)
        for offset, service in enumerate(SERVICES):
            port = dev.first_service_port + offset
            print(f"  {service:<12} {gateway}/api/{service}/   docs {gateway}/api/{service}/docs   "
                  f"(direct :{port})", flush=True)
        print(f"  postgres     {server}", flush=True)
        print(f"  kafka        {env['HALL_KAFKA_BOOTSTRAP']}", flush=True)
        print(f"  logs         {var / 'log'}/", flush=True)
        print("  dev token    .venv/bin/python -m shared.tokens --role system_admin --center '*'", flush=True)
        watched = [*children, *([("kafka", kafka.process)] if kafka and kafka.process else [])]
        while not stopping:
            for name, proc in watched:
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; stopping (see {var / 'log' / name}.log)",
                          flush=True)
                    stopping = True
            time.sleep(0.2)
        return 0 if all(p.poll() in (None, 0) for _, p in watched) else 1
    finally:
        print("stopping...", flush=True)
        for _, proc in children:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, proc in children:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if kafka:
            kafka.stop()
        if pg:
            pg.stop()
        print("stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
