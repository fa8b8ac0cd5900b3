"""The notify service. Notifications: recipients, subscriptions, templates, deliveries (SMS, e-mail, webhooks, feeds)."""

from fastapi import FastAPI

from services.notify.config import Settings, get_settings
from services.notify.consumers import CONSUMERS
from services.notify.router import router as centers_router
from shared.app import create_service_app
from shared.clock import Clock
from shared.events.deadletters import dead_letters_router, handler_registry


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        settings, clock=clock,
        title="Hall notify service",
        description="Notifications: recipients, subscriptions, templates, deliveries (SMS, e-mail, webhooks, feeds).",
        routers=[centers_router, dead_letters_router(handler_registry(settings.service_name, CONSUMERS))],
        tags=[{"name": "centers", "description": "centres (政务服务中心): read copy of the queue service's"},
              {"name": "dead letters", "description": "events a consumer could not apply, and their replay"}],
    )
