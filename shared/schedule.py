"""The hall schedule's rules (延时服务, 午间服务, 双休日服务): is it valid, what a day looks like, may a kiosk issue now,
how many opening seconds lie between two instants. Shared: the queue applies them, the monitor counts with them.

Pure functions: no I/O and no clock. The caller passes "now" as a local time and says what the calendar
makes of the date (`DayKind`); the business date of an instant is `shared.clock.local_date`.

Decisions where DOMAIN.md is silent (in the README's queue section):

- Times are local (Asia/Shanghai) wall times without a UTC offset; an offset is refused, because an
  aware and a naive `time` cannot be compared. Every interval is start-inclusive, end-exclusive: a
  period 09:00-12:00 is open at 09:00:00 and closed at 12:00:00. Periods of a day are given in order
  and may touch (09:00-12:00, 12:00-17:00) but not overlap; none runs past midnight.
- The issuing cut-off is the same local time every day ("no issuing from this time on"), so it only
  has to be a time, capped each day at that day's closing time; at exactly the cut-off issuing has
  stopped. A cut-off at or before the week's earliest opening would mean no ticket ever, and is refused.
- The cut-off stops walk-in and green-channel tickets. An appointment check-in is accepted in any
  opening period up to closing: the hall promised that slot (the −60/+20-minute window is the
  service's check; this module only knows the hours).
- Noon service (午间服务) is one span with its windows. It must lie inside the break between two
  periods of at least one weekly day; on a given day it applies only if it lies inside one of that
  day's breaks (so a continuous weekend 09:00-17:00 has no noon service, and needs none). During that
  span tickets are issued (the noon windows serve them) and only the noon windows are open; in the
  rest of the break nothing is issued (`lunch_break`).
- A holiday kept "as_weekend" uses that day's weekend periods: its own weekly[6]/[7] on a Saturday or
  Sunday, Saturday's (weekly[6]) on a weekday holiday.
- A walk-in on an appointment-only day is told so whatever the hour (not "come back at 09:00" only to
  be refused then).
- `window_open` is about hours (vacancy alerts count only those). Tickets still waiting at closing
  are served (延时服务): call-next must not be blocked by it after closing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Literal

from shared.calendar.engine import WorkCalendar
from shared.clock import LOCAL_TZ, local_instant
from shared.errors import AppError, Conflict
from shared.events.catalog import HallSchedule, NoonService, Period, QueueSettings, Weekday

DayKind = Literal["working", "weekend", "holiday"]
"""What the calendar says the local date is: a working day (a 调休 Saturday or Sunday included), a
Saturday/Sunday off that is not an official holiday, or an official or centre holiday."""

DayMode = Literal["normal", "appointment_first", "appointment_only", "closed"]
PlanSource = Literal["exception", "weekly", "adjusted_working", "weekend", "holiday"]
RefusalCode = Literal["closed_today", "not_open_yet", "after_cutoff", "lunch_break", "appointment_only"]

WEEKDAYS: tuple[Weekday, ...] = (1, 2, 3, 4, 5, 6, 7)


class InvalidSchedule(AppError):
    """A schedule that cannot be followed; `field` names the exact place, e.g. `weekly.1[0].end`."""

    status, code = 422, "invalid_schedule"


class IssuingRefused(Conflict):
    """The kiosk may not issue now: `code` says why, the detail is the Chinese text for the kiosk."""

    code = "issuing_refused"


@dataclass(frozen=True, slots=True)
class DayPlan:
    """One local day of a centre: when it opens, how, until when tickets are issued, who serves at noon.

    `mode` is "closed" exactly when `periods` is empty. `noon_service` (with `noon_windows`) is set only
    when the schedule's noon service falls inside this day's break `lunch_gap`."""

    day: date
    source: PlanSource
    mode: DayMode
    periods: tuple[Period, ...] = ()
    issuing_cutoff: time | None = None
    noon_service: Period | None = None
    noon_windows: frozenset[str] = frozenset()
    lunch_gap: Period | None = None

    @property
    def opens_at(self) -> time | None:
        return self.periods[0].start if self.periods else None

    @property
    def closes_at(self) -> time | None:
        return self.periods[-1].end if self.periods else None

    def in_period(self, local_now: time) -> bool:
        return any(p.start <= local_now < p.end for p in self.periods)

    def in_noon_service(self, local_now: time) -> bool:
        noon = self.noon_service
        return noon is not None and noon.start <= local_now < noon.end


@dataclass(frozen=True, slots=True)
class IssueDecision:
    """May a kiosk issue a ticket now: allowed (duty windows only, for an appointment-first walk-in) or
    refused with a machine `code` and the kiosk's Chinese `message`."""

    allowed: bool
    duty_only: bool = False
    code: RefusalCode | None = None
    message: str | None = None

    def raise_if_refused(self) -> None:
        """Raise the 409 problem a refused issue is (the kiosk shows its detail)."""
        if not self.allowed:
            raise IssuingRefused(self.message or "暂停取号", code=self.code)


# ---------------------------------------------------------------------------------------------- validation

_WEEKDAY = [Period(start=time(9, 0), end=time(12, 0)), Period(start=time(13, 30), end=time(17, 30))]
DEFAULT_SCHEDULE = HallSchedule(
    weekly={1: _WEEKDAY, 2: _WEEKDAY, 3: _WEEKDAY, 4: _WEEKDAY, 5: _WEEKDAY,
            6: [Period(start=time(9, 0), end=time(17, 0))], 7: [Period(start=time(9, 0), end=time(17, 0))]})
"""A centre that has set no schedule of its own: the hours most county halls post (工作日 9:00-12:00,
13:30-17:30), weekends 9:00-17:00 appointment-first with duty windows (双休日服务), holidays closed."""


def day_kind(calendar: WorkCalendar, center_id: str, day: date) -> DayKind:
    """What the centre's calendar makes of a local date."""
    if calendar.is_working_day(day, center_id):
        return "working"
    return "holiday" if calendar.is_holiday(day, center_id) else "weekend"


def check_schedule(schedule: HallSchedule) -> None:
    """Raise `InvalidSchedule` naming the first field that makes the schedule impossible to follow."""
    for weekday in WEEKDAYS:
        if weekday not in schedule.weekly:
            raise InvalidSchedule(f"weekday {weekday} is missing: give all 7 (an empty list is a closed day)",
                                  field=f"weekly.{weekday}")
        _check_periods(schedule.weekly[weekday], f"weekly.{weekday}")
    if schedule.noon_service is not None:
        _check_noon_service(schedule.noon_service, schedule)
    if schedule.issuing_cutoff is not None:
        _check_cutoff(schedule.issuing_cutoff, schedule)
    seen: dict[date, int] = {}
    for i, exception in enumerate(schedule.exceptions):
        path = f"exceptions[{i}]"
        if exception.date in seen:
            raise InvalidSchedule(f"{exception.date} already has an exception (exceptions[{seen[exception.date]}])",
                                  field=f"{path}.date")
        seen[exception.date] = i
        if exception.closed and exception.periods:
            raise InvalidSchedule("a closed day takes no periods", field=f"{path}.periods")
        if not exception.closed and not exception.periods:
            raise InvalidSchedule("an open day needs at least one period (or set closed)", field=f"{path}.periods")
        _check_periods(exception.periods, f"{path}.periods")


def _check_periods(periods: list[Period], path: str) -> None:
    for i, period in enumerate(periods):
        here = f"{path}[{i}]"
        _check_local(period.start, f"{here}.start")
        _check_local(period.end, f"{here}.end")
        if period.end <= period.start:
            raise InvalidSchedule(f"must be after the start ({_hm(period.start)})", field=f"{here}.end")
        if i == 0:
            continue
        previous = periods[i - 1]
        if period.start < previous.start:
            raise InvalidSchedule(f"starts before {path}[{i - 1}] ({_span(previous)}): give periods in order",
                                  field=here)
        if period.start < previous.end:
            raise InvalidSchedule(f"overlaps {path}[{i - 1}] ({_span(previous)})", field=here)


def _check_noon_service(noon: NoonService, schedule: HallSchedule) -> None:
    _check_local(noon.start, "noon_service.start")
    _check_local(noon.end, "noon_service.end")
    if noon.end <= noon.start:
        raise InvalidSchedule(f"must be after the start ({_hm(noon.start)})", field="noon_service.end")
    if not noon.windows:
        raise InvalidSchedule("name the windows that stay open over lunch", field="noon_service.windows")
    for i, window in enumerate(noon.windows):
        if not window.strip():
            raise InvalidSchedule("a window number cannot be blank", field=f"noon_service.windows[{i}]")
        if window in noon.windows[:i]:
            raise InvalidSchedule(f"window {window} is listed twice", field=f"noon_service.windows[{i}]")
    span = Period(start=noon.start, end=noon.end)
    if not any(_gap_around(span, schedule.weekly[weekday]) for weekday in WEEKDAYS):
        raise InvalidSchedule(f"{_span(span)} is not inside the break between two periods of any weekday",
                              field="noon_service")


def _check_cutoff(cutoff: time, schedule: HallSchedule) -> None:
    _check_local(cutoff, "issuing_cutoff")
    openings = [periods[0].start for periods in schedule.weekly.values() if periods]
    if openings and cutoff <= min(openings):
        raise InvalidSchedule(f"at or before the earliest opening ({_hm(min(openings))}): no ticket could be issued",
                              field="issuing_cutoff")


def _check_local(value: time, field: str) -> None:
    if value.tzinfo is not None:
        raise InvalidSchedule("give a local time (Asia/Shanghai) without a UTC offset", field=field)


# ---------------------------------------------------------------------------------------------- the day

def day_plan(schedule: HallSchedule, day: date, kind: DayKind) -> DayPlan:
    """The plan of a local date, from a schedule `check_schedule` accepted and the calendar's `kind`.

    A dated exception wins; a holiday is closed unless holiday_mode is "as_weekend"; a weekend day
    follows weekend_mode with its weekly periods ("open" is normal); a working Saturday or Sunday
    (调休) opens with Monday's periods; a working weekday with its own. All openings but the weekend
    modes are normal."""
    exception = next((e for e in schedule.exceptions if e.date == day), None)
    if exception is not None:
        if exception.closed:
            return DayPlan(day=day, source="exception", mode="closed")
        return _open_plan(schedule, day, "exception", "normal", exception.periods)
    weekday = WEEKDAYS[day.weekday()]
    if kind == "holiday":
        if schedule.holiday_mode == "closed":
            return DayPlan(day=day, source="holiday", mode="closed")
        return _weekend_plan(schedule, day, "holiday", weekday if weekday >= 6 else 6)
    if kind == "weekend":
        if weekday < 6:
            raise ValueError(f"{day} is a weekday: a weekday off is a holiday, not a weekend")
        return _weekend_plan(schedule, day, "weekend", weekday)
    if kind == "working":
        if weekday >= 6:
            return _open_plan(schedule, day, "adjusted_working", "normal", schedule.weekly.get(1, []))
        return _open_plan(schedule, day, "weekly", "normal", schedule.weekly.get(weekday, []))
    raise ValueError(f"unknown day kind {kind!r}")


def _weekend_plan(schedule: HallSchedule, day: date, source: PlanSource, weekday: Weekday) -> DayPlan:
    match schedule.weekend_mode:
        case "closed":
            return DayPlan(day=day, source=source, mode="closed")
        case "open":
            mode: DayMode = "normal"
        case other:
            mode = other
    return _open_plan(schedule, day, source, mode, schedule.weekly.get(weekday, []))


def _open_plan(schedule: HallSchedule, day: date, source: PlanSource, mode: DayMode,
               periods: list[Period]) -> DayPlan:
    if not periods:
        return DayPlan(day=day, source=source, mode="closed")
    closes = periods[-1].end
    cutoff = closes if schedule.issuing_cutoff is None else min(schedule.issuing_cutoff, closes)
    noon, windows, gap = None, frozenset[str](), None
    if schedule.noon_service is not None:
        span = Period(start=schedule.noon_service.start, end=schedule.noon_service.end)
        gap = _gap_around(span, periods)
        if gap is not None:
            noon, windows = span, frozenset(schedule.noon_service.windows)
    return DayPlan(day=day, source=source, mode=mode, periods=tuple(periods), issuing_cutoff=cutoff,
                   noon_service=noon, noon_windows=windows, lunch_gap=gap)


def _gap_around(span: Period, periods: list[Period] | tuple[Period, ...]) -> Period | None:
    """The break between two consecutive periods that holds `span` whole, if there is one."""
    for before, after in zip(periods, periods[1:], strict=False):
        if before.end <= span.start and span.end <= after.start:
            return Period(start=before.end, end=after.start)
    return None


def _gap_at(plan: DayPlan, local_now: time) -> Period | None:
    for before, after in zip(plan.periods, plan.periods[1:], strict=False):
        if before.end <= local_now < after.start:
            return Period(start=before.end, end=after.start)
    return None


# ---------------------------------------------------------------------------------------------- the kiosk

def issuing_decision(plan: DayPlan, local_now: time, *, appointment: bool) -> IssueDecision:
    """May a kiosk issue a ticket at local time `local_now` (an appointment check-in if `appointment`)?

    Walk-ins (green channel included) from opening until the cut-off (exclusive), check-ins until
    closing; in a break only during noon service; none on an appointment-only day; an appointment-first
    walk-in gets a duty-window ticket."""
    if local_now.tzinfo is not None:
        raise ValueError("local_now is a local wall time without a UTC offset")
    if plan.mode == "closed" or plan.opens_at is None or plan.closes_at is None:
        return _refuse("closed_today", "今日休息，暂停取号")
    if plan.mode == "appointment_only" and not appointment:
        return _refuse("appointment_only", "今日仅为已预约群众取号，请先预约后再来")
    if local_now < plan.opens_at:
        return _refuse("not_open_yet", f"尚未开始取号，今日{_hm(plan.opens_at)}起取号")
    stop = plan.closes_at if appointment or plan.issuing_cutoff is None else plan.issuing_cutoff
    if local_now >= stop:
        return _refuse("after_cutoff", f"已过取号截止时间（{_hm(stop)}），请明日再来")
    gap = _gap_at(plan, local_now)
    if gap is not None and not plan.in_noon_service(local_now):
        noon = plan.noon_service
        resumes = noon.start if noon is not None and plan.lunch_gap == gap and local_now < noon.start else gap.end
        return _refuse("lunch_break", f"午间休息（{_span(gap)}），请{_hm(resumes)}后取号")
    return IssueDecision(allowed=True, duty_only=plan.mode == "appointment_first" and not appointment)


def _refuse(code: RefusalCode, message: str) -> IssueDecision:
    return IssueDecision(allowed=False, code=code, message=message)


def window_open(plan: DayPlan, window_number: str, local_now: time) -> bool:
    """Whether a window is in service at `local_now` by the hours: in a period, or a noon window at noon."""
    if plan.in_period(local_now):
        return True
    return plan.in_noon_service(local_now) and window_number in plan.noon_windows


# ---------------------------------------------------------------------------------------------- day close

def opening_seconds(plan: DayPlan, window_number: str, start: datetime, end: datetime) -> int:
    """Seconds of [start, end) inside the window's opening hours on the plan's day (periods, and the noon
    service for a noon window): what vacancy and long-wait limits count."""
    spans = [(p.start, p.end) for p in plan.periods]
    if plan.noon_service is not None and window_number in plan.noon_windows:
        spans.append((plan.noon_service.start, plan.noon_service.end))
    total = 0.0
    for a, b in spans:
        lo = max(start, local_instant(plan.day, a))
        hi = min(end, local_instant(plan.day, b))
        total += max(0.0, (hi - lo).total_seconds())
    return int(total)


def day_close_at(settings: QueueSettings, day: date) -> datetime:
    """The UTC instant of the local business day's close (default 23:00 Asia/Shanghai = 15:00 UTC), when
    the tickets still waiting expire."""
    close = settings.day_close_time.replace(tzinfo=None)
    return datetime.combine(day, close, tzinfo=LOCAL_TZ).astimezone(UTC)


def _hm(value: time) -> str:
    return value.strftime("%H:%M:%S" if value.second or value.microsecond else "%H:%M")


def _span(period: Period) -> str:
    return f"{_hm(period.start)}-{_hm(period.end)}"
