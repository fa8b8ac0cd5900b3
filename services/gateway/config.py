"""Settings of the gateway (env prefix GATEWAY_)."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    queue_url: str = "http://127.0.0.1:8001"
    cases_url: str = "http://127.0.0.1:8002"
    monitor_url: str = "http://127.0.0.1:8003"
    notify_url: str = "http://127.0.0.1:8004"
    upstream_timeout: float = Field(30.0, description="seconds to wait for a service's response headers (504)")
    stream_idle_timeout: float = Field(75.0, description="seconds a streamed body may stay silent")
    connect_timeout: float = 2.0
    max_connections: int = 200
    # as many as max_connections: httpcore 1.0 compares max_keepalive with all open connections, not the
    # idle ones, so a lower value closes connections that have just finished a request (encode/httpcore#1035)
    max_keepalive: int = 200
    # under the services' own keep-alive timeout (uvicorn: 5 s), so the gateway lets an idle connection go
    # before the service closes it, rather than reusing it just as it closes (a needless 502)
    keepalive_expiry: float = 4.0
    health_timeout: float = 2.0
    log_level: str = "INFO"

    def upstreams(self) -> dict[str, str]:
        return {"queue": self.queue_url, "cases": self.cases_url, "monitor": self.monitor_url,
                "notify": self.notify_url}


@lru_cache
def get_settings() -> Settings:
    return Settings()
