"""Settings of the queue service (env prefix QUEUE_)."""

from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QUEUE_", extra="ignore")

    service_name: str = "queue"


@lru_cache
def get_settings() -> Settings:
    return Settings()
