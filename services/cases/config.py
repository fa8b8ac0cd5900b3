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
    # the service guide's downloadable forms and samples (办事指南): the largest upload, in bytes
    guide_file_max_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    # one import of open cases (POST /import, the intake CLI): at most this many rows
    import_max_rows: int = Field(200_000, ge=1)
    # no test query before each transaction: py-spy put it at a tenth of a registration's time; a connection
    # the server dropped fails one request, then the pool reconnects (README, "Cases: speed")
    db_pool_pre_ping: bool = False
    # the printed notices (services/cases/documents): their QR codes point at the public pages under this
    # address (the gateway as the public reaches it), and the receipts print each centre's enquiry phone
    # (咨询电话), CASES_CENTER_PHONES='{"320102": "025-84201234"}'
    public_base_url: str = "http://127.0.0.1:8000"
    center_phones: dict[str, str] = Field(default_factory=dict)


@lru_cache
def get_settings() -> Settings:
    return Settings()
