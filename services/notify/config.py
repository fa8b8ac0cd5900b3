"""Settings of the notify service (env prefix NOTIFY_)."""

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")

    service_name: str = "notify"
    seal_private_key: SecretStr | None = Field(
        default=None, description="base64 X25519 private key that opens contacts sealed for notify")


@lru_cache
def get_settings() -> Settings:
    return Settings()
