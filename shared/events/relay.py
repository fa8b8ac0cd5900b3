"""The outbox relay: publishes each service's committed outbox rows to Kafka, in sequence order, at least once.

How it works
- One leader per service database: a session-level `pg_try_advisory_lock` held on the relay's own
  connection (the same connection reads and marks the rows, so a relay that lost its lock can no
  longer mark anything). Other instances retry every `leader_retry` seconds; when the leader's
  connection dies PostgreSQL drops the lock and one of them takes over.
- It wakes on `NOTIFY hall_outbox` (sent by `publish()` at commit) and polls every `poll_interval` in
  case a notification was missed (e.g. while it reconnected).
- Order: sequences are taken before commit, so a later sequence can commit first. Before reading, the
  relay takes a horizon: the highest sequence handed out so far, and waits until every transaction
  then writing to the outbox has ended; rows up to the horizon can no longer be undercut, so Kafka
  receives them in sequence order (globally, hence per key). A writer stuck longer than
  `horizon_timeout` is logged and no longer waited for.
- A batch is sent with acks="all", every acknowledgement awaited, and only then marked `sent_at` in one
  UPDATE (only the acknowledged prefix if a send fails). A crash between acknowledgement and UPDATE
  re-sends the batch: consumers record event ids and ignore repeats. While the broker is away, sends
  are retried with exponential backoff (capped at `max_backoff`). After a failed send a key may see an
  event again behind later ones (the broker has no idempotent producer); the repeat carries the same
  id and sequence, so consumers skip it.
- Pruning: sent rows older than `retention` (by the shared clock) are deleted, except the latest row
  of each `reference_key` (reference data, e.g. `center:320102`), which is kept for ever.

Broker restarts (what this relies on)
The embedded broker (Tansu) keeps everything in memory and starts with a fresh cluster id. The relay
keeps the cluster id it last published to in `platform_state` (`relay.cluster_id`) and compares it with
the broker's on start, every `cluster_check_interval` and after any send error. On a change, or when
its topic is missing, it (re)creates the topic (dropping a copy the broker auto-created with the wrong
partition count since the restart: it can only hold this relay's own re-sendable rows), marks every
retained row unsent and records the new id in the same transaction, so every retained event is sent
again in its original order, and a relay that dies half-way leaves the rest to the next leader. What
was pruned before the restart is not re-sent: consumers rebuild reference data from the rows kept for
ever. With a durable Kafka cluster the id never changes and the topics stay, so nothing is ever re-sent
this way; the check then costs one metadata request every couple of seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge

from shared import clock
from shared.db import advisory_key, asyncpg_dsn
from shared.events.envelope import Envelope
from shared.events.kafka import cluster_id, ensure_topics, missing_topics, new_admin
from shared.events.outbox import NOTIFY_CHANNEL
from shared.events.topics import Topic, topic_for
from shared.waiting import Backoff, pause

log = logging.getLogger("shared.events.relay")

CLUSTER_STATE_KEY = "relay.cluster_id"

BACKLOG = Gauge("hall_outbox_backlog", "Outbox rows not yet acknowledged by the broker", ["service"])
PUBLISHED = Counter("hall_relay_published_total", "Outbox rows acknowledged by the broker", ["service"])
FAILED = Counter("hall_relay_failed_total", "Outbox rows whose send failed (they are retried)", ["service"])
RESENDS = Counter("hall_relay_resends_total",
                  "Sent outbox rows queued again because the broker lost them (new cluster id)", ["service"])

AfterSend = Callable[[list[int]], Awaitable[None] | None]
_BROKER_ERRORS = (KafkaError, TimeoutError)

_UNSENT = """
    SELECT sequence, topic, key, type, envelope FROM outbox
    WHERE sent_at IS NULL AND sequence <= $1 ORDER BY sequence LIMIT $2
"""
_MARK_SENT = "UPDATE outbox SET sent_at = $1 WHERE sequence = ANY($2::bigint[])"
_BACKLOG = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
# transactions of this database holding the outbox's write lock (taken before they draw a sequence)
_WRITERS = """
    SELECT DISTINCT virtualtransaction FROM pg_locks
    WHERE locktype = 'relation' AND relation = 'outbox'::regclass AND mode = 'RowExclusiveLock'
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND pid <> pg_backend_pid()
"""
_PRUNE = """
    DELETE FROM outbox WHERE sequence IN (
        SELECT o.sequence FROM outbox AS o
        WHERE o.sent_at IS NOT NULL AND o.created_at < $1
          AND (o.reference_key IS NULL
               OR EXISTS (SELECT 1 FROM outbox AS newer
                          WHERE newer.reference_key = o.reference_key AND newer.sequence > o.sequence))
        ORDER BY o.sequence LIMIT $2)
"""


async def prune_outbox(conn: asyncpg.Connection, *, older_than: datetime, chunk: int = 5000) -> int:
    """Delete sent rows created before `older_than`, keeping the latest row of every reference_key."""
    deleted = 0
    while True:
        status = await conn.execute(_PRUNE, older_than, chunk)
        count = int(status.split()[-1])
        deleted += count
        if count < chunk:
            return deleted


def message_value(envelope_json: str, sequence: int) -> bytes:
    """The Kafka value: the envelope as `Envelope.model_dump_json()`, carrying the row's sequence."""
    envelope = Envelope.model_validate_json(envelope_json)
    if envelope.sequence != sequence:
        envelope = envelope.model_copy(update={"sequence": sequence})
    return envelope.model_dump_json().encode()


@dataclass
class _Broker:
    admin: AIOKafkaAdminClient
    producer: AIOKafkaProducer

    async def close(self) -> None:
        for closing in (self.producer.stop, self.admin.close):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(closing(), 10)


class Relay:
    """The outbox relay of one service. `await relay.run(stop)` until `stop` is set.

    `topic` replaces the service's declared topic (tests give each run its own); `after_send` is called
    with the acknowledged sequences just before they are marked sent (a test hook for crashes).
    """

    def __init__(self, database_url: str, bootstrap: str, producer_name: str, *, topic: Topic | None = None,
                 retention: timedelta = timedelta(days=7), batch_size: int = 1000, poll_interval: float = 1.0,
                 leader_retry: float = 1.0, cluster_check_interval: float = 1.5, prune_interval: float = 60.0,
                 max_backoff: float = 5.0, request_timeout_ms: int = 5000, horizon_timeout: float = 5.0,
                 application_name: str | None = None, after_send: AfterSend | None = None,
                 replication_factor: int = 1) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.bootstrap = bootstrap
        self.replication_factor = replication_factor
        self.service = producer_name
        self.topic = topic or topic_for(producer_name)
        self._topic_override = topic is not None
        self.retention = retention
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.leader_retry = leader_retry
        self.cluster_check_interval = cluster_check_interval
        self.prune_interval = prune_interval
        self.max_backoff = max_backoff
        self.request_timeout_ms = request_timeout_ms
        self.horizon_timeout = horizon_timeout
        self.application_name = application_name or f"hall-relay-{producer_name}"
        self.after_send = after_send
        self._lock_key = advisory_key(f"hall:relay:{producer_name}")
        self._leader = False
        self._sequence_name = ""
        self._horizon_value: int | None = None
        self._stuck_writers: set[str] = set()

    @property
    def is_leader(self) -> bool:
        return self._leader

    # --- leadership -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(0.2, self.max_backoff)
        while not stop.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=5, server_settings={
                    "application_name": self.application_name, "timezone": "UTC"})
                if await self._acquire(conn, stop):
                    backoff.reset()
                    await self._lead(conn, stop)
            except Exception as exc:  # a relay never dies: log, back off, reconnect
                if stop.is_set():
                    break
                log.warning("relay stopped by an error (database away?); reconnecting",
                            extra={"event": "relay_db_error", "relay": self.service,
                                   "error": f"{type(exc).__name__}: {exc}"})
                await pause(stop, backoff.next())
            finally:
                self._leader = False
                if conn is not None:
                    await _close_quietly(conn)

    async def _acquire(self, conn: asyncpg.Connection, stop: asyncio.Event) -> bool:
        """Become the leader (True), or return False when asked to stop while waiting."""
        while not stop.is_set():
            if await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key):
                self._leader = True
                log.info("relay leads", extra={"event": "relay_leader", "relay": self.service})
                return True
            await pause(stop, self.leader_retry)
        return False

    async def _lead(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        wake = asyncio.Event()
        await conn.add_listener(NOTIFY_CHANNEL, lambda *_: wake.set())
        conn.add_termination_listener(lambda *_: wake.set())
        self._sequence_name = await conn.fetchval("SELECT pg_get_serial_sequence('outbox', 'sequence')")
        self._horizon_value = None
        broker: _Broker | None = None
        backoff = Backoff(0.1, self.max_backoff)
        next_check = next_prune = next_count = 0.0
        try:
            while not stop.is_set():
                wake.clear()
                if conn.is_closed():
                    raise ConnectionError("the relay's database connection closed")
                if clock.monotonic() >= next_prune:
                    await self.prune(conn)
                    next_prune = clock.monotonic() + self.prune_interval
                try:
                    if broker is None:
                        broker = await self._open_broker()
                        await self._check_cluster(conn, broker.admin)
                        next_check = clock.monotonic() + self.cluster_check_interval
                    elif clock.monotonic() >= next_check:
                        if await self._check_cluster(conn, broker.admin):
                            await broker.close()  # a new producer: the old one's metadata is of the lost cluster
                            broker = None
                            continue
                        next_check = clock.monotonic() + self.cluster_check_interval
                    drained = await self._relay_batch(conn, broker.producer)
                    backoff.reset()
                except _BROKER_ERRORS as exc:
                    delay = backoff.next()
                    log.warning("broker unavailable; retrying", extra={
                        "event": "relay_broker_error", "relay": self.service, "retry_in": delay,
                        "error": f"{type(exc).__name__}: {exc}"})
                    if broker is not None:
                        await broker.close()  # reopened, and the cluster id checked, on the next round
                        broker = None
                    await self._count_backlog(conn)
                    await pause(stop, delay)
                    continue
                if clock.monotonic() >= next_count:
                    await self._count_backlog(conn)
                    next_count = clock.monotonic() + 1.0
                if drained:
                    await pause(stop, self.poll_interval, wake)
        finally:
            if broker is not None:
                await broker.close()

    # --- publishing -------------------------------------------------------------------------------

    async def _open_broker(self) -> _Broker:
        admin = new_admin(self.bootstrap)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=False,
            request_timeout_ms=self.request_timeout_ms, max_batch_size=256 * 1024,
            client_id=f"hall-relay-{self.service}",
        )
        broker = _Broker(admin, producer)
        try:
            await asyncio.wait_for(admin.start(), self.request_timeout_ms / 1000)
            await asyncio.wait_for(producer.start(), self.request_timeout_ms / 1000)
        except BaseException:
            await broker.close()
            raise
        return broker

    async def _relay_batch(self, conn: asyncpg.Connection, producer: AIOKafkaProducer) -> bool:
        """Send the next unsent rows and mark the acknowledged ones; True when none are left to send."""
        if self._horizon_value is None:
            self._horizon_value = await self._horizon(conn)
        rows = await conn.fetch(_UNSENT, self._horizon_value, self.batch_size)
        drained = len(rows) < self.batch_size
        if drained:
            self._horizon_value = None  # everything up to it is out: take a new horizon next time
        if not rows:
            return True
        futures: list[asyncio.Future[object]] = []  # each resolves to the broker's RecordMetadata
        send_error: BaseException | None = None
        producer_header = self.service.encode()
        for row in rows:
            try:
                futures.append(await producer.send(
                    self.topic.name if self._topic_override else row["topic"],
                    value=message_value(row["envelope"], row["sequence"]),
                    key=row["key"].encode(),
                    headers=[("type", row["type"].encode()), ("producer", producer_header)],
                ))
            except _BROKER_ERRORS as exc:
                send_error = exc
                break
        results = await asyncio.gather(*futures, return_exceptions=True)
        acknowledged: list[int] = []
        for row, result in zip(rows, results, strict=False):
            if isinstance(result, BaseException):
                send_error = send_error or result
                break
            acknowledged.append(row["sequence"])
        if acknowledged:
            if self.after_send is not None:
                outcome = self.after_send(acknowledged)
                if inspect.isawaitable(outcome):
                    await outcome
            await conn.execute(_MARK_SENT, clock.now(), acknowledged)
            PUBLISHED.labels(self.service).inc(len(acknowledged))
        if send_error is not None:
            FAILED.labels(self.service).inc(len(rows) - len(acknowledged))
            raise send_error
        return drained

    async def _horizon(self, conn: asyncpg.Connection) -> int:
        """The highest sequence below which no transaction can still commit a row (see module docstring)."""
        row = await conn.fetchrow(f"SELECT last_value, is_called FROM {self._sequence_name}")
        assert row is not None  # a sequence relation always has exactly one row
        high: int = row["last_value"] if row["is_called"] else row["last_value"] - 1
        # read after the sequence: whoever drew a sequence <= high holds the lock now or has finished
        writing = {r[0] for r in await conn.fetch(_WRITERS)}
        self._stuck_writers &= writing
        waiting = writing - self._stuck_writers
        deadline = clock.monotonic() + self.horizon_timeout
        while waiting:
            await asyncio.sleep(0.002)
            still = {r[0] for r in await conn.fetch(_WRITERS)} & waiting
            if still and clock.monotonic() > deadline:
                log.warning("outbox writers still open after the horizon timeout; not waiting for them",
                            extra={"event": "relay_stuck_writers", "relay": self.service,
                                   "transactions": sorted(still)})
                self._stuck_writers |= still
                break
            waiting = still
        return high

    # --- broker restarts --------------------------------------------------------------------------

    async def _check_cluster(self, conn: asyncpg.Connection, admin: AIOKafkaAdminClient) -> bool:
        """Re-queue every retained row if the broker lost them (new cluster id, or topic missing)."""
        current = await cluster_id(admin)
        missing = await missing_topics(admin, [self.topic])
        stored_json = await conn.fetchval("SELECT value FROM platform_state WHERE key = $1", CLUSTER_STATE_KEY)
        stored = json.loads(stored_json) if stored_json is not None else None
        if stored == current and not missing:
            return False
        if stored is not None and stored != current and not missing:
            await self._drop_auto_created(admin)
        await ensure_topics(admin, [self.topic], self.replication_factor)
        async with conn.transaction():
            requeued = await conn.fetchval(
                "WITH requeued AS (UPDATE outbox SET sent_at = NULL WHERE sent_at IS NOT NULL RETURNING 1) "
                "SELECT count(*) FROM requeued")
            await conn.execute(
                "INSERT INTO platform_state (key, value, updated_at) VALUES ($1, $2::jsonb, $3) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                CLUSTER_STATE_KEY, json.dumps(current), clock.now())
        self._horizon_value = None
        RESENDS.labels(self.service).inc(requeued)
        await self._count_backlog(conn)
        details = {"relay": self.service, "previous_cluster": stored, "cluster": current,
                   "missing_topics": [t.name for t in missing], "requeued": requeued}
        if stored is None and not requeued:
            log.info("first start against this broker: cluster id recorded", extra={"event": "relay_cluster",
                                                                                   **details})
        else:
            log.warning("the broker lost its topics (new cluster id, or topic missing): re-sending retained events",
                        extra={"event": "relay_resend", **details})
        return True

    async def _drop_auto_created(self, admin: AIOKafkaAdminClient) -> None:
        """Delete our topic if the restarted broker auto-created it with another partition count."""
        described = await admin.describe_topics([self.topic.name])
        partitions = len(described[0]["partitions"]) if described and not described[0]["error_code"] else None
        if partitions is not None and partitions != self.topic.partitions:
            log.warning("dropping a topic the restarted broker auto-created with the wrong partition count",
                        extra={"event": "relay_drop_topic", "relay": self.service, "topic": self.topic.name,
                               "partitions": partitions, "declared": self.topic.partitions})
            await admin.delete_topics([self.topic.name])

    # --- housekeeping -----------------------------------------------------------------------------

    async def prune(self, conn: asyncpg.Connection) -> int:
        deleted = await prune_outbox(conn, older_than=clock.now() - self.retention)
        if deleted:
            log.info("pruned the outbox", extra={"event": "relay_pruned", "relay": self.service,
                                                 "deleted": deleted})
        return deleted

    async def _count_backlog(self, conn: asyncpg.Connection) -> None:
        BACKLOG.labels(self.service).set(await conn.fetchval(_BACKLOG))


async def _close_quietly(conn: asyncpg.Connection) -> None:
    """Close the connection (releasing the leader lock); drop it hard if the server does not answer."""
    try:
        await asyncio.wait_for(conn.close(), 2)
    except asyncio.CancelledError:
        conn.terminate()
        raise
    except Exception:
        conn.terminate()
