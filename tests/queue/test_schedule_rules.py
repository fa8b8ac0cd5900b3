"""The hall schedule's pure rules: validation, a day's plan, the kiosk's issuing decision, window hours, day close.

Dates are 2026 days from /work/shared/official-holidays.md (State Council notice), so each `kind` passed
to `day_plan` is what the official calendar says of that date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.clock import local_date
from shared.errors import install_error_handlers
from shared.events.catalog import HallSchedule, NoonService, Period, QueueSettings, ScheduleException
from shared.schedule import (
    WEEKDAYS,
    DayKind,
    DayPlan,
    InvalidSchedule,
    IssueDecision,
    IssuingRefused,
    check_schedule,
    day_close_at,
    day_plan,
    issuing_decision,
    window_open,
)

D = date
CST = timezone(timedelta(hours=8))

WEDNESDAY = D(2026, 3, 4)          # an ordinary working Wednesday
SATURDAY = D(2026, 3, 7)           # an ordinary weekend
SUNDAY = D(2026, 3, 8)
NATIONAL_DAY = D(2026, 10, 1)      # 国庆节, a Thursday
NATIONAL_DAY_SAT = D(2026, 10, 3)  # 国庆节 on a Saturday
QINGMING_SUN = D(2026, 4, 5)       # 清明节 on a Sunday
SPRING_TIAOXIU_SAT = D(2026, 2, 14)  # 春节 调休: Saturday worked
NEW_YEAR_TIAOXIU_SUN = D(2026, 1, 4)  # 元旦 调休: Sunday worked


def t(hhmm: str) -> time:
    return time.fromisoformat(hhmm)


def p(start: str, end: str) -> Period:
    return Period(start=t(start), end=t(end))


MONDAY_HOURS = [p("08:30", "12:00"), p("13:30", "17:30")]  # Monday opens earlier: tells 调休 days apart
WEEKDAY_HOURS = [p("09:00", "12:00"), p("13:30", "17:30")]


def weekly(**days: list[Period]) -> dict[Any, list[Period]]:
    """A week: Monday 08:30, Tuesday-Friday 09:00, both with the 12:00-13:30 lunch break; weekends 09:00-17:00.
    Override a day by name: weekly(sat=[...])."""
    week: dict[Any, list[Period]] = {1: MONDAY_HOURS, 2: WEEKDAY_HOURS, 3: WEEKDAY_HOURS, 4: WEEKDAY_HOURS,
                                     5: WEEKDAY_HOURS, 6: [p("09:00", "17:00")], 7: [p("09:00", "17:00")]}
    names = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}
    for name, periods in days.items():
        week[names[name]] = periods
    return week


def schedule(**fields: Any) -> HallSchedule:
    fields.setdefault("weekly", weekly())
    return HallSchedule(**fields)


def noon(start: str = "12:00", end: str = "13:30", windows: tuple[str, ...] = ("1", "2")) -> NoonService:
    return NoonService(start=t(start), end=t(end), windows=list(windows))


def invalid_field(s: HallSchedule) -> str | None:
    with pytest.raises(InvalidSchedule) as caught:
        check_schedule(s)
    assert caught.value.status == 422 and caught.value.code == "invalid_schedule"
    return caught.value.field


# ------------------------------------------------------------------------------------------ validation

def test_a_schedule_sent_as_json_is_checked_as_sent():
    sent = schedule(noon_service=noon(), issuing_cutoff=t("16:30"),
                    exceptions=[ScheduleException(date=NATIONAL_DAY, closed=True, reason="国庆节")])
    received = HallSchedule.model_validate_json(sent.model_dump_json())  # weekday keys arrive as "1" ... "7"
    check_schedule(received)
    assert received == sent


@pytest.mark.parametrize(("build", "field"), [
    pytest.param(lambda: schedule(weekly=weekly(mon=[p("09:00", "09:00")])), "weekly.1[0].end", id="empty period"),
    pytest.param(lambda: schedule(weekly=weekly(wed=[p("12:00", "09:00")])), "weekly.3[0].end", id="end before start"),
    pytest.param(lambda: schedule(weekly=weekly(tue=[p("09:00", "12:00"), p("11:30", "17:00")])), "weekly.2[1]",
                 id="overlap"),
    pytest.param(lambda: schedule(weekly=weekly(thu=[p("13:30", "17:30"), p("09:00", "12:00")])), "weekly.4[1]",
                 id="unsorted"),
    pytest.param(lambda: schedule(weekly=weekly(fri=[p("09:00", "12:00"), p("09:00", "10:00")])), "weekly.5[1]",
                 id="same start"),
    pytest.param(lambda: schedule(weekly={k: v for k, v in weekly().items() if k != 6}), "weekly.6",
                 id="weekday missing"),
    pytest.param(lambda: schedule(weekly=weekly(fri=[Period(start=time(9, tzinfo=CST), end=t("12:00"))])),
                 "weekly.5[0].start", id="time with an offset"),
    pytest.param(lambda: schedule(noon_service=noon(windows=())), "noon_service.windows", id="noon: no windows"),
    pytest.param(lambda: schedule(noon_service=noon(windows=("1", "1"))), "noon_service.windows[1]",
                 id="noon: window twice"),
    pytest.param(lambda: schedule(noon_service=noon(windows=("1", " "))), "noon_service.windows[1]",
                 id="noon: blank window"),
    pytest.param(lambda: schedule(noon_service=noon("13:00", "12:30")), "noon_service.end", id="noon: backwards"),
    pytest.param(lambda: schedule(noon_service=noon("11:30", "13:00")), "noon_service",
                 id="noon: overlaps the morning"),
    pytest.param(lambda: schedule(noon_service=noon("12:00", "14:00")), "noon_service",
                 id="noon: overlaps the afternoon"),
    pytest.param(lambda: schedule(issuing_cutoff=t("08:30")), "issuing_cutoff", id="cutoff at the earliest opening"),
    pytest.param(lambda: schedule(issuing_cutoff=time(16, 30, tzinfo=CST)), "issuing_cutoff",
                 id="cutoff with an offset"),
    pytest.param(lambda: schedule(exceptions=[
        ScheduleException(date=NATIONAL_DAY, closed=False, periods=[]),
    ]), "exceptions[0].periods", id="open exception without periods"),
    pytest.param(lambda: schedule(exceptions=[
        ScheduleException(date=NATIONAL_DAY_SAT, periods=[p("09:00", "12:00")]),
        ScheduleException(date=WEDNESDAY, closed=True, periods=[p("09:00", "12:00")]),
    ]), "exceptions[1].periods", id="closed exception with periods"),
    pytest.param(lambda: schedule(exceptions=[
        ScheduleException(date=NATIONAL_DAY, closed=True),
        ScheduleException(date=NATIONAL_DAY_SAT, periods=[p("09:00", "12:00")]),
        ScheduleException(date=NATIONAL_DAY, periods=[p("09:00", "12:00")]),
    ]), "exceptions[2].date", id="two exceptions on one date"),
    pytest.param(lambda: schedule(exceptions=[
        ScheduleException(date=NATIONAL_DAY, closed=True),
        ScheduleException(date=QINGMING_SUN, closed=True),
        ScheduleException(date=NATIONAL_DAY_SAT, periods=[p("12:00", "09:00")]),
    ]), "exceptions[2].periods[0].end", id="exception period backwards"),
    pytest.param(lambda: schedule(exceptions=[
        ScheduleException(date=NATIONAL_DAY_SAT, periods=[p("09:00", "12:00"), p("10:00", "11:00")]),
    ]), "exceptions[0].periods[1]", id="exception periods overlap"),
])
def test_an_invalid_schedule_names_its_field(build, field):
    assert invalid_field(build()) == field


def test_a_closed_weekday_is_an_empty_list():
    check_schedule(schedule(weekly=weekly(sat=[], sun=[])))


def test_touching_periods_do_not_overlap():
    check_schedule(schedule(weekly=weekly(wed=[p("09:00", "12:00"), p("12:00", "17:00")])))


def test_noon_service_filling_the_lunch_break_exactly_is_valid():
    check_schedule(schedule(noon_service=noon("12:00", "13:30")))


def test_noon_service_needs_a_break_on_only_one_weekday():
    only_friday_breaks = {d: [p("09:00", "17:00")] for d in WEEKDAYS} | {5: WEEKDAY_HOURS}
    check_schedule(schedule(weekly=only_friday_breaks, noon_service=noon()))


def test_noon_service_without_any_break_in_the_week_is_refused():
    continuous = {d: [p("09:00", "17:00")] for d in WEEKDAYS}
    assert invalid_field(schedule(weekly=continuous, noon_service=noon())) == "noon_service"


def test_a_cutoff_after_the_earliest_opening_is_valid_even_before_another_days_opening():
    # Monday opens 08:30: a 08:45 cut-off still lets Monday issue, so it is a (strange but) valid schedule.
    check_schedule(schedule(issuing_cutoff=t("08:45")))


async def test_the_schedule_error_is_a_problem_naming_the_field():
    app = FastAPI()
    install_error_handlers(app)

    @app.put("/schedule")
    async def put_schedule() -> None:
        check_schedule(schedule(weekly=weekly(mon=[p("09:00", "08:00")])))

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        r = await client.put("/schedule")
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "invalid_schedule"
    assert body["field"] == "weekly.1[0].end"
    assert body["errors"][0]["field"] == "weekly.1[0].end"


# ------------------------------------------------------------------------------------------ day plans

def test_a_working_weekday_opens_with_its_weekly_periods():
    plan = day_plan(schedule(), WEDNESDAY, "working")
    assert (plan.mode, plan.source, plan.periods) == ("normal", "weekly", tuple(WEEKDAY_HOURS))
    assert plan.issuing_cutoff == t("17:30")  # default: closing time


@pytest.mark.parametrize(("mode", "expected"), [
    ("appointment_first", "appointment_first"),
    ("appointment_only", "appointment_only"),
    ("open", "normal"),
    ("closed", "closed"),
])
def test_a_weekend_day_follows_the_weekend_mode(mode, expected):
    plan = day_plan(schedule(weekend_mode=mode), SATURDAY, "weekend")
    assert plan.mode == expected
    assert plan.periods == (() if expected == "closed" else (p("09:00", "17:00"),))


def test_weekends_are_appointment_first_by_default():
    assert day_plan(schedule(), SUNDAY, "weekend").mode == "appointment_first"


def test_a_weekend_day_uses_its_own_weekly_periods():
    s = schedule(weekly=weekly(sat=[p("09:00", "12:00")], sun=[p("14:00", "17:00")]), weekend_mode="open")
    assert day_plan(s, SUNDAY, "weekend").periods == (p("14:00", "17:00"),)


def test_a_weekend_day_without_periods_is_closed_whatever_the_mode():
    plan = day_plan(schedule(weekly=weekly(sun=[]), weekend_mode="open"), SUNDAY, "weekend")
    assert plan.mode == "closed" and plan.issuing_cutoff is None


def test_a_holiday_is_closed_by_default():
    plan = day_plan(schedule(), NATIONAL_DAY, "holiday")
    assert (plan.mode, plan.source, plan.periods) == ("closed", "holiday", ())


@pytest.mark.parametrize(("mode", "expected"), [
    ("appointment_first", "appointment_first"),
    ("appointment_only", "appointment_only"),
    ("open", "normal"),
    ("closed", "closed"),
])
def test_a_holiday_as_weekend_follows_the_weekend_mode(mode, expected):
    plan = day_plan(schedule(holiday_mode="as_weekend", weekend_mode=mode), NATIONAL_DAY, "holiday")
    assert (plan.mode, plan.source) == (expected, "holiday")


def test_a_weekday_holiday_as_weekend_takes_saturdays_periods():
    s = schedule(weekly=weekly(sat=[p("09:00", "12:00")], sun=[p("14:00", "17:00")]), holiday_mode="as_weekend")
    assert day_plan(s, NATIONAL_DAY, "holiday").periods == (p("09:00", "12:00"),)  # a Thursday


def test_a_sunday_holiday_as_weekend_takes_sundays_periods():
    s = schedule(weekly=weekly(sat=[p("09:00", "12:00")], sun=[p("14:00", "17:00")]), holiday_mode="as_weekend")
    assert day_plan(s, QINGMING_SUN, "holiday").periods == (p("14:00", "17:00"),)


@pytest.mark.parametrize("day", [SPRING_TIAOXIU_SAT, NEW_YEAR_TIAOXIU_SUN])
def test_an_adjusted_working_weekend_day_opens_with_mondays_periods_in_normal_mode(day):
    plan = day_plan(schedule(weekend_mode="closed"), day, "working")
    assert (plan.mode, plan.source, plan.periods) == ("normal", "adjusted_working", tuple(MONDAY_HOURS))


def test_an_exception_closes_a_working_day():
    s = schedule(exceptions=[ScheduleException(date=WEDNESDAY, closed=True, reason="系统升级")])
    plan = day_plan(s, WEDNESDAY, "working")
    assert (plan.mode, plan.source) == ("closed", "exception")


def test_an_exception_opens_a_holiday_in_normal_mode_with_its_periods():
    s = schedule(exceptions=[ScheduleException(date=NATIONAL_DAY_SAT, periods=[p("09:30", "12:00")],
                                               reason="国庆假期便民服务")])
    plan = day_plan(s, NATIONAL_DAY_SAT, "holiday")
    assert (plan.mode, plan.source, plan.periods) == ("normal", "exception", (p("09:30", "12:00"),))


def test_an_exception_opening_a_weekend_day_beats_the_weekend_mode():
    s = schedule(weekend_mode="appointment_only",
                 exceptions=[ScheduleException(date=SATURDAY, periods=[p("09:00", "12:00")])])
    assert day_plan(s, SATURDAY, "weekend").mode == "normal"


def test_an_exception_only_touches_its_own_date():
    s = schedule(exceptions=[ScheduleException(date=WEDNESDAY, closed=True)])
    assert day_plan(s, WEDNESDAY + timedelta(days=1), "working").mode == "normal"


def test_a_weekday_cannot_be_a_weekend():
    with pytest.raises(ValueError):
        day_plan(schedule(), WEDNESDAY, "weekend")


@pytest.mark.parametrize(("cutoff", "day", "kind", "expected"), [
    ("16:30", WEDNESDAY, "working", "16:30"),
    ("18:00", WEDNESDAY, "working", "17:30"),  # capped at closing
    ("16:30", SATURDAY, "weekend", "16:30"),
])
def test_the_days_cutoff_is_the_schedules_capped_at_closing(cutoff, day, kind, expected):
    s = schedule(issuing_cutoff=t(cutoff), weekly=weekly(sat=[p("09:00", "12:00"), p("13:00", "17:00")]))
    assert day_plan(s, day, kind).issuing_cutoff == t(expected)


def test_a_cutoff_after_a_short_days_closing_is_that_closing():
    s = schedule(issuing_cutoff=t("16:30"), weekly=weekly(sat=[p("09:00", "12:00")]))
    assert day_plan(s, SATURDAY, "weekend").issuing_cutoff == t("12:00")


def test_the_noon_service_applies_on_a_day_with_a_break_around_it():
    plan = day_plan(schedule(noon_service=noon("12:00", "13:00", ("1", "2"))), WEDNESDAY, "working")
    assert plan.noon_service == p("12:00", "13:00")
    assert plan.noon_windows == frozenset({"1", "2"})
    assert plan.lunch_gap == p("12:00", "13:30")


def test_the_noon_service_does_not_apply_on_a_day_without_a_break():
    plan = day_plan(schedule(noon_service=noon(), weekend_mode="open"), SATURDAY, "weekend")  # 09:00-17:00
    assert (plan.noon_service, plan.noon_windows, plan.lunch_gap) == (None, frozenset(), None)


# ------------------------------------------------------------------------------------------ issuing

def decide(plan: DayPlan, hhmmss: str, *, appointment: bool = False) -> IssueDecision:
    return issuing_decision(plan, t(hhmmss), appointment=appointment)


def weekday_plan(**fields: Any) -> DayPlan:
    return day_plan(schedule(**fields), WEDNESDAY, "working")


def test_a_closed_day_issues_nothing():
    d = decide(day_plan(schedule(), NATIONAL_DAY, "holiday"), "10:00")
    assert d == IssueDecision(allowed=False, code="closed_today", message="今日休息，暂停取号")


def test_an_appointment_check_in_on_a_closed_day_is_refused():
    assert decide(day_plan(schedule(), NATIONAL_DAY, "holiday"), "10:00", appointment=True).code == "closed_today"


def test_before_opening_the_kiosk_says_when_issuing_starts():
    d = decide(weekday_plan(), "08:59:59")
    assert (d.allowed, d.code) == (False, "not_open_yet")
    assert "09:00" in (d.message or "")


def test_issuing_starts_at_the_opening_instant():
    assert decide(weekday_plan(), "09:00") == IssueDecision(allowed=True)


def test_a_walk_in_just_before_the_cutoff_gets_a_ticket():
    assert decide(weekday_plan(issuing_cutoff=t("16:30")), "16:29:59").allowed


def test_at_exactly_the_cutoff_issuing_has_stopped():
    d = decide(weekday_plan(issuing_cutoff=t("16:30")), "16:30")
    assert d == IssueDecision(allowed=False, code="after_cutoff", message="已过取号截止时间（16:30），请明日再来")


def test_after_the_cutoff_issuing_is_refused():
    assert decide(weekday_plan(issuing_cutoff=t("16:30")), "16:30:01").code == "after_cutoff"


def test_without_a_cutoff_issuing_stops_at_closing():
    plan = weekday_plan()
    assert decide(plan, "17:29:59").allowed
    assert decide(plan, "17:30").message == "已过取号截止时间（17:30），请明日再来"


def test_an_appointment_check_in_after_the_cutoff_is_accepted_until_closing():
    plan = weekday_plan(issuing_cutoff=t("16:30"))
    assert decide(plan, "17:00", appointment=True) == IssueDecision(allowed=True)
    assert decide(plan, "17:30", appointment=True).code == "after_cutoff"


def test_the_cutoff_is_checked_before_the_lunch_break():
    assert decide(weekday_plan(issuing_cutoff=t("11:00")), "12:30").code == "after_cutoff"


def test_the_lunch_break_without_noon_service_issues_nothing():
    plan = weekday_plan()
    assert decide(plan, "11:59:59").allowed
    d = decide(plan, "12:00")
    assert (d.allowed, d.code) == (False, "lunch_break")
    assert d.message == "午间休息（12:00-13:30），请13:30后取号"
    assert decide(plan, "13:29:59").code == "lunch_break"
    assert decide(plan, "13:30").allowed


def test_the_lunch_break_with_noon_service_issues_tickets():
    assert decide(weekday_plan(noon_service=noon()), "12:30") == IssueDecision(allowed=True)


def test_the_break_outside_the_noon_service_span_issues_nothing():
    plan = weekday_plan(noon_service=noon("12:00", "13:00"))
    assert decide(plan, "12:59:59").allowed
    d = decide(plan, "13:00")
    assert (d.code, d.message) == ("lunch_break", "午间休息（12:00-13:30），请13:30后取号")


def test_before_a_late_noon_service_the_kiosk_names_its_start():
    d = decide(weekday_plan(noon_service=noon("12:30", "13:30")), "12:10")
    assert (d.code, d.message) == ("lunch_break", "午间休息（12:00-13:30），请12:30后取号")


def test_a_weekend_walk_in_in_appointment_first_mode_gets_a_duty_window_ticket():
    assert decide(day_plan(schedule(), SATURDAY, "weekend"), "10:00") == IssueDecision(allowed=True, duty_only=True)


def test_a_weekend_appointment_in_appointment_first_mode_is_an_ordinary_check_in():
    d = decide(day_plan(schedule(), SATURDAY, "weekend"), "10:00", appointment=True)
    assert d == IssueDecision(allowed=True, duty_only=False)


def test_an_appointment_only_day_refuses_walk_ins_at_any_hour():
    plan = day_plan(schedule(weekend_mode="appointment_only"), SATURDAY, "weekend")
    for hhmm in ("08:00", "10:00", "18:00"):
        assert decide(plan, hhmm).code == "appointment_only"


def test_an_appointment_only_day_checks_appointments_in_within_its_periods():
    plan = day_plan(schedule(weekend_mode="appointment_only"), SATURDAY, "weekend")
    assert decide(plan, "10:00", appointment=True) == IssueDecision(allowed=True)
    assert decide(plan, "08:00", appointment=True).code == "not_open_yet"
    assert decide(plan, "17:00", appointment=True).code == "after_cutoff"


def test_a_refusal_raises_the_kiosks_problem():
    with pytest.raises(IssuingRefused) as caught:
        decide(weekday_plan(issuing_cutoff=t("16:30")), "16:45").raise_if_refused()
    assert (caught.value.status, caught.value.code) == (409, "after_cutoff")
    assert caught.value.detail == "已过取号截止时间（16:30），请明日再来"


def test_an_allowed_decision_raises_nothing():
    decide(weekday_plan(), "10:00").raise_if_refused()


def test_a_local_time_with_an_offset_is_a_programming_error():
    with pytest.raises(ValueError):
        issuing_decision(weekday_plan(), time(10, tzinfo=CST), appointment=False)


# ------------------------------------------------------------------------------------------ windows

def test_every_window_is_open_within_a_period():
    assert window_open(weekday_plan(noon_service=noon(windows=("1",))), "7", t("10:00"))


def test_only_noon_windows_are_open_during_noon_service():
    plan = weekday_plan(noon_service=noon("12:00", "13:00", ("1",)))
    assert window_open(plan, "1", t("12:30"))
    assert not window_open(plan, "7", t("12:30"))
    assert not window_open(plan, "1", t("13:10"))  # the break goes on after the noon service ends


def test_no_window_is_open_in_a_break_without_noon_service():
    assert not window_open(weekday_plan(), "1", t("12:30"))


def test_no_window_is_open_after_closing_or_on_a_closed_day():
    assert not window_open(weekday_plan(), "1", t("17:30"))
    assert not window_open(day_plan(schedule(), NATIONAL_DAY, "holiday"), "1", t("10:00"))


# ------------------------------------------------------------------------------------------ day close

def test_the_default_day_close_is_23_00_local_which_is_15_00_utc():
    assert day_close_at(QueueSettings(), WEDNESDAY) == datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


def test_an_early_morning_day_close_falls_on_the_previous_utc_date():
    settings_ = QueueSettings(day_close_time=t("06:30"))
    assert day_close_at(settings_, D(2026, 1, 1)) == datetime(2025, 12, 31, 22, 30, tzinfo=UTC)


@settings(deadline=None)  # pure and fast, but a loaded machine must not fail it
@given(day=st.dates(D(2025, 1, 1), D(2027, 12, 31)), close=st.times())
def test_the_day_close_instant_is_on_its_own_business_date(day, close):
    at = day_close_at(QueueSettings(day_close_time=close), day)
    assert at.tzinfo == UTC
    assert local_date(at) == day
    assert at.astimezone(CST).time() == close


# ------------------------------------------------------------------------------------------ properties

OFF_2026 = {D(2026, 1, 1) + timedelta(days=i) for i in range(3)} \
    | {D(2026, 2, 15) + timedelta(days=i) for i in range(9)} \
    | {D(2026, 4, 4) + timedelta(days=i) for i in range(3)} \
    | {D(2026, 5, 1) + timedelta(days=i) for i in range(5)} \
    | {D(2026, 6, 19) + timedelta(days=i) for i in range(3)} \
    | {D(2026, 9, 25) + timedelta(days=i) for i in range(3)} \
    | {D(2026, 10, 1) + timedelta(days=i) for i in range(7)}
ON_2026 = {D(2026, 1, 4), D(2026, 2, 14), D(2026, 2, 28), D(2026, 5, 9), D(2026, 9, 20), D(2026, 10, 10)}


def kind_2026(day: date) -> DayKind:
    """What the 2026 official calendar says of a date (the table in official-holidays.md)."""
    if day in ON_2026:
        return "working"
    if day in OFF_2026:
        return "holiday"
    return "weekend" if day.isoweekday() >= 6 else "working"


# the dates the examples above use, and any other day of 2026
days_2026 = st.sampled_from([WEDNESDAY, SATURDAY, SUNDAY, NATIONAL_DAY, NATIONAL_DAY_SAT, QINGMING_SUN,
                             SPRING_TIAOXIU_SAT, NEW_YEAR_TIAOXIU_SUN]) | st.dates(D(2026, 1, 1), D(2026, 12, 31))


def minutes(m: int) -> time:
    return time(m // 60, m % 60)


@st.composite
def valid_periods(draw: st.DrawFn, max_periods: int = 3) -> list[Period]:
    n = draw(st.sampled_from([2, 1, 3, 0][: max_periods + 1]))
    bounds = sorted(draw(st.sets(st.integers(0, 24 * 60 - 1), min_size=2 * n, max_size=2 * n)))
    return [Period(start=minutes(a), end=minutes(b)) for a, b in zip(bounds[::2], bounds[1::2], strict=True)]


@st.composite
def valid_schedules(draw: st.DrawFn) -> HallSchedule:
    usual = draw(valid_periods())  # most halls keep the same hours most days
    week = {d: usual if draw(st.booleans()) else draw(valid_periods()) for d in WEEKDAYS}
    gaps = [(a.end, b.start) for periods in week.values() for a, b in zip(periods, periods[1:], strict=False)]
    noon_service = None
    if gaps and draw(st.booleans()):
        lo, hi = draw(st.sampled_from(gaps))
        a, b = sorted(draw(st.sets(st.integers(lo.hour * 60 + lo.minute, hi.hour * 60 + hi.minute),
                                   min_size=2, max_size=2)))
        noon_service = NoonService(start=minutes(a), end=minutes(b),
                                   windows=draw(st.lists(st.sampled_from("12345"), min_size=1, unique=True)))
    openings = [periods[0].start for periods in week.values() if periods]
    cutoff = None
    if openings and draw(st.booleans()):
        first = min(openings)
        cutoff = minutes(draw(st.integers(first.hour * 60 + first.minute + 1, 24 * 60 - 1)))
    dates = draw(st.lists(days_2026, max_size=4, unique=True))
    exceptions = []
    for day in dates:
        periods = draw(valid_periods())
        exceptions.append(ScheduleException(date=day, closed=not periods, periods=periods))
    return HallSchedule(weekly=week, noon_service=noon_service, issuing_cutoff=cutoff, exceptions=exceptions,
                        weekend_mode=draw(st.sampled_from(["appointment_first", "appointment_only", "open", "closed"])),
                        holiday_mode=draw(st.sampled_from(["closed", "as_weekend"])))


# coarse times (5-minute grid, sometimes with an offset) so collisions and overlaps are common
any_time = st.builds(lambda m, tz: time(m // 12, m % 12 * 5, tzinfo=tz), st.integers(0, 287),
                     st.sampled_from([None] * 9 + [CST]))
any_period = st.builds(Period, start=any_time, end=any_time)


@st.composite
def any_schedules(draw: st.DrawFn) -> HallSchedule:
    days = draw(st.sets(st.sampled_from(WEEKDAYS), min_size=5))
    return HallSchedule(
        weekly={d: draw(st.lists(any_period, max_size=3)) for d in days},
        noon_service=draw(st.none() | st.builds(NoonService, start=any_time, end=any_time,
                                                windows=st.lists(st.sampled_from(["1", "2", " "]), max_size=3))),
        issuing_cutoff=draw(st.none() | any_time),
        exceptions=draw(st.lists(st.builds(ScheduleException, date=st.sampled_from([NATIONAL_DAY, WEDNESDAY]),
                                           closed=st.booleans(), periods=st.lists(any_period, max_size=2)),
                                 max_size=3)),
    )


def assert_ordered_disjoint(periods: list[Period] | tuple[Period, ...]) -> None:
    for period in periods:
        assert period.start < period.end
    for before, after in zip(periods, periods[1:], strict=False):
        assert before.end <= after.start


@st.composite
def maybe_broken_schedules(draw: st.DrawFn) -> tuple[HallSchedule, str | None]:
    """A well-formed schedule, then perhaps one change that surely breaks it: (schedule, the change or None)."""
    data = draw(valid_schedules()).model_dump()
    week, exceptions = data["weekly"], data["exceptions"]
    open_days = [d for d in WEEKDAYS if week[d]]
    two_period_days = [d for d in WEEKDAYS if len(week[d]) >= 2]
    applicable = ["drop_day"]
    applicable += ["shrink", "duplicate_period", "offset"] if open_days else []
    applicable += ["cutoff_at_first_opening"] if open_days else []
    applicable += ["reverse"] if two_period_days else []
    applicable += ["noon_no_windows", "noon_backwards", "noon_window_twice"] if data["noon_service"] else []
    applicable += ["exception_twice", "exception_flip"] if exceptions else []
    change = draw(st.none() | st.sampled_from(applicable))
    day = draw(st.sampled_from(open_days or [1]))
    match change:
        case "drop_day":
            del week[draw(st.sampled_from(WEEKDAYS))]
        case "shrink":
            period = draw(st.sampled_from(week[day]))
            period["end"] = period["start"]
        case "duplicate_period":
            week[day].append(dict(week[day][-1]))
        case "offset":
            period = draw(st.sampled_from(week[day]))
            period["end"] = period["end"].replace(tzinfo=CST)
        case "cutoff_at_first_opening":
            data["issuing_cutoff"] = min(week[d][0]["start"] for d in open_days)
        case "reverse":
            week[two_period_days[0]].reverse()
        case "noon_no_windows":
            data["noon_service"]["windows"] = []
        case "noon_backwards":
            data["noon_service"]["end"] = data["noon_service"]["start"]
        case "noon_window_twice":
            data["noon_service"]["windows"].append(data["noon_service"]["windows"][0])
        case "exception_twice":
            exceptions.append(dict(draw(st.sampled_from(exceptions))))
        case "exception_flip":  # closed with periods, or open without
            exception = draw(st.sampled_from(exceptions))
            exception["closed"] = not exception["closed"]
    return HallSchedule.model_validate(data), change


@settings(deadline=None)  # pure and fast, but a loaded machine must not fail it
@given(maybe_broken_schedules())
def test_validation_rejects_exactly_the_broken_schedules(case):
    s, change = case
    if change is None:
        check_schedule(s)
        for periods in s.weekly.values():
            assert_ordered_disjoint(periods)
        for exception in s.exceptions:
            assert_ordered_disjoint(exception.periods)
    else:
        assert invalid_field(s), change


@settings(deadline=None)  # pure and fast, but a loaded machine must not fail it
@given(any_schedules())
def test_validating_anything_raises_only_a_schedule_error_naming_a_field(s):
    try:
        check_schedule(s)
    except InvalidSchedule as error:
        assert error.field and error.field.split(".")[0].split("[")[0] in {
            "weekly", "noon_service", "issuing_cutoff", "exceptions"}


def instants_of(plan: DayPlan) -> list[time]:
    """The plan's edges and one second either side: where an off-by-one would show."""
    edges = [t for period in plan.periods for t in (period.start, period.end)]
    edges += [plan.noon_service.start, plan.noon_service.end] if plan.noon_service else []
    edges += [plan.issuing_cutoff] if plan.issuing_cutoff else []
    around = [datetime.combine(WEDNESDAY, e) + timedelta(seconds=d) for e in edges for d in (-1, 0, 1)]
    return [a.time() for a in around if a.date() == WEDNESDAY] or [time(0)]


@settings(max_examples=200, deadline=None)
@given(s=valid_schedules(), day=days_2026, data=st.data(),
       appointment=st.booleans())
def test_issuing_and_windows_never_happen_outside_opening_hours(s, day, data, appointment):
    plan = day_plan(s, day, kind_2026(day))
    assert (plan.mode == "closed") == (not plan.periods)
    assert_ordered_disjoint(plan.periods)
    now = data.draw(st.sampled_from(instants_of(plan)) | st.times().map(lambda x: x.replace(microsecond=0)))
    in_hours = plan.in_period(now) or plan.in_noon_service(now)
    decision = issuing_decision(plan, now, appointment=appointment)
    if decision.allowed:
        assert in_hours
        assert plan.issuing_cutoff is not None
        assert appointment or now < plan.issuing_cutoff
        assert appointment or plan.mode != "appointment_only"
        assert decision.duty_only == (plan.mode == "appointment_first" and not appointment)
    else:
        assert decision.code and decision.message
    for window in "17":
        if window_open(plan, window, now):
            assert plan.in_period(now) or (plan.in_noon_service(now) and window in plan.noon_windows)
