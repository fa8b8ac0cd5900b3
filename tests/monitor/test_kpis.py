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
