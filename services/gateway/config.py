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
    max_connections: int = Field(200, description="connections to all the services together")
    # each open server-sent-event stream holds a connection for as long as it lasts: one service's streams
    # must not take every connection from the others
    max_connections_per_service: int = Field(100, description="connections to any one service; 0: no own limit")
    # under the services' own keep-alive timeout (uvicorn: 5 s), so the gateway lets an idle connection go
    # before the service closes it, rather than reusing it just as it closes (a needless 502)
    keepalive_expiry: float = 4.0
    dns_cache_seconds: int = Field(10, description="how long a service's resolved address is reused")
    health_timeout: float = 2.0
    # Python collects its youngest generation every 700 net allocations of container objects; the objects
    # of the requests in flight (dozens each) cross that every few requests, each pass walking all of them:
    # 20-50% of the gateway's CPU under load. A request leaves no reference cycles behind, so rarer passes
    # free nothing later. Applied while the app runs (lifespan); 0 keeps Python's default.
    gc_threshold: int = Field(10_000, description="allocations between young-generation garbage collections")
    log_level: str = "INFO"

    def upstreams(self) -> dict[str, str]:
        return {"queue": self.queue_url, "cases": self.cases_url, "monitor": self.monitor_url,
                "notify": self.notify_url}


@lru_cache
def get_settings() -> Settings:
    return Settings()
