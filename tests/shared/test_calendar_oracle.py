"""The engine against a naive day-by-day oracle built from the official tables typed in by hand.

The tables below are copied from /work/shared/official-holidays.md (State Council notices for 2025 and
2026), not read from the ``chinese_calendar`` package, so a wrong package, a wrong layer or an
off-by-one in the bisect arithmetic all show up. 2027 has no official data in the package: both the
engine (fallback) and the oracle count it Monday to Friday.
"""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.calendar import WorkCalendar


def _span(start: date, end: date) -> set[date]:
    return {start + timedelta(days=i) for i in range((end - start).days + 1)}


D = date

OFF: set[date] = (
    # 2025
    {D(2025, 1, 1)}                                   # 元旦
    | _span(D(2025, 1, 28), D(2025, 2, 4))            # 春节
    | _span(D(2025, 4, 4), D(2025, 4, 6))             # 清明节
    | _span(D(2025, 5, 1), D(2025, 5, 5))             # 劳动节
    | _span(D(2025, 5, 31), D(2025, 6, 2))            # 端午节
    | _span(D(2025, 10, 1), D(2025, 10, 8))           # 国庆节、中秋节
    # 2026
    | _span(D(2026, 1, 1), D(2026, 1, 3))             # 元旦
    | _span(D(2026, 2, 15), D(2026, 2, 23))           # 春节
    | _span(D(2026, 4, 4), D(2026, 4, 6))             # 清明节
    | _span(D(2026, 5, 1), D(2026, 5, 5))             # 劳动节
    | _span(D(2026, 6, 19), D(2026, 6, 21))           # 端午节
    | _span(D(2026, 9, 25), D(2026, 9, 27))           # 中秋节
    | _span(D(2026, 10, 1), D(2026, 10, 7))           # 国庆节
)

ON: set[date] = {  # 调休上班: adjusted weekend working days
    D(2025, 1, 26), D(2025, 2, 8), D(2025, 4, 27), D(2025, 9, 28), D(2025, 10, 11),
    D(2026, 1, 4), D(2026, 2, 14), D(2026, 2, 28), D(2026, 5, 9), D(2026, 9, 20), D(2026, 10, 10),
}


def oracle_is_working(d: date) -> bool:
    if d in ON:
        return True
    if d in OFF:
        return False
    return d.weekday() < 5


def mon_fri(d: date) -> bool:
    return d.weekday() < 5


def oracle_add(start: date, n: int, is_working=oracle_is_working) -> date:
    d, left = start, n
    while left:
        d += timedelta(days=1)
        if is_working(d):
            left -= 1
    return d


def oracle_between(a: date, b: date, is_working=oracle_is_working) -> int:
    count, d = 0, a
    while d < b:
        d += timedelta(days=1)
        count += is_working(d)
    return count


CAL = WorkCalendar()
dates = st.dates(min_value=D(2025, 1, 1), max_value=D(2026, 12, 31))
counts = st.integers(min_value=0, max_value=250)


def test_tables_are_consistent() -> None:
    # Guard the hand-typed tables themselves: adjusted working days are weekend days, never also off.
    assert all(d.weekday() >= 5 for d in ON)
    assert not ON & OFF


@settings(max_examples=400, deadline=None)
@given(start=dates, n=counts)
def test_add_matches_oracle(start: date, n: int) -> None:
    assert CAL.add_working_days(start, n) == oracle_add(start, n)


@settings(max_examples=400, deadline=None)
@given(a=dates, b=dates)
def test_between_matches_oracle(a: date, b: date) -> None:
    assert CAL.working_days_between(a, b) == oracle_between(a, b)


@settings(max_examples=300, deadline=None)
@given(start=dates, n=counts)
def test_between_inverts_add(start: date, n: int) -> None:
    assert CAL.working_days_between(start, CAL.add_working_days(start, n)) == n


@settings(max_examples=300, deadline=None)
@given(start=dates, m=counts, n=counts)
def test_add_composes(start: date, m: int, n: int) -> None:
    assert CAL.add_working_days(CAL.add_working_days(start, m), n) == CAL.add_working_days(start, m + n)


@settings(max_examples=300, deadline=None)
@given(due=st.dates(min_value=D(2025, 6, 1), max_value=D(2026, 12, 31)), w=st.integers(min_value=0, max_value=60))
def test_step_back_matches_oracle(due: date, w: int) -> None:
    # due from June 2025 so that 60 working days back stay inside the typed 2025 table
    back = CAL.subtract_working_days(due, w)
    if w == 0:
        assert back == due
        return
    # back is the w-th working day before due: a working day, with exactly w working days in [back, due)
    one = timedelta(days=1)
    assert back < due and oracle_is_working(back)
    assert oracle_between(back - one, due - one) == w


def test_every_day_of_2025_and_2026_matches_oracle() -> None:
    d = D(2025, 1, 1)
    while d <= D(2026, 12, 31):
        assert CAL.is_working_day(d) == oracle_is_working(d), d
        assert CAL.working_days_between(d - timedelta(days=1), d) == int(oracle_is_working(d)), d
        d += timedelta(days=1)


def test_oracle_has_teeth() -> None:
    # A plain Monday-Friday calendar disagrees with the oracle: DOMAIN's example would come out wrong.
    start = D(2026, 2, 12)
    assert oracle_add(start, 5) == D(2026, 2, 26)
    assert oracle_add(start, 5, is_working=mon_fri) == D(2026, 2, 19)
    assert oracle_between(D(2025, 12, 31), D(2026, 12, 31)) != oracle_between(
        D(2025, 12, 31), D(2026, 12, 31), is_working=mon_fri)
    # and the engine sides with the oracle, not with Monday-Friday
    assert CAL.add_working_days(start, 5) != oracle_add(start, 5, is_working=mon_fri)
