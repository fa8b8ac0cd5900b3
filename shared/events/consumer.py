"""Idempotent event consumers: each event applied once per consumer, poison events dead-lettered with
their key's later events parked behind them, transient failures retried, a broker restart re-read.

How a message is handled (`EventConsumer.handle`)
- In ONE transaction: the event id is claimed in `inbox` (ON CONFLICT DO NOTHING); an id already there
  means a redelivery or a relay re-send, and nothing else happens. Otherwise the handler for the
  event's type runs (`async (session, envelope) -> None`, in that transaction: it never commits).
  Types without a handler are only recorded in the inbox.
- Transient failures (the database away: OSError, TimeoutError, SQLAlchemy Operational/Interface errors
  and any DBAPIError with `connection_invalidated`, asyncpg connection errors, SQLSTATE classes 08, 53,
  57, serialization failures and deadlocks) roll back and retry the SAME message with exponential
  backoff; they are never dead-lettered and the offset is not committed meanwhile.
- Anything else is a poison event: a `dead_letters` row of kind "poison" with the error, written in its
  own transaction. While a key has an open dead letter, its later events are written as kind "parked"
  instead of being applied, so one subject's events are never applied out of order; other keys flow.
  `shared.events.deadletters.replay_key` re-applies them in order once the cause is fixed.
- Offsets are committed (manually) only after the batch's transactions have committed, so a crash
  re-delivers at most one batch, which the inbox absorbs.

Batches (`apply_batch`, default 100; 1 applies every event in its own transaction). The records of one
fetch are applied in chunks of up to `apply_batch` events, each chunk in ONE transaction: the chunk's ids
claimed in the inbox by one INSERT, its keys' open dead letters share-locked by one SELECT, then every
event in fetch order (a partition's records stay in offset order, and a key lives on one partition, so
per-key order holds). Between two events the session is flushed (a failure belongs to the event that
caused it) and emptied (`expunge_all`: no ORM object loaded by one handler is handed stale to the next).
The chunk commits once; `shared.metrics.at_commit` callbacks of all its events run at that commit.
- A transient failure rolls the whole chunk back (its inbox claims too) and retries the same chunk with
  the same backoff, so nothing in it is applied twice.
- Any other failure rolls the chunk back; the events before the failing one are applied again as a
  chunk, the failing one alone on the one-event path above (dead-lettered if it fails again: its key's
  later events are then parked as ever), and the rest carries on in chunks. A failure that no single
  event owns (at commit) sends the whole chunk down the one-event path. A message that is not an envelope
  always takes the one-event path.
- A partition revoked by a rebalance: its records not yet in a chunk are left to its new owner, and
  offsets are committed only up to the last chunk that committed. A chunk already in its transaction
  commits: the new owner's inbox claims of those events wait for it and then find them applied.

Broker restarts. The embedded broker (Tansu) is memory-only: a restart comes back empty with a new
cluster id, and old offsets point into a log that no longer exists. The consumer reads the cluster id
(`shared.events.kafka.cluster_id`) every `cluster_check_interval`, on errors, after each fetch (so a
batch fetched from the new log at a stale position is never applied before the start of that log) and
before each commit (so an offset of the old log is never committed to the new broker). On a change it
seeks every assigned partition back to the beginning; the relays re-send everything they keep and the
inbox drops what was already applied. Seeking (rather than recreating the aiokafka consumer) matters
with Tansu: it starts groups at generation 0, where aiokafka sends no LeaveGroup, so a recreated member
would wait about two session timeouts for its own ghost to expire.

Topics that do not exist yet (the relay creates them): the consumer subscribes by an anchored pattern of
its topic names, never by name, because a metadata request naming a missing topic makes the broker
auto-create it with the wrong partition count. Topics are picked up on the next metadata refresh
(`metadata_max_age_ms`, default 2 s) once they appear.

Inbox retention. Inbox rows older than `INBOX_RETENTION` (the relay's outbox retention of 7 days plus a
day's margin) are pruned (`prune_inbox`; `run` does it every `prune_interval`). An event older than
that can no longer be re-sent, except reference data (e.g. `center.upserted`), whose latest row per
subject the relay keeps for ever: handlers of reference data must therefore be idempotent on their own
(the read copies apply an event only if its sequence is newer than the stored one). This also assumes
that Kafka keeps a topic no longer than the outbox keeps its rows.

Metrics (label `consumer` = `<service>.<name>`): hall_consumer_processed_total, hall_consumer_failed_total
(transient failures, each retried), hall_consumer_lag (highwater - position over the assigned
partitions), hall_dead_letters (open rows), hall_parked_keys (keys held behind a poison event).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import re
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, KafkaError
from prometheus_client import Counter, Gauge
from pydantic import ValidationError
from sqlalchemy import Table, delete, func, select, tuple_
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import clock
from shared.events.envelope import Envelope
from shared.events.kafka import cluster_id, new_admin
from shared.settings import ServiceSettings
from shared.tables import dead_letters, inbox
from shared.waiting import Backoff, pause

if TYPE_CHECKING:
    from shared.worker import WorkerContext  # typing only: the worker module brings uvicorn and alembic

log = logging.getLogger("shared.events.consumer")

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]

INBOX_RETENTION = timedelta(days=8)  # the relay's outbox retention (7 days) + 1 day of margin
KEY_MAX = 200  # dead_letters.key is String(200)
APPLY_BATCH = 100  # events applied in one transaction at most

PROCESSED = Counter("hall_consumer_processed_total",
                    "Events a consumer handled: applied, repeats skipped, ignored, parked or dead-lettered",
                    ["consumer"])
FAILED = Counter("hall_consumer_failed_total",
                 "Transient failures (database or broker away); the same event is retried", ["consumer"])
LAG = Gauge("hall_consumer_lag", "Messages behind the end of the assigned partitions (highwater - position)",
            ["consumer"])
DEAD_LETTERS = Gauge("hall_dead_letters", "Open dead letters (poison and parked events)", ["consumer"])
PARKED_KEYS = Gauge("hall_parked_keys", "Keys whose events wait behind an open poison event", ["consumer"])


class Outcome(StrEnum):
    APPLIED = "applied"
    REPEAT = "repeat"  # already in the inbox: a redelivery or a re-send
    IGNORED = "ignored"  # no handler for this type (recorded in the inbox)
    PARKED = "parked"  # its key has an open dead letter
    DEAD_LETTERED = "dead_lettered"  # poison
    ALREADY_DEAD_LETTERED = "already_dead_lettered"  # a repeat of an event waiting in dead_letters


# --- transient or poison -----------------------------------------------------------------------------

_TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionRefusedError, ConnectionResetError, socket errors
    TimeoutError,  # asyncio.TimeoutError too
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # connection pool exhausted
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, crash shutdown, query cancelled
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
)
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57")  # connection exception, insufficient resources, operator
_TRANSIENT_SQLSTATES = {"40001", "40P01"}


def is_transient(exc: BaseException) -> bool:
    """True for failures that say "the database (or network) is away", which are retried, never dead-lettered.

    Only explicit causes are followed (`__cause__`, a DBAPIError's `orig`), not `__context__`: a handler
    that caught a timeout and then raised its own error is a poison, not an outage.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _TRANSIENT_ERRORS):
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and (
                state[:2] in _TRANSIENT_SQLSTATE_CLASSES or state in _TRANSIENT_SQLSTATES
                # ALTER DATABASE ... ALLOW_CONNECTIONS false (a maintenance window)
                or (state == "55000" and "accepting connections" in str(current))):
            return True
        orig = getattr(current, "orig", None)
        current = current.__cause__ or (orig if isinstance(orig, BaseException) else None)
    return False


def describe_error(exc: BaseException, limit: int = 8000) -> str:
    """The error text kept with a dead letter: the traceback, cut from the front if long."""
    text = "".join(traceback.format_exception(exc)).strip()
    return text if len(text) <= limit else "..." + text[-limit:]


# --- inbox and dead-letter rows ------------------------------------------------------------------------

async def claim(session: AsyncSession, consumer: str, event_id: uuid.UUID) -> bool:
    """Record the event in the consumer's inbox; False if it was already there (apply nothing then)."""
    stmt = (pg_insert(inbox).values(consumer=consumer, event_id=event_id, applied_at=clock.now())
            .on_conflict_do_nothing().returning(inbox.c.event_id))
    return (await session.execute(stmt)).first() is not None


async def claim_all(session: AsyncSession, consumer: str, event_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Record the events in the consumer's inbox in one statement; returns the ids that were not there."""
    now = clock.now()
    rows = [{"consumer": consumer, "event_id": event_id, "applied_at": now} for event_id in dict.fromkeys(event_ids)]
    if not rows:
        return set()
    stmt = pg_insert(inbox).values(rows).on_conflict_do_nothing().returning(inbox.c.event_id)
    return set((await session.scalars(stmt)).all())


async def is_claimed(session: AsyncSession, consumer: str, event_id: uuid.UUID) -> bool:
    stmt = select(inbox.c.event_id).where(inbox.c.consumer == consumer, inbox.c.event_id == event_id)
    return (await session.execute(stmt)).first() is not None


async def open_event_ids(session: AsyncSession, consumer: str, key: str) -> set[uuid.UUID]:
    """Event ids of the key's open dead letters, share-locked: a replay resolving them waits for us, and we
    for it, so an event is parked exactly when its key is still held."""
    stmt = (select(dead_letters.c.event_id)
            .where(dead_letters.c.consumer == consumer, dead_letters.c.key == key,
                   dead_letters.c.resolved_at.is_(None))
            .with_for_update(read=True))
    return set((await session.scalars(stmt)).all())


async def open_event_ids_by_key(session: AsyncSession, consumer: str,
                                keys: Iterable[str]) -> dict[str, set[uuid.UUID]]:
    """`open_event_ids` of several keys in one statement (share-locked the same way); held keys only."""
    wanted = list(dict.fromkeys(keys))
    held: dict[str, set[uuid.UUID]] = {}
    if not wanted:
        return held
    stmt = (select(dead_letters.c.key, dead_letters.c.event_id)
            .where(dead_letters.c.consumer == consumer, dead_letters.c.key.in_(wanted),
                   dead_letters.c.resolved_at.is_(None))
            .with_for_update(read=True))
    for key, event_id in (await session.execute(stmt)).all():
        held.setdefault(key, set()).add(event_id)
    return held


async def insert_dead_letter(session: AsyncSession, consumer: str, key: str, event_id: uuid.UUID,
                             envelope: Mapping[str, Any], *, kind: str, error: str | None) -> int:
    stmt = (dead_letters.insert()
            .values(consumer=consumer, key=key, event_id=event_id, kind=kind, envelope=dict(envelope),
                    error=error, created_at=clock.now())
            .returning(dead_letters.c.id))
    dead_letter_id: int = (await session.execute(stmt)).scalar_one()
    return dead_letter_id


async def refresh_gauges(session: AsyncSession, consumer: str) -> tuple[int, int]:
    """Set hall_dead_letters and hall_parked_keys of `consumer` from the table; returns (rows, keys)."""
    stmt = (select(func.count(), func.count(dead_letters.c.key.distinct()))
            .where(dead_letters.c.consumer == consumer, dead_letters.c.resolved_at.is_(None)))
    rows, keys = (await session.execute(stmt)).one()
    DEAD_LETTERS.labels(consumer).set(rows)
    PARKED_KEYS.labels(consumer).set(keys)
    return rows, keys


async def prune_inbox(session: AsyncSession, older_than: datetime, *, consumer: str | None = None,
                      chunk: int = 5000) -> int:
    """Delete up to `chunk` inbox rows applied before `older_than` (of one consumer, or all); returns the
    count. Safe once the relay can no longer re-send those events (see INBOX_RETENTION)."""
    doomed = select(inbox.c.consumer, inbox.c.event_id).where(inbox.c.applied_at < older_than)
    if consumer is not None:
        doomed = doomed.where(inbox.c.consumer == consumer)
    stmt = delete(inbox).where(tuple_(inbox.c.consumer, inbox.c.event_id).in_(doomed.limit(chunk)))
    # through the session's connection, whose execute() is typed to return the CursorResult with rowcount
    connection = await session.connection()
    return (await connection.execute(stmt)).rowcount or 0


async def upsert_read_copy(session: AsyncSession, table: Table, values: Mapping[str, Any], *,
                           sequence_column: str = "last_event_sequence") -> bool:
    """Insert or update one row of a read copy, unless the stored row came from a newer event.

    `values` holds the primary key and `sequence_column` (the producer's outbox sequence of the event):
    an older or repeated event changes nothing, so reference data re-sent after the inbox forgot it, or
    arriving out of order, is harmless. Returns True if the row was written.
    """
    upsert = _read_copy_upsert(table, tuple(values), sequence_column)
    return (await session.execute(upsert, dict(values))).first() is not None


@functools.lru_cache(maxsize=256)
def _read_copy_upsert(table: Table, columns: tuple[str, ...], sequence_column: str) -> Any:
    """The upsert of `upsert_read_copy`, built once per table and column set (values are bound per call):
    building it again for every event cost more CPU than the rest of the event's handling."""
    stmt = pg_insert(table)
    updates = {name: stmt.excluded[name] for name in columns if name not in table.primary_key.columns}
    return stmt.on_conflict_do_update(
        index_elements=list(table.primary_key.columns), set_=updates,
        where=table.c[sequence_column] < stmt.excluded[sequence_column],
    ).returning(table.c[sequence_column])


# --- specs: what a service declares, what the worker starts -----------------------------------------

@dataclass(frozen=True)
class ConsumerSpec:
    """One consumer of a service: `CONSUMERS = [ConsumerSpec("centers", (topic,), {type: handler})]`.

    Calling a spec with the worker's context builds its EventConsumer, so a list of specs can be handed to
    `shared.worker.run_worker(consumers=...)` as it is. (A dataclass, not a NamedTuple: mypy does not
    count a NamedTuple's `__call__`, so a spec would not pass as the worker's component factory.)
    """

    name: str
    topics: Sequence[str]
    handlers: Mapping[str, Handler]
    apply_batch: int | None = None  # events per transaction; None: EventConsumer's default

    def build(self, service: str, bootstrap: str, sessionmaker: async_sessionmaker[AsyncSession], *,
              topic_names: Mapping[str, str] | None = None, **options: Any) -> EventConsumer:
        """`topic_names` maps a declared topic to the one to read instead (tests give each run its own)."""
        topics = [(topic_names or {}).get(topic, topic) for topic in self.topics]
        if self.apply_batch is not None:
            options.setdefault("apply_batch", self.apply_batch)
        return EventConsumer(self.name, bootstrap, topics, self.handlers, sessionmaker, service=service,
                             **options)

    def __call__(self, context: WorkerContext) -> EventConsumer:
        """Factory form for the worker: the consumer of `context.service`, on its broker and database."""
        return self.build(context.service, context.bootstrap, context.sessionmaker)


def build_all(specs: Iterable[ConsumerSpec], settings: ServiceSettings,
              sessionmaker: async_sessionmaker[AsyncSession], **options: Any) -> list[EventConsumer]:
    """The consumers of `specs` for a service's settings (its service_name and hall.kafka_bootstrap)."""
    return [spec.build(settings.service_name, settings.hall.kafka_bootstrap, sessionmaker, **options)
            for spec in specs]


# --- the consumer ----------------------------------------------------------------------------------------

def _record_key(record: ConsumerRecord) -> str:
    key = record.key
    if isinstance(key, bytes):
        key = key.decode("utf-8", errors="replace")
    return (key or "")[:KEY_MAX]


class PoisonInChunk(Exception):
    """An event of a chunk failed with a non-transient error and the chunk's transaction rolled back.
    `index` is the event whose handler failed, None if no single event's (the commit failed)."""

    def __init__(self, index: int | None, error: BaseException) -> None:
        super().__init__(f"event {index} of the chunk failed: {type(error).__name__}: {error}")
        self.index = index
        self.error = error


@dataclass(frozen=True)
class _Pending:
    """A fetched record waiting to be applied, parsed once."""

    tp: TopicPartition
    record: ConsumerRecord
    key: str
    envelope: Envelope | None  # None: not an envelope (handled alone: `handle` dead-letters it)

    @classmethod
    def of(cls, tp: TopicPartition, record: ConsumerRecord) -> _Pending:
        try:
            envelope: Envelope | None = Envelope.model_validate_json(record.value or b"")
        except ValidationError:
            envelope = None
        return cls(tp, record, _record_key(record), envelope)


class EventConsumer:
    """One consumer group (`<service>.<name>`) applying events of `topics` through `handlers`.

    `use_inbox=False` switches the inbox off. It exists ONLY for the test that shows the inbox is what
    makes a repeated event change state once; never use it in a service.
    `kafka_options` go to AIOKafkaConsumer (tests shorten session_timeout_ms to join faster).
    `apply_batch` is the most events applied in one transaction (see "Batches" above).
    """

    def __init__(self, name: str, bootstrap: str, topics: Sequence[str], handlers: Mapping[str, Handler],
                 sessionmaker: async_sessionmaker[AsyncSession], *, service: str, use_inbox: bool = True,
                 kafka_options: Mapping[str, Any] | None = None, max_records: int = 200,
                 poll_timeout_ms: int = 500, metadata_max_age_ms: int = 2000,
                 cluster_check_interval: float = 1.5, retry_first: float = 0.2, retry_max: float = 5.0,
                 gauge_interval: float = 15.0, inbox_retention: timedelta = INBOX_RETENTION,
                 prune_interval: float = 3600.0, apply_batch: int = APPLY_BATCH) -> None:
        if not topics:
            raise ValueError("a consumer needs at least one topic")
        if apply_batch < 1:
            raise ValueError("apply_batch must be at least 1")
        self.name = name
        self.service = service
        self.id = f"{service}.{name}"  # the consumer group, and `consumer` in inbox and dead_letters
        self.bootstrap = bootstrap
        self.topics = tuple(topics)
        self.handlers = dict(handlers)
        self.sessionmaker = sessionmaker
        self.use_inbox = use_inbox
        self.kafka_options = dict(kafka_options or {})
        self.max_records = max_records
        self.poll_timeout_ms = poll_timeout_ms
        self.metadata_max_age_ms = metadata_max_age_ms
        self.cluster_check_interval = cluster_check_interval
        self.retry_first = retry_first
        self.retry_max = retry_max
        self.gauge_interval = gauge_interval
        self.inbox_retention = inbox_retention
        self.prune_interval = prune_interval
        self.apply_batch = apply_batch
        self.pattern = "^(?:" + "|".join(re.escape(topic) for topic in self.topics) + ")$"
        self.cluster_id: str | None = None  # of the broker whose log the positions refer to
        self.broker_restarts = 0
        self._admin: AIOKafkaAdminClient | None = None
        self._labels = {"consumer": self.id}

    @property
    def group_id(self) -> str:
        return self.id

    def __repr__(self) -> str:
        return f"EventConsumer({self.id!r}, topics={list(self.topics)!r})"

    # --- the loop ----------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set. Broker and database trouble is waited out, never raised."""
        backoff = Backoff(self.retry_first, self.retry_max)
        try:
            while not stop.is_set():
                try:
                    await self._consume(stop)
                    backoff.reset()
                except Exception as exc:
                    if not (isinstance(exc, KafkaError) or is_transient(exc)):
                        raise  # a bug of ours: let the worker fail and be restarted
                    if stop.is_set():
                        break
                    FAILED.labels(**self._labels).inc()
                    delay = backoff.next()
                    log.warning("consumer lost the broker or database; starting again", extra={
                        "event": "consumer_restart", "consumer": self.id, "retry_in": delay,
                        "error": f"{type(exc).__name__}: {exc}"})
                    await pause(stop, delay)
        finally:
            await self._close_admin()

    async def _consume(self, stop: asyncio.Event) -> None:
        """One aiokafka consumer's lifetime."""
        known = await self._wait_for_cluster_id(stop)
        if known is None:
            return
        if self.cluster_id is not None and known != self.cluster_id:
            self.broker_restarts += 1  # seen between two aiokafka consumers: the new one starts afresh
        self.cluster_id = known
        # Tansu holds a fetch for a good part of fetch_max_wait_ms even when data is there: aiokafka's
        # 500 ms default made commit-to-apply p50 ~600 ms (bench/events_latency.py); 50 ms keeps batches
        # of several events without that wait
        options = {"fetch_max_wait_ms": 50, **self.kafka_options}
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group_id, client_id=self.id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            metadata_max_age_ms=self.metadata_max_age_ms, **options)
        consumer.subscribe(pattern=self.pattern)
        now = clock.monotonic()
        next_check, next_gauges, next_prune = now + self.cluster_check_interval, now, now
        fetch_errors = 0
        try:
            await consumer.start()
            log.info("consumer started", extra={"event": "consumer_started", "consumer": self.id,
                                                "topics": list(self.topics)})
            while not stop.is_set():
                try:
                    batch = await consumer.getmany(timeout_ms=self.poll_timeout_ms,
                                                   max_records=self.max_records)
                    fetch_errors = 0
                except KafkaError as exc:
                    fetch_errors += 1
                    if fetch_errors >= 5:
                        raise  # run() starts a fresh aiokafka consumer
                    log.warning("fetch failed", extra={"event": "consumer_fetch_error", "consumer": self.id,
                                                       "error": f"{type(exc).__name__}: {exc}"})
                    FAILED.labels(**self._labels).inc()
                    batch = {}
                    next_check = 0.0  # on errors, look at the cluster id at once
                    await pause(stop, self.retry_first)
                if batch:
                    if not await self._same_broker(consumer, stop):
                        continue  # fetched from a restarted broker at stale positions: re-read from the start
                    offsets, finished = await self._process_batch(consumer, batch, stop)
                    if not finished:
                        return  # stopping in the middle of a retry: nothing committed, redelivery is harmless
                    if offsets and await self._same_broker(consumer, stop):
                        await self._commit(consumer, offsets)
                now = clock.monotonic()
                if now >= next_check:
                    next_check = now + self.cluster_check_interval
                    await self._check_broker(consumer)
                    await self._update_lag(consumer)
                if now >= next_gauges:
                    next_gauges = now + self.gauge_interval
                    await self._quietly(self._refresh_gauges())
                if now >= next_prune:
                    next_prune = now + self.prune_interval
                    await self._quietly(self._prune())
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 10)

    async def _process_batch(self, consumer: AIOKafkaConsumer,
                             batch: Mapping[TopicPartition, list[ConsumerRecord]],
                             stop: asyncio.Event) -> tuple[dict[TopicPartition, int], bool]:
        """Handle a batch in chunks (see "Batches"), in order per partition; returns the offsets to commit and
        False if stopped."""
        offsets: dict[TopicPartition, int] = {}
        revoked: set[TopicPartition] = set()

        def ours(tp: TopicPartition) -> bool:
            # revoked by a rebalance: its new owner takes over from the committed offset. Once seen, it stays
            # revoked for this batch, so a partition's records are applied up to a point and none after it.
            if tp not in revoked and tp not in consumer.assignment():
                revoked.add(tp)
            return tp not in revoked

        pending = [_Pending.of(tp, record) for tp, records in batch.items() for record in records]
        alone = range(0)  # positions to handle one by one, after a failure inside a chunk
        position = 0
        while position < len(pending):
            chunk = self._next_chunk(pending, position, alone, ours)
            if not chunk:
                break  # every partition left was revoked
            if len(chunk) == 1:
                if await self._handle_with_retry(pending[chunk[0]].record, stop) is None:
                    return offsets, False
            else:
                result = await self._apply_chunk_with_retry([pending[i] for i in chunk], stop)
                if result is None:
                    return offsets, False
                if isinstance(result, PoisonInChunk):
                    # the events before the failing one go again as a (smaller) chunk, the failing one alone
                    alone = (range(chunk[0], chunk[-1] + 1) if result.index is None
                             else range(chunk[result.index], chunk[result.index] + 1))
                    continue
            for i in chunk:
                offsets[pending[i].tp] = pending[i].record.offset + 1
            position = chunk[-1] + 1
        return offsets, True

    def _next_chunk(self, pending: Sequence[_Pending], position: int, alone: range,
                    ours: Callable[[TopicPartition], bool]) -> list[int]:
        """Positions of the next chunk from `position` (records of revoked partitions left out): up to
        `apply_batch` envelopes, ending before a record that must be handled alone, which is a chunk of one
        when it comes first."""
        chunk: list[int] = []
        for i in range(position, len(pending)):
            item = pending[i]
            if not ours(item.tp):
                continue
            if i in alone or item.envelope is None:
                return chunk or [i]
            chunk.append(i)
            if len(chunk) >= self.apply_batch:
                break
        return chunk

    async def _apply_chunk_with_retry(self, chunk: Sequence[_Pending],
                                      stop: asyncio.Event) -> list[Outcome] | PoisonInChunk | None:
        """Apply a chunk, retrying transient failures until it goes through; the failure if an event in it is
        (maybe) poison, None if stopped first."""
        events = [(item.key, item.envelope) for item in chunk if item.envelope is not None]
        first, last = chunk[0].record, chunk[-1].record
        backoff = Backoff(self.retry_first, self.retry_max)
        while True:
            try:
                outcomes = await self.apply_chunk(events)
            except PoisonInChunk as poisoned:
                suspect = events[poisoned.index][1] if poisoned.index is not None else None
                log.warning("an event failed inside a chunk; the chunk rolled back and goes again, the failing "
                            "event on its own", extra={
                                "event": "consumer_chunk_failed", "consumer": self.id, "events": len(events),
                                "event_id": str(suspect.id) if suspect else None,
                                "type": suspect.type if suspect else None,
                                "error": f"{type(poisoned.error).__name__}: {poisoned.error}"[:500]})
                return poisoned
            except Exception as exc:
                if not is_transient(exc):
                    raise
                FAILED.labels(**self._labels).inc()
                delay = backoff.next()
                log.warning("transient failure; retrying the same chunk of events", extra={
                    "event": "consumer_retry", "consumer": self.id, "topic": first.topic,
                    "partition": first.partition, "offset": first.offset, "events": len(events),
                    "last_topic": last.topic, "last_partition": last.partition, "last_offset": last.offset,
                    "retry_in": delay, "error": f"{type(exc).__name__}: {exc}"})
                await pause(stop, delay)
                if stop.is_set():
                    return None
                continue
            PROCESSED.labels(**self._labels).inc(len(outcomes))
            return outcomes

    async def _handle_with_retry(self, record: ConsumerRecord, stop: asyncio.Event) -> Outcome | None:
        """Handle one record, retrying transient failures until it goes through; None if stopped first."""
        backoff = Backoff(self.retry_first, self.retry_max)
        while True:
            try:
                outcome = await self.handle(record)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                FAILED.labels(**self._labels).inc()
                delay = backoff.next()
                log.warning("transient failure; retrying the same event", extra={
                    "event": "consumer_retry", "consumer": self.id, "topic": record.topic,
                    "partition": record.partition, "offset": record.offset, "retry_in": delay,
                    "error": f"{type(exc).__name__}: {exc}"})
                await pause(stop, delay)
                if stop.is_set():
                    return None
                continue
            PROCESSED.labels(**self._labels).inc()
            return outcome

    # --- one message ------------------------------------------------------------------------------------

    async def handle(self, record: ConsumerRecord) -> Outcome:
        """Apply one Kafka record (one attempt). Raises only transient errors; a poison is dead-lettered."""
        key = _record_key(record)
        try:
            envelope = Envelope.model_validate_json(record.value or b"")
        except ValidationError as exc:
            event_id, raw = _malformed(record)
            return await self._dead_letter(key, event_id, raw, None, exc)
        return await self.apply(key, envelope)

    async def apply(self, key: str, envelope: Envelope) -> Outcome:
        """Apply one event under its Kafka key (one attempt): inbox, parking, handler, in one transaction."""
        handler = self.handlers.get(envelope.type)
        try:
            async with self.sessionmaker() as session, session.begin():
                outcome = await self._apply_in(session, key, envelope, handler)
        except Exception as exc:
            if is_transient(exc):
                raise
            return await self._dead_letter(key, envelope.id, envelope.model_dump(mode="json"), envelope.type,
                                           exc)
        if outcome is Outcome.PARKED:
            self._log_parked(key, envelope)
            await self._quietly(self._refresh_gauges())
        return outcome

    async def _apply_in(self, session: AsyncSession, key: str, envelope: Envelope,
                        handler: Handler | None) -> Outcome:
        if self.use_inbox and not await claim(session, self.id, envelope.id):
            return Outcome.REPEAT
        if handler is None:
            return Outcome.IGNORED
        held = await open_event_ids(session, self.id, key)
        if held:
            return await self._park(session, key, envelope, held)
        await handler(session, envelope)
        return Outcome.APPLIED

    async def apply_chunk(self, events: Sequence[tuple[str, Envelope]]) -> list[Outcome]:
        """Apply events under their Kafka keys, in this order, in ONE transaction (one attempt); returns
        their outcomes.

        Raises transient errors (all rolled back: retry the chunk) and PoisonInChunk for anything else (all
        rolled back too): the caller applies the events before `index` again and the failing one by
        `apply`, which dead-letters it if it fails again.
        """
        try:
            async with self.sessionmaker() as session, session.begin():
                outcomes = await self._apply_all_in(session, events)
        except PoisonInChunk:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise
            raise PoisonInChunk(None, exc) from exc  # not one handler's: at commit, or our own statements
        parked = [(key, envelope) for (key, envelope), outcome in zip(events, outcomes, strict=True)
                  if outcome is Outcome.PARKED]
        for key, envelope in parked:
            self._log_parked(key, envelope)
        if parked:
            await self._quietly(self._refresh_gauges())
        return outcomes

    async def _apply_all_in(self, session: AsyncSession, events: Sequence[tuple[str, Envelope]]) -> list[Outcome]:
        """`_apply_in` for several events in one transaction: one inbox INSERT and one dead-letter SELECT for
        them all, then each handler in order."""
        claimed = await claim_all(session, self.id, (e.id for _, e in events)) if self.use_inbox else None
        held = await open_event_ids_by_key(session, self.id, (
            key for key, e in events if e.type in self.handlers and (claimed is None or e.id in claimed)))
        outcomes: list[Outcome] = []
        for index, (key, envelope) in enumerate(events):
            if claimed is not None:
                if envelope.id not in claimed:
                    outcomes.append(Outcome.REPEAT)
                    continue
                claimed.discard(envelope.id)  # a second copy in this chunk is a repeat
            handler = self.handlers.get(envelope.type)
            if handler is None:
                outcomes.append(Outcome.IGNORED)
                continue
            if key in held:
                outcomes.append(await self._park(session, key, envelope, held[key]))
                continue
            try:
                await handler(session, envelope)
                await session.flush()  # what the handler left to the ORM fails here, as this event's failure
            except Exception as exc:
                if is_transient(exc):
                    raise
                raise PoisonInChunk(index, exc) from exc
            # the next handler must not be handed objects this one loaded, as they were before its writes
            # (core statements change rows under the identity map): it loads what it needs afresh
            session.expunge_all()
            outcomes.append(Outcome.APPLIED)
        return outcomes

    async def _park(self, session: AsyncSession, key: str, envelope: Envelope, held: set[uuid.UUID]) -> Outcome:
        """The key has open dead letters (`held`): write the event as parked behind them, unapplied."""
        if self.use_inbox:  # not applied: a replay must find it unclaimed
            await session.execute(delete(inbox).where(inbox.c.consumer == self.id,
                                                      inbox.c.event_id == envelope.id))
        if envelope.id in held:
            return Outcome.ALREADY_DEAD_LETTERED
        await insert_dead_letter(session, self.id, key, envelope.id, envelope.model_dump(mode="json"),
                                 kind="parked", error=None)
        held.add(envelope.id)
        return Outcome.PARKED

    def _log_parked(self, key: str, envelope: Envelope) -> None:
        log.warning("event parked behind a dead letter of its key", extra={
            "event": "consumer_parked", "consumer": self.id, "key": key, "event_id": str(envelope.id),
            "type": envelope.type})

    async def _dead_letter(self, key: str, event_id: uuid.UUID, envelope: Mapping[str, Any],
                           event_type: str | None, exc: BaseException) -> Outcome:
        """Write a poison event (or, if its key is already held, a parked one) in its own transaction."""
        async with self.sessionmaker() as session, session.begin():
            if self.use_inbox and await is_claimed(session, self.id, event_id):
                return Outcome.REPEAT
            held = await open_event_ids(session, self.id, key)
            if event_id in held:
                return Outcome.ALREADY_DEAD_LETTERED
            kind = "parked" if held else "poison"
            dead_letter_id = await insert_dead_letter(session, self.id, key, event_id, envelope, kind=kind,
                                                      error=describe_error(exc))
        log.error("event dead-lettered", extra={
            "event": "consumer_dead_letter", "consumer": self.id, "key": key, "event_id": str(event_id),
            "type": event_type, "kind": kind, "dead_letter_id": dead_letter_id,
            "error": f"{type(exc).__name__}: {exc}"[:500]})
        await self._quietly(self._refresh_gauges())
        return Outcome.DEAD_LETTERED if kind == "poison" else Outcome.PARKED

    # --- the broker ----------------------------------------------------------------------------------------

    async def _broker_cluster_id(self) -> str:
        if self._admin is None:
            admin = new_admin(self.bootstrap)
            try:
                await asyncio.wait_for(admin.start(), 5)
            except BaseException:
                with contextlib.suppress(Exception):
                    await admin.close()
                raise
            self._admin = admin
        try:
            return await asyncio.wait_for(cluster_id(self._admin), 5)
        except BaseException:
            await self._close_admin()
            raise

    async def _close_admin(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()

    async def _wait_for_cluster_id(self, stop: asyncio.Event) -> str | None:
        """The broker's cluster id, waiting (with backoff) while it is away; None if stopped first."""
        backoff = Backoff(self.retry_first, self.retry_max)
        while not stop.is_set():
            try:
                return await self._broker_cluster_id()
            except (KafkaError, OSError, TimeoutError) as exc:
                FAILED.labels(**self._labels).inc()
                error = f"{type(exc).__name__}: {exc}"
                log.warning("broker unavailable",
                            extra={"event": "consumer_broker_error", "consumer": self.id, "error": error})
                await pause(stop, backoff.next())
        return None

    async def _same_broker(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> bool:
        """True if the broker is still the one our positions refer to; else re-seek and return False."""
        current = await self._wait_for_cluster_id(stop)
        if current is None:
            return False
        if current == self.cluster_id:
            return True
        self._broker_restarted(consumer, current)
        return False

    async def _check_broker(self, consumer: AIOKafkaConsumer) -> None:
        try:
            current = await self._broker_cluster_id()
        except (KafkaError, OSError, TimeoutError):
            return  # away: looked at again on the next tick
        if current != self.cluster_id:
            self._broker_restarted(consumer, current)

    def _broker_restarted(self, consumer: AIOKafkaConsumer, current: str) -> None:
        log.warning("broker restarted empty (new cluster id): re-reading assigned partitions from the start",
                    extra={"event": "consumer_broker_restarted", "consumer": self.id,
                           "old_cluster_id": self.cluster_id, "cluster_id": current})
        self.cluster_id = current
        self.broker_restarts += 1
        for tp in consumer.assignment():
            # offset 0 is the start of a new Tansu log; where a log starts later, auto_offset_reset=earliest
            # takes the fetch there. The group's rejoin on the new broker resets positions the same way.
            consumer.seek(tp, 0)

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # a rebalance or a broker hiccup: the next owner re-reads from the last commit; the inbox
            # absorbs the repeats
            log.warning("offset commit failed", extra={"event": "consumer_commit_failed", "consumer": self.id,
                                                       "error": f"{type(exc).__name__}: {exc}"})

    async def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        known = [(tp, highwater) for tp in consumer.assignment()
                 if (highwater := consumer.highwater(tp)) is not None]

        async def position(tp: TopicPartition) -> int:
            # a valid position answers at once; one still being reset would block: count it next time
            return await asyncio.wait_for(consumer.position(tp), 0.2)

        positions = await asyncio.gather(*(position(tp) for tp, _ in known), return_exceptions=True)
        lag = sum(max(0, highwater - pos) for (_, highwater), pos in zip(known, positions, strict=True)
                  if isinstance(pos, int))
        LAG.labels(**self._labels).set(lag)

    # --- housekeeping --------------------------------------------------------------------------------------

    async def _refresh_gauges(self) -> None:
        async with self.sessionmaker() as session:
            await refresh_gauges(session, self.id)

    async def _prune(self) -> None:
        older_than = clock.now() - self.inbox_retention
        while True:
            async with self.sessionmaker() as session, session.begin():
                deleted = await self.prune_inbox(session, older_than)
            if deleted < 5000:
                return

    async def prune_inbox(self, session: AsyncSession, older_than: datetime) -> int:
        """Delete (a chunk of) this consumer's inbox rows applied before `older_than`; returns the count.

        `run` calls it every `prune_interval` with now - `inbox_retention` (see the module docstring for
        why that is safe); the caller's transaction commits.
        """
        return await prune_inbox(session, older_than, consumer=self.id)

    async def _quietly(self, work: Awaitable[None]) -> None:
        """Housekeeping must not stop consumption: a transient failure is retried on its next turn."""
        try:
            await work
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("consumer housekeeping failed", extra={"event": "consumer_housekeeping_error",
                                                               "consumer": self.id,
                                                               "error": f"{type(exc).__name__}: {exc}"})


def _malformed(record: ConsumerRecord) -> tuple[uuid.UUID, dict[str, Any]]:
    """A stable event id and a storable form for a message that is not an envelope."""
    value = record.value or b""
    text = value.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
        event_id = uuid.UUID(str(parsed["id"]))
    except (ValueError, KeyError, TypeError):
        # the same bytes re-sent get the same id, so a repeat is recognised
        event_id = uuid.UUID(bytes=hashlib.sha256(value).digest()[:16], version=5)
    return event_id, {"malformed": True, "topic": record.topic, "raw": text[:20000]}
