"""The queue service (排队叫号): centres, hall schedule, services, windows, tickets, appointments."""

from fastapi import FastAPI

from services.queue.calendar_router import router as calendar_router
from services.queue.config import Settings, get_settings
from services.queue.router import router
from shared.app import create_service_app
from shared.clock import Clock


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    return create_service_app(
        settings or get_settings(), clock=clock,
        title="Hall queue service",
        description="排队叫号: centres, hall schedule, services, windows, tickets, appointments, evaluations.",
        routers=[router, calendar_router],
        tags=[{"name": "centers", "description": "service halls (政务服务中心)"}],
    )
