"""The monitor service. 电子监察: alerts, findings, sanctions, complaints, KPIs, window scores."""

from fastapi import FastAPI

from services.monitor.config import Settings, get_settings
from services.monitor.consumers import CONSUMERS
from services.monitor.router import router as centers_router
from shared.app import create_service_app
from shared.clock import Clock
from shared.events.deadletters import dead_letters_router, handler_registry


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        settings, clock=clock,
        title="Hall monitor service",
        description="电子监察: alerts, findings, sanctions, complaints, KPIs, window scores.",
        routers=[centers_router, dead_letters_router(handler_registry(settings.service_name, CONSUMERS))],
        tags=[{"name": "centers", "description": "centres (政务服务中心): read copy of the queue service's"},
              {"name": "dead letters", "description": "events a consumer could not apply, and their replay"}],
    )
