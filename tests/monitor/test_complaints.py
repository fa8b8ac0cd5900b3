"""Complaints (投诉, 三个一) through the monitor's API with the fixed clock: numbered and acknowledged on receipt,
due per severity (a simple one counts opening hours only: at 17:20 with closing at 17:30 it is due 50 minutes
into the next opening), an alert at the due moment if still open (fired by the timer runner, never by sleeping),
closed with an outcome that resolves its alert; the complainant's phone never in clear."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from services.monitor.complaints import metrics, wiring
from services.monitor.consumers import CONSUMERS
from shared import clock
from shared.db import make_engine
from shared.events.catalog import CenterUpserted
from shared.events.envelope import Envelope
from shared.pii import assert_no_personal_data
from shared.timers import TimerRunner
from tests.monitor.support import CALENDAR, CENTRE, local

PHONE = "13912345678"


@dataclass
class Hall:
    client: httpx.AsyncClient
    runner: TimerRunner

    @property
    def db(self) -> Any:
        return self.client.db  # type: ignore[attr-defined]

    async def at(self, moment: datetime) -> int:
        """Move the fixed clock to `moment` and fire the timers that fell due."""
        clock.get_clock().set(moment)  # type: ignore[attr-defined]
        return await self.runner.fire_due()

    async def outbox(self, *types: str) -> list[dict[str, Any]]:
        rows = await self.db.fetch("SELECT envelope FROM outbox WHERE type = ANY($1::text[]) ORDER BY sequence",
                                   list(types))
        return [json.loads(r["envelope"]) for r in rows]


@asynccontextmanager
async def hall(service_client: Any) -> AsyncIterator[Hall]:
    """The monitor with the centre copied (as its centres consumer would) and a timer runner of its own."""
    async with service_client("monitor") as client:
        spec = next(c for c in CONSUMERS if c.name == "centers")
        envelope = Envelope.wrap("queue", CenterUpserted(id=CENTRE, name="玄武区政务服务中心"), subject=CENTRE,
                                 center_id=CENTRE).model_copy(update={"sequence": 1})
        async with client.app.state.sessionmaker() as session, session.begin():
            await spec.handlers["center.upserted"](session, envelope)
        engine = make_engine(client.db.url, application_name="test-monitor-complaint-timers")
        try:
            yield Hall(client, TimerRunner(engine, wiring.TIMER_HANDLERS, batch_size=100))
        finally:
            await engine.dispose()


def complaint(severity: str = "simple", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"center": CENTRE, "channel": "phone", "category": "服务态度", "severity": severity,
                            "subject": {"window": "3"}, "text": "窗口人员态度生硬", "contact": PHONE}
    body.update(changes)
    return body


async def test_a_simple_complaint_at_1720_is_due_50_minutes_into_the_next_opening_and_its_overrun_alerts(
        service_client, tokens, fixed_clock):
    manager, office = tokens.headers("hall_manager", [CENTRE]), tokens.headers("supervisor", [CENTRE])
    async with hall(service_client) as h:
        # Thu 5 Mar 2026 17:20, closing 17:30 (default schedule): 10 minutes today, 50 from Fri 9:00
        fixed_clock.set(local(date(2026, 3, 5), 17, 20))
        r = await h.client.post("/complaints", json=complaint(), headers=manager)
        assert r.status_code == 201, r.text
        c = r.json()
        assert c["number"] == f"{CENTRE}-TS-20260305-0001" and c["status"] == "open"
        assert datetime.fromisoformat(c["due_at"]) == local(date(2026, 3, 6), 9, 50)
        assert c["contact_masked"] == "139****5678" and "contact_sealed" not in c
        assert c["recorded_by"] is not None

        received, acknowledged = await h.outbox("complaint.received"), await h.outbox("complaint.acknowledged")
        assert [e["data"]["complaint"]["number"] for e in received + acknowledged] == [c["number"]] * 2
        assert "2026年03月06日 09:50" in acknowledged[0]["data"]["text"]
        assert acknowledged[0]["data"]["complaint"]["contact_sealed"]  # for notify alone

        # the night and the morning up to 9:50 count nothing
        assert await h.at(local(date(2026, 3, 6), 9, 49)) == 0
        r = await h.client.get("/alerts", params={"center": CENTRE, "kind": "complaint"}, headers=office)
        assert r.json()["items"] == []
        assert await h.at(local(date(2026, 3, 6), 9, 50, ) + timedelta(seconds=1)) == 1
        alerts = (await h.client.get("/alerts", params={"center": CENTRE, "kind": "complaint"},
                                     headers=office)).json()["items"]
        assert len(alerts) == 1 and alerts[0]["level"] == "red" and alerts[0]["window"] == "3"
        assert c["number"] in alerts[0]["text"] and alerts[0]["details"]["complaint_id"] == c["id"]

        # resolved late: complaint.resolved (on_time false) and the alert resolved by the system with the outcome
        r = await h.client.post(f"/complaints/{c['id']}/resolve", json={"outcome": "已向当事人批评教育"},
                                headers=manager)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "resolved" and r.json()["on_time"] is False
        resolved = (await h.outbox("complaint.resolved"))[0]["data"]
        assert resolved["outcome"] == "resolved" and resolved["on_time"] is False
        assert "已向当事人批评教育" in resolved["text"] and resolved["complaint"]["contact_sealed"]
        alert = (await h.client.get(f"/alerts/{alerts[0]['id']}", headers=office)).json()
        assert alert["status"] == "resolved" and alert["resolved_by"] == "system"
        assert "已向当事人批评教育" in alert["resolve_note"]
        r = await h.client.post(f"/complaints/{c['id']}/dismiss", json={"outcome": "再次"}, headers=office)
        assert r.status_code == 409 and r.json()["code"] == "complaint_resolved"

        # no phone in clear in any event the monitor wrote, nor in the list
        everything = json.dumps(await h.outbox("complaint.received", "complaint.acknowledged", "complaint.resolved",
                                               "alert.raised", "alert.resolved"), ensure_ascii=False)
        listed = (await h.client.get("/complaints", params={"center": CENTRE}, headers=office)).text
        assert_no_personal_data(everything + listed, PHONE)


async def test_general_and_major_deadlines_and_a_complaint_closed_in_time_raises_nothing(
        service_client, tokens, fixed_clock):
    clerk, office = tokens.headers("clerk", [CENTRE]), tokens.headers("supervisor", [CENTRE])
    async with hall(service_client) as h:
        received = local(date(2026, 3, 6), 10, 0)  # Fri
        fixed_clock.set(received)
        general = (await h.client.post("/complaints", json=complaint("general", subject={"department": "JS"}),
                                       headers=clerk)).json()
        major = (await h.client.post("/complaints", json=complaint("major", channel="mailbox",
                                                                   subject={"case_no": "320102-20260301-000001"}),
                                     headers=clerk)).json()
        # general: the end of the next working day (Mon 9 Mar); major: the end of the 7th calendar day
        assert datetime.fromisoformat(general["due_at"]) == CALENDAR.due_at(date(2026, 3, 6), 1, CENTRE) == \
            local(date(2026, 3, 9), 23, 59) + timedelta(seconds=59)
        assert datetime.fromisoformat(major["due_at"]) == local(date(2026, 3, 13), 23, 59) + timedelta(seconds=59)
        assert [general["number"][-4:], major["number"][-4:]] == ["0001", "0002"]

        # upheld in time: on time, its timer cancelled, nothing raised at its due moment
        r = await h.client.post(f"/complaints/{general['id']}/uphold", json={"outcome": "情况属实，已责令整改"},
                                headers=tokens.headers("hall_manager", [CENTRE]))
        assert r.status_code == 403  # upholding (it counts in the window score) is the office's
        r = await h.client.post(f"/complaints/{general['id']}/uphold", json={"outcome": "情况属实，已责令整改"},
                                headers=office)
        assert r.status_code == 200 and r.json()["status"] == "upheld" and r.json()["on_time"] is True
        assert await h.at(local(date(2026, 3, 10), 0, 1)) == 0
        # the major one falls due later, still open
        assert await h.at(local(date(2026, 3, 14), 0, 0)) == 1
        alerts = (await h.client.get("/alerts", params={"center": CENTRE, "kind": "complaint"},
                                     headers=office)).json()["items"]
        assert [a["details"]["complaint_id"] for a in alerts] == [major["id"]]
        assert alerts[0]["case_no"] == "320102-20260301-000001"

        listed = (await h.client.get("/complaints", params={"center": CENTRE, "status": "open"},
                                     headers=office)).json()["items"]
        assert [c["id"] for c in listed] == [major["id"]]
        async with h.client.app.state.sessionmaker() as session:  # the leader's gauge job
            await metrics.count_open(session, clock.now())
        assert metrics.OPEN_COMPLAINTS.labels(CENTRE, "major")._value.get() == 1
        assert metrics.COMPLAINTS_CLOSED.labels(CENTRE, "general", "upheld", "yes")._value.get() >= 1
        assert (await h.client.get("/complaints", params={"center": CENTRE, "severity": "general"},
                                   headers=office)).json()["items"][0]["status"] == "upheld"


async def test_the_public_page_takes_a_complaint_without_a_token(service_client, tokens, fixed_clock):
    async with hall(service_client) as h:
        fixed_clock.set(local(date(2026, 3, 5), 10, 0))
        body = {k: v for k, v in complaint().items() if k not in ("channel", "severity")}
        r = await h.client.post("/public/complaints", json={**body, "contact": "li.ming@example.com"})
        assert r.status_code == 201, r.text
        receipt = r.json()
        assert receipt["number"] == f"{CENTRE}-TS-20260305-0001" and "收到" in receipt["acknowledgement"]
        # channel public, general: the end of the next working day
        assert datetime.fromisoformat(receipt["due_at"]) == CALENDAR.due_at(date(2026, 3, 5), 1, CENTRE)
        event = (await h.outbox("complaint.received"))[0]["data"]
        assert event["by"] is None and event["complaint"]["channel"] == "public"
        assert event["complaint"]["contact_masked"] != "li.ming@example.com"
        assert "li.ming@example.com" not in json.dumps(await h.outbox("complaint.received", "complaint.acknowledged"))
        # a public body cannot choose its severity
        r = await h.client.post("/public/complaints", json={**body, "severity": "simple"})
        assert r.status_code == 422
        r = await h.client.post("/public/complaints", json={**body, "center": "999999"})
        assert r.status_code == 404 and r.json()["field"] == "center"


async def test_bad_input_is_a_problem_naming_the_field(service_client, tokens, fixed_clock):
    manager = tokens.headers("hall_manager", [CENTRE])
    async with hall(service_client) as h:
        fixed_clock.set(local(date(2026, 3, 5), 10, 0))
        r = await h.client.post("/complaints", json=complaint(subject={}), headers=manager)
        assert r.status_code == 400 and r.json()["field"] == "subject" and r.json()["code"] == "no_subject"
        r = await h.client.post("/complaints", json=complaint(contact="12ab"), headers=manager)
        assert r.status_code == 400 and r.json()["field"] == "contact"
        r = await h.client.post("/complaints", json=complaint(severity="urgent"), headers=manager)
        assert r.status_code == 422
        r = await h.client.post("/complaints", json=complaint(center="320999"),
                                headers=manager)
        assert r.status_code == 403  # another centre's
        assert (await h.db.fetch("SELECT count(*) AS n FROM complaints"))[0]["n"] == 0
