"""The one event envelope and the registry of payload models.

A payload model declares `type: Literal["center.upserted"]` and its `version`; a breaking change is
a new model with version + 1, kept beside the old one until every consumer has moved.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from shared import clock


class EventData(BaseModel):
    """Base of every payload. Subclasses set `type` (a Literal) and `version`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    version: ClassVar[int] = 1
    reference: ClassVar[bool] = False  # reference data: the latest per subject is kept for ever


class Envelope(BaseModel):
    """What travels on Kafka (JSON) and what consumers and feeds receive."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    version: int = 1
    occurred_at: datetime
    producer: str
    center_id: str | None = None
    subject: str
    correlation_id: str | None = None
    sequence: int | None = Field(default=None, description="the producer's outbox sequence (set on insert)")
    data: dict[str, Any]

    @classmethod
    def wrap(cls, producer: str, payload: EventData, *, subject: str, center_id: str | None,
             correlation_id: str | None = None, occurred_at: datetime | None = None) -> Envelope:
        return cls(type=payload.type, version=payload.version, occurred_at=occurred_at or clock.now(),
                   producer=producer, center_id=center_id, subject=subject, correlation_id=correlation_id,
                   data=payload.model_dump(mode="json", exclude={"type"}))

    def payload(self) -> EventData:
        """The typed payload, via the registry (KeyError for an unknown type/version)."""
        model = registry[(self.type, self.version)]
        return model.model_validate({**self.data, "type": self.type})


registry: dict[tuple[str, int], type[EventData]] = {}


def event_model(cls: type[EventData]) -> type[EventData]:
    """Class decorator registering a payload model under its (type, version)."""
    literal = cls.model_fields["type"].annotation
    type_name = getattr(literal, "__args__", (None,))[0]
    if not isinstance(type_name, str):
        raise TypeError(f"{cls.__name__}.type must be a Literal of the event type")
    key = (type_name, cls.version)
    if key in registry and registry[key] is not cls:
        raise TypeError(f"event {key} registered twice")
    registry[key] = cls
    return cls
