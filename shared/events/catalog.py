"""The payload models of every event type, by producer. Consumers import them from here."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

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


# queue (排队叫号): centres' queue settings and hall schedule, services, windows, tickets, appointments

Weekday = Annotated[int, Field(ge=1, le=7, description="ISO weekday: Monday 1 ... Sunday 7")]


class QueueSettings(BaseModel):
    """A centre's calling settings (DOMAIN.md "Queue")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    announcement_template: str = Field("请{number}号到{window}号窗口办理", min_length=1, max_length=200,
                                       description="the display's text for a call: {number} and {window}")
    green_channel_n: int = Field(3, ge=1, le=20, description="N of the N:1 rule: green calls before an ordinary one")
    requeue_k: int = Field(3, ge=0, le=50, description="a requeued no-show goes behind the next K waiting")
    recall_limit: int = Field(2, ge=0, le=10, description="recalls allowed before the clerk must skip")
    day_close_time: time = Field(time(23, 0), description="local time the waiting tickets expire")


class Period(BaseModel):
    """An opening period of a day, local time, start inclusive, end exclusive."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time
    end: time


class NoonService(BaseModel):
    """午间服务: over the lunch break these windows stay open (the others pause)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time
    end: time
    windows: list[str]


class ScheduleException(BaseModel):
    """A dated exception: closed all day, or open with these periods (a weekend or holiday opening)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    date: date
    closed: bool = False
    periods: list[Period] = []
    reason: str | None = Field(None, max_length=200)


class HallSchedule(BaseModel):
    """A centre's hall schedule (延时服务, 午间服务, 双休日服务): the whole of it, as stored and published.

    `weekly` gives each weekday's periods (Saturday and Sunday: the weekend hours, used as `weekend_mode`
    says); a weekday the calendar marks off is a holiday (`holiday_mode`); a weekend day the calendar marks
    working (调休) opens with Monday's periods. Issuing stops at `issuing_cutoff` (default: the end of the
    day's last period); tickets already waiting are still served."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    weekly: dict[Weekday, list[Period]]
    noon_service: NoonService | None = None
    weekend_mode: Literal["appointment_first", "appointment_only", "open", "closed"] = "appointment_first"
    holiday_mode: Literal["closed", "as_weekend"] = "closed"
    issuing_cutoff: time | None = None
    exceptions: list[ScheduleException] = []


@event_model
class CenterSettingsChanged(EventData):
    """A centre's queue settings changed (queue). Reference data: the complete settings."""

    type: Literal["center.settings_changed"] = "center.settings_changed"
    version: ClassVar[int] = 1
    reference: ClassVar[bool] = True

    center_id: str
    settings: QueueSettings


@event_model
class CenterScheduleChanged(EventData):
    """A centre's hall schedule changed (queue). Reference data: the whole schedule, exceptions included."""

    type: Literal["center.schedule_changed"] = "center.schedule_changed"
    version: ClassVar[int] = 1
    reference: ClassVar[bool] = True

    center_id: str
    schedule: HallSchedule


class AppointmentSlot(BaseModel):
    """Bookable appointment slots of a service on a weekday: each `minutes` long from start to end."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    weekday: Weekday
    start: time
    end: time
    minutes: int = Field(30, ge=5, le=240)
    capacity: int = Field(ge=0, le=1000)


@event_model
class ServiceUpserted(EventData):
    """A service (业务类型) was created or changed (queue). Reference data: its full state."""

    type: Literal["service.upserted"] = "service.upserted"
    version: ClassVar[int] = 1
    reference: ClassVar[bool] = True

    center_id: str
    code: str
    name: str
    prefix: str
    department: str | None = None
    wait_threshold_minutes: int
    default_service_minutes: int
    daily_limit_per_person: int | None = None
    slots: list[AppointmentSlot] = []
    active: bool = True


class ServiceWeight(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    service_code: str
    weight: int = Field(ge=0, le=100, description="0: a reserve service, called only when nothing else waits")


@event_model
class WindowUpserted(EventData):
    """A window (窗口) was created or changed (queue). Reference data: its full state."""

    type: Literal["window.upserted"] = "window.upserted"
    version: ClassVar[int] = 1
    reference: ClassVar[bool] = True

    center_id: str
    number: str
    name: str
    department: str | None = None
    services: list[ServiceWeight]
    duty: bool = False
    joint_approval: bool = False
    a_clerk: str | None = None
    b_clerk: str | None = None
    active: bool = True


class Clerk(BaseModel):
    """The clerk serving at a window as its public sign shows them (岗位公示): nothing personal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    display_name: str
    post_title: str | None = None
    photo_url: str | None = None


@event_model
class WindowSignedIn(EventData):
    """A clerk signed in at a window, at its terminal, in the window's A or B post (queue)."""

    type: Literal["window.signed_in"] = "window.signed_in"
    version: ClassVar[int] = 1

    center_id: str
    window: str
    post: Literal["A", "B"]
    clerk: Clerk
    device: str | None = None


@event_model
class WindowSignedOut(EventData):
    """A clerk signed out of a window (queue); `reason` when the hall manager closed it."""

    type: Literal["window.signed_out"] = "window.signed_out"
    version: ClassVar[int] = 1

    center_id: str
    window: str
    clerk_id: str
    reason: str | None = None


TicketKind = Literal["walk_in", "green", "appointment", "transferred"]
Channel = Literal["kiosk", "staff", "online"]


class TicketFacts(BaseModel):
    """What every ticket event says of the ticket: nothing of the person (that is ticket.issued's alone, so
    the events a hall display receives, calls and recalls, carry none)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ticket_id: int
    center_id: str
    business_date: date
    service_code: str
    department: str | None = None
    number: str
    kind: TicketKind
    channel: Channel
    issued_at: datetime
    duty_only: bool = False


@event_model
class TicketIssued(EventData):
    """A ticket was issued (queue): its number, the people ahead and the estimated wait at issue, and the
    person as hash and mask only, the phone sealed for notify (the "your turn is near" SMS). Later events of
    the ticket name it by `ticket_id`."""

    type: Literal["ticket.issued"] = "ticket.issued"
    version: ClassVar[int] = 1

    ticket: TicketFacts
    people_ahead: int
    estimated_wait_s: int
    id_number_hash: str | None = None
    id_number_masked: str | None = None
    phone_hash: str | None = None
    phone_masked: str | None = None
    phone_sealed: str | None = None
    appointment_code: str | None = None


class CallFacts(BaseModel):
    """Where and by whom a ticket is called, and how long it waited (from its effective arrival)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: str
    clerk: Clerk | None = None
    post: Literal["A", "B"] | None = None
    wait_s: int
    tier: int = Field(description="the tier of the call-next rule that chose it (1-5); 0: called by hand")
    announcement: str


@event_model
class TicketCalled(EventData):
    """A window called a ticket (queue); `call.announcement` is the text the display shows and speaks."""

    type: Literal["ticket.called"] = "ticket.called"
    version: ClassVar[int] = 1

    ticket: TicketFacts
    call: CallFacts
    priority_streak: int


@event_model
class TicketRecalled(EventData):
    """A called ticket was called again (重呼), the `recalls`-th time (queue)."""

    type: Literal["ticket.recalled"] = "ticket.recalled"
    version: ClassVar[int] = 1

    ticket: TicketFacts
    call: CallFacts
    recalls: int


@event_model
class TicketSkipped(EventData):
    """A called ticket did not come (过号, a no-show) (queue)."""

    type: Literal["ticket.skipped"] = "ticket.skipped"
    version: ClassVar[int] = 1

    ticket: TicketFacts
    window: str
    clerk_id: str | None = None


@event_model
class TicketStarted(EventData):
    """Service of a called ticket began at its window (queue)."""

    type: Literal["ticket.started"] = "ticket.started"
    version: ClassVar[int] = 1

    ticket: TicketFacts
    window: str
    clerk_id: str | None = None
    wait_s: int


@event_model
class TicketFinished(EventData):
    """Service of a ticket ended at its window (queue): the wait and the service time for the monitor."""

    type: Literal["ticket.finished"] = "ticket.finished"
    version: ClassVar[int] = 1

    ticket: TicketFacts
    window: str
    clerk_id: str | None = None
    wait_s: int
    service_s: int


@event_model
class TicketTransferred(EventData):
    """A ticket in service was transferred (queue): it keeps its number and waits first in line at the
    target window or service."""

    type: Literal["ticket.transferred"] = "ticket.transferred"
    version: ClassVar[int] = 1

    ticket: TicketFacts
    from_window: str
    clerk_id: str | None = None
    to_window: str | None = None
    to_service_code: str | None = None
    service_s: int


@event_model
class TicketRequeued(EventData):
    """A no-show went back into the line behind the next K waiting tickets (过号顺延) (queue)."""

    type: Literal["ticket.requeued"] = "ticket.requeued"
    version: ClassVar[int] = 1

    ticket: TicketFacts
    effective_arrival: datetime
    behind: int


@event_model
class TicketCancelled(EventData):
    """A waiting ticket was cancelled (queue)."""

    type: Literal["ticket.cancelled"] = "ticket.cancelled"
    version: ClassVar[int] = 1

    ticket: TicketFacts
    by: str | None = None


@event_model
class TicketExpired(EventData):
    """A ticket still waiting (or a no-show not requeued) at day close expired (queue): nothing carries over."""

    type: Literal["ticket.expired"] = "ticket.expired"
    version: ClassVar[int] = 1

    ticket: TicketFacts
    status_before: str


@event_model
class WaitingCounts(EventData):
    """The absolute waiting counts of a centre's services after a change (queue): a display applying it
    twice stays right."""

    type: Literal["queue.waiting_counts"] = "queue.waiting_counts"
    version: ClassVar[int] = 1

    center_id: str
    business_date: date
    waiting: dict[str, int]


class AppointmentFacts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    appointment_id: int
    code: str
    center_id: str
    service_code: str
    slot_start: datetime
    channel: Channel
    id_number_hash: str | None = None
    id_number_masked: str | None = None
    phone_hash: str | None = None
    phone_masked: str | None = None


@event_model
class AppointmentBooked(EventData):
    """An appointment (预约) was booked (queue); the phone sealed for notify (the reminder)."""

    type: Literal["appointment.booked"] = "appointment.booked"
    version: ClassVar[int] = 1

    appointment: AppointmentFacts
    phone_sealed: str | None = None


@event_model
class AppointmentCancelled(EventData):
    type: Literal["appointment.cancelled"] = "appointment.cancelled"
    version: ClassVar[int] = 1

    appointment: AppointmentFacts
    by: str | None = None


@event_model
class AppointmentCheckedIn(EventData):
    """An appointment was checked in at the kiosk: its ticket (queue)."""

    type: Literal["appointment.checked_in"] = "appointment.checked_in"
    version: ClassVar[int] = 1

    appointment: AppointmentFacts
    ticket_id: int
    number: str
    on_time: bool = Field(description="within -60/+20 minutes of the slot start (else a walk-in ticket)")
