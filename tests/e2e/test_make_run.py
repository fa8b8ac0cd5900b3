"""`make run`: the launcher starts PostgreSQL, the broker, every service and the gateway; all five answer
/healthz through the gateway; notify's development provider gets the e-mail and SMS of a subscription; SIGINT
leaves no process behind; a second start finds the data. It supervises: a killed broker comes back empty and
every write still reaches every read copy once; a killed service is restarted and healthy again."""

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from shared.auth import mint_token
from shared.devinfra.postgres import free_port
from shared.events.kafka import new_admin
from shared.events.topics import TOPICS

ROOT = Path(__file__).resolve().parents[2]


def _consecutive_free_ports(n: int) -> int:
    import socket

    for base in range(21000, 60000, 17):
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


class Launch:
    def __init__(self, var: Path) -> None:
        self.var = var
        self.gateway_port = free_port()
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("HALL_", "GATEWAY_", "NOTIFY_", "QUEUE_", "CASES_", "MONITOR_", "IDENTITY_"))}
        self.env.update({
            "HALL_DEV_VAR_DIR": str(var), "HALL_DEV_PG_PORT": str(free_port()),
            "HALL_DEV_KAFKA_PORT": str(free_port()), "HALL_DEV_GATEWAY_PORT": str(self.gateway_port),
            # queue, cases, monitor, notify, then the ports Envoy already routes identity and terminals to
            "HALL_DEV_FIRST_SERVICE_PORT": str(_consecutive_free_ports(6)),
            "WORKER_HEALTH_PORT_BASE": str(_consecutive_free_ports(6) + 6),
            "HALL_DEV_ENVOY_ADMIN_PORT": str(free_port()), "HALL_DEV_ENVOY_STATS_PORT": str(free_port()),
            "HALL_DEV_DEVPROVIDER_HTTP_PORT": str(free_port()), "HALL_DEV_DEVPROVIDER_SMTP_PORT": str(free_port()),
            "HALL_DEV_PROMETHEUS_PORT": str(free_port()),
        })
        self.proc: subprocess.Popen[bytes] | None = None
        self.tree: list[psutil.Process] = []
        self.lines: list[str] = []  # the launcher's output so far

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def devprovider(self) -> str:
        """The development SMS/e-mail provider's HTTP address (GET /sms, GET /mail)."""
        return f"http://127.0.0.1:{self.env['HALL_DEV_DEVPROVIDER_HTTP_PORT']}"

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "shared.devinfra.run"], cwd=ROOT, env=self.env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines = []
        threading.Thread(target=self._collect, args=(self.proc, self.lines), daemon=True).start()

    @staticmethod
    def _collect(proc: subprocess.Popen[bytes], lines: list[str]) -> None:
        assert proc.stdout
        for line in proc.stdout:
            lines.append(line.decode(errors="replace").rstrip("\n"))

    def wait_healthy(self, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            assert self.proc and self.proc.poll() is None, self.output()
            try:
                r = httpx.get(f"{self.url}/healthz", timeout=2)
                last = r.json()
                if r.status_code == 200:
                    return last
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"not healthy in {timeout}s: {last}")

    def wait_for_line(self, fragment: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines if fragment in line]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError(f"the launcher printed no line with {fragment!r} in {timeout}s:\n{self.output()}")

    def children(self) -> list[psutil.Process]:
        assert self.proc
        return psutil.Process(self.proc.pid).children(recursive=True)

    def child(self, *fragments: str) -> psutil.Process:
        """The launcher's one descendant whose command line holds every fragment."""
        found = []
        for process in self.children():
            try:
                if all(f in process.cmdline() for f in fragments):
                    found.append(process)
            except psutil.Error:
                continue  # gone meanwhile
        assert len(found) == 1, [p.pid for p in found]
        return found[0]

    def envoy(self) -> psutil.Process:
        """The gateway: Envoy running the configuration rendered into var/envoy/."""
        return self.child(str(self.var / "envoy" / "envoy.yaml"))

    def database(self, service: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.env['HALL_DEV_PG_PORT']}/hall_{service}"

    def record_tree(self) -> None:
        assert self.proc
        self.tree = self.children()
        pid_file = self.var / "pg" / "postmaster.pid"
        postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
        self.tree += [postmaster, *postmaster.children(recursive=True)]

    def interrupt(self) -> int:
        assert self.proc
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(90)

    def survivors(self, grace: float = 10) -> list[list[str]]:
        """Processes of the recorded tree still alive `grace` seconds after the launcher returned."""
        deadline = time.monotonic() + grace
        while True:
            alive = [p for p in self.tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
            if not alive or time.monotonic() > deadline:
                return [p.cmdline() for p in alive]
            time.sleep(0.2)

    def output(self) -> str:
        return "\n".join(self.lines)

    def token(self) -> str:
        key = json.loads((self.var / "secrets" / "dev.json").read_text())["GATEWAY_JWT_PRIVATE_KEY"]
        return mint_token(key, subject="smoke", role="system_admin", centers=["*"])

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}


@contextlib.contextmanager
def running_hall(name: str, env: dict[str, str], timeout: float = 180) -> Iterator[Launch]:
    """A launched hall under var/test-<name>-<pid> with `env` added, healthy; stopped and removed after (what a
    dead launcher left behind is killed)."""
    var = ROOT / "var" / f"test-{name}-{os.getpid()}"
    shutil.rmtree(var, ignore_errors=True)
    run = Launch(var)
    run.env.update(env)
    run.start()
    try:
        run.wait_healthy(timeout)
        yield run
    finally:
        try:
            run.record_tree()
            run.interrupt()
        except Exception:  # noqa: BLE001 - a launcher that died already: kill what is left
            if run.proc is not None:
                run.proc.kill()
        for process in run.tree:
            if process.is_running():
                with contextlib.suppress(psutil.Error):
                    process.kill()
        shutil.rmtree(var, ignore_errors=True)


@pytest.fixture
def launch(request):
    # under the checkout's var/, not pytest's tmp_path: the embedded server runs as the `pgserver` user, and
    # another pytest session on the machine resets /tmp/pytest-of-root to 0700 under it
    var = ROOT / "var" / f"test-e2e-{os.getpid()}-{request.node.name[:40]}"
    shutil.rmtree(var, ignore_errors=True)
    run = Launch(var)
    yield run
    if run.proc and run.proc.poll() is None:  # a test that failed half-way: stop the hall it started
        try:
            run.record_tree()
            run.interrupt()
        except (psutil.Error, subprocess.TimeoutExpired, OSError):
            run.proc.kill()
    for p in run.tree:
        if p.is_running():
            p.kill()
    shutil.rmtree(var, ignore_errors=True)


def _subscribe(gateway: str, headers: dict[str, str], kind: str, address: str) -> int:
    """An extra recipient of every centre, subscribed to center.upserted on its channel; its id."""
    created = httpx.post(f"{gateway}/api/notify/recipients", headers=headers, timeout=10,
                         json={"kind": kind, "name": f"值班{kind}", "address": address})
    assert created.status_code == 201, created.text
    recipient = created.json()["id"]
    subscribed = httpx.post(f"{gateway}/api/notify/subscriptions", headers=headers, timeout=10,
                            json={"recipient_id": recipient, "event_types": ["center.upserted"], "channel": kind})
    assert subscribed.status_code == 201, subscribed.text
    return int(recipient)


def _listed(url: str, timeout: float = 60) -> list[dict]:
    """What the development provider lists at `url`, once it lists something."""
    deadline = time.monotonic() + timeout
    while True:
        listed = httpx.get(url, timeout=5).raise_for_status().json()
        if listed or time.monotonic() > deadline:
            return listed
        time.sleep(0.3)


def test_make_run_starts_everything_stops_cleanly_and_keeps_data(launch):
    # no SMS quiet hours (22:00-08:00 would hold the SMS below till morning): the same outcome at any hour
    launch.env.update({"NOTIFY_QUIET_START": "00:00", "NOTIFY_QUIET_END": "00:00"})
    launch.start()
    health = launch.wait_healthy()
    assert health == {"status": "ok", "service": "gateway"}  # Envoy: every service passes its health checks
    assert launch.envoy().cmdline()[0].endswith("envoy/_bin/envoy")  # the gateway is the wheel's Envoy
    for service in ("queue", "cases", "monitor", "notify"):
        r = httpx.get(f"{launch.url}/api/{service}/healthz", headers=launch.auth(), timeout=5)
        assert r.json() == {"status": "ok", "service": service}
    # the gateway checks tokens with the development key's public half
    refused = httpx.get(f"{launch.url}/api/queue/healthz", timeout=5)
    assert refused.status_code == 401 and refused.json()["code"] == "missing_token"
    # the demo system admin make run creates on its first start, logged in through the gateway as printed
    demo = json.loads((launch.var / "secrets" / "demo-admin.json").read_text())
    assert f'"password": "{demo["password"]}"' in launch.output()
    login = httpx.post(f"{launch.url}/api/auth/login", timeout=10,
                       json={"username": demo["username"], "password": demo["password"]})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

    # the development SMS/e-mail provider: up before notify, empty, its listings printed, notify pointed at it
    provider = launch.devprovider
    assert httpx.get(f"{provider}/healthz", timeout=5).json() == {"status": "ok", "service": "notify-devprovider"}
    assert httpx.get(f"{provider}/sms", timeout=5).json() == []
    assert httpx.get(f"{provider}/mail", timeout=5).json() == []
    printed = launch.wait_for_line("  devprovider ")
    assert f"{provider}/sms" in printed and f"{provider}/mail" in printed, printed
    worker_env = launch.child("services.notify.worker").environ()
    assert (worker_env["NOTIFY_SMS__PROVIDER"], worker_env["NOTIFY_SMS__URL"]) == ("dev", f"{provider}/sms")
    ca_file = Path(worker_env["NOTIFY_SMTP__CA_FILE"])
    assert ca_file == launch.var / "devprovider" / "smtp-cert.pem" and ca_file.is_file()
    # end to end: the admin subscribes a mailbox and a phone to center.upserted; creating a centre sends both
    # through the worker to the provider, the e-mail over STARTTLS checked against that certificate
    mail_recipient = _subscribe(launch.url, headers, "email", "duty.office@example.org")
    sms_recipient = _subscribe(launch.url, headers, "sms", "13912345678")

    created = httpx.post(f"{launch.url}/api/queue/centers", json={"id": "320102", "name": "玄武区政务服务中心"},
                         headers=headers, timeout=10)
    assert created.status_code == 201, created.text
    mails, texts = _listed(f"{provider}/mail"), _listed(f"{provider}/sms")
    assert [(m["to_masked"], "center.upserted" in m["subject"], "玄武区政务服务中心" in m["body"]) for m in mails] \
        == [("d***@example.org", True, True)], mails
    assert [(t["to_masked"], t["template_key"], "center.upserted" in t["text"]) for t in texts] \
        == [("139****5678", "generic_sms", True)], texts
    # notify records the provider's id once it answered: one delivery each, sent at the first attempt
    expected = sorted([(mail_recipient, "email", "sent", mails[0]["id"], 1),
                       (sms_recipient, "sms", "sent", texts[0]["id"], 1)])
    deadline = time.monotonic() + 30
    while True:
        deliveries = httpx.get(f"{launch.url}/api/notify/deliveries", headers=headers, timeout=10).json()
        recorded = sorted((d["recipient_id"], d["channel"], d["status"], d["provider_id"], len(d["attempt_log"]))
                          for d in deliveries if d["recipient_id"] in (mail_recipient, sms_recipient))
        if recorded == expected or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert recorded == expected, deliveries
    launch.record_tree()
    assert len(launch.tree) >= 6  # five servers, and postgres with its helpers at least

    assert launch.interrupt() == 0
    left = launch.survivors()
    assert left == [], left
    # the provider was stopped by SIGTERM and shut down (not killed): its log says so
    assert "devprovider_stopped" in (launch.var / "log" / "notify-devprovider.log").read_text()

    launch.start()
    launch.wait_healthy()
    # a new provider process, on a new certificate, empty again (it keeps its messages in memory)
    assert httpx.get(f"{provider}/mail", timeout=5).json() == []
    again = httpx.get(f"{launch.url}/api/queue/centers/320102", headers={"Authorization": f"Bearer {launch.token()}"},
                      timeout=10)
    assert again.status_code == 200 and again.json()["name"] == "玄武区政务服务中心"
    launch.record_tree()
    assert launch.interrupt() == 0


def _post_center(client: httpx.Client, center_id: str) -> None:
    """Create a centre through the gateway, retrying (same Idempotency-Key) while a process restarts."""
    deadline = time.monotonic() + 30
    while True:
        try:
            r = client.post("/api/queue/centers", json={"id": center_id, "name": f"中心 {center_id}"},
                            headers={"Idempotency-Key": f"create-{center_id}"})
            if r.status_code == 201:
                return
            problem = r.text
        except httpx.HTTPError as exc:
            problem = repr(exc)
        assert time.monotonic() < deadline, f"centre {center_id} not created in 30s: {problem}"
        time.sleep(0.2)


def _copies(client: httpx.Client, ids: set[str]) -> dict[str, list[str]]:
    """The ids of `ids` each read copy holds, as its API lists them (repeats would show)."""
    held = {}
    for service in ("cases", "monitor", "notify"):
        try:
            r = client.get(f"/api/{service}/centers")
            held[service] = [c["id"] for c in r.json() if c["id"] in ids] if r.status_code == 200 else []
        except httpx.HTTPError:
            held[service] = []
    return held


async def _applied(launch: Launch, ids: list[str]) -> tuple[dict[str, int], dict[str, tuple[list, list]]]:
    """What the databases say: the queue's center.upserted events of `ids` (centre -> outbox sequence), and
    per read copy its rows (centre, sequence of the event applied) and how often each event is in its inbox."""
    queue = await asyncpg.connect(launch.database("queue"))
    try:
        events = await queue.fetch(
            "SELECT id, sequence, envelope->'data'->>'id' AS center FROM outbox "
            "WHERE type = 'center.upserted' AND envelope->'data'->>'id' = ANY($1::text[])", ids)
    finally:
        await queue.close()
    assert len(events) == len(ids), f"{len(events)} events for {len(ids)} writes"
    copies = {}
    for service in ("cases", "monitor", "notify"):
        conn = await asyncpg.connect(launch.database(service))
        try:
            rows = await conn.fetch("SELECT id, last_event_sequence FROM centers WHERE id = ANY($1::text[])", ids)
            # the centres' consumer's inbox (another consumer of the queue topic records the same events in its
            # own: the monitor's hall consumer ignores center.upserted, but claims it as seen)
            inbox = await conn.fetch("SELECT event_id, count(*) AS n FROM inbox WHERE event_id = ANY($1::uuid[]) "
                                     "AND consumer = $2 GROUP BY event_id", [e["id"] for e in events],
                                     f"{service}.centers")
        finally:
            await conn.close()
        copies[service] = (sorted((r["id"], r["last_event_sequence"]) for r in rows), [r["n"] for r in inbox])
    return {e["center"]: e["sequence"] for e in events}, copies


def _wait_for_copies(client: httpx.Client, ids: list[str], timeout: float) -> dict[str, list[str]]:
    deadline = time.monotonic() + timeout
    held = _copies(client, set(ids))
    while any(len(set(copy)) < len(ids) for copy in held.values()) and time.monotonic() < deadline:
        time.sleep(0.5)
        held = _copies(client, set(ids))
    return held


async def _partitions(bootstrap: str) -> dict[str, int]:
    admin = new_admin(bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([t.name for t in TOPICS.values()])
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described if not t["error_code"]}


def test_a_killed_broker_comes_back_and_every_write_reaches_every_read_copy_once(launch):
    launch.start()
    launch.wait_healthy()
    tag = uuid.uuid4().hex[:6]
    ids = [f"k{tag}{n:03d}" for n in range(60)]
    broker = launch.child("broker", "--cluster-id")
    with httpx.Client(base_url=launch.url, timeout=10,
                      headers={"Authorization": f"Bearer {launch.token()}"}) as client:
        for center_id in ids[:10]:
            _post_center(client, center_id)
        # delivered before the kill: the relays' re-send brings these again, and the inbox must drop them
        assert all(len(c) == 10 for c in _wait_for_copies(client, ids[:10], 60).values())
        for center_id in ids[10:20]:
            _post_center(client, center_id)
        broker.kill()  # kill -9, with the last writes still in flight
        for center_id in ids[20:40]:
            _post_center(client, center_id)  # accepted while the broker is away: the outbox holds them
        launch.wait_for_line("kafka restarted (pid")
        for center_id in ids[40:]:
            _post_center(client, center_id)
        held = _wait_for_copies(client, ids, 90)
    for service, copy in held.items():
        assert sorted(copy) == ids, f"{service} holds {len(set(copy))} of {len(ids)} centres ({len(copy)} rows)"

    exit_line = launch.wait_for_line("kafka exited with -9")
    assert "restarting in 0.5 s" in exit_line and "kafka.log" in exit_line, exit_line
    assert launch.child("broker", "--cluster-id").pid != broker.pid
    assert "relay_resend" in (launch.var / "log" / "queue-worker.log").read_text()
    events, copies = asyncio.run(_applied(launch, ids))
    assert sorted(events) == ids  # one event per write
    for service, (rows, inbox) in copies.items():
        # each centre once, from its own event; each event applied (claimed in the inbox) once
        assert rows == sorted(events.items()), service
        assert inbox == [1] * len(ids), service
    # the new broker got every topic with its declared partitions (not Tansu's auto-created 4)
    bootstrap = f"127.0.0.1:{launch.env['HALL_DEV_KAFKA_PORT']}"
    assert asyncio.run(_partitions(bootstrap)) == {t.name: t.partitions for t in TOPICS.values()}
    assert httpx.get(f"{launch.url}/healthz", timeout=5).status_code == 200

    launch.record_tree()
    assert launch.interrupt() == 0
    left = launch.survivors()
    assert left == [], f"{left}\n{launch.output()}"


def test_a_killed_service_is_restarted_and_healthy_again_while_the_rest_keep_serving(launch):
    launch.start()
    launch.wait_healthy()
    cases = launch.child("services.cases.main:create_app")
    cases.kill()
    cases.wait(10)

    line = launch.wait_for_line("cases restarted (pid")
    restarted = launch.child("services.cases.main:create_app")
    assert restarted.pid != cases.pid and f"(pid {restarted.pid})" in line
    exit_line = launch.wait_for_line("cases exited with -9")
    assert "restarting in 0.5 s" in exit_line and "cases.log" in exit_line, exit_line
    assert httpx.get(f"{launch.url}/api/queue/healthz", headers=launch.auth(), timeout=5
                     ).status_code == 200  # the rest kept serving

    deadline = time.monotonic() + 45
    status = None
    while time.monotonic() < deadline:
        try:
            status = httpx.get(f"{launch.url}/api/cases/healthz", headers=launch.auth(), timeout=2).status_code
        except httpx.HTTPError as exc:
            status = repr(exc)
        if status == 200:
            break
        time.sleep(0.3)
    assert status == 200, f"cases not healthy again within 45s: {status}"
    launch.wait_healthy(30)

    envoy = launch.envoy()
    envoy.kill()
    envoy.wait(10)
    launch.wait_for_line("gateway restarted (pid")
    assert launch.envoy().pid != envoy.pid
    assert launch.wait_healthy(30) == {"status": "ok", "service": "gateway"}

    launch.record_tree()
    assert launch.interrupt() == 0
    left = launch.survivors()
    assert left == [], f"{left}\n{launch.output()}"
