"""The notify service. Notifications: recipients, subscriptions, templates, deliveries (SMS, e-mail, webhooks, feeds)."""

from fastapi import FastAPI

from services.notify.config import Settings, get_settings
from shared.app import create_service_app
from shared.clock import Clock


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    return create_service_app(
        settings or get_settings(), clock=clock,
        title="Hall notify service",
        description="Notifications: recipients, subscriptions, templates, deliveries (SMS, e-mail, webhooks, feeds).",
    )
