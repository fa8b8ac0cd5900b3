"""SMS through a generic JSON provider over HTTP (the local development provider speaks it too), and the HTTP
failure mapping every HTTP adapter of notify shares.

The request: `POST <NOTIFY_SMS__URL>` with `Authorization: Bearer <token>` (when a token is set),
`Idempotency-Key: <key>` and the JSON document
`{"to": "13800000000", "text": "...", "sign_name": "...", "template_key": "...", "idempotency_key": "..."}`.
The provider answers 2xx `{"id": "<its message id>"}`; a repeated idempotency key must get the first
message's id back and send nothing new."""

from __future__ import annotations

import re
from typing import Any

import httpx

from services.notify.channels.base import Accepted, Message, PermanentFailure, SendFailure, TransientFailure
from services.notify.config import SmsSettings
from shared.pii import PersonalDataError, normalize_phone

# a provider's error code is safe to repeat in an error text only when it looks like a code
# (`LimitExceeded.PhoneNumberDailyLimit`, `isv.MOBILE_NUMBER_ILLEGAL`) and holds no run of digits a
# phone number could hide in
_CODE_RE = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,79}")
_DIGITS_RE = re.compile(r"\d{5,}")
TRANSIENT_STATUSES = frozenset({408, 429})


def safe_code(value: Any) -> str | None:
    """A provider's error code fit for an error text, or None (never a message text, which may echo the
    number or the request)."""
    if isinstance(value, str) and _CODE_RE.fullmatch(value) and not _DIGITS_RE.search(value):
        return value
    return None


def status_failure(who: str, status: int, code: str | None = None) -> SendFailure:
    """The failure a non-2xx answer means: 408, 429 and 5xx are worth trying again, any other is not."""
    reason = f"{who} answered {status}" + (f" ({code})" if code else "")
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientFailure(reason)
    return PermanentFailure(reason)


def transport_failure(who: str, exc: httpx.HTTPError) -> TransientFailure:
    """A request that got no answer: a timeout or a refused or broken connection, worth trying again. The
    exception's own text is not repeated: it may name the URL."""
    if isinstance(exc, httpx.TimeoutException):
        return TransientFailure(f"{who}: timed out ({type(exc).__name__})")
    return TransientFailure(f"{who}: no answer ({type(exc).__name__})")


def json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def mainland_mobile(message: Message) -> str:
    """The 11-digit number an SMS goes to; a bad one is a permanent failure that does not repeat it."""
    try:
        return normalize_phone(message.address)
    except PersonalDataError:
        raise PermanentFailure("sms: the address is not a mainland mobile number") from None


class GenericSms:
    """The generic JSON SMS provider (`dev` and `generic`)."""

    name = "sms"

    def __init__(self, settings: SmsSettings) -> None:
        self.settings = settings
        self.client = httpx.AsyncClient(timeout=settings.timeout_seconds)

    async def send(self, message: Message) -> Accepted:
        to = mainland_mobile(message)
        headers = {"Idempotency-Key": message.idempotency_key}
        if self.settings.token is not None:
            headers["Authorization"] = f"Bearer {self.settings.token.get_secret_value()}"
        document = {"to": to, "text": message.body, "sign_name": self.settings.sign_name,
                    "template_key": message.template_key, "idempotency_key": message.idempotency_key}
        try:
            response = await self.client.post(self.settings.url, json=document, headers=headers)
        except httpx.HTTPError as exc:
            raise transport_failure("sms provider", exc) from None
        answer = json_or_none(response)
        if not response.is_success:
            code = safe_code(answer.get("code") or answer.get("error")) if isinstance(answer, dict) else None
            raise status_failure("sms provider", response.status_code, code)
        if not isinstance(answer, dict) or answer.get("id") in (None, ""):
            # accepted or not, we cannot tell: trying again with the same key is what is safe
            raise TransientFailure(f"sms provider answered {response.status_code} without an id")
        return Accepted(provider_id=str(answer["id"]))

    async def aclose(self) -> None:
        await self.client.aclose()
