"""`make run`: the embedded PostgreSQL and broker (unless configured otherwise), notify's development SMS/e-mail
provider, every service and worker, and the gateway, as supervised child processes (shared.devinfra.supervisor):
one that dies is restarted with backoff while the rest keep serving; Ctrl-C (SIGINT) or SIGTERM stops them all
and leaves nothing behind.

A second run reuses the data under var/. Everything is configured through HALL_DEV_* settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import devsecrets
from shared.clock import monotonic
from shared.db import ensure_database
from shared.devinfra.envoy import EmbeddedEnvoy, EnvoyValues, default_upstreams, jwks_document
from shared.devinfra.kafka import EmbeddedKafka
from shared.devinfra.postgres import EmbeddedPostgres
from shared.devinfra.prometheus import BINARY as PROMETHEUS_BINARY
from shared.devinfra.prometheus import EmbeddedPrometheus, local_config, loopback_targets
from shared.devinfra.supervisor import ChildSpec, Process, Supervisor
from shared.events.kafka import ensure_topics, new_admin
from shared.migrate import SERVICES_WITH_DB, upgrade

SERVICES = SERVICES_WITH_DB  # each has its own database and worker
DEVPROVIDER_READY_SECONDS = 20.0


class DevSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HALL_DEV_", extra="ignore")

    var_dir: Path = Path("var")
    database_url: str | None = None  # a server URL (no database); unset: start the embedded server
    pg_port: int = 55432
    kafka_bootstrap: str | None = None  # unset: start the embedded broker
    kafka_port: int = 59092
    host: str = "127.0.0.1"
    gateway_port: int = 8000
    first_service_port: int = 8001  # queue, cases, monitor, notify; then identity, terminals
    envoy_admin_port: int = 9901  # loopback only
    envoy_stats_port: int = 9902  # /stats/prometheus
    envoy_concurrency: int = 1  # worker threads: one carries a county hall and leaves the cores to the services
    # the development SMS/e-mail provider (services.notify.devprovider): HTTP (POST/GET /sms, GET /mail) and
    # SMTP with STARTTLS; the ports notify's settings default to
    devprovider_http_port: int = 8025
    devprovider_smtp_port: int = 8026
    workers: bool = True
    prometheus: bool = True  # Prometheus (Debian's, unpacked by `make prometheus`) on every process's /metrics
    prometheus_port: int = 9090
    prometheus_scrape_interval: str = "15s"


def _server_url(dev: DevSettings, pg: EmbeddedPostgres | None) -> str:
    if pg is not None:
        return pg.url()
    assert dev.database_url is not None  # no embedded server only when a URL is configured
    return dev.database_url.rstrip("/")


def _db_url(server_url: str, service: str) -> str:
    base = server_url.rsplit("/", 1)[0] if server_url.count("/") > 2 else server_url
    return f"{base}/hall_{service}"


async def _create_topics(bootstrap: str) -> None:
    admin = new_admin(bootstrap)
    await asyncio.wait_for(admin.start(), 20)
    try:
        await asyncio.wait_for(ensure_topics(admin), 20)
    finally:
        await admin.close()


class _Postmaster:
    """The embedded server's postmaster, watched through its pid file: pg_ctl detaches it from us, so we
    can neither wait for it nor learn its exit code."""

    def __init__(self, pg: EmbeddedPostgres) -> None:
        self.pid = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
        self.data_dir = pg.data_dir

    def poll(self) -> str | None:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return "an unknown status"
        except PermissionError:
            pass  # it exists, under another user
        with contextlib.suppress(OSError, IndexError):  # a zombie nobody reaped is dead too
            if Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return "an unknown status"
        with contextlib.suppress(OSError):  # the pid taken by another process since
            if str(self.data_dir).encode() not in Path(f"/proc/{self.pid}/cmdline").read_bytes():
                return "an unknown status"
        return None

    def shut_down(self, timeout: float = 30) -> None:
        """Fast shutdown by signal (SIGINT), then immediate (SIGQUIT): for when pg_ctl could not stop it."""
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 10.0)):
            if self.poll() is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
            deadline = monotonic() + wait
            while self.poll() is None and monotonic() < deadline:
                time.sleep(0.1)


def _postgres_spec(pg: EmbeddedPostgres) -> ChildSpec:
    """The embedded PostgreSQL: restarted on its data directory, so nothing is lost but open transactions."""
    started: list[_Postmaster] = []

    def start() -> Process:
        pg.start()
        started[:] = [_Postmaster(pg)]
        return started[0]

    def stop() -> None:
        pg.stop()
        # pg_ctl runs as the server's user and fails if it can no longer reach the data directory (a
        # parent made private meanwhile, as a new pytest session does to its temp root): signal it ourselves
        for postmaster in started:
            if postmaster.poll() is None:
                print(f"postgres still running after pg_ctl stop; signalling its postmaster (pid {postmaster.pid})",
                      flush=True)
                postmaster.shut_down()

    return ChildSpec("postgres", log=pg.data_dir / "server.log", start=start, stop=stop)


def _kafka_spec(kafka: EmbeddedKafka) -> ChildSpec:
    """The embedded broker: each start is empty with a fresh cluster id (kafka.py), and gets every topic with
    its declared partitions at once, before a reader's metadata request makes Tansu auto-create one with 4.
    The relays notice the new id and re-send what they keep; consumers and feeds read again from 0."""

    def start() -> Process:
        kafka.start()
        assert kafka.process is not None
        return kafka.process

    return ChildSpec("kafka", log=kafka.log_path, start=start, stop=kafka.stop,
                     after_start=lambda: asyncio.run(_create_topics(kafka.bootstrap)))


def _uvicorn_spec(name: str, app: str, host: str, port: int, env: dict[str, str], var: Path) -> ChildSpec:
    return ChildSpec(name, [sys.executable, "-m", "uvicorn", "--factory", app, "--host", host, "--port", str(port),
                            "--no-access-log", "--timeout-graceful-shutdown", "5"],
                     env=env, log=var / "log" / f"{name}.log")


def devprovider_url(dev: DevSettings) -> str:
    return f"http://{dev.host}:{dev.devprovider_http_port}"


def _devprovider_spec(dev: DevSettings, var: Path, env: dict[str, str], stopping: Callable[[], bool]) -> ChildSpec:
    """The notify development provider (services.notify.devprovider): SMS in the generic JSON format and an SMTP
    server with STARTTLS, nothing leaving the machine, their messages listed by `GET /sms` and `GET /mail`. Its
    self-signed certificate, notify's CA file, is var/devprovider/smtp-cert.pem: made at the first start and
    kept by later ones while it covers the host and has more than a day to run. A start
    is over once /healthz answers, which it does only with the certificate written and both ports listening:
    the notify service and worker start after it."""
    health = f"{devprovider_url(dev)}/healthz"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy

    def ready() -> None:
        deadline = monotonic() + DEVPROVIDER_READY_SECONDS
        while not stopping():  # Ctrl-C meanwhile: main() stops what was started
            try:
                with direct.open(health, timeout=1) as answer:
                    if answer.status == 200:
                        return
            except (OSError, ValueError):
                pass
            if monotonic() > deadline:
                raise TimeoutError(f"no answer from {health} in {DEVPROVIDER_READY_SECONDS:g} s")
            time.sleep(0.05)

    return ChildSpec("notify-devprovider",
                     [sys.executable, "-m", "services.notify.devprovider", "--host", dev.host,
                      "--http-port", str(dev.devprovider_http_port), "--smtp-port", str(dev.devprovider_smtp_port),
                      "--cert-dir", str(var / "devprovider")],
                     env=env, log=var / "log" / "notify-devprovider.log", after_start=ready)


def _use_devprovider(dev: DevSettings, var: Path, env: dict[str, str]) -> None:
    """Point notify (its API and worker) at the development provider, unless an SMS provider
    (NOTIFY_SMS__PROVIDER) or an SMTP server (NOTIFY_SMTP__HOST) of one's own is configured: those are kept."""
    if "NOTIFY_SMS__PROVIDER" not in env:
        env["NOTIFY_SMS__PROVIDER"] = "dev"
        env["NOTIFY_SMS__URL"] = f"{devprovider_url(dev)}/sms"
    if "NOTIFY_SMTP__HOST" not in env:
        env["NOTIFY_SMTP__HOST"] = dev.host
        env["NOTIFY_SMTP__PORT"] = str(dev.devprovider_smtp_port)
        env["NOTIFY_SMTP__STARTTLS"] = "true"
        env["NOTIFY_SMTP__VALIDATE_CERTS"] = "true"  # against the provider's own certificate
        env["NOTIFY_SMTP__CA_FILE"] = str(var / "devprovider" / "smtp-cert.pem")


def _gateway_spec(dev: DevSettings, var: Path, jwt_public_key: str) -> ChildSpec:
    """Envoy, the one public port, in front of every service: deploy/envoy/envoy.yaml.j2 rendered with the
    development values into var/envoy/envoy.yaml at each start; it checks tokens with the public key only."""
    values = EnvoyValues(listen_address=dev.host, listen_port=dev.gateway_port, admin_port=dev.envoy_admin_port,
                         stats_port=dev.envoy_stats_port, upstreams=default_upstreams(dev.first_service_port, dev.host),
                         jwks=jwks_document(jwt_public_key))
    log = var / "log" / "gateway.log"
    gateway = EmbeddedEnvoy(values, var / "envoy", log_path=log, concurrency=dev.envoy_concurrency)

    def start() -> Process:
        gateway.start()
        assert gateway.process is not None
        return gateway.process

    return ChildSpec("gateway", log=log, start=start, stop=gateway.stop)


def _prometheus_spec(dev: DevSettings, var: Path, env: dict[str, str]) -> ChildSpec:
    """Prometheus on the jobs of deploy/prometheus/prometheus.yml at their loopback ports, with its alerting
    rules; its data under var/prometheus/ (kept between runs, 15 days)."""
    worker_base = int(env.get("WORKER_HEALTH_PORT_BASE", "9101"))
    config = local_config(loopback_targets(dev.host, dev.first_service_port, worker_base, dev.envoy_stats_port),
                          dev.prometheus_scrape_interval)
    log = var / "log" / "prometheus.log"
    prometheus = EmbeddedPrometheus(config, var / "prometheus", dev.host, dev.prometheus_port, log_path=log)

    def start() -> Process:
        prometheus.start()
        assert prometheus.process is not None
        return prometheus.process

    return ChildSpec("prometheus", log=log, start=start, stop=prometheus.stop)


def _demo_admin(var: Path, env: dict[str, str]) -> tuple[str, str] | None:
    """On the first start, a system admin `admin` with a random password kept in var/secrets/demo-admin.json
    (development only: a real install creates its admins with `python -m services.identity.cli`). None if
    it cannot be created (an `admin` already in a database kept from before): make run goes on without."""
    path = var / "secrets" / "demo-admin.json"
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        return stored["username"], stored["password"]
    username, password = "admin", secrets.token_urlsafe(12)
    created = subprocess.run([sys.executable, "-m", "services.identity.cli", "create-system-admin",
                              "--username", username, "--display-name", "演示管理员", "--password", password],
                             env=env, capture_output=True, text=True, timeout=120)
    if created.returncode != 0:
        print(f"  no demo admin: {created.stderr.strip().splitlines()[-1:] or created.returncode}", flush=True)
        return None
    path.write_text(json.dumps({"username": username, "password": password}))
    path.chmod(0o600)
    return username, password


def main() -> int:
    dev = DevSettings()
    var = dev.var_dir.resolve()
    (var / "log").mkdir(parents=True, exist_ok=True)
    env = devsecrets.apply(var, dict(os.environ))
    supervisor = Supervisor()
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    try:
        pg = None
        if dev.database_url is None:
            pg = EmbeddedPostgres(var / "pg", dev.pg_port)
            supervisor.start(_postgres_spec(pg))
        server = _server_url(dev, pg)
        if dev.kafka_bootstrap is None:
            kafka = EmbeddedKafka(dev.kafka_port, var / "log" / "kafka.log")
            supervisor.start(_kafka_spec(kafka))
            env["HALL_KAFKA_BOOTSTRAP"] = kafka.bootstrap
        else:
            env["HALL_KAFKA_BOOTSTRAP"] = dev.kafka_bootstrap
            # every topic with its declared partitions before any process asks for one
            asyncio.run(_create_topics(env["HALL_KAFKA_BOOTSTRAP"]))
        for service in SERVICES:
            url = _db_url(server, service)
            env[f"{service.upper()}_DATABASE_URL"] = url
            asyncio.run(ensure_database(url))
            # once here, so the API and worker processes below need not each run Alembic again
            upgrade(service, url)
            env.setdefault(f"{service.upper()}_MIGRATE_ON_START", "false")
        if supervisor.stopping:  # Ctrl-C while migrating
            return 0
        demo = _demo_admin(var, env)
        _use_devprovider(dev, var, env)
        supervisor.start(_devprovider_spec(dev, var, env, lambda: supervisor.stopping))
        if supervisor.stopping:  # Ctrl-C while it started
            return 0
        for offset, service in enumerate(SERVICES):
            supervisor.start(_uvicorn_spec(service, f"services.{service}.main:create_app", dev.host,
                                           dev.first_service_port + offset, env, var))
            if dev.workers and Path(f"services/{service}/worker.py").exists():
                supervisor.start(ChildSpec(f"{service}-worker", [sys.executable, "-m", f"services.{service}.worker"],
                                           env=env, log=var / "log" / f"{service}-worker.log"))
        # the screens' pages (no database, no worker), on the port after the services' that Envoy routes /ui to
        supervisor.start(_uvicorn_spec("terminals", "services.terminals.main:create_app", dev.host,
                                       dev.first_service_port + len(SERVICES), env, var))
        supervisor.start(_gateway_spec(dev, var, env["HALL_JWT_PUBLIC_KEY"]))
        prometheus = dev.prometheus and PROMETHEUS_BINARY.exists()
        if prometheus:
            supervisor.start(_prometheus_spec(dev, var, env))
        gateway = f"http://{dev.host}:{dev.gateway_port}"
        print("hall platform running (a process that dies is restarted; Ctrl-C stops everything)", flush=True)
        print(f"  gateway      {gateway}   health {gateway}/healthz   (Envoy; statistics "
              f"http://{dev.host}:{dev.envoy_stats_port}/stats/prometheus)", flush=True)
        for offset, service in enumerate(SERVICES):
            port = dev.first_service_port + offset
            print(f"  {service:<12} {gateway}/api/{service}/   docs {gateway}/api/{service}/docs   "
                  f"(direct :{port})", flush=True)
        print(f"  screens      {gateway}/ui/kiosk   {gateway}/ui/display   {gateway}/ui/window-screen/<n>   (a "
              f"device key once: append #key=<key> from POST /api/auth/device-keys)   public: {gateway}/ui/guide?center=<c>",
              flush=True)
        print(f"  staff        {gateway}/ui/window   (a terminal's key once, then a clerk signs in)   "
              f"{gateway}/ui/supervision   (a supervisor signs in)", flush=True)
        if prometheus:
            print(f"  prometheus   http://{dev.host}:{dev.prometheus_port}/   alerts "
                  f"http://{dev.host}:{dev.prometheus_port}/alerts   (rules deploy/prometheus/rules.yml; the "
                  f"dashboards of deploy/grafana/ read it)", flush=True)
        elif dev.prometheus:
            print("  prometheus   not started: run `make prometheus` first (make run does)", flush=True)
        dev_url = devprovider_url(dev)
        print(f"  devprovider  SMS {dev_url}/sms   e-mail {dev_url}/mail   (the development provider: nothing "
              f"leaves the machine; SMTP {dev.host}:{dev.devprovider_smtp_port} with STARTTLS)", flush=True)
        print(f"  postgres     {server}", flush=True)
        print(f"  kafka        {env['HALL_KAFKA_BOOTSTRAP']}", flush=True)
        print(f"  logs         {var / 'log'}/", flush=True)
        if demo is not None:
            print(f"  log in       curl -X POST {gateway}/api/auth/login -H 'Content-Type: application/json' "
                  f"-d '{{\"username\": \"{demo[0]}\", \"password\": \"{demo[1]}\"}}'   "
                  f"(demo system admin; var/secrets/demo-admin.json)", flush=True)
        print("  dev token    .venv/bin/python -m shared.tokens --role system_admin --center '*'", flush=True)
        supervisor.run()
        return 0
    finally:
        print("stopping...", flush=True)
        supervisor.stop_all()
        print("stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
