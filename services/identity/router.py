"""HTTP endpoints of the identity service (through the gateway: /api/auth/...)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from services.identity import repository, service
from services.identity.models import DeviceKey, User, UserPhoto
from services.identity.schemas import (
    WINDOW_STAFF_ROLES,
    DeviceKeyCreated,
    DeviceKeyIn,
    DeviceKeyOut,
    KeyExchangeIn,
    LoginIn,
    PasswordIn,
    PhotoOut,
    PublicUserOut,
    RefreshIn,
    TokenOut,
    UserChange,
    UserIn,
    UserOut,
)
from shared.auth import OptionalPrincipal, Principal, Role, require
from shared.db import SessionDep
from shared.errors import NotFound, problem

router = APIRouter(tags=["auth"])
admin_router = APIRouter(tags=["admin"])
public_router = APIRouter(prefix="/public", tags=["public"])
Admin = Annotated[Principal, Depends(require(Role.SYSTEM_ADMIN, Role.CENTER_ADMIN))]
_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"description": "wrong credentials, or a spent, revoked or expired token or key"}}
_AT_TERMINAL: dict[int | str, dict[str, Any]] = {
    401: {"description": "wrong credentials, or a terminal token that is invalid, expired or of a revoked key"},
    403: {"description": "the bearer is not a terminal's token, or the user may not sign in at it (role, centre)"},
}
PHOTO_MAX_AGE = 300  # seconds a window screen keeps a photo; a new photo has a new URL anyway
_PHOTO_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    media_type: {"schema": {"type": "string", "format": "binary"}} for media_type in service.PHOTO_SIGNATURES}}}
_PHOTO_REFUSED: dict[int | str, dict[str, Any]] = {
    413: {"description": "larger than 2 MiB"}, 415: {"description": "not image/jpeg or image/png"},
    422: {"description": "the body is not the image its Content-Type says"}}


async def _context(request: Request) -> service.Context:
    return service.Context(settings=request.app.state.settings, pii=request.app.state.pii)


ContextDep = Annotated[service.Context, Depends(_context)]


def _refused(code: str, detail: str) -> JSONResponse:
    # returned, not raised: the unit of work still commits what the failure wrote (a failed attempt,
    # a revoked family)
    return problem(401, code, detail, headers={"WWW-Authenticate": "Bearer", "Cache-Control": "no-store"})


async def _terminal(bearer: OptionalPrincipal, session: SessionDep) -> service.Terminal | None:
    # the window terminal a sign-in is made at: the one whose token is the bearer (none: a plain sign-in)
    return await service.terminal_of(session, bearer) if bearer is not None else None


TerminalDep = Annotated[service.Terminal | None, Depends(_terminal)]


@router.post("/login", response_model=TokenOut, responses=_AT_TERMINAL)
async def login(body: LoginIn, terminal: TerminalDep, session: SessionDep, ctx: ContextDep,
                response: Response) -> TokenOut | JSONResponse:
    """Sign in with a username and password; at a window terminal, its token as the bearer binds the window."""
    tokens = await service.login(ctx, session, body.username, body.password.get_secret_value(), terminal)
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


async def _photo_content(request: Request, ctx: service.Context) -> bytes:
    # refused as soon as it passes the limit: a larger body is never held in memory
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        service.check_photo_size(ctx, int(declared))
    content = bytearray()
    async for chunk in request.stream():
        content += chunk
        service.check_photo_size(ctx, len(content))
    return bytes(content)


def _etag(photo: UserPhoto) -> str:
    return f'"{photo.sha256}"'


@admin_router.put("/users/{user_id}/photo", response_model=PhotoOut, responses=_PHOTO_REFUSED,
                  openapi_extra=_PHOTO_BODY)
async def set_photo(user: UserDep, request: Request, session: SessionDep, ctx: ContextDep, admin: Admin,
                    response: Response) -> PhotoOut:
    """Upload the user's photo (the raw JPEG or PNG, at most 2 MiB); publishes user.upserted."""
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    service.check_photo_type(content_type)
    photo = await service.set_photo(ctx, session, user, content_type, await _photo_content(request, ctx), admin)
    response.headers["ETag"] = _etag(photo)
    return PhotoOut(photo_url=service.photo_url(ctx, user.id, photo.sha256), content_type=photo.content_type,
                    size=photo.size, etag=_etag(photo), updated_at=photo.updated_at)


@admin_router.delete("/users/{user_id}/photo", status_code=204)
async def delete_photo(user: UserDep, session: SessionDep, ctx: ContextDep, admin: Admin) -> Response:
    """Remove the user's photo (if any); publishes user.upserted when there was one."""
    await service.delete_photo(ctx, session, user, admin)
    return Response(status_code=204)


async def _window_staff(user_id: str, session: SessionDep) -> User:
    # only the people at the windows are shown on their screens; anyone else is unknown here
    user = await repository.get_user(session, user_id)
    if user is None or user.role not in WINDOW_STAFF_ROLES:
        raise NotFound(f"no clerk or chief representative {user_id}", field="user_id")
    return user


WindowStaffDep = Annotated[User, Depends(_window_staff)]


@public_router.get("/users/{user_id}", response_model=PublicUserOut)
async def public_user(user: WindowStaffDep, response: Response) -> PublicUserOut:
    """What a window screen shows of a clerk or chief representative (no token): name, post title, photo."""
    response.headers["Cache-Control"] = "public, max-age=60"
    return PublicUserOut(id=user.id, display_name=user.display_name, post_title=user.post_title,
                         photo_url=user.photo_url if user.active else None, active=user.active)


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


@public_router.get("/users/{user_id}/photo", response_class=Response, responses={
    200: {"content": {media_type: {} for media_type in service.PHOTO_SIGNATURES}, "description": "the photo"},
    304: {"description": "unchanged since the ETag sent in If-None-Match"},
    404: {"description": "no such clerk or chief representative, inactive, or no photo"}})
async def public_photo(user: WindowStaffDep, session: SessionDep, request: Request) -> Response:
    """The photo of a clerk or chief representative for the window screens (no token); 304 when unchanged."""
    photo = await repository.get_photo(session, user.id) if user.active else None
    if photo is not None and _etag_matches(request.headers.get("if-none-match"), _etag(photo)):
        return Response(status_code=304, headers=_photo_headers(photo))
    photo = await repository.photo_with_content(session, user.id) if photo is not None else None
    if photo is None:
        raise NotFound(f"user {user.id} has no photo", field="user_id")
    return Response(photo.content, media_type=photo.content_type,
                    headers=_photo_headers(photo) | {"X-Content-Type-Options": "nosniff"})


def _photo_headers(photo: UserPhoto) -> dict[str, str]:
    return {"ETag": _etag(photo), "Cache-Control": f"public, max-age={PHOTO_MAX_AGE}"}


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
