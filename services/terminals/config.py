"""Settings of the terminals' pages (env prefix TERMINALS_). No database: the pages call the public APIs from
the browser with the device's or person's own token."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TERMINALS_", extra="ignore")

    service_name: str = "terminals"
    database_url: str = Field("", description="unused: the terminals' app has no database")
    migrate_on_start: bool = False
    api_prefix: str = Field("/api", description="where the gateway mounts the services' APIs, as the browser "
                            "calls them (same origin)")
    public_url: str | None = Field(None, description="the hall's public address for the QR codes a phone "
                                   "scans (https://hall.example.gov.cn); by default the address the page was "
                                   "loaded from")
    kiosk_ticket_seconds: int = Field(20, ge=5, description="how long the kiosk shows a printed ticket")
    speech_rate: float = Field(0.9, gt=0, le=2, description="the display's speaking rate (1 = normal)")


@lru_cache
def get_settings() -> Settings:
    return Settings()
