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
    vacancy_minutes: int = Field(3, ge=1, le=60, description="a window away or silent longer than this, while "
                                 "its services have waiting tickets and no B post signed in, is vacant (空岗)")
    turn_near_threshold: int = Field(3, ge=1, le=50, description="ticket.turn_near once the people ahead of a "
                                     "ticket that left a phone fall to this many")
    complaint_hotline: str | None = Field(None, pattern=r"^[0-9][0-9-]{2,31}$",
                                        description="the hall's complaint line (投诉电话) the display scrolls")


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
    replaces: str | None = Field(None, description="the clerk whose session this sign-in ended (the B post "
                                 "stepping in for an away or silent A post)")


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


@event_model
class WindowAway(EventData):
    """The clerk stepped away from the window (暂离) with a message for the display (去向留言) (queue)."""

    type: Literal["window.away"] = "window.away"
    version: ClassVar[int] = 1

    center_id: str
    window: str
    clerk_id: str
    post: Literal["A", "B"] | None = None
    message: str
    at: datetime


@event_model
class WindowBack(EventData):
    """The clerk is back at the window after `away_s` seconds away (queue)."""

    type: Literal["window.back"] = "window.back"
    version: ClassVar[int] = 1

    center_id: str
    window: str
    clerk_id: str
    post: Literal["A", "B"] | None = None
    message: str | None = None
    away_s: int
    at: datetime


@event_model
class WindowClosed(EventData):
    """The window was closed, by its clerk (day end) or the hall manager, with a reason (业务学习, 系统故障); the
    clerk signed in there, if any, is signed out by it (queue)."""

    type: Literal["window.closed"] = "window.closed"
    version: ClassVar[int] = 1

    center_id: str
    window: str
    clerk_id: str | None = None
    post: Literal["A", "B"] | None = None
    by: str
    reason: str
    at: datetime


@event_model
class WindowHeartbeatLost(EventData):
    """A signed-in window's terminal has not beaten for 90 s (queue): once, until a beat restores it."""

    type: Literal["window.heartbeat_lost"] = "window.heartbeat_lost"
    version: ClassVar[int] = 1

    center_id: str
    window: str
    clerk_id: str | None = None
    post: Literal["A", "B"] | None = None
    last_heartbeat_at: datetime
    silent_s: int


@event_model
class WindowHeartbeatRestored(EventData):
    """A window whose heartbeat was lost beat again after `silent_s` seconds of silence (queue)."""

    type: Literal["window.heartbeat_restored"] = "window.heartbeat_restored"
    version: ClassVar[int] = 1

    center_id: str
    window: str
    clerk_id: str | None = None
    post: Literal["A", "B"] | None = None
    lost_at: datetime
    silent_s: int
    at: datetime


@event_model
class WindowLeaveRecorded(EventData):
    """A clerk's leave (请假) was recorded (queue): the windows where they hold the A post expect the B post."""

    type: Literal["window.leave_recorded"] = "window.leave_recorded"
    version: ClassVar[int] = 1

    center_id: str
    leave_id: int
    clerk_id: str
    starts_on: date
    ends_on: date
    reason: str | None = None
    windows: list[str] = Field(description="the windows whose A post the clerk holds")
    by: str


@event_model
class TicketTurnNear(EventData):
    """The people ahead of a ticket that left a phone fell to the centre's threshold (queue), once per ticket:
    notify sends the "your turn is near" SMS to the sealed phone."""

    type: Literal["ticket.turn_near"] = "ticket.turn_near"
    version: ClassVar[int] = 1

    ticket: TicketFacts
    people_ahead: int
    estimated_wait_s: int
    phone_hash: str | None = None
    phone_masked: str | None = None
    phone_sealed: str


RequestChannel = Literal["in_person", "phone", "letter"]


class AppointmentRequestFacts(BaseModel):
    """What every event of a staff appointment request (当面、电话、信函预约) says of it: `due_at` is the end of
    the working day after the request's (answered within 1 working day), the contact masked and sealed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: int
    center_id: str
    service_code: str
    department: str | None = None
    channel: RequestChannel
    preferred_slots: list[datetime]
    requested_at: datetime
    due_at: datetime
    phone_hash: str
    phone_masked: str
    phone_sealed: str


@event_model
class AppointmentRequested(EventData):
    """Staff recorded an appointment request (queue); the monitor watches `request.due_at`."""

    type: Literal["appointment.requested"] = "appointment.requested"
    version: ClassVar[int] = 1

    request: AppointmentRequestFacts
    by: str


@event_model
class AppointmentConfirmed(EventData):
    """An appointment request was answered with a slot, a place and the materials to bring (queue); the
    booking's check-in code goes to the person."""

    type: Literal["appointment.confirmed"] = "appointment.confirmed"
    version: ClassVar[int] = 1

    request: AppointmentRequestFacts
    slot_start: datetime
    place: str
    materials: list[str] = []
    appointment_id: int
    appointment_code: str
    answered_at: datetime
    on_time: bool = Field(description="answered by request.due_at")
    by: str


@event_model
class AppointmentDeclined(EventData):
    """An appointment request was declined with a reason, approved by a chief representative (queue)."""

    type: Literal["appointment.declined"] = "appointment.declined"
    version: ClassVar[int] = 1

    request: AppointmentRequestFacts
    reason: str
    answered_at: datetime
    on_time: bool = Field(description="answered by request.due_at")
    approved_by: str


class NoticeFacts(BaseModel):
    """A hall notice as the display scrolls it: shown from `starts_on` to `ends_on` (local dates, inclusive)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    text: str
    starts_on: date | None = None
    ends_on: date | None = None
    position: int


class ItemLimits(BaseModel):
    """An item of the case registry's catalogue as the display scrolls it: its time limits and fees."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    name: str
    promised_limit_days: int
    legal_limit_days: int
    fees: str | None = None


@event_model
class CenterNoticesChanged(EventData):
    """The hall display's scrolling area changed (queue). Reference data: the whole of it, every notice not yet
    ended (each with its period: the display shows those of its day), the complaint phone, the items."""

    type: Literal["center.notices_changed"] = "center.notices_changed"
    version: ClassVar[int] = 1
    reference: ClassVar[bool] = True

    center_id: str
    notices: list[NoticeFacts]
    complaint_hotline: str | None = None
    items: list[ItemLimits] = []


@event_model
class EvaluationSubmitted(EventData):
    """A service was rated (好差评) (queue): once per ticket, by the window's evaluator or the person; `case_no`
    when the rating names a case, so the case registry attaches it."""

    type: Literal["evaluation.submitted"] = "evaluation.submitted"
    version: ClassVar[int] = 1

    evaluation_id: int
    center_id: str
    ticket_id: int
    service_code: str
    department: str | None = None
    window: str | None = None
    clerk_id: str | None = None
    rating: int = Field(ge=1, le=5, description="5 非常满意, 4 满意, 3 基本满意, 2 不满意, 1 非常不满意")
    comment: str | None = None
    case_no: str | None = None
    channel: Literal["evaluator", "public"]
    submitted_at: datetime
    ticket_number: str | None = None
    business_date: date | None = None
    post: Literal["A", "B"] | None = None


# cases (办件): departments, the item catalogue, cases and their legal clock

ItemKind = Literal["immediate", "promised", "joint", "reported"]
CaseStatus = Literal["in_progress", "extension_pending", "refusal_pending", "supplement", "special", "forwarded",
                     "completed", "delivered", "withdrawn"]
PauseKind = Literal["supplement", "special", "forward"]


@event_model
class DepartmentUpserted(EventData):
    """A department (窗口单位) was created or changed (cases). Reference data: its full state; the head's
    contacts masked for display and sealed for notify."""

    type: Literal["department.upserted"] = "department.upserted"
    version: ClassVar[int] = 1
    reference: ClassVar[bool] = True

    center_id: str
    code: str
    name: str
    head_name: str | None = None
    head_phone_masked: str | None = None
    head_phone_sealed: str | None = None
    head_email_masked: str | None = None
    head_email_sealed: str | None = None
    chief_rep: str | None = Field(None, description="the identity user id of the chief representative (首席代表)")
    active: bool = True


class StageLimit(BaseModel):
    """A stage (环节) of an item, e.g. 审查 or 决定, and its limit in working days from its start."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=50)
    limit_days: int = Field(ge=0, le=365)


class Material(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=200)
    required: bool = True


class ProcedureStep(BaseModel):
    """One step of an item's procedure (办理流程) as the service guide shows it, e.g. 申请, 受理, 审查, 决定."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=50)
    description: str | None = Field(None, max_length=2000)


# 服务对象 of an item (whom it serves): 自然人, 企业法人, 事业单位法人, 社会组织法人, 非法人企业, 行政机关, 其他组织
ServiceObject = Literal["natural_person", "enterprise", "public_institution", "social_organization",
                        "unincorporated_enterprise", "government_agency", "other_organization"]


@event_model
class ItemUpserted(EventData):
    """An item (事项) of the catalogue was created or changed (cases). Reference data: its full state."""

    type: Literal["item.upserted"] = "item.upserted"
    version: ClassVar[int] = 1
    reference: ClassVar[bool] = True

    center_id: str
    code: str
    name: str
    department: str
    kind: ItemKind
    legal_limit_days: int
    promised_limit_days: int
    stages: list[StageLimit] = []
    warn_days: int = 1
    max_extension_days: int = 10
    forward_followup_days: int = 20
    special_limit_days: int = 10
    materials: list[Material] = []
    fees: str | None = None
    legal_basis: str | None = None
    meets_compression_target: bool | None = None
    active: bool = True
    # cases II, the service guide (办事指南): optional additions, version 1 still
    conditions: list[str] = []
    procedure: list[ProcedureStep] = []
    fee_basis: str | None = None
    service_objects: list[ServiceObject] = []
    compression_target_percent: int | None = Field(
        None, description="the centre's target meets_compression_target was judged against (30 or 50)")


class ItemRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    name: str
    promised_limit_days: int
    legal_limit_days: int


class Handler(BaseModel):
    """The clerk handling a case: the identity user id and the name staff see."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    display_name: str


class CaseFacts(BaseModel):
    """What every case event says of its case, so the monitor and notify never call back: the clock as it
    stands (latest `clock_version`), who handles it, and the applicant as a keyed hash only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_no: str
    center_id: str
    kind: ItemKind
    status: CaseStatus
    stage: str
    stage_index: int
    accepted_at: datetime
    due_at: datetime
    legal_due_at: datetime
    warn_at: datetime | None = None
    stage_due_at: datetime | None = None
    clock_version: int
    department: str
    item: ItemRef
    handler: Handler
    window: str | None = None
    applicant_hash: str
    applicant_masked: str = Field(description="the name masked for public boards (张*)")
    expedited: bool = False
    imported: bool = False
    overdue_at_import: bool = False


@event_model
class CaseAccepted(EventData):
    """A case was accepted (受理) (cases): its number, clock and receipt facts. The applicant's phone and the
    lookup code are sealed for notify (the 承诺件告知单 SMS); the ID number travels as hash and mask."""

    type: Literal["case.accepted"] = "case.accepted"
    version: ClassVar[int] = 1

    case: CaseFacts
    source: Literal["window", "online", "agent"]
    ticket_id: int | None = None
    notice_no: str | None = None
    materials: list[str] = []
    id_number_masked: str
    phone_masked: str | None = None
    phone_sealed: str | None = None
    lookup_code_sealed: str
    org: str | None = None
    agent: Handler | None = Field(None, description="全程代办: the agent assigned when source is agent")


@event_model
class CaseStageAdvanced(EventData):
    type: Literal["case.stage_advanced"] = "case.stage_advanced"
    version: ClassVar[int] = 1

    case: CaseFacts
    from_stage: str
    to_stage: str


@event_model
class CasePaused(EventData):
    """The clock of a case stopped (cases): 补正 with the whole list of missing materials (一次性告知), or a
    特别程序 with its limit moment and how many this case has had. Forwarding is case.forwarded."""

    type: Literal["case.paused"] = "case.paused"
    version: ClassVar[int] = 1

    case: CaseFacts
    pause_kind: Literal["supplement", "special"]
    reason: str
    paused_on: date
    missing_materials: list[str] = []
    special_limit_at: datetime | None = None
    special_count: int = 0


@event_model
class CaseResumed(EventData):
    """The clock of a case runs again (cases); `shift_days` working days were added to its due dates."""

    type: Literal["case.resumed"] = "case.resumed"
    version: ClassVar[int] = 1

    case: CaseFacts
    pause_kind: PauseKind
    paused_on: date
    resumed_on: date
    shift_days: int


@event_model
class CaseExtensionRequested(EventData):
    """A clerk asked the chief representative for an extension (cases)."""

    type: Literal["case.extension_requested"] = "case.extension_requested"
    version: ClassVar[int] = 1

    case: CaseFacts
    days: int
    reason: str


@event_model
class CaseExtended(EventData):
    """An extension (延期) was approved (cases): the due dates moved `days` working days later."""

    type: Literal["case.extended"] = "case.extended"
    version: ClassVar[int] = 1

    case: CaseFacts
    days: int
    reason: str
    approved_by: str


@event_model
class CaseExpedited(EventData):
    """特事特办 (cases): a chief representative gave the case a shorter promised limit."""

    type: Literal["case.expedited"] = "case.expedited"
    version: ClassVar[int] = 1

    case: CaseFacts
    promised_limit_days: int
    reason: str
    by: str


class ClockState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    due_at: datetime
    legal_due_at: datetime
    warn_at: datetime | None = None
    stage_due_at: datetime | None = None
    clock_version: int


@event_model
class CaseDueChanged(EventData):
    """The due dates of a case were recomputed (cases): `case` holds the new clock, `previous` the old one.
    Supervision uses the latest `clock_version` only."""

    type: Literal["case.due_changed"] = "case.due_changed"
    version: ClassVar[int] = 1

    case: CaseFacts
    previous: ClockState
    cause: Literal["resume", "extension", "expedite", "calendar"]


@event_model
class CaseForwarded(EventData):
    """A case went to a higher authority (上报) (cases): its clock stops; `follow_up_at` is when supervision
    reminds if no result is recorded."""

    type: Literal["case.forwarded"] = "case.forwarded"
    version: ClassVar[int] = 1

    case: CaseFacts
    to_authority: str
    forwarded_on: date
    follow_up_at: datetime


@event_model
class CaseForwardResultRecorded(EventData):
    type: Literal["case.forward_result_recorded"] = "case.forward_result_recorded"
    version: ClassVar[int] = 1

    case: CaseFacts
    result: Literal["approved", "refused"]
    note: str | None = None


@event_model
class CaseCompleted(EventData):
    """A case was completed (办结) (cases): its result, whether late, and by how many working days."""

    type: Literal["case.completed"] = "case.completed"
    version: ClassVar[int] = 1

    case: CaseFacts
    result: Literal["approved", "refused"]
    completed_at: datetime
    completed_late: bool
    overdue_working_days: int


@event_model
class CaseRefusalProposed(EventData):
    """A clerk proposed refusing a case (否定事项报备): it waits for the chief representative (cases)."""

    type: Literal["case.refusal_proposed"] = "case.refusal_proposed"
    version: ClassVar[int] = 1

    case: CaseFacts
    reason: str
    legal_basis: str


@event_model
class CaseRefusalReturned(EventData):
    """The chief representative sent a proposed refusal back to the clerk (cases)."""

    type: Literal["case.refusal_returned"] = "case.refusal_returned"
    version: ClassVar[int] = 1

    case: CaseFacts
    reason: str
    by: str


@event_model
class CaseRefused(EventData):
    """A refusal was approved (退办, 不予办理) (cases); kept in the refusal register. `case.applicant_hash` lets
    the monitor see the same applicant refused twice for one item."""

    type: Literal["case.refused"] = "case.refused"
    version: ClassVar[int] = 1

    case: CaseFacts
    reason: str
    legal_basis: str
    proposed_by: str
    approved_by: str


@event_model
class CaseDelivered(EventData):
    type: Literal["case.delivered"] = "case.delivered"
    version: ClassVar[int] = 1

    case: CaseFacts
    method: Literal["window", "post", "online"]


@event_model
class CaseWithdrawn(EventData):
    type: Literal["case.withdrawn"] = "case.withdrawn"
    version: ClassVar[int] = 1

    case: CaseFacts
    reason: str


@event_model
class CaseReassigned(EventData):
    """A case moved to another clerk (e.g. from the A post to the B post, AB角) (cases)."""

    type: Literal["case.reassigned"] = "case.reassigned"
    version: ClassVar[int] = 1

    case: CaseFacts
    from_handler: Handler
    reason: str
    by: str


# cases II: joint approval (联办), one-time notices (一次性告知), agency (全程代办), inquiries (首问)

SubtaskStatus = Literal["pending", "answered", "deemed_consented"]
Opinion = Literal["agree", "disagree"]


class SubtaskFacts(BaseModel):
    """A department's part of a joint case (联办件): its own limit in working days from the dispatch date,
    paused with the lead case."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    department: str
    limit_days: int
    dispatched_at: datetime
    due_at: datetime
    status: SubtaskStatus
    opinion: Opinion | None = None


@event_model
class JointSubtaskDispatched(EventData):
    """The lead window sent a joint case's sub-task to a department (cases)."""

    type: Literal["joint.subtask_dispatched"] = "joint.subtask_dispatched"
    version: ClassVar[int] = 1

    case: CaseFacts
    subtask: SubtaskFacts
    by: str


@event_model
class JointSubtaskAnswered(EventData):
    """A department gave its opinion on a joint case's sub-task (cases); `on_time` against its due_at."""

    type: Literal["joint.subtask_answered"] = "joint.subtask_answered"
    version: ClassVar[int] = 1

    case: CaseFacts
    subtask: SubtaskFacts
    opinion: Opinion
    comment: str | None = None
    by: str
    on_time: bool


@event_model
class JointSubtaskDeemedConsented(EventData):
    """超时默认、缺席默认 (cases): the system recorded a department's consent, because its sub-task was not
    answered by its due_at (`timeout`) or it was absent from the joint review (`absent`, with the review)."""

    type: Literal["joint.subtask_deemed_consented"] = "joint.subtask_deemed_consented"
    version: ClassVar[int] = 1

    case: CaseFacts
    subtask: SubtaskFacts
    cause: Literal["timeout", "absent"]
    review_id: int | None = None


@event_model
class JointReviewRecorded(EventData):
    """A joint review meeting (联合审查) of a joint case was recorded with its attendance (cases)."""

    type: Literal["joint.review_recorded"] = "joint.review_recorded"
    version: ClassVar[int] = 1

    case: CaseFacts
    review_id: int
    held_at: datetime
    attended: list[str] = Field(description="department codes present")
    absent: list[str] = Field(description="department codes invited and not present (deemed to consent)")
    by: str


@event_model
class NoticeIssued(EventData):
    """A one-time notice of missing materials (一次性告知书) was issued at a window (cases): no case, no clock;
    an acceptance may refer to its number. The applicant's phone is sealed for notify."""

    type: Literal["notice.issued"] = "notice.issued"
    version: ClassVar[int] = 1

    notice_no: str
    center_id: str
    item: ItemRef
    department: str
    missing: list[str]
    applicant_hash: str
    applicant_masked: str
    phone_masked: str | None = None
    phone_sealed: str | None = None
    issued_by: Handler
    issued_at: datetime
    window: str | None = None


@event_model
class CaseHandedBack(EventData):
    """全程代办 (cases): the agent handed the result back to the applicant and the fees were settled."""

    type: Literal["case.handed_back"] = "case.handed_back"
    version: ClassVar[int] = 1

    case: CaseFacts
    agent: Handler
    handed_back_at: datetime
    fees_settled: str | None = Field(None, description="the settlement as written on the 承办单, e.g. 免费 or an amount")
    note: str | None = None


InquiryChannel = Literal["on_site", "phone", "email"]


class InquiryFacts(BaseModel):
    """An inquiry of the register (首问负责制): who took it first, about what, and the promise when it was
    not answered at once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    center_id: str
    channel: InquiryChannel
    item_code: str | None = None
    department: str | None = None
    taken_by: Handler
    window: str | None = None
    registered_at: datetime
    status: Literal["answered", "referred", "pending"]
    referred_window: str | None = None
    promised_reply_at: datetime | None = None


@event_model
class InquiryRegistered(EventData):
    """An inquiry was registered by the person first asked (cases). A pending one carries its promised
    reply time (the monitor alerts after it); the contact is sealed for notify, never in clear."""

    type: Literal["inquiry.registered"] = "inquiry.registered"
    version: ClassVar[int] = 1

    inquiry: InquiryFacts
    contact_masked: str | None = None
    contact_sealed: str | None = None


@event_model
class InquiryAnswered(EventData):
    """A pending inquiry was answered (cases); `on_time` against its promised reply time."""

    type: Literal["inquiry.answered"] = "inquiry.answered"
    version: ClassVar[int] = 1

    inquiry: InquiryFacts
    answered_at: datetime
    by: str
    on_time: bool


# monitor (电子监察): alerts, findings and the sanction ladder (警告 → 通报批评)

AlertKind = Literal["early_warning", "overdue", "stage_overrun", "follow_up", "special_procedure",
                    "repeated_refusal", "calendar_missing", "rectification_overdue",
                    # the hall's (supervision II)
                    "vacant_window", "long_wait", "bad_rating", "complaint", "appointment_request", "inquiry"]
AlertLevel = Literal["info", "yellow", "orange", "red"]
AlertStatus = Literal["raised", "acknowledged", "resolved"]


class AlertFacts(BaseModel):
    """An alert as notify and the office's feed need it: what, how grave, about what, and its text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    center_id: str | None = Field(None, description="None for a system alert (a calendar year missing)")
    kind: AlertKind
    level: AlertLevel
    status: AlertStatus
    raised_at: datetime
    text: str
    case_no: str | None = None
    clock_version: int | None = None
    window: str | None = None
    department: str | None = None
    handler: Handler | None = None
    item_name: str | None = None
    due_at: datetime | None = None
    overdue_days: int | None = None


@event_model
class AlertRaised(EventData):
    type: Literal["alert.raised"] = "alert.raised"
    version: ClassVar[int] = 1

    alert: AlertFacts


@event_model
class AlertAcknowledged(EventData):
    type: Literal["alert.acknowledged"] = "alert.acknowledged"
    version: ClassVar[int] = 1

    alert: AlertFacts
    by: str
    note: str | None = None


@event_model
class AlertResolved(EventData):
    """An alert was resolved, by a person with what was done, or by the system (`by` "system") when its
    cause ended (the case completed, or its clock changed)."""

    type: Literal["alert.resolved"] = "alert.resolved"
    version: ClassVar[int] = 1

    alert: AlertFacts
    by: str
    note: str | None = None


FindingSource = Literal["overdue", "spot_check", "discipline", "media"]


class FindingFacts(BaseModel):
    """A finding against a department (or a window of it): from an overdue case or recorded by hand."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    center_id: str
    source: FindingSource
    department: str
    department_name: str | None = None
    window: str | None = None
    case_no: str | None = None
    item_name: str | None = None
    handler: Handler | None = None
    occurred_at: datetime = Field(description="the overdue moment (or when the breach was seen): orders the ladder")
    overdue_days: int | None = None
    status: Literal["pending", "confirmed", "excused"]
    imported_overdue: bool = False
    text: str


@event_model
class FindingRecorded(EventData):
    type: Literal["finding.recorded"] = "finding.recorded"
    version: ClassVar[int] = 1

    finding: FindingFacts
    by: str


@event_model
class FindingConfirmed(EventData):
    """经查实: the office (or, in auto mode, the system) confirmed a finding; a sanction follows."""

    type: Literal["finding.confirmed"] = "finding.confirmed"
    version: ClassVar[int] = 1

    finding: FindingFacts
    by: str
    reason: str | None = None


@event_model
class FindingExcused(EventData):
    type: Literal["finding.excused"] = "finding.excused"
    version: ClassVar[int] = 1

    finding: FindingFacts
    by: str
    reason: str


SanctionLevel = Literal["warning", "criticism"]


class SanctionFacts(BaseModel):
    """A sanction (警告 or 通报批评) with its notice text, complete enough to send as is, and its recipients
    (`department:<centre>:<code>` for the department's heads, `supervision:<centre>` for the office)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    center_id: str
    department: str
    department_name: str | None = None
    year: int
    level: SanctionLevel
    ordinal: int = Field(description="its place on the department's ladder of the year (1 = the 警告)")
    finding_id: int
    case_no: str | None = None
    item_name: str | None = None
    handler: Handler | None = None
    overdue_days: int | None = None
    notice_no: str
    notice_text: str
    recipients: list[str]
    issued_at: datetime
    rectification_due_at: datetime
    status: Literal["issued", "rectified", "revoked"]


@event_model
class SanctionIssued(EventData):
    type: Literal["sanction.issued"] = "sanction.issued"
    version: ClassVar[int] = 1

    sanction: SanctionFacts


@event_model
class SanctionReclassified(EventData):
    """A sanction changed level because one before it on the ladder no longer counts (excused, revoked) or
    an earlier one was confirmed later: reissued with a corrected notice."""

    type: Literal["sanction.reclassified"] = "sanction.reclassified"
    version: ClassVar[int] = 1

    sanction: SanctionFacts
    previous_level: SanctionLevel
    reason: str


@event_model
class SanctionRectified(EventData):
    type: Literal["sanction.rectified"] = "sanction.rectified"
    version: ClassVar[int] = 1

    sanction: SanctionFacts
    by: str
    note: str
    on_time: bool


@event_model
class SanctionRevoked(EventData):
    type: Literal["sanction.revoked"] = "sanction.revoked"
    version: ClassVar[int] = 1

    sanction: SanctionFacts
    by: str
    reason: str


# monitor II: complaints (投诉) and bad-rating follow-ups (差评回访)

ComplaintChannel = Literal["phone", "mailbox", "public", "in_person"]
ComplaintSeverity = Literal["simple", "general", "major"]


class ComplaintSubject(BaseModel):
    """What a complaint is about: a window, a department, or a case (at least one named)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: str | None = None
    department: str | None = None
    case_no: str | None = None


class ComplaintFacts(BaseModel):
    """A complaint as notify and the office need it; the complainant's contact only masked and sealed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    number: str
    center_id: str
    channel: ComplaintChannel
    category: str
    severity: ComplaintSeverity
    subject: ComplaintSubject
    received_at: datetime
    due_at: datetime = Field(description="三个一: simple 1 opening hour, general 1 working day, major 7 calendar days")
    status: Literal["open", "resolved", "upheld", "dismissed"]
    contact_masked: str | None = None
    contact_sealed: str | None = None


@event_model
class ComplaintReceived(EventData):
    type: Literal["complaint.received"] = "complaint.received"
    version: ClassVar[int] = 1

    complaint: ComplaintFacts
    by: str | None = Field(None, description="the staff member who recorded it; None from the public page")


@event_model
class ComplaintAcknowledged(EventData):
    """The automatic acknowledgement of receipt (受理回执), with its text for the complainant."""

    type: Literal["complaint.acknowledged"] = "complaint.acknowledged"
    version: ClassVar[int] = 1

    complaint: ComplaintFacts
    text: str


@event_model
class ComplaintResolved(EventData):
    """A complaint closed: `outcome` resolved (handled), upheld (the window or department was at fault: it
    counts in the window score) or dismissed; the text goes to the complainant."""

    type: Literal["complaint.resolved"] = "complaint.resolved"
    version: ClassVar[int] = 1

    complaint: ComplaintFacts
    outcome: Literal["resolved", "upheld", "dismissed"]
    text: str
    by: str
    on_time: bool


class FollowupFacts(BaseModel):
    """A follow-up of a bad rating (不满意 / 非常不满意), due in 15 working days."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    center_id: str
    evaluation_id: int
    ticket_id: int
    rating: int
    window: str | None = None
    clerk_id: str | None = None
    department: str | None = None
    service_code: str
    case_no: str | None = None
    created_at: datetime
    due_at: datetime
    status: Literal["open", "done"]


@event_model
class FollowupDue(EventData):
    """A bad rating opened a follow-up (回访), due by `followup.due_at`."""

    type: Literal["followup.due"] = "followup.due"
    version: ClassVar[int] = 1

    followup: FollowupFacts


@event_model
class FollowupOverdue(EventData):
    type: Literal["followup.overdue"] = "followup.overdue"
    version: ClassVar[int] = 1

    followup: FollowupFacts


# notify (通知): what it posts to its live feeds


class FeedRef(BaseModel):
    """What a feed message is about, for the screen to link it: an event and the subject it names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str
    event_type: str
    case_no: str | None = None
    alert_id: int | None = None
    sanction_id: int | None = None
    complaint_id: int | None = None
    ticket_id: int | None = None


@event_model
class DeliveryFeedPosted(EventData):
    """A message posted to a notify feed (notify): `department:<centre>:<code>`, `supervision:<centre>` or
    `window:<centre>:<number>`; only that feed's members are sent it."""

    type: Literal["delivery.feed_posted"] = "delivery.feed_posted"
    version: ClassVar[int] = 1

    delivery_id: int
    feed: str
    center_id: str | None = None
    text: str
    refs: FeedRef
