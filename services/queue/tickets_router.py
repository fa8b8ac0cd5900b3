"""Endpoints of the hall floor: issuing tickets, signing in at windows, calling and serving."""

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from services.queue import repository, tickets
from services.queue.models import Center, Service, Ticket
from services.queue.router import CenterDep
from services.queue.schemas import (
    DayOut,
    PublicTicketOut,
    RemoteTicketIn,
    TicketIn,
    TicketIssuedOut,
    TicketOut,
    TransferIn,
    WindowOut,
)
from services.queue.setup import window_out
from services.queue.setup_router import WindowDep
from shared import clock
from shared.auth import Principal, Role, require
from shared.calendar.store import CalendarDep
from shared.db import SessionDep
from shared.errors import AppError, NotFound
from shared.idempotency import IdempotencyDep

router = APIRouter(tags=["tickets"])
ISSUERS = (Role.KIOSK, Role.CLERK, Role.CHIEF_REP, Role.HALL_MANAGER, Role.CENTER_ADMIN, Role.SYSTEM_ADMIN)
Issuer = Annotated[Principal, Depends(require(*ISSUERS))]
AtWindow = Annotated[Principal, Depends(require(Role.CLERK, Role.CHIEF_REP))]
FloorStaff = Annotated[Principal, Depends(require(*tickets.STAFF_ON_FLOOR))]
HallManager = Annotated[Principal, Depends(require(Role.HALL_MANAGER, Role.CENTER_ADMIN, Role.SYSTEM_ADMIN))]


async def _context(request: Request, calendar: CalendarDep) -> tickets.Context:
    return tickets.Context(pii=request.app.state.pii, calendar=calendar)


ContextDep = Annotated[tickets.Context, Depends(_context)]


async def _public_center(center_id: str, session: SessionDep) -> Center:
    """The centre of a tokenless route (no caller to check the centre against)."""
    center = await repository.get_center(session, center_id)
    if center is None:
        raise NotFound(f"centre {center_id} does not exist", field="center_id")
    return center


PublicCenterDep = Annotated[Center, Depends(_public_center)]


@router.post("/centers/{center_id}/tickets", status_code=201, response_model=TicketIssuedOut,
             responses={409: {"description": "not issuing now (closed, cut-off, lunch, day closed, limit)"}})
async def issue_ticket(center_id: str, body: TicketIn, user: Issuer, session: SessionDep, ctx: ContextDep,
                       idem: IdempotencyDep) -> JSONResponse:
    """Issue a walk-in or green-channel ticket (kiosk or staff); a retry with its Idempotency-Key replays."""
    user.check_center(center_id)
    if (replay := await idem.replay()) is not None:
        return replay
    issued = await tickets.issue_ticket(ctx, session, center_id, body.service_code, kind=body.kind,
                                        channel=tickets.channel_of(user), id_number=body.id_number, phone=body.phone)
    return await idem.remember(201, issued_out(issued))


def issued_out(issued: tickets.Issued) -> TicketIssuedOut:
    """What a kiosk (or a phone) is given for a ticket just issued."""
    t = issued.ticket
    return TicketIssuedOut(id=t.id, number=t.number, lookup_code=t.lookup_code, service_code=t.service_code,
                           kind=t.kind, status=t.status, duty_only=t.duty_only, people_ahead=issued.people_ahead,
                           estimated_wait_s=issued.estimated_wait_s, issued_at=t.issued_at)


async def service_of_body(session: SessionDep, center_id: str, code: str) -> Service:
    """The service a request body names: an unknown one is the body's fault (422 naming the field)."""
    service = await repository.get_service(session, center_id, code)
    if service is None:
        raise AppError(f"centre {center_id} has no service {code}", field="service_code", status=422,
                       code="unknown_service")
    return service


@router.post("/centers/{center_id}/windows/{number}/sign-in", response_model=WindowOut)
async def sign_in(window: WindowDep, user: AtWindow, session: SessionDep) -> WindowOut:
    """Sign in at the window, after logging in at its terminal; the post (A or B) is the window's assignment."""
    return await window_out(session, await tickets.sign_in(session, window, user))


@router.post("/centers/{center_id}/windows/{number}/sign-out", response_model=WindowOut)
async def sign_out(window: WindowDep, user: AtWindow, session: SessionDep) -> WindowOut:
    """Sign out of the window (no ticket may be active at it)."""
    return await window_out(session, await tickets.sign_out(session, window, user))


@router.post("/centers/{center_id}/windows/{number}/call-next", response_model=TicketOut,
             responses={204: {"description": "nothing waits for this window"},
                        409: {"description": "the window has an active ticket, or nobody is signed in"}})
async def call_next(center_id: str, number: str, user: AtWindow, session: SessionDep,
                    request: Request) -> Ticket | Response:
    """Call the ticket the rule gives this window now (DOMAIN.md "Call next: the rule")."""
    ticket = await tickets.call_next(session, center_id, number, user, request.app.state.pii)
    return ticket if ticket is not None else Response(status_code=204)


async def _ticket(ticket_id: int, session: SessionDep) -> Ticket:
    ticket = await repository.get_ticket(session, ticket_id, for_update=True)
    if ticket is None:
        raise NotFound(f"no ticket {ticket_id}", field="ticket_id")
    return ticket


TicketDep = Annotated[Ticket, Depends(_ticket)]


@router.post("/tickets/{ticket_id}/start", response_model=TicketOut)
async def start(ticket_id: int, user: AtWindow, session: SessionDep) -> Ticket:
    """The called person is at the window: service begins."""
    return await tickets.start(session, ticket_id, user)


@router.post("/tickets/{ticket_id}/finish", response_model=TicketOut)
async def finish(ticket_id: int, user: AtWindow, session: SessionDep) -> Ticket:
    """Service ended; the window may call its next ticket."""
    return await tickets.finish(session, ticket_id, user)


@router.post("/tickets/{ticket_id}/recall", response_model=TicketOut)
async def recall(ticket: TicketDep, user: AtWindow, session: SessionDep) -> Ticket:
    """Call the ticket again (重呼), up to the centre's recall limit."""
    center = await _center_of(session, ticket)
    return await tickets.recall(session, center, ticket, user)


@router.post("/tickets/{ticket_id}/skip", response_model=TicketOut)
async def skip(ticket: TicketDep, user: AtWindow, session: SessionDep) -> Ticket:
    """The called person did not come (过号)."""
    return await tickets.skip(session, ticket, user)


@router.post("/tickets/{ticket_id}/requeue", response_model=TicketOut)
async def requeue(ticket: TicketDep, user: FloorStaff, session: SessionDep) -> Ticket:
    """A no-show back in line behind the next K waiting (过号顺延), once."""
    center = await _center_of(session, ticket)
    return await tickets.requeue(session, center, ticket, user)


@router.post("/tickets/{ticket_id}/cancel", response_model=TicketOut)
async def cancel(ticket: TicketDep, user: FloorStaff, session: SessionDep, request: Request) -> Ticket:
    """Cancel a waiting ticket."""
    return await tickets.cancel(session, ticket, user, request.app.state.pii)


@router.post("/tickets/{ticket_id}/transfer", response_model=TicketOut)
async def transfer(body: TransferIn, ticket: TicketDep, user: AtWindow, session: SessionDep) -> Ticket:
    """Move a ticket in service to another window or service; it waits there first in line."""
    return await tickets.transfer(session, ticket, user, to_service_code=body.to_service_code,
                                  to_window=body.to_window)


@router.post("/centers/{center_id}/day/close", response_model=DayOut)
async def close_day(center: CenterDep, user: HallManager, session: SessionDep) -> DayOut:
    """End today's business (hall manager): issuing stops, what still waits expires."""
    day = clock.today_local()
    expired = await tickets.close_day(session, center, user, day)
    return DayOut(center_id=center.id, business_date=day, open=False, expired=expired)


@router.post("/centers/{center_id}/day/open", response_model=DayOut)
async def open_day(center: CenterDep, user: HallManager, session: SessionDep) -> DayOut:
    """Open today again after a close (hall manager); issuing follows the schedule."""
    day = clock.today_local()
    await tickets.open_day(session, center, user, day)
    return DayOut(center_id=center.id, business_date=day, open=True, expired=0)


async def _center_of(session: SessionDep, ticket: Ticket) -> Center:
    center = await repository.get_center(session, ticket.center_id)
    assert center is not None  # a ticket's centre is never deleted
    return center


@router.get("/public/tickets/{ticket_id}", response_model=PublicTicketOut, tags=["public"],
            responses={404: {"description": "no such ticket, or the code does not match"}})
async def public_ticket(ticket_id: int, code: Annotated[str, Query(pattern=r"^[A-Za-z0-9]{6}$")],
                        session: SessionDep, response: Response) -> PublicTicketOut:
    """The holder's view of a ticket (no token: its lookup code): state, people ahead, estimated wait."""
    ticket = await repository.get_ticket(session, ticket_id)
    # one answer for an unknown ticket and a wrong code, compared in constant time: ids are guessable
    if ticket is None or not hmac.compare_digest(ticket.lookup_code, code.upper()):
        raise NotFound("no ticket with this number and code (请核对号票上的查询码)", field="code")
    ahead = wait_s = 0
    if ticket.status == "waiting":
        service = await repository.get_service(session, ticket.center_id, ticket.service_code)
        assert service is not None
        ahead, wait_s = await tickets.estimate(session, ticket, service, clock.now())
    response.headers["Cache-Control"] = "no-store"
    return PublicTicketOut(number=ticket.number, service_code=ticket.service_code, status=ticket.status,
                           people_ahead=ahead, estimated_wait_s=wait_s,
                           window=ticket.window if ticket.status in ("called", "serving") else None,
                           issued_at=ticket.issued_at)


@router.post("/public/centers/{center_id}/tickets", status_code=201, response_model=TicketIssuedOut, tags=["public"],
             responses={409: {"description": "not issuing now, or the person's daily limit reached"}})
async def issue_remote_ticket(center_id: str, body: RemoteTicketIn, session: SessionDep,
                              ctx: ContextDep) -> TicketIssuedOut:
    """Take a ticket on a phone (远程取号, no token; rate-limited per address at the gateway)."""
    issued = await tickets.issue_ticket(ctx, session, center_id, body.service_code, kind="walk_in", channel="online",
                                        id_number=body.id_number, phone=body.phone)
    return issued_out(issued)
