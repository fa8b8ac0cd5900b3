"""The identity service (统一身份认证): staff sign-in, refresh tokens, device keys, accounts; it signs every token."""

from contextlib import AsyncExitStack

from fastapi import FastAPI

from services.identity import credentials
from services.identity.config import Settings, get_settings
from services.identity.router import admin_router, public_router, router
from shared.app import create_service_app
from shared.clock import Clock


async def _prepare_dummy_hash(app: FastAPI, stack: AsyncExitStack) -> None:
    # made before the first request, so an unknown user's first attempt costs what every other one does
    credentials.dummy_hash()


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        settings, clock=clock, on_startup=[_prepare_dummy_hash],
        title="Hall identity service",
        description="统一身份认证: logins, refresh tokens, device keys, users and roles; signs every access token.",
        routers=[router, admin_router, public_router],
        tags=[{"name": "auth", "description": "sign-in (also at a window terminal), refresh, sign-out, device-key "
                                              "exchange"},
              {"name": "admin", "description": "users, their photos, and device keys (centre and system admins)"},
              {"name": "public", "description": "what the window screens show of the staff at the windows (no token)"}],
    )
