"""The dispatcher: sends due deliveries through their channel, exactly once in effect.

One round:
1. Claim (one transaction): up to `dispatch_batch` due deliveries `FOR UPDATE SKIP LOCKED` (so any number
   of dispatchers share the work), plus those whose claim expired (their process died mid-send). Each gets
   `status = sending`, a lease, and an attempt row recorded *before* the call; an expired claim's open
   attempt is marked `interrupted`. An SMS found in the quiet hours is held instead; one over its
   recipient's rate limit waits until the limit allows it.
2. Send, `dispatch_concurrency` at a time, recording the results (3) as they come in groups of that size. The sealed address (and a webhook's secret) is opened here, for
   this call only; every attempt of a delivery sends the same idempotency key, so a provider that accepted
   a message before our process died recognises the retry.
3. Record (one transaction): accepted → `sent` with the provider's id; a transient failure → `pending`
   again after `min(base * 2^(n-1), cap)` with full jitter, or `dead` after `max_attempts`; a permanent
   failure → `dead` at once. Dead deliveries are the dead letters (`GET /dead-letters`); a replay makes one
   `pending` again with a fresh retry budget and the same key.

A process killed between 1 and 3 leaves `sending` rows whose lease runs out; the next round takes them again
(same key). What the provider accepted and we recorded is never sent again; what it accepted and we could not
record is sent again with its key, which the provider (and our webhook receivers, told to keep the keys)
drops as a repeat.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify import metrics, planner
from services.notify.channels.base import Channel, Message, PermanentFailure, SendFailure, TransientFailure
from services.notify.config import Settings
from services.notify.models import Delivery, DeliveryAttempt, Recipient
from shared import clock, pii, timers
from shared.db import make_sessionmaker
from shared.waiting import pause

log = logging.getLogger("services.notify.dispatcher")

# the tables themselves, for the set-based statements (executemany with bound parameters, not the ORM's bulk mode)
_DELIVERIES: Table = Delivery.__table__  # type: ignore[assignment]
_ATTEMPTS: Table = DeliveryAttempt.__table__  # type: ignore[assignment]
_RECORD_SENT = sql_text(
    "UPDATE deliveries AS d SET status = 'sent', provider_id = v.provider_id, sent_at = :now, lease_until = NULL, "
    "last_error = NULL FROM unnest(CAST(:ids AS bigint[]), CAST(:providers AS text[])) AS v(id, provider_id) "
    "WHERE d.id = v.id")
_RECORD_ATTEMPTS = sql_text(
    "UPDATE delivery_attempts AS a SET finished_at = :now, outcome = v.outcome, provider_id = v.provider_id, "
    "error = v.error FROM unnest(CAST(:ids AS bigint[]), CAST(:numbers AS integer[]), CAST(:outcomes AS text[]), "
    "CAST(:providers AS text[]), CAST(:errors AS text[])) AS v(delivery_id, number, outcome, provider_id, error) "
    "WHERE a.delivery_id = v.delivery_id AND a.number = v.number")
_CLAIMED_COLUMNS = ("id", "key", "channel", "template_key", "status", "attempts", "budget_from", "occurred_at",
                    "address_sealed", "address_hash", "subject", "body", "params", "urgent")


@dataclass
class _Claimed:
    id: int
    key: str
    channel: str
    template_key: str
    attempt: int
    budget_from: int
    occurred_at: datetime
    address: str
    secret: str | None
    subject: str | None
    body: str
    params: dict[str, Any]


@dataclass
class _Result:
    claimed: _Claimed
    provider_id: str | None = None
    error: SendFailure | None = None


class Dispatcher:
    """Sends due deliveries until stopped; run one per worker (or several: they share by SKIP LOCKED)."""

    def __init__(self, engine: AsyncEngine, settings: Settings, channels: Mapping[str, Channel], *,
                 rng: random.Random | None = None) -> None:
        if settings.seal_private_key is None:
            raise ValueError("NOTIFY_SEAL_PRIVATE_KEY is not set: no address could be opened")
        self.engine = engine
        self.settings = settings
        self.channels = dict(channels)
        self.rng = rng or random.Random()
        self._private = settings.seal_private_key.get_secret_value()
        self._hash_key = base64.b64decode(settings.hall.pii_hash_key.get_secret_value())
        self._sessionmaker = make_sessionmaker(engine)
        self._wake = asyncio.Event()
        self._semaphore = asyncio.Semaphore(settings.dispatch_concurrency)

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                sent = await self.dispatch_once()
                failures = 0
                if sent >= self.settings.dispatch_batch:
                    continue
                delay = self.settings.dispatch_poll_seconds
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                log.exception("dispatch round failed", extra={"event": "notify_dispatch_failed",
                                                              "failures": failures})
                delay = min(self.settings.dispatch_poll_seconds * 2 ** failures, 30.0)
            await pause(stop, delay, self._wake)
            self._wake.clear()

    def backoff(self, attempt: int) -> timedelta:
        """Full jitter: a uniform wait in [base, min(base * 2^(attempt-1), cap)] seconds."""
        ceiling = min(self.settings.retry_base_seconds * 2 ** max(attempt - 1, 0), self.settings.retry_cap_seconds)
        return timedelta(seconds=self.rng.uniform(min(self.settings.retry_base_seconds, ceiling), ceiling))

    async def dispatch_once(self) -> int:
        """One round: claim, send, record. Returns how many deliveries it tried."""
        claimed = await self._claim()
        if not claimed:
            return 0
        # results are recorded as they come, a concurrency's worth at a time, so that a process dying
        # mid-batch leaves at most twice the concurrency sent and not recorded (sent again, with their key)
        buffer: list[_Result] = []
        for finished in asyncio.as_completed([asyncio.create_task(self._send(c)) for c in claimed]):
            buffer.append(await finished)
            if len(buffer) >= self.settings.dispatch_concurrency:
                await self._record(buffer)
                buffer = []
        if buffer:
            await self._record(buffer)
        return len(claimed)

    # --- 1. claim ----------------------------------------------------------------------------------------

    async def _claim(self) -> list[_Claimed]:
        cfg = self.settings
        now = clock.now()
        async with self._sessionmaker() as session, session.begin():
            # two index scans, each in its partial index's order and limited (one OR'd query sorted every due
            # row before taking the batch): the claims whose lease ran out first, then the pending by due time
            columns = (*(_DELIVERIES.c[name] for name in _CLAIMED_COLUMNS), Recipient.secret_sealed)
            claim = (select(*columns).select_from(_DELIVERIES)
                     .outerjoin(Recipient, Recipient.id == Delivery.recipient_id)
                     .with_for_update(of=_DELIVERIES, skip_locked=True))
            due = list((await session.execute(
                claim.where(Delivery.status == "sending", Delivery.lease_until <= now)
                .order_by(Delivery.lease_until).limit(cfg.dispatch_batch))).all())
            if len(due) < cfg.dispatch_batch:
                due += (await session.execute(
                    claim.where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
                    .order_by(Delivery.next_attempt_at).limit(cfg.dispatch_batch - len(due)))).all()
            if not due:
                return []
            interrupted = [d.id for d in due if d.status == "sending"]
            if interrupted:
                await session.execute(update(DeliveryAttempt).where(
                    DeliveryAttempt.delivery_id.in_(interrupted), DeliveryAttempt.outcome.is_(None)).values(
                    outcome="interrupted", finished_at=now, error="the sending process stopped before it recorded "
                                                                  "the result; sent again with the same key"))
                metrics.ATTEMPTS.labels("-", "interrupted").inc(len(interrupted))
            quiet = planner.quiet_until(now, cfg.quiet_start, cfg.quiet_end)
            opened: dict[int, str] = {}
            addresses: dict[str, str] = {}
            hashes: dict[int, str] = {}
            claimed: list[_Claimed] = []
            held: list[int] = []
            for delivery in due:
                if delivery.channel == "sms" and quiet is not None and not delivery.urgent:
                    held.append(delivery.id)
                    continue
                sealed = delivery.address_sealed or ""
                if sealed not in addresses:  # a recipient's deliveries share its sealed address: opened once
                    try:
                        addresses[sealed] = pii.unseal(self._private, sealed)
                    except Exception:
                        addresses[sealed] = ""  # sent as is: the channel refuses it permanently, never logged
                opened[delivery.id] = addresses[sealed]
                if delivery.channel == "sms" and opened[delivery.id]:
                    hashes[delivery.id] = pii.keyed_hash(self._hash_key, "phone", _digits(opened[delivery.id]))
            if held:
                await session.execute(update(Delivery).where(Delivery.id.in_(held)).values(
                    status="held", held_until=quiet, next_attempt_at=quiet, lease_until=None))
                assert quiet is not None
                await timers.schedule(session, planner.RELEASE_TIMER, quiet.isoformat(), quiet, {})
            limited = await self._rate_limited(session, now, hashes)
            if limited:
                await session.execute(update(_DELIVERIES).where(_DELIVERIES.c.id == bindparam("b_id")).values(
                    status="pending", next_attempt_at=bindparam("b_at"), lease_until=None,
                    address_hash=bindparam("b_hash")),
                    [{"b_id": i, "b_at": at, "b_hash": hashes[i]} for i, at in limited.items()])
                for delivery in due:
                    if delivery.id in limited:
                        metrics.DEFERRED.labels(delivery.template_key).inc()
            secrets: dict[str, str] = {}  # an endpoint's secret, opened once a round
            for delivery in due:
                if delivery.id in held or delivery.id in limited:
                    continue
                secret = None
                secret_sealed = delivery.secret_sealed
                if delivery.channel == "webhook" and secret_sealed:
                    if secret_sealed not in secrets:
                        secrets[secret_sealed] = pii.unseal(self._private, secret_sealed)
                    secret = secrets[secret_sealed]
                claimed.append(_Claimed(
                    delivery.id, str(delivery.key), delivery.channel, delivery.template_key, delivery.attempts + 1,
                    delivery.budget_from, delivery.occurred_at, opened[delivery.id], secret, delivery.subject,
                    delivery.body, dict(delivery.params or {})))
            if claimed:
                # set-based: one statement for the claim, one for the SMS's address hashes, one for the attempts
                # (a statement per row cost more than the sending itself)
                await session.execute(update(_DELIVERIES).where(_DELIVERIES.c.id.in_([c.id for c in claimed])).values(
                    status="sending", attempts=_DELIVERIES.c.attempts + 1,
                    lease_until=now + timedelta(seconds=cfg.send_lease_seconds)))
                hashed = [{"b_id": c.id, "b_hash": hashes[c.id]} for c in claimed if c.id in hashes]
                if hashed:
                    await session.execute(update(_DELIVERIES).where(_DELIVERIES.c.id == bindparam("b_id")).values(
                        address_hash=bindparam("b_hash")), hashed)
                await session.execute(pg_insert(DeliveryAttempt).values([
                    {"delivery_id": c.id, "number": c.attempt, "started_at": now} for c in claimed]))
        return claimed

    async def _rate_limited(self, session: Any, now: datetime, hashes: dict[int, str]) -> dict[int, datetime]:
        """The SMS of this claim over their recipient's limit, with the moment the limit allows the next one."""
        if not hashes:
            return {}
        cfg = self.settings
        window = timedelta(seconds=cfg.sms_rate_window_seconds)
        rows = (await session.execute(
            select(Delivery.address_hash, Delivery.sent_at)
            .where(Delivery.address_hash.in_(set(hashes.values())), Delivery.channel == "sms",
                   Delivery.status == "sent", Delivery.sent_at > now - window)
            .order_by(Delivery.sent_at))).all()
        sent: dict[str, list[datetime]] = {}
        for address_hash, sent_at in rows:
            sent.setdefault(address_hash, []).append(sent_at)
        limited: dict[int, datetime] = {}
        for delivery_id, address_hash in sorted(hashes.items()):
            times = sent.setdefault(address_hash, [])
            if len(times) >= cfg.sms_rate_limit:
                limited[delivery_id] = times[-cfg.sms_rate_limit] + window
            else:
                times.append(now)  # counts against the next of this claim
        return limited

    # --- 2. send -----------------------------------------------------------------------------------------

    async def _send(self, claimed: _Claimed) -> _Result:
        channel = self.channels.get(claimed.channel)
        if channel is None:
            return _Result(claimed, error=PermanentFailure(f"no channel {claimed.channel} is configured"))
        params = claimed.params.get("document", claimed.params) if claimed.channel == "webhook" else claimed.params
        message = Message(delivery_id=claimed.id, idempotency_key=claimed.key, channel=claimed.channel,
                          template_key=claimed.template_key, address=claimed.address, subject=claimed.subject,
                          body=claimed.body, params=params, secret=claimed.secret)
        async with self._semaphore:
            try:
                accepted = await channel.send(message)
            except SendFailure as exc:
                return _Result(claimed, error=exc)
            except Exception as exc:  # an adapter's bug: retried like a transient failure, its type only
                log.warning("channel raised an unexpected error", extra={
                    "event": "notify_channel_error", "channel": claimed.channel, "error": type(exc).__name__})
                return _Result(claimed, error=TransientFailure(f"unexpected {type(exc).__name__}"))
        return _Result(claimed, provider_id=accepted.provider_id)

    # --- 3. record ---------------------------------------------------------------------------------------

    async def _record(self, results: list[_Result]) -> None:
        cfg = self.settings
        now = clock.now()
        counted: list[tuple[str, str, str | None, float | None]] = []  # channel, attempt outcome, final, latency
        sent: list[dict[str, Any]] = []
        finished: list[dict[str, Any]] = []
        async with self._sessionmaker() as session, session.begin():
            for r in results:
                c = r.claimed
                if r.error is None:
                    sent.append({"b_id": c.id, "b_provider": r.provider_id})
                    outcome, final, error = "accepted", "sent", None
                    latency = (now - c.occurred_at.astimezone(UTC)).total_seconds()
                else:
                    error = str(r.error)[:1000] or type(r.error).__name__
                    permanent = isinstance(r.error, PermanentFailure)
                    spent = c.attempt - c.budget_from
                    latency = None
                    if permanent or spent >= cfg.max_attempts:
                        values: dict[str, Any] = {"status": "dead", "dead_at": now, "lease_until": None,
                                                  "last_error": error}
                        outcome, final = ("rejected" if permanent else "failed"), "dead"
                    else:
                        values = {"status": "pending", "next_attempt_at": now + self.backoff(spent),
                                  "lease_until": None, "last_error": error}
                        outcome, final = "failed", None
                    # only if this process still holds the claim (a stale one must not undo a newer attempt)
                    await session.execute(update(Delivery).where(
                        Delivery.id == c.id, Delivery.status == "sending", Delivery.attempts == c.attempt
                    ).values(**values))
                finished.append({"b_id": c.id, "b_number": c.attempt, "b_outcome": outcome,
                                 "b_provider": r.provider_id, "b_error": error})
                counted.append((c.channel, outcome, final, latency))
            # the accepted ones and every attempt in one statement each, their values as arrays
            if sent:
                await session.execute(_RECORD_SENT, {
                    "ids": [row["b_id"] for row in sent], "providers": [row["b_provider"] for row in sent],
                    "now": now})
            await session.execute(_RECORD_ATTEMPTS, {
                "ids": [row["b_id"] for row in finished], "numbers": [row["b_number"] for row in finished],
                "outcomes": [row["b_outcome"] for row in finished],
                "providers": [row["b_provider"] for row in finished], "errors": [row["b_error"] for row in finished],
                "now": now})
        for channel, outcome, final, latency in counted:
            metrics.ATTEMPTS.labels(channel, outcome).inc()
            if final is not None:
                metrics.DELIVERIES.labels(channel, final).inc()
            if latency is not None:
                metrics.LATENCY.labels(channel).observe(max(latency, 0.0))
        if any(final == "dead" for _, _, final, _ in counted):
            log.warning("deliveries went to the dead letters", extra={
                "event": "notify_dead_letters", "count": sum(1 for *_, f, _ in counted if f == "dead")})


async def replay(session: Any, delivery_id: int) -> Delivery | None:
    """A dead delivery is due again now, with a fresh retry budget and the same idempotency key."""
    delivery = await session.get(Delivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.status != "dead":
        return delivery
    delivery.status = "pending"
    delivery.next_attempt_at = clock.now()
    delivery.budget_from = delivery.attempts
    delivery.dead_at = None
    return delivery


def _digits(phone: str) -> str:
    try:
        return pii.normalize_phone(phone)
    except Exception:
        return phone

