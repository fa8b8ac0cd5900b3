"""The cases service. 办件: departments, item catalogue, calendar, cases and their legal clock."""

from fastapi import FastAPI

from services.cases.config import Settings, get_settings
from shared.app import create_service_app
from shared.clock import Clock


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    return create_service_app(
        settings or get_settings(), clock=clock,
        title="Hall cases service",
        description="办件: departments, item catalogue, calendar, cases and their legal clock.",
    )
