"""SMS through Tencent Cloud SMS `SendSms` (API 2021-01-11), signed with TC3-HMAC-SHA256 (signature v3).

The signing functions are pure and follow Tencent's "Signature v3" page step by step: canonical request,
string to sign, the derived key HMAC chain, the Authorization header. Credentials come from the settings
(NOTIFY_SMS__ACCESS_KEY_ID = SecretId, NOTIFY_SMS__ACCESS_KEY_SECRET = SecretKey, NOTIFY_SMS__SDK_APP_ID,
NOTIFY_SMS__REGION, NOTIFY_SMS__TEMPLATE_CODES = {"<template key>" or "*": "<TemplateId>"}).

Tencent's `SendSms` takes no idempotency token: `SessionContext` carries the delivery's key, which Tencent
echoes in its status callbacks, so a send repeated after a crash can be told apart, not prevented."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from services.notify.channels.base import Accepted, Message, PermanentFailure, SendFailure, TransientFailure
from services.notify.channels.sms import (
    json_or_none,
    mainland_mobile,
    safe_code,
    status_failure,
    transport_failure,
)
from services.notify.config import SmsSettings
from shared.clock import wall_now

ALGORITHM = "TC3-HMAC-SHA256"
HOST = "sms.tencentcloudapi.com"
SERVICE = "sms"
ACTION = "SendSms"
VERSION = "2021-01-11"
CONTENT_TYPE = "application/json; charset=utf-8"
SIGNED_HEADERS = "content-type;host"
# error codes worth trying again: rate limits (a number's or the account's) and Tencent's own faults
TRANSIENT_PREFIXES = ("LimitExceeded", "RequestLimitExceeded", "InternalError")
WHO = "tencent sms"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def utc_date(timestamp: int) -> str:
    """The credential scope's date: the UTC date of X-TC-Timestamp (not the local one: 00:44 in Beijing on
    the 26th is still the 25th)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def tc3_canonical_request(*, host: str, payload: bytes, content_type: str = CONTENT_TYPE,
                          method: str = "POST", uri: str = "/", query: str = "") -> str:
    """Step 1: method, URI, query, the two signed headers (lower-case, sorted), their names, the body's hash."""
    canonical_headers = f"content-type:{content_type.strip().lower()}\nhost:{host.strip().lower()}\n"
    return "\n".join([method, uri, query, canonical_headers, SIGNED_HEADERS, hashlib.sha256(payload).hexdigest()])


def tc3_string_to_sign(canonical_request: str, *, timestamp: int, service: str) -> str:
    """Step 2: algorithm, timestamp, credential scope (date/service/tc3_request), the canonical request's hash."""
    scope = f"{utc_date(timestamp)}/{service}/tc3_request"
    return "\n".join([ALGORITHM, str(timestamp), scope,
                      hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()])


def tc3_signature(secret_key: str, string_to_sign: str, *, timestamp: int, service: str) -> str:
    """Step 3: the key derived from the SecretKey by date, service and "tc3_request" signs the string."""
    secret_date = _hmac(f"TC3{secret_key}".encode(), utc_date(timestamp))
    secret_signing = _hmac(_hmac(secret_date, service), "tc3_request")
    return hmac.new(secret_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def tc3_authorization(*, secret_id: str, secret_key: str, service: str, host: str, timestamp: int,
                      payload: bytes, content_type: str = CONTENT_TYPE, uri: str = "/") -> str:
    """Step 4: the Authorization header of a POST of `payload` to `host` at `timestamp`."""
    canonical = tc3_canonical_request(host=host, payload=payload, content_type=content_type, uri=uri)
    signature = tc3_signature(secret_key, tc3_string_to_sign(canonical, timestamp=timestamp, service=service),
                              timestamp=timestamp, service=service)
    return (f"{ALGORITHM} Credential={secret_id}/{utc_date(timestamp)}/{service}/tc3_request, "
            f"SignedHeaders={SIGNED_HEADERS}, Signature={signature}")


def code_failure(code: object) -> SendFailure:
    """The failure one of Tencent's error codes means."""
    shown = safe_code(code) or "unknown code"
    if isinstance(code, str) and code.startswith(TRANSIENT_PREFIXES):
        return TransientFailure(f"{WHO}: {shown}")
    return PermanentFailure(f"{WHO}: {shown}")


class TencentSms:
    """Tencent Cloud SMS: one `SendSms` call per message, to one `+86` number, with the rendered text as the
    approved template's one parameter."""

    name = "sms"

    def __init__(self, settings: SmsSettings) -> None:
        if not (settings.access_key_id and settings.access_key_secret and settings.sdk_app_id):
            raise ValueError("the tencent SMS provider needs NOTIFY_SMS__ACCESS_KEY_ID, "
                             "NOTIFY_SMS__ACCESS_KEY_SECRET and NOTIFY_SMS__SDK_APP_ID")
        self.settings = settings
        self.secret_id = settings.access_key_id
        self.secret_key = settings.access_key_secret
        base = settings.endpoint or f"https://{HOST}"
        self.url = base if "://" in base else f"https://{base}"
        parts = urlsplit(self.url)
        self.host = parts.netloc
        self.uri = parts.path or "/"
        self.client = httpx.AsyncClient(timeout=settings.timeout_seconds)

    def template_id(self, template_key: str) -> str:
        codes = self.settings.template_codes
        template_id = codes.get(template_key) or codes.get("*")
        if not template_id:
            raise PermanentFailure(f"{WHO}: no TemplateId for template {template_key!r} (NOTIFY_SMS__TEMPLATE_CODES)")
        return template_id

    async def send(self, message: Message) -> Accepted:
        phone = mainland_mobile(message)
        document = {
            "PhoneNumberSet": [f"+86{phone}"],
            "SmsSdkAppId": self.settings.sdk_app_id,
            "SignName": self.settings.sign_name,
            "TemplateId": self.template_id(message.template_key),
            "TemplateParamSet": [message.body],
            "SessionContext": message.idempotency_key,
        }
        payload = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp = int(wall_now().timestamp())  # Tencent refuses a timestamp 5 minutes off its own clock
        headers = {
            "Authorization": tc3_authorization(
                secret_id=self.secret_id, secret_key=self.secret_key.get_secret_value(), service=SERVICE,
                host=self.host, timestamp=timestamp, payload=payload, uri=self.uri),
            "Content-Type": CONTENT_TYPE,
            "Host": self.host,
            "X-TC-Action": ACTION,
            "X-TC-Version": VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self.settings.region,
        }
        try:
            response = await self.client.post(self.url, content=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise transport_failure(WHO, exc) from None
        answer = json_or_none(response)
        body = answer.get("Response") if isinstance(answer, dict) else None
        if not response.is_success:
            error = body.get("Error") if isinstance(body, dict) else None
            raise status_failure(WHO, response.status_code, safe_code(error.get("Code")) if isinstance(error, dict)
                                 else None)
        if not isinstance(body, dict):
            raise TransientFailure(f"{WHO} answered {response.status_code} without a Response")
        error = body.get("Error")
        if isinstance(error, dict):
            raise code_failure(error.get("Code"))
        statuses = body.get("SendStatusSet")
        if not isinstance(statuses, list) or not statuses or not isinstance(statuses[0], dict):
            raise TransientFailure(f"{WHO} answered {response.status_code} without a SendStatusSet")
        status = statuses[0]
        if status.get("Code") != "Ok":
            raise code_failure(status.get("Code"))
        provider_id = status.get("SerialNo") or body.get("RequestId")
        return Accepted(provider_id=str(provider_id) if provider_id else None)

    async def aclose(self) -> None:
        await self.client.aclose()
