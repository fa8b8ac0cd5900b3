"""HTTP endpoints of the queue service."""

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from services.queue import repository, service
from services.queue.models import Center
from services.queue.schemas import CenterChange, CenterIn, CenterOut
from shared.auth import CurrentUser, Principal, Role, require
from shared.db import SessionDep
from shared.errors import NotFound
from shared.idempotency import IdempotencyDep

router = APIRouter(prefix="/centers", tags=["centers"])
SystemAdmin = Annotated[Principal, Depends(require(Role.SYSTEM_ADMIN))]
CenterEditor = Annotated[Principal, Depends(require(Role.SYSTEM_ADMIN, Role.CENTER_ADMIN))]


async def _center(center_id: str, session: SessionDep, user: CurrentUser) -> Center:
    user.check_center(center_id)
    center = await repository.get_center(session, center_id)
    if center is None:
        raise NotFound(f"centre {center_id} does not exist", field="center_id")
    return center


CenterDep = Annotated[Center, Depends(_center)]


@router.post("", status_code=201, response_model=CenterOut,
             responses={201: {"model": CenterOut}, 409: {"description": "centre exists"}})
async def create_center(body: CenterIn, session: SessionDep, _: SystemAdmin, idem: IdempotencyDep) -> JSONResponse:
    """Create a centre (system admin); retries with the same Idempotency-Key replay the first answer."""
    if (replay := await idem.replay()) is not None:
        return replay
    center = await service.create_center(session, body)
    return await idem.remember(201, CenterOut.model_validate(center))


@router.put("/{center_id}", response_model=CenterOut,
            responses={403: {"description": "not that centre's admin"}, 404: {"description": "no such centre"}})
async def update_center(body: CenterChange, _: CenterEditor, center: CenterDep, session: SessionDep,
                        idem: IdempotencyDep) -> JSONResponse:
    """Change a centre's name and address (system admin or that centre's admin); publishes center.upserted."""
    if (replay := await idem.replay()) is not None:
        return replay
    center = await service.update_center(session, center, name=body.name, address=body.address)
    return await idem.remember(200, CenterOut.model_validate(center))


@router.get("", response_model=list[CenterOut])
async def list_centers(session: SessionDep, user: CurrentUser) -> list[Center]:
    """The centres the caller may see."""
    return await repository.list_centers(session, None if user.spans_all_centers else user.centers)


@router.get("/{center_id}", response_model=CenterOut)
async def get_center(center: CenterDep) -> Center:
    """One centre."""
    return center
