"""Events: one versioned envelope, payload models registered by (type, version), topics declared once.

Publishing goes through the transactional outbox (shared.events.outbox), consuming through the
idempotent inbox wrapper (shared.events.consumer); only the relay talks to Kafka.
"""

from shared.events.envelope import Envelope, EventData, event_model, registry
from shared.events.topics import TOPICS, Topic, topic_for

__all__ = ["Envelope", "EventData", "event_model", "registry", "TOPICS", "Topic", "topic_for"]
