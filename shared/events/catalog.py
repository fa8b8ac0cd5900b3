"""The payload models of every event type, by producer. Consumers import them from here."""

from __future__ import annotations

from typing import ClassVar, Literal

from shared.events.envelope import EventData, event_model


@event_model
class CenterUpserted(EventData):
    """A centre was created or changed (queue). Reference data: kept for ever in the outbox."""

    type: Literal["center.upserted"] = "center.upserted"
    version: ClassVar[int] = 1
    reference: ClassVar[bool] = True

    id: str
    name: str
    address: str | None = None
