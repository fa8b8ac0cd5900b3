"""Relays as separate processes: a relay SIGKILLed between the broker's acknowledgement and marking the
rows sent re-sends them on restart; of two relays only the leader publishes, and when it is killed the
other takes over; the worker process answers its health checks and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx
import pytest

from shared.devinfra.postgres import free_port
from shared.events.envelope import Envelope, EventData
from shared.events.outbox import publish
from tests.events.relay_proc import APP_PREFIX, LEADER_SQL, make_topic, read_topic

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
BACKLOG_ZERO = 'hall_outbox_backlog{service="queue"} 0.0'


class Noted(EventData):
    type: Literal["test.noted"] = "test.noted"
    n: int


class Processes:
    """Child processes of one test, killed at its end whatever happened."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"proc-{len(self.procs)}.log", "wb")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def relay(self, db, kafka, topic, *, crash_after_send: bool = False) -> subprocess.Popen[bytes]:
        args = ["-m", "tests.events.relay_proc", "--url", db.url, "--bootstrap", kafka.bootstrap,
                "--topic", topic.name, "--partitions", str(topic.partitions)]
        return self.start(args + (["--crash-after-send"] if crash_after_send else []))

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.log_dir.glob("proc-*.log")))

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


@pytest.fixture
def processes(tmp_path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.kill_all()


@pytest.fixture
def topic():
    return make_topic(f"test.relayproc.{uuid.uuid4().hex[:12]}")


async def publish_many(sessions, count: int, start: int = 0) -> list[Envelope]:
    published = []
    for n in range(start, start + count):
        async with sessions() as session, session.begin():
            centre = f"32010{n % 3}"
            published.append(await publish(session, "queue", Noted(n=n), subject=f"t{n}", center_id=centre))
    return published


async def eventually(check, within: float = 15.0, what: str = "condition", processes=None) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{processes.logs() if processes else ''}")
        await asyncio.sleep(0.05)


async def unsent(db) -> int:
    return (await db.fetch("SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL"))[0]["n"]


async def leader_pid(db) -> int | None:
    rows = await db.fetch(LEADER_SQL)
    return int(rows[0]["application_name"].removeprefix(APP_PREFIX)) if rows else None


async def wait_exit(proc: subprocess.Popen[bytes], within: float = 15.0) -> int:
    return await asyncio.wait_for(asyncio.to_thread(proc.wait), within)


async def test_relay_killed_after_the_send_resends_on_restart(queue_db, sessions, kafka, topic, processes):
    published = await publish_many(sessions, 5)

    crashing = processes.relay(queue_db, kafka, topic, crash_after_send=True)
    assert await wait_exit(crashing) == -signal.SIGKILL, processes.logs()
    assert await unsent(queue_db) == 5  # acknowledged by the broker, never marked
    first = await read_topic(kafka.bootstrap, topic, expected=5)
    assert Counter(m.envelope["id"] for m in first) == {str(e.id): 1 for e in published}

    survivor = processes.relay(queue_db, kafka, topic)
    await eventually(lambda: _zero(unsent(queue_db)), what="the restarted relay to send", processes=processes)
    messages = await read_topic(kafka.bootstrap, topic, expected=10)
    survivor.send_signal(signal.SIGTERM)
    assert await wait_exit(survivor) == 0, processes.logs()

    assert Counter(m.envelope["id"] for m in messages) == {str(e.id): 2 for e in published}
    for event in published:
        copies = [m for m in messages if m.envelope["id"] == str(event.id)]
        assert copies[0].value == copies[1].value  # the same event: same id, same sequence
        assert copies[0].envelope["sequence"] == event.sequence


async def test_two_relays_publish_each_event_once_and_the_other_takes_over(
        queue_db, sessions, kafka, topic, processes):
    relays = [processes.relay(queue_db, kafka, topic) for _ in range(2)]
    pids = {p.pid for p in relays}
    await eventually(lambda: _truthy(leader_pid(queue_db)), what="a leader", processes=processes)
    first = await publish_many(sessions, 30)
    await eventually(lambda: _zero(unsent(queue_db)), what="the first events", processes=processes)

    leader = await leader_pid(queue_db)
    assert leader in pids
    os.kill(leader, signal.SIGKILL)
    [other] = pids - {leader}

    async def other_leads() -> bool:
        return await leader_pid(queue_db) == other
    await eventually(other_leads, within=10, what="the other relay to take over", processes=processes)
    rest = await publish_many(sessions, 20, start=30)
    await eventually(lambda: _zero(unsent(queue_db)), what="the rest", processes=processes)
    messages = await read_topic(kafka.bootstrap, topic, expected=50, settle=0.5)

    assert Counter(m.envelope["id"] for m in messages) == {str(e.id): 1 for e in first + rest}
    [survivor] = [p for p in relays if p.pid == other]
    survivor.send_signal(signal.SIGTERM)
    assert await wait_exit(survivor) == 0, processes.logs()


async def test_worker_answers_health_readiness_metrics_and_stops_on_sigterm(queue_db, kafka, processes, secrets):
    port = free_port()
    env = {**os.environ, "QUEUE_DATABASE_URL": queue_db.url, "QUEUE_MIGRATE_ON_START": "false",
           "HALL_KAFKA_BOOTSTRAP": kafka.bootstrap, "WORKER_HEALTH_PORT": str(port),
           "WORKER_HEALTH_HOST": "127.0.0.1"}
    worker = processes.start(["-m", "services.queue.worker"], env=env)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        async def answers() -> bool:
            try:
                leads = (await client.get("/readyz")).json().get("relay") == "leader"
                return leads and BACKLOG_ZERO in (await client.get("/metrics")).text
            except httpx.HTTPError:
                return False
        await eventually(answers, what="the worker to be ready", processes=processes)
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        metrics = await client.get("/metrics")

    assert health.json() == {"status": "ok", "service": "queue"}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "service": "queue", "database": "ok", "broker": "ok",
                            "relay": "leader"}
    assert BACKLOG_ZERO in metrics.text and "hall_relay_published_total" in metrics.text
    worker.send_signal(signal.SIGTERM)
    assert await wait_exit(worker) == 0, processes.logs()


async def _zero(count) -> bool:
    return await count == 0


async def _truthy(value) -> bool:
    return bool(await value)
