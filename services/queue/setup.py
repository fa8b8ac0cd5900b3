"""The centre admin's configuration of a hall: queue settings, hall schedule, services and windows.
Each change publishes the complete state of what changed (reference events). Never commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.queue import repository
from services.queue.models import Center, Service, Window, WindowService
from services.queue.schemas import ServiceIn, ServicePatch, WindowIn, WindowOut, WindowPatch
from shared import clock, schedule
from shared.errors import AppError, Conflict
from shared.events.catalog import (
    CenterScheduleChanged,
    CenterSettingsChanged,
    HallSchedule,
    QueueSettings,
    ServiceUpserted,
    ServiceWeight,
    WindowUpserted,
)
from shared.events.outbox import publish
from shared.schedule import check_schedule

PRODUCER = "queue"

DEFAULT_SCHEDULE = schedule.DEFAULT_SCHEDULE


def settings_of(center: Center) -> QueueSettings:
    return QueueSettings.model_validate(center.settings or {})


def schedule_of(center: Center) -> HallSchedule:
    return HallSchedule.model_validate(center.schedule) if center.schedule else DEFAULT_SCHEDULE


async def set_settings(session: AsyncSession, center: Center, settings: QueueSettings) -> QueueSettings:
    if "{number}" not in settings.announcement_template:
        raise AppError("the announcement must say the ticket number: put {number} in it",
                       field="announcement_template", status=422, code="invalid_settings")
    center.settings = settings.model_dump(mode="json")
    center.updated_at = clock.now()
    await session.flush()  # the row lock orders concurrent changes of one centre, and their events
    await publish(session, PRODUCER, CenterSettingsChanged(center_id=center.id, settings=settings),
                  subject=f"settings:{center.id}", center_id=center.id)
    return settings


async def set_schedule(session: AsyncSession, center: Center, schedule: HallSchedule) -> HallSchedule:
    check_schedule(schedule)
    center.schedule = schedule.model_dump(mode="json")
    center.updated_at = clock.now()
    await session.flush()
    await publish(session, PRODUCER, CenterScheduleChanged(center_id=center.id, schedule=schedule),
                  subject=f"schedule:{center.id}", center_id=center.id)
    return schedule


# services (业务类型)

async def create_service(session: AsyncSession, center: Center, data: ServiceIn) -> Service:
    if await repository.get_service(session, center.id, data.code) is not None:
        raise Conflict(f"service {data.code} already exists in centre {center.id}", field="code",
                       code="service_exists")
    if await repository.service_with_prefix(session, center.id, data.prefix) is not None:
        raise Conflict(f"another service of centre {center.id} issues {data.prefix} numbers", field="prefix",
                       code="prefix_taken")
    service = Service(center_id=center.id, code=data.code, name=data.name, prefix=data.prefix,
                      department=data.department, wait_threshold_minutes=data.wait_threshold_minutes,
                      default_service_minutes=data.default_service_minutes,
                      daily_limit_per_person=data.daily_limit_per_person,
                      slots=[s.model_dump(mode="json") for s in data.slots], active=True, updated_at=clock.now())
    session.add(service)
    await session.flush()
    await _publish_service(session, service)
    return service


async def update_service(session: AsyncSession, service: Service, data: ServicePatch) -> Service:
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    for name in ("name", "wait_threshold_minutes", "default_service_minutes", "active"):
        if name in changes and changes[name] is None:
            raise AppError(f"{name} cannot be null", field=name, status=422, code="validation_failed")
    if "slots" in changes:
        changes["slots"] = [s.model_dump(mode="json") for s in (data.slots or [])]
    for name, value in changes.items():
        setattr(service, name, value)
    service.updated_at = clock.now()
    await session.flush()
    await _publish_service(session, service)
    return service


async def _publish_service(session: AsyncSession, service: Service) -> None:
    await publish(session, PRODUCER, ServiceUpserted(
        center_id=service.center_id, code=service.code, name=service.name, prefix=service.prefix,
        department=service.department, wait_threshold_minutes=service.wait_threshold_minutes,
        default_service_minutes=service.default_service_minutes,
        daily_limit_per_person=service.daily_limit_per_person, slots=service.slots, active=service.active),
        subject=f"service:{service.center_id}:{service.code}", center_id=service.center_id)


# windows (窗口)

async def _check_services(session: AsyncSession, center_id: str, weights: list[ServiceWeight]) -> None:
    known = {s.code for s in await repository.list_services(session, center_id)}
    seen: set[str] = set()
    for i, weight in enumerate(weights):
        if weight.service_code not in known:
            raise AppError(f"centre {center_id} has no service {weight.service_code}",
                           field=f"services[{i}].service_code", status=422, code="unknown_service")
        if weight.service_code in seen:
            raise AppError(f"service {weight.service_code} is listed twice", field=f"services[{i}].service_code",
                           status=422, code="validation_failed")
        seen.add(weight.service_code)


async def create_window(session: AsyncSession, center: Center, data: WindowIn) -> Window:
    if await repository.get_window(session, center.id, data.number) is not None:
        raise Conflict(f"window {data.number} already exists in centre {center.id}", field="number",
                       code="window_exists")
    await _check_services(session, center.id, data.services)
    window = Window(center_id=center.id, number=data.number, name=data.name, department=data.department,
                    duty=data.duty, joint_approval=data.joint_approval, a_clerk=data.a_clerk, b_clerk=data.b_clerk,
                    active=True, state="signed_out", priority_streak=0, updated_at=clock.now())
    session.add(window)
    await session.flush()
    await _set_weights(session, window, data.services)
    await _publish_window(session, window)
    return window


async def update_window(session: AsyncSession, window: Window, data: WindowPatch) -> Window:
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    for name in ("name", "duty", "joint_approval", "active", "services"):
        if name in changes and changes[name] is None:
            raise AppError(f"{name} cannot be null", field=name, status=422, code="validation_failed")
    weights = changes.pop("services", None)
    if weights is not None:
        assert data.services is not None
        await _check_services(session, window.center_id, data.services)
    for name, value in changes.items():
        setattr(window, name, value)
    window.updated_at = clock.now()
    await session.flush()
    if data.services is not None and weights is not None:
        await _set_weights(session, window, data.services)
    await _publish_window(session, window)
    return window


async def _set_weights(session: AsyncSession, window: Window, weights: list[ServiceWeight]) -> None:
    await repository.delete_window_services(session, window.center_id, window.number)
    session.add_all([WindowService(center_id=window.center_id, window=window.number, service_code=w.service_code,
                                   weight=w.weight) for w in weights])
    await session.flush()


async def window_out(session: AsyncSession, window: Window) -> WindowOut:
    weights = await repository.window_weights(session, window.center_id, window.number)
    return WindowOut(center_id=window.center_id, number=window.number, name=window.name,
                     department=window.department,
                     services=[ServiceWeight(service_code=c, weight=w) for c, w in sorted(weights.items())],
                     duty=window.duty, joint_approval=window.joint_approval, a_clerk=window.a_clerk,
                     b_clerk=window.b_clerk, active=window.active, state=window.state, clerk_id=window.clerk_id,
                     post=window.post, priority_streak=window.priority_streak,
                     active_ticket_id=window.active_ticket_id, updated_at=window.updated_at,
                     state_since=window.state_since, away_message=window.away_message,
                     closed_reason=window.closed_reason, last_heartbeat_at=window.last_heartbeat_at)


async def _publish_window(session: AsyncSession, window: Window) -> None:
    weights = await repository.window_weights(session, window.center_id, window.number)
    await publish(session, PRODUCER, WindowUpserted(
        center_id=window.center_id, number=window.number, name=window.name, department=window.department,
        services=[ServiceWeight(service_code=c, weight=w) for c, w in sorted(weights.items())],
        duty=window.duty, joint_approval=window.joint_approval, a_clerk=window.a_clerk, b_clerk=window.b_clerk,
        active=window.active), subject=f"window:{window.center_id}:{window.number}", center_id=window.center_id)
