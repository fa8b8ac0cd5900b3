"""The monitor service. 电子监察: alerts, findings, sanctions, complaints, KPIs, window scores."""

from contextlib import AsyncExitStack

from fastapi import Depends, FastAPI

from services.monitor.complaints.router import router as complaints_router
from services.monitor.config import Settings, get_settings
from services.monitor.consumers import CONSUMERS
from services.monitor.feeds import alerts_feed, alerts_filter, alerts_viewer
from services.monitor.hall.router import router as hall_router
from services.monitor.reports_router import router as reports_router
from services.monitor.router import router as centers_router
from services.monitor.supervision_router import router as supervision_router
from shared.app import create_service_app
from shared.clock import Clock
from shared.events.deadletters import dead_letters_router, handler_registry


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or get_settings()
    feed = alerts_feed(settings)

    async def start_feed(app: FastAPI, stack: AsyncExitStack) -> None:
        await feed.start()
        stack.push_async_callback(feed.stop)

    return create_service_app(
        settings, clock=clock, on_startup=[start_feed],
        title="Hall monitor service",
        description="电子监察: alerts, findings, sanctions, complaints, KPIs, window scores.",
        routers=[centers_router, supervision_router, hall_router, complaints_router, reports_router,
                 feed.router("/feeds/alerts", alerts_filter, dependencies=[Depends(alerts_viewer)]),
                 dead_letters_router(handler_registry(settings.service_name, CONSUMERS))],
        tags=[{"name": "centers", "description": "centres (政务服务中心): read copy of the queue service's"},
              {"name": "supervision", "description": "电子监察: alerts, findings, sanctions (警告, 通报批评), settings"},
              {"name": "feeds", "description": "the supervision office's live feed of alerts, findings, sanctions"},
              {"name": "dead letters", "description": "events a consumer could not apply, and their replay"}],
    )
