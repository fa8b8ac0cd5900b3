"""The monitor service. 电子监察: alerts, findings, sanctions, complaints, KPIs, window scores."""

from fastapi import FastAPI

from services.monitor.config import Settings, get_settings
from shared.app import create_service_app
from shared.clock import Clock


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    return create_service_app(
        settings or get_settings(), clock=clock,
        title="Hall monitor service",
        description="电子监察: alerts, findings, sanctions, complaints, KPIs, window scores.",
    )
