"""The one interface every channel adapter implements, and the two ways a send can fail.

A channel gets a `Message` whose address was opened (unsealed) just for this call and must not keep, log or
put it in an error text; it returns what the provider accepted it as (`Accepted.provider_id`), or raises
`TransientFailure` (try again later: a timeout, a 5xx, a 429, a refused connection) or `PermanentFailure`
(trying again cannot help: a 4xx that names the request, a bad address). Each adapter sends
`Message.idempotency_key` wherever its provider takes one, so a retry after a process died mid-send is
recognised by the provider instead of sent twice."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Message:
    delivery_id: int
    idempotency_key: str
    channel: str
    template_key: str
    address: str = field(repr=False)  # phone number, e-mail address or URL, opened for this send only
    subject: str | None
    body: str
    params: dict[str, Any] = field(default_factory=dict)  # webhook: the JSON document; sms: template params
    secret: str | None = field(default=None, repr=False)  # webhook: the signing secret, opened for this send


@dataclass(frozen=True)
class Accepted:
    provider_id: str | None


class SendFailure(Exception):
    """A send that did not go through; the text must never hold the address or a secret."""


class TransientFailure(SendFailure):
    """Worth trying again later."""


class PermanentFailure(SendFailure):
    """Trying again cannot help: the delivery goes to the dead letters at once."""


class Channel(Protocol):
    name: str  # sms | email | webhook

    async def send(self, message: Message) -> Accepted: ...

    async def aclose(self) -> None: ...
