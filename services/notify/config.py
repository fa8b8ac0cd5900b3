"""Settings of the notify service (env prefix NOTIFY_; nested ones with a double underscore, e.g.
NOTIFY_SMTP__HOST, NOTIFY_SMS__PROVIDER)."""

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class SmsSettings(BaseModel):
    """The SMS provider: `dev` (the local development provider `make run` starts), `generic` (a JSON API),
    `aliyun` (Alibaba Cloud SMS SendSms, ACS3-HMAC-SHA256) or `tencent` (Tencent Cloud SMS SendSms,
    TC3-HMAC-SHA256)."""

    provider: Literal["dev", "generic", "aliyun", "tencent"] = "dev"
    url: str = Field("http://127.0.0.1:8025/sms", description="the provider's endpoint (dev, generic)")
    token: SecretStr | None = Field(None, description="generic: the bearer token")
    access_key_id: str | None = Field(None, description="aliyun / tencent: AccessKeyId or SecretId")
    access_key_secret: SecretStr | None = Field(None, description="aliyun / tencent: AccessKeySecret or SecretKey")
    endpoint: str | None = Field(None, description="aliyun / tencent: override the API host (tests)")
    region: str = Field("ap-guangzhou", description="tencent: X-TC-Region (aliyun: unused, dysmsapi is one endpoint)")
    sign_name: str = Field("政务服务中心", description="the registered signature (签名)")
    sdk_app_id: str | None = Field(None, description="tencent: SmsSdkAppId")
    template_codes: dict[str, str] = Field(
        default_factory=dict,
        description="aliyun / tencent: the provider's approved template per notify template key ('*' for all); "
                    "the rendered text goes as its one parameter `content`")
    timeout_seconds: float = 10.0


class SmtpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8026
    user: str | None = None
    password: SecretStr | None = None
    starttls: bool = Field(True, description="STARTTLS before sending (refuses to send in clear if the server "
                                            "does not offer it)")
    validate_certs: bool = True
    ca_file: str | None = Field(None, description="a CA bundle for the server's certificate (tests, private CAs)")
    sender: str = Field("noreply@hall.example", description="the From address")
    timeout_seconds: float = 10.0


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", env_nested_delimiter="__", extra="ignore")

    service_name: str = "notify"
    seal_private_key: SecretStr | None = Field(
        default=None, description="base64 X25519 private key that opens contacts sealed for notify")

    sms: SmsSettings = SmsSettings()
    smtp: SmtpSettings = SmtpSettings()
    webhook_timeout_seconds: float = 10.0

    # retries: attempt n waits min(base * 2^(n-1), cap) with full jitter; after max_attempts, a dead letter
    retry_base_seconds: float = 5.0
    retry_cap_seconds: float = 3600.0
    max_attempts: int = Field(8, ge=1)
    send_lease_seconds: float = Field(
        60.0, description="a delivery claimed for sending longer ago than this (its process died) is tried again, "
                          "with the same idempotency key")
    dispatch_batch: int = Field(200, ge=1, description="deliveries claimed per round")
    dispatch_concurrency: int = Field(50, ge=1, description="sends in flight per dispatcher")
    dispatch_poll_seconds: float = 0.5

    # SMS quiet hours (DOMAIN.md): held from quiet_start to quiet_end local time, released at quiet_end
    quiet_start: str = "22:00"
    quiet_end: str = "08:00"
    urgent_templates: list[str] = Field(
        default_factory=lambda: ["ticket_turn_near_sms"],
        description="template keys whose SMS pass the quiet hours (a turn that is near will not wait till morning)")
    sms_rate_limit: int = Field(10, ge=1, description="SMS per recipient per sms_rate_window_seconds; more wait")
    sms_rate_window_seconds: float = 3600.0

    reminder_time: str = Field("10:00", description="local time, the day before, of the appointment reminder")


@lru_cache
def get_settings() -> Settings:
    return Settings()
