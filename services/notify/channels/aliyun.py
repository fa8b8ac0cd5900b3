"""SMS through Alibaba Cloud SMS `SendSms` (dysmsapi.aliyuncs.com, API 2017-05-25), signed with the V3
signature ACS3-HMAC-SHA256.

The signing functions are pure and follow Alibaba Cloud's "V3 request structure and signature" page: the
canonical request (method, URI, RFC 3986 query, the `host`, `content-type` and `x-acs-*` headers sorted, their
names, the body's SHA-256), the string to sign, the HMAC-SHA256 with the AccessKey secret, the Authorization
header. Credentials come from the settings (NOTIFY_SMS__ACCESS_KEY_ID, NOTIFY_SMS__ACCESS_KEY_SECRET,
NOTIFY_SMS__TEMPLATE_CODES = {"<template key>" or "*": "SMS_..."}); the rendered text goes as the template's
one parameter `content`.

The parameters travel in the form body, not the query string, so the phone number never appears in a URL
(URLs get logged by proxies and clients). `OutId` carries the delivery's key: Alibaba echoes it in its
receipts, so a send repeated after a crash can be told apart (`SendSms` takes no idempotency token)."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

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

ALGORITHM = "ACS3-HMAC-SHA256"
HOST = "dysmsapi.aliyuncs.com"
ACTION = "SendSms"
VERSION = "2017-05-25"
FORM = "application/x-www-form-urlencoded"
# codes worth trying again: flow control on a number (isv.BUSINESS_LIMIT_CONTROL), throttling, Alibaba's faults
TRANSIENT_CODES = frozenset({"isv.BUSINESS_LIMIT_CONTROL", "ServiceUnavailable", "InternalError", "isp.SYSTEM_ERROR"})
WHO = "aliyun sms"


def percent_encode(value: str) -> str:
    """RFC 3986 over UTF-8: unreserved characters kept, everything else %XX (a space is %20, `*` is %2A)."""
    return quote(value, safe="-_.~")


def acs3_canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))


def acs3_canonical_request(*, method: str, canonical_uri: str, query: Mapping[str, str],
                           headers: Mapping[str, str], hashed_payload: str) -> tuple[str, str]:
    """Step 1: the canonical request and its signed headers (every `x-acs-*`, `host` and `content-type`)."""
    signed = {k.lower(): v.strip() for k, v in headers.items()
              if k.lower().startswith("x-acs-") or k.lower() in ("host", "content-type")}
    names = sorted(signed)
    canonical_headers = "".join(f"{name}:{signed[name]}\n" for name in names)
    signed_headers = ";".join(names)
    canonical = "\n".join([method.upper(), canonical_uri, acs3_canonical_query(query), canonical_headers,
                           signed_headers, hashed_payload])
    return canonical, signed_headers


def acs3_string_to_sign(canonical_request: str) -> str:
    """Step 2: the algorithm and the canonical request's SHA-256, hex."""
    return f"{ALGORITHM}\n{hashlib.sha256(canonical_request.encode('utf-8')).hexdigest()}"


def acs3_signature(access_key_secret: str, string_to_sign: str) -> str:
    """Step 3: HMAC-SHA256 of the string to sign with the AccessKey secret, hex."""
    return hmac.new(access_key_secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def acs3_authorization(*, access_key_id: str, access_key_secret: str, method: str, canonical_uri: str,
                       query: Mapping[str, str], headers: Mapping[str, str], body: bytes) -> str:
    """Step 4: the Authorization header. `headers` must hold `x-acs-content-sha256` = the body's SHA-256."""
    canonical, signed_headers = acs3_canonical_request(
        method=method, canonical_uri=canonical_uri, query=query, headers=headers,
        hashed_payload=hashlib.sha256(body).hexdigest())
    signature = acs3_signature(access_key_secret, acs3_string_to_sign(canonical))
    return f"{ALGORITHM} Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}"


def code_failure(status: int, code: object) -> SendFailure:
    """The failure one of Alibaba's answer codes means."""
    shown = safe_code(code) or "unknown code"
    if isinstance(code, str) and (code in TRANSIENT_CODES or code.startswith("Throttling")):
        return TransientFailure(f"{WHO} answered {status} ({shown})")
    if status >= 300:
        return status_failure(WHO, status, safe_code(code))
    return PermanentFailure(f"{WHO} answered {status} ({shown})")


class AliyunSms:
    """Alibaba Cloud SMS: one `SendSms` call per message."""

    name = "sms"

    def __init__(self, settings: SmsSettings) -> None:
        if not settings.access_key_id or settings.access_key_secret is None:
            raise ValueError("the aliyun SMS provider needs NOTIFY_SMS__ACCESS_KEY_ID and NOTIFY_SMS__ACCESS_KEY_SECRET")
        self.settings = settings
        self.access_key_id: str = settings.access_key_id
        self.access_key_secret = settings.access_key_secret
        base = settings.endpoint or f"https://{HOST}"
        self.url = base if "://" in base else f"https://{base}"
        parts = urlsplit(self.url)
        self.host = parts.netloc
        self.uri = parts.path or "/"
        self.client = httpx.AsyncClient(timeout=settings.timeout_seconds)

    def template_code(self, template_key: str) -> str:
        codes = self.settings.template_codes
        code = codes.get(template_key) or codes.get("*")
        if not code:
            raise PermanentFailure(f"{WHO}: no TemplateCode for template {template_key!r} (NOTIFY_SMS__TEMPLATE_CODES)")
        return code

    async def send(self, message: Message) -> Accepted:
        params = {
            "PhoneNumbers": mainland_mobile(message),
            "SignName": self.settings.sign_name,
            "TemplateCode": self.template_code(message.template_key),
            "TemplateParam": json.dumps({"content": message.body}, ensure_ascii=False),
            "OutId": message.idempotency_key,
        }
        body = acs3_canonical_query(params).encode("ascii")
        headers = {
            "host": self.host,
            "content-type": FORM,
            "x-acs-action": ACTION,
            "x-acs-version": VERSION,
            # Alibaba refuses a date 15 minutes off its own clock
            "x-acs-date": wall_now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "x-acs-signature-nonce": uuid.uuid4().hex,
            "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
        }
        headers["Authorization"] = acs3_authorization(
            access_key_id=self.access_key_id, access_key_secret=self.access_key_secret.get_secret_value(),
            method="POST", canonical_uri=self.uri, query={}, headers=headers, body=body)
        try:
            response = await self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise transport_failure(WHO, exc) from None
        answer = json_or_none(response)
        code = answer.get("Code") if isinstance(answer, dict) else None
        if response.is_success and code == "OK" and isinstance(answer, dict):
            provider_id = answer.get("BizId") or answer.get("RequestId")
            return Accepted(provider_id=str(provider_id) if provider_id else None)
        if code is None:
            if not response.is_success:
                raise status_failure(WHO, response.status_code)
            raise TransientFailure(f"{WHO} answered {response.status_code} without a Code")
        raise code_failure(response.status_code, code)

    async def aclose(self) -> None:
        await self.client.aclose()
