"""The channel adapters the settings choose, by channel name, and their closing."""

from __future__ import annotations

from collections.abc import Mapping

from services.notify.channels.aliyun import AliyunSms
from services.notify.channels.base import Channel
from services.notify.channels.email import SmtpEmail
from services.notify.channels.sms import GenericSms
from services.notify.channels.tencent import TencentSms
from services.notify.channels.webhook import Webhook
from services.notify.config import Settings, SmsSettings


def build_sms(settings: SmsSettings) -> Channel:
    """`dev` and `generic` speak the generic JSON format; `tencent` and `aliyun` their providers' APIs."""
    if settings.provider == "tencent":
        return TencentSms(settings)
    if settings.provider == "aliyun":
        return AliyunSms(settings)
    return GenericSms(settings)


def build_channels(settings: Settings) -> dict[str, Channel]:
    """`sms`, `email` and `webhook` (feeds are posted by notify itself, not through an adapter). Raises
    ValueError when the chosen SMS provider lacks its credentials."""
    return {
        "sms": build_sms(settings.sms),
        "email": SmtpEmail(settings.smtp),
        "webhook": Webhook(timeout_seconds=settings.webhook_timeout_seconds,
                           max_connections=max(100, settings.dispatch_concurrency)),
    }


async def close_channels(channels: Mapping[str, Channel]) -> None:
    for channel in channels.values():
        await channel.aclose()
