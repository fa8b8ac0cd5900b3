"""Settings of the cases service (env prefix CASES_)."""

from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CASES_", extra="ignore")

    service_name: str = "cases"


@lru_cache
def get_settings() -> Settings:
    return Settings()
