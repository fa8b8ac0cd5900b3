"""Settings of the identity service (env prefix IDENTITY_)."""

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore")

    service_name: str = "identity"
    jwt_private_key: SecretStr = Field(description="PEM of the Ed25519 key every token is signed with")
    access_token_minutes: int = 15
    device_token_minutes: int = 15
    refresh_token_hours: int = 12  # one working day; a new login the next morning
    lockout_failures: int = 10
    lockout_minutes: int = 15
    photo_max_bytes: int = 2 * 1024 * 1024
    public_prefix: str = Field(default="/api/auth", description="where the gateway mounts this service: the "
                               "photo URLs in user.upserted and in the public answers start with it")


@lru_cache
def get_settings() -> Settings:
    return Settings()
