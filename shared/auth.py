"""Who is calling: Ed25519-signed JWTs from the gateway, their expiry checked against real wall time.

Services only verify; the gateway (and `python -m shared.tokens` for development) signs. Every
endpoint takes `CurrentUser`, or `require(Role.X, ...)`, and checks the centre / department it touches
with `Principal.check_center` / `check_department`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import Depends, Request

from shared import clock
from shared.errors import Forbidden, Unauthorized

ALGORITHM = "EdDSA"
LEEWAY = timedelta(seconds=5)


class Role(StrEnum):
    KIOSK = "kiosk"
    DISPLAY = "display"
    EVALUATOR = "evaluator"
    TERMINAL = "terminal"  # a window terminal (窗口终端): bound to a centre and a window
    CLERK = "clerk"
    CHIEF_REP = "chief_rep"
    HALL_MANAGER = "hall_manager"
    SUPERVISOR = "supervisor"
    CENTER_ADMIN = "center_admin"
    SYSTEM_ADMIN = "system_admin"


ALL_CENTERS = "*"


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role
    centers: tuple[str, ...]
    window: str | None = None
    department: str | None = None
    device: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def spans_all_centers(self) -> bool:
        return ALL_CENTERS in self.centers or self.role == Role.SYSTEM_ADMIN

    def check_center(self, center_id: str) -> None:
        """Nobody sees another centre's data unless their role spans centres."""
        if not self.spans_all_centers and center_id not in self.centers:
            raise Forbidden(f"not allowed for centre {center_id}", field="center_id", code="wrong_center")

    def check_department(self, department: str) -> None:
        """Clerks and chief representatives act for their own department (窗口单位) only."""
        if self.role in (Role.CLERK, Role.CHIEF_REP) and self.department != department:
            raise Forbidden(f"not allowed for department {department}", field="department",
                            code="wrong_department")


@dataclass(frozen=True)
class TokenVerifier:
    public_key: str
    issuer: str
    audience: str
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)
    _decode: Callable[[str], dict[str, Any]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # parsed once: handing pyjwt the PEM text would parse it again on every request
        key = serialization.load_pem_public_key(self.public_key.encode())
        if not isinstance(key, Ed25519PublicKey):  # else every token would fail as "invalid", one by one
            raise ValueError(f"the token-verifying key must be an Ed25519 public key, not {type(key).__name__}")
        object.__setattr__(self, "_key", key)
        # a terminal sends the same token for its whole life: check each signature once (~0.2 ms);
        # expiry is still checked on every request below. Failures raise, so they are never cached.
        object.__setattr__(self, "_decode", lru_cache(maxsize=4096)(self._decode_signed))

    def _decode_signed(self, token: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token, self._key, algorithms=[ALGORITHM], audience=self.audience, issuer=self.issuer,
                # expiry and not-before are checked below, on every call (this decode is cached)
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                         "require": ["exp", "sub", "role", "iat"]},
            )
        except jwt.InvalidSignatureError as exc:
            raise Unauthorized("token signature is invalid", field="Authorization", code="invalid_token") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"token is invalid: {exc}", field="Authorization", code="invalid_token") from exc

    def verify(self, token: str) -> Principal:
        claims = self._decode(token)
        # wall time, not the business clock: Envoy checks the same `exp` at the edge and cannot read a
        # simulated or fixed clock, so a fresh token must stay fresh whatever the hall's "now" is
        now = clock.wall_now()
        if datetime.fromtimestamp(claims["exp"], now.tzinfo) + LEEWAY <= now:
            raise Unauthorized("token has expired", field="Authorization", code="token_expired")
        if "nbf" in claims and datetime.fromtimestamp(claims["nbf"], now.tzinfo) - LEEWAY > now:
            raise Unauthorized("token is not valid yet", field="Authorization", code="invalid_token")
        try:
            role = Role(claims["role"])
        except ValueError as exc:
            raise Unauthorized(f"unknown role {claims['role']!r}", field="Authorization",
                               code="invalid_token") from exc
        centers = claims.get("centers") or []
        if isinstance(centers, str):
            centers = [centers]
        return Principal(subject=str(claims["sub"]), role=role, centers=tuple(centers),
                         window=claims.get("window"), department=claims.get("department"),
                         device=claims.get("device"), claims=claims)


def mint_token(private_key_pem: str, *, subject: str, role: Role | str, centers: list[str] | None = None,
               window: str | None = None, department: str | None = None, device: str | None = None,
               ttl: timedelta = timedelta(minutes=15), issuer: str = "hall-gateway", audience: str = "hall",
               issued_at: datetime | None = None) -> str:
    """Sign a token (the gateway's job; also the dev-token command and tests); `iat` and `exp` in wall time."""
    iat = issued_at or clock.wall_now()
    claims: dict[str, Any] = {
        "sub": subject, "role": str(Role(role)), "centers": centers or [], "iat": int(iat.timestamp()),
        "exp": int((iat + ttl).timestamp()), "iss": issuer, "aud": audience, "jti": uuid.uuid4().hex,
    }
    for name, value in (("window", window), ("department", department), ("device", device)):
        if value is not None:
            claims[name] = value
    return jwt.encode(claims, private_key_pem, algorithm=ALGORITHM)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("Authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'", field="Authorization", code="invalid_token")
    return token.strip()


FEED_TOKEN_PARAM = "access_token"


async def optional_principal(request: Request) -> Principal | None:
    return _principal(request, _bearer(request))


async def feed_optional_principal(request: Request) -> Principal | None:
    """For feed routes only: a browser's EventSource cannot send headers, so `?access_token=` also counts
    (the header wins when both are sent). Ordinary routes never read the query for a token."""
    token = _bearer(request)
    if token is None:
        token = request.query_params.get(FEED_TOKEN_PARAM) or None
    return _principal(request, token)


def _principal(request: Request, token: str | None) -> Principal | None:
    if token is None:
        return None
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = verifier.verify(token)
    request.state.principal = principal
    return principal


async def current_principal(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if principal is None:
        raise Unauthorized("a bearer token is required", field="Authorization", code="missing_token")
    return principal


async def current_feed_principal(principal: Annotated[Principal | None, Depends(feed_optional_principal)]
                                 ) -> Principal:
    if principal is None:
        raise Unauthorized("a bearer token (or ?access_token= on a feed) is required", field="Authorization",
                           code="missing_token")
    return principal


OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
CurrentUser = Annotated[Principal, Depends(current_principal)]
CurrentFeedUser = Annotated[Principal, Depends(current_feed_principal)]


def require(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting only the given roles: `Depends(require(Role.CENTER_ADMIN))`."""
    allowed = set(roles)

    async def _check(principal: CurrentUser) -> Principal:
        if principal.role not in allowed:
            raise Forbidden(f"role {principal.role} may not do this; needs one of "
                            f"{', '.join(sorted(allowed))}", code="wrong_role")
        return principal

    return _check
