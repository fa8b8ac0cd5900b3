"""The queue service (排队叫号): centres, hall schedule, services, windows, tickets, appointments."""

from contextlib import AsyncExitStack

from fastapi import Depends, FastAPI

from services.queue import metrics
from services.queue.appointment_requests_router import router as appointment_requests_router
from services.queue.appointments_router import router as appointments_router
from services.queue.calendar_router import router as calendar_router
from services.queue.config import Settings, get_settings
from services.queue.display import router as display_router
from services.queue.evaluations_router import router as evaluations_router
from services.queue.feeds import display_feed, display_filter, display_viewer
from services.queue.notices_router import router as notices_router
from services.queue.router import router
from services.queue.setup_router import router as setup_router
from services.queue.tickets_router import router as tickets_router
from services.queue.windows_router import router as windows_router
from shared.app import create_service_app
from shared.clock import Clock


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or get_settings()
    display = display_feed(settings)

    async def start_display(app: FastAPI, stack: AsyncExitStack) -> None:
        await display.start()
        stack.push_async_callback(display.stop)

    async def prepare_metrics(app: FastAPI, stack: AsyncExitStack) -> None:
        async with app.state.sessionmaker() as session:
            await metrics.prepare_known(session)

    return create_service_app(
        settings, clock=clock, on_startup=[start_display, prepare_metrics],
        title="Hall queue service",
        description="排队叫号: centres, hall schedule, services, windows, tickets, appointments, evaluations.",
        routers=[router, calendar_router, setup_router, tickets_router, windows_router, evaluations_router,
                 appointments_router, appointment_requests_router, notices_router,
                 display_router,
                 display.router("/feeds/display", display_filter, dependencies=[Depends(display_viewer)])],
        tags=[{"name": "centers", "description": "service halls (政务服务中心)"},
              {"name": "setup", "description": "a centre's queue settings, hall schedule, services and windows"},
              {"name": "tickets", "description": "issuing, signing in at windows, calling and serving"},
              {"name": "windows", "description": "away and back, closing, heartbeats, hall status, leave, attendance"},
              {"name": "feeds", "description": "live server-sent events (hall display 综合屏)"}],
    )
