"""Tables every service has in its own database (each service's migrations create them)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, DateTime, Integer, LargeBinary, String, Table
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import new_metadata

metadata = new_metadata()

daily_counters = Table(
    "daily_counters", metadata,
    Column("scope", String(120), primary_key=True),
    Column("business_date", Date, primary_key=True),
    Column("value", BigInteger, nullable=False),
    comment="Gap-free per-day sequences (ticket, case and notice numbers), local business dates",
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("scope", String(300), primary_key=True, comment="caller + method + route"),
    Column("key", String(200), primary_key=True),
    Column("request_hash", LargeBinary(32), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("body", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    comment="First answers to POSTs retried with the same Idempotency-Key",
)

__all__ = ["metadata", "daily_counters", "idempotency_keys"]
