"""notify's channel adapters against real servers on loopback (tests/notify/receivers.py), the providers'
signing against their documented examples, and the local development provider."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from services.notify.channels.aliyun import (
    AliyunSms,
    acs3_authorization,
    acs3_canonical_request,
    acs3_signature,
    acs3_string_to_sign,
    percent_encode,
)
from services.notify.channels.base import Accepted, Message, PermanentFailure, SendFailure, TransientFailure
from services.notify.channels.email import SmtpEmail
from services.notify.channels.registry import build_channels, close_channels
from services.notify.channels.sms import GenericSms
from services.notify.channels.tencent import (
    TencentSms,
    tc3_authorization,
    tc3_canonical_request,
    tc3_signature,
    tc3_string_to_sign,
    utc_date,
)
from services.notify.channels.webhook import Webhook, signature, verify_signature
from services.notify.config import Settings, SmsSettings, SmtpSettings
from services.notify.devprovider import DevProvider, self_signed_certificate
from shared.clock import wall_now
from shared.devinfra.postgres import free_port
from tests.notify.receivers import HttpReceiver, ReceivedRequest, SmtpReceiver

PHONE = "13812345678"  # never logged: the suite's secret scan fails the run on a mobile number in a log line
PHONE_MASKED = "138****5678"
MAILBOX = "zhang.san@example.cn"
TOKEN = "generic-provider-token-for-tests"
HOOK_SECRET = "webhook-secret-for-tests"


def message(channel: str, address: str, *, body: str = "您的办件已受理，查询码 A1B2C3。", subject: str | None = None,
            params: dict[str, Any] | None = None, secret: str | None = None, key: str | None = None,
            template_key: str = "case_accepted") -> Message:
    return Message(delivery_id=7, idempotency_key=key or str(uuid.uuid4()), channel=channel,
                   template_key=template_key, address=address, subject=subject, body=body,
                   params=params or {}, secret=secret)


def assert_clean(failure: SendFailure) -> None:
    """An error text holds neither the number nor a secret."""
    text = str(failure)
    assert PHONE not in text and PHONE[-8:] not in text
    for secret in (TOKEN, HOOK_SECRET, "tencent-secret-key-for-tests", "aliyun-secret-for-tests"):
        assert secret not in text


# --- Tencent Cloud TC3-HMAC-SHA256: the example of Tencent's "Signature v3" page --------------------------------
# https://cloud.tencent.com/document/api/213/30654 (English: "Signature v3" in every product's API docs): CVM
# DescribeInstances in ap-guangzhou at X-TC-Timestamp 1551113065, with the published canonical request, string to
# sign and signature. The page was later edited to mask its example key as Gu5t9xGARNpq86cd98joQYCN3*******
# (signature 2230eefd...); both versions are checked.

TC3_PAYLOAD = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
TC3_CANONICAL = ("POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
                 "content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064")
TC3_STRING_TO_SIGN = ("TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
                      "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031")


def test_tc3_canonical_request_and_string_to_sign_match_tencents_example() -> None:
    canonical = tc3_canonical_request(host="cvm.tencentcloudapi.com", payload=TC3_PAYLOAD)
    assert canonical == TC3_CANONICAL
    assert tc3_string_to_sign(canonical, timestamp=1551113065, service="cvm") == TC3_STRING_TO_SIGN


@pytest.mark.parametrize(("secret_id", "secret_key", "expected"), [
    ("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
     "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"),
    ("AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******", "Gu5t9xGARNpq86cd98joQYCN3*******",
     "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"),
], ids=["example-key", "masked-example-key"])
def test_tc3_signature_and_authorization_match_tencents_example(secret_id: str, secret_key: str,
                                                                expected: str) -> None:
    assert tc3_signature(secret_key, TC3_STRING_TO_SIGN, timestamp=1551113065, service="cvm") == expected
    assert tc3_authorization(secret_id=secret_id, secret_key=secret_key, service="cvm",
                             host="cvm.tencentcloudapi.com", timestamp=1551113065, payload=TC3_PAYLOAD) == (
        f"TC3-HMAC-SHA256 Credential={secret_id}/2019-02-25/cvm/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={expected}")


def test_tc3_credential_date_is_the_utc_date() -> None:
    # 1551113065 is 2019-02-26 00:44:25 in Beijing: the scope must still say the 25th (the page's own warning)
    assert utc_date(1551113065) == "2019-02-25"


# --- Alibaba Cloud ACS3-HMAC-SHA256: the "Fixed parameter values" example of the V3 signature page ------------
# https://www.alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature: ECS RunInstances
# with AccessKey YourAccessKeyId / YourAccessKeySecret, nonce 3156853299f313e23d1673dc12e1703d, 2023-10-26T10:22:32Z.

ACS3_QUERY = {"ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd", "RegionId": "cn-shanghai"}
ACS3_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
ACS3_HEADERS = {"host": "ecs.cn-shanghai.aliyuncs.com", "x-acs-action": "RunInstances", "x-acs-version": "2014-05-26",
                "x-acs-date": "2023-10-26T10:22:32Z", "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
                "x-acs-content-sha256": ACS3_EMPTY}
ACS3_CANONICAL = (
    "POST\n/\nImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n"
    "host:ecs.cn-shanghai.aliyuncs.com\nx-acs-action:RunInstances\n"
    f"x-acs-content-sha256:{ACS3_EMPTY}\nx-acs-date:2023-10-26T10:22:32Z\n"
    "x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\nx-acs-version:2014-05-26\n\n"
    "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n"
    f"{ACS3_EMPTY}")


def test_acs3_signing_matches_alibabas_example() -> None:
    canonical, signed_headers = acs3_canonical_request(method="POST", canonical_uri="/", query=ACS3_QUERY,
                                                       headers=ACS3_HEADERS, hashed_payload=ACS3_EMPTY)
    assert canonical == ACS3_CANONICAL
    string_to_sign = acs3_string_to_sign(canonical)
    assert string_to_sign == "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    assert acs3_signature("YourAccessKeySecret", string_to_sign) == (
        "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0")
    assert acs3_authorization(access_key_id="YourAccessKeyId", access_key_secret="YourAccessKeySecret",
                              method="POST", canonical_uri="/", query=ACS3_QUERY, headers=ACS3_HEADERS,
                              body=b"") == (
        "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;"
        "x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0")


def test_acs3_percent_encoding_is_rfc3986() -> None:
    assert percent_encode("a b*c~d/é+") == "a%20b%2Ac~d%2F%C3%A9%2B"


# --- the Tencent adapter against a receiver playing the Tencent API ------------------------------------------

def tencent_answer(*, code: str = "Ok", error: str | None = None) -> Any:
    def respond(request: ReceivedRequest, message_id: str) -> tuple[int, Any]:
        if error is not None:
            return 200, {"Response": {"Error": {"Code": error, "Message": f"refused {PHONE}"},
                                      "RequestId": "req-1"}}
        return 200, {"Response": {"SendStatusSet": [{"SerialNo": f"serial-{message_id}", "Code": code,
                                                     "Message": "send success", "PhoneNumber": f"+86{PHONE}"}],
                                  "RequestId": "req-1"}}
    return respond


def tencent_settings(endpoint: str) -> SmsSettings:
    return SmsSettings(provider="tencent", endpoint=endpoint, access_key_id="AKIDtestsecretid",
                       access_key_secret=SecretStr("tencent-secret-key-for-tests"), sdk_app_id="1400006666",
                       sign_name="玄武区政务服务中心", template_codes={"case_accepted": "449739", "*": "100000"})


async def test_tencent_sends_a_signed_send_sms() -> None:
    async with HttpReceiver(respond=tencent_answer()) as api:
        channel = TencentSms(tencent_settings(api.url))
        sms = message("sms", PHONE)
        try:
            accepted = await channel.send(sms)
        finally:
            await channel.aclose()
    assert accepted == Accepted(provider_id="serial-msg-1")
    [request] = api.requests
    headers = request.headers
    assert (request.method, request.path) == ("POST", "/")
    assert headers["x-tc-action"] == "SendSms" and headers["x-tc-version"] == "2021-01-11"
    assert headers["x-tc-region"] == "ap-guangzhou"
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert request.json == {"PhoneNumberSet": [f"+86{PHONE}"], "SmsSdkAppId": "1400006666",
                            "SignName": "玄武区政务服务中心", "TemplateId": "449739",
                            "TemplateParamSet": [sms.body], "SessionContext": sms.idempotency_key}
    auth = re.fullmatch(r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d\d-\d\d)/sms/tc3_request, "
                        r"SignedHeaders=content-type;host, Signature=(?P<sig>[0-9a-f]{64})", headers["authorization"])
    assert auth is not None
    timestamp = int(headers["x-tc-timestamp"])
    assert abs(timestamp - wall_now().timestamp()) < 60
    assert auth["id"] == "AKIDtestsecretid" and auth["date"] == utc_date(timestamp)
    # what the server would compute from what it received: the received Host and body bytes
    canonical = tc3_canonical_request(host=headers["host"], payload=request.body)
    assert auth["sig"] == tc3_signature("tencent-secret-key-for-tests",
                                        tc3_string_to_sign(canonical, timestamp=timestamp, service="sms"),
                                        timestamp=timestamp, service="sms")


async def test_tencent_takes_the_catch_all_template_for_an_unmapped_key() -> None:
    async with HttpReceiver(respond=tencent_answer()) as api:
        channel = TencentSms(tencent_settings(api.url))
        try:
            await channel.send(message("sms", PHONE, template_key="ticket_turn_near"))
        finally:
            await channel.aclose()
    assert api.requests[0].json["TemplateId"] == "100000"


@pytest.mark.parametrize(("answer", "failure"), [
    (tencent_answer(error="LimitExceeded.PhoneNumberDailyLimit"), TransientFailure),
    (tencent_answer(error="InternalError.Timeout"), TransientFailure),
    (tencent_answer(error="RequestLimitExceeded"), TransientFailure),
    (tencent_answer(error="AuthFailure.SignatureFailure"), PermanentFailure),
    (tencent_answer(code="InvalidParameterValue.IncorrectPhoneNumber"), PermanentFailure),
    (tencent_answer(code="LimitExceeded.PhoneNumberThirtySecondLimit"), TransientFailure),
    (tencent_answer(code="FailedOperation.ContainSensitiveWord"), PermanentFailure),
])
async def test_tencent_error_codes_map_to_transient_or_permanent(answer: Any, failure: type[SendFailure]) -> None:
    async with HttpReceiver(respond=answer) as api:
        channel = TencentSms(tencent_settings(api.url))
        try:
            with pytest.raises(SendFailure) as raised:
                await channel.send(message("sms", PHONE))
        finally:
            await channel.aclose()
    assert type(raised.value) is failure
    assert_clean(raised.value)


# --- the Aliyun adapter against a receiver playing the Alibaba Cloud API -------------------------------------

def aliyun_answer(status: int = 200, code: str = "OK") -> Any:
    def respond(request: ReceivedRequest, message_id: str) -> tuple[int, Any]:
        return status, {"Code": code, "Message": "OK" if code == "OK" else f"bad {PHONE}",
                        "BizId": f"biz-{message_id}", "RequestId": "req-1"}
    return respond


def aliyun_settings(endpoint: str) -> SmsSettings:
    return SmsSettings(provider="aliyun", endpoint=endpoint, access_key_id="LTAItestkeyid",
                       access_key_secret=SecretStr("aliyun-secret-for-tests"), sign_name="玄武区政务服务中心",
                       template_codes={"*": "SMS_154950909"})


async def test_aliyun_sends_a_signed_send_sms_with_the_number_in_the_body() -> None:
    async with HttpReceiver(respond=aliyun_answer()) as api:
        channel = AliyunSms(aliyun_settings(api.url))
        sms = message("sms", PHONE)
        try:
            accepted = await channel.send(sms)
        finally:
            await channel.aclose()
    assert accepted == Accepted(provider_id="biz-msg-1")
    [request] = api.requests
    headers = request.headers
    assert (request.method, request.path) == ("POST", "/")
    assert headers["x-acs-action"] == "SendSms" and headers["x-acs-version"] == "2017-05-25"
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True, strict_parsing=True).items()}
    assert form == {"PhoneNumbers": PHONE, "SignName": "玄武区政务服务中心", "TemplateCode": "SMS_154950909",
                    "TemplateParam": json.dumps({"content": sms.body}, ensure_ascii=False),
                    "OutId": sms.idempotency_key}
    assert headers["x-acs-content-sha256"] == hashlib.sha256(request.body).hexdigest()
    auth = re.fullmatch(r"ACS3-HMAC-SHA256 Credential=LTAItestkeyid,SignedHeaders=(?P<names>[a-z0-9;-]+),"
                        r"Signature=(?P<sig>[0-9a-f]{64})", headers["authorization"])
    assert auth is not None
    assert auth["names"] == ("content-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;"
                             "x-acs-signature-nonce;x-acs-version")
    canonical, _ = acs3_canonical_request(
        method="POST", canonical_uri="/", query={}, headers={n: headers[n] for n in auth["names"].split(";")},
        hashed_payload=hashlib.sha256(request.body).hexdigest())
    assert auth["sig"] == acs3_signature("aliyun-secret-for-tests", acs3_string_to_sign(canonical))


@pytest.mark.parametrize(("answer", "failure"), [
    (aliyun_answer(code="isv.BUSINESS_LIMIT_CONTROL"), TransientFailure),
    (aliyun_answer(400, "Throttling.User"), TransientFailure),
    (aliyun_answer(503, "ServiceUnavailable"), TransientFailure),
    (aliyun_answer(code="isv.MOBILE_NUMBER_ILLEGAL"), PermanentFailure),
    (aliyun_answer(400, "SignatureDoesNotMatch"), PermanentFailure),
])
async def test_aliyun_codes_map_to_transient_or_permanent(answer: Any, failure: type[SendFailure]) -> None:
    async with HttpReceiver(respond=answer) as api:
        channel = AliyunSms(aliyun_settings(api.url))
        try:
            with pytest.raises(SendFailure) as raised:
                await channel.send(message("sms", PHONE))
        finally:
            await channel.aclose()
    assert type(raised.value) is failure
    assert_clean(raised.value)


# --- the generic SMS provider ------------------------------------------------------------------------------

async def test_generic_sms_posts_the_generic_format_and_a_repeat_gets_the_first_id() -> None:
    async with HttpReceiver() as provider:
        channel = GenericSms(SmsSettings(provider="generic", url=f"{provider.url}/sms", token=SecretStr(TOKEN),
                                         sign_name="玄武区政务服务中心"))
        sms = message("sms", f"+86 {PHONE}")
        try:
            first = await channel.send(sms)
            again = await channel.send(sms)
        finally:
            await channel.aclose()
    assert first == again == Accepted(provider_id="msg-1")
    assert len(provider.requests) == 2 and len(provider.accepted) == 1
    request = provider.requests[0]
    assert request.path == "/sms"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["idempotency-key"] == sms.idempotency_key
    assert request.json == {"to": PHONE, "text": sms.body, "sign_name": "玄武区政务服务中心",
                            "template_key": "case_accepted", "idempotency_key": sms.idempotency_key}


@pytest.mark.parametrize(("status", "failure"), [
    (503, TransientFailure), (500, TransientFailure), (429, TransientFailure), (408, TransientFailure),
    (400, PermanentFailure), (401, PermanentFailure), (404, PermanentFailure), (422, PermanentFailure),
])
async def test_generic_sms_statuses_map_to_transient_or_permanent(status: int, failure: type[SendFailure]) -> None:
    async with HttpReceiver() as provider:
        provider.always_fail(status)
        channel = GenericSms(SmsSettings(url=f"{provider.url}/sms", token=SecretStr(TOKEN)))
        try:
            with pytest.raises(SendFailure) as raised:
                await channel.send(message("sms", PHONE))
        finally:
            await channel.aclose()
    assert type(raised.value) is failure
    assert str(status) in str(raised.value)
    assert_clean(raised.value)


async def test_generic_sms_recovers_after_failing_twice() -> None:
    async with HttpReceiver() as provider:
        provider.fail_first(2)
        channel = GenericSms(SmsSettings(url=f"{provider.url}/sms"))
        sms = message("sms", PHONE)
        outcomes: list[str] = []
        try:
            for _ in range(3):
                try:
                    outcomes.append((await channel.send(sms)).provider_id or "")
                except TransientFailure:
                    outcomes.append("transient")
        finally:
            await channel.aclose()
    assert outcomes == ["transient", "transient", "msg-1"]
    assert len(provider.requests) == 3 and len(provider.accepted) == 1


async def test_generic_sms_timeout_is_transient() -> None:
    async with HttpReceiver(delay=2.0) as provider:
        channel = GenericSms(SmsSettings(url=f"{provider.url}/sms", timeout_seconds=0.2))
        try:
            with pytest.raises(TransientFailure, match="timed out"):
                await channel.send(message("sms", PHONE))
        finally:
            await channel.aclose()


async def test_generic_sms_refused_connection_is_transient() -> None:
    channel = GenericSms(SmsSettings(url=f"http://127.0.0.1:{free_port()}/sms"))
    try:
        with pytest.raises(TransientFailure) as raised:
            await channel.send(message("sms", PHONE))
    finally:
        await channel.aclose()
    assert_clean(raised.value)


async def test_generic_sms_refuses_a_bad_number_without_repeating_it() -> None:
    channel = GenericSms(SmsSettings(url="http://127.0.0.1:9/sms"))
    try:
        with pytest.raises(PermanentFailure) as raised:
            await channel.send(message("sms", "2381234567"))
    finally:
        await channel.aclose()
    assert "2381234567" not in str(raised.value)


# --- the development provider ------------------------------------------------------------------------------

@pytest.fixture
async def devprovider(tmp_path: Path) -> AsyncIterator[DevProvider]:
    provider = DevProvider("127.0.0.1", 0, 0, cert_dir=tmp_path / "dev-certs")
    await provider.start()
    try:
        yield provider
    finally:
        await provider.stop()


async def test_devprovider_takes_generic_sms_and_lists_it_masked(devprovider: DevProvider,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    channel = GenericSms(SmsSettings(provider="dev", url=f"{devprovider.url}/sms"))
    sms = message("sms", PHONE, body="您的号码 A012 即将叫号，请到 3 号窗口。", template_key="ticket_turn_near")
    try:
        with caplog.at_level(logging.INFO, logger="services.notify.devprovider"):
            first = await channel.send(sms)
            again = await channel.send(sms)
            other = await channel.send(message("sms", PHONE))
    finally:
        await channel.aclose()
    assert first == again and first.provider_id == "dev-sms-1" and other.provider_id == "dev-sms-2"
    async with httpx.AsyncClient(base_url=devprovider.url) as client:
        listing = await client.get("/sms")
    assert listing.status_code == 200
    assert PHONE not in listing.text
    [entry, _] = listing.json()
    assert {k: entry[k] for k in ("id", "to_masked", "text", "template_key")} == {
        "id": "dev-sms-1", "to_masked": PHONE_MASKED, "text": sms.body, "template_key": "ticket_turn_near"}
    lines = [record for record in caplog.records if record.name == "services.notify.devprovider"]
    assert len(lines) == 3  # one per message received, the repeat included
    assert all(PHONE not in record.getMessage() and PHONE not in str(record.__dict__) for record in lines)


async def test_devprovider_keeps_its_certificate_across_restarts_and_replaces_one_that_does_not_serve(
        tmp_path: Path) -> None:
    directory = tmp_path / "dev-certs"
    first = DevProvider("127.0.0.1", 0, 0, cert_dir=directory)
    await first.start()
    await first.stop()
    made = (directory / "smtp-cert.pem").read_bytes()
    again = DevProvider("127.0.0.1", 0, 0, cert_dir=directory)
    await again.start()
    try:
        assert (directory / "smtp-cert.pem").read_bytes() == made  # the CA file notify holds still works
        await send_mail_through(again)
    finally:
        await again.stop()
    self_signed_certificate(directory, ("mail.example.org",))  # covers other hosts only: not kept
    foreign = (directory / "smtp-cert.pem").read_bytes()
    third = DevProvider("127.0.0.1", 0, 0, cert_dir=directory)
    await third.start()
    try:
        assert (directory / "smtp-cert.pem").read_bytes() not in (made, foreign)
        await send_mail_through(third)
    finally:
        await third.stop()


async def send_mail_through(provider: DevProvider) -> None:
    """One mail over STARTTLS, trusting only the provider's certificate file."""
    assert provider.ca_file is not None
    channel = SmtpEmail(SmtpSettings(host="127.0.0.1", port=provider.smtp_port, ca_file=str(provider.ca_file)))
    try:
        await channel.send(message("email", "office@example.org", subject="证书", body="同一证书"))
    finally:
        await channel.aclose()


async def test_devprovider_refuses_a_bad_number_naming_the_field(devprovider: DevProvider) -> None:
    async with httpx.AsyncClient(base_url=devprovider.url) as client:
        answer = await client.post("/sms", json={"to": "12345", "text": "x"})
        listing = await client.get("/sms")
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"] == "to"
    assert listing.json() == []


async def test_devprovider_takes_mail_over_starttls_and_stores_a_repeat_once(devprovider: DevProvider) -> None:
    assert devprovider.ca_file is not None
    channel = SmtpEmail(SmtpSettings(host="127.0.0.1", port=devprovider.smtp_port, ca_file=str(devprovider.ca_file)))
    mail = message("email", MAILBOX, subject="补正材料通知", body="请补充：身份证复印件、营业执照副本。")
    first = await channel.send(mail)
    again = await channel.send(mail)
    assert first == again == Accepted(provider_id="dev-mail-1")
    async with httpx.AsyncClient(base_url=devprovider.url) as client:
        listing = (await client.get("/mail")).json()
    assert [{k: m[k] for k in ("id", "to_masked", "subject", "body", "message_id")} for m in listing] == [
        {"id": "dev-mail-1", "to_masked": "z***@example.cn", "subject": "补正材料通知",
         "body": "请补充：身份证复印件、营业执照副本。\n", "message_id": f"<{mail.idempotency_key}@hall>"}]


# --- webhooks ----------------------------------------------------------------------------------------------

async def test_webhook_is_signed_and_the_receiver_verifies_it() -> None:
    params = {"type": "sanction.issued", "text": "警告：窗口 3 超期办件", "refs": {"case": 12}}
    async with HttpReceiver(webhook_secret=HOOK_SECRET) as hooks:
        channel = Webhook(timeout_seconds=5)
        hook = message("webhook", f"{hooks.url}/hall/events", params=params, secret=HOOK_SECRET)
        try:
            accepted = await channel.send(hook)
        finally:
            await channel.aclose()
    assert accepted == Accepted(provider_id="msg-1")
    assert hooks.bad_signatures == 0 and len(hooks.accepted) == 1
    [request] = hooks.requests
    assert request.path == "/hall/events"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == hook.idempotency_key
    assert request.headers["x-hall-delivery"] == "7"
    assert request.body == json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode()
    assert "警告".encode() in request.body  # UTF-8, not \\u escapes
    # the documented formula, computed here rather than by the module under test
    timestamp = request.headers["x-hall-timestamp"]
    assert abs(int(timestamp) - wall_now().timestamp()) < 60
    expected = hmac.new(HOOK_SECRET.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-hall-signature"] == f"sha256={expected}"


async def test_webhook_signed_with_another_secret_is_refused_by_the_receiver() -> None:
    async with HttpReceiver(webhook_secret=HOOK_SECRET) as hooks:
        channel = Webhook()
        try:
            with pytest.raises(PermanentFailure) as raised:
                await channel.send(message("webhook", f"{hooks.url}/h", params={"a": 1}, secret="another-secret-x"))
        finally:
            await channel.aclose()
    assert hooks.bad_signatures == 1 and hooks.accepted == []
    assert "401" in str(raised.value) and "another-secret-x" not in str(raised.value)


@pytest.mark.parametrize(("status", "failure"), [
    (503, TransientFailure), (502, TransientFailure), (429, TransientFailure), (408, TransientFailure),
    (410, PermanentFailure), (400, PermanentFailure), (404, PermanentFailure), (302, PermanentFailure),
])
async def test_webhook_statuses_map_to_transient_or_permanent(status: int, failure: type[SendFailure]) -> None:
    async with HttpReceiver(webhook_secret=HOOK_SECRET) as hooks:
        hooks.always_fail(status)
        channel = Webhook()
        try:
            with pytest.raises(SendFailure) as raised:
                await channel.send(message("webhook", f"{hooks.url}/h", params={"a": 1}, secret=HOOK_SECRET))
        finally:
            await channel.aclose()
    assert type(raised.value) is failure
    assert_clean(raised.value)


async def test_webhook_timeout_is_transient() -> None:
    async with HttpReceiver(delay=2.0) as hooks:
        channel = Webhook(timeout_seconds=0.2)
        try:
            with pytest.raises(TransientFailure, match="timed out"):
                await channel.send(message("webhook", f"{hooks.url}/h", params={}, secret=HOOK_SECRET))
        finally:
            await channel.aclose()


async def test_webhook_without_an_id_in_the_answer_is_known_by_its_idempotency_key() -> None:
    async with HttpReceiver(respond=lambda request, message_id: (202, None)) as hooks:
        channel = Webhook()
        hook = message("webhook", f"{hooks.url}/h", params={"a": 1}, secret=HOOK_SECRET)
        try:
            accepted = await channel.send(hook)
        finally:
            await channel.aclose()
    assert accepted == Accepted(provider_id=hook.idempotency_key)


@pytest.mark.parametrize("address", ["ftp://example.cn/h", "not a url", "http:///nohost"])
async def test_webhook_refuses_an_address_that_is_not_http(address: str) -> None:
    channel = Webhook()
    try:
        with pytest.raises(PermanentFailure, match="not an http"):
            await channel.send(message("webhook", address, params={}, secret=HOOK_SECRET))
    finally:
        await channel.aclose()


def test_verify_signature_accepts_the_signed_body_within_the_tolerance_only() -> None:
    body = '{"text":"通报批评"}'.encode()
    now = 1_767_225_600
    header = signature(HOOK_SECRET, now, body)
    assert verify_signature(HOOK_SECRET, str(now), body, header, now=now)
    assert verify_signature(HOOK_SECRET, str(now - 300), body, signature(HOOK_SECRET, now - 300, body), now=now)
    assert not verify_signature(HOOK_SECRET, str(now - 301), body, signature(HOOK_SECRET, now - 301, body), now=now)
    assert not verify_signature(HOOK_SECRET, str(now + 301), body, signature(HOOK_SECRET, now + 301, body), now=now)
    assert not verify_signature(HOOK_SECRET, str(now), body + b" ", header, now=now)  # body changed
    assert not verify_signature(HOOK_SECRET, str(now + 1), body, header, now=now)  # timestamp changed
    assert not verify_signature("another-secret-x", str(now), body, header, now=now)
    assert not verify_signature(HOOK_SECRET, str(now), body, header.removeprefix("sha256="), now=now)
    assert not verify_signature(HOOK_SECRET, "12e3", body, header, now=now)
    assert not verify_signature(HOOK_SECRET, str(now), body, None, now=now)
    assert verify_signature(HOOK_SECRET, str(now), body, header, now=datetime.fromtimestamp(now + 299, UTC))


# --- e-mail ------------------------------------------------------------------------------------------------

def smtp_settings(receiver: SmtpReceiver, **overrides: Any) -> SmtpSettings:
    values: dict[str, Any] = {"host": "127.0.0.1", "port": receiver.port, "ca_file": receiver.ca_file,
                              "sender": "noreply@hall.example", "timeout_seconds": 5}
    return SmtpSettings(**(values | overrides))


async def test_email_goes_over_starttls_with_login_and_chinese_intact() -> None:
    async with SmtpReceiver(auth=("notify", "smtp-password-for-tests")) as smtp:
        channel = SmtpEmail(smtp_settings(smtp, user="notify", password=SecretStr("smtp-password-for-tests")))
        mail = message("email", MAILBOX, subject="【预警】办件即将超期：玄武区政务服务中心",
                       body="张三同志：\n您承办的办件 XW-2026-000123 将于 2 个工作日后超期，请及时办结。\n")
        accepted = await channel.send(mail)
    assert accepted == Accepted(provider_id="Q1")  # the server's queue id
    [received] = smtp.mails
    assert received.tls and received.login == "notify"
    assert received.mail_from == "noreply@hall.example" and received.rcpt_tos == [MAILBOX]
    sent = received.message
    assert sent["Subject"] == "【预警】办件即将超期：玄武区政务服务中心"
    assert sent["From"] == "noreply@hall.example" and sent["To"] == MAILBOX
    assert sent["Message-ID"] == f"<{mail.idempotency_key}@hall>"
    assert sent.get_content_type() == "text/plain" and sent.get_content_charset() == "utf-8"
    assert sent.get_content() == mail.body


async def test_email_repeat_carries_the_same_message_id() -> None:
    async with SmtpReceiver() as smtp:
        channel = SmtpEmail(smtp_settings(smtp))
        mail = message("email", MAILBOX, subject="受理通知")
        await channel.send(mail)
        await channel.send(mail)
    assert len(smtp.messages) == 2 and len(smtp.distinct_messages) == 1


async def test_email_refuses_a_server_without_starttls() -> None:
    async with SmtpReceiver(starttls=False) as smtp:
        channel = SmtpEmail(SmtpSettings(host="127.0.0.1", port=smtp.port, timeout_seconds=5))
        with pytest.raises(TransientFailure, match="STARTTLS"):
            await channel.send(message("email", MAILBOX, subject="受理通知"))
    assert smtp.messages == []


async def test_email_in_clear_only_when_starttls_is_switched_off() -> None:
    async with SmtpReceiver(starttls=False) as smtp:
        channel = SmtpEmail(SmtpSettings(host="127.0.0.1", port=smtp.port, starttls=False, timeout_seconds=5))
        await channel.send(message("email", MAILBOX, subject="受理通知"))
    assert len(smtp.mails) == 1 and not smtp.mails[0].tls


async def test_email_refuses_a_certificate_it_cannot_verify(tmp_path: Path) -> None:
    other_ca, _ = self_signed_certificate(tmp_path)
    async with SmtpReceiver() as smtp:
        channel = SmtpEmail(smtp_settings(smtp, ca_file=str(other_ca)))
        with pytest.raises(TransientFailure, match="TLS"):
            await channel.send(message("email", MAILBOX, subject="受理通知"))
    assert smtp.messages == []


@pytest.mark.parametrize(("code", "failure"), [(451, TransientFailure), (421, TransientFailure),
                                               (550, PermanentFailure), (554, PermanentFailure)])
async def test_email_smtp_replies_map_4xx_transient_and_5xx_permanent(code: int, failure: type[SendFailure]) -> None:
    async with SmtpReceiver() as smtp:
        smtp.always_fail(code)
        channel = SmtpEmail(smtp_settings(smtp))
        with pytest.raises(SendFailure) as raised:
            await channel.send(message("email", MAILBOX, subject="受理通知"))
    assert type(raised.value) is failure
    assert str(code) in str(raised.value) and MAILBOX not in str(raised.value)


async def test_email_wrong_password_is_refused() -> None:
    async with SmtpReceiver(auth=("notify", "smtp-password-for-tests")) as smtp:
        channel = SmtpEmail(smtp_settings(smtp, user="notify", password=SecretStr("wrong-password-xx")))
        with pytest.raises(PermanentFailure, match="535 to AUTH"):
            await channel.send(message("email", MAILBOX, subject="受理通知"))
    assert smtp.failed_logins >= 1 and smtp.messages == []  # aiosmtplib tries each mechanism offered


async def test_email_refused_connection_is_transient() -> None:
    channel = SmtpEmail(SmtpSettings(host="127.0.0.1", port=free_port(), timeout_seconds=2))
    with pytest.raises(TransientFailure):
        await channel.send(message("email", MAILBOX, subject="受理通知"))


@pytest.mark.parametrize(("address", "subject"), [("not-an-address", "受理通知"),
                                                  (MAILBOX, "受理通知\r\nBcc: someone@example.cn")])
async def test_email_refuses_what_cannot_go_in_a_header(address: str, subject: str) -> None:
    async with SmtpReceiver() as smtp:
        channel = SmtpEmail(smtp_settings(smtp))
        with pytest.raises(PermanentFailure):
            await channel.send(message("email", address, subject=subject))
    assert smtp.messages == []


# --- the registry ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("sms", "adapter"), [
    (SmsSettings(provider="dev"), GenericSms),
    (SmsSettings(provider="generic", url="https://sms.example.cn/send"), GenericSms),
    (tencent_settings("https://sms.tencentcloudapi.com"), TencentSms),
    (aliyun_settings("https://dysmsapi.aliyuncs.com"), AliyunSms),
])
async def test_build_channels_picks_the_sms_provider_of_the_settings(secrets: dict[str, str], sms: SmsSettings,
                                                                    adapter: type) -> None:
    channels = build_channels(Settings(database_url="postgresql+asyncpg://127.0.0.1/unused", sms=sms))
    try:
        assert set(channels) == {"sms", "email", "webhook"}
        assert type(channels["sms"]) is adapter
        assert isinstance(channels["email"], SmtpEmail) and isinstance(channels["webhook"], Webhook)
    finally:
        await close_channels(channels)


def test_build_channels_refuses_a_cloud_provider_without_credentials(secrets: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="ACCESS_KEY"):
        build_channels(Settings(database_url="postgresql+asyncpg://127.0.0.1/unused", sms=SmsSettings(provider="tencent")))

