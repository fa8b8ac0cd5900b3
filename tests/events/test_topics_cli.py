"""`python -m shared.events.kafka ensure-topics`, what compose's `topics` service and Kubernetes' `hall-topics` Job
run: every topic with its declared partitions on an empty broker, then nothing more on a second run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from shared.devinfra.kafka import EmbeddedKafka
from shared.devinfra.postgres import free_port
from shared.events.kafka import new_admin
from shared.events.topics import TOPICS
from tests.conftest import ROOT


def _run(bootstrap: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HALL_KAFKA_BOOTSTRAP": bootstrap, "HALL_KAFKA_REPLICATION_FACTOR": "1"}
    return subprocess.run([sys.executable, "-m", "shared.events.kafka", "ensure-topics"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


async def _partitions(bootstrap: str) -> dict[str, int]:
    admin = new_admin(bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([t.name for t in TOPICS.values()])
        return {d["topic"]: len(d["partitions"]) for d in described}
    finally:
        await admin.close()


def test_ensure_topics_creates_every_topic_with_its_partitions_once():
    broker = EmbeddedKafka(free_port(), ROOT / "var" / f"test-topics-cli-{os.getpid()}.log")
    broker.start()
    try:
        first, second = _run(broker.bootstrap), _run(broker.bootstrap)
        partitions = asyncio.run(_partitions(broker.bootstrap))
    finally:
        broker.stop()
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("(created)") == len(TOPICS)
    assert second.returncode == 0 and "(created)" not in second.stdout, second.stdout
    assert partitions == {t.name: t.partitions for t in TOPICS.values()}
    refused = subprocess.run([sys.executable, "-m", "shared.events.kafka"], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2 and "usage" in refused.stderr
