"""The working-day calendar (工作日历): a pure, immutable, precomputed engine for every clock in the hall.

Why a precomputed engine: every case deadline (承诺期限/法定期限), pause (补正, 特别程序), extension (延期),
stage limit and early warning (预警) is "N working days after a date", and supervision recomputes many
of them whenever the calendar changes. Walking day by day through holidays is slow and easy to get
subtly wrong, so each (year, centre) gets a sorted tuple of the ordinals of its working days, built once
on first use; a query is a `bisect` plus an index jump, crossing year blocks when needed.

Layers, highest precedence first (DOMAIN.md "How the clock counts"):

1. ``"override"``: a centre's own holiday or working day (a typhoon closure, a weekend opening); it
   applies to that centre only.
2. ``"imported"``: a whole year's official schedule imported by a system admin for a year the package
   does not cover yet (e.g. 2027): holidays and adjusted working days (调休上班); other days Mon-Fri.
3. ``"official"``: the ``chinese_calendar`` package, for the years it covers.
4. ``"fallback"``: Monday to Friday, for any other year; such years are reported (``fallback_years``)
   so a "calendar missing for year Y" alert can be raised.

Dates are Asia/Shanghai business dates; instants returned (``due_at``, ``warning_at``) are UTC.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from types import MappingProxyType
from typing import Literal

import chinese_calendar.constants as _cc

from shared.clock import LOCAL_TZ

_END_OF_DAY = time(23, 59, 59)
_START_OF_DAY = time(0, 0, 0)

DaySource = Literal["override", "imported", "official", "fallback"]
OverrideKind = Literal["holiday", "working"]

# The official schedule the installed package carries, read from the package itself so that a newer
# release (one carrying 2027) widens the range without a code change.
_OFFICIAL_HOLIDAYS: frozenset[date] = frozenset(_cc.holidays)
_OFFICIAL_WORKDAYS: frozenset[date] = frozenset(_cc.workdays)
_official_years = {d.year for d in _OFFICIAL_HOLIDAYS} | {d.year for d in _OFFICIAL_WORKDAYS}
OFFICIAL_YEARS: range = range(min(_official_years), max(_official_years) + 1)


@dataclass(frozen=True, slots=True)
class YearData:
    """One year's official schedule, imported because the package does not carry it (e.g. 2027).

    Only the exceptions to Monday-Friday are listed: ``holidays`` (days off, weekday or weekend, e.g.
    the whole 春节 span) and ``workdays`` (adjusted weekend working days, 调休上班). ``names`` maps a
    date to its festival name (春节, 国庆节) for display; it does not affect counting.
    """

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]
    names: Mapping[date, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "workdays", frozenset(self.workdays))
        object.__setattr__(self, "names", MappingProxyType(dict(self.names)))
        if not 1 <= self.year <= 9999:
            raise ValueError(f"year {self.year} is out of range")
        for d in self.holidays | self.workdays:
            if d.year != self.year:
                raise ValueError(f"{d.isoformat()} is not in year {self.year}")
        both = self.holidays & self.workdays
        if both:
            raise ValueError(f"dates both holiday and working: {sorted(d.isoformat() for d in both)}")

    def is_working(self, d: date) -> bool:
        """Working under this schedule: an adjusted working day, or a weekday that is not a holiday."""
        return d in self.workdays or (d.weekday() < 5 and d not in self.holidays)


def _normalise_override(value: bool | str) -> bool:
    """An override value as "is a working day": accepts True/False or "working"/"holiday"."""
    if isinstance(value, bool):
        return value
    if value == "working":
        return True
    if value == "holiday":
        return False
    raise ValueError(f"override kind must be 'holiday' or 'working', not {value!r}")


def _check_date(d: date, name: str) -> None:
    # A datetime is a date subclass; silently dropping its time and zone would shift deadlines.
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"{name} must be a datetime.date (a local business date), not {type(d).__name__}")


def _check_count(n: int, name: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{name} must be an int, not {type(n).__name__}")
    if n < 0:
        raise ValueError(f"{name} must be >= 0 working days, got {n}")


class WorkCalendar:
    """An immutable snapshot of the working-day calendar (all four layers) at one ``version``.

    When the data changes (a year import, a centre override) build a new snapshot, e.g. with
    :meth:`with_imported_year` or :meth:`with_override`; building is cheap because year tables are made
    lazily on first use and cached inside the snapshot. Caches never change an answer, so sharing one
    snapshot between threads or tasks is safe.

    ``overrides`` maps a centre id to ``{date: is_working}`` (``True``/``"working"`` opens the centre on
    that date, ``False``/``"holiday"`` closes it).
    """

    __slots__ = ("version", "_imported", "_overrides", "_override_years", "_tables", "_fallback_seen")

    def __init__(
        self,
        imported_years: Mapping[int, YearData] | None = None,
        overrides: Mapping[str, Mapping[date, bool | str]] | None = None,
        version: int = 0,
    ) -> None:
        imported: dict[int, YearData] = {}
        for year, data in (imported_years or {}).items():
            if data.year != year:
                raise ValueError(f"imported year key {year} does not match its data's year {data.year}")
            imported[year] = data
        centre_days: dict[str, Mapping[date, bool]] = {}
        override_years: dict[str, frozenset[int]] = {}
        for centre, days in (overrides or {}).items():
            if not days:
                continue
            for d in days:
                _check_date(d, "override date")
            normalised = {d: _normalise_override(v) for d, v in days.items()}
            centre_days[centre] = MappingProxyType(normalised)
            override_years[centre] = frozenset(d.year for d in normalised)
        self.version: int = version
        self._imported: Mapping[int, YearData] = MappingProxyType(imported)
        self._overrides: Mapping[str, Mapping[date, bool]] = MappingProxyType(centre_days)
        self._override_years: Mapping[str, frozenset[int]] = MappingProxyType(override_years)
        # (centre or None, year) -> sorted ordinals of the working days of that year for that centre.
        # A centre without overrides in a year shares the base (None, year) tuple.
        self._tables: dict[tuple[str | None, int], tuple[int, ...]] = {}
        self._fallback_seen: set[int] = set()

    def __repr__(self) -> str:
        return (f"WorkCalendar(version={self.version}, imported={sorted(self._imported)}, "
                f"centres_with_overrides={sorted(self._overrides)})")

    # -- snapshot data -------------------------------------------------------------------------------

    @property
    def imported_years(self) -> Mapping[int, YearData]:
        return self._imported

    @property
    def overrides(self) -> Mapping[str, Mapping[date, bool]]:
        return self._overrides

    def with_imported_year(self, data: YearData, version: int | None = None) -> WorkCalendar:
        """A new snapshot with ``data`` imported (replacing any earlier import of that year)."""
        imported = dict(self._imported)
        imported[data.year] = data
        return WorkCalendar(imported, self._overrides, self.version + 1 if version is None else version)

    def with_override(self, centre: str, d: date, kind: bool | OverrideKind,
                      version: int | None = None) -> WorkCalendar:
        """A new snapshot where centre ``centre`` treats ``d`` as a holiday or a working day."""
        _check_date(d, "override date")
        overrides = {c: dict(days) for c, days in self._overrides.items()}
        overrides.setdefault(centre, {})[d] = _normalise_override(kind)
        return WorkCalendar(self._imported, overrides, self.version + 1 if version is None else version)

    def without_override(self, centre: str, d: date, version: int | None = None) -> WorkCalendar:
        """A new snapshot with centre ``centre``'s override of ``d`` removed (if any)."""
        overrides = {c: dict(days) for c, days in self._overrides.items()}
        overrides.get(centre, {}).pop(d, None)
        return WorkCalendar(self._imported, overrides, self.version + 1 if version is None else version)

    # -- layers --------------------------------------------------------------------------------------

    def day_source(self, d: date, center: str | None = None) -> DaySource:
        """Which layer decides whether ``d`` is a working day (for ``center``, if given)."""
        _check_date(d, "d")
        if center is not None and d in self._overrides.get(center, ()):
            return "override"
        return self._year_source(d.year)

    def _year_source(self, year: int) -> DaySource:
        if year in self._imported:
            return "imported"
        if year in OFFICIAL_YEARS:
            return "official"
        return "fallback"

    def is_fallback_year(self, year: int) -> bool:
        """True if ``year`` has neither an import nor package data, so it counts Monday-Friday."""
        return self._year_source(year) == "fallback"

    def fallback_years(self, within: Iterable[int] | None = None) -> frozenset[int]:
        """Years counted on the Monday-Friday fallback (each one deserves a "calendar missing" alert).

        With ``within``, the fallback years among those; without it, the fallback years this snapshot
        has actually counted through so far (a deadline reached into them). A new snapshot after an
        import of year Y no longer reports Y.
        """
        if within is not None:
            return frozenset(y for y in within if self.is_fallback_year(y))
        return frozenset(self._fallback_seen)

    def is_working_day(self, d: date, center: str | None = None) -> bool:
        """Whether ``d`` is a working day, decided layer by layer (no tables: O(1) set look-ups)."""
        _check_date(d, "d")
        if center is not None:
            centre_days = self._overrides.get(center)
            if centre_days is not None and d in centre_days:
                return centre_days[d]
        imported = self._imported.get(d.year)
        if imported is not None:
            return imported.is_working(d)
        if d.year in OFFICIAL_YEARS:
            return d in _OFFICIAL_WORKDAYS or (d.weekday() < 5 and d not in _OFFICIAL_HOLIDAYS)
        return d.weekday() < 5

    def is_holiday(self, d: date, center: str | None = None) -> bool:
        """Whether ``d`` is a holiday (a centre's own day off, or a day of an official holiday span, weekend
        days of the span included), as opposed to a plain weekend or a working day: the hall schedule
        closes on holidays and keeps its weekend hours on other weekends."""
        _check_date(d, "d")
        if center is not None:
            centre_days = self._overrides.get(center)
            if centre_days is not None and d in centre_days:
                return not centre_days[d]
        imported = self._imported.get(d.year)
        if imported is not None:
            return d in imported.holidays
        return d.year in OFFICIAL_YEARS and d in _OFFICIAL_HOLIDAYS

    # -- year tables ---------------------------------------------------------------------------------

    def _table(self, center: str | None, year: int) -> tuple[int, ...]:
        """Sorted ordinals of ``year``'s working days for ``center``; built once, then cached."""
        key = (center, year)
        table = self._tables.get(key)
        if table is not None:
            return table
        if not 1 <= year <= 9999:
            raise ValueError(f"working-day count runs outside the supported dates (year {year})")
        if center is not None and year in self._override_years.get(center, ()):
            table = self._build(center, year)
        else:
            table = self._tables.get((None, year))
            if table is None:
                table = self._build(None, year)
                self._tables[(None, year)] = table
        self._tables[key] = table
        return table

    def _build(self, center: str | None, year: int) -> tuple[int, ...]:
        if self.is_fallback_year(year):
            self._fallback_seen.add(year)
        first = date(year, 1, 1).toordinal()
        last = date(year, 12, 31).toordinal()
        is_working = self.is_working_day
        return tuple(o for o in range(first, last + 1) if is_working(date.fromordinal(o), center))

    # -- counting ------------------------------------------------------------------------------------

    def add_working_days(self, start: date, n: int, center: str | None = None) -> date:
        """The n-th working day after ``start`` (``start`` itself is not counted).

        n = 0 returns ``start`` itself, even when it is a holiday (即办件 ends on the acceptance day).

        >>> cal = WorkCalendar()
        >>> cal.add_working_days(date(2026, 2, 12), 5)  # Thu; 13, 14 (调休), 春节 15-23, 24, 25, 26
        datetime.date(2026, 2, 26)
        """
        _check_date(start, "start")
        _check_count(n, "n")
        if n == 0:
            return start
        year = start.year
        table = self._table(center, year)
        # index of the n-th working day after start, in this year's block
        i = bisect_right(table, start.toordinal()) + n - 1
        while i >= len(table):
            i -= len(table)
            year += 1
            table = self._table(center, year)
        return date.fromordinal(table[i])

    def subtract_working_days(self, end: date, n: int, center: str | None = None) -> date:
        """The n-th working day before ``end`` (``end`` itself is not counted); n = 0 returns ``end``.

        >>> WorkCalendar().subtract_working_days(date(2026, 2, 26), 3)  # 25, 24, then back over 春节 to 14 (调休)
        datetime.date(2026, 2, 14)
        """
        _check_date(end, "end")
        _check_count(n, "n")
        if n == 0:
            return end
        year = end.year
        table = self._table(center, year)
        i = bisect_left(table, end.toordinal()) - n
        while i < 0:
            year -= 1
            table = self._table(center, year)
            i += len(table)
        return date.fromordinal(table[i])

    def working_days_between(self, a: date, b: date, center: str | None = None) -> int:
        """The number of working days d with a < d <= b (0 if b <= a).

        >>> WorkCalendar().working_days_between(date(2026, 2, 12), date(2026, 2, 26))
        5
        """
        _check_date(a, "a")
        _check_date(b, "b")
        if b <= a:
            return 0
        ao, bo = a.toordinal(), b.toordinal()
        if a.year == b.year:
            table = self._table(center, a.year)
            return bisect_right(table, bo) - bisect_right(table, ao)
        first = self._table(center, a.year)
        total = len(first) - bisect_right(first, ao)
        for year in range(a.year + 1, b.year):
            total += len(self._table(center, year))
        return total + bisect_right(self._table(center, b.year), bo)

    # -- the clock's rules ---------------------------------------------------------------------------

    def due_at(self, accepted_on: date, n: int, center: str | None = None) -> datetime:
        """The deadline instant of an N-working-day limit: 23:59:59 Asia/Shanghai on the due date, in UTC.

        Accepted Thu 2026-02-12 with N = 5 is due at the end of Thu 2026-02-26 local, i.e.
        2026-02-26T15:59:59Z (the acceptance day is not counted; 14 Feb is a 调休 working day and
        15-23 Feb are the 春节 holiday).

        >>> WorkCalendar().due_at(date(2026, 2, 12), 5).isoformat()
        '2026-02-26T15:59:59+00:00'
        """
        due = self.add_working_days(accepted_on, n, center)
        return datetime.combine(due, _END_OF_DAY, tzinfo=LOCAL_TZ).astimezone(UTC)

    def pause_shift(self, paused_on: date, resumed_on: date, center: str | None = None) -> int:
        """Working days a pause (补正, 特别程序, forwarding) from P to R adds: d with P < d <= R.

        Paused Tue, resumed Thu -> 2; paused and resumed the same day -> 0.

        >>> WorkCalendar().pause_shift(date(2026, 3, 3), date(2026, 3, 5))
        2
        """
        return self.working_days_between(paused_on, resumed_on, center)

    def warning_day(self, accepted_on: date, due_date: date, lead_w: int,
                    center: str | None = None) -> date | None:
        """The early-warning (预警) day: step back ``lead_w`` working days from ``due_date``.

        That is the working day d with ``working_days_between(d, due_date) == lead_w`` (for a working
        due date). None when that day is not after ``accepted_on``: 即办件 (N = 0) and W >= N get no
        warning. Accepted 2026-02-12, N = 5 (due 2026-02-26), W = 2 -> 2026-02-24; W = 5 -> None.

        >>> WorkCalendar().warning_day(date(2026, 2, 12), date(2026, 2, 26), 2)
        datetime.date(2026, 2, 24)
        """
        _check_date(accepted_on, "accepted_on")
        _check_count(lead_w, "lead_w")
        day = self.subtract_working_days(due_date, lead_w, center)
        return day if day > accepted_on else None

    def warning_at(self, accepted_on: date, due_date: date, lead_w: int,
                   center: str | None = None) -> datetime | None:
        """``warn_at``: 00:00 Asia/Shanghai of :meth:`warning_day`, in UTC (None if no warning).

        >>> WorkCalendar().warning_at(date(2026, 2, 12), date(2026, 2, 26), 2).isoformat()
        '2026-02-23T16:00:00+00:00'
        """
        day = self.warning_day(accepted_on, due_date, lead_w, center)
        if day is None:
            return None
        return datetime.combine(day, _START_OF_DAY, tzinfo=LOCAL_TZ).astimezone(UTC)
