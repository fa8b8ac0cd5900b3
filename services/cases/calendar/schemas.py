"""Request and response models of the calendar endpoints."""

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field


class OverrideIn(BaseModel):
    date: date
    kind: Literal["holiday", "working", "official"] = Field(
        description="holiday / working for this centre; official removes the override")
    reason: str | None = Field(default=None, max_length=200, examples=["台风停工", "周末开放"])


class OverridesIn(BaseModel):
    days: list[OverrideIn] = Field(min_length=1, max_length=366)


class OverrideOut(BaseModel):
    date: date
    kind: Literal["holiday", "working"]
    reason: str | None = None


class OverridesOut(BaseModel):
    center_id: str
    calendar_version: int
    days: list[OverrideOut]


class YearOut(BaseModel):
    year: int
    calendar_version: int
    holidays: int
    working_weekend_days: int


class DeadlineOut(BaseModel):
    from_date: date = Field(serialization_alias="from")
    working_days: int
    center_id: str | None
    due_date: date
    due_at: datetime = Field(description="end (23:59:59) of the due date in Asia/Shanghai, as UTC")
    fallback_years: list[int] = Field(description="years counted on the Monday-Friday fallback")
    calendar_version: int


class DayOut(BaseModel):
    date: date
    working: bool
    source: Literal["override", "imported", "official", "fallback"]


class DaysOut(BaseModel):
    center_id: str | None
    calendar_version: int
    fallback_years: list[int]
    days: list[DayOut]
