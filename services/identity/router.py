"""HTTP endpoints of the identity service (through the gateway: /api/auth/...)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from services.identity import repository, service
from services.identity.models import DeviceKey, User
from services.identity.schemas import (
    DeviceKeyCreated,
    DeviceKeyIn,
    DeviceKeyOut,
    KeyExchangeIn,
    LoginIn,
    PasswordIn,
    RefreshIn,
    TokenOut,
    UserChange,
    UserIn,
    UserOut,
)
from shared.auth import Principal, Role, require
from shared.db import SessionDep
from shared.errors import NotFound, problem

router = APIRouter(tags=["auth"])
admin_router = APIRouter(tags=["admin"])
Admin = Annotated[Principal, Depends(require(Role.SYSTEM_ADMIN, Role.CENTER_ADMIN))]
_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"description": "wrong credentials, or a spent, revoked or expired token or key"}}


def _context(request: Request) -> service.Context:
    return service.Context(settings=request.app.state.settings, pii=request.app.state.pii)


ContextDep = Annotated[service.Context, Depends(_context)]


def _refused(code: str, detail: str) -> JSONResponse:
    # returned, not raised: the unit of work still commits what the failure wrote (a failed attempt,
    # a revoked family)
    return problem(401, code, detail, headers={"WWW-Authenticate": "Bearer", "Cache-Control": "no-store"})


@router.post("/login", response_model=TokenOut, responses=_UNAUTHORIZED)
async def login(body: LoginIn, session: SessionDep, ctx: ContextDep, response: Response) -> TokenOut | JSONResponse:
    """Sign in with a username and password: an access token and a refresh token."""
    tokens = await service.login(ctx, session, body.username, body.password.get_secret_value())
    if tokens is None:
        return _refused("invalid_credentials", "wrong username or password (用户名或密码错误)")
    response.headers["Cache-Control"] = "no-store"
    return tokens


@router.post("/refresh", response_model=TokenOut, responses=_UNAUTHORIZED)
async def refresh(body: RefreshIn, session: SessionDep, ctx: ContextDep,
                  response: Response) -> TokenOut | JSONResponse:
    """Spend a refresh token for a new access token and a new refresh token."""
    tokens = await service.refresh(ctx, session, body.refresh_token.get_secret_value())
    if tokens is None:
        return _refused("invalid_refresh_token", "the refresh token is not valid; sign in again")
    response.headers["Cache-Control"] = "no-store"
    return tokens


@router.post("/logout", status_code=204)
async def logout(body: RefreshIn, session: SessionDep, ctx: ContextDep) -> Response:
    """End the sign-in a refresh token belongs to."""
    await service.logout(ctx, session, body.refresh_token.get_secret_value())
    return Response(status_code=204)


@router.post("/token", response_model=TokenOut, responses=_UNAUTHORIZED)
async def exchange_key(body: KeyExchangeIn, session: SessionDep, ctx: ContextDep,
                       response: Response) -> TokenOut | JSONResponse:
    """Exchange a device key (kiosk, display, evaluator, terminal) for a short-lived token."""
    tokens = await service.exchange_device_key(ctx, session, body.key.get_secret_value())
    if tokens is None:
        return _refused("invalid_key", "the device key is not valid")
    response.headers["Cache-Control"] = "no-store"
    return tokens


async def _user(user_id: str, session: SessionDep, admin: Admin) -> User:
    user = await repository.get_user(session, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist", field="user_id")
    service.check_may_manage(admin, user.role, list(user.centers))
    return user


UserDep = Annotated[User, Depends(_user)]


@admin_router.post("/users", status_code=201, response_model=UserOut)
async def create_user(body: UserIn, session: SessionDep, ctx: ContextDep, admin: Admin) -> User:
    """Create a user (a centre admin for their own centres); publishes user.upserted."""
    return await service.create_user(ctx, session, body, admin)


@admin_router.get("/users", response_model=list[UserOut])
async def list_users(session: SessionDep, admin: Admin) -> list[User]:
    """The users of the caller's centres (every user for a system admin)."""
    return await repository.list_users(session, None if admin.spans_all_centers else admin.centers)


@admin_router.get("/users/{user_id}", response_model=UserOut)
async def get_user(user: UserDep) -> User:
    """One user."""
    return user


@admin_router.put("/users/{user_id}", response_model=UserOut)
async def update_user(body: UserChange, user: UserDep, session: SessionDep, ctx: ContextDep, admin: Admin) -> User:
    """Change a user's profile, centres, department and contacts; publishes user.upserted."""
    return await service.update_user(ctx, session, user, body, admin)


@admin_router.put("/users/{user_id}/password", status_code=204)
async def set_password(body: PasswordIn, user: UserDep, session: SessionDep, admin: Admin) -> Response:
    """Set a new password; every sign-in of the user ends."""
    await service.set_password(session, user, body.password.get_secret_value(), admin)
    return Response(status_code=204)


@admin_router.post("/users/{user_id}/deactivate", response_model=UserOut)
async def deactivate_user(user: UserDep, session: SessionDep, ctx: ContextDep, admin: Admin) -> User:
    """Deactivate a user: no more sign-ins; publishes user.upserted (inactive) and user.deactivated."""
    return await service.deactivate_user(ctx, session, user, admin)


async def _device_key(key_id: str, session: SessionDep, admin: Admin) -> DeviceKey:
    device = await repository.get_device_key(session, key_id)
    if device is None:
        raise NotFound(f"device key {key_id} does not exist", field="key_id")
    admin.check_center(device.center_id)
    return device


DeviceKeyDep = Annotated[DeviceKey, Depends(_device_key)]


@admin_router.post("/device-keys", status_code=201, response_model=DeviceKeyCreated)
async def create_device_key(body: DeviceKeyIn, session: SessionDep, ctx: ContextDep, admin: Admin,
                            response: Response) -> DeviceKeyCreated:
    """Create a device key; the key is in this answer only."""
    device, key = await service.create_device_key(ctx, session, body, admin)
    response.headers["Cache-Control"] = "no-store"
    return DeviceKeyCreated(**DeviceKeyOut.model_validate(device).model_dump(), key=key)


@admin_router.get("/device-keys", response_model=list[DeviceKeyOut])
async def list_device_keys(session: SessionDep, admin: Admin) -> list[DeviceKey]:
    """The device keys of the caller's centres (never the keys themselves)."""
    return await repository.list_device_keys(session, None if admin.spans_all_centers else admin.centers)


@admin_router.post("/device-keys/{key_id}/revoke", response_model=DeviceKeyOut)
async def revoke_device_key(device: DeviceKeyDep, session: SessionDep, admin: Admin) -> DeviceKey:
    """Revoke a device key: its next exchange fails; its live tokens end at their expiry."""
    return await service.revoke_device_key(session, device, admin)
