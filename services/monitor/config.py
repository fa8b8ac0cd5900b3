"""Settings of the monitor service (env prefix MONITOR_)."""

from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MONITOR_", extra="ignore")

    service_name: str = "monitor"


@lru_cache
def get_settings() -> Settings:
    return Settings()
