"""Window scores of a month (窗口考评): a second vacancy in a month costs more than the first, every deduction and
bonus is listed, other months and revoked sanctions do not count, the ranking and the CSV agree (issue 24)."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from pypdf import PdfReader

from services.monitor import alerts, ladder
from services.monitor.alerts import NewAlert
from shared.auth import Principal, Role
from tests.monitor.support import CENTRE, local

MARCH = date(2026, 3, 5)


async def test_growing_deductions_bonuses_ranking_and_csv(service_client, tokens, fixed_clock):
    office = tokens.headers("supervisor", [CENTRE], subject="office-1")
    admin = tokens.headers("center_admin", [CENTRE])
    async with service_client("monitor") as client:
        maker = client.app.state.sessionmaker

        async def vacancy(window: str, at) -> None:
            fixed_clock.set(at)
            async with maker() as session, session.begin():
                await alerts.raise_alert(session, NewAlert(
                    cause_key=f"vacant:{CENTRE}:{window}:{at.isoformat()}", kind="vacant_window", center_id=CENTRE,
                    window=window, text="空岗"))

        await vacancy("3", local(MARCH, 10))
        await vacancy("3", local(MARCH + timedelta(days=1), 15))
        await vacancy("3", local(date(2026, 4, 1), 9, 30))  # April: not March's
        await vacancy("7", local(MARCH, 11))
        await client.db.fetch(
            "INSERT INTO ratings (evaluation_id, center_id, ticket_id, \"window\", service_code, rating, channel, "
            "submitted_at, business_date) VALUES (1, $1, 10, '3', 'HJ', 1, 'evaluator', $2, $3), "
            "(2, $1, 11, '3', 'HJ', 4, 'evaluator', $2, $3)", CENTRE, local(MARCH, 16), MARCH)
        # a spot check at window 7, confirmed: a manual finding (its 警告 not counted again)
        await client.db.fetch("INSERT INTO departments (center_id, code, name, active, updated_at, "
                              "last_event_sequence) VALUES ($1, 'JS', '住建局', true, $2, 1)", CENTRE, local(MARCH, 8))
        fixed_clock.set(local(MARCH, 17))
        principal = Principal(subject="office-1", role=Role.SUPERVISOR, centers=(CENTRE,))
        async with maker() as session, session.begin():
            finding = await ladder.record(session, principal, center_id=CENTRE, source="spot_check", department="JS",
                                          window="7", occurred_at=None, text_="未佩戴工作牌", case_no=None)
            await ladder.confirm(session, finding, "office-1", None)

        r = await client.post("/scores/bonus", headers=office, json={
            "center": CENTRE, "window": "7", "month": "2026-03", "points": 2, "reason": "群众来信表扬"})
        assert r.status_code == 201, r.text
        r = await client.get("/scores", headers=office, params={"center": CENTRE, "month": "2026-03"})
        assert r.status_code == 200, r.text
        by = {w["window"]: w for w in r.json()["windows"]}
        # window 3: vacancy 3 + vacancy 5 (the second costs more) + bad rating 3 = 11
        assert [(d["kind"], d["occurrence"], d["points"]) for d in by["3"]["deductions"]] == [
            ("bad_rating", 1, 3), ("vacancy", 1, 3), ("vacancy", 2, 5)]
        assert (by["3"]["score"], by["3"]["deducted"]) == (89, 11)
        # window 7: vacancy 3 + manual finding 3, bonus 2
        assert (by["7"]["score"], by["7"]["bonus"]) == (96, 2)
        assert by["7"]["bonuses"][0]["reason"] == "群众来信表扬"
        assert [w["window"] for w in r.json()["windows"]] == ["7", "3"]  # ranked
        assert [w["rank"] for w in r.json()["windows"]] == [1, 2]

        # the centre's own steps; the CSV says the same
        r = await client.put(f"/centers/{CENTRE}/score-settings", headers=admin,
                             json={"deductions": {"vacancy": [2, 4, 8]}})
        assert r.status_code == 200 and r.json()["deductions"]["vacancy"] == [2, 4, 8], r.text
        assert r.json()["deductions"]["bad_rating"] == [3, 5, 10]
        r = await client.get("/scores", headers=office, params={"center": CENTRE, "month": "2026-03", "format": "csv"})
        table = {row["window"]: row for row in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))}
        assert (table["3"]["score"], table["3"]["vacancy"], table["3"]["bad_rating"]) == ("91", "6", "3")
        assert table["7"]["rank"] == "1"

        # bad input names the field; the steps are the admin's, the bonus the office's
        r = await client.get("/scores", headers=office, params={"center": CENTRE, "month": "2026-13"})
        assert r.status_code == 422 and "month" in r.text
        r = await client.put(f"/centers/{CENTRE}/score-settings", headers=admin, json={"deductions": {"vacancy": []}})
        assert r.status_code == 422 and r.json()["field"] == "deductions.vacancy"
        assert (await client.put(f"/centers/{CENTRE}/score-settings", headers=office,
                                 json={"deductions": {}})).status_code == 403
        assert (await client.post("/scores/bonus", headers=admin, json={
            "center": CENTRE, "window": "7", "month": "2026-03", "points": 2, "reason": "x"})).status_code == 403
        r = await client.post("/scores/bonus", headers=office, json={
            "center": CENTRE, "window": "7", "month": "2026-03", "points": 50, "reason": "x"})
        assert r.status_code == 422 and "points" in r.text


async def test_the_yearly_roll_up_the_public_ranking_and_the_bulletin(service_client, tokens, fixed_clock):
    office = tokens.headers("supervisor", [CENTRE], subject="office-1")
    admin = tokens.headers("center_admin", [CENTRE])
    fixed_clock.set(local(date(2026, 4, 10), 10))
    async with service_client("monitor") as client:
        maker = client.app.state.sessionmaker
        for number, dept in (("3", "GA"), ("4", "GA"), ("7", "JS")):
            await client.db.fetch("INSERT INTO hall_windows (center_id, number, department, active, updated_at) "
                                  "VALUES ($1, $2, $3, true, $4)", CENTRE, number, dept, local(MARCH, 8))
        async with maker() as session, session.begin():
            for window, at in (("3", local(MARCH, 10)), ("3", local(MARCH, 11)), ("7", local(date(2026, 4, 2), 10))):
                await alerts.raise_alert(session, NewAlert(
                    cause_key=f"vacant:{window}:{at.isoformat()}", kind="vacant_window", center_id=CENTRE,
                    window=window, text="空岗"))
        # raised at the clock's now (April): move the March ones to March, as if raised then
        await client.db.fetch("UPDATE alerts SET raised_at = $1 WHERE cause_key LIKE 'vacant:3:%'", local(MARCH, 10))
        r = await client.get("/scores/yearly", headers=office, params={"center": CENTRE, "year": 2026})
        assert r.status_code == 200, r.text
        by = {d["department"]: d for d in r.json()["departments"]}
        # GA in March: window 3 lost 3 + 5, window 4 nothing: mean (92 + 100) / 2
        assert by["GA"]["months"]["2026-03"] == 96.0 and by["GA"]["deducted"]["vacancy"] == 8
        assert by["JS"]["months"]["2026-04"] == 97.0 and by["JS"]["months"]["2026-03"] == 100.0
        assert set(by["GA"]["months"]) == {"2026-01", "2026-02", "2026-03", "2026-04"}  # up to this month
        r = await client.get("/scores/yearly", headers=office, params={"center": CENTRE, "year": 2026, "format": "csv"})
        rows = {row["department"]: row for row in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))}
        assert (rows["GA"]["2026-03"], rows["GA"]["deducted_vacancy"], rows["GA"]["2026-05"]) == ("96.0", "8", "")

        # the public ranking only once the centre publishes it, and then without the detail
        r = await client.get("/public/scores", params={"center": CENTRE, "month": "2026-03"})
        assert r.status_code == 404 and r.json()["code"] == "not_published"
        r = await client.put(f"/centers/{CENTRE}/score-settings", headers=admin, json={"publish_ranking": True})
        assert r.status_code == 200 and r.json()["publish_ranking"] is True, r.text
        r = await client.get("/public/scores", params={"center": CENTRE, "month": "2026-03"})
        assert r.status_code == 200
        assert r.json()["windows"][-1] == {"rank": 3, "window": "3", "score": 92}

        # the bulletin of March as a PDF, its figures in its text
        r = await client.get("/bulletins/2026-03.pdf", headers=office, params={"center": CENTRE})
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf", r.text
        printed = "".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages).replace("\n", "")
        for part in ("电子监察月度通报（2026年3月）", "窗口考评", "92"):
            assert part in printed, (part, printed)
        assert (await client.get("/bulletins/2026-13.pdf", headers=office,
                                 params={"center": CENTRE})).status_code == 422
