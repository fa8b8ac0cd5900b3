"""Settings: one deployment-wide class (HALL_ prefix) and one base class each service extends with its prefix.

Only this module's classes read the environment. Secrets have no defaults: a service without them
refuses to start. `make run` and the tests generate development secrets under var/ (shared.devsecrets).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import clock as clock_module


class KafkaSettings(BaseSettings):
    """The broker's address and topic replicas (env prefix HALL_): all that creating the topics needs."""

    model_config = SettingsConfigDict(env_prefix="HALL_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    # copies of each topic's partitions the relays and `python -m shared.events.kafka` create: 1 for one
    # broker (and Tansu), 3 for a three-broker cluster (then a write needs 2 in sync: min.insync.replicas)
    kafka_replication_factor: int = Field(1, ge=1, le=7)


class HallSettings(KafkaSettings):
    """What every process of the deployment shares (env prefix HALL_)."""

    model_config = SettingsConfigDict(env_prefix="HALL_", extra="ignore")
    jwt_public_key: str = Field(description="PEM of the gateway's Ed25519 token-signing public key")
    jwt_issuer: str = "hall-gateway"
    jwt_audience: str = "hall"
    pii_hash_key: SecretStr = Field(description="HMAC-SHA256 key for matching ID/phone numbers (base64)")
    pii_encryption_key: SecretStr = Field(description="AES-256-GCM key for the encrypted form (base64)")
    notify_seal_public_key: str = Field(description="base64 X25519 public key of notify, for sealed contacts")
    clock_mode: Literal["real", "fixed", "simulated"] = "real"
    clock_fixed_at: datetime | None = None
    clock_sim_real_start: datetime | None = None
    clock_sim_start: datetime | None = None
    clock_speed: float = 1.0
    log_level: str = "INFO"

    def build_clock(self) -> clock_module.Clock:
        return clock_module.clock_from_settings(
            self.clock_mode, self.clock_fixed_at, self.clock_sim_real_start, self.clock_sim_start,
            self.clock_speed,
        )


class ServiceSettings(BaseSettings):
    """Base of each service's settings; subclasses set env_prefix (QUEUE_, CASES_, ...)."""

    model_config = SettingsConfigDict(extra="ignore")

    service_name: str = "service"
    database_url: str = Field(description="postgresql+asyncpg://user@host:port/<service db>")
    db_pool_size: int = 5
    db_max_overflow: int = 5
    db_pool_timeout: float = 10.0
    db_pool_pre_ping: bool = True
    migrate_on_start: bool = True
    hall: HallSettings = Field(default_factory=HallSettings)


def database_url_of(settings: type[ServiceSettings]) -> str:
    """Only `<PREFIX>DATABASE_URL` of a service's settings class, for what needs nothing else (the migration
    container holds the database URLs and none of the keys the service itself requires)."""

    class _DatabaseUrl(BaseSettings):
        model_config = SettingsConfigDict(env_prefix=str(settings.model_config.get("env_prefix", "")),
                                          extra="ignore")

        database_url: str = Field(description="postgresql+asyncpg://user@host:port/<service db>")

    return _DatabaseUrl().database_url

