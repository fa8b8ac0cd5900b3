"""Evaluation after service (好差评): one rating per ticket, by the evaluator device of the window that served
it or by the person with the ticket's lookup code; `evaluation.submitted` names the ticket, window, clerk,
service and, when the rating names one, the case (the case registry attaches it). Never commits.

Decisions where DOMAIN.md is silent (for the queue service's README):

- Only a ticket whose service ended (done) is rated; the evaluator must be bound to the window that served
  it last (a transferred ticket is rated where it finished). Its clerk is the clerk who served it there.
- A case number, when given, must be of the ticket's centre (`<centre>-<yyyymmdd>-<6 digits>`); the queue
  does not look the case up (the registry owns cases: it attaches the rating when the event arrives).
- The ticket row is locked while the rating is checked and stored (and the table holds one rating per
  ticket): two ratings at once give one 201 and one 409.
"""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from services.queue import metrics, repository
from services.queue.models import Evaluation, Ticket
from shared import clock
from shared.auth import Principal, Role
from shared.errors import AppError, Conflict, Forbidden
from shared.events.catalog import EvaluationSubmitted
from shared.events.outbox import publish

PRODUCER = "queue"
CASE_NO = re.compile(r"^(?P<center>[A-Za-z0-9]{2,32})-\d{8}-\d{6}$")


def check_evaluator(principal: Principal, ticket: Ticket) -> None:
    """The evaluator device of the window that served the ticket."""
    principal.check_center(ticket.center_id)
    if principal.role != Role.EVALUATOR:
        raise Forbidden(f"a {principal.role} does not rate services", code="wrong_role")
    if ticket.window is not None and principal.window != ticket.window:  # none yet: not served (a 409 below)
        raise Forbidden(f"the evaluator of window {principal.window or '(none)'} rates only the tickets served "
                        "there", field="ticket_id", code="wrong_window")


async def submit(session: AsyncSession, ticket: Ticket, *, rating: int, comment: str | None, case_no: str | None,
                 channel: str, device: str | None) -> Evaluation:
    """Store the ticket's one rating and publish evaluation.submitted (the ticket is locked by the caller)."""
    if case_no is not None:
        match = CASE_NO.match(case_no)
        if match is None or match["center"] != ticket.center_id:
            raise AppError(f"not a case number of centre {ticket.center_id} (<centre>-<yyyymmdd>-<6 digits>)",
                           field="case_no", status=422, code="validation_failed")
    if ticket.status != "done":
        raise Conflict(f"ticket {ticket.number} is {ticket.status}: a service is rated once it has ended",
                       field="ticket_id", code="not_served")
    if await repository.evaluation_of_ticket(session, ticket.id) is not None:
        raise Conflict(f"ticket {ticket.number} has been rated already (one rating per ticket)", field="ticket_id",
                       code="already_evaluated")
    service = await repository.get_service(session, ticket.center_id, ticket.service_code)
    now = clock.now()
    evaluation = Evaluation(center_id=ticket.center_id, ticket_id=ticket.id, business_date=ticket.business_date,
                            service_code=ticket.service_code, department=service.department if service else None,
                            window=ticket.window, clerk_id=ticket.clerk_id, post=ticket.post, rating=rating,
                            comment=comment, case_no=case_no, channel=channel, device=device, submitted_at=now)
    session.add(evaluation)
    await session.flush()
    await publish(session, PRODUCER, EvaluationSubmitted(
        evaluation_id=evaluation.id, center_id=ticket.center_id, ticket_id=ticket.id,
        service_code=ticket.service_code, department=evaluation.department, window=ticket.window,
        clerk_id=ticket.clerk_id, rating=rating, comment=comment, case_no=case_no,
        channel="evaluator" if channel == "evaluator" else "public", submitted_at=now, ticket_number=ticket.number,
        business_date=ticket.business_date, post="A" if ticket.post == "A" else "B" if ticket.post == "B" else None),
        subject=f"ticket:{ticket.id}", center_id=ticket.center_id)
    metrics.evaluated(session, ticket.center_id, ticket.service_code, rating)
    return evaluation
