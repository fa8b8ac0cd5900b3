"""Deadlines and waits counted in opening time (the monitor's hours): the rules the complaint clock and the
long-wait alert rely on, on the default schedule (weekdays 9:00-12:00 and 13:30-17:30) and the calendar."""

from datetime import date, datetime, time, timedelta

from services.monitor.hours import add_opening_time, opening_seconds_between
from shared import clock, schedule
from shared.calendar.engine import WorkCalendar
from shared.events.catalog import HallSchedule, NoonService, Period

CALENDAR = WorkCalendar()
HOURS = schedule.DEFAULT_SCHEDULE


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=clock.LOCAL_TZ)


def test_a_simple_complaint_at_1720_is_due_50_minutes_into_the_next_opening():
    # Fri 6 Mar 2026 17:20: 10 minutes left today; the weekend opens 9:00 (default weekend hours)
    due = add_opening_time(HOURS, CALENDAR, "320102", local(date(2026, 3, 6), 17, 20), 3600)
    assert due == local(date(2026, 3, 7), 9, 50)
    # Thu 5 Mar: the next opening is Friday morning
    assert add_opening_time(HOURS, CALENDAR, "320102", local(date(2026, 3, 5), 17, 20), 3600) == \
        local(date(2026, 3, 6), 9, 50)
    # within a period, and across the noon break
    assert add_opening_time(HOURS, CALENDAR, "320102", local(date(2026, 3, 5), 10, 0), 3600) == \
        local(date(2026, 3, 5), 11, 0)
    assert add_opening_time(HOURS, CALENDAR, "320102", local(date(2026, 3, 5), 11, 30), 3600) == \
        local(date(2026, 3, 5), 14, 0)


def test_the_spring_festival_holiday_has_no_opening_hours():
    # Fri 13 Feb 2026 17:00: the holiday runs 15-23 Feb, Sat 14 Feb is a 调休 working day (weekday hours)
    due = add_opening_time(HOURS, CALENDAR, "320102", local(date(2026, 2, 13), 17, 0), 3600)
    assert due == local(date(2026, 2, 14), 9, 30)
    due = add_opening_time(HOURS, CALENDAR, "320102", local(date(2026, 2, 14), 17, 0), 3600)
    assert due == local(date(2026, 2, 24), 9, 30)  # 15-23 Feb closed


def test_a_wait_over_the_noon_break_counts_only_open_minutes():
    day = date(2026, 3, 5)
    assert opening_seconds_between(HOURS, CALENDAR, "320102", local(day, 11, 50), local(day, 13, 40)) == 20 * 60
    assert opening_seconds_between(HOURS, CALENDAR, "320102", local(day, 17, 0),
                                   local(day, 17, 0) + timedelta(hours=16, minutes=10)) == 40 * 60  # 17:00-17:30, 9:00-9:10
    noon = HallSchedule(weekly=HOURS.weekly, noon_service=NoonService(
        start=time(12, 0), end=time(13, 30), windows=["1"]))
    assert opening_seconds_between(noon, CALENDAR, "320102", local(day, 11, 50), local(day, 13, 40), "1") == \
        110 * 60  # window 1 serves at noon
    assert Period(start=time(9), end=time(12)) in HOURS.weekly[1]
