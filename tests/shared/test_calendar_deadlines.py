"""Hand-computed deadlines across the 2025 and 2026 official holidays (and a made-up 2027 import).

Every expectation below was counted by hand, day by day, from /work/shared/official-holidays.md; the
counting is written beside each case. "(k)" marks the k-th working day after the acceptance date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from shared.calendar import WorkCalendar, YearData

D = date

# (accepted_on, n, expected due date, how it was counted)
CASES_2025_2026 = [
    # -- DOMAIN.md example ---------------------------------------------------------------------------
    (D(2026, 2, 12), 5, D(2026, 2, 26),
     "Thu; 13 Fri (1), 14 Sat 调休 (2), 15-23 春节 off, 24 Tue (3), 25 (4), 26 Thu (5)"),
    # -- N = 0: the acceptance date itself, even a holiday --------------------------------------------
    (D(2026, 2, 12), 0, D(2026, 2, 12), "N = 0 -> start"),
    (D(2026, 2, 17), 0, D(2026, 2, 17), "N = 0 on a 春节 holiday -> start anyway"),
    # -- 元旦 New Year --------------------------------------------------------------------------------
    (D(2024, 12, 31), 3, D(2025, 1, 6),
     "Tue; Jan 1 off, 2 Thu (1), 3 Fri (2), 4-5 weekend, 6 Mon (3)"),
    (D(2025, 12, 31), 3, D(2026, 1, 6),
     "Wed; Jan 1-3 off, 4 Sun 调休 (1), 5 Mon (2), 6 Tue (3)"),
    # -- 春节 Spring Festival with its working weekend days ------------------------------------------
    (D(2025, 1, 24), 5, D(2025, 2, 7),
     "Fri; 25 Sat off, 26 Sun 调休 (1), 27 Mon (2), Jan 28-Feb 4 off, 5 Wed (3), 6 (4), 7 Fri (5)"),
    (D(2025, 1, 27), 4, D(2025, 2, 8),
     "Mon; Jan 28-Feb 4 off, 5 Wed (1), 6 (2), 7 Fri (3), 8 Sat 调休 (4)"),
    (D(2026, 2, 24), 4, D(2026, 2, 28),
     "Tue; 25 (1), 26 (2), 27 Fri (3), 28 Sat 调休 (4)"),
    # -- start on a holiday / on a 调休 working day ----------------------------------------------------
    (D(2026, 2, 17), 1, D(2026, 2, 24), "Tue, a 春节 holiday; 18-23 off, 24 Tue (1)"),
    (D(2026, 2, 17), 3, D(2026, 2, 26), "Tue, a 春节 holiday; 18-23 off, 24 (1), 25 (2), 26 (3)"),
    (D(2026, 2, 14), 1, D(2026, 2, 24), "Sat 调休 working day; 15-23 off, 24 Tue (1)"),
    (D(2026, 2, 14), 2, D(2026, 2, 25), "Sat 调休; 15-23 off, 24 (1), 25 (2)"),
    # -- 清明节 Qingming --------------------------------------------------------------------------------
    (D(2025, 4, 3), 2, D(2025, 4, 8), "Thu; Apr 4 Fri-6 Sun off, 7 Mon (1), 8 Tue (2)"),
    (D(2026, 4, 3), 1, D(2026, 4, 7), "Fri; Apr 4 Sat-6 Mon off, 7 Tue (1)"),
    # -- 劳动节 Labour Day with adjusted days ---------------------------------------------------------
    (D(2025, 4, 25), 6, D(2025, 5, 7),
     "Fri; 26 Sat off, 27 Sun 调休 (1), 28 (2), 29 (3), 30 Wed (4), May 1-5 off, 6 Tue (5), 7 Wed (6)"),
    (D(2026, 4, 30), 4, D(2026, 5, 9),
     "Thu; May 1-5 off, 6 Wed (1), 7 (2), 8 Fri (3), 9 Sat 调休 (4)"),
    # -- 端午节 Dragon Boat --------------------------------------------------------------------------------
    (D(2025, 5, 30), 1, D(2025, 6, 3), "Fri; May 31 Sat-Jun 2 Mon off, 3 Tue (1)"),
    (D(2026, 6, 18), 2, D(2026, 6, 23), "Thu; Jun 19 Fri-21 Sun off, 22 Mon (1), 23 Tue (2)"),
    # -- 中秋节 Mid-Autumn -------------------------------------------------------------------------------
    (D(2026, 9, 24), 1, D(2026, 9, 28), "Thu; Sep 25 Fri-27 Sun off, 28 Mon (1)"),
    # -- 国庆节 National Day with adjusted days -------------------------------------------------------
    (D(2025, 9, 26), 5, D(2025, 10, 10),
     "Fri; 27 Sat off, 28 Sun 调休 (1), 29 (2), 30 (3), Oct 1-8 off, 9 Thu (4), 10 Fri (5)"),
    (D(2025, 9, 26), 6, D(2025, 10, 11), "as above, then Oct 11 Sat 调休 (6)"),
    (D(2026, 9, 18), 3, D(2026, 9, 22), "Fri; 19 Sat off, 20 Sun 调休 (1), 21 Mon (2), 22 Tue (3)"),
    (D(2026, 9, 30), 3, D(2026, 10, 10), "Wed; Oct 1-7 off, 8 Thu (1), 9 Fri (2), 10 Sat 调休 (3)"),
    # -- long limits -----------------------------------------------------------------------------------
    (D(2026, 2, 2), 20, D(2026, 3, 6),
     "Mon; Feb 3-6 (1-4), 9-13 (5-9), 14 Sat 调休 (10), 15-23 off, 24-27 (11-14), 28 Sat 调休 (15), "
     "Mar 1 Sun off, Mar 2-6 (16-20)"),
    (D(2025, 9, 1), 60, D(2025, 11, 28),
     "Mon; Sep 2-5 (1-4), 8-12 (5-9), 15-19 (10-14), 22-26 (15-19), 27 Sat off, 28 Sun 调休 (20), "
     "29-30 (21-22), Oct 1-8 off, 9-10 (23-24), 11 Sat 调休 (25), 13-17 (26-30), 20-24 (31-35), "
     "27-31 (36-40), Nov 3-7 (41-45), 10-14 (46-50), 17-21 (51-55), 24-28 (56-60)"),
    (D(2026, 1, 5), 60, D(2026, 4, 3),
     "Mon; Jan 6-9 (1-4), 12-16 (5-9), 19-23 (10-14), 26-30 (15-19), Feb 2-6 (20-24), 9-13 (25-29), "
     "14 Sat 调休 (30), 15-23 off, 24-27 (31-34), 28 Sat 调休 (35), Mar 2-6 (36-40), 9-13 (41-45), "
     "16-20 (46-50), 23-27 (51-55), Mar 30-Apr 3 (56-60)"),
    (D(2026, 1, 5), 61, D(2026, 4, 7), "as above, then Apr 4 Sat-6 Mon 清明 off, 7 Tue (61)"),
]


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar()


@pytest.mark.parametrize(("accepted", "n", "expected", "counting"), CASES_2025_2026,
                         ids=[f"{c[0]}+{c[1]}" for c in CASES_2025_2026])
def test_deadline(cal: WorkCalendar, accepted: date, n: int, expected: date, counting: str) -> None:
    assert cal.add_working_days(accepted, n) == expected, counting


@pytest.mark.parametrize(("accepted", "n", "expected", "counting"),
                         [c for c in CASES_2025_2026 if c[0] != c[2]],
                         ids=[f"{c[0]}+{c[1]}" for c in CASES_2025_2026 if c[0] != c[2]])
def test_between_inverts_deadline(cal: WorkCalendar, accepted: date, n: int, expected: date,
                                  counting: str) -> None:
    # Only meaningful where the start is a working day or n > 0: a < d <= b counts exactly the n days.
    assert cal.working_days_between(accepted, expected) == n, counting


def test_domain_due_at(cal: WorkCalendar) -> None:
    due = cal.due_at(D(2026, 2, 12), 5)
    assert due == datetime(2026, 2, 26, 15, 59, 59, tzinfo=UTC)
    assert due.utcoffset() is not None and due.utcoffset().total_seconds() == 0
    # N = 0 ends at the end of the acceptance day: 23:59:59 +08:00 = 15:59:59Z.
    assert cal.due_at(D(2026, 2, 12), 0) == datetime(2026, 2, 12, 15, 59, 59, tzinfo=UTC)


# -- 2027: Monday-Friday fallback, then an imported (made-up, plausible) official 2027 schedule -----

def _made_up_2027() -> YearData:
    """元旦 Jan 1 (Fri)-3 (Sun) off; 春节 Feb 6 (Sat)-13 (Sat) off, Sun Feb 14 and Sat Feb 20 调休 on."""
    holidays = {D(2027, 1, 1), D(2027, 1, 2), D(2027, 1, 3)} | {D(2027, 2, d) for d in range(6, 14)}
    return YearData(year=2027, holidays=frozenset(holidays),
                    workdays=frozenset({D(2027, 2, 14), D(2027, 2, 20)}))


CASES_2027 = [
    # (accepted, n, expected on fallback, expected with the 2027 import, counting)
    (D(2026, 12, 28), 20, D(2027, 1, 25), D(2027, 1, 26),
     "fallback: Dec 29-31 (1-3), Jan 1 Fri (4), Jan 4-8 (5-9), 11-15 (10-14), 18-22 (15-19), 25 Mon (20); "
     "imported: Dec 29-31 (1-3), Jan 1-3 off, 4-8 (4-8), 11-15 (9-13), 18-22 (14-18), 25 (19), 26 Tue (20)"),
    (D(2027, 2, 5), 3, D(2027, 2, 10), D(2027, 2, 16),
     "fallback: Feb 8 Mon (1), 9 (2), 10 Wed (3); imported: Feb 6-13 off, 14 Sun 调休 (1), 15 (2), 16 (3)"),
    (D(2026, 11, 30), 60, D(2027, 2, 22), D(2027, 2, 26),
     "fallback: Dec 1-4 (1-4), 7-11 (5-9), 14-18 (10-14), 21-25 (15-19), 28-31 (20-23), Jan 1 (24), "
     "Jan 4-8 (25-29), 11-15 (30-34), 18-22 (35-39), 25-29 (40-44), Feb 1-5 (45-49), 8-12 (50-54), "
     "15-19 (55-59), 22 Mon (60); imported: Dec 1-31 (1-23), Jan 1-3 off, Jan 4-29 (24-43), "
     "Feb 1-5 (44-48), 6-13 off, 14 Sun 调休 (49), 15-19 (50-54), 20 Sat 调休 (55), 22-26 (56-60)"),
]


@pytest.mark.parametrize(("accepted", "n", "fallback", "imported", "counting"), CASES_2027,
                         ids=[f"{c[0]}+{c[1]}" for c in CASES_2027])
def test_deadline_into_2027(accepted: date, n: int, fallback: date, imported: date, counting: str) -> None:
    before = WorkCalendar()
    assert before.add_working_days(accepted, n) == fallback, counting
    assert 2027 in before.fallback_years()
    after = before.with_imported_year(_made_up_2027())
    assert after.add_working_days(accepted, n) == imported, counting
    assert after.working_days_between(accepted, imported) == n
    assert 2027 not in after.fallback_years()


# -- pauses ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("paused", "resumed", "shift"), [
    (D(2026, 3, 3), D(2026, 3, 5), 2),     # Tue -> Thu: Wed (1), Thu (2)
    (D(2026, 3, 3), D(2026, 3, 3), 0),     # same day
    (D(2026, 3, 5), D(2026, 3, 3), 0),     # resumed "before" paused: nothing
    (D(2026, 2, 13), D(2026, 2, 25), 3),   # Fri -> Wed: 14 Sat 调休 (1), 15-23 off, 24 (2), 25 (3)
    (D(2025, 9, 26), D(2025, 10, 9), 4),   # Fri -> Thu: 28 Sun 调休 (1), 29 (2), 30 (3), Oct 1-8 off, 9 (4)
])
def test_pause_shift(cal: WorkCalendar, paused: date, resumed: date, shift: int) -> None:
    assert cal.pause_shift(paused, resumed) == shift


# -- early warning --------------------------------------------------------------------------------

@pytest.mark.parametrize(("accepted", "due", "lead", "expected"), [
    # accepted 2026-02-12, N = 5, due 2026-02-26; working days before it: 25, 24, 14 (调休), 13, 12
    (D(2026, 2, 12), D(2026, 2, 26), 1, D(2026, 2, 25)),
    (D(2026, 2, 12), D(2026, 2, 26), 2, D(2026, 2, 24)),
    (D(2026, 2, 12), D(2026, 2, 26), 3, D(2026, 2, 14)),
    (D(2026, 2, 12), D(2026, 2, 26), 4, D(2026, 2, 13)),
    (D(2026, 2, 12), D(2026, 2, 26), 5, None),   # W = N: the acceptance day itself, not after it
    (D(2026, 2, 12), D(2026, 2, 26), 6, None),   # W > N
    (D(2026, 2, 12), D(2026, 2, 12), 1, None),   # 即办件 N = 0, W = 1
    (D(2026, 2, 12), D(2026, 2, 12), 0, None),   # N = 0, W = 0
])
def test_warning_day(cal: WorkCalendar, accepted: date, due: date, lead: int, expected: date | None) -> None:
    assert cal.warning_day(accepted, due, lead) == expected


def test_warning_at_is_local_midnight_in_utc(cal: WorkCalendar) -> None:
    # 2026-02-14 00:00 +08:00 = 2026-02-13 16:00Z
    assert cal.warning_at(D(2026, 2, 12), D(2026, 2, 26), 3) == datetime(2026, 2, 13, 16, 0, tzinfo=UTC)
    assert cal.warning_at(D(2026, 2, 12), D(2026, 2, 26), 5) is None


# -- argument errors --------------------------------------------------------------------------------

def test_negative_counts_are_refused(cal: WorkCalendar) -> None:
    with pytest.raises(ValueError, match="n must be >= 0"):
        cal.add_working_days(D(2026, 2, 12), -1)
    with pytest.raises(ValueError, match="n must be >= 0"):
        cal.due_at(D(2026, 2, 12), -3)
    with pytest.raises(ValueError, match="n must be >= 0"):
        cal.subtract_working_days(D(2026, 2, 12), -1)
    with pytest.raises(ValueError, match="lead_w must be >= 0"):
        cal.warning_day(D(2026, 2, 12), D(2026, 2, 26), -1)
    with pytest.raises(ValueError, match="lead_w must be >= 0"):
        cal.warning_at(D(2026, 2, 12), D(2026, 2, 26), -1)


def test_datetimes_are_refused(cal: WorkCalendar) -> None:
    with pytest.raises(TypeError, match="datetime.date"):
        cal.add_working_days(datetime(2026, 2, 12, 10, tzinfo=UTC), 1)  # type: ignore[arg-type]


def test_docstring_examples() -> None:
    # The DOMAIN.md examples in the engine's docstrings are executable; keep them true.
    import doctest

    from shared.calendar import engine

    result = doctest.testmod(engine)
    assert result.attempted >= 7 and result.failed == 0
