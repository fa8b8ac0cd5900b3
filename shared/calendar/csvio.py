"""Reading and writing a year's official schedule for import (CSV or JSON), e.g. 2027 once it is published.

Why a strict format: an imported year replaces the Monday-Friday fallback for every deadline in every
centre, so a typo (a wrong day, a "holday") must be refused with the row and field named, not counted.

Only the exceptions to Monday-Friday are listed: ``holiday`` for days off (weekday or weekend, e.g. the
whole 春节 span) and ``working`` for adjusted weekend working days (调休上班).

CSV (header required, ``name`` optional)::

    date,kind,name
    2027-01-01,holiday,元旦
    2027-02-06,holiday,春节

JSON::

    {"year": 2027, "days": [{"date": "2027-02-06", "kind": "holiday", "name": "春节"}, ...]}
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from shared.calendar.engine import YearData

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_KINDS = ("holiday", "working")
_NAME_MAX = 64


class CalendarImportError(ValueError):
    """A year import was refused; ``field`` names the row and field (e.g. ``row 3: date``)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _parse_date(raw: Any, field: str, year: int) -> date:
    if not isinstance(raw, str) or not _DATE_RE.fullmatch(raw.strip()):
        raise CalendarImportError(field, f"expected a date as YYYY-MM-DD, got {raw!r}")
    try:
        d = date.fromisoformat(raw.strip())
    except ValueError:
        raise CalendarImportError(field, f"no such date {raw.strip()!r}") from None
    if d.year != year:
        raise CalendarImportError(field, f"{d.isoformat()} is not in year {year}")
    return d


def _parse_kind(raw: Any, field: str) -> str:
    kind = raw.strip().lower() if isinstance(raw, str) else raw
    if kind not in _KINDS:
        raise CalendarImportError(field, f"kind must be 'holiday' or 'working', got {raw!r}")
    return kind


def _parse_name(raw: Any, field: str) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise CalendarImportError(field, f"name must be text, got {raw!r}")
    name = raw.strip()
    if len(name) > _NAME_MAX:
        raise CalendarImportError(field, f"name longer than {_NAME_MAX} characters")
    return name


def _collect(year: int, rows: Iterable[tuple[str, Any, Any, Any]]) -> YearData:
    """Validate rows of (label, date, kind, name) into a YearData; ``label`` prefixes error fields."""
    holidays: set[date] = set()
    workdays: set[date] = set()
    names: dict[date, str] = {}
    seen: dict[date, str] = {}
    for label, raw_date, raw_kind, raw_name in rows:
        d = _parse_date(raw_date, f"{label}: date", year)
        kind = _parse_kind(raw_kind, f"{label}: kind")
        name = _parse_name(raw_name, f"{label}: name")
        if d in seen:
            raise CalendarImportError(f"{label}: date", f"duplicate date {d.isoformat()} (first at {seen[d]})")
        seen[d] = label
        if kind == "working":
            if d.weekday() < 5:
                # Mon-Fri already work; a "working" weekday is almost always a mistyped 调休 date.
                raise CalendarImportError(
                    f"{label}: kind", f"{d.isoformat()} is a weekday; only weekend days can be adjusted working days"
                )
            workdays.add(d)
        else:
            holidays.add(d)
        if name:
            names[d] = name
    if not seen:
        raise CalendarImportError("days", f"no days listed for {year}; an official schedule has holidays")
    return YearData(year=year, holidays=frozenset(holidays), workdays=frozenset(workdays), names=names)


def _check_year(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 9998:
        raise CalendarImportError("year", f"expected a year such as 2027, got {raw!r}")
    return raw


def parse_year_csv(text: str, year: int) -> YearData:
    """Parse the CSV form for ``year`` (header ``date,kind`` or ``date,kind,name``; blank lines skipped)."""
    year = _check_year(year)
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(reader, None)
    columns = [c.strip().lower() for c in header] if header else []
    if columns not in (["date", "kind"], ["date", "kind", "name"]):
        raise CalendarImportError("header", f"expected 'date,kind' or 'date,kind,name', got {header!r}")

    def rows() -> Iterable[tuple[str, Any, Any, Any]]:
        for line_no, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            label = f"row {line_no}"
            if len(row) != len(columns):
                raise CalendarImportError(label, f"expected {len(columns)} columns, got {len(row)}")
            yield label, row[0], row[1], row[2] if len(row) > 2 else None

    return _collect(year, rows())


def parse_year_json(data: str | bytes | Mapping[str, Any]) -> YearData:
    """Parse the JSON form ``{"year": 2027, "days": [{"date", "kind", "name"?}, ...]}`` (text or decoded)."""
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise CalendarImportError("json", f"not valid JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise CalendarImportError("json", "expected an object with 'year' and 'days'")
    year = _check_year(data.get("year"))
    days = data.get("days")
    if not isinstance(days, list):
        raise CalendarImportError("days", "expected a list of {date, kind, name}")

    def rows() -> Iterable[tuple[str, Any, Any, Any]]:
        for i, item in enumerate(days):
            label = f"days[{i}]"
            if not isinstance(item, Mapping):
                raise CalendarImportError(label, "expected an object with 'date' and 'kind'")
            yield label, item.get("date"), item.get("kind"), item.get("name")

    return _collect(year, rows())


def _sorted_days(data: YearData) -> list[tuple[date, str, str]]:
    days = [(d, "holiday") for d in data.holidays] + [(d, "working") for d in data.workdays]
    return [(d, kind, data.names.get(d, "")) for d, kind in sorted(days)]


def year_to_csv(data: YearData) -> str:
    """The CSV form of ``data`` (always with the ``name`` column), sorted by date."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["date", "kind", "name"])
    for d, kind, name in _sorted_days(data):
        writer.writerow([d.isoformat(), kind, name])
    return out.getvalue()


def year_to_json(data: YearData) -> dict[str, Any]:
    """The JSON form of ``data`` (a dict ready for ``json.dumps``), sorted by date."""
    days: list[dict[str, str]] = []
    for d, kind, name in _sorted_days(data):
        item = {"date": d.isoformat(), "kind": kind}
        if name:
            item["name"] = name
        days.append(item)
    return {"year": data.year, "days": days}
