"""Settings of the cases service (env prefix CASES_)."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CASES_", extra="ignore")

    service_name: str = "cases"
    # the centres' compression target for promised limits (seeds: 30% or 50% faster than the legal limit):
    # an item meets it when promised <= legal x (1 - target/100); CASES_COMPRESSION_TARGET_PERCENT
    compression_target_percent: int = Field(30, ge=0, le=99)
    # no test query before each transaction: py-spy put it at a tenth of a registration's time; a connection
    # the server dropped fails one request, then the pool reconnects (README, "Cases: speed")
    db_pool_pre_ping: bool = False


@lru_cache
def get_settings() -> Settings:
    return Settings()
