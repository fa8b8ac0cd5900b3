"""Alerts (预警, 超时, ...): raised once per cause, acknowledged, resolved. The rules; they write state and
outbox rows in the caller's transaction and never commit.

A cause key names what an alert is about and, where the clock matters, its clock version
(`overdue:<case>:v<n>`), so that two monitor workers, a redelivered event or a timer fired again after a
crash never raise it twice: the key is unique, and the insert that loses the race inserts nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.monitor import metrics
from services.monitor.models import Alert
from shared import clock
from shared.auth import Principal
from shared.db import get_or_404
from shared.errors import Conflict
from shared.events.catalog import (
    AlertAcknowledged,
    AlertFacts,
    AlertKind,
    AlertLevel,
    AlertRaised,
    AlertResolved,
    Handler,
)
from shared.events.outbox import publish

PRODUCER = "monitor"
SYSTEM = "system"

LEVELS: dict[str, AlertLevel] = {
    "early_warning": "yellow", "overdue": "red", "stage_overrun": "orange", "follow_up": "yellow",
    "special_procedure": "orange", "repeated_refusal": "orange", "calendar_missing": "red",
    "rectification_overdue": "orange",
    "bad_rating": "orange", "complaint": "red",
    "vacant_window": "red", "long_wait": "orange", "appointment_request": "yellow", "inquiry": "yellow",
}


@dataclass(frozen=True)
class NewAlert:
    """What an alert is about. `due_moment` is when its cause fell due (the due-work lag is measured from it)."""

    cause_key: str
    kind: AlertKind
    text: str
    center_id: str | None
    case_no: str | None = None
    clock_version: int | None = None
    window: str | None = None
    department: str | None = None
    handler: Handler | None = None
    item_name: str | None = None
    due_at: datetime | None = None
    overdue_days: int | None = None
    due_moment: datetime | None = None
    details: dict[str, Any] | None = None
    level: AlertLevel | None = None  # the kind's level (LEVELS) unless given: an overrun may be graver


def facts(alert: Alert) -> AlertFacts:
    handler = (Handler(id=alert.handler_id, display_name=alert.handler_name or alert.handler_id)
               if alert.handler_id else None)
    return AlertFacts(
        id=alert.id, center_id=alert.center_id, kind=alert.kind,
        level=alert.level, status=alert.status,
        raised_at=alert.raised_at, text=alert.text, case_no=alert.case_no, clock_version=alert.clock_version,
        window=alert.window, department=alert.department, handler=handler, item_name=alert.item_name,
        due_at=alert.due_at, overdue_days=alert.overdue_days)


def subject(alert: Alert) -> str:
    return f"alert:{alert.id}"


async def raise_alert(session: AsyncSession, new: NewAlert) -> Alert | None:
    """Raise the alert unless its cause already raised one; the new alert, or None."""
    now = clock.now()
    values: dict[str, Any] = {
        "cause_key": new.cause_key, "center_id": new.center_id, "kind": new.kind, "level": new.level or LEVELS[new.kind],
        "status": "raised", "text": new.text, "case_no": new.case_no, "clock_version": new.clock_version,
        "window": new.window, "department": new.department,
        "handler_id": new.handler.id if new.handler else None,
        "handler_name": new.handler.display_name if new.handler else None,
        "item_name": new.item_name, "due_at": new.due_at, "overdue_days": new.overdue_days,
        "due_moment": new.due_moment, "raised_at": now, "details": new.details or {},
    }
    stmt = pg_insert(Alert).values(**values).on_conflict_do_nothing(index_elements=["cause_key"]).returning(Alert.id)
    alert_id = (await session.execute(stmt)).scalar_one_or_none()
    if alert_id is None:
        return None
    alert = await session.get(Alert, alert_id)
    assert alert is not None
    await publish(session, PRODUCER, AlertRaised(alert=facts(alert)), subject=subject(alert),
                  center_id=alert.center_id)
    lag = (now - new.due_moment).total_seconds() if new.due_moment is not None else None
    metrics.raised(session, alert.center_id, alert.kind, alert.level, lag)
    return alert


async def get(session: AsyncSession, alert_id: int, *, for_update: bool = False) -> Alert:
    return await get_or_404(session, Alert, alert_id, field="alert_id", for_update=for_update)


async def acknowledge(session: AsyncSession, alert: Alert, principal: Principal, note: str | None) -> Alert:
    if alert.status != "raised":
        raise Conflict(f"alert {alert.id} is {alert.status}: only a raised alert is acknowledged",
                       field="alert_id", code=f"alert_{alert.status}")
    alert.status, alert.acknowledged_at = "acknowledged", clock.now()
    alert.acknowledged_by, alert.acknowledge_note = principal.subject, note
    await session.flush()
    await publish(session, PRODUCER, AlertAcknowledged(alert=facts(alert), by=principal.subject, note=note),
                  subject=subject(alert), center_id=alert.center_id)
    return alert


async def resolve(session: AsyncSession, alert: Alert, by: str, note: str | None) -> Alert:
    if alert.status == "resolved":
        raise Conflict(f"alert {alert.id} is resolved already", field="alert_id", code="alert_resolved")
    alert.status, alert.resolved_at, alert.resolved_by, alert.resolve_note = "resolved", clock.now(), by, note
    await session.flush()
    await publish(session, PRODUCER, AlertResolved(alert=facts(alert), by=by, note=note),
                  subject=subject(alert), center_id=alert.center_id)
    metrics.resolved(session, alert.center_id, alert.kind, alert.level)
    return alert


async def resolve_for_case(session: AsyncSession, case_no: str, kinds: tuple[str, ...], note: str, *,
                           older_than_version: int | None = None) -> int:
    """The system resolves the case's open alerts of `kinds` (all versions, or those of a clock version
    before `older_than_version`): their cause has ended. Returns how many."""
    stmt = select(Alert).where(Alert.case_no == case_no, Alert.status != "resolved", Alert.kind.in_(kinds))
    if older_than_version is not None:
        stmt = stmt.where(Alert.clock_version < older_than_version)
    found = (await session.scalars(stmt.with_for_update())).all()
    for alert in found:
        await resolve(session, alert, SYSTEM, note)
    return len(found)


async def resolve_for_sanction(session: AsyncSession, sanction_id: int, note: str) -> int:
    """The system resolves the open rectification alerts of a sanction (it was rectified)."""
    found = (await session.scalars(
        select(Alert).where(Alert.kind == "rectification_overdue", Alert.status != "resolved",
                            Alert.details["sanction_id"].as_integer() == sanction_id).with_for_update())).all()
    for alert in found:
        await resolve(session, alert, SYSTEM, note)
    return len(found)


async def set_overdue_days(session: AsyncSession, alert_id: int, days: int) -> None:
    await session.execute(update(Alert).where(Alert.id == alert_id).values(overdue_days=days))

