"""Settings of the queue service (env prefix QUEUE_)."""

from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QUEUE_", extra="ignore")

    service_name: str = "queue"
    # the hall floor's routes are many and short: a pool that 50 windows and the kiosks do not queue for,
    # and no test query before each transaction (a connection the server dropped fails one request, then
    # the pool reconnects); see the README, "Queue: speed"
    db_pool_size: int = 20
    db_max_overflow: int = 10
    db_pool_pre_ping: bool = False


@lru_cache
def get_settings() -> Settings:
    return Settings()
