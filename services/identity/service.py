"""Business rules of the identity service: sign-in (also at a window terminal), refresh rotation, device keys,
accounts and their photos. Never commits.

Failures that must leave a trace (a wrong password, a reused refresh token) return None instead of
raising, so that the request's unit of work still commits what they wrote; the router answers 401.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity import credentials, repository
from services.identity.config import Settings
from services.identity.models import DeviceKey, LoginFailure, RefreshToken, User, UserPhoto
from services.identity.schemas import (
    DEPARTMENT_BOUND_ROLES,
    WINDOW_STAFF_ROLES,
    DeviceKeyIn,
    TokenOut,
    UserChange,
    UserIn,
)
from shared import clock
from shared.auth import Principal, Role, mint_token
from shared.errors import AppError, BadRequest, Conflict, Forbidden, Unauthorized
from shared.events.catalog import UserDeactivated, UserUpserted
from shared.events.outbox import publish
from shared.pii import PersonalData, PersonalDataError

PRODUCER = "identity"


@dataclass(frozen=True)
class Context:
    """What the rules need besides the session: the settings (keys, lifetimes) and the personal-data keys."""

    settings: Settings
    pii: PersonalData


# --- tokens --------------------------------------------------------------------------------------------

def _access_token(ctx: Context, *, subject: str, role: str, centers: list[str], ttl: timedelta,
                  window: str | None = None, department: str | None = None, device: str | None = None) -> str:
    hall = ctx.settings.hall
    return mint_token(ctx.settings.jwt_private_key.get_secret_value(), subject=subject, role=role, centers=centers,
                      window=window, department=department, device=device, ttl=ttl, issuer=hall.jwt_issuer,
                      audience=hall.jwt_audience, issued_at=clock.wall_now())


@dataclass(frozen=True)
class Terminal:
    """The window terminal (窗口终端) a person signs in at: its device key, centre and window."""

    device: str
    center_id: str
    window: str


async def terminal_of(session: AsyncSession, token: Principal) -> Terminal:
    """The terminal a bearer token on a sign-in names: a live terminal key's token, or refused.

    Checked against the key itself, so that a revoked terminal starts no new sign-in even while its last
    token lives (its own requests still pass until that token's expiry, the bound for every device)."""
    if token.role != Role.TERMINAL:
        raise Forbidden(f"a {token.role} token does not bind a sign-in to a window: only a window terminal's does",
                        field="Authorization", code="not_a_terminal")
    device = await repository.get_device_key(session, token.device) if token.device else None
    if (device is None or device.revoked_at is not None or device.window is None or device.window != token.window
            or (device.center_id,) != token.centers):
        raise Unauthorized("the terminal's token is not one of a live terminal key", field="Authorization",
                           code="invalid_terminal")
    return Terminal(device=device.id, center_id=device.center_id, window=device.window)


def check_may_sign_in_at(user: User, terminal: Terminal) -> None:
    """Only clerks and chief representatives sign in at a window, and only at one of their own centres."""
    if user.role not in WINDOW_STAFF_ROLES:
        raise Forbidden(f"a {user.role} does not sign in at a window terminal", field="role", code="wrong_role")
    if terminal.center_id not in user.centers:
        raise Forbidden(f"the terminal belongs to centre {terminal.center_id}, not to one of the user's",
                        field="center_id", code="wrong_center")


def _user_access_token(ctx: Context, user: User, terminal: Terminal | None) -> str:
    # at a terminal the token is narrowed to its centre: window names are only unique within a centre
    return _access_token(ctx, subject=user.id, role=user.role,
                         centers=[terminal.center_id] if terminal else list(user.centers),
                         department=user.department, window=terminal.window if terminal else None,
                         device=terminal.device if terminal else None,
                         ttl=timedelta(minutes=ctx.settings.access_token_minutes))


def _issue_refresh(ctx: Context, session: AsyncSession, user: User, family_id: str,
                   terminal: Terminal | None) -> str:
    token = credentials.new_refresh_token()
    now = clock.wall_now()
    session.add(RefreshToken(id=credentials.new_id(), family_id=family_id, user_id=user.id,
                             token_hash=ctx.pii.keyed_hash("refresh_token", token), issued_at=now,
                             expires_at=now + timedelta(hours=ctx.settings.refresh_token_hours),
                             device_id=terminal.device if terminal else None,
                             center_id=terminal.center_id if terminal else None,
                             window=terminal.window if terminal else None))
    return token


def _session_tokens(ctx: Context, session: AsyncSession, user: User, family_id: str,
                    terminal: Terminal | None) -> TokenOut:
    return TokenOut(access_token=_user_access_token(ctx, user, terminal),
                    expires_in=ctx.settings.access_token_minutes * 60,
                    refresh_token=_issue_refresh(ctx, session, user, family_id, terminal),
                    refresh_expires_in=ctx.settings.refresh_token_hours * 3600)


async def login(ctx: Context, session: AsyncSession, username: str, password: str,
                terminal: Terminal | None = None) -> TokenOut | None:
    """Sign in; None (one argon2 verification on every path) for an unknown user, a wrong password,
    a locked or deactivated account, so that none of them can be told apart. At a `terminal` the
    person's token carries its window and device; who may sign in there is checked only once the
    password is right, so that a 403 never answers a wrong one."""
    user = await repository.user_by_username(session, username)
    if user is None:
        credentials.verify_password(credentials.dummy_hash(), password)
        return None
    now = clock.wall_now()
    since = now - timedelta(minutes=ctx.settings.lockout_minutes)
    locked = await repository.recent_failures(session, user.id, since) >= ctx.settings.lockout_failures
    if not credentials.verify_password(user.password_hash, password):
        session.add(LoginFailure(user_id=user.id, failed_at=now))
        return None
    if locked or not user.active:
        return None
    if terminal is not None:
        check_may_sign_in_at(user, terminal)
    await repository.clear_failures(session, user.id)
    if credentials.needs_rehash(user.password_hash):
        user.password_hash = credentials.hash_password(password)
    return _session_tokens(ctx, session, user, family_id=credentials.new_id(), terminal=terminal)


async def refresh(ctx: Context, session: AsyncSession, refresh_token: str) -> TokenOut | None:
    """Rotate: the token is spent and a new one of the same family issued. A spent or revoked token
    presented again means it was stolen: the whole family is revoked and None returned. A sign-in made
    at a terminal keeps its window, and ends (family revoked) once the terminal's key is revoked or the
    user no longer belongs to the terminal's centre."""
    stored = await repository.refresh_token_by_hash(session, ctx.pii.keyed_hash("refresh_token", refresh_token))
    if stored is None:
        return None
    now = clock.wall_now()
    if stored.used_at is not None or stored.revoked_at is not None:
        await repository.revoke_family(session, stored.family_id, now)
        return None
    if stored.expires_at <= now:
        return None
    user = await repository.get_user(session, stored.user_id)
    if user is None or not user.active:
        return None
    terminal = _terminal_of_family(stored)
    if terminal is not None and not await _still_at_terminal(session, terminal, user):
        await repository.revoke_family(session, stored.family_id, now)
        return None
    stored.used_at = now
    return _session_tokens(ctx, session, user, family_id=stored.family_id, terminal=terminal)


def _terminal_of_family(stored: RefreshToken) -> Terminal | None:
    """The terminal a sign-in was made at (None for a plain one), as its refresh tokens keep it."""
    if stored.device_id is None or stored.center_id is None or stored.window is None:
        return None
    return Terminal(device=stored.device_id, center_id=stored.center_id, window=stored.window)


async def _still_at_terminal(session: AsyncSession, terminal: Terminal, user: User) -> bool:
    """A sign-in at a terminal lasts while the terminal's key is live and the user belongs to its centre."""
    device = await repository.get_device_key(session, terminal.device)
    return device is not None and device.revoked_at is None and terminal.center_id in user.centers


async def logout(ctx: Context, session: AsyncSession, refresh_token: str) -> None:
    """End the sign-in the token belongs to (its whole family); unknown tokens change nothing."""
    stored = await repository.refresh_token_by_hash(session, ctx.pii.keyed_hash("refresh_token", refresh_token))
    if stored is not None:
        await repository.revoke_family(session, stored.family_id, clock.wall_now())


async def exchange_device_key(ctx: Context, session: AsyncSession, key: str) -> TokenOut | None:
    """A device key for a short-lived token; a revoked key is refused from the moment it is revoked."""
    device = await repository.live_device_key_by_hash(session, ctx.pii.keyed_hash("device_key", key))
    if device is None:
        return None
    token = _access_token(ctx, subject=f"device:{device.id}", role=device.role, centers=[device.center_id],
                          window=device.window, device=device.id,
                          ttl=timedelta(minutes=ctx.settings.device_token_minutes))
    return TokenOut(access_token=token, expires_in=ctx.settings.device_token_minutes * 60)


# --- accounts --------------------------------------------------------------------------------------------

def check_may_manage(actor: Principal | None, role: str, centers: list[str]) -> None:
    """A system admin manages everyone; a centre admin the clerks, representatives, managers, supervisors
    and centre admins of their own centres only. `actor` None is the installation CLI."""
    if actor is None or actor.role == Role.SYSTEM_ADMIN:
        return
    if role == Role.SYSTEM_ADMIN or "*" in centers:
        raise Forbidden("only a system admin manages system admins", field="role", code="wrong_role")
    for center in centers:
        actor.check_center(center)


def _contacts(ctx: Context, user: User, email: str | None, phone: str | None) -> None:
    try:
        e = ctx.pii.email(email) if email else None
        p = ctx.pii.phone(phone) if phone else None
    except PersonalDataError as exc:
        raise BadRequest(str(exc), field=exc.field, code="invalid_contact") from exc
    user.email_masked, user.email_encrypted = (e["masked"], e["encrypted"]) if e else (None, None)
    user.phone_masked, user.phone_encrypted = (p["masked"], p["encrypted"]) if p else (None, None)


async def create_user(ctx: Context, session: AsyncSession, data: UserIn, actor: Principal | None) -> User:
    check_may_manage(actor, data.role, data.centers)
    if await repository.user_by_username(session, data.username) is not None:
        raise Conflict(f"user {data.username} already exists", field="username", code="user_exists")
    now = clock.now()
    user = User(id=credentials.new_id(), username=data.username, display_name=data.display_name,
                post_title=data.post_title, photo_url=None, role=data.role, centers=list(data.centers),
                department=data.department, password_hash=credentials.hash_password(data.password.get_secret_value()),
                active=True, created_at=now, updated_at=now)
    _contacts(ctx, user, data.email, data.phone)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # the same name created at the same instant by another request
        raise Conflict(f"user {data.username} already exists", field="username", code="user_exists") from exc
    await _publish_user(ctx, session, user, data.email, data.phone)
    return user


async def update_user(ctx: Context, session: AsyncSession, user: User, data: UserChange,
                      actor: Principal | None) -> User:
    check_may_manage(actor, user.role, list(user.centers))
    check_may_manage(actor, user.role, data.centers)
    if user.role in DEPARTMENT_BOUND_ROLES and not data.department:
        raise BadRequest(f"a {user.role} is bound to a department: department is required", field="department")
    if user.role not in DEPARTMENT_BOUND_ROLES and data.department:
        raise BadRequest(f"a {user.role} has no department", field="department")
    user.display_name, user.post_title = data.display_name, data.post_title
    user.centers, user.department = list(data.centers), data.department
    _contacts(ctx, user, data.email, data.phone)
    user.updated_at = clock.now()
    await session.flush()  # the row lock orders concurrent changes' events as the changes
    await _publish_user(ctx, session, user, data.email, data.phone)
    return user


async def set_password(session: AsyncSession, user: User, password: str, actor: Principal | None) -> None:
    """A new password (an admin's reset); every sign-in of the user ends."""
    check_may_manage(actor, user.role, list(user.centers))
    user.password_hash = credentials.hash_password(password)
    user.updated_at = clock.now()
    await repository.clear_failures(session, user.id)
    await repository.revoke_user_tokens(session, user.id, clock.wall_now())


async def deactivate_user(ctx: Context, session: AsyncSession, user: User, actor: Principal | None) -> User:
    """No more sign-ins or refreshes; live access tokens end at their expiry (access_token_minutes)."""
    check_may_manage(actor, user.role, list(user.centers))
    if not user.active:
        return user
    user.active = False
    user.updated_at = clock.now()
    await repository.revoke_user_tokens(session, user.id, clock.wall_now())
    await session.flush()
    await _publish_user(ctx, session, user, _decrypted(ctx, user.email_encrypted),
                        _decrypted(ctx, user.phone_encrypted))
    await publish(session, PRODUCER, UserDeactivated(id=user.id), subject=user.id, center_id=None)
    return user


def _decrypted(ctx: Context, encrypted: str | None) -> str | None:
    return ctx.pii.decrypt(encrypted) if encrypted else None


async def _publish_user(ctx: Context, session: AsyncSession, user: User, email: str | None,
                        phone: str | None) -> None:
    event = UserUpserted(
        id=user.id, display_name=user.display_name, post_title=user.post_title, photo_url=user.photo_url,
        role=user.role, centers=list(user.centers), department=user.department, active=user.active,
        email_masked=user.email_masked, phone_masked=user.phone_masked,
        email_sealed=ctx.pii.email(email)["sealed_for_notify"] if email else None,
        phone_sealed=ctx.pii.phone(phone)["sealed_for_notify"] if phone else None,
    )
    await publish(session, PRODUCER, event, subject=user.id, center_id=None)


# --- photos -----------------------------------------------------------------------------------------------

# what each accepted type's file starts with: the declared type must be what the bytes are
PHOTO_SIGNATURES = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}


class UnsupportedPhotoType(AppError):
    status, code = 415, "unsupported_photo_type"


class PhotoTooLarge(AppError):
    status, code = 413, "photo_too_large"


class InvalidPhoto(AppError):
    status, code = 422, "invalid_photo"


def check_photo_type(content_type: str) -> None:
    if content_type not in PHOTO_SIGNATURES:
        raise UnsupportedPhotoType(f"a photo is {' or '.join(PHOTO_SIGNATURES)}, not {content_type or 'untyped'}",
                                   field="Content-Type")


def check_photo_size(ctx: Context, size: int) -> None:
    limit = ctx.settings.photo_max_bytes
    if size > limit:
        raise PhotoTooLarge(f"a photo is at most {limit} bytes ({limit / 1024 / 1024:g} MiB)", field="body",
                            limit=limit)


def photo_url(ctx: Context, user_id: str, sha256: str) -> str:
    """The public photo route through the gateway, versioned by the image's hash: a new photo is a new URL,
    so a screen's cached copy (max-age) never hides it."""
    return f"{ctx.settings.public_prefix}/public/users/{user_id}/photo?v={sha256[:16]}"


async def set_photo(ctx: Context, session: AsyncSession, user: User, content_type: str, content: bytes,
                    actor: Principal | None) -> UserPhoto:
    """Store the user's photo (JPEG or PNG, checked by its first bytes); publishes user.upserted with the
    new photo URL. The same image again changes nothing and publishes nothing."""
    check_may_manage(actor, user.role, list(user.centers))
    check_photo_type(content_type)
    check_photo_size(ctx, len(content))
    if not content.startswith(PHOTO_SIGNATURES[content_type]):
        raise InvalidPhoto(f"the body is not a {content_type.removeprefix('image/').upper()} image",
                           field="body")
    await repository.lock_user(session, user)
    sha256 = hashlib.sha256(content).hexdigest()
    photo = await repository.get_photo(session, user.id)
    url = photo_url(ctx, user.id, sha256)
    if photo is not None and photo.sha256 == sha256 and photo.content_type == content_type and user.photo_url == url:
        return photo
    now = clock.now()
    if photo is None:
        photo = UserPhoto(user_id=user.id)
        session.add(photo)
    photo.content_type, photo.content, photo.size, photo.sha256 = content_type, content, len(content), sha256
    photo.updated_at = now
    user.photo_url, user.updated_at = url, now
    await session.flush()
    await _publish_user(ctx, session, user, _decrypted(ctx, user.email_encrypted),
                        _decrypted(ctx, user.phone_encrypted))
    return photo


async def delete_photo(ctx: Context, session: AsyncSession, user: User, actor: Principal | None) -> None:
    """The user has no photo afterwards; publishes user.upserted (no photo URL) if they had one."""
    check_may_manage(actor, user.role, list(user.centers))
    await repository.lock_user(session, user)
    deleted = await repository.delete_photo(session, user.id)
    if not deleted and user.photo_url is None:
        return
    user.photo_url, user.updated_at = None, clock.now()
    await session.flush()
    await _publish_user(ctx, session, user, _decrypted(ctx, user.email_encrypted),
                        _decrypted(ctx, user.phone_encrypted))


# --- device keys ------------------------------------------------------------------------------------------

async def create_device_key(ctx: Context, session: AsyncSession, data: DeviceKeyIn,
                            actor: Principal | None) -> tuple[DeviceKey, str]:
    """A new key; the key itself is returned this once and only its keyed hash is kept."""
    if actor is not None:
        actor.check_center(data.center_id)
    if data.role not in {r.value for r in Role}:
        raise Conflict(f"role {data.role} is not yet one the services accept", field="role",
                       code="role_unsupported")
    key = credentials.new_device_key()
    device = DeviceKey(id=credentials.new_id(), role=data.role, center_id=data.center_id, window=data.window,
                       label=data.label, key_prefix=key[:10], key_hash=ctx.pii.keyed_hash("device_key", key),
                       created_at=clock.now())
    session.add(device)
    await session.flush()
    return device, key


async def revoke_device_key(session: AsyncSession, device: DeviceKey, actor: Principal | None) -> DeviceKey:
    """Its next exchange fails; its live tokens end at their expiry (device_token_minutes), and so do the
    sign-ins made at it (a revoked terminal), at their next refresh."""
    if actor is not None:
        actor.check_center(device.center_id)
    if device.revoked_at is None:
        device.revoked_at = clock.now()
    return device
