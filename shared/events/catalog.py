"""The payload models of every event type, by producer. Consumers import them from here."""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

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


class CalendarDay(BaseModel):
    model_config = ConfigDict(frozen=True)

    date: date
    kind: Literal["holiday", "working"]
    name: str | None = None


@event_model
class CalendarChanged(EventData):
    """The complete state of one calendar scope after a change (cases). Reference data.

    scope "center": every override of that centre; "year": a whole imported year; "package": the
    official years the installed chinese-calendar package carries changed (an upgrade).
    """

    type: Literal["calendar.changed"] = "calendar.changed"
    version: ClassVar[int] = 1
    reference: ClassVar[bool] = True

    scope: Literal["center", "year", "package"]
    center_id: str | None = None
    year: int | None = None
    calendar_version: int
    days: list[CalendarDay] = []
    fingerprint: str | None = None


@event_model
class CalendarFallbackUsed(EventData):
    """System alert: a date in use fell in a year no official schedule covers (Monday-Friday fallback)."""

    type: Literal["calendar.fallback_used"] = "calendar.fallback_used"
    version: ClassVar[int] = 1

    year: int
    first_used_for: date


@event_model
class UserUpserted(EventData):
    """A staff account was created or changed (identity). Reference data: kept for ever in the outbox.

    Contacts travel masked (for display) and sealed for notify (only notify can open them)."""

    type: Literal["user.upserted"] = "user.upserted"
    version: ClassVar[int] = 1
    reference: ClassVar[bool] = True

    id: str
    display_name: str
    post_title: str | None = None
    photo_url: str | None = None
    role: str
    centers: list[str] = []
    department: str | None = None
    email_masked: str | None = None
    email_sealed: str | None = None
    phone_masked: str | None = None
    phone_sealed: str | None = None
    active: bool = True


@event_model
class UserDeactivated(EventData):
    """A staff account was deactivated (identity): its sessions are ended, it can no longer sign in."""

    type: Literal["user.deactivated"] = "user.deactivated"
    version: ClassVar[int] = 1

    id: str
