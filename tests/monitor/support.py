"""The monitor under test, end to end through Kafka: its app (routes, feed) on a fresh database, its `cases`
consumer reading a topic of the test's own, the timer runner fired by the test after it moves the fixed
clock (never by sleeping), and case events built the way the case registry publishes them."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from services.monitor import consumers as monitor_consumers
from services.monitor import watch
from shared import clock
from shared.calendar.engine import WorkCalendar
from shared.db import make_engine
from shared.events.catalog import (
    CaseAccepted,
    CaseCompleted,
    CaseDueChanged,
    CaseFacts,
    CasePaused,
    CaseResumed,
    ClockState,
    DepartmentUpserted,
    Handler,
    ItemRef,
)
from shared.events.consumer import EventConsumer
from shared.events.envelope import Envelope, EventData
from shared.events.kafka import ensure_topics, new_admin
from shared.events.topics import Topic, topic_for
from shared.timers import TimerRunner

FAST_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500}
CASES_TOPIC = topic_for("cases").name
CALENDAR = WorkCalendar()
CENTRE = "320102"
_sequence = itertools.count(1000)


async def until(check: Any, within: float = 30, what: str = "condition") -> Any:
    deadline = clock.monotonic() + within
    while not (result := await check()):
        if clock.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return result


@dataclass
class Case:
    """A case as the registry would publish it, with its clock worked out by the calendar."""

    case_no: str
    department: str
    accepted_on: date
    limit_days: int
    center_id: str = CENTRE
    warn_days: int = 1
    handler: str = "clerk-1"
    handler_name: str = "王小明"
    item_code: str = "JS001"
    item_name: str = "建设工程施工许可"
    imported: bool = False
    version: int = 1
    status: str = "in_progress"
    shift: int = 0
    applicant_hash: str = "h" * 64

    @property
    def due_at(self) -> datetime:
        return CALENDAR.due_at(self.accepted_on, self.limit_days + self.shift, self.center_id)

    @property
    def warn_at(self) -> datetime | None:
        return CALENDAR.warning_at(self.accepted_on, clock.local_date(self.due_at), self.warn_days, self.center_id)

    def facts(self, **changes: Any) -> CaseFacts:
        accepted_at = datetime.combine(self.accepted_on, datetime.min.time().replace(hour=10),
                                       tzinfo=clock.LOCAL_TZ)
        values: dict[str, Any] = dict(
            case_no=self.case_no, center_id=self.center_id, kind="promised", status=self.status, stage="审查",
            stage_index=0, accepted_at=accepted_at, due_at=self.due_at,
            legal_due_at=CALENDAR.due_at(self.accepted_on, self.limit_days * 2 + self.shift, self.center_id),
            warn_at=self.warn_at, clock_version=self.version, department=self.department,
            item=ItemRef(code=self.item_code, name=self.item_name, promised_limit_days=self.limit_days,
                         legal_limit_days=self.limit_days * 2),
            handler=Handler(id=self.handler, display_name=self.handler_name), window="3",
            applicant_hash=self.applicant_hash, applicant_masked="张*", imported=self.imported,
            overdue_at_import=self.imported and self.due_at < clock.now())
        values.update(changes)
        return CaseFacts(**values)

    def clock_state(self) -> ClockState:
        return ClockState(due_at=self.due_at, legal_due_at=self.due_at, warn_at=self.warn_at,
                          clock_version=self.version)


def accepted(case: Case) -> CaseAccepted:
    return CaseAccepted(case=case.facts(), source="window", id_number_masked="3201**********1234",
                        lookup_code_sealed="sealed")


def paused(case: Case, on: date) -> CasePaused:
    case.status = "supplement"
    return CasePaused(case=case.facts(), pause_kind="supplement", reason="补正材料", paused_on=on,
                      missing_materials=["营业执照"])


def resumed(case: Case, paused_on: date, on: date) -> list[EventData]:
    """case.resumed then case.due_changed, as the registry publishes a resume (the clock moves once)."""
    before = case.clock_state()
    case.status, case.shift, case.version = "in_progress", case.shift + CALENDAR.pause_shift(paused_on, on), \
        case.version + 1
    return [CaseResumed(case=case.facts(), pause_kind="supplement", paused_on=paused_on, resumed_on=on,
                        shift_days=case.shift),
            CaseDueChanged(case=case.facts(), previous=before, cause="resume")]


def completed(case: Case, at: datetime) -> CaseCompleted:
    case.status = "completed"
    late = CALENDAR.working_days_between(clock.local_date(case.due_at), clock.local_date(at), case.center_id)
    return CaseCompleted(case=case.facts(), result="approved", completed_at=at, completed_late=late > 0,
                         overdue_working_days=late)


def department(code: str, name: str, center_id: str = CENTRE) -> DepartmentUpserted:
    return DepartmentUpserted(center_id=center_id, code=code, name=name)


@dataclass
class Monitor:
    """The monitor's app (`client`), its cases consumer on the test's topic, and its timers."""

    client: httpx.AsyncClient
    kafka_bootstrap: str
    topic: str
    sent: int = 0
    runners: list[TimerRunner] = field(default_factory=list)

    @property
    def db(self) -> Any:
        return self.client.db  # type: ignore[attr-defined]

    async def send(self, *payloads: EventData, key: str | None = None) -> None:
        """Publish case-topic events (keyed by case, as the registry's relay does) and wait until applied."""
        producer = AIOKafkaProducer(bootstrap_servers=self.kafka_bootstrap, acks="all")
        await producer.start()
        ids: list[uuid.UUID] = []
        try:
            for payload in payloads:
                case = getattr(payload, "case", None)
                subject = key or (f"case:{case.case_no}" if case is not None else "cases")
                envelope = Envelope.wrap("cases", payload, subject=subject,
                                         center_id=case.center_id if case is not None else CENTRE
                                         ).model_copy(update={"sequence": next(_sequence)})
                ids.append(envelope.id)
                await producer.send_and_wait(self.topic, envelope.model_dump_json().encode(),
                                             key=subject.encode(),
                                             headers=[("type", envelope.type.encode()), ("producer", b"cases")])
        finally:
            await producer.stop()
        self.sent += len(payloads)

        async def applied() -> bool:
            # these events by id (not a count: the consumer prunes inbox rows older than the fixed clock's
            # now minus 8 days, and a test moves that clock by weeks)
            rows = await self.db.fetch("SELECT count(*) AS n FROM inbox WHERE consumer = 'monitor.cases' "
                                       "AND event_id = ANY($1::uuid[])", ids)
            return rows[0]["n"] == len(ids)

        await until(applied, what=f"{len(ids)} case events applied")

    async def fire(self) -> int:
        """Fire every timer due at the clock's now (as the worker's runner does), on the first runner."""
        return await self.runners[0].fire_due()

    async def at(self, moment: datetime) -> int:
        """Move the fixed clock to `moment` and fire what fell due."""
        fixed = clock.get_clock()
        fixed.set(moment)  # type: ignore[attr-defined]
        fired = 0
        while (n := await self.fire()) > 0:
            fired += n
        return fired

    async def alerts(self, headers: dict[str, str], **query: Any) -> list[dict[str, Any]]:
        r = await self.client.get("/alerts", params={"center": CENTRE, **query}, headers=headers)
        assert r.status_code == 200, r.text
        return list(r.json()["items"])


@asynccontextmanager
async def monitor(service_client: Any, kafka: Any, *, runners: int = 1) -> AsyncIterator[Monitor]:
    """A fresh monitor with its cases consumer running on a topic of this test's own."""
    topic = f"test.cases.{uuid.uuid4().hex[:10]}"
    admin = new_admin(kafka.bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin, [Topic(topic, "cases", 3, "subject")])
    finally:
        await admin.close()
    async with service_client("monitor") as client:
        app = client.app
        settings = app.state.settings.model_copy(
            update={"hall": app.state.settings.hall.model_copy(update={"kafka_bootstrap": kafka.bootstrap})})
        built = monitor_consumers.build_consumers(settings, app.state.sessionmaker, topic_names={CASES_TOPIC: topic},
                                                  kafka_options=FAST_GROUP)
        consumers: list[EventConsumer] = [c for c in built if c.id == "monitor.cases"]
        engines = [make_engine(client.db.url, application_name=f"test-monitor-timers-{i}") for i in range(runners)]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(c.run(stop)) for c in consumers]
        try:
            yield Monitor(client, kafka.bootstrap, topic,
                          runners=[TimerRunner(e, watch.TIMER_HANDLERS, batch_size=100) for e in engines])
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 20)
            for engine in engines:
                await engine.dispose()


def local(day: date, hour: int = 9, minute: int = 0) -> datetime:
    return datetime.combine(day, datetime.min.time().replace(hour=hour, minute=minute), tzinfo=clock.LOCAL_TZ)


def days_ago(n: int) -> date:
    return CALENDAR.subtract_working_days(clock.today_local(), n, CENTRE)


def next_morning(after: datetime) -> datetime:
    return after + timedelta(seconds=1)
