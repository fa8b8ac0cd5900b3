"""The hall's alerts, end to end through Kafka with the fixed clock (issue 24's acceptance): a vacant window
(空岗) after the centre's vacancy minutes of opening time with tickets waiting, and none when a B post signs
in, nothing waits or the day closes; a long wait counted in opening hours only (over the noon break only the
open minutes count); staff appointment requests and inquiries unanswered when promised. The queue's events
go to a topic of the test's own, read by the monitor's `hall` consumer; the inquiries by its `cases` one."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.monitor import consumers as monitor_consumers
from services.monitor import watch
from services.monitor.hall import wiring as hall_wiring
from shared import clock
from shared.db import make_engine
from shared.events.catalog import (
    AppointmentConfirmed,
    AppointmentRequested,
    AppointmentRequestFacts,
    CallFacts,
    CenterScheduleChanged,
    CenterSettingsChanged,
    Clerk,
    HallSchedule,
    Handler,
    InquiryAnswered,
    InquiryFacts,
    InquiryRegistered,
    NoonService,
    QueueSettings,
    ServiceUpserted,
    ServiceWeight,
    TicketCalled,
    TicketCancelled,
    TicketFacts,
    TicketIssued,
    WindowAway,
    WindowBack,
    WindowClosed,
    WindowHeartbeatLost,
    WindowHeartbeatRestored,
    WindowSignedIn,
    WindowSignedOut,
    WindowUpserted,
)
from shared.events.consumer import EventConsumer
from shared.events.envelope import Envelope, EventData
from shared.events.kafka import ensure_topics, new_admin
from shared.events.topics import Topic, topic_for
from shared.schedule import DEFAULT_SCHEDULE
from shared.timers import TimerRunner
from tests.monitor.support import FAST_GROUP, until

pytestmark = pytest.mark.kafka

CENTRE = "320102"
QUEUE_TOPIC = topic_for("queue").name
CASES_TOPIC = topic_for("cases").name
DAY = date(2026, 3, 5)  # a Thursday: 9:00-12:00 and 13:30-17:30 (the default schedule)
_sequence = itertools.count(5000)
_ticket_ids = itertools.count(1)


def local(hour: int, minute: int = 0, second: int = 0, day: date = DAY) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=clock.LOCAL_TZ)


@dataclass
class Hall:
    """The monitor's app, its hall and cases consumers on the test's topics, its timers (the worker's)."""

    client: httpx.AsyncClient
    bootstrap: str
    topics: dict[str, str]
    runner: TimerRunner
    headers: dict[str, str]
    sequences: list[int] = field(default_factory=list)

    @property
    def db(self) -> Any:
        return self.client.db  # type: ignore[attr-defined]

    async def row(self, sql: str, *args: Any) -> Any:
        rows = await self.db.fetch(sql, *args)
        return rows[0] if rows else None

    async def value(self, sql: str, *args: Any) -> Any:
        row = await self.row(sql, *args)
        return row[0] if row is not None else None

    def at(self, moment: datetime) -> None:
        clock.get_clock().set(moment)  # type: ignore[attr-defined]

    async def send(self, *payloads: EventData, producer: str = "queue", sequence: int | None = None) -> None:
        """Publish events (keyed by centre, as the queue's relay does) now, and wait until applied."""
        kafka = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await kafka.start()
        ids: list[uuid.UUID] = []
        try:
            for payload in payloads:
                subject = f"center:{CENTRE}"
                n = sequence if sequence is not None else next(_sequence)
                self.sequences.append(n)
                envelope = Envelope.wrap(producer, payload, subject=subject, center_id=CENTRE).model_copy(
                    update={"sequence": n})
                ids.append(envelope.id)
                await kafka.send_and_wait(self.topics[producer], envelope.model_dump_json().encode(),
                                          key=subject.encode(),
                                          headers=[("type", envelope.type.encode()), ("producer", producer.encode())])
        finally:
            await kafka.stop()
        consumer = "monitor.hall" if producer == "queue" else "monitor.cases"

        async def applied() -> bool:
            rows = await self.db.fetch("SELECT count(*) AS n FROM inbox WHERE consumer = $1 "
                                       "AND event_id = ANY($2::uuid[])", consumer, ids)
            return rows[0]["n"] == len(ids)

        await until(applied, what=f"{len(ids)} events applied by {consumer}")

    async def fire_at(self, moment: datetime) -> int:
        self.at(moment)
        fired = 0
        while (n := await self.runner.fire_due()) > 0:
            fired += n
        return fired

    async def alerts(self, kind: str | None = None) -> list[dict[str, Any]]:
        r = await self.client.get("/alerts", params={"center": CENTRE, **({"kind": kind} if kind else {})},
                                  headers=self.headers)
        assert r.status_code == 200, r.text
        return list(r.json()["items"])


@asynccontextmanager
async def hall(service_client: Any, kafka: Any, tokens: Any) -> AsyncIterator[Hall]:
    topics = {"queue": f"test.queue.{uuid.uuid4().hex[:10]}", "cases": f"test.cases.{uuid.uuid4().hex[:10]}"}
    admin = new_admin(kafka.bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin, [Topic(topics["queue"], "queue", 3, "center"),
                                    Topic(topics["cases"], "cases", 3, "subject")])
    finally:
        await admin.close()
    async with service_client("monitor") as client:
        app = client.app
        settings = app.state.settings.model_copy(
            update={"hall": app.state.settings.hall.model_copy(update={"kafka_bootstrap": kafka.bootstrap})})
        built = monitor_consumers.build_consumers(
            settings, app.state.sessionmaker, topic_names={QUEUE_TOPIC: topics["queue"], CASES_TOPIC: topics["cases"]},
            kafka_options=FAST_GROUP)
        consumers: list[EventConsumer] = [c for c in built if c.id in ("monitor.hall", "monitor.cases")]
        assert len(consumers) == 2
        engine = make_engine(client.db.url, application_name="test-monitor-hall-timers")
        stop = asyncio.Event()
        tasks = [asyncio.create_task(c.run(stop)) for c in consumers]
        try:
            runner = TimerRunner(engine, {**watch.TIMER_HANDLERS, **hall_wiring.TIMER_HANDLERS}, batch_size=100)
            yield Hall(client, kafka.bootstrap, topics, runner, tokens.headers("supervisor", [CENTRE]))
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 20)
            await engine.dispose()


# --- the queue's events, as it publishes them --------------------------------------------------------------

def service(code: str, threshold: int = 30) -> ServiceUpserted:
    return ServiceUpserted(center_id=CENTRE, code=code, name=f"业务{code}", prefix=code, department="SCJ",
                           wait_threshold_minutes=threshold, default_service_minutes=10)


def window(number: str, services: dict[str, int]) -> WindowUpserted:
    return WindowUpserted(center_id=CENTRE, number=number, name=f"{number}号窗口", department="SCJ",
                          services=[ServiceWeight(service_code=c, weight=w) for c, w in services.items()],
                          a_clerk=f"a{number}", b_clerk=f"b{number}")


def signed_in(number: str, post: str = "A", replaces: str | None = None) -> WindowSignedIn:
    clerk = f"{post.lower()}{number}"
    return WindowSignedIn(center_id=CENTRE, window=number, post=post,  # type: ignore[arg-type]
                          clerk=Clerk(id=clerk, display_name=f"{post}岗{number}"), replaces=replaces)


def heartbeat_lost(number: str, last: datetime) -> WindowHeartbeatLost:
    return WindowHeartbeatLost(center_id=CENTRE, window=number, clerk_id=f"a{number}", post="A",
                               last_heartbeat_at=last, silent_s=90)


def away(number: str, at: datetime) -> WindowAway:
    return WindowAway(center_id=CENTRE, window=number, clerk_id=f"a{number}", post="A", message="去档案室取件", at=at)


@dataclass
class Ticket:
    service_code: str
    issued_at: datetime
    ticket_id: int = field(default_factory=lambda: next(_ticket_ids))

    def facts(self) -> TicketFacts:
        return TicketFacts(ticket_id=self.ticket_id, center_id=CENTRE, business_date=clock.local_date(self.issued_at),
                           service_code=self.service_code, department="SCJ", number=f"{self.service_code}{self.ticket_id:03d}",
                           kind="walk_in", channel="kiosk", issued_at=self.issued_at)

    def issued(self) -> TicketIssued:
        return TicketIssued(ticket=self.facts(), people_ahead=0, estimated_wait_s=600, phone_hash="p" * 64,
                            phone_masked="138****0000", phone_sealed="sealed")

    def called(self, number: str, wait_s: int) -> TicketCalled:
        return TicketCalled(ticket=self.facts(), priority_streak=0, call=CallFacts(
            window=number, clerk=Clerk(id=f"a{number}", display_name="A"), post="A", wait_s=wait_s, tier=1,
            announcement="请到窗口办理"))


async def set_up(h: Hall, vacancy_minutes: int = 5) -> None:
    h.at(local(8, 30))
    await h.send(CenterSettingsChanged(center_id=CENTRE, settings=QueueSettings(vacancy_minutes=vacancy_minutes)),
                 CenterScheduleChanged(center_id=CENTRE, schedule=HallSchedule(
                     weekly=DEFAULT_SCHEDULE.weekly, noon_service=NoonService(start=time(12), end=time(13, 30),
                                                                              windows=["9"]))),
                 service("A", 120), service("B", 120), service("C", 120),
                 window("1", {"A": 10}), window("2", {"A": 10}), window("3", {"C": 10, "B": 0}),
                 window("4", {"A": 10}), window("9", {"A": 10}))


async def vacant(h: Hall) -> list[dict[str, Any]]:
    return await h.alerts("vacant_window")


# --- vacant window (空岗) --------------------------------------------------------------------------------

async def test_heartbeats_stop_with_tickets_waiting_vacant_after_the_vacancy_minutes_then_resolved(
        service_client, kafka, tokens, fixed_clock):
    async with hall(service_client, kafka, tokens) as h:
        await set_up(h, vacancy_minutes=5)
        h.at(local(10, 0))
        await h.send(signed_in("1"))
        h.at(local(10, 1))
        await h.send(Ticket("A", local(10, 1)).issued())
        # the terminal's last beat was 10:05; the queue's job flags it 90 s later
        h.at(local(10, 6, 30))
        await h.send(heartbeat_lost("1", local(10, 5)))
        assert await h.fire_at(local(10, 10)) == 0  # 5 minutes exactly: not over the limit yet
        assert await vacant(h) == []
        assert await h.fire_at(local(10, 10, 1)) == 1
        [alert] = await vacant(h)
        assert alert["level"] == "red" and alert["window"] == "1" and alert["handler_id"] == "a1"
        assert alert["details"]["reason"] == "silent" and alert["details"]["waiting"] == 1
        assert "1号窗口" in alert["text"] and "10:05" in alert["text"] and "5分钟" in alert["text"]
        # once per episode: a timer fired again (a second worker, a crash) raises nothing more
        assert await h.fire_at(local(10, 30)) == 0
        assert len(await vacant(h)) == 1
        # a beat again: the episode ends, the system resolves it
        h.at(local(10, 31))
        await h.send(WindowHeartbeatRestored(center_id=CENTRE, window="1", clerk_id="a1", post="A",
                                             lost_at=local(10, 6, 30), silent_s=26 * 60, at=local(10, 31)))
        [alert] = await vacant(h)
        assert alert["status"] == "resolved" and alert["resolved_by"] == "system"
        # a new episode (away) is a new cause: a second alert
        await h.send(away("1", local(10, 31)))
        assert await h.fire_at(local(10, 36, 1)) == 1
        alerts = await vacant(h)
        assert [a["details"]["reason"] for a in alerts] == ["silent", "away"]
        assert "暂离（去档案室取件）" in alerts[1]["text"]
        h.at(local(10, 40))
        await h.send(WindowBack(center_id=CENTRE, window="1", clerk_id="a1", post="A", away_s=540, at=local(10, 40)))
        assert [a["status"] for a in await vacant(h)] == ["resolved", "resolved"]


async def test_a_b_post_signing_in_no_ticket_waiting_or_closing_time_none(service_client, kafka, tokens, fixed_clock):
    async with hall(service_client, kafka, tokens) as h:
        await set_up(h, vacancy_minutes=5)
        h.at(local(10, 0))
        await h.send(signed_in("2"), signed_in("3"), Ticket("A", local(10, 0)).issued())
        # window 2 goes away with a ticket waiting; its B post steps in after 3 minutes (the queue ends the A
        # post's session, then signs the B post in)
        await h.send(away("2", local(10, 0)), away("3", local(10, 0)))
        h.at(local(10, 3))
        await h.send(WindowSignedOut(center_id=CENTRE, window="2", clerk_id="a2", reason="B岗顶岗"),
                     signed_in("2", post="B", replaces="a2"))
        # window 3 (services C, and B as a reserve) is away too, but nothing it could call waits
        assert await h.fire_at(local(10, 20)) == 1  # window 3's timer (window 2's was cancelled)
        assert await vacant(h) == []
        # a ticket of a service window 3 does not serve: still nothing for it
        await h.send(Ticket("A", local(10, 20)).issued())
        assert await vacant(h) == []
        # a ticket of its reserve service arrives: window 3 is over the limit and now leaves someone waiting
        h.at(local(10, 21))
        await h.send(Ticket("B", local(10, 21)).issued())
        [alert] = await vacant(h)
        assert alert["window"] == "3" and alert["details"]["waiting"] == 1

        # closing time: window 4 goes silent at 17:27 (last beat) with tickets waiting; 3 minutes of opening
        # time are left today, fewer than the 5 it takes: no alert at the close or after
        h.at(local(17, 0))
        await h.send(signed_in("4"))
        h.at(local(17, 28, 30))
        await h.send(heartbeat_lost("4", local(17, 27)))
        await h.fire_at(local(17, 40))  # the long waits of the morning's tickets fire
        await h.fire_at(local(22, 0))
        assert [a["window"] for a in await vacant(h)] == ["3"]
        # the timer waits for the next opening (the count restarts with the day, as the queue counts it),
        # and closing the window cancels it
        due = await h.value("SELECT due_at FROM timers WHERE kind = 'monitor.hall.vacancy' AND key = $1 "
                                  "AND fired_at IS NULL", f"{CENTRE}:4")
        assert due == local(9, 5, 1, day=date(2026, 3, 6))
        await h.send(WindowClosed(center_id=CENTRE, window="4", clerk_id="a4", post="A", by="a4", reason="下班",
                                  at=local(22, 0)))
        assert await h.value("SELECT count(*) FROM timers WHERE kind = 'monitor.hall.vacancy' AND key = $1 "
                                   "AND fired_at IS NULL", f"{CENTRE}:4") == 0


async def test_vacancy_counts_opening_time_only_and_a_noon_window_at_noon(service_client, kafka, tokens, fixed_clock):
    async with hall(service_client, kafka, tokens) as h:
        await set_up(h, vacancy_minutes=5)
        h.at(local(11, 50))
        await h.send(signed_in("1"), signed_in("9"), Ticket("A", local(11, 50)).issued())
        h.at(local(11, 58))
        await h.send(away("1", local(11, 58)), away("9", local(11, 58)))
        # window 9 serves at noon (午间服务): 5 minutes after 11:58; window 1 pauses at noon: 2 minutes before
        # and 3 after 13:30
        assert await h.fire_at(local(12, 3, 1)) == 1
        assert [a["window"] for a in await vacant(h)] == ["9"]
        assert await h.fire_at(local(13, 33)) == 0
        assert await h.fire_at(local(13, 33, 1)) == 1
        assert [a["window"] for a in await vacant(h)] == ["9", "1"]


async def test_an_older_or_repeated_window_event_changes_nothing(service_client, kafka, tokens, fixed_clock):
    async with hall(service_client, kafka, tokens) as h:
        await set_up(h)
        h.at(local(10, 0))
        await h.send(signed_in("1"), Ticket("A", local(10, 0)).issued())
        await h.send(away("1", local(10, 0)))
        went_away = h.sequences[-1]
        h.at(local(10, 1))
        await h.send(WindowBack(center_id=CENTRE, window="1", clerk_id="a1", post="A", away_s=60, at=local(10, 1)))
        await h.send(away("1", local(10, 0)), sequence=went_away)  # re-sent after the back
        row = await h.row("SELECT state, vacancy_since FROM hall_windows WHERE number = '1'")
        assert row["state"] == "open" and row["vacancy_since"] is None
        assert await h.fire_at(local(11, 0)) == 0
        assert await vacant(h) == []


# --- long wait -----------------------------------------------------------------------------------------

async def test_a_long_wait_counts_opening_hours_only(service_client, kafka, tokens, fixed_clock):
    async with hall(service_client, kafka, tokens) as h:
        await set_up(h)
        await h.send(service("A", threshold=30))
        first, second, third = Ticket("A", local(11, 50)), Ticket("A", local(11, 55)), Ticket("Z", local(11, 55))
        h.at(local(11, 50))
        await h.send(first.issued())
        first_issued = h.sequences[-1]
        h.at(local(11, 55))
        await h.send(second.issued(), third.issued())
        # 11:50 + 30 open minutes: 10 before noon, 20 after 13:30 -> 13:50 (not 12:20)
        assert await h.fire_at(local(12, 30)) == 0
        assert await h.fire_at(local(13, 40)) == 0
        h.at(local(13, 40))
        await h.send(second.called("1", wait_s=15 * 60))  # called in time: its moment is gone
        assert await h.fire_at(local(13, 49, 59)) == 0
        assert await h.fire_at(local(13, 50)) == 1
        [alert] = await h.alerts("long_wait")
        assert alert["level"] == "orange" and alert["details"]["ticket_id"] == first.ticket_id
        assert "30分钟" in alert["text"] and "11:50" in alert["text"]
        # an unknown service waits the default 30 minutes: 11:55 -> 13:55; cancelled before it, nothing
        h.at(local(13, 54))
        await h.send(TicketCancelled(ticket=third.facts(), by="self"))
        assert await h.fire_at(local(14, 30)) == 0
        # the late ticket is called at last: the system resolves its alert
        h.at(local(14, 31))
        await h.send(first.called("2", wait_s=41 * 60))
        [alert] = await h.alerts("long_wait")
        assert alert["status"] == "resolved"
        row = await h.row('SELECT status, "window", called_at, wait_s FROM hall_tickets WHERE ticket_id = $1',
                                  first.ticket_id)
        assert (row["status"], row["window"], row["called_at"], row["wait_s"]) == ("called", "2", local(14, 31), 2460)
        # ticket.issued re-sent (the relay after a crash): the newer state stands, no long-wait moment again
        await h.send(first.issued(), sequence=first_issued)
        assert await h.value("SELECT status FROM hall_tickets WHERE ticket_id = $1", first.ticket_id) == "called"
        assert await h.value("SELECT count(*) FROM timers WHERE kind = 'monitor.hall.wait' AND fired_at IS NULL") == 0


# --- appointment requests and inquiries ------------------------------------------------------------------

def request(request_id: int, due_at: datetime) -> AppointmentRequestFacts:
    return AppointmentRequestFacts(
        request_id=request_id, center_id=CENTRE, service_code="A", department="SCJ", channel="phone",
        preferred_slots=[local(10, 0, day=date(2026, 3, 10))], requested_at=local(10, 0), due_at=due_at,
        phone_hash="p" * 64, phone_masked="139****1234", phone_sealed="sealed")


async def test_an_appointment_request_unanswered_at_its_due_moment(service_client, kafka, tokens, fixed_clock):
    async with hall(service_client, kafka, tokens) as h:
        await set_up(h)
        due = local(23, 59, 59, day=date(2026, 3, 6))  # the end of the next working day
        h.at(local(10, 0))
        await h.send(AppointmentRequested(request=request(1, due), by="staff-1"),
                     AppointmentRequested(request=request(2, due), by="staff-1"))
        h.at(local(15, 0, day=date(2026, 3, 6)))
        await h.send(AppointmentConfirmed(
            request=request(2, due), slot_start=local(10, 0, day=date(2026, 3, 10)), place="3号窗口",
            appointment_id=7, appointment_code="K7", answered_at=local(15, 0, day=date(2026, 3, 6)), on_time=True,
            by="staff-2"))
        assert await h.fire_at(due - timedelta(seconds=1)) == 0
        assert await h.fire_at(due) == 1
        [alert] = await h.alerts("appointment_request")
        assert alert["level"] == "yellow" and alert["details"]["request_id"] == 1
        assert "139****1234" in alert["text"] and "13912341234" not in str(alert)
        # answered late: resolved by the system
        await h.send(AppointmentConfirmed(
            request=request(1, due), slot_start=local(10, 0, day=date(2026, 3, 10)), place="3号窗口",
            appointment_id=8, appointment_code="K8", answered_at=due, on_time=False, by="staff-2"))
        assert (await h.alerts("appointment_request"))[0]["status"] == "resolved"


def inquiry(inquiry_id: int, promised: datetime) -> InquiryFacts:
    return InquiryFacts(id=inquiry_id, center_id=CENTRE, channel="phone", department="SCJ",
                        taken_by=Handler(id="clerk-7", display_name="李四"), window="5", registered_at=local(10, 0),
                        status="pending", promised_reply_at=promised)


async def test_an_inquiry_past_its_promised_reply_time(service_client, kafka, tokens, fixed_clock):
    async with hall(service_client, kafka, tokens) as h:
        await set_up(h)
        promised = local(16, 0)
        h.at(local(10, 0))
        await h.send(InquiryRegistered(inquiry=inquiry(1, promised), contact_masked="138****0000",
                                       contact_sealed="sealed"),
                     InquiryRegistered(inquiry=inquiry(2, promised)), producer="cases")
        h.at(local(15, 0))
        await h.send(InquiryAnswered(inquiry=inquiry(2, promised), answered_at=local(15, 0), by="clerk-7",
                                     on_time=True), producer="cases")
        assert await h.fire_at(promised - timedelta(seconds=1)) == 0
        assert await h.fire_at(promised) == 1
        [alert] = await h.alerts("inquiry")
        assert alert["level"] == "yellow" and alert["handler_id"] == "clerk-7" and alert["window"] == "5"
        assert "李四" in alert["text"] and "16:00" in alert["text"]
        assert await h.fire_at(local(17, 0)) == 0
        assert len(await h.alerts("inquiry")) == 1


# --- the supervision board's view -------------------------------------------------------------------------

async def test_the_hall_status_from_the_read_model(service_client, kafka, tokens, fixed_clock):
    async with hall(service_client, kafka, tokens) as h:
        await set_up(h, vacancy_minutes=5)
        h.at(local(10, 0))
        await h.send(signed_in("1"), signed_in("3"), Ticket("A", local(10, 0)).issued(),
                     Ticket("A", local(10, 2)).issued(), Ticket("C", local(10, 4)).issued())
        await h.send(away("1", local(10, 0)))
        h.at(local(10, 3, 30))
        await h.send(heartbeat_lost("3", local(10, 2)))
        h.at(local(10, 6))
        r = await h.client.get("/hall/status", params={"center": CENTRE}, headers=h.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["vacancy_minutes"] == 5
        windows = {w["number"]: w for w in body["windows"]}
        assert windows["1"]["state"] == "away" and windows["1"]["waiting"] == 2
        assert windows["1"]["vacancy"] == {"reason": "away", "since": "2026-03-05T02:00:00Z", "counted_s": 360,
                                           "limit_s": 300, "over_limit": True, "vacant": True}
        assert windows["3"]["silent"] and windows["3"]["waiting"] == 1
        assert windows["3"]["vacancy"]["reason"] == "silent" and not windows["3"]["vacancy"]["over_limit"]
        assert windows["2"]["state"] == "signed_out" and windows["2"]["vacancy"] is None
        services = {s["code"]: s for s in body["services"]}
        assert (services["A"]["waiting"], services["A"]["longest_wait_s"]) == (2, 360)
        assert services["B"]["waiting"] == 0
        other = await h.client.get("/hall/status", params={"center": "320104"}, headers=h.headers)
        assert other.status_code == 403


async def test_away_and_silent_overlapping_are_one_episode_one_alert(service_client, kafka, tokens, fixed_clock):
    async with hall(service_client, kafka, tokens) as h:
        await set_up(h, vacancy_minutes=5)
        h.at(local(9, 50))
        await h.send(signed_in("1"), Ticket("A", local(9, 50)).issued())
        h.at(local(10, 0))
        await h.send(away("1", local(10, 0)))
        h.at(local(10, 1))
        await h.send(heartbeat_lost("1", local(9, 59, 30)))  # silent since before it went away: counted from 9:59:30
        assert await h.fire_at(local(10, 4, 30)) == 0
        assert await h.fire_at(local(10, 4, 31)) == 1
        [alert] = await vacant(h)
        assert alert["details"]["reason"] == "silent"
        # the terminal beats again while the clerk is still away: the same absence, counted from 10:00 now
        h.at(local(10, 6))
        await h.send(WindowHeartbeatRestored(center_id=CENTRE, window="1", clerk_id="a1", post="A",
                                             lost_at=local(10, 1), silent_s=390, at=local(10, 6)))
        await h.fire_at(local(10, 7))
        [alert] = await vacant(h)
        assert alert["status"] == "raised"
        h.at(local(10, 8))
        await h.send(WindowBack(center_id=CENTRE, window="1", clerk_id="a1", post="A", away_s=480, at=local(10, 8)))
        [alert] = await vacant(h)
        assert alert["status"] == "resolved" and alert["resolve_note"] == "窗口人员已返回"
