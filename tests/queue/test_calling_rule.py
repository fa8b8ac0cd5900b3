"""The call-next rule (叫号规则) on its own: DOMAIN.md "Call next: the rule", tier by tier, tie-break by
tie-break, the N:1 rule, and a scripted hall day, over the pure `choose_next` (no database, no clock).

Every test names the tier or rule it holds in its docstring; the properties at the end hold the whole
function to what no example can cover alone: input order never matters, and the choice is always a ticket
the window may call, from the first tier that has one.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.queue.calling import (
    Candidate,
    Choice,
    Ranking,
    TicketKind,
    WindowView,
    choose_next,
    people_ahead,
)

# Monday 2 March 2026, 09:00 in Shanghai: the hall opens
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
N = 3  # the centre default of the N:1 rule


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def walk_in(ticket_id: int, service: str = "A", arrived: float = 0, *, duty_only: bool = False) -> Candidate:
    return Candidate(ticket_id, service, "walk_in", at(arrived), duty_only=duty_only)


def green(ticket_id: int, service: str = "A", arrived: float = 0) -> Candidate:
    return Candidate(ticket_id, service, "green", at(arrived))


def appointment(ticket_id: int, service: str = "A", *, slot: float, checked_in: float) -> Candidate:
    return Candidate(ticket_id, service, "appointment", at(checked_in), slot_start=at(slot),
                     checked_in_at=at(checked_in))


def to_window(ticket_id: int, window: str, *, transferred: float, service: str = "A",
              arrived: float = 0) -> Candidate:
    return Candidate(ticket_id, service, "transferred", at(arrived), transferred_at=at(transferred),
                     transferred_to_window=window)


def to_service(ticket_id: int, target: str, *, transferred: float, service: str = "A",
               arrived: float = 0) -> Candidate:
    return Candidate(ticket_id, service, "transferred", at(arrived), transferred_at=at(transferred),
                     transferred_to_service=target)


def window(weights: dict[str, int] | None = None, *, streak: int = 0, duty: bool = False,
           number: str = "3") -> WindowView:
    return WindowView(number, {"A": 1} if weights is None else weights, streak, duty)


def call(w: WindowView, candidates: list[Candidate], now: float = 30, green_n: int = N) -> Choice | None:
    return choose_next(w, candidates, at(now), green_n)


def called(w: WindowView, candidates: list[Candidate], now: float = 30, green_n: int = N) -> tuple[int, int]:
    choice = call(w, candidates, now, green_n)
    assert choice is not None
    return choice.ticket_id, choice.tier


# --- tier 1: transferred to this window ---------------------------------------------------------------


def test_tier1_transfer_to_this_window_goes_before_every_other_tier() -> None:
    """Tier 1 beats tier 2 (transfer to a service), tier 3 (started appointment) and tier 4 (green, old walk-in)."""
    w = window({"A": 1}, streak=1)
    candidates = [walk_in(1, arrived=0), green(2, arrived=1), appointment(3, slot=10, checked_in=5),
                  to_service(4, "A", transferred=2), to_window(5, "3", transferred=20, service="A")]
    choice = call(w, candidates)
    assert choice is not None
    assert (choice.ticket_id, choice.tier) == (5, 1)
    assert choice.new_streak == 1, "tiers 1-3 leave the streak unchanged"


def test_tier1_earliest_transfer_first_then_lower_id() -> None:
    """Tier 1 order: earliest transfer, and at the same instant the lower ticket id."""
    w = window()
    assert called(w, [to_window(7, "3", transferred=12), to_window(8, "3", transferred=11)]) == (8, 1)
    assert called(w, [to_window(9, "3", transferred=11), to_window(8, "3", transferred=11)]) == (8, 1)


def test_tier1_calls_a_transfer_to_this_window_whatever_its_service_and_duty_flag() -> None:
    """Tier 1: a ticket sent to this window by name is called here even if the window does not serve its
    service or it is duty-only (no other window would ever call it)."""
    w = window({"A": 1}, duty=False)
    t = Candidate(1, "Z", "transferred", at(0), duty_only=True, transferred_at=at(5), transferred_to_window="3")
    assert called(w, [t]) == (1, 1)


def test_a_transfer_to_another_window_is_ignored() -> None:
    """Transfers to another window are that window's: ignored here, even for a service this window serves."""
    w = window({"A": 1})
    assert call(w, [to_window(1, "4", transferred=5, service="A")]) is None
    assert called(w, [to_window(1, "4", transferred=5), walk_in(2, arrived=20)]) == (2, 4)


def test_a_green_ticket_transferred_on_is_a_transfer_not_a_green_ticket() -> None:
    """Transfer targets decide tiers 1-2 whatever the kind: a green ticket sent to window 4 is not
    window 3's green ticket."""
    w = window({"A": 1})
    sent = Candidate(1, "A", "green", at(0), transferred_at=at(5), transferred_to_window="4")
    assert call(w, [sent]) is None
    assert called(window({"A": 1}, number="4"), [sent]) == (1, 1)


# --- tier 2: transferred to a service of this window ---------------------------------------------------


def test_tier2_transfer_to_a_served_service_goes_before_appointments_and_green() -> None:
    """Tier 2 beats tier 3 and tier 4, and leaves the streak unchanged."""
    w = window({"A": 1, "B": 2}, streak=2)
    candidates = [appointment(1, "A", slot=10, checked_in=5), green(2, "B", arrived=0),
                  to_service(3, "B", transferred=25, service="A")]
    choice = call(w, candidates)
    assert choice is not None
    assert (choice.ticket_id, choice.tier, choice.new_streak) == (3, 2, 2)


def test_tier2_includes_reserve_services() -> None:
    """Tier 2 is over S⁺ ∪ S⁰: a transfer to a weight-0 service goes before S⁺'s own tickets."""
    w = window({"A": 1, "C": 0})
    assert called(w, [walk_in(1, "A", arrived=0), to_service(2, "C", transferred=20, service="B")]) == (2, 2)


def test_tier2_earliest_transfer_first_then_lower_id() -> None:
    """Tier 2 order: earliest transfer, then the lower ticket id; the original arrival does not count."""
    w = window({"A": 1, "B": 1})
    assert called(w, [to_service(5, "A", transferred=12, arrived=0),
                      to_service(6, "B", transferred=11, arrived=9)]) == (6, 2)
    assert called(w, [to_service(6, "A", transferred=11), to_service(5, "B", transferred=11)]) == (5, 2)


def test_tier2_transfer_to_a_service_not_served_here_is_ignored() -> None:
    """A transfer targets its service: a window that does not serve that service ignores it, even when it
    serves the ticket's original service."""
    w = window({"A": 1})
    assert call(w, [to_service(1, "B", transferred=5, service="A")]) is None


# --- tier 3: checked-in appointments whose slot has started -------------------------------------------


def test_tier3_started_appointment_goes_before_green_and_older_walk_ins() -> None:
    """Tier 3 beats tier 4 (green and a walk-in who came much earlier), and leaves the streak unchanged."""
    w = window({"A": 1}, streak=1)
    choice = call(w, [walk_in(1, arrived=0), green(2, arrived=1), appointment(3, slot=30, checked_in=29)])
    assert choice is not None
    assert (choice.ticket_id, choice.tier, choice.new_streak) == (3, 3, 1)


def test_tier3_a_slot_starting_now_has_started() -> None:
    """Tier 3 takes slot_start ≤ now: at the slot's first instant the appointment is due."""
    assert called(window(), [walk_in(1, arrived=0), appointment(2, slot=30, checked_in=10)], now=30) == (2, 3)


def test_tier3_earliest_slot_first() -> None:
    """Tier 3 order: the earliest slot first, even if its holder checked in later."""
    assert called(window(), [appointment(1, slot=20, checked_in=0),
                             appointment(2, slot=10, checked_in=15)]) == (2, 3)


def test_tier3_same_slot_earliest_check_in_then_lower_id() -> None:
    """Tier 3 order inside one slot: the earliest check-in, then the lower ticket id."""
    assert called(window(), [appointment(4, slot=10, checked_in=8), appointment(5, slot=10, checked_in=6)]) == (5, 3)
    assert called(window(), [appointment(5, slot=10, checked_in=6), appointment(4, slot=10, checked_in=6)]) == (4, 3)


def test_tier3_only_for_services_with_weight() -> None:
    """Tier 3 is over S⁺: a reserve service's started appointment waits for tier 5, behind a plain walk-in."""
    w = window({"A": 1, "C": 0})
    assert called(w, [appointment(1, "C", slot=10, checked_in=5), walk_in(2, "A", arrived=25)]) == (2, 4)


def test_an_appointment_checked_in_before_its_slot_is_ordinary_at_its_check_in_time() -> None:
    """Tier 4: before its slot an appointment is an ordinary ticket whose arrival is its check-in time, so
    it goes after a walk-in who came earlier and before one who came later; it resets the streak."""
    w = window({"A": 1}, streak=2)
    early = appointment(2, slot=60, checked_in=10)
    assert called(w, [walk_in(1, arrived=5), early]) == (1, 4)
    choice = call(w, [walk_in(3, arrived=15), early])
    assert choice is not None
    assert (choice.ticket_id, choice.tier, choice.new_streak) == (2, 4, 0)


def test_a_late_arrival_walk_in_carrying_its_missed_slot_stays_ordinary() -> None:
    """Tier 3 is for kind appointment only: a late arrival's walk-in ticket (past +20 min) waits in line."""
    late = Candidate(2, "A", "walk_in", at(25), slot_start=at(0))
    assert called(window(), [walk_in(1, arrived=20), late]) == (1, 4)


# --- tier 4: green channel and ordinary tickets, the N:1 rule ------------------------------------------


def test_n1_green_goes_before_an_older_ordinary_ticket_while_streak_below_n() -> None:
    """N:1 rule: streak < N and a green ticket waits, so it is called before a walk-in who came earlier;
    the streak goes up by one."""
    for streak in range(N):
        choice = call(window(streak=streak), [walk_in(1, arrived=0), green(2, arrived=20)])
        assert choice is not None
        assert (choice.ticket_id, choice.tier, choice.new_streak) == (2, 4, streak + 1)


def test_n1_ordinary_ticket_once_streak_reaches_n() -> None:
    """N:1 rule: at streak N an ordinary ticket is called although a green one waits; the streak resets to 0."""
    choice = call(window(streak=N), [walk_in(1, arrived=20), green(2, arrived=0)])
    assert choice is not None
    assert (choice.ticket_id, choice.tier, choice.new_streak) == (1, 4, 0)
    assert "reached N=3" in choice.reason


def test_n1_green_past_n_when_no_ordinary_ticket_waits() -> None:
    """N:1 rule: "or no ordinary ticket waits": at streak ≥ N the green ticket is still called, streak + 1."""
    choice = call(window(streak=N + 2), [green(2, arrived=0)])
    assert choice is not None
    assert (choice.ticket_id, choice.tier, choice.new_streak) == (2, 4, N + 3)


def test_n1_ordinary_call_with_no_green_waiting_sets_streak_to_zero() -> None:
    """N:1 rule: any ordinary call sets the streak to 0, also when no green ticket was waiting."""
    choice = call(window(streak=2), [walk_in(1)])
    assert choice is not None and choice.new_streak == 0


def test_n1_with_n_zero_green_never_jumps_the_line() -> None:
    """N:1 rule with N = 0: streak < 0 never holds, so green is called only when no ordinary ticket waits."""
    assert called(window(), [walk_in(1, arrived=20), green(2, arrived=0)], green_n=0) == (1, 4)
    assert called(window(), [green(2, arrived=0)], green_n=0) == (2, 4)


def test_n1_ordinary_waiting_only_in_a_reserve_service_does_not_cap_green() -> None:
    """N:1 rule: "waits" means for a service of the tier's set: an ordinary reserve ticket is not an
    ordinary ticket of tier 4, so at streak N the S⁺ green ticket is still called (tier 4 is not empty)."""
    w = window({"A": 1, "C": 0}, streak=N)
    choice = call(w, [green(1, "A", arrived=20), walk_in(2, "C", arrived=0)])
    assert choice is not None
    assert (choice.ticket_id, choice.tier, choice.new_streak) == (1, 4, N + 1)


def test_green_earliest_effective_arrival_then_lower_id() -> None:
    """Tier 4 green choice: the earliest effective arrival across the window's services, then the lower id."""
    w = window({"A": 1, "B": 5})
    assert called(w, [green(1, "B", arrived=10), green(2, "A", arrived=5)]) == (2, 4)
    assert called(w, [green(3, "B", arrived=5), green(2, "A", arrived=5)]) == (2, 4)


@given(green_n=st.integers(0, 5), streak=st.integers(0, 5), calls=st.integers(1, 40))
def test_n1_with_green_arriving_steadily_ordinary_is_called_after_at_most_n_greens(
        green_n: int, streak: int, calls: int) -> None:
    """N:1 rule, simulated: a new green ticket before every call and ordinary tickets always waiting; each
    call applies new_streak. No run of green calls is longer than N, and once the streak is below N the
    calls go N greens, one ordinary, over and over."""
    w = window(streak=min(streak, green_n))
    waiting = [walk_in(i, arrived=-100 + i) for i in range(1, calls + 1)]
    run, order = 0, []
    for step in range(calls):
        before = w.priority_streak
        waiting.append(green(1000 + step, arrived=step))
        choice = choose_next(w, waiting, at(60), green_n)
        assert choice is not None
        kind = next(c.kind for c in waiting if c.ticket_id == choice.ticket_id)
        waiting = [c for c in waiting if c.ticket_id != choice.ticket_id]
        w = replace(w, priority_streak=choice.new_streak)
        run = run + 1 if kind == "green" else 0
        assert run <= green_n
        assert choice.new_streak == (before + 1 if kind == "green" else 0)
        order.append("g" if kind == "green" else "o")
    first_ordinary = order.index("o") if "o" in order else len(order)
    assert first_ordinary <= green_n - min(streak, green_n)
    after = "".join(order[first_ordinary:])
    assert after == (("o" + "g" * green_n) * calls)[: len(after)]


# --- tier 4: the ordinary choice, wait × weight ---------------------------------------------------------


def test_weight_two_head_that_waited_100s_beats_weight_one_head_that_waited_150s() -> None:
    """Ordinary choice: the largest wait_seconds × weight: 100 s × 2 = 200 beats 150 s × 1 = 150."""
    w = window({"A": 2, "B": 1})
    now = 10.0
    choice = call(w, [walk_in(1, "B", arrived=now - 2.5), walk_in(2, "A", arrived=now - 100 / 60)], now=now)
    assert choice is not None
    assert (choice.ticket_id, choice.tier) == (2, 4)
    assert choice.reason == "tier 4 ordinary: A head waited 100 s x weight 2"


def test_weight_does_not_win_against_a_long_enough_wait() -> None:
    """Ordinary choice: 70 s × 2 = 140 loses to 150 s × 1 = 150."""
    w = window({"A": 2, "B": 1})
    now = 10.0
    assert called(w, [walk_in(1, "B", arrived=now - 2.5), walk_in(2, "A", arrived=now - 70 / 60)], now=now) == (1, 4)


def test_each_service_competes_with_its_head_only() -> None:
    """Ordinary choice: a service's head is its earliest effective arrival; later tickets of that service
    never overtake it, and only heads are compared."""
    w = window({"A": 1, "B": 1})
    assert called(w, [walk_in(3, "A", arrived=2), walk_in(1, "A", arrived=1), walk_in(2, "B", arrived=5)]) == (1, 4)


def test_ordinary_equal_scores_go_to_the_earlier_arrival() -> None:
    """Ordinary tie-break: equal wait × weight (100 s × 2 = 200 s × 1) goes to the earlier arrival."""
    w = window({"A": 2, "B": 1})
    now = 10.0
    assert called(w, [walk_in(1, "A", arrived=now - 100 / 60), walk_in(2, "B", arrived=now - 200 / 60)],
                  now=now) == (2, 4)


def test_ordinary_equal_scores_and_arrivals_go_to_the_lower_id() -> None:
    """Ordinary tie-break, last: same score and same arrival, the lower ticket id."""
    w = window({"A": 1, "B": 1})
    assert called(w, [walk_in(9, "A", arrived=3), walk_in(4, "B", arrived=3)]) == (4, 4)


def test_a_wait_is_never_negative() -> None:
    """Ordinary choice: an arrival after now scores 0, not a negative wait that a large weight makes
    the lowest; with both at 0 the earlier arrival wins."""
    w = window({"A": 3, "B": 1})
    assert called(w, [walk_in(1, "A", arrived=30 + 10 / 60), walk_in(2, "B", arrived=30 + 20 / 60)]) == (1, 4)


# --- tier 5: reserve services ----------------------------------------------------------------------------


def test_reserve_service_waits_while_anything_else_waits() -> None:
    """Tier 5: a reserve (weight 0) ticket that waited an hour stays behind a walk-in of S⁺ who just came."""
    w = window({"A": 1, "C": 0})
    assert called(w, [walk_in(1, "C", arrived=-30), walk_in(2, "A", arrived=29)]) == (2, 4)


def test_reserve_service_is_called_when_tiers_1_to_4_are_empty() -> None:
    """Tier 5: with nothing for S⁺, the reserve service's head is called, tier 5, streak reset."""
    w = window({"A": 1, "C": 0}, streak=2)
    choice = call(w, [walk_in(1, "C", arrived=5)])
    assert choice is not None
    assert (choice.ticket_id, choice.tier, choice.new_streak) == (1, 5, 0)
    assert choice.reason == "tier 5 reserve ordinary: C head waited 1500 s x weight 1"


def test_reserve_weights_are_taken_as_one() -> None:
    """Tier 5: reserve heads compete on their wait alone (weight 1 each): the longer wait wins."""
    w = window({"C": 0, "D": 0})
    assert called(w, [walk_in(1, "C", arrived=20), walk_in(2, "D", arrived=10)]) == (2, 5)


def test_reserve_started_appointment_before_reserve_green_and_ordinary() -> None:
    """Tier 5 is tiers 3-4 over S⁰: a started reserve appointment first, streak unchanged."""
    w = window({"C": 0}, streak=1)
    choice = call(w, [walk_in(1, "C", arrived=0), green(2, "C", arrived=1), appointment(3, "C", slot=20, checked_in=15)])
    assert choice is not None
    assert (choice.ticket_id, choice.tier, choice.new_streak) == (3, 5, 1)


def test_reserve_n1_rule_and_streak_apply() -> None:
    """Tier 5 applies the N:1 rule: green while streak < N (streak + 1), ordinary at streak N (streak 0)."""
    candidates = [walk_in(1, "C", arrived=0), green(2, "C", arrived=10)]
    below = call(window({"C": 0}, streak=N - 1), candidates)
    at_n = call(window({"C": 0}, streak=N), candidates)
    assert below is not None and (below.ticket_id, below.tier, below.new_streak) == (2, 5, N)
    assert at_n is not None and (at_n.ticket_id, at_n.tier, at_n.new_streak) == (1, 5, 0)


# --- who the window may call at all --------------------------------------------------------------------


def test_duty_only_walk_in_is_ignored_by_a_non_duty_window() -> None:
    """Duty-only (weekend appointment-first mode): only duty windows (综合值班窗口) call such a walk-in."""
    weekend_walk_in = walk_in(1, "A", arrived=0, duty_only=True)
    assert call(window({"A": 1}, duty=False), [weekend_walk_in]) is None
    assert called(window({"A": 1}, duty=True), [weekend_walk_in]) == (1, 4)


def test_duty_only_walk_in_does_not_hide_the_next_ticket() -> None:
    """Duty-only: a non-duty window skips over it to the next ticket of the line."""
    assert called(window({"A": 1}), [walk_in(1, arrived=0, duty_only=True), walk_in(2, arrived=5)]) == (2, 4)


def test_a_service_the_window_does_not_serve_is_ignored() -> None:
    """Services absent from the window's weights are not served: None when only they wait."""
    w = window({"A": 1})
    assert call(w, [walk_in(1, "B"), green(2, "B"), appointment(3, "B", slot=0, checked_in=0)]) is None


def test_nothing_waiting_is_none() -> None:
    """None iff nothing is eligible: the empty snapshot."""
    assert call(window(), []) is None


def test_malformed_candidates_and_arguments_are_refused() -> None:
    """Bad input fails loudly: a transfer without a target or instant, two targets, an appointment
    without a slot, a naive datetime, a negative weight, a negative N."""
    with pytest.raises(ValueError):
        Candidate(1, "A", "transferred", at(0))
    with pytest.raises(ValueError):
        Candidate(1, "A", "walk_in", at(0), transferred_to_window="3")
    with pytest.raises(ValueError):
        Candidate(1, "A", "transferred", at(0), transferred_at=at(1), transferred_to_window="3",
                  transferred_to_service="B")
    with pytest.raises(ValueError):
        Candidate(1, "A", "appointment", at(0))
    with pytest.raises(ValueError):
        Candidate(1, "A", "walk_in", datetime(2026, 3, 2, 9, 0))
    with pytest.raises(ValueError):
        WindowView("3", {"A": -1}, 0)
    with pytest.raises(ValueError):
        choose_next(window(), [], at(0), -1)
    with pytest.raises(ValueError):
        choose_next(window(), [], datetime(2026, 3, 2, 9, 0), N)


# --- people ahead (estimated wait at issue) --------------------------------------------------------------


def test_people_ahead_counts_transfers_and_started_appointments_then_earlier_arrivals() -> None:
    """Estimated wait: transfers to the service and its started appointments are ahead of everyone; then
    earlier arrivals; later arrivals and other services are not; the ticket itself is not counted."""
    mine = walk_in(10, "A", arrived=20)
    others = [
        to_service(1, "A", transferred=25, service="B"),  # ahead: transferred to A, first in line
        appointment(2, "A", slot=15, checked_in=21),      # ahead: its slot has started
        appointment(3, "A", slot=60, checked_in=19),      # ahead: checked in before its slot, earlier arrival
        walk_in(4, "A", arrived=10),                      # ahead: earlier arrival
        walk_in(5, "A", arrived=22),                      # behind: later arrival
        walk_in(6, "B", arrived=0),                       # another service
        to_window(7, "3", transferred=24, service="A"),   # waits for window 3 only
        to_service(8, "B", transferred=24, service="A"),  # left service A for B
    ]
    assert people_ahead(mine, [*others, mine], at(30)) == 4


def test_people_ahead_of_a_green_ticket_skips_ordinary_tickets() -> None:
    """Estimated wait: call-next takes green tickets before ordinary ones, so ordinary tickets are not ahead
    of a green one, and waiting green tickets are ahead of an ordinary one who came earlier."""
    mine_green = green(10, "A", arrived=20)
    line = [walk_in(1, arrived=0), green(2, arrived=5), walk_in(3, arrived=8)]
    assert people_ahead(mine_green, line, at(30)) == 1
    assert people_ahead(walk_in(11, arrived=1), line, at(30)) == 2


def test_people_ahead_of_a_transfer_to_a_window_are_earlier_transfers_to_it() -> None:
    """Estimated wait: a ticket sent to a window waits only behind earlier transfers to that window."""
    mine = to_window(10, "3", transferred=20)
    line = [to_window(1, "3", transferred=10), to_window(2, "4", transferred=5), walk_in(3, arrived=0)]
    assert people_ahead(mine, line, at(30)) == 1


# --- a scripted hall day ---------------------------------------------------------------------------------


class _Hall:
    """The waiting line of a hall, driven by choose_next as call-next would: a called ticket leaves the
    line and the window's streak takes new_streak; a skip requeues behind the next K tickets."""

    def __init__(self, windows: list[WindowView], k: int = 3) -> None:
        self.windows = {w.number: w for w in windows}
        self.waiting: dict[int, Candidate] = {}
        self.gone: dict[int, Candidate] = {}
        self.k = k

    def issue(self, *tickets: Candidate) -> None:
        for t in tickets:
            self.waiting[t.ticket_id] = t

    def call(self, number: str, minute: float) -> Choice | None:
        w = self.windows[number]
        choice = choose_next(w, list(self.waiting.values()), at(minute), N)
        if choice is not None:
            self.gone[choice.ticket_id] = self.waiting.pop(choice.ticket_id)
            self.windows[number] = replace(w, priority_streak=choice.new_streak)
        return choice

    def requeue(self, ticket_id: int, minute: float) -> None:
        """过号顺延: just after the K-th of the tickets of the same service and kind now waiting (or now)."""
        t = self.gone.pop(ticket_id)
        peers = sorted((c.effective_arrival, c.ticket_id) for c in self.waiting.values()
                       if c.service_code == t.service_code and c.kind == t.kind and not c.is_transfer)
        place = peers[self.k - 1][0] + timedelta(microseconds=1) if len(peers) >= self.k else at(minute)
        self.waiting[ticket_id] = replace(t, effective_arrival=place)

    def transfer(self, ticket_id: int, minute: float, *, window: str | None = None,
                 service: str | None = None) -> None:
        t = self.gone.pop(ticket_id)
        kind: TicketKind = "transferred"
        self.waiting[ticket_id] = replace(t, kind=kind, transferred_at=at(minute),
                                          transferred_to_window=window, transferred_to_service=service)


def test_scripted_hall_day_calls_in_the_exact_order_of_the_rule() -> None:
    """A hall morning: 3 services, 4 windows with different weights (window 2 holds C in reserve, window 4
    is the duty window), walk-ins, green channel, appointments early, on time and late, a transfer to a
    window and one to a service, a no-show requeued behind K = 3 tickets. Each call names its tier."""
    hall = _Hall([WindowView("1", {"A": 2, "B": 1}, 0), WindowView("2", {"B": 1, "C": 0}, 0),
                  WindowView("3", {"C": 1}, 0), WindowView("4", {"A": 1, "B": 1, "C": 1}, 0, duty=True)])
    order: list[tuple[float, str, int, int]] = []

    def step(minute: float, number: str) -> int:
        choice = hall.call(number, minute)
        assert choice is not None, f"window {number} found nothing at minute {minute}"
        order.append((minute, number, choice.ticket_id, choice.tier))
        return choice.new_streak

    hall.issue(walk_in(1, "A", arrived=0), walk_in(2, "A", arrived=1), walk_in(3, "B", arrived=2),
               walk_in(4, "C", arrived=3), green(5, "A", arrived=4),
               appointment(6, "B", slot=30, checked_in=5),  # early: ordinary at 09:05 until 09:30
               walk_in(7, "B", arrived=6), walk_in(8, "A", arrived=7), walk_in(9, "C", arrived=8),
               walk_in(10, "A", arrived=9))
    assert step(10, "1") == 1   # tier 4 green (streak 0 < 3) before the older A walk-ins
    step(10, "2")               # tier 4: B's head, the walk-in of 09:02
    step(10, "3")               # tier 4: C's head, 09:03
    step(10, "4")               # tier 4: A's head waited 600 s x 1, more than B 300 s, C 120 s
    hall.issue(walk_in(11, "A", arrived=11), walk_in(12, "A", arrived=11.5))
    assert step(12, "1") == 0   # tier 4 ordinary: A 660 s x 2 beats B 420 s x 1; streak back to 0
    hall.requeue(2, 14)         # no-show 过号: behind 8, 10 and 11, ahead of 12
    hall.transfer(4, 15, window="1")  # window 3 sends C's ticket to window 1 by name
    step(15, "2")               # tier 4: the early appointment is B's head at its check-in time
    hall.transfer(1, 16, service="B")  # window 4 sends A's ticket on to service B
    assert step(16, "1") == 0   # tier 1: the transfer to window 1 before the transfer to service B
    step(17, "2")               # tier 2: transferred to B, before B's walk-in of 09:06
    hall.issue(appointment(13, "A", slot=20, checked_in=18),  # on time: checked in 2 minutes ahead
               green(14, "A", arrived=19), green(15, "A", arrived=19.5))
    step(20, "4")               # tier 3: the 09:20 slot has started, before the green tickets
    assert step(21, "1") == 1   # tier 4 green
    assert step(22, "1") == 2   # tier 4 green
    hall.issue(green(16, "A", arrived=22.5))
    assert step(23, "1") == 3   # tier 4 green: the third in a row
    hall.issue(green(17, "A", arrived=23.5))
    assert step(24, "1") == 0   # tier 4 ordinary: streak reached N = 3; A 1020 s x 2 beats B 1080 s x 1
    assert step(25, "1") == 1   # tier 4 green again
    hall.issue(Candidate(18, "C", "walk_in", at(25), slot_start=at(0)))  # late (25 min): a walk-in instead
    step(26, "3")               # tier 4: C's head of 09:08, the late arrival queues behind it
    step(27, "2")               # tier 4: B's last walk-in
    step(28, "2")               # tier 5: nothing for B, so window 2 takes its reserve service C
    step(29, "4")               # tier 4: A's head 10
    assert step(30, "1") == 0   # tier 4: A's head 11
    step(31, "4")               # tier 4: the requeued no-show, just after 11
    step(32, "1")               # tier 4: A's last walk-in, 12
    assert [hall.call(n, 33) for n in "1234"] == [None] * 4

    assert order == [
        (10, "1", 5, 4), (10, "2", 3, 4), (10, "3", 4, 4), (10, "4", 1, 4),
        (12, "1", 2, 4), (15, "2", 6, 4), (16, "1", 4, 1), (17, "2", 1, 2),
        (20, "4", 13, 3), (21, "1", 14, 4), (22, "1", 15, 4), (23, "1", 16, 4),
        (24, "1", 8, 4), (25, "1", 17, 4), (26, "3", 9, 4), (27, "2", 7, 4),
        (28, "2", 18, 5), (29, "4", 10, 4), (30, "1", 11, 4), (31, "4", 2, 4), (32, "1", 12, 4),
    ]


# --- properties ---------------------------------------------------------------------------------------------

SERVICES = ["A", "B", "C", "D"]
NOW = at(30)


def _instant(draw: st.DrawFn) -> datetime:
    # a coarse grid around now (10-minute steps) so that equal arrivals, transfers and slots are common
    return NOW + timedelta(minutes=10 * draw(st.integers(-6, 1)))


@st.composite
def candidate_lists(draw: st.DrawFn) -> list[Candidate]:
    ids = draw(st.lists(st.integers(1, 2**62), max_size=14, unique=True))
    out = []
    for ticket_id in ids:
        kind: TicketKind = draw(st.sampled_from(["walk_in", "green", "appointment", "transferred"]))
        target = draw(st.sampled_from(["none", "window", "service"])) if kind != "transferred" else \
            draw(st.sampled_from(["window", "service"]))
        out.append(Candidate(
            ticket_id, draw(st.sampled_from(SERVICES)), kind, _instant(draw),
            duty_only=draw(st.booleans()),
            transferred_at=_instant(draw) if target != "none" else None,
            transferred_to_window=draw(st.sampled_from(["1", "2"])) if target == "window" else None,
            transferred_to_service=draw(st.sampled_from(SERVICES)) if target == "service" else None,
            slot_start=_instant(draw) if kind == "appointment" else None,
        ))
    return out


windows = st.builds(
    WindowView,
    number=st.sampled_from(["1", "2"]),
    weights=st.dictionaries(st.sampled_from(SERVICES), st.integers(0, 3), max_size=4),
    priority_streak=st.integers(0, 5),
    duty=st.booleans(),
)


def _tier_of(w: WindowView, c: Candidate) -> int | None:
    """The tier at which `w` may call `c`, or None: DOMAIN.md's eligibility, written out independently."""
    if c.transferred_to_window is not None:
        return 1 if c.transferred_to_window == w.number else None
    if c.duty_only and not w.duty:
        return None
    if c.transferred_to_service is not None:
        return 2 if c.transferred_to_service in w.weights else None
    if c.service_code not in w.weights:
        return None
    if w.weights[c.service_code] == 0:
        return 5
    assert c.kind != "transferred"
    return 3 if c.kind == "appointment" and c.slot_start is not None and c.slot_start <= NOW else 4


@settings(max_examples=300)
@given(w=windows, candidates=candidate_lists(), green_n=st.integers(0, 4), data=st.data())
def test_property_input_order_is_irrelevant(w: WindowView, candidates: list[Candidate], green_n: int,
                                            data: st.DataObject) -> None:
    """Determinism: any permutation of the snapshot gives the same choice, reason included."""
    shuffled = data.draw(st.permutations(candidates))
    assert choose_next(w, shuffled, NOW, green_n) == choose_next(w, candidates, NOW, green_n)


@settings(max_examples=300)
@given(w=windows, candidates=candidate_lists(), green_n=st.integers(0, 4))
def test_property_the_choice_is_eligible_from_the_first_non_empty_tier(
        w: WindowView, candidates: list[Candidate], green_n: int) -> None:
    """Eligibility and tier order: None iff no candidate is the window's; otherwise one of them, from the
    lowest tier any of them is in; the streak moves only on green (+1) and ordinary (0) calls."""
    tiers = {c.ticket_id: t for c in candidates if (t := _tier_of(w, c)) is not None}
    choice = choose_next(w, candidates, NOW, green_n)
    if not tiers:
        assert choice is None
        return
    assert choice is not None
    assert choice.ticket_id in tiers
    assert choice.tier == min(tiers.values())
    chosen = next(c for c in candidates if c.ticket_id == choice.ticket_id)
    started = chosen.kind == "appointment" and chosen.slot_start is not None and chosen.slot_start <= NOW
    if choice.tier in (1, 2, 3) or (choice.tier == 5 and started):
        assert choice.new_streak == w.priority_streak
    elif chosen.kind == "green":
        assert choice.new_streak == w.priority_streak + 1
    else:
        assert choice.new_streak == 0


@given(w=windows, candidates=candidate_lists(), green_n=st.integers(0, 4), data=st.data())
@settings(max_examples=300, deadline=None)
def test_the_grouped_ranking_chooses_what_the_rule_chooses_however_many_are_taken_elsewhere(
        w, candidates, green_n, data) -> None:
    """calling.Ranking (what the call-next transaction uses) against choose_next over everything: the same
    choice, and after each choice is dropped (another window took it) the same next choice."""
    now = at(30)
    ranking = Ranking(w, candidates, now)
    left = list(candidates)
    while True:
        expected = choose_next(w, left, now, green_n)
        assert ranking.choose(green_n) == expected
        if expected is None:
            break
        ranking.drop(expected.ticket_id)
        left = [c for c in left if c.ticket_id != expected.ticket_id]
