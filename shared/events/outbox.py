"""Publishing an event: one outbox row written in the caller's transaction, relayed to Kafka after commit.

A rolled-back transaction publishes nothing; a committed one is published at least once by the relay
(shared.events.relay), which `NOTIFY hall_outbox` wakes as soon as the transaction commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import driver_connection
from shared.events.envelope import Envelope, EventData
from shared.events.topics import topic_for
from shared.logging import correlation_id as current_correlation_id

NOTIFY_CHANNEL = "hall_outbox"

# One round trip for any number of events: each row takes its sequence first, so that the stored envelope
# carries it, in the order given; the notification is queued once (PostgreSQL delivers it at commit, and
# never for a rolled-back transaction). Sent straight to asyncpg (shared.db.driver_connection): every
# change of every service writes here.
_INSERT = f"""
    WITH given AS (
        SELECT nextval(pg_get_serial_sequence('outbox', 'sequence')) AS sequence, r.*
        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
             WITH ORDINALITY AS r(id, type, topic, key, reference_key, envelope, created_at, n)
        ORDER BY r.n
    )
    INSERT INTO outbox (sequence, id, type, topic, key, reference_key, envelope, created_at)
    OVERRIDING SYSTEM VALUE
    SELECT given.sequence, given.id, given.type, given.topic, given.key, given.reference_key,
           jsonb_set(CAST(given.envelope AS jsonb), '{{sequence}}', to_jsonb(given.sequence)), given.created_at
    FROM given CROSS JOIN (SELECT pg_notify('{NOTIFY_CHANNEL}', $8)) AS wake
    ORDER BY given.n
    RETURNING id, sequence
"""


def kafka_key(producer: str, *, subject: str, center_id: str | None) -> str:
    """The Kafka key of an event: its centre on centre-keyed topics (queue), else its subject."""
    if topic_for(producer).key == "center":
        if center_id is None:
            raise ValueError(f"{producer} events are keyed by centre: center_id is required")
        return center_id
    return subject


def reference_key(payload: EventData, subject: str) -> str | None:
    """`center:320102` for reference data (the latest row per key is kept for ever), else None."""
    if not payload.reference:
        return None
    return f"{payload.type.split('.', 1)[0]}:{subject}"


@dataclass(frozen=True)
class Outgoing:
    """One event to publish: the payload, its subject and centre."""

    payload: EventData
    subject: str
    center_id: str | None


async def publish(session: AsyncSession, producer: str, payload: EventData, *, subject: str,
                  center_id: str | None, correlation_id: str | None = None) -> Envelope:
    """Write `payload` to the outbox in the session's transaction; returns the envelope with its sequence.

    Never commits: the caller's unit of work does, and the event exists exactly when the change does.
    The correlation id defaults to the current request's.
    """
    (envelope,) = await publish_all(session, producer, [Outgoing(payload, subject, center_id)],
                                    correlation_id=correlation_id)
    return envelope


async def publish_all(session: AsyncSession, producer: str, events: Sequence[Outgoing], *,
                      correlation_id: str | None = None) -> list[Envelope]:
    """`publish` for several events of one change, in one statement; their sequences follow their order."""
    cid = correlation_id if correlation_id is not None else current_correlation_id.get()
    envelopes = [Envelope.wrap(producer, e.payload, subject=e.subject, center_id=e.center_id, correlation_id=cid)
                 for e in events]
    if not envelopes:
        return []
    topic = topic_for(producer).name
    db = await driver_connection(session)
    rows = await db.fetch(
        _INSERT, [e.id for e in envelopes], [e.type for e in envelopes], [topic] * len(envelopes),
        [kafka_key(producer, subject=e.subject, center_id=e.center_id) for e in events],
        [reference_key(e.payload, e.subject) for e in events], [e.model_dump_json() for e in envelopes],
        [e.occurred_at for e in envelopes], producer)
    sequences = {row["id"]: row["sequence"] for row in rows}
    return [e.model_copy(update={"sequence": sequences[e.id]}) for e in envelopes]
