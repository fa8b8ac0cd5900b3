"""The working-day calendar (工作日历): official schedule, imported years, centre overrides, fallback.

See :mod:`shared.calendar.engine` for the counting rules and :mod:`shared.calendar.csvio` for the
year-import format.
"""

from shared.calendar.csvio import (
    CalendarImportError,
    parse_year_csv,
    parse_year_json,
    year_to_csv,
    year_to_json,
)
from shared.calendar.engine import (
    OFFICIAL_YEARS,
    DaySource,
    OverrideKind,
    WorkCalendar,
    YearData,
)
from shared.clock import LOCAL_TZ

__all__ = [
    "LOCAL_TZ",
    "OFFICIAL_YEARS",
    "CalendarImportError",
    "DaySource",
    "OverrideKind",
    "WorkCalendar",
    "YearData",
    "parse_year_csv",
    "parse_year_json",
    "year_to_csv",
    "year_to_json",
]
