"""Benchmark of notifications (issue 25 "Benchmark"): webhook deliveries per second through the dispatcher, and
one alert fanned out to 500 SSE clients of a notify feed. Every figure is printed with its ratio to its target,
all measured in this one run.

(1) Webhooks. A webhook recipient of centre 320102 subscribed to `case.*` is created through the notify app's
    own API (`POST /recipients`, `POST /subscriptions`, a centre admin's token, over ASGI). `--deliveries`
    case.stage_advanced events (an event no default rule notifies, so each plans exactly one webhook delivery)
    are planned through the planner: the notify `cases` consumer's own handler, 100 events per transaction as
    the consumer's apply_batch, which renders the webhook document and inserts the rows. Then the worker's
    Dispatcher (its real channels from `build_channels`, the production defaults of services.notify.config:
    batch 200, 50 sends in flight, the worker's pool settings) runs rounds until nothing is due, sending each to
    a receiver in a process of its own (tests/notify/receivers.py `HttpReceiver` on uvicorn: it verifies every
    X-Hall-Signature and counts each Idempotency-Key once). deliveries/s = N / (first claim -> last record).
    Checked: N rows `sent` with one attempt each, the receiver accepted N distinct messages from N requests and
    refused no signature. For context, in the same run: the same receiver's capacity for N plain httpx POSTs of
    the same signed document at the same concurrency (50 in flight, the channel's pool of 100 connections),
    once before and once after the dispatcher's run; the dispatcher's time per round in its three steps (claim,
    send, record); CPU seconds per process. Target >= 1,000 deliveries/s.
(2) SSE fan-out. The notify app as `make run` serves it (`python -m uvicorn --factory
    services.notify.main:create_app`, its own process), the notify worker (`python -m services.notify.worker`:
    its outbox relay, consumers, dispatcher) against a fresh notify database and the broker, and `--clients`
    SSE clients in a process of their own (raw asyncio sockets: one HTTP/1.1 GET each, no client library) on
    `/feeds/window:320102:3` with valid tokens of its members (hall managers, supervisors, the window's clerk
    and terminal), every one verified connected (its stream's hello read). Each round this process commits one
    overdue alert.raised through the planner (the notify `monitor` consumer's handler in one transaction, as
    the consumer applies it): the `alert_overdue_window` rule plans the window feed's message, a
    delivery.feed_posted row in the outbox; the worker's relay sends it to hall.notify.v1; the app's feed reads
    it and writes it to every client. Latency = the frame's arrival in the client process - the commit's
    return here (shared.clock.monotonic, CLOCK_MONOTONIC, one clock for every process). A warm-up round, then
    `--rounds` measured ones: p50/p99/max over the clients per round, the worst p99, and the pooled figures.
    Target p99 <= 500 ms.

Run: `uv run python bench/notify_bench.py [--deliveries 20000] [--clients 500] [--rounds 5] [--skip webhook,fanout]`.
It starts its own PostgreSQL (var/bench-notify-pg-<pid>, fsync off as every bench here, destroyed at the end)
and broker. Exit code 0 when every target is met.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import statistics
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402

from shared import clock, devsecrets  # noqa: E402
from shared.db import asyncpg_dsn, ensure_database, make_engine, make_sessionmaker  # noqa: E402
from shared.devinfra.kafka import EmbeddedKafka  # noqa: E402
from shared.devinfra.postgres import EmbeddedPostgres, free_port  # noqa: E402
from shared.migrate import upgrade  # noqa: E402

SCRIPT = str(Path(__file__).resolve())
DELIVERIES_TARGET = 1000.0
FANOUT_P99_MS = 500.0
CENTRE = "320102"
WINDOW = "3"
FEED = f"window:{CENTRE}:{WINDOW}"
PLAN_BATCH = 100  # events per transaction, the consumers' apply_batch
MARK = re.compile(rb"BENCHFAN-(\d{4})")


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


class CpuMeter:
    """CPU seconds of labelled processes (PostgreSQL with its backends) between two samples (psutil)."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        import psutil

        self.psutil = psutil
        self.pids = pids
        self.start = self._sample()
        self.began = clock.monotonic()

    def _sample(self) -> dict[str, float]:
        seconds: dict[str, float] = {}
        for label, pid in self.pids.items():
            if pid is None:
                continue
            total = 0.0
            with contextlib.suppress(self.psutil.Error):
                process = self.psutil.Process(pid)
                times = process.cpu_times()
                total = times.user + times.system
                if label == "postgres":  # the backends: those running, and those gone (reaped by the postmaster)
                    total += times.children_user + times.children_system
                    for member in process.children(recursive=True):
                        with contextlib.suppress(self.psutil.Error):
                            times = member.cpu_times()
                            total += times.user + times.system
            seconds[label] = total
        machine = self.psutil.cpu_times()
        seconds["machine"] = machine.user + machine.system + getattr(machine, "softirq", 0.0)
        return seconds

    def line(self) -> str:
        elapsed = clock.monotonic() - self.began
        end = self._sample()
        return ", ".join(f"{label} {(end[label] - self.start.get(label, 0.0)) / elapsed:.2f}" for label in end)


def postgres_pid(pg: EmbeddedPostgres) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((pg.data_dir / "postmaster.pid").read_text().splitlines()[0])
    return None


async def notify_database(pg: EmbeddedPostgres, name: str) -> str:
    url = pg.url(f"hall_bench_notify_{name}")
    await ensure_database(url)
    await asyncio.to_thread(upgrade, "notify", url)
    return url


def notify_settings(url: str, kafka: EmbeddedKafka) -> Any:
    from services.notify.config import Settings
    from shared.settings import HallSettings

    # the production defaults of services.notify.config; only where the database and broker are, and quiet logs
    return Settings(database_url=url, migrate_on_start=False,
                    hall=HallSettings(kafka_bootstrap=kafka.bootstrap, log_level="WARNING"))


def token(role: str, subject: str, **claims: Any) -> str:
    from shared.auth import mint_token

    return mint_token(os.environ["GATEWAY_JWT_PRIVATE_KEY"], subject=subject, role=role, centers=[CENTRE],
                      ttl=timedelta(hours=2), **claims)


async def until(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = clock.monotonic() + within
    while not check():
        if clock.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


# --- child processes ---------------------------------------------------------------------------------------------

@dataclass
class Child:
    process: asyncio.subprocess.Process
    lines: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    reader: asyncio.Task[None] | None = None
    on_line: Callable[[str], None] | None = None


async def spawn(args: list[str], env: dict[str, str] | None = None, *, capture: bool = True,
                on_line: Callable[[str], None] | None = None) -> Child:
    process = await asyncio.create_subprocess_exec(
        *args, cwd=str(ROOT), env=env, stdout=asyncio.subprocess.PIPE if capture else asyncio.subprocess.DEVNULL,
        start_new_session=True)
    child = Child(process, on_line=on_line)
    if capture:
        async def read() -> None:
            assert process.stdout is not None
            async for raw in process.stdout:
                line = raw.decode().rstrip("\n")
                if child.on_line is not None:
                    child.on_line(line)
                else:
                    child.lines.put_nowait(line)

        child.reader = asyncio.create_task(read())
    return child


async def stop_child(child: Child | None) -> None:
    if child is None:
        return
    if child.process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            child.process.terminate()
        try:
            await asyncio.wait_for(child.process.wait(), 20)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()
            await child.process.wait()
    if child.reader is not None:
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(child.reader, 5)


async def next_line(child: Child, prefix: str, within: float) -> str:
    deadline = clock.monotonic() + within
    while True:
        left = deadline - clock.monotonic()
        if left <= 0:
            raise RuntimeError(f"no '{prefix}' line from the child (exit code {child.process.returncode})")
        try:
            line = await asyncio.wait_for(child.lines.get(), left)
        except TimeoutError:
            continue
        if line.startswith(prefix):
            return line


def stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def role_receiver(args: argparse.Namespace) -> None:
    """The webhook receiver (tests.notify.receivers.HttpReceiver, signature check on), and `GET /_stats`."""
    from tests.notify.receivers import HttpReceiver

    class CountingReceiver(HttpReceiver):
        async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"] == "/_stats":
                requests: dict[str, int] = {}
                for r in self.requests:
                    requests[r.path] = requests.get(r.path, 0) + 1
                accepted: dict[str, int] = {}
                for a in self.accepted:
                    accepted[a.request.path] = accepted.get(a.request.path, 0) + 1
                body = json.dumps({"requests": requests, "accepted": accepted, "bad_signatures": self.bad_signatures,
                                   "failed": self.failed}).encode()
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": body})
                return
            await super().__call__(scope, receive, send)

    stop = stop_on_signals()
    async with CountingReceiver(webhook_secret=os.environ["BENCH_WEBHOOK_SECRET"], id_prefix="hook") as receiver:
        print(f"port {receiver.port}", flush=True)
        await stop.wait()


async def role_clients(args: argparse.Namespace) -> None:
    """`--clients` SSE clients on one feed, raw sockets; prints `connected n` once every stream's hello is read,
    then `got <round> <client> <monotonic>` for each client's first frame naming BENCHFAN-<round>."""
    host, port = "127.0.0.1", args.port
    roles = [("hall_manager", {}), ("supervisor", {}), ("clerk", {"window": WINDOW, "department": "D01"}),
             ("terminal", {"window": WINDOW})]
    out: list[str] = []
    connected = 0
    failed = 0
    gate = asyncio.Semaphore(50)  # connections opened at a time

    async def client(i: int) -> None:
        nonlocal connected, failed
        role, claims = roles[i % len(roles)]
        if role == "terminal":
            claims = {**claims, "device": f"bench-terminal-{i}"}
        bearer = token(role, f"bench-{role}-{i}", **claims)
        request = (f"GET /feeds/{FEED} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {bearer}\r\n"
                   "Accept: text/event-stream\r\n\r\n").encode()
        try:
            async with gate:
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(request)
                buffer = b""
                while b"\r\n\r\n" not in buffer or b": notify" not in buffer:
                    chunk = await reader.read(65536)
                    if not chunk:
                        raise ConnectionError("closed before the hello")
                    buffer += chunk
            if not buffer.startswith(b"HTTP/1.1 200"):
                raise ConnectionError(buffer.split(b"\r\n", 1)[0].decode(errors="replace"))
        except Exception as exc:
            failed += 1
            out.append(f"failed {i} {type(exc).__name__}: {exc}\n")
            return
        connected += 1
        seen: set[int] = set()
        tail = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                out.append(f"closed {i}\n")
                return
            arrived = clock.monotonic()
            data = tail + chunk
            for match in MARK.finditer(data):
                n = int(match[1])
                if n not in seen:
                    seen.add(n)
                    out.append(f"got {n} {i} {arrived:.6f}\n")
            tail = data[-24:]

    stop = stop_on_signals()
    tasks = [asyncio.create_task(client(i)) for i in range(args.clients)]
    reported = False
    while not stop.is_set():
        if out:
            sys.stdout.write("".join(out))
            out.clear()
        if not reported and connected + failed == args.clients:
            sys.stdout.write(f"connected {connected} failed {failed}\n")
            reported = True
        sys.stdout.flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.02)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --- (1) webhook deliveries per second ---------------------------------------------------------------------------

async def raw_capacity(url: str, document: dict[str, Any], secret: str, count: int, concurrency: int,
                       max_connections: int) -> tuple[float, int]:
    """`count` plain httpx POSTs of `document`, signed as the channel signs, `concurrency` in flight."""
    from services.notify.channels.webhook import signature

    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    errors = 0
    left = count
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=max_connections,
                                                                 max_keepalive_connections=max_connections)) as http:
        async def lane() -> None:
            nonlocal left, errors
            while left > 0:
                left -= 1
                stamp = int(clock.wall_now().timestamp())
                response = await http.post(url, content=body, headers={
                    "Content-Type": "application/json", "X-Hall-Timestamp": str(stamp),
                    "X-Hall-Signature": signature(secret, stamp, body), "Idempotency-Key": str(uuid.uuid4()),
                    "X-Hall-Delivery": "0"})
                if not response.is_success:
                    errors += 1

        await http.get(url.rsplit("/", 1)[0] + "/_stats")  # the first connection is not part of the figure
        started = clock.monotonic()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        seconds = clock.monotonic() - started
    return seconds, errors


async def aiohttp_capacity(url: str, document: dict[str, Any], secret: str, count: int, concurrency: int,
                           max_connections: int) -> tuple[float, int]:
    """`count` plain aiohttp POSTs of `document` (the webhook channel's client, its pool size), signed as the
    channel signs, `concurrency` in flight."""
    import aiohttp

    from services.notify.channels.webhook import signature

    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    errors = 0
    left = count
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=max_connections),
                                     timeout=aiohttp.ClientTimeout(total=10)) as http:
        async def lane() -> None:
            nonlocal left, errors
            while left > 0:
                left -= 1
                stamp = int(clock.wall_now().timestamp())
                async with http.post(url, data=body, headers={
                        "Content-Type": "application/json", "X-Hall-Timestamp": str(stamp),
                        "X-Hall-Signature": signature(secret, stamp, body), "Idempotency-Key": str(uuid.uuid4()),
                        "X-Hall-Delivery": "0"}) as response:
                    await response.read()
                    if not 200 <= response.status < 300:
                        errors += 1

        async with http.get(url.rsplit("/", 1)[0] + "/_stats") as first:  # not part of the figure
            await first.read()
        started = clock.monotonic()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        seconds = clock.monotonic() - started
    return seconds, errors


async def socket_capacity(port: int, path: str, document: dict[str, Any], secret: str, count: int,
                          concurrency: int) -> tuple[float, int]:
    """The receiver alone: the same signed POSTs from `concurrency` keep-alive connections of raw asyncio
    sockets (one write a request, no client library), one request at a time on each."""
    from services.notify.channels.webhook import signature

    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    errors = 0
    left = count

    async def lane() -> None:
        nonlocal left, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while left > 0:
                left -= 1
                stamp = int(clock.wall_now().timestamp())
                writer.write(
                    f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nX-Hall-Timestamp: {stamp}\r\n"
                    f"X-Hall-Signature: {signature(secret, stamp, body)}\r\nIdempotency-Key: {uuid.uuid4()}\r\n"
                    "X-Hall-Delivery: 0\r\n\r\n".encode() + body)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 2"):
                    errors += 1
                length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
        finally:
            writer.close()

    started = clock.monotonic()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return clock.monotonic() - started, errors


async def receiver_stats(base: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        result: dict[str, Any] = (await http.get(f"{base}/_stats")).json()
        return result


async def create_webhook(settings: Any, hook_url: str, secret: str) -> int:
    """The recipient and its subscription, through the app's own routes (a centre admin, over ASGI)."""
    from services.notify.main import create_app

    app = create_app(settings)
    headers = {"Authorization": f"Bearer {token('center_admin', 'bench-admin')}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notify") as http:
            r = await http.post("/recipients", headers=headers, json={
                "kind": "webhook", "name": "压测 OA 系统", "center_id": CENTRE, "address": hook_url,
                "secret": secret})
            if r.status_code != 201:
                raise RuntimeError(f"POST /recipients: {r.status_code} {r.text}")
            recipient = int(r.json()["id"])
            r = await http.post("/subscriptions", headers=headers, json={
                "recipient_id": recipient, "event_types": ["case.*"], "center_id": CENTRE, "channel": "webhook"})
            if r.status_code != 201:
                raise RuntimeError(f"POST /subscriptions: {r.status_code} {r.text}")
    return recipient


async def plan_events(settings: Any, count: int) -> float:
    """`count` case.stage_advanced events through the notify `cases` consumer's handler; seconds taken."""
    from services.notify import consumers, planner
    from services.notify.templating.samples import sample
    from shared.events.catalog import CaseStageAdvanced
    from shared.events.envelope import Envelope

    planner.configure(settings)
    handler = next(spec for spec in consumers.CONSUMERS if spec.name == "cases").handlers["case.stage_advanced"]
    base = sample(CaseStageAdvanced)
    assert isinstance(base, CaseStageAdvanced)
    engine = make_engine(settings.database_url, application_name="bench-notify-planner")
    sessions = make_sessionmaker(engine)
    started = clock.monotonic()
    try:
        for first in range(1, count + 1, PLAN_BATCH):
            async with sessions() as session, session.begin():
                for n in range(first, min(count, first + PLAN_BATCH - 1) + 1):
                    case_no = f"BENCH{n:08d}"
                    payload = base.model_copy(update={"case": base.case.model_copy(update={
                        "case_no": case_no, "center_id": CENTRE})})
                    envelope = Envelope.wrap("cases", payload, subject=f"case:{case_no}", center_id=CENTRE
                                             ).model_copy(update={"sequence": n})
                    await handler(session, envelope)
                    await session.flush()
                    session.expunge_all()  # as the consumer empties its session between events
    finally:
        await engine.dispose()
    return clock.monotonic() - started


@dataclass
class Rounds:
    claim: list[float] = field(default_factory=list)
    groups: list[float] = field(default_factory=list)  # each _record call (a concurrency's worth of results)
    record: list[float] = field(default_factory=list)  # per round, the sum of its groups
    total: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)


def timed(rounds: list[float], step: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def run(*args: Any) -> Any:
        began = clock.monotonic()
        try:
            return await step(*args)
        finally:
            rounds.append(clock.monotonic() - began)
    return run


async def dispatch_all(settings: Any) -> tuple[float, Rounds]:
    """The worker's Dispatcher with its real channels until nothing is due; (seconds, its rounds)."""
    from services.notify.channels.registry import build_channels, close_channels
    from services.notify.dispatcher import Dispatcher

    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size,
                         max_overflow=settings.db_max_overflow, pool_timeout=settings.db_pool_timeout,
                         pre_ping=settings.db_pool_pre_ping, application_name="bench-notify-dispatcher")
    channels = build_channels(settings)
    rounds = Rounds()
    try:
        dispatcher = Dispatcher(engine, settings, channels)
        # timing only: the instance's own steps, wrapped (the class's code runs unchanged)
        setattr(dispatcher, "_claim", timed(rounds.claim, dispatcher._claim))  # noqa: B010
        setattr(dispatcher, "_record", timed(rounds.groups, dispatcher._record))  # noqa: B010
        async with engine.connect():
            pass  # the pool's first connection is not part of the figure
        started = clock.monotonic()
        # what Dispatcher.run does while busy: the next round at once while a round fills its batch
        while True:
            began, groups = clock.monotonic(), len(rounds.groups)
            tried = await dispatcher.dispatch_once()
            if tried == 0:
                break
            rounds.total.append(clock.monotonic() - began)
            rounds.sizes.append(tried)
            rounds.record.append(sum(rounds.groups[groups:]))  # the round's groups of results, recorded
        seconds = clock.monotonic() - started - (rounds.claim[-1] if rounds.claim else 0.0)  # less the empty claim
    finally:
        await close_channels(channels)
        await engine.dispose()
    return seconds, rounds


async def bench_webhook(pg: EmbeddedPostgres, kafka: EmbeddedKafka, opts: argparse.Namespace) -> bool:
    url = await notify_database(pg, "webhook")
    settings = notify_settings(url, kafka)
    secret = secrets.token_urlsafe(32)
    receiver = await spawn([sys.executable, SCRIPT, "--role", "receiver"],
                           env={**os.environ, "BENCH_WEBHOOK_SECRET": secret})
    try:
        port = int((await next_line(receiver, "port", 30)).split()[1])
        base = f"http://127.0.0.1:{port}"
        await create_webhook(settings, f"{base}/hook", secret)
        count = opts.deliveries
        planning = await plan_events(settings, count)
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            planned = await conn.fetchval("SELECT count(*) FROM deliveries WHERE channel = 'webhook' "
                                          "AND status = 'pending'")
            other = await conn.fetchval("SELECT count(*) FROM deliveries WHERE channel <> 'webhook'")
            document = json.loads(await conn.fetchval("SELECT params->'document' FROM deliveries LIMIT 1"))
            await conn.execute("VACUUM ANALYZE deliveries")
        finally:
            await conn.close()
        print(f"  planned {planned:,} webhook deliveries ({other} of other channels) from {count:,} case events "
              f"through the planner in {planning:.1f} s ({count / planning:,.0f} events/s, {PLAN_BATCH} a "
              "transaction)", flush=True)

        pids = {"bench (dispatcher)": os.getpid(), "receiver": receiver.process.pid, "postgres": postgres_pid(pg)}
        concurrency = settings.dispatch_concurrency
        pool = max(100, concurrency)  # the channel's pool (services.notify.channels.registry)
        capacity: list[tuple[str, float, int, str]] = []  # (how, seconds, errors, cores busy)

        async def measure(how: str, run: Awaitable[tuple[float, int]]) -> None:
            meter = CpuMeter(pids)
            seconds, errors = await run
            capacity.append((how, seconds, errors, meter.line()))

        await measure("aiohttp, before", aiohttp_capacity(f"{base}/raw", document, secret, count, concurrency, pool))
        await measure("httpx", raw_capacity(f"{base}/raw", document, secret, count, concurrency, pool))
        await measure("raw sockets", socket_capacity(port, "/raw", document, secret, count, concurrency))

        cpu = CpuMeter(pids)
        elapsed, rounds = await dispatch_all(settings)
        dispatch_cpu = cpu.line()

        await measure("aiohttp, after", aiohttp_capacity(f"{base}/raw", document, secret, count, concurrency, pool))
        stats = await receiver_stats(base)
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            sent = await conn.fetchval("SELECT count(*) FROM deliveries WHERE status = 'sent' AND attempts = 1")
            unsent = await conn.fetchval("SELECT count(*) FROM deliveries WHERE status <> 'sent'")
            attempts = await conn.fetchval("SELECT count(*) FROM delivery_attempts WHERE outcome = 'accepted'")
        finally:
            await conn.close()
    finally:
        await stop_child(receiver)
    rate = count / elapsed
    hook_requests = stats["requests"].get("/hook", 0)
    hook_accepted = stats["accepted"].get("/hook", 0)
    complete = (planned == sent == attempts == hook_requests == hook_accepted == count and unsent == 0
                and stats["bad_signatures"] == 0 and stats["failed"] == 0)
    print(f"webhooks: {count:,} deliveries planned from case events, one dispatcher (batch "
          f"{settings.dispatch_batch}, {concurrency} in flight, pool {settings.db_pool_size}+"
          f"{settings.db_max_overflow}), a receiver process verifying every signature")
    print(f"  sent {sent:,} in {elapsed:.2f} s: {rate:,.0f} deliveries/s (target >= {DELIVERIES_TARGET:,.0f}; ratio "
          f"{rate / DELIVERIES_TARGET:.2f}) {verdict(rate >= DELIVERIES_TARGET and complete)}")
    print(f"  exactly once: receiver accepted {hook_accepted:,} distinct messages from {hook_requests:,} requests, "
          f"{stats['bad_signatures']} bad signatures; {sent:,} rows sent at the first attempt, {unsent} not sent")
    steps = {"claim": rounds.claim[:len(rounds.total)], "record": rounds.record}
    send = [t - c - r for t, c, r in zip(rounds.total, steps["claim"], steps["record"], strict=True)]
    print(f"  {len(rounds.total)} rounds of {statistics.fmean(rounds.sizes):.0f}: claim "
          f"{statistics.fmean(steps['claim']) * 1000:.0f} ms, send (what recording did not overlap) {statistics.fmean(send) * 1000:.0f} ms, record "
          f"{statistics.fmean(steps['record']) * 1000:.0f} ms a round (mean); cores busy: {dispatch_cpu}")
    for how, seconds, errors, cpu_line in capacity:
        client = {"aiohttp": "plain aiohttp POSTs (the channel's client and pool size)",
                  "httpx": "plain httpx POSTs (the client the channel left: its pool's limit)",
                  "raw": "POSTs from raw asyncio sockets (no client library: the receiver's own limit)"}[how.split()[0].rstrip(",")]
        print(f"  receiver capacity ({how}): {count:,} {client} of the same signed document, {concurrency} in "
              f"flight: {count / seconds:,.0f}/s ({errors} errors; dispatcher / this {rate * seconds / count:.2f}); "
              f"cores busy: {cpu_line}")
    print(f"  receiver totals: {stats['requests']} requests, {stats['accepted']} accepted", flush=True)
    return rate >= DELIVERIES_TARGET and complete


# --- (2) one alert to 500 feed clients ---------------------------------------------------------------------------

def alert_event(n: int) -> Any:
    from services.notify.templating.samples import sample
    from shared.events.catalog import AlertRaised
    from shared.events.envelope import Envelope

    base = sample(AlertRaised)
    assert isinstance(base, AlertRaised)
    case_no = f"BENCHFAN-{n:04d}"
    payload = base.model_copy(update={"alert": base.alert.model_copy(update={
        "id": n, "center_id": CENTRE, "kind": "overdue", "level": "red", "status": "raised", "raised_at": clock.now(),
        "text": f"办件 {case_no} 已超过承诺时限", "case_no": case_no, "window": WINDOW, "handler": None})})
    return Envelope.wrap("monitor", payload, subject=f"case:{case_no}", center_id=CENTRE).model_copy(
        update={"sequence": n})


async def bench_fanout(pg: EmbeddedPostgres, kafka: EmbeddedKafka, opts: argparse.Namespace) -> bool:
    from services.notify import consumers, planner

    url = await notify_database(pg, "feed")
    settings = notify_settings(url, kafka)
    planner.configure(settings)
    handler = next(spec for spec in consumers.CONSUMERS if spec.name == "monitor").handlers["alert.raised"]
    env = {**os.environ, "NOTIFY_DATABASE_URL": url, "NOTIFY_MIGRATE_ON_START": "false",
           "HALL_KAFKA_BOOTSTRAP": kafka.bootstrap, "HALL_LOG_LEVEL": "WARNING",
           "WORKER_HEALTH_PORT": str(free_port()), "WORKER_HEALTH_HOST": "127.0.0.1"}
    port = free_port()
    arrivals: dict[int, dict[int, float]] = {}
    status: dict[str, str] = {}

    def on_client_line(line: str) -> None:
        kind, *rest = line.split()
        if kind == "got":
            arrivals.setdefault(int(rest[0]), {}).setdefault(int(rest[1]), float(rest[2]))
        elif kind == "connected":
            status["connected"] = line
        elif kind in ("failed", "closed"):
            status.setdefault(kind, line)

    worker = app = clients = None
    engine = make_engine(url, application_name="bench-notify-alerts")
    sessions = make_sessionmaker(engine)
    committed: dict[int, float] = {}

    def everyone(n: int) -> bool:
        return len(arrivals.get(n, {})) >= connected

    async def commit(n: int) -> None:
        async with sessions() as session:
            async with session.begin():
                await handler(session, alert_event(n))
            committed[n] = clock.monotonic()

    try:
        worker = await spawn([sys.executable, "-m", "services.notify.worker"], env, capture=False)
        app = await spawn([sys.executable, "-m", "uvicorn", "--factory", "services.notify.main:create_app",
                           "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
                           "--timeout-graceful-shutdown", "5", "--log-level", "warning"], env, capture=False)
        async with httpx.AsyncClient(timeout=2) as http:
            deadline = clock.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                if clock.monotonic() > deadline or app.process.returncode is not None:
                    raise RuntimeError("the notify app did not start")
                await asyncio.sleep(0.2)
        clients = await spawn([sys.executable, SCRIPT, "--role", "clients", "--port", str(port),
                               "--clients", str(opts.clients)], on_line=on_client_line)
        await until(lambda: "connected" in status, 120, "every client connected")
        print(f"  {status['connected']} (clients on {FEED})", flush=True)
        connected = int(status["connected"].split()[1])
        if worker.process.returncode is not None:
            raise RuntimeError(f"the notify worker exited with {worker.process.returncode}")
        pids = {"app": app.process.pid, "clients": clients.process.pid, "worker": worker.process.pid,
                "bench": os.getpid(), "postgres": postgres_pid(pg)}
        # warm-up: until the relay has the topic and the feed reads it, the first message waits for both
        await commit(0)
        await until(partial(everyone, 0), 60, "the warm-up alert at every client")
        await asyncio.sleep(1.0)
        cpu = CpuMeter(pids)
        for n in range(1, opts.rounds + 1):
            await commit(n)
            await until(partial(everyone, n), 30, f"round {n}'s alert at every client")
            await asyncio.sleep(opts.pause)
        cpu_line = cpu.line()
    finally:
        await engine.dispose()
        await stop_child(clients)
        await stop_child(app)
        await stop_child(worker)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        posted = await conn.fetchval("SELECT count(*) FROM outbox WHERE type = 'delivery.feed_posted'")
        feed_rows = await conn.fetchval("SELECT count(*) FROM deliveries WHERE channel = 'feed' AND status = 'sent'")
    finally:
        await conn.close()
    print(f"fan-out: one overdue alert a round -> planner (one transaction) -> outbox -> the worker's relay -> "
          f"broker -> the notify app's feed (uvicorn process) -> {connected} SSE clients (a process of their own); "
          f"{posted} delivery.feed_posted in the outbox, {feed_rows} feed deliveries")
    worst = 0.0
    pooled: list[float] = []
    for n in range(1, opts.rounds + 1):
        ms = sorted((t - committed[n]) * 1000 for t in arrivals[n].values())
        pooled.extend(ms)
        p99 = percentile(ms, 0.99)
        worst = max(worst, p99)
        print(f"  round {n}: {len(ms)} clients  first {ms[0]:6.1f} ms  p50 {percentile(ms, 0.5):6.1f} ms  "
              f"p99 {p99:6.1f} ms  max {ms[-1]:6.1f} ms  (spread first -> last {ms[-1] - ms[0]:5.1f} ms)")
    pooled.sort()
    print(f"  all {len(pooled)} arrivals: p50 {percentile(pooled, 0.5):.1f} ms  p99 {percentile(pooled, 0.99):.1f} ms"
          f"  max {pooled[-1]:.1f} ms; cores busy over the rounds (incl. pauses): {cpu_line}")
    complete = connected == opts.clients and "failed" not in status and "closed" not in status
    if not complete:
        print(f"  NOT every client stayed connected: {status}")
    print(f"  commit -> frame at the client, worst p99 of {opts.rounds} rounds {worst:.1f} ms (target p99 <= "
          f"{FANOUT_P99_MS:.0f} ms; ratio {worst / FANOUT_P99_MS:.2f}) {verdict(worst <= FANOUT_P99_MS and complete)}",
          flush=True)
    return worst <= FANOUT_P99_MS and complete


# --- the run -----------------------------------------------------------------------------------------------------

async def run(opts: argparse.Namespace, pg: EmbeddedPostgres, kafka: EmbeddedKafka) -> int:
    results: dict[str, bool] = {}
    skip = set(filter(None, (opts.skip or "").split(",")))
    print(f"notify bench on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    if "webhook" not in skip:
        results["webhook"] = await bench_webhook(pg, kafka, opts)
    if "fanout" not in skip:
        results["fanout"] = await bench_fanout(pg, kafka, opts)
    print("summary: " + ", ".join(f"{name} {verdict(ok)}" for name, ok in results.items()))
    return 0 if all(results.values()) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--role", choices=["receiver", "clients"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--deliveries", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between fan-out rounds")
    parser.add_argument("--skip", help="comma-separated: webhook, fanout")
    args = parser.parse_args()
    if args.role == "receiver":
        asyncio.run(role_receiver(args))
        return 0
    if args.role == "clients":
        asyncio.run(role_clients(args))
        return 0
    os.environ.update(devsecrets.generate())  # the app's, the worker's and the clients' settings read them
    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    pg = EmbeddedPostgres(var / f"bench-notify-pg-{os.getpid()}", free_port(), fast_unsafe=True)
    kafka = EmbeddedKafka(free_port(), var / "bench-notify-kafka.log")

    def terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    try:
        pg.start()
        kafka.start()
        return asyncio.run(run(args, pg, kafka))
    except KeyboardInterrupt:
        return 130
    finally:
        kafka.stop(kill=True)
        pg.destroy()


if __name__ == "__main__":
    sys.exit(main())
