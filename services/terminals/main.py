"""The terminals' pages (终端页面): the kiosk, the hall display, the window screens and the public pages,
served under /ui by the gateway. Server-rendered Jinja2 with a little plain JavaScript; every asset is
served from here; no database (the pages call the services' APIs from the browser)."""

from fastapi import FastAPI

from services.terminals.config import Settings, get_settings
from services.terminals.pages import router
from shared.app import create_service_app
from shared.clock import Clock


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        settings, clock=clock, database=False,
        title="Hall terminals",
        description="终端页面: kiosk, hall display, window screens and the public pages (HTML, no token to load).",
        routers=[router],
        tags=[{"name": "pages", "description": "the screens' pages, their QR codes and assets"}],
    )
