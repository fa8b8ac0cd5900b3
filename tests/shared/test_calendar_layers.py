"""The calendar's layers (override > imported > official > fallback) and the year-import format."""

from __future__ import annotations

import json
from datetime import date

import pytest

from shared.calendar import (
    OFFICIAL_YEARS,
    CalendarImportError,
    WorkCalendar,
    YearData,
    parse_year_csv,
    parse_year_json,
    year_to_csv,
    year_to_json,
)

D = date

CSV_2027 = """date,kind,name
2027-01-01,holiday,元旦
2027-01-02,holiday,元旦
2027-01-03,holiday,元旦
2027-02-06,holiday,春节
2027-02-07,holiday,春节
2027-02-08,holiday,春节
2027-02-09,holiday,春节
2027-02-10,holiday,春节
2027-02-11,holiday,春节
2027-02-12,holiday,春节
2027-02-13,holiday,春节
2027-02-14,working,春节

2027-02-20,working,春节
"""


# -- centre overrides ------------------------------------------------------------------------------

def test_weekday_closed_for_one_centre_only() -> None:
    # Typhoon: centre A closes on Wed 2026-03-04.
    cal = WorkCalendar(overrides={"A": {D(2026, 3, 4): "holiday"}})
    assert cal.add_working_days(D(2026, 3, 3), 1, "A") == D(2026, 3, 5)
    assert cal.add_working_days(D(2026, 3, 3), 1, "B") == D(2026, 3, 4)
    assert cal.add_working_days(D(2026, 3, 3), 1) == D(2026, 3, 4)
    assert cal.working_days_between(D(2026, 3, 2), D(2026, 3, 6), "A") == 3
    assert cal.working_days_between(D(2026, 3, 2), D(2026, 3, 6)) == 4
    assert cal.pause_shift(D(2026, 3, 3), D(2026, 3, 5), "A") == 1
    assert not cal.is_working_day(D(2026, 3, 4), "A")
    assert cal.is_working_day(D(2026, 3, 4), "B")


def test_sunday_opened_for_one_centre_only() -> None:
    # Weekend opening: centre A works on Sun 2026-03-08.
    cal = WorkCalendar(overrides={"A": {D(2026, 3, 8): True}})
    assert cal.add_working_days(D(2026, 3, 6), 1, "A") == D(2026, 3, 8)
    assert cal.add_working_days(D(2026, 3, 6), 1, "B") == D(2026, 3, 9)
    assert cal.add_working_days(D(2026, 3, 6), 1) == D(2026, 3, 9)
    assert cal.working_days_between(D(2026, 3, 6), D(2026, 3, 9), "A") == 2
    assert cal.working_days_between(D(2026, 3, 6), D(2026, 3, 9)) == 1


def test_override_beats_official_holiday_and_crosses_years() -> None:
    # Centre A opens on 2026-02-16 (a 春节 day): 12 -> 13 (1), 14 调休 (2), 16 override (3)
    cal = WorkCalendar().with_override("A", D(2026, 2, 16), "working")
    assert cal.add_working_days(D(2026, 2, 12), 3, "A") == D(2026, 2, 16)
    assert cal.add_working_days(D(2026, 2, 12), 3) == D(2026, 2, 24)
    # a long count for A runs through the overridden year and beyond it unchanged
    assert cal.add_working_days(D(2025, 12, 31), 300, "A") == cal.add_working_days(D(2025, 12, 31), 299)


def test_override_helpers_build_new_versions() -> None:
    base = WorkCalendar(version=7)
    closed = base.with_override("A", D(2026, 3, 4), "holiday")
    assert (base.version, closed.version) == (7, 8)
    assert base.add_working_days(D(2026, 3, 3), 1, "A") == D(2026, 3, 4)  # the old snapshot is unchanged
    assert closed.add_working_days(D(2026, 3, 3), 1, "A") == D(2026, 3, 5)
    reopened = closed.without_override("A", D(2026, 3, 4))
    assert reopened.version == 9
    assert reopened.add_working_days(D(2026, 3, 3), 1, "A") == D(2026, 3, 4)
    with pytest.raises(ValueError, match="holiday' or 'working"):
        base.with_override("A", D(2026, 3, 4), "closed")  # type: ignore[arg-type]


def test_snapshot_does_not_follow_later_mutation_of_its_inputs() -> None:
    days = {D(2026, 3, 4): False}
    cal = WorkCalendar(overrides={"A": days})
    assert cal.add_working_days(D(2026, 3, 3), 1, "A") == D(2026, 3, 5)
    days[D(2026, 3, 4)] = True
    days[D(2026, 3, 5)] = False
    assert cal.add_working_days(D(2026, 3, 3), 1, "A") == D(2026, 3, 5)


# -- day_source and fallback years --------------------------------------------------------------------

def test_day_source() -> None:
    data_2027 = parse_year_csv(CSV_2027, 2027)
    cal = WorkCalendar(imported_years={2027: data_2027},
                       overrides={"A": {D(2026, 3, 4): False, D(2027, 2, 8): True}})
    assert cal.day_source(D(2026, 3, 4), "A") == "override"
    assert cal.day_source(D(2026, 3, 4), "B") == "official"
    assert cal.day_source(D(2026, 3, 4)) == "official"
    assert cal.day_source(D(2025, 10, 1)) == "official"
    assert cal.day_source(D(2027, 2, 8)) == "imported"
    assert cal.day_source(D(2027, 2, 8), "A") == "override"
    assert cal.day_source(D(2028, 1, 3)) == "fallback"
    assert cal.add_working_days(D(2027, 2, 5), 1, "A") == D(2027, 2, 8)  # override over imported
    assert cal.add_working_days(D(2027, 2, 5), 1) == D(2027, 2, 14)      # imported 调休 Sunday


def test_official_range_comes_from_the_package() -> None:
    assert 2025 in OFFICIAL_YEARS and 2026 in OFFICIAL_YEARS
    assert WorkCalendar().day_source(D(OFFICIAL_YEARS[-1] + 1, 6, 1)) == "fallback"


def test_imported_year_beats_the_package() -> None:
    # A corrected 2026 import wins over the package: here 2026-03-04 (Wed) becomes a holiday.
    fix = YearData(year=2026, holidays=frozenset({D(2026, 3, 4)}), workdays=frozenset())
    cal = WorkCalendar(imported_years={2026: fix})
    assert cal.day_source(D(2026, 3, 4)) == "imported"
    assert cal.add_working_days(D(2026, 3, 3), 1) == D(2026, 3, 5)


def test_fallback_years_until_import() -> None:
    before = WorkCalendar(version=1)
    assert not before.fallback_years()            # nothing counted yet
    assert before.add_working_days(D(2026, 12, 28), 20) == D(2027, 1, 25)
    assert before.fallback_years() == {2027}
    assert before.is_fallback_year(2027)
    assert not before.is_fallback_year(2026)
    assert before.fallback_years(within=range(2025, 2029)) == {2027, 2028}

    after = before.with_imported_year(parse_year_csv(CSV_2027, 2027))
    assert after.version == 2
    assert after.add_working_days(D(2026, 12, 28), 20) == D(2027, 1, 26)
    assert 2027 not in after.fallback_years()
    assert not after.is_fallback_year(2027)
    assert after.fallback_years(within=range(2025, 2029)) == {2028}
    assert before.fallback_years() == {2027}      # the old snapshot still says so


def test_imported_year_key_must_match() -> None:
    with pytest.raises(ValueError, match="does not match"):
        WorkCalendar(imported_years={2028: parse_year_csv(CSV_2027, 2027)})


# -- import format ------------------------------------------------------------------------------

def test_parse_csv() -> None:
    data = parse_year_csv(CSV_2027, 2027)
    assert data.year == 2027
    assert len(data.holidays) == 11
    assert data.workdays == {D(2027, 2, 14), D(2027, 2, 20)}
    assert data.names[D(2027, 2, 6)] == "春节"
    # two columns and a BOM are accepted too
    plain = parse_year_csv("\ufeffdate,kind\n2027-01-01,holiday\n2027-02-20,working\n", 2027)
    assert plain.holidays == {D(2027, 1, 1)} and plain.workdays == {D(2027, 2, 20)}


def test_parse_json_and_round_trips() -> None:
    data = parse_year_csv(CSV_2027, 2027)
    as_json = year_to_json(data)
    assert as_json["year"] == 2027
    assert as_json["days"][0] == {"date": "2027-01-01", "kind": "holiday", "name": "元旦"}
    assert parse_year_json(json.dumps(as_json, ensure_ascii=False)) == data
    assert parse_year_json(as_json) == data
    assert parse_year_csv(year_to_csv(data), 2027) == data


@pytest.mark.parametrize(("text", "field", "reason"), [
    ("date,kind\n2027-02-30,holiday\n", "row 2: date", "no such date"),
    ("date,kind\n2027/02/06,holiday\n", "row 2: date", "YYYY-MM-DD"),
    ("date,kind\n2027-01-01,holiday\n2026-12-31,holiday\n", "row 3: date", "not in year 2027"),
    ("date,kind\n2027-01-01,holday\n", "row 2: kind", "'holiday' or 'working'"),
    ("date,kind\n2027-01-01,holiday\n2027-02-06,holiday\n2027-01-01,holiday\n", "row 4: date", "duplicate"),
    ("date,kind\n2027-02-05,working\n", "row 2: kind", "weekday"),  # Fri: a mistyped 调休 date
    ("day,type\n2027-01-01,holiday\n", "header", "date,kind"),
    ("date,kind\n2027-01-01\n", "row 2", "columns"),
    ("date,kind\n", "days", "no days"),
])
def test_csv_validation(text: str, field: str, reason: str) -> None:
    with pytest.raises(CalendarImportError) as info:
        parse_year_csv(text, 2027)
    assert info.value.field == field
    assert reason in info.value.reason
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("doc", "field", "reason"), [
    ({"year": 2027, "days": [{"date": "2027-13-01", "kind": "holiday"}]}, "days[0]: date", "no such date"),
    ({"year": 2027, "days": [{"date": "2027-01-01", "kind": "holiday"},
                             {"date": "2028-01-01", "kind": "holiday"}]}, "days[1]: date", "not in year"),
    ({"year": 2027, "days": [{"date": "2027-01-01", "kind": "off"}]}, "days[0]: kind", "'holiday' or 'working'"),
    ({"year": 2027, "days": [{"date": "2027-01-01", "kind": "holiday"},
                             {"date": "2027-01-01", "kind": "holiday"}]}, "days[1]: date", "duplicate"),
    ({"year": "2027", "days": []}, "year", "expected a year"),
    ({"year": 2027, "days": {}}, "days", "list"),
    ({"year": 2027, "days": ["2027-01-01"]}, "days[0]", "object"),
    ("{not json", "json", "not valid JSON"),
])
def test_json_validation(doc: object, field: str, reason: str) -> None:
    with pytest.raises(CalendarImportError) as info:
        parse_year_json(doc if isinstance(doc, str) else json.dumps(doc))
    assert info.value.field == field
    assert reason in info.value.reason


# -- holidays as opposed to plain weekends (the hall schedule closes on the former) ---------------

def test_a_holiday_is_told_from_a_plain_weekend() -> None:
    cal = WorkCalendar(overrides={"A": {D(2026, 3, 7): "holiday", D(2026, 10, 3): "working"}},
                       imported_years={2027: parse_year_csv(CSV_2027, 2027)})
    assert cal.is_holiday(D(2026, 10, 3))  # Saturday inside 国庆节: a holiday, weekend or not
    assert cal.is_holiday(D(2026, 10, 1))  # Thursday, 国庆节
    assert not cal.is_holiday(D(2026, 10, 11))  # a plain Sunday
    assert not cal.is_holiday(D(2026, 10, 10))  # the adjusted working Saturday (调休)
    assert cal.is_holiday(D(2026, 3, 7), "A") and not cal.is_holiday(D(2026, 3, 7))  # A's own day off
    assert not cal.is_holiday(D(2026, 10, 3), "A")  # A opens it
    assert cal.is_holiday(D(2027, 1, 2)) and not cal.is_holiday(D(2027, 1, 9))  # from the imported year
    assert not cal.is_holiday(D(2031, 1, 1))  # a fallback year knows no holiday
