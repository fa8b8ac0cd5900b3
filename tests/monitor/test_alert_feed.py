"""The supervision office's live feed end to end (issue 23's acceptance): the monitor app on a real uvicorn, its
outbox relayed to the embedded broker, `GET /feeds/alerts` read as server-sent events while the test moves the
fixed clock and fires the due timers. A client that reconnects with its Last-Event-ID gets exactly the alerts it
missed, in order, once; another centre's client gets none of them; a hall manager gets alerts, never findings
or sanctions."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import uvicorn

from services.monitor import consumers as monitor_consumers
from services.monitor import watch
from services.monitor.main import create_app
from shared.db import make_engine
from shared.events.kafka import ensure_topics, new_admin
from shared.events.relay import Relay
from shared.events.topics import Topic, topic_for
from shared.settings import HallSettings
from shared.timers import TimerRunner
from tests.conftest import ServiceDatabase, service_settings
from tests.events.test_feeds import Reader, eventually
from tests.events.test_outbox_relay import running
from tests.monitor.support import CASES_TOPIC, CENTRE, FAST_GROUP, Case, Monitor, accepted, days_ago
from tests.queue.test_display_feed import topic_envelopes

pytestmark = pytest.mark.kafka

TOPIC = topic_for("monitor")
OTHER = "320104"
OFFICE_EVENTS = ("alert.", "finding.", "sanction.")


async def outbox_continues_the_topic(db: ServiceDatabase, bootstrap: str) -> None:
    """Earlier tests left monitor events on the session's broker and emptied the outbox; the feed drops every
    sequence it already holds, so this outbox goes on above them (as a monitor that never lost its database)."""
    highest = max((e["sequence"] for e in await topic_envelopes(bootstrap, TOPIC)), default=0)
    if highest:
        await db.fetch("SELECT setval(pg_get_serial_sequence('outbox', 'sequence'), $1)", highest)


@asynccontextmanager
async def supervision_hall(service_databases: Any, kafka: Any, fixed_clock: Any) -> AsyncIterator[Monitor]:
    """The monitor app on uvicorn (ASGITransport would buffer the stream) with its feed on the test broker, its
    outbox relay, its `cases` consumer on a topic of this test's own, and a timer runner the test fires."""
    cases_topic = f"test.cases.{uuid.uuid4().hex[:10]}"
    admin = new_admin(kafka.bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin, [TOPIC, Topic(cases_topic, "cases", 3, "subject")])
    finally:
        await admin.close()
    db = service_databases("monitor")
    await db.reset()
    await outbox_continues_the_topic(db, kafka.bootstrap)
    settings = service_settings("monitor", db, hall=HallSettings(kafka_bootstrap=kafka.bootstrap))
    app = create_app(settings, clock=fixed_clock)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    await eventually(lambda: server.started or serving.done())
    assert not serving.done(), "uvicorn did not start"
    # the relay prunes sent rows by the fixed clock: never while the test reads the outbox
    relay = Relay(db.url, kafka.bootstrap, "monitor", poll_interval=0.2, leader_retry=0.2,
                  cluster_check_interval=0.3, max_backoff=0.5, request_timeout_ms=2000, prune_interval=3600)
    engine = make_engine(db.url, application_name="test-monitor-timers")
    stop = asyncio.Event()
    try:
        built = monitor_consumers.build_consumers(settings, app.state.sessionmaker,
                                                  topic_names={CASES_TOPIC: cases_topic}, kafka_options=FAST_GROUP)
        tasks = [asyncio.create_task(c.run(stop)) for c in built if c.id == "monitor.cases"]
        async with running(relay), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            client.db = db  # type: ignore[attr-defined]
            yield Monitor(client, kafka.bootstrap, cases_topic,
                          runners=[TimerRunner(engine, watch.TIMER_HANDLERS, batch_size=100)])
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 20)
    finally:
        stop.set()
        await engine.dispose()
        server.should_exit = True
        await asyncio.wait_for(serving, 10)


def watching(m: Monitor, tokens: Any, role: str, center: str, last_event_id: int | None = None) -> Reader:
    headers = tokens.headers(role, [center])
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    return Reader(str(m.client.base_url.join(f"/feeds/alerts?center={center}")), headers).start()


async def connected(reader: Reader, *, fresh: bool = True) -> Reader:
    """Wait for the stream's hello (a fresh client's carries its cursor as an id)."""
    await eventually(lambda: "monitor-alerts" in reader.comments and (not fresh or reader.last_event_id is not None))
    return reader


async def outbox(m: Monitor, center: str, prefixes: tuple[str, ...] = OFFICE_EVENTS) -> list[tuple[int, str]]:
    """(sequence, type) of the centre's events of those kinds, in sequence order, every one relayed."""
    rows = await m.db.fetch("SELECT sequence, type, envelope, sent_at FROM outbox ORDER BY sequence")
    assert all(r["sent_at"] is not None for r in rows)
    return [(r["sequence"], r["type"]) for r in rows
            if r["type"].startswith(prefixes) and json.loads(r["envelope"])["center_id"] == center]


def frames(*readers: Reader) -> list[tuple[int | None, str]]:
    return [(frame_id, kind) for reader in readers for kind, frame_id, _ in reader.events]


def raised(*readers: Reader) -> list[tuple[str, str]]:
    """(kind, case) of each alert.raised frame the readers got, in arrival order."""
    return [(data["data"]["alert"]["kind"], data["data"]["alert"]["case_no"])
            for reader in readers for kind, _, data in reader.events if kind == "alert.raised"]


async def settle(m: Monitor, *readers: Reader) -> None:
    """Wait until the relay has sent everything and each reader has every frame its filter lets through."""
    async def sent() -> bool:
        rows = await m.db.fetch("SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL")
        return rows[0]["n"] == 0

    deadline = asyncio.get_running_loop().time() + 10
    while not await sent():
        assert asyncio.get_running_loop().time() < deadline, "the relay did not send the outbox"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.8)  # the feed's read tick and reorder window (0.5 s), then the pump


def due_soon(n: int, department: str = "JS", center: str = CENTRE) -> Case:
    """Accepted today (Thu 12 Feb 2026) with 2 working days: warned from 00:00 on Fri 13 Feb, due at the end
    of Sat 14 Feb (a 调休 working day)."""
    return Case(f"{center}-20260212-{n:06d}", department, date(2026, 2, 12), 2, center_id=center)


def imported_overdue(n: int, department: str = "JS", center: str = CENTRE) -> Case:
    """Imported at go-live, accepted 30 working days ago with a 20-day limit: overdue at the first firing."""
    return Case(f"{center}-20251225-{n:06d}", department, days_ago(30), 20, center_id=center, imported=True)


async def test_a_supervisor_reconnecting_with_last_event_id_gets_every_alert_missed_in_order_once(
        service_databases, kafka, tokens, fixed_clock):
    async with supervision_hall(service_databases, kafka, fixed_clock) as m:
        admin = tokens.headers("center_admin", [CENTRE])
        r = await m.client.put(f"/centers/{CENTRE}/settings", headers=admin,
                               json={"verification": "auto", "rectification_days": 5})
        assert r.status_code == 200, r.text  # 对超时办结直接生成问责: overdue findings become sanctions at once
        cases = [due_soon(n) for n in (1, 2, 3)]
        await m.send(*(accepted(case) for case in cases))
        warn_at, due_at = cases[0].warn_at, cases[0].due_at
        assert warn_at is not None and warn_at < due_at

        office = await connected(watching(m, tokens, "supervisor", CENTRE))
        start = office.last_event_id
        assert start is not None
        await m.at(warn_at + timedelta(seconds=1))  # three early warnings
        await eventually(lambda: len(raised(office)) == 3)
        await settle(m, office)
        await office.close()  # the office's screen loses its connection after 3 alerts
        resume_from = office.last_event_id
        assert resume_from is not None

        # while it is away: the three cases go overdue (alert, finding, confirmed at once, sanction), then a
        # case imported already overdue (its finding waits for a person), fired in a second round
        await m.at(due_at + timedelta(seconds=1))
        late = imported_overdue(4, department="SC")
        await m.send(accepted(late))
        await m.at(due_at + timedelta(seconds=2))
        missed = await outbox(m, CENTRE)
        missed = [(seq, kind) for seq, kind in missed if seq > resume_from]

        again = await connected(watching(m, tokens, "supervisor", CENTRE, resume_from), fresh=False)
        await eventually(lambda: frames(again) == missed)
        # and it goes on live: an alert acknowledged after the reconnect
        listed = await m.alerts(tokens.headers("supervisor", [CENTRE]), kind="overdue")
        r = await m.client.post(f"/alerts/{listed[0]['id']}/acknowledge", json={"note": "已督办"},
                                headers=tokens.headers("supervisor", [CENTRE]))
        assert r.status_code == 200, r.text
        await eventually(lambda: [kind for _, kind in frames(again)][-1:] == ["alert.acknowledged"])
        await settle(m, again)
        await again.close()
        everything = await outbox(m, CENTRE)

    # the cases' events travel in three partitions, so their timers fire in the order they were applied
    assert sorted(raised(office)) == [("early_warning", c.case_no) for c in cases]
    assert sorted(raised(again)[:3]) == [("overdue", c.case_no) for c in cases]
    assert raised(again)[3:] == [("overdue", late.case_no)]
    kinds = [kind for _, kind in missed]
    assert kinds.count("alert.raised") == 4 and kinds.count("finding.recorded") == 4
    assert kinds.count("finding.confirmed") == 3 and kinds.count("sanction.issued") == 3
    # every event of the office's kinds and centre, once, in sequence order, across the two connections; the
    # one before the disconnect and the ones after meet exactly at the Last-Event-ID
    assert frames(office, again) == [(seq, kind) for seq, kind in everything if seq > start]
    assert max(seq for seq, _ in frames(office)) == resume_from
    assert "feed.gap" not in [kind for _, kind in frames(again)]


async def test_another_centre_sees_none_of_them_and_a_hall_manager_sees_alerts_but_no_findings_or_sanctions(
        service_databases, kafka, tokens, fixed_clock):
    async with supervision_hall(service_databases, kafka, fixed_clock) as m:
        admin = tokens.headers("center_admin", [CENTRE])
        r = await m.client.put(f"/centers/{CENTRE}/settings", headers=admin,
                               json={"verification": "auto", "rectification_days": 5})
        assert r.status_code == 200, r.text
        office = await connected(watching(m, tokens, "supervisor", CENTRE))
        manager = await connected(watching(m, tokens, "hall_manager", CENTRE))
        elsewhere = await connected(watching(m, tokens, "supervisor", OTHER))
        # a supervisor of one centre may not watch another's
        r = await m.client.get(f"/feeds/alerts?center={CENTRE}", headers=tokens.headers("supervisor", [OTHER]))
        assert r.status_code == 403, r.text

        ours = [due_soon(1), due_soon(2, department="SC")]
        theirs = due_soon(1, center=OTHER)
        await m.send(*(accepted(case) for case in [*ours, theirs]))
        warn_at = ours[0].warn_at
        assert warn_at is not None
        await m.at(warn_at + timedelta(seconds=1))  # early warnings in both centres
        await m.at(ours[0].due_at + timedelta(seconds=1))  # then overdue (auto mode here: sanctions)
        await settle(m, office, manager, elsewhere)
        await asyncio.gather(*(reader.close() for reader in (office, manager, elsewhere)))
        ours_all, ours_alerts = await outbox(m, CENTRE), await outbox(m, CENTRE, ("alert.",))
        theirs_all = await outbox(m, OTHER)

    assert sorted(raised(office)[:2]) == [("early_warning", c.case_no) for c in ours]
    assert sorted(raised(office)[2:]) == [("overdue", c.case_no) for c in ours]
    assert frames(office) == ours_all
    assert raised(elsewhere) == [("early_warning", theirs.case_no), ("overdue", theirs.case_no)]
    assert frames(elsewhere) == theirs_all  # its own centre's alert and finding: none of ours
    assert not {data["center_id"] for _, _, data in elsewhere.events} & {CENTRE}
    # the hall manager: every alert of the centre, no finding or sanction though the outbox has them
    assert frames(manager) == ours_alerts and raised(manager) == raised(office)
    assert {kind.split(".")[0] for _, kind in ours_all} == {"alert", "finding", "sanction"}
    assert {kind.split(".")[0] for _, kind in frames(manager)} == {"alert"}
