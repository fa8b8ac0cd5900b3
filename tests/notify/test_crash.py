"""A dispatcher killed mid-batch (SIGKILL, its own process) and a second one taking over: every message is
delivered, none twice in effect. The only repeats the receiver sees are the sends that were in flight when
the process died, and they carry the same idempotency key, which the receiver (as a provider) drops."""

from __future__ import annotations

import asyncio
import collections
import signal
import subprocess
import sys
from pathlib import Path

from shared import clock
from tests.notify.support import CENTRE, notify
from tests.notify.test_delivery import _webhook, early_warning, envelope, local

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 300


async def _until(check, within: float, what: str) -> None:
    deadline = clock.monotonic() + within
    while not await check():
        if clock.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def test_a_dispatcher_killed_mid_batch_loses_nothing_and_sends_nothing_twice(
        service_client, fixed_clock, tokens, tmp_path):
    fixed_clock.set(local(2026, 12, 3, 10))  # deliveries due now by the fixed clock: long past by the wall clock
    admin = tokens.headers("center_admin", [CENTRE])
    async with notify(service_client) as n:
        await _webhook(n, admin)
        n.webhook.delay = 0.05
        for alert_id in range(1, MESSAGES + 1):
            await n.apply(envelope(early_warning(alert_id)))
        assert len(await n.deliveries(channel="webhook")) == MESSAGES

        def start(name: str) -> subprocess.Popen[bytes]:
            log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - owned by the child
            return subprocess.Popen([sys.executable, "-m", "tests.notify.dispatch_proc", "--url", n.db.url],
                                    cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

        first = start("first")
        try:
            async def some_sent() -> bool:
                return len(n.webhook.accepted) >= 80
            await _until(some_sent, 60, "the first dispatcher to send 80 messages")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        in_flight = await n.db.fetch("SELECT count(*) AS n FROM deliveries WHERE status = 'sending'")
        assert in_flight[0]["n"] > 0, "the kill did not land mid-batch"

        second = start("second")
        try:
            async def all_sent() -> bool:
                rows = await n.db.fetch("SELECT count(*) AS n FROM deliveries WHERE status = 'sent' AND channel = 'webhook'")
                return bool(rows[0]["n"] == MESSAGES)
            try:
                await _until(all_sent, 90, "every delivery sent")
            except AssertionError:
                states = await n.db.fetch("SELECT status, count(*) AS n, min(next_attempt_at) AS due, "
                                          "min(lease_until) AS lease FROM deliveries GROUP BY status")
                raise AssertionError(f"not all sent: {[dict(r) for r in states]}, now {clock.now()}") from None
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(20)

        keys = {str(r["key"]) for r in await n.deliveries(channel="webhook")}
        accepted = collections.Counter(m.key for m in n.webhook.accepted)
        assert set(accepted) == keys and set(accepted.values()) == {1}  # every message, each once
        repeats = {k for k, c in collections.Counter(r.idempotency_key for r in n.webhook.requests).items() if c > 1}
        interrupted = {str(r["key"]) for r in await n.db.fetch(
            "SELECT d.key FROM deliveries d JOIN delivery_attempts a ON a.delivery_id = d.id "
            "WHERE a.outcome = 'interrupted'")}
        assert interrupted, "no claim was interrupted"
        assert repeats <= interrupted  # only what was in flight at the kill was sent again
        # at most what was in flight and what was sent but not yet recorded: twice the concurrency
        assert len(n.webhook.requests) - MESSAGES <= 2 * 10
        for row in await n.deliveries(channel="webhook"):
            assert row["status"] == "sent" and row["provider_id"]
