"""The notify service. Notifications: recipients, subscriptions, templates, deliveries (SMS, e-mail, webhooks, feeds)."""

from contextlib import AsyncExitStack

from fastapi import FastAPI

from services.notify.config import Settings, get_settings
from services.notify.consumers import CONSUMERS
from services.notify.deliveries_router import router as deliveries_router
from services.notify.feeds import feeds_router, notify_feed
from services.notify.recipients import router as recipients_router
from services.notify.router import router as centers_router
from services.notify.templates_router import router as templates_router
from shared.app import create_service_app
from shared.clock import Clock
from shared.events.deadletters import dead_letters_router, handler_registry


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or get_settings()
    feed = notify_feed(settings)

    async def start_feed(app: FastAPI, stack: AsyncExitStack) -> None:
        await feed.start()
        stack.push_async_callback(feed.stop)

    return create_service_app(
        settings, clock=clock, on_startup=[start_feed],
        title="Hall notify service",
        description="Notifications: recipients, subscriptions, templates, deliveries (SMS, e-mail, webhooks, feeds).",
        routers=[centers_router, recipients_router, templates_router, deliveries_router, feeds_router(feed),
                 dead_letters_router(handler_registry(settings.service_name, CONSUMERS))],
        tags=[{"name": "centers", "description": "centres (政务服务中心): read copy of the queue service's"},
              {"name": "recipients", "description": "webhook endpoints and extra addresses, and their subscriptions"},
              {"name": "templates", "description": "the messages' templates (Chinese defaults), validated on save"},
              {"name": "deliveries", "description": "every message sent, with its attempts; failed ones and their replay"},
              {"name": "feeds", "description": "live feeds of a department, the supervision office, a window"},
              {"name": "dead letters", "description": "events a consumer could not apply, and their replay"}],
    )
