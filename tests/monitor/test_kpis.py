"""The cases' KPIs of a scripted day, computed by hand here, equal the API's, per department and per day, and
the CSV carries the same figures (issue 24's acceptance, the cases' part)."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest

from shared import clock
from shared.events.catalog import CaseCompleted
from tests.monitor.support import CENTRE, Case, accepted, local, monitor

pytestmark = pytest.mark.kafka

DAY = date(2026, 3, 5)  # Thu


def done(case: Case, at, late_days: int = 0) -> CaseCompleted:
    case.status = "completed"
    return CaseCompleted(case=case.facts(), result="approved", completed_at=at, completed_late=late_days > 0,
                         overdue_working_days=late_days)


async def test_kpis_of_a_scripted_day_equal_the_hand_count_and_the_csv(service_client, kafka, tokens, fixed_clock):
    office = tokens.headers("supervisor", [CENTRE])
    fixed_clock.set(local(DAY, 18))
    async with monitor(service_client, kafka) as m:
        # JS: two promised cases accepted today (limits 5/20 and 10/20), one completed on time today, one
        # promised case of last month completed today 2 working days late; an immediate case done on the spot
        a = Case("320102-20260305-000001", "JS", DAY, 5)
        a.item_code, a.limit_days = "JS001", 5
        b = Case("320102-20260305-000002", "JS", DAY, 10)
        late = Case("320102-20260202-000003", "JS", date(2026, 2, 2), 5)
        spot = Case("320102-20260305-000004", "SC", DAY, 0)
        spot.item_code, spot.item_name = "SC001", "个体工商户登记"
        await m.send(accepted(a), accepted(b), accepted(late), accepted(spot))
        spot.status = "completed"
        await m.send(done(a, local(DAY, 15)), done(late, local(DAY, 16), late_days=2),
                     CaseCompleted(case=spot.facts(kind="immediate"), result="approved",
                                   completed_at=local(DAY, 10, 30), completed_late=False, overdue_working_days=0))

        r = await m.client.get("/kpis", headers=office, params={
            "center": CENTRE, "from": DAY.isoformat(), "to": DAY.isoformat(), "group_by": "department"})
        assert r.status_code == 200, r.text
        rows = {row["key"]: row for row in r.json()["rows"]}
        # by hand: legal limits are twice the promised in the harness, so each speed-up is 0.5
        js = rows["JS"]
        assert (js["accepted"], js["completed"], js["promised_completed"], js["promised_on_time"]) == (2, 2, 2, 1)
        assert js["promised_on_time_rate"] == 0.5
        assert (js["completed_late"], js["overdue_days"], js["speedup_rate"]) == (1, 2, 0.5)
        sc = rows["SC"]
        assert (sc["accepted"], sc["immediate_completed"], sc["immediate_on_the_spot"]) == (1, 1, 1)
        assert sc["immediate_on_the_spot_rate"] == 1.0 and sc["promised_on_time_rate"] is None
        assert js["open_overdue"] == 0  # b is open but not due yet

        # per day over a week: the late case counts as accepted on 2 Feb (outside), completed today
        r = await m.client.get("/kpis", headers=office, params={
            "center": CENTRE, "from": (DAY - timedelta(days=6)).isoformat(), "to": DAY.isoformat(),
            "group_by": "day"})
        days = {row["key"]: row for row in r.json()["rows"]}
        assert list(days) == [DAY.isoformat()]
        assert (days[DAY.isoformat()]["accepted"], days[DAY.isoformat()]["completed"]) == (3, 3)

        # the CSV opens with the same figures
        r = await m.client.get("/kpis", headers=office, params={
            "center": CENTRE, "from": DAY.isoformat(), "to": DAY.isoformat(), "group_by": "department",
            "format": "csv"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        table = {row["key"]: row for row in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))}
        assert table["JS"]["promised_on_time_rate"] == "0.5" and table["JS"]["overdue_days"] == "2"
        assert table["SC"]["promised_on_time_rate"] == ""

        # a case past due and still open shows as open overdue
        fixed_clock.set(b.due_at + timedelta(hours=1))
        r = await m.client.get("/kpis", headers=office, params={
            "center": CENTRE, "from": DAY.isoformat(), "to": clock.today_local().isoformat()})
        assert r.json()["rows"][0]["open_overdue"] == 1

        # bad periods and other centres
        r = await m.client.get("/kpis", headers=office, params={"center": CENTRE, "from": "2026-03-05",
                                                                "to": "2026-03-01"})
        assert r.status_code == 422 and r.json()["field"] == "to"
        other = tokens.headers("supervisor", ["320104"])
        assert (await m.client.get("/kpis", headers=other, params={"center": CENTRE, "from": "2026-03-05",
                                                                   "to": "2026-03-05"})).status_code == 403


async def test_the_halls_kpis_of_a_scripted_day_equal_the_hand_count(service_client, tokens, fixed_clock):
    """Waits and service times (median, p90), no-shows and satisfaction of a day, per window, counted by hand."""
    office = tokens.headers("supervisor", [CENTRE])
    async with service_client("monitor") as client:
        # window 1: waits 60, 120, 180, 240, 300 s (median 180, p90 = 300 - 0.4 * 60 = 276), services 300 s
        # each, one no-show of five called; window 2: one ticket waiting, never called
        tickets = [(n, "1", "done", 60 * n, 300) for n in range(1, 5)] + [(5, "1", "no_show", 300, 0)] + \
            [(6, None, "waiting", None, 0)]
        for n, window, status, wait, service in tickets:
            await client.db.fetch(
                "INSERT INTO hall_tickets (ticket_id, center_id, business_date, service_code, department, number, "
                "kind, channel, duty_only, status, issued_at, effective_arrival, \"window\", wait_s, service_s, "
                "updated_at, last_event_sequence) VALUES ($1, $2, $3, 'HJ', 'GA', $4, 'walk_in', 'kiosk', false, "
                "$5, $6, $6, $7, $8, $9, $6, $1)", n, CENTRE, DAY, f"A{n:03d}", status, local(DAY, 9), window,
                wait, service)
        for n, rating in enumerate((5, 4, 3, 2), 1):  # 3 of 4 at 基本满意 or better
            await client.db.fetch(
                "INSERT INTO ratings (evaluation_id, center_id, ticket_id, \"window\", department, service_code, "
                "rating, channel, submitted_at, business_date) VALUES ($1, $2, $1, '1', 'GA', 'HJ', $3, "
                "'evaluator', $4, $5)", n, CENTRE, rating, local(DAY, 11), DAY)
        r = await client.get("/kpis", headers=office, params={
            "center": CENTRE, "from": DAY.isoformat(), "to": DAY.isoformat(), "group_by": "window"})
        assert r.status_code == 200, r.text
        hall = {row["key"]: row for row in r.json()["hall"]}
        one = hall["1"]
        assert (one["tickets"], one["called"], one["no_shows"], one["no_show_rate"]) == (5, 5, 1, 0.2)
        assert (one["wait_p50_s"], one["wait_p90_s"]) == (180.0, 276.0)
        assert (one["service_p50_s"], one["service_p90_s"]) == (300.0, 300.0)
        assert (one["ratings"], one["satisfied"], one["satisfaction_rate"]) == (4, 3, 0.75)
        assert hall["-"]["tickets"] == 1 and hall["-"]["wait_p50_s"] is None
        r = await client.get("/kpis", headers=office, params={
            "center": CENTRE, "from": DAY.isoformat(), "to": DAY.isoformat(), "group_by": "window",
            "format": "csv", "table": "hall"})
        table = {row["key"]: row for row in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))}
        assert table["1"]["satisfaction_rate"] == "0.75" and table["1"]["wait_p90_s"] == "276.0"
