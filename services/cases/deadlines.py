"""The legal clock of a case (DOMAIN.md "How the clock counts"), as one pure function over the calendar.

Everything a case's due dates depend on is in `ClockInputs`, so the same function serves acceptance, each
pause and resume, an extension, an expedite and a calendar change, and a recount gives the same answer
from the same inputs:

    shift      = Σ over the finished pauses of the working days d with paused_on < d <= resumed_on
    due date   = the (promised + extension + shift)-th working day after the acceptance date
    legal due  = the (legal + extension + shift)-th working day after it
    warn_at    = 00:00 of the working day W working days before the due date, if that is after acceptance
    stage due  = the (stage limit + the shift of the pauses begun in the stage)-th working day after the
                 stage's start

An open pause adds nothing yet: while the clock is stopped no warning or overdue fires, and the due dates
move once, at the resume, by the working days the pause covered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from shared.calendar.engine import WorkCalendar


@dataclass(frozen=True)
class Pause:
    paused_on: date
    resumed_on: date | None


@dataclass(frozen=True)
class ClockInputs:
    center_id: str
    accepted_on: date
    promised_days: int
    legal_days: int
    warn_days: int
    extension_days: int = 0
    pauses: tuple[Pause, ...] = ()
    stage_started_on: date | None = None
    stage_limit_days: int | None = None


@dataclass(frozen=True)
class Deadlines:
    due_at: datetime
    legal_due_at: datetime
    warn_at: datetime | None
    stage_due_at: datetime | None
    shift_days: int

    def same_as(self, other: Deadlines) -> bool:
        return (self.due_at, self.legal_due_at, self.warn_at, self.stage_due_at) == (
            other.due_at, other.legal_due_at, other.warn_at, other.stage_due_at)


def shift_of(calendar: WorkCalendar, center_id: str, pauses: tuple[Pause, ...], since: date | None = None) -> int:
    """Working days the finished pauses add (those begun on or after `since`, when given)."""
    return sum(calendar.pause_shift(p.paused_on, p.resumed_on, center_id) for p in pauses
               if p.resumed_on is not None and (since is None or p.paused_on >= since))


def compute(calendar: WorkCalendar, c: ClockInputs) -> Deadlines:
    """The case's due dates under `calendar`."""
    shift = shift_of(calendar, c.center_id, c.pauses)
    promised = c.promised_days + c.extension_days + shift
    due_date = calendar.add_working_days(c.accepted_on, promised, c.center_id)
    stage_due = None
    if c.stage_started_on is not None and c.stage_limit_days is not None:
        stage_shift = shift_of(calendar, c.center_id, c.pauses, since=c.stage_started_on)
        stage_due = calendar.due_at(c.stage_started_on, c.stage_limit_days + stage_shift, c.center_id)
    return Deadlines(
        due_at=calendar.due_at(c.accepted_on, promised, c.center_id),
        legal_due_at=calendar.due_at(c.accepted_on, c.legal_days + c.extension_days + shift, c.center_id),
        warn_at=calendar.warning_at(c.accepted_on, due_date, c.warn_days, c.center_id),
        stage_due_at=stage_due,
        shift_days=shift,
    )


def overdue_working_days(calendar: WorkCalendar, center_id: str, due_on: date, done_on: date) -> int:
    """Working days late: the working days d with due date < d <= the completion date (0 if on time)."""
    return calendar.working_days_between(due_on, done_on, center_id)
