"""`/recipients` and `/subscriptions`: what an admin adds (webhook endpoints, extra addresses such as the
supervision office's mailbox) and which events each gets; `subscribers()` is the planner's look-up.

A recipient belongs to one centre, or to every centre (center_id None: only a system admin makes or changes
one). Its address (a webhook URL, an e-mail address, a mobile number) and a webhook's signing secret are
stored sealed for notify (shared.pii.seal) and opened only at send time; answers show the address masked (a
URL as its host and path, without query or credentials) and never the secret. A webhook created without a
secret gets a generated one, shown once, in the 201 answer.

A subscription: event types (exact types of the catalog, or a prefix such as `case.*` matching one at least),
a centre and a channel, which is the recipient's kind. A recipient of a centre subscribes to that centre's
events only (center_id must be its centre); a recipient of every centre subscribes to one centre's events, or
with center_id None to every centre's (and to the events that name no centre). One subscription per recipient,
centre and channel.

Who: the centre's admins and the system admin write; the centre's supervisors and hall managers read.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

import shared.events.catalog  # noqa: F401 - fills the registry of event types a subscription names
from services.notify.models import Recipient, Subscription
from shared import clock
from shared.auth import Principal, Role, require
from shared.db import SessionDep
from shared.errors import AppError, Conflict, Forbidden, NotFound
from shared.events.envelope import registry
from shared.pii import PersonalDataError, mask_email, mask_phone, normalize_email, normalize_phone

router = APIRouter(tags=["recipients"])

CENTER = r"^[A-Za-z0-9]{2,32}$"
Kind = Literal["webhook", "email", "sms"]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
CenterId = Annotated[str, StringConstraints(pattern=CENTER)]
Address = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
Secret = Annotated[SecretStr, Field(min_length=16, max_length=200,
                                    description="webhook only: the HMAC-SHA256 signing secret")]
EventPattern = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MASKED_MAX = 300  # recipients.address_masked

Writer = Annotated[Principal, Depends(require(Role.CENTER_ADMIN, Role.SYSTEM_ADMIN))]
Reader = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.HALL_MANAGER, Role.CENTER_ADMIN,
                                              Role.SYSTEM_ADMIN))]


class Invalid(AppError):
    """A value of the right type that is no valid address, secret or subscription: 422 naming its field."""

    status, code = 422, "validation_failed"


# --- schemas -------------------------------------------------------------------------------------------------

class RecipientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    name: Name = Field(examples=["监察室邮箱"])
    center_id: CenterId | None = Field(None, description="the centre; none: every centre (system admin only)")
    address: Address = Field(description="webhook: an http(s) URL; email: an e-mail address; sms: a mobile number")
    secret: Secret | None = Field(None, description="webhook only; when absent one is generated and shown once")


class RecipientChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    address: Address | None = None
    secret: Secret | None = None
    active: bool | None = None


class RecipientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: Kind
    name: str
    center_id: str | None
    address_masked: str
    has_secret: bool
    active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, recipient: Recipient) -> RecipientOut:
        return cls.model_validate({**{k: getattr(recipient, k) for k in (
            "id", "kind", "name", "center_id", "address_masked", "active", "created_at", "updated_at")},
            "has_secret": recipient.secret_sealed is not None})


class RecipientCreated(RecipientOut):
    secret: str | None = Field(None, description="the generated webhook secret: shown in this answer only")


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient_id: int = Field(ge=1)
    event_types: list[EventPattern] = Field(min_length=1, max_length=50, examples=[["sanction.*", "alert.raised"]])
    center_id: CenterId | None = Field(None, description="the centre whose events; none: every centre's (only for "
                                                         "a recipient of every centre)")
    channel: Kind = Field(description="the recipient's kind")

    @field_validator("event_types")
    @classmethod
    def _known_types(cls, patterns: list[str]) -> list[str]:
        known = event_types()
        for pattern in patterns:
            if pattern.endswith(".*"):
                prefix = pattern[:-1]
                if len(prefix) < 2 or not any(t.startswith(prefix) for t in known):
                    raise ValueError(f"{pattern!r} matches no event type of the catalog")
            elif pattern not in known:
                raise ValueError(f"{pattern!r} is not an event type of the catalog (or a prefix such as 'case.*')")
        return list(dict.fromkeys(patterns))


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    recipient_id: int
    event_types: list[str]
    center_id: str | None
    channel: Kind
    created_at: datetime


def event_types() -> frozenset[str]:
    """Every event type of the registry (shared.events.envelope)."""
    return frozenset(event_type for event_type, _ in registry)


# --- addresses -----------------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f]")


def parse_address(kind: str, raw: str) -> tuple[str, str]:
    """(the address normalized, its masked form) for a recipient of `kind`; Invalid naming `address` else.
    No message here holds the address: it is personal data (a phone, a mailbox) or may hold a token."""
    if kind == "webhook":
        return _webhook_url(raw.strip())
    try:
        if kind == "email":
            email = normalize_email(raw)
            return email, mask_email(email)
        phone = normalize_phone(raw)
        return phone, mask_phone(phone)
    except PersonalDataError as exc:
        raise Invalid(f"address: {exc.reason}", field="address") from None


def _webhook_url(url: str) -> tuple[str, str]:
    if _UNSAFE.search(url):
        raise Invalid("address: a webhook URL may not contain spaces or control characters", field="address")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Invalid("address: not a valid URL (its host or port)", field="address") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise Invalid("address: a webhook URL must start with http:// or https://", field="address")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise Invalid("address: a webhook URL may not carry credentials (user:password@); the request is "
                      "signed with the secret instead", field="address")
    host = parts.hostname
    if not host:
        raise Invalid("address: a webhook URL needs a host", field="address")
    if parts.fragment:
        raise Invalid("address: a webhook URL has no #fragment", field="address")
    shown_host = f"[{host}]" if ":" in host else host
    masked = f"{parts.scheme.lower()}://{shown_host}{f':{port}' if port is not None else ''}{parts.path or '/'}"
    if len(masked) > MASKED_MAX:
        masked = masked[:MASKED_MAX - 1] + "…"
    return url, masked


def _secret_for(kind: str, given: SecretStr | None) -> str | None:
    if given is None:
        return None
    if kind != "webhook":
        raise Invalid(f"secret: only a webhook has a signing secret, not an {kind} recipient", field="secret")
    value = given.get_secret_value()
    if _UNSAFE.search(value):
        raise Invalid("secret: may not contain spaces or control characters", field="secret")
    return value


# --- who may see and change what -----------------------------------------------------------------------------

def check_may_write(user: Principal, center_id: str | None) -> None:
    """The centre's admin (or the system admin); a recipient of every centre is the system admin's alone."""
    if center_id is None:
        if user.role != Role.SYSTEM_ADMIN:
            raise Forbidden("a recipient of every centre (no center_id) is the system admin's", field="center_id",
                            code="wrong_center")
        return
    user.check_center(center_id)


def check_may_read(user: Principal, center_id: str | None) -> None:
    if center_id is None:
        if not user.spans_all_centers:
            raise Forbidden("a recipient of every centre is shown to the system admin only", field="center_id",
                            code="wrong_center")
        return
    user.check_center(center_id)


async def _load(session: AsyncSession, recipient_id: int, *, for_update: bool = False) -> Recipient:
    recipient = await session.get(Recipient, recipient_id, with_for_update=for_update)
    if recipient is None:
        raise NotFound(f"recipient {recipient_id} does not exist", field="recipient_id")
    return recipient


def _seal(request: Request, value: str) -> str:
    sealed: str = request.app.state.pii.seal_for_notify(value)  # settings.hall.notify_seal_public_key
    return sealed


# --- recipients ----------------------------------------------------------------------------------------------

@router.post("/recipients", status_code=201, response_model=RecipientCreated)
async def create_recipient(body: RecipientIn, request: Request, session: SessionDep, user: Writer
                           ) -> RecipientCreated:
    """A webhook endpoint or an extra address; a webhook's generated secret is in this answer only."""
    check_may_write(user, body.center_id)
    address, masked = parse_address(body.kind, body.address)
    secret = _secret_for(body.kind, body.secret)
    generated = None
    if body.kind == "webhook" and secret is None:
        secret = generated = secrets.token_urlsafe(32)
    now = clock.now()
    recipient = Recipient(kind=body.kind, name=body.name, center_id=body.center_id, address_masked=masked,
                          address_sealed=_seal(request, address),
                          secret_sealed=_seal(request, secret) if secret is not None else None,
                          active=True, created_at=now, updated_at=now)
    session.add(recipient)
    await session.flush()
    return RecipientCreated.model_validate({**RecipientOut.of(recipient).model_dump(), "secret": generated})


@router.get("/recipients", response_model=list[RecipientOut])
async def list_recipients(session: SessionDep, user: Reader,
                          center_id: Annotated[str | None, Query(pattern=CENTER)] = None,
                          kind: Annotated[Kind | None, Query()] = None) -> list[RecipientOut]:
    """The recipients of a centre (or, without center_id, of the caller's centres), addresses masked."""
    stmt = select(Recipient).order_by(Recipient.id)
    if center_id is not None:
        user.check_center(center_id)
        stmt = stmt.where(Recipient.center_id == center_id)
    elif not user.spans_all_centers:
        stmt = stmt.where(Recipient.center_id.in_(user.centers))
    if kind is not None:
        stmt = stmt.where(Recipient.kind == kind)
    return [RecipientOut.of(r) for r in (await session.scalars(stmt)).all()]


@router.get("/recipients/{recipient_id}", response_model=RecipientOut)
async def get_recipient(recipient_id: int, session: SessionDep, user: Reader) -> RecipientOut:
    """One recipient, its address masked (never its secret)."""
    recipient = await _load(session, recipient_id)
    check_may_read(user, recipient.center_id)
    return RecipientOut.of(recipient)


@router.patch("/recipients/{recipient_id}", response_model=RecipientOut)
async def change_recipient(recipient_id: int, body: RecipientChange, request: Request, session: SessionDep,
                           user: Writer) -> RecipientOut:
    """Rename, move to another address, rotate the webhook's secret, switch off or on."""
    recipient = await _load(session, recipient_id, for_update=True)
    check_may_write(user, recipient.center_id)
    if body.address is not None:
        address, recipient.address_masked = parse_address(recipient.kind, body.address)
        recipient.address_sealed = _seal(request, address)
    secret = _secret_for(recipient.kind, body.secret)
    if secret is not None:
        recipient.secret_sealed = _seal(request, secret)
    if body.name is not None:
        recipient.name = body.name
    if body.active is not None:
        recipient.active = body.active
    recipient.updated_at = clock.now()
    await session.flush()
    return RecipientOut.of(recipient)


# --- subscriptions -------------------------------------------------------------------------------------------

@router.post("/subscriptions", status_code=201, response_model=SubscriptionOut)
async def create_subscription(body: SubscriptionIn, session: SessionDep, user: Writer) -> Subscription:
    """Send the recipient these event types of a centre (or of every centre) on its channel."""
    recipient = await _load(session, body.recipient_id, for_update=True)  # one at a time per recipient
    check_may_write(user, recipient.center_id)
    if body.channel != recipient.kind:
        raise Invalid(f"channel: a {recipient.kind} recipient is reached on the {recipient.kind} channel, "
                      f"not {body.channel}", field="channel", code="channel_mismatch")
    if recipient.center_id is not None and body.center_id != recipient.center_id:
        raise Invalid(f"center_id: a recipient of centre {recipient.center_id} subscribes to that centre's "
                      "events only", field="center_id", code="center_mismatch")
    existing = await session.scalar(select(Subscription.id).where(
        Subscription.recipient_id == recipient.id, Subscription.channel == body.channel,
        Subscription.center_id.is_not_distinct_from(body.center_id)))
    if existing is not None:
        raise Conflict(f"recipient {recipient.id} has subscription {existing} for this centre and channel already: "
                       "delete it first", field="center_id", code="subscription_exists", subscription_id=existing)
    subscription = Subscription(recipient_id=recipient.id, event_types=body.event_types,
                                center_id=body.center_id, channel=body.channel, created_at=clock.now())
    session.add(subscription)
    try:
        await session.flush()
    except IntegrityError as exc:  # cannot happen while the recipient is locked; kept as the table's rule
        raise Conflict("this subscription exists already", field="center_id", code="subscription_exists") from exc
    return subscription


@router.get("/subscriptions", response_model=list[SubscriptionOut])
async def list_subscriptions(session: SessionDep, user: Reader,
                             recipient_id: Annotated[int | None, Query(ge=1)] = None,
                             center_id: Annotated[str | None, Query(pattern=CENTER)] = None) -> list[Subscription]:
    """Subscriptions of a recipient or a centre (or of the caller's centres' recipients)."""
    stmt = select(Subscription).join(Recipient, Recipient.id == Subscription.recipient_id).order_by(Subscription.id)
    if recipient_id is not None:
        check_may_read(user, (await _load(session, recipient_id)).center_id)
        stmt = stmt.where(Subscription.recipient_id == recipient_id)
    if center_id is not None:
        user.check_center(center_id)
        stmt = stmt.where(Subscription.center_id == center_id)
    if not user.spans_all_centers:
        stmt = stmt.where(Recipient.center_id.in_(user.centers))
    return list((await session.scalars(stmt)).all())


@router.delete("/subscriptions/{subscription_id}", status_code=204)
async def delete_subscription(subscription_id: int, session: SessionDep, user: Writer) -> Response:
    """Stop sending the recipient these events."""
    subscription = await session.get(Subscription, subscription_id)
    if subscription is None:
        raise NotFound(f"subscription {subscription_id} does not exist", field="subscription_id")
    check_may_write(user, (await _load(session, subscription.recipient_id)).center_id)
    await session.delete(subscription)
    await session.flush()
    return Response(status_code=204)


# --- the planner's look-up -----------------------------------------------------------------------------------

def _patterns_matching(event_type: str) -> list[str]:
    """The subscription entries that match `event_type`: itself and each of its prefixes (`a.*`, `a.b.*`)."""
    parts = event_type.split(".")
    return [event_type, *(".".join(parts[:i]) + ".*" for i in range(1, len(parts)))]


async def subscribers(session: AsyncSession, event_type: str, center_id: str | None) -> list[tuple[Recipient, str]]:
    """The active recipients subscribed to `event_type` (exactly or by prefix) for `center_id` (a subscription
    of every centre matches any centre, and an event of no centre), each with its channel, in one query."""
    centre: ColumnElement[bool] = Subscription.center_id.is_(None)
    if center_id is not None:
        centre = or_(centre, Subscription.center_id == center_id)
    stmt = (select(Recipient, Subscription.channel)
            .join(Subscription, Subscription.recipient_id == Recipient.id)
            .where(Recipient.active, centre, Subscription.event_types.overlap(_patterns_matching(event_type)))
            .order_by(Recipient.id, Subscription.channel))
    seen: set[tuple[int, str]] = set()
    found: list[tuple[Recipient, str]] = []
    for recipient, channel in (await session.execute(stmt)).all():
        if (recipient.id, channel) not in seen:  # a recipient of every centre may have both scopes
            seen.add((recipient.id, channel))
            found.append((recipient, channel))
    return found
