"""Tables of the notify service (its own database; the shared platform tables come from shared.tables).

Who can be reached: staff (`contacts`, from identity's user.upserted), department heads (`departments`,
from the registry's department.upserted), applicants of open cases (`case_contacts`, from case.accepted), and
what an admin adds (`recipients`: webhook endpoints and extra addresses such as the supervision office's
mailbox) with their `subscriptions`. What is said: `templates` (overrides of the Chinese defaults in
services.notify.rules) and `rule_switches` (a default notification turned off for a centre). What was sent:
`deliveries`, one per (event, recipient, channel) by a unique key, each with its `delivery_attempts`.

Every contact here is sealed for notify (shared.pii.seal) and opened only at send time; the masked form is
what the API shows."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import new_metadata
from shared.readcopy import CenterCopyColumns


class Base(DeclarativeBase):
    metadata = new_metadata()


class CenterCopy(CenterCopyColumns, Base):
    """Read copy of the queue service's centres, kept from `center.upserted` events."""


class Contact(Base):
    """Read copy of identity's users with their contacts sealed for notify (user.upserted)."""

    __tablename__ = "contacts"
    __table_args__: Any = (
        Index("ix_contacts_centers", "centers", postgresql_using="gin"),
        {"comment": "Read copy of identity's users and their sealed contacts, from user.upserted"},
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    centers: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    department: Mapped[str | None] = mapped_column(String(64))
    email_masked: Mapped[str | None] = mapped_column(String(200))
    email_sealed: Mapped[str | None] = mapped_column(Text)
    phone_masked: Mapped[str | None] = mapped_column(String(32))
    phone_sealed: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_event_sequence: Mapped[int] = mapped_column(BigInteger)


class DepartmentContact(Base):
    """Read copy of the registry's departments with the head's sealed contacts (department.upserted)."""

    __tablename__ = "departments"
    __table_args__: Any = {"comment": "Read copy of cases' departments and their heads' sealed contacts"}

    center_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    head_name: Mapped[str | None] = mapped_column(String(100))
    head_phone_masked: Mapped[str | None] = mapped_column(String(32))
    head_phone_sealed: Mapped[str | None] = mapped_column(Text)
    head_email_masked: Mapped[str | None] = mapped_column(String(200))
    head_email_sealed: Mapped[str | None] = mapped_column(Text)
    chief_rep: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_event_sequence: Mapped[int] = mapped_column(BigInteger)


class CaseContact(Base):
    """The applicant of a case as notify reaches them (case.accepted): later case events name the case only."""

    __tablename__ = "case_contacts"

    case_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    center_id: Mapped[str] = mapped_column(String(32))
    phone_masked: Mapped[str | None] = mapped_column(String(32))
    phone_sealed: Mapped[str | None] = mapped_column(Text)
    lookup_code_sealed: Mapped[str] = mapped_column(Text)
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Recipient(Base):
    """What an admin adds: a webhook endpoint (its URL and its signing secret) or an extra address (an e-mail
    box, an SMS number), for a centre or every centre (center_id None)."""

    __tablename__ = "recipients"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), comment="webhook | email | sms")
    name: Mapped[str] = mapped_column(String(100))
    center_id: Mapped[str | None] = mapped_column(String(32))
    address_masked: Mapped[str] = mapped_column(String(300))
    address_sealed: Mapped[str] = mapped_column(Text)
    secret_sealed: Mapped[str | None] = mapped_column(Text, comment="webhook: the HMAC secret, sealed")
    active: Mapped[bool] = mapped_column(Boolean, server_default=sql_text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Subscription(Base):
    """A recipient gets these event types (exact, or a prefix `case.*`) of a centre (None: every centre)."""

    __tablename__ = "subscriptions"
    __table_args__: Any = (UniqueConstraint("recipient_id", "center_id", "channel", name="uq_subscriptions_scope"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipients.id", ondelete="CASCADE"))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    center_id: Mapped[str | None] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Template(Base):
    """An edited template (the defaults live in code, services.notify.rules); validated when saved."""

    __tablename__ = "templates"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(32))


class RuleSwitch(Base):
    """A default notification switched off (or back on) for one centre."""

    __tablename__ = "rule_switches"

    center_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(32))


class Delivery(Base):
    """One message to one recipient on one channel for one event: unique by (event_id, recipient_key,
    channel), so a duplicate event plans nothing new.

    status: pending (due at next_attempt_at) → sending (claimed until lease_until) → sent; a failure goes
    back to pending later (backoff) or, after the last attempt, to dead; an SMS in the quiet hours is held
    until held_until. `key` is the idempotency key every attempt sends to the provider."""

    __tablename__ = "deliveries"
    __table_args__: Any = (
        UniqueConstraint("event_id", "recipient_key", "channel", name="uq_deliveries_once"),
        Index("ix_deliveries_due", "next_attempt_at", postgresql_where=sql_text("status = 'pending'")),
        Index("ix_deliveries_leased", "lease_until", postgresql_where=sql_text("status = 'sending'")),
        Index("ix_deliveries_held", "held_until", postgresql_where=sql_text("status = 'held'")),
        Index("ix_deliveries_rate", "address_hash", "sent_at", postgresql_where=sql_text("address_hash IS NOT NULL")),
        Index("ix_deliveries_status", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    key: Mapped[Any] = mapped_column(UUID(as_uuid=True), unique=True)
    event_id: Mapped[Any] = mapped_column(UUID(as_uuid=True))
    event_type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    center_id: Mapped[str | None] = mapped_column(String(32))
    recipient_key: Mapped[str] = mapped_column(String(120), comment="user:<id>, department:<c>:<code>, "
                                               "recipient:<id>, applicant:<case|ticket|...>:<id>, feed:<name>")
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("recipients.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16), comment="sms | email | webhook | feed")
    template_key: Mapped[str] = mapped_column(String(64))
    address_masked: Mapped[str | None] = mapped_column(String(300))
    address_sealed: Mapped[str | None] = mapped_column(Text, comment="opened only at send time")
    address_hash: Mapped[str | None] = mapped_column(String(64), comment="keyed hash, for the SMS rate limit")
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sql_text("'{}'::jsonb"),
                                                   comment="channel extras: the webhook's JSON, the feed's refs")
    urgent: Mapped[bool] = mapped_column(Boolean, server_default=sql_text("false"))
    status: Mapped[str] = mapped_column(String(16), comment="pending | held | sending | sent | dead")
    attempts: Mapped[int] = mapped_column(Integer, server_default=sql_text("0"))
    budget_from: Mapped[int] = mapped_column(Integer, server_default=sql_text("0"),
                                             comment="attempts made before the last replay (a replay gets a fresh "
                                                     "retry budget; attempt numbers go on)")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    held_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    provider_id: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dead_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeliveryAttempt(Base):
    """One try at the provider: recorded before the call (outcome None while it runs), finished after it."""

    __tablename__ = "delivery_attempts"
    __table_args__: Any = (UniqueConstraint("delivery_id", "number", name="uq_delivery_attempts_number"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(
        String(16), comment="accepted | failed | rejected (permanent) | interrupted (its process died)")
    provider_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
