"""Endpoints of evaluations (好差评): by the evaluator device of the window that served the ticket, or by the
person on their phone with the ticket's lookup code (no token)."""

import hmac
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from services.queue import evaluations, repository
from services.queue.models import Evaluation
from services.queue.tickets_router import TicketDep
from shared.auth import Principal, Role, require
from shared.db import SessionDep
from shared.errors import NotFound

router = APIRouter(tags=["evaluations"])
Evaluator = Annotated[Principal, Depends(require(Role.EVALUATOR))]


class EvaluationIn(BaseModel):
    """A rating: 5 非常满意, 4 满意, 3 基本满意, 2 不满意, 1 非常不满意; the case number if the service opened one."""

    model_config = ConfigDict(extra="forbid")

    rating: int = Field(ge=1, le=5, description="5 非常满意 ... 1 非常不满意")
    comment: str | None = Field(None, max_length=500)
    case_no: str | None = Field(None, max_length=48, description="e.g. 320102-20260212-000017",
                                examples=["320102-20260212-000017"])


class EvaluationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ticket_id: int
    service_code: str
    window: str | None
    clerk_id: str | None
    rating: int
    comment: str | None
    case_no: str | None
    channel: str
    submitted_at: datetime


_RESPONSES: dict[int | str, dict[str, str]] = {
    409: {"description": "rated already, or the service has not ended"},
    422: {"description": "a rating outside 1-5, or a case number of another centre"}}


@router.post("/tickets/{ticket_id}/evaluation", status_code=201, response_model=EvaluationOut,
             responses={**_RESPONSES, 403: {"description": "an evaluator of another window"}})
async def evaluate(body: EvaluationIn, user: Evaluator, ticket: TicketDep, session: SessionDep) -> Evaluation:
    """Rate the service of a ticket (the evaluator device of the window that served it), once per ticket."""
    evaluations.check_evaluator(user, ticket)
    return await evaluations.submit(session, ticket, rating=body.rating, comment=body.comment,
                                    case_no=body.case_no, channel="evaluator", device=user.device)


@router.post("/public/tickets/{ticket_id}/evaluation", status_code=201, response_model=EvaluationOut,
             tags=["public"], responses={**_RESPONSES, 404: {"description": "no such ticket, or a wrong code"}})
async def evaluate_online(ticket_id: int, body: EvaluationIn, session: SessionDep,
                          code: Annotated[str, Query(pattern=r"^[A-Za-z0-9]{6}$")]) -> Evaluation:
    """Rate one's own service on a phone (no token: the ticket's lookup code), once per ticket."""
    ticket = await repository.get_ticket(session, ticket_id, for_update=True)
    if ticket is None or not hmac.compare_digest(ticket.lookup_code, code.upper()):
        raise NotFound("no ticket with this number and code (请核对号票上的查询码)", field="code")
    return await evaluations.submit(session, ticket, rating=body.rating, comment=body.comment,
                                    case_no=body.case_no, channel="public", device=None)
