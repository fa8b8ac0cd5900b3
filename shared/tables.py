"""Tables every service has in its own database (each service's migrations create them)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
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



# --- events (foundation II): outbox, inbox, dead letters; timers and periodic jobs -------------------

outbox = Table(
    "outbox", metadata,
    Column("sequence", BigInteger, Identity(always=True), primary_key=True,
           comment="this service's event sequence: relay order, SSE id"),
    Column("id", Uuid, nullable=False, unique=True),
    Column("type", String(100), nullable=False),
    Column("topic", String(100), nullable=False),
    Column("key", String(200), nullable=False, comment="Kafka key: centre (queue) or subject (cases)"),
    Column("reference_key", String(200), comment="set for reference data; the latest per key is kept for ever"),
    Column("envelope", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Index("ix_outbox_unsent", "sequence", postgresql_where=text("sent_at IS NULL")),
    Index("ix_outbox_reference", "reference_key", "sequence", postgresql_where=text("reference_key IS NOT NULL")),
    comment="Transactional outbox: written with the state change, relayed to Kafka",
)

inbox = Table(
    "inbox", metadata,
    Column("consumer", String(100), primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False, index=True),
    comment="Event ids each consumer has applied (redeliveries change nothing)",
)

dead_letters = Table(
    "dead_letters", metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("consumer", String(100), nullable=False),
    Column("key", String(200), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("kind", String(20), nullable=False, comment="poison | parked (waits behind a poison event of its key)"),
    Column("envelope", JSONB, nullable=False),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    Index("ix_dead_letters_open", "consumer", "key", "id", postgresql_where=text("resolved_at IS NULL")),
    comment="Poison events and the later events of their key parked behind them; replayable",
)

timers = Table(
    "timers", metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("kind", String(100), nullable=False),
    Column("key", String(200), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("fired_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    UniqueConstraint("kind", "key"),
    Index("ix_timers_due", "due_at", postgresql_where=text("fired_at IS NULL")),
    comment="Durable one-shot timers, fired exactly once at due_at by the shared clock",
)

periodic_jobs = Table(
    "periodic_jobs", metadata,
    Column("name", String(100), primary_key=True),
    Column("last_due_at", DateTime(timezone=True), comment="the last scheduled moment that has run"),
    Column("last_run_at", DateTime(timezone=True)),
    comment="Where each periodic job is, so a restart catches up instead of skipping or repeating",
)

platform_state = Table(
    "platform_state", metadata,
    Column("key", String(100), primary_key=True),
    Column("value", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    comment="Small named state of the platform (e.g. the broker cluster id the relay last saw)",
)


# --- the working-day calendar: owned by cases, copied by every other service from calendar.changed ----

calendar_scopes = Table(
    "calendar_scopes", metadata,
    Column("scope", String(60), primary_key=True, comment="center:<id> | year:<yyyy> | package"),
    Column("version", BigInteger, nullable=False, comment="the calendar version that last set this scope"),
    Column("fingerprint", String(64), comment="package scope: which official years the package carries"),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    comment="Each calendar scope's latest version; max(version) tells a process its cache is stale",
)

calendar_overrides = Table(
    "calendar_overrides", metadata,
    Column("center_id", String(32), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("working", Boolean, nullable=False),
    Column("reason", String(200)),
    comment="A centre's own holiday (typhoon closure) or working day (weekend opening)",
)

calendar_years = Table(
    "calendar_years", metadata,
    Column("year", Integer, primary_key=True),
    Column("days", JSONB, nullable=False, comment='[{"date", "kind": holiday|working, "name"}]'),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    comment="A whole year's official schedule imported for a year the package does not carry",
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("entity", String(60), nullable=False),
    Column("entity_id", String(200), nullable=False),
    Column("center_id", String(32)),
    Column("before", JSONB(none_as_null=True)),
    Column("after", JSONB(none_as_null=True)),
    Column("reason", Text),
    Index("ix_audit_log_entity", "entity", "entity_id", "id"),
    comment="Append-only: who changed what, when, from which state to which, and why",
)
