"""Publishing an event: one outbox row written in the caller's transaction, relayed to Kafka after commit.

A rolled-back transaction publishes nothing; a committed one is published at least once by the relay
(shared.events.relay), which `NOTIFY hall_outbox` wakes as soon as the transaction commits.
"""

from __future__ import annotations

from sqlalchemy import DateTime, String, Uuid, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.envelope import Envelope, EventData
from shared.events.topics import topic_for
from shared.logging import correlation_id as current_correlation_id

NOTIFY_CHANNEL = "hall_outbox"

# One round trip: take the row's sequence first so the stored envelope carries it, insert, and queue the
# notification (PostgreSQL delivers it at commit, and never for a rolled-back transaction).
_INSERT = text(f"""
    WITH seq AS (SELECT nextval(pg_get_serial_sequence('outbox', 'sequence')) AS value)
    INSERT INTO outbox (sequence, id, type, topic, key, reference_key, envelope, created_at)
    OVERRIDING SYSTEM VALUE
    SELECT seq.value, :id, :type, :topic, :key, :reference_key,
           jsonb_set(CAST(:envelope AS jsonb), '{{sequence}}', to_jsonb(seq.value)), :created_at
    FROM seq CROSS JOIN (SELECT pg_notify('{NOTIFY_CHANNEL}', :producer)) AS wake
    RETURNING sequence
""").bindparams(
    bindparam("id", type_=Uuid),
    bindparam("envelope", type_=String),
    bindparam("created_at", type_=DateTime(timezone=True)),
)


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


async def publish(session: AsyncSession, producer: str, payload: EventData, *, subject: str,
                  center_id: str | None, correlation_id: str | None = None) -> Envelope:
    """Write `payload` to the outbox in the session's transaction; returns the envelope with its sequence.

    Never commits: the caller's unit of work does, and the event exists exactly when the change does.
    The correlation id defaults to the current request's.
    """
    envelope = Envelope.wrap(
        producer, payload, subject=subject, center_id=center_id,
        correlation_id=correlation_id if correlation_id is not None else current_correlation_id.get(),
    )
    sequence = (await session.execute(_INSERT, {
        "id": envelope.id,
        "type": envelope.type,
        "topic": topic_for(producer).name,
        "key": kafka_key(producer, subject=subject, center_id=center_id),
        "reference_key": reference_key(payload, subject),
        "envelope": envelope.model_dump_json(),
        "created_at": envelope.occurred_at,
        "producer": producer,
    })).scalar_one()
    return envelope.model_copy(update={"sequence": sequence})
