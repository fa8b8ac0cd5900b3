"""The state machine of a case (办件), as one explicit table: (state, action) -> (next state, who may do it).

Every action route looks its move up here before anything else; a move the table does not have is a 409
naming the current state and the actions it allows, a role the row does not name is a 403. The rules
beyond the table (one 补正, one extension, nothing paused after due_at, the last stage before completing)
live with the actions in service.py.

    in_progress ──request-supplement──▶ supplement ──supplement──▶ in_progress
                ──start-special──────▶ special ────end-special──▶ in_progress
                ──request-extension──▶ extension_pending ──approve/decline-extension──▶ in_progress
                ──propose-refusal────▶ refusal_pending ──return-refusal──▶ in_progress
                                                        ──approve-refusal─▶ completed (refused)
                ──forward────────────▶ forwarded ──record-forward-result──▶ completed
                ──complete───────────▶ completed ──deliver──▶ delivered
                ──withdraw───────────▶ withdrawn
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.auth import Role
from shared.errors import Conflict, Forbidden

Action = Literal[
    "advance", "request-supplement", "supplement", "start-special", "end-special", "request-extension",
    "approve-extension", "decline-extension", "forward", "record-forward-result", "complete",
    "propose-refusal", "approve-refusal", "return-refusal", "expedite", "deliver", "withdraw", "reassign",
]

CLERK = frozenset({Role.CLERK})
CHIEF = frozenset({Role.CHIEF_REP})
STAFF = frozenset({Role.CLERK, Role.CHIEF_REP})
MANAGERS = frozenset({Role.CHIEF_REP, Role.HALL_MANAGER, Role.CENTER_ADMIN})

OPEN_STATES = ("in_progress", "extension_pending", "refusal_pending", "supplement", "special", "forwarded")
CLOSED_STATES = ("completed", "delivered", "withdrawn")
#: states whose clock is stopped (no warning, no overdue)
PAUSED_STATES = ("supplement", "special", "forwarded")


@dataclass(frozen=True)
class Move:
    to: str
    roles: frozenset[Role]


TABLE: dict[tuple[str, Action], Move] = {
    ("in_progress", "advance"): Move("in_progress", STAFF),
    ("in_progress", "request-supplement"): Move("supplement", STAFF),
    ("in_progress", "start-special"): Move("special", STAFF),
    ("in_progress", "request-extension"): Move("extension_pending", STAFF),
    ("in_progress", "forward"): Move("forwarded", STAFF),
    ("in_progress", "complete"): Move("completed", STAFF),
    ("in_progress", "propose-refusal"): Move("refusal_pending", STAFF),
    ("in_progress", "expedite"): Move("in_progress", CHIEF),
    ("in_progress", "withdraw"): Move("withdrawn", STAFF),
    ("in_progress", "reassign"): Move("in_progress", MANAGERS),
    # the work goes on while the chief representative decides on an extension
    ("extension_pending", "advance"): Move("extension_pending", STAFF),
    ("extension_pending", "approve-extension"): Move("in_progress", CHIEF),
    ("extension_pending", "decline-extension"): Move("in_progress", CHIEF),
    ("extension_pending", "withdraw"): Move("withdrawn", STAFF),
    ("extension_pending", "reassign"): Move("extension_pending", MANAGERS),
    ("refusal_pending", "approve-refusal"): Move("completed", CHIEF),
    ("refusal_pending", "return-refusal"): Move("in_progress", CHIEF),
    ("refusal_pending", "reassign"): Move("refusal_pending", MANAGERS),
    ("supplement", "supplement"): Move("in_progress", STAFF),
    ("supplement", "withdraw"): Move("withdrawn", STAFF),
    ("supplement", "reassign"): Move("supplement", MANAGERS),
    ("special", "end-special"): Move("in_progress", STAFF),
    ("special", "withdraw"): Move("withdrawn", STAFF),
    ("special", "reassign"): Move("special", MANAGERS),
    ("forwarded", "record-forward-result"): Move("completed", STAFF),
    ("forwarded", "reassign"): Move("forwarded", MANAGERS),
    ("completed", "deliver"): Move("delivered", STAFF),
}


def allowed_actions(state: str) -> list[str]:
    return sorted(action for (s, action) in TABLE if s == state)


def roles_for(action: Action) -> frozenset[Role]:
    """Every role that may make `action` from some state."""
    return frozenset().union(*(m.roles for (_, a), m in TABLE.items() if a == action))


def move(state: str, action: Action, role: Role) -> Move:
    """The move `action` makes from `state`, if `role` may make it; else a 403 (a role that never may) or a
    409 (not from this state) problem."""
    if role not in roles_for(action):
        raise Forbidden(f"{action} is for {', '.join(sorted(roles_for(action)))}, not {role}", code="wrong_role")
    found = TABLE.get((state, action))
    if found is None:
        allowed = allowed_actions(state)
        raise Conflict(f"a case in state {state} cannot {action}; allowed: {', '.join(allowed) or 'nothing'}",
                       field="status", code="illegal_transition", state=state, allowed=allowed)
    if role not in found.roles:
        raise Forbidden(f"{action} from {state} is for {', '.join(sorted(found.roles))}, not {role}",
                        code="wrong_role")
    return found
