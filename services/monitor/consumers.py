"""Event type -> handler of the monitor service's consumers, and the consumers its worker starts.

`cases`: every case event keeps the read model of cases and their clocks (and arms the timers), the
departments' names come from department.upserted, a calendar year missing from calendar.fallback_used. The
case registry keys its events by case, so one case's events arrive in order."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.monitor import hours, watch
from services.monitor.complaints import wiring as complaints
from services.monitor.hall import wiring as hall
from services.monitor.models import CenterCopy, DepartmentCopy
from shared.calendar.store import calendar_consumer
from shared.events.catalog import DepartmentUpserted
from shared.events.consumer import ConsumerSpec, EventConsumer, Handler, build_all, upsert_read_copy
from shared.events.envelope import Envelope
from shared.events.topics import topic_for
from shared.readcopy import center_consumer, table_of
from shared.settings import ServiceSettings

CASE_EVENTS = ("case.accepted", "case.stage_advanced", "case.paused", "case.resumed", "case.extension_requested",
               "case.extended", "case.expedited", "case.due_changed", "case.forwarded",
               "case.forward_result_recorded", "case.completed", "case.refusal_proposed", "case.refusal_returned",
               "case.refused", "case.delivered", "case.withdrawn", "case.reassigned", "case.handed_back")
DEPARTMENTS = table_of(DepartmentCopy)


async def copy_department(session: AsyncSession, envelope: Envelope) -> None:
    department = envelope.payload()
    assert isinstance(department, DepartmentUpserted)
    if envelope.sequence is None:
        raise ValueError("department.upserted carries no outbox sequence: cannot order it")
    await upsert_read_copy(session, DEPARTMENTS, {
        "center_id": department.center_id, "code": department.code, "name": department.name,
        "chief_rep": department.chief_rep, "active": department.active, "updated_at": envelope.occurred_at,
        "last_event_sequence": envelope.sequence,
    })


CASES_HANDLERS: dict[str, Handler] = {
    **{event_type: watch.apply_case_event for event_type in CASE_EVENTS},
    "department.upserted": copy_department,
    "calendar.fallback_used": watch.on_calendar_missing,
    **hall.CASES_HANDLERS, **complaints.CASES_HANDLERS,
}

# the hall (queue topic, keyed by centre: one centre's events in order): its settings and hours, its windows,
# tickets and ratings
HALL_HANDLERS: dict[str, Handler] = {
    "center.settings_changed": hours.copy_settings,
    "center.schedule_changed": hours.copy_schedule,
    **hall.QUEUE_HANDLERS, **complaints.QUEUE_HANDLERS,
}

CONSUMERS: list[ConsumerSpec] = [
    center_consumer(CenterCopy),
    calendar_consumer(),
    ConsumerSpec("cases", (topic_for("cases").name,), CASES_HANDLERS),
    ConsumerSpec("hall", (topic_for("queue").name,), HALL_HANDLERS),
]


def build_consumers(settings: ServiceSettings, sessionmaker: async_sessionmaker[AsyncSession],
                    **options: Any) -> list[EventConsumer]:
    """The consumers the worker runs; `options` go to each EventConsumer (tests: topic_names, kafka_options)."""
    return build_all(CONSUMERS, settings, sessionmaker, **options)
