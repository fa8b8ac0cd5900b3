"""Which ticket a window calls next (叫号规则): a pure function over a snapshot of the waiting tickets.

DOMAIN.md "Call next: the rule" is the contract the supervision office and the tests hold us to, so it
lives here on its own, without I/O, clock or database: the call-next transaction loads the window and
its candidates, asks `choose_next`, then locks the chosen ticket and stores `Choice.new_streak` in the
window's row in the same transaction. Given the same snapshot and the same `now`, every replica picks the
same ticket; nothing depends on the order the rows came back in (every ordering ends on the ticket id).

For window W at `now`, S⁺ are the services W serves with weight > 0 and S⁰ those with weight 0 (reserve);
the first non-empty tier wins:

1. tickets transferred to W itself, earliest transfer first;
2. tickets transferred to a service in S⁺ ∪ S⁰, earliest transfer first;
3. checked-in appointments for S⁺ whose slot has started, earliest slot, then earliest check-in;
4. green channel (绿色通道) and ordinary tickets for S⁺ under the N:1 rule: a waiting green ticket is
   called while the streak is below N, or when no ordinary ticket waits; otherwise the ordinary head
   with the largest ``wait_seconds × weight`` is called and the streak starts again from 0;
5. only when 1-4 are empty: tiers 3 and 4 over S⁰, every weight taken as 1.

Where DOMAIN.md is silent, the choices made here (and why) are in the docstrings of `Candidate` and
`choose_next`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Literal

TicketKind = Literal["walk_in", "green", "appointment", "transferred"]

_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A waiting ticket the window might call, as the call-next transaction read it.

    A ticket is a transfer when it has a transfer target (`transferred_to_window` or
    `transferred_to_service`), whatever its `kind`: a green ticket sent on keeps being a transfer at
    its target, first in line (DOMAIN.md "serving → transferred"). A ticket sent to a window belongs to
    that window alone, even when other windows serve its service.

    `effective_arrival` is the ticket's place in its line: the issue time, a requeued no-show's new place
    (过号顺延), or an appointment's check-in time. It also orders started appointments of the same slot
    (DOMAIN.md: "then earliest check-in"), so that a requeued appointment really goes behind the others
    of its slot instead of being called again at once; `checked_in_at` is kept for the record.

    Only kind ``"appointment"`` reaches tier 3: a late arrival's walk-in ticket may carry the slot it
    missed, but it waits as a walk-in.
    """

    ticket_id: int
    service_code: str
    kind: TicketKind
    effective_arrival: datetime
    duty_only: bool = False
    transferred_at: datetime | None = None
    transferred_to_window: str | None = None
    transferred_to_service: str | None = None
    slot_start: datetime | None = None
    checked_in_at: datetime | None = None

    def __post_init__(self) -> None:
        # A malformed candidate is a bug in the query that built it; failing here names the ticket,
        # where silently skipping it would leave a citizen waiting for a call that never comes.
        if self.transferred_to_window is not None and self.transferred_to_service is not None:
            raise ValueError(f"ticket {self.ticket_id}: transferred to a window or a service, not both")
        if self.is_transfer and self.transferred_at is None:
            raise ValueError(f"ticket {self.ticket_id}: a transfer needs transferred_at")
        if self.kind == "transferred" and not self.is_transfer:
            raise ValueError(f"ticket {self.ticket_id}: kind 'transferred' needs a transfer target")
        if self.kind == "appointment" and self.slot_start is None:
            raise ValueError(f"ticket {self.ticket_id}: an appointment needs its slot_start")
        for name in ("effective_arrival", "transferred_at", "slot_start", "checked_in_at"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"ticket {self.ticket_id}: {name} must be timezone-aware")

    @property
    def is_transfer(self) -> bool:
        return self.transferred_to_window is not None or self.transferred_to_service is not None


@dataclass(frozen=True, slots=True)
class WindowView:
    """The calling window: its number, the services it serves with their weights, its N:1 streak.

    A weight of 0 marks a reserve service (S⁰): called only when nothing else waits for the window. A
    service missing from `weights` is not served here at all.
    """

    number: str
    weights: Mapping[str, int]
    priority_streak: int
    duty: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", MappingProxyType(dict(self.weights)))
        negative = sorted(code for code, weight in self.weights.items() if weight < 0)
        if negative:
            raise ValueError(f"window {self.number}: negative weights for {negative}")
        if self.priority_streak < 0:
            raise ValueError(f"window {self.number}: priority_streak must be >= 0")


@dataclass(frozen=True, slots=True)
class Choice:
    """The ticket to call, the tier that chose it, and what the window's streak becomes."""

    ticket_id: int
    tier: int
    new_streak: int
    reason: str


@dataclass(slots=True)
class _Pool:
    """What tiers 3 and 4 draw from, for one set of services (S⁺, or S⁰ in tier 5)."""

    started: list[Candidate] = field(default_factory=list)
    green: list[Candidate] = field(default_factory=list)
    heads: dict[str, Candidate] = field(default_factory=dict)  # service -> its ordinary head

    def add_ordinary(self, c: Candidate) -> None:
        head = self.heads.get(c.service_code)
        if head is None or _by_arrival(c) < _by_arrival(head):
            self.heads[c.service_code] = c


def choose_next(window: WindowView, candidates: Iterable[Candidate], now: datetime,
                green_n: int) -> Choice | None:
    """The ticket `window` calls at `now` under DOMAIN.md "Call next: the rule", or None when none is its.

    `green_n` is the centre's N of the N:1 rule. `candidates` may hold every waiting ticket of the centre:
    those that are not this window's are ignored, namely tickets transferred to another window, tickets
    of a service the window does not serve (and transfers to such a service), and, at a window that is
    not a duty window (综合值班窗口), weekend walk-ins marked `duty_only`.

    Decisions where DOMAIN.md is silent:

    - A ticket transferred to this window (tier 1) is called here even when the window does not serve
      its service or it is `duty_only`: a clerk sent it to this window by name, and no other window
      will ever call it, so skipping it would lose it.
    - A wait is never negative: an effective arrival after `now` (a requeued place computed a moment
      ahead, clock skew between replicas) scores 0, so that a large weight cannot turn a future arrival
      into the lowest score of all.
    - Scores are compared exactly, in whole microseconds times the weight, so that a tie is a real tie
      and goes to the earlier arrival, then the lower ticket id, on every machine.
    - When green tickets keep coming and no ordinary one waits, the streak keeps growing past N; the
      next ordinary ticket is then called at once, and the streak starts again from 0.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if green_n < 0:
        raise ValueError("green_n must be >= 0")
    to_window: list[Candidate] = []
    to_service: list[Candidate] = []
    served, reserve = _Pool(), _Pool()
    for c in candidates:
        if c.transferred_to_window is not None:
            if c.transferred_to_window == window.number:
                to_window.append(c)
            continue
        if c.duty_only and not window.duty:
            continue
        if c.transferred_to_service is not None:
            if c.transferred_to_service in window.weights:
                to_service.append(c)
            continue
        weight = window.weights.get(c.service_code)
        if weight is None:
            continue
        pool = served if weight > 0 else reserve
        if c.kind == "green":
            pool.green.append(c)
        elif c.kind == "appointment" and c.slot_start is not None and c.slot_start <= now:
            pool.started.append(c)
        else:
            # walk-ins, and appointments checked in before their slot: ordinary, at their check-in time
            pool.add_ordinary(c)

    streak = window.priority_streak
    if to_window:
        c = min(to_window, key=_by_transfer)
        return Choice(c.ticket_id, 1, streak,
                      f"tier 1 transferred to window {window.number}: earliest transfer {_iso(c.transferred_at)}")
    if to_service:
        c = min(to_service, key=_by_transfer)
        return Choice(c.ticket_id, 2, streak,
                      f"tier 2 transferred to service {c.transferred_to_service}: "
                      f"earliest transfer {_iso(c.transferred_at)}")
    choice = _from_pool(served, window.weights, streak, green_n, now, reserve=False)
    if choice is not None:
        return choice
    return _from_pool(reserve, None, streak, green_n, now, reserve=True)


def _from_pool(pool: _Pool, weights: Mapping[str, int] | None, streak: int, green_n: int, now: datetime,
               *, reserve: bool) -> Choice | None:
    """Tiers 3 then 4 over one pool; in tier 5 (`reserve`, `weights` None) every weight counts as 1."""
    if pool.started:
        c = min(pool.started, key=_by_slot)
        label = "tier 5 reserve appointment" if reserve else "tier 3 appointment"
        return Choice(c.ticket_id, 5 if reserve else 3, streak,
                      f"{label}: slot {_iso(c.slot_start)} started, earliest slot then check-in")
    tier, label = (5, "tier 5 reserve") if reserve else (4, "tier 4")
    if pool.green and (streak < green_n or not pool.heads):
        c = min(pool.green, key=_by_arrival)
        why = f"streak {streak} < N={green_n}" if streak < green_n else "no ordinary ticket waits"
        return Choice(c.ticket_id, tier, streak + 1, f"{label} green: {why}, earliest green arrival")
    if not pool.heads:
        return None

    def score(head: Candidate) -> int:
        weight = 1 if weights is None else weights[head.service_code]
        return _wait_us(head, now) * weight

    c = min(pool.heads.values(), key=lambda head: (-score(head), *_by_arrival(head)))
    weight = 1 if weights is None else weights[c.service_code]
    capped = f" (streak {streak} reached N={green_n})" if pool.green else ""
    return Choice(c.ticket_id, tier, 0,
                  f"{label} ordinary{capped}: {c.service_code} head waited "
                  f"{_wait_us(c, now) // 1_000_000} s x weight {weight}")


class Ranking:
    """One window's eligible candidates, grouped so that choosing again after a ticket was taken elsewhere
    costs as many steps as there are groups, not tickets.

    Every tier takes the minimum of one ordering over one kind of ticket (transfers by transfer time,
    started appointments by slot, green and ordinary tickets by arrival), so `choose_next` over the head
    of each group (kind × service, or transfer target) gives what it gives over all of them. The
    call-next transaction builds one from its snapshot, and `drop`s a choice another window holds."""

    def __init__(self, window: WindowView, candidates: Iterable[Candidate], now: datetime) -> None:
        self.window, self.now = window, now
        groups: dict[tuple[str, str], list[Candidate]] = {}
        for c in candidates:
            key = _group(window, c, now)
            if key is not None:
                groups.setdefault(key, []).append(c)
        self._groups = {key: deque(sorted(members, key=_GROUP_ORDER[key[0]])) for key, members in groups.items()}
        self._group_of = {c.ticket_id: key for key, members in self._groups.items() for c in members}

    def choose(self, green_n: int) -> Choice | None:
        return choose_next(self.window, [members[0] for members in self._groups.values() if members], self.now,
                           green_n)

    def drop(self, ticket_id: int) -> None:
        """The choice is not to be had (another window is taking it): the next of its group moves up."""
        members = self._groups[self._group_of.pop(ticket_id)]
        members.remove(next(c for c in members if c.ticket_id == ticket_id))


def _group(window: WindowView, c: Candidate, now: datetime) -> tuple[str, str] | None:
    """The group of a candidate at this window, as `choose_next` sorts it; None when it is not this
    window's (the same filters, in the same order, as `choose_next`)."""
    if c.transferred_to_window is not None:
        return ("to_window", "") if c.transferred_to_window == window.number else None
    if c.duty_only and not window.duty:
        return None
    if c.transferred_to_service is not None:
        return ("to_service", "") if c.transferred_to_service in window.weights else None
    if c.service_code not in window.weights:
        return None
    if c.kind == "green":
        return "green", c.service_code
    if c.kind == "appointment" and c.slot_start is not None and c.slot_start <= now:
        return "started", c.service_code
    return "ordinary", c.service_code


def people_ahead(ticket: Candidate, candidates: Iterable[Candidate], now: datetime) -> int:
    """How many waiting tickets call-next would take before `ticket` if nothing else arrived (估计等待).

    DOMAIN.md "Estimated wait at issue": tickets of the same line, in the order call-next takes them
    within one service: transfers to the service (earliest transfer first), then its started
    appointments (earliest slot, then check-in), then earlier arrivals. Green tickets count ahead of
    ordinary ones, since call-next takes them first; the N:1 cap, weights and other services are left
    out, which is what a per-service estimate can honestly say (the caller divides by the windows
    serving the service). A ticket's line is the service it waits for: the transfer target if it was
    transferred to a service, else its own; a ticket transferred to a window waits only behind earlier
    transfers to that window. `ticket` itself may be among `candidates`; it is not counted.
    """
    line, place = _line(ticket), _line_place(ticket, now)
    return sum(1 for c in candidates
               if c.ticket_id != ticket.ticket_id and _line(c) == line and _line_place(c, now) < place)


def line_of(c: Candidate) -> tuple[str, str]:
    """The line a ticket waits in: ("window", number) when transferred to a window, else ("service", code)."""
    return _line(c)


def first_in_line(line: tuple[str, str], candidates: Iterable[Candidate], now: datetime,
                  n: int) -> list[Candidate]:
    """The first `n` tickets of a line in the order `people_ahead` counts them: the i-th has i people ahead."""
    return sorted((c for c in candidates if _line(c) == line), key=lambda c: _line_place(c, now))[:n]


def _line(c: Candidate) -> tuple[str, str]:
    if c.transferred_to_window is not None:
        return ("window", c.transferred_to_window)
    return ("service", c.transferred_to_service or c.service_code)


def _line_place(c: Candidate, now: datetime) -> tuple[int, datetime, datetime, int]:
    if c.is_transfer:
        assert c.transferred_at is not None  # Candidate.__post_init__ holds every transfer to it
        return (0, c.transferred_at, c.transferred_at, c.ticket_id)
    if c.kind == "appointment" and c.slot_start is not None and c.slot_start <= now:
        return (1, c.slot_start, c.effective_arrival, c.ticket_id)
    return (2 if c.kind == "green" else 3, c.effective_arrival, c.effective_arrival, c.ticket_id)


def _by_transfer(c: Candidate) -> tuple[datetime, int]:
    assert c.transferred_at is not None
    return (c.transferred_at, c.ticket_id)


def _by_slot(c: Candidate) -> tuple[datetime, datetime, int]:
    assert c.slot_start is not None
    return (c.slot_start, c.effective_arrival, c.ticket_id)


def _by_arrival(c: Candidate) -> tuple[datetime, int]:
    return (c.effective_arrival, c.ticket_id)


def _wait_us(c: Candidate, now: datetime) -> int:
    return max(0, (now - c.effective_arrival) // _MICROSECOND)


def _iso(at: datetime | None) -> str:
    return "-" if at is None else at.isoformat(timespec="seconds")


_GROUP_ORDER: dict[str, Callable[[Candidate], tuple[object, ...]]] = {
    "to_window": _by_transfer, "to_service": _by_transfer, "started": _by_slot, "green": _by_arrival,
    "ordinary": _by_arrival,
}
