"""Webhooks: a signed JSON POST to a subscriber's URL, and the check a receiver runs on it.

What a receiver gets::

    POST <your URL>
    Content-Type: application/json
    X-Hall-Timestamp: 1767225600                   # Unix seconds when it was sent
    X-Hall-Signature: sha256=<64 hex digits>       # HMAC-SHA256(secret, "<timestamp>." + body)
    Idempotency-Key: 5f0c...                       # the same on every retry of this message
    X-Hall-Delivery: 1234                          # the delivery's id, for support requests

    {"type": "...", ...}                           # the message as compact UTF-8 JSON

How to verify (before parsing the body):

1. Take the raw body bytes exactly as received (do not re-serialise the parsed JSON) and the
   `X-Hall-Timestamp` header.
2. Compute `HMAC-SHA256(secret, timestamp + "." + body)` in hex, where `secret` is the signing secret you
   registered with the endpoint, and compare it with the part of `X-Hall-Signature` after `sha256=` in
   constant time (`hmac.compare_digest`, `crypto.timingSafeEqual`, `MessageDigest.isEqual`).
3. Refuse a timestamp more than 5 minutes away from your clock, older or newer: a captured request replayed
   later then fails, because the timestamp is inside the signature.
4. Answer 2xx quickly once the message is stored. The same message may arrive again (a retry after a
   timeout or a lost answer) with the same `Idempotency-Key`: keep the keys you have seen and ignore a
   repeat (keep them for days: retries run for hours, and a replay from the dead letters reuses the key). A 408, 429 or 5xx, or no answer within the timeout (10 seconds by default), is retried
   with exponential backoff; a 410 Gone or any other 4xx, or a redirect, is not retried (the message goes
   to the dead letters, from where the hall can replay it).

In Python, `verify_signature(secret, timestamp, body, signature, now=time.time())` of this module does
steps 2 and 3."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from urllib.parse import urlsplit

import aiohttp

from services.notify.channels.base import Accepted, Message, PermanentFailure, TransientFailure
from services.notify.channels.sms import status_failure
from shared.clock import wall_now

SCHEME = "sha256="
WHO = "webhook"


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """The `X-Hall-Signature` value: `sha256=` and HMAC-SHA256(secret, f"{timestamp}." + body) in hex."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def verify_signature(secret: str, timestamp: int | str, body: bytes, header: str | None, *,
                     now: datetime | float, tolerance_seconds: float = 300) -> bool:
    """Whether `header` (the X-Hall-Signature value) signs `body` at `timestamp` (the X-Hall-Timestamp value)
    with `secret`, and the timestamp is within `tolerance_seconds` of `now` (an aware datetime or Unix
    seconds), before or after. Compares in constant time."""
    if header is None:
        return False
    stamp = str(timestamp).strip()
    if not stamp.isascii() or not stamp.isdigit():
        return False
    current = now.timestamp() if isinstance(now, datetime) else float(now)
    if abs(current - int(stamp)) > tolerance_seconds:
        return False
    return hmac.compare_digest(signature(secret, stamp, body).encode("ascii"), header.strip().encode("utf-8"))


class Webhook:
    """POSTs `message.params` as JSON to `message.address`, signed with `message.secret`.

    On aiohttp rather than the httpx of the SMS adapters: webhooks are the one channel with volume (every
    subscribed event, unthrottled), and with 50 requests in flight httpx's pool managed a few hundred
    requests a second on a core where aiohttp's does thousands (`make bench-notify` prints both)."""

    name = "webhook"

    def __init__(self, *, timeout_seconds: float = 10.0, max_connections: int = 100) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # made on first use, inside the running loop (aiohttp binds a session to it); one pool for every
        # endpoint, connections kept alive, so a busy endpoint costs no handshake per message
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout, connector=aiohttp.TCPConnector(limit=self.max_connections),
                skip_auto_headers=("User-Agent",), headers={"User-Agent": "hall-notify"})
        return self._session

    async def send(self, message: Message) -> Accepted:
        parts = urlsplit(message.address)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PermanentFailure(f"{WHO}: the address is not an http(s) URL")
        if not message.secret:
            raise PermanentFailure(f"{WHO}: the endpoint has no signing secret")
        try:
            body = json.dumps(message.params, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except (TypeError, ValueError):
            raise PermanentFailure(f"{WHO}: the message is not a JSON document") from None
        timestamp = int(wall_now().timestamp())  # the receiver compares it with its own clock, never a simulated one
        headers = {
            "Content-Type": "application/json",
            "X-Hall-Timestamp": str(timestamp),
            "X-Hall-Signature": signature(message.secret, timestamp, body),
            "Idempotency-Key": message.idempotency_key,
            "X-Hall-Delivery": str(message.delivery_id),
        }
        try:
            # a redirect is not followed: the subscriber registers the URL that answers
            async with self._client().post(message.address, data=body, headers=headers,
                                           allow_redirects=False) as response:
                status = response.status
                answer_bytes = await response.read()
        except TimeoutError:
            raise TransientFailure(f"{WHO}: timed out") from None
        except (aiohttp.ClientError, OSError) as exc:  # the exception's own text is not repeated: it names the URL
            raise TransientFailure(f"{WHO}: no answer ({type(exc).__name__})") from None
        if not 200 <= status < 300:
            raise status_failure(WHO, status)
        try:
            answer = json.loads(answer_bytes)
        except ValueError:
            answer = None
        provider_id = answer.get("id") if isinstance(answer, dict) else None
        return Accepted(provider_id=str(provider_id) if provider_id not in (None, "") else message.idempotency_key)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
