"""The centre admin's endpoints: a centre's queue settings, hall schedule, services and windows."""

from typing import Annotated

from fastapi import APIRouter, Depends

from services.queue import notices, repository, setup
from services.queue.models import Service, Window
from services.queue.router import CenterDep, CenterEditor
from services.queue.schemas import ServiceIn, ServiceOut, ServicePatch, WindowIn, WindowOut, WindowPatch
from shared.db import SessionDep
from shared.errors import NotFound
from shared.events.catalog import HallSchedule, QueueSettings

router = APIRouter(prefix="/centers/{center_id}", tags=["setup"])


@router.get("/settings", response_model=QueueSettings)
async def get_settings(center: CenterDep) -> QueueSettings:
    """The centre's calling settings (announcement, N:1, requeue K, recall limit, day close)."""
    return setup.settings_of(center)


@router.put("/settings", response_model=QueueSettings)
async def put_settings(body: QueueSettings, center: CenterDep, _: CenterEditor, session: SessionDep) -> QueueSettings:
    """Replace the centre's calling settings (centre admin); publishes center.settings_changed (and, when the
    complaint phone changes, the display's scrolling area: center.notices_changed)."""
    complaint_hotline = setup.settings_of(center).complaint_hotline
    settings = await setup.set_settings(session, center, body)
    if settings.complaint_hotline != complaint_hotline:
        await notices.publish_scroll(session, center)
    return settings


@router.get("/schedule", response_model=HallSchedule)
async def get_schedule(center: CenterDep) -> HallSchedule:
    """The centre's hall schedule (the default one until the centre sets its own)."""
    return setup.schedule_of(center)


@router.put("/schedule", response_model=HallSchedule)
async def put_schedule(body: HallSchedule, center: CenterDep, _: CenterEditor, session: SessionDep) -> HallSchedule:
    """Replace the hall schedule, exceptions included (centre admin); publishes center.schedule_changed."""
    return await setup.set_schedule(session, center, body)


async def _service(code: str, center: CenterDep, session: SessionDep) -> Service:
    service = await repository.get_service(session, center.id, code)
    if service is None:
        raise NotFound(f"centre {center.id} has no service {code}", field="code")
    return service


ServiceDep = Annotated[Service, Depends(_service)]


@router.post("/services", status_code=201, response_model=ServiceOut)
async def create_service(body: ServiceIn, center: CenterDep, _: CenterEditor, session: SessionDep) -> Service:
    """Add a service (业务类型) with its ticket prefix (centre admin); publishes service.upserted."""
    return await setup.create_service(session, center, body)


@router.get("/services", response_model=list[ServiceOut])
async def list_services(center: CenterDep, session: SessionDep) -> list[Service]:
    """The centre's services."""
    return await repository.list_services(session, center.id)


@router.get("/services/{code}", response_model=ServiceOut)
async def get_service(service: ServiceDep) -> Service:
    """One service."""
    return service


@router.patch("/services/{code}", response_model=ServiceOut)
async def patch_service(body: ServicePatch, service: ServiceDep, _: CenterEditor, session: SessionDep) -> Service:
    """Change a service (centre admin); publishes service.upserted."""
    return await setup.update_service(session, service, body)


async def _window(number: str, center: CenterDep, session: SessionDep) -> Window:
    window = await repository.get_window(session, center.id, number)
    if window is None:
        raise NotFound(f"centre {center.id} has no window {number}", field="number")
    return window


WindowDep = Annotated[Window, Depends(_window)]


@router.post("/windows", status_code=201, response_model=WindowOut)
async def create_window(body: WindowIn, center: CenterDep, _: CenterEditor, session: SessionDep) -> WindowOut:
    """Add a window with the services it serves and their weights (centre admin); publishes window.upserted."""
    return await setup.window_out(session, await setup.create_window(session, center, body))


@router.get("/windows", response_model=list[WindowOut])
async def list_windows(center: CenterDep, session: SessionDep) -> list[WindowOut]:
    """The centre's windows, who is at each and its state."""
    return [await setup.window_out(session, w) for w in await repository.list_windows(session, center.id)]


@router.get("/windows/{number}", response_model=WindowOut)
async def get_window(window: WindowDep, session: SessionDep) -> WindowOut:
    """One window."""
    return await setup.window_out(session, window)


@router.patch("/windows/{number}", response_model=WindowOut)
async def patch_window(body: WindowPatch, window: WindowDep, _: CenterEditor, session: SessionDep) -> WindowOut:
    """Change a window (centre admin); publishes window.upserted."""
    return await setup.window_out(session, await setup.update_window(session, window, body))



