"""The accountability ladder end to end through Kafka (issue 23's acceptance): overdue cases make findings,
confirmed findings make 警告 then 通报批评 per department and year in order of the overdue moment, manual
findings take their place, excusing one reissues the next, and auto mode confirms except imported overdue."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pypdf import PdfReader

from services.monitor.metrics import count_open_alerts
from shared import clock
from tests.monitor.support import (
    CALENDAR,
    CENTRE,
    Case,
    Monitor,
    accepted,
    days_ago,
    department,
    local,
    monitor,
)

pytestmark = pytest.mark.kafka


async def findings(m: Monitor, headers: dict[str, str], **query: Any) -> list[dict[str, Any]]:
    r = await m.client.get("/findings", params={"center": CENTRE, **query}, headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def sanctions(m: Monitor, headers: dict[str, str], **query: Any) -> dict[str, dict[str, Any]]:
    """The centre's sanctions by case number (or finding id for a manual one)."""
    r = await m.client.get("/sanctions", params={"center": CENTRE, **query}, headers=headers)
    assert r.status_code == 200, r.text
    return {s["case_no"] or f"finding:{s['finding_id']}": s for s in r.json()["items"]}


async def overdue(m: Monitor, case: Case) -> dict[str, Any]:
    """Publish the case's acceptance, fire what is due, and return its finding."""
    await m.send(accepted(case))
    await m.fire()
    found = [f for f in await findings(m, m.supervisor) if f["case_no"] == case.case_no]  # type: ignore[attr-defined]
    assert len(found) == 1, found
    return found[0]


async def test_the_ladder_warning_then_criticisms_per_department_and_year_and_excusing_reissues(
        service_client, kafka, tokens, fixed_clock):
    office = tokens.headers("supervisor", [CENTRE], subject="office-1")
    async with monitor(service_client, kafka) as m:
        m.supervisor = office  # type: ignore[attr-defined]
        await m.send(department("JS", "区住房和城乡建设局"), department("SC", "区市场监督管理局"), key="departments")
        # imported at go-live: accepted 30 working days ago with a 20-day limit, so 10 working days late
        first = Case("320102-20251225-000001", "JS", days_ago(30), 20, imported=True)
        assert first.due_at < clock.now()
        f1 = await overdue(m, first)
        alerts = await m.alerts(office, kind="overdue")
        assert [(a["case_no"], a["level"], a["overdue_days"]) for a in alerts] == [(first.case_no, "red", 10)]
        assert "超时" in alerts[0]["text"] and first.handler_name in alerts[0]["text"]
        assert f1["status"] == "pending" and f1["imported_overdue"] is True
        assert f1["handler_name"] == "王小明" and f1["department"] == "JS"

        r = await m.client.post(f"/findings/{f1['id']}/confirm", json={"reason": "经核实属实"}, headers=office)
        assert r.status_code == 200, r.text
        s = await sanctions(m, office)
        assert s[first.case_no]["level"] == "warning" and s[first.case_no]["ordinal"] == 1
        notice = s[first.case_no]["notice_text"]
        for part in ("区住房和城乡建设局", first.case_no, "建设工程施工许可", "王小明", "超时10个工作日", "警告"):
            assert part in notice, (part, notice)
        assert s[first.case_no]["recipients"] == [f"department:{CENTRE}:JS", f"supervision:{CENTRE}"]
        assert datetime.fromisoformat(s[first.case_no]["rectification_due_at"]) == CALENDAR.due_at(
            clock.today_local(), 5, CENTRE)  # 限时整改: 5 working days by default

        # the notice as a PDF: its text as sent, the Chinese glyphs embedded
        pdf = await m.client.get(f"/sanctions/{s[first.case_no]['id']}.pdf", headers=office)
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf", pdf.text
        reader = PdfReader(io.BytesIO(pdf.content))
        printed = "".join(page.extract_text() for page in reader.pages)
        for part in (s[first.case_no]["notice_no"], "区住房和城乡建设局", first.case_no, "予以警告"):
            assert part in printed.replace("\n", ""), (part, printed)
        fonts = [f for page in reader.pages for f in page["/Resources"]["/Font"].values()]
        assert fonts and all("/FontFile2" in f.get_object()["/DescendantFonts"][0].get_object()["/FontDescriptor"]
                             for f in fonts)
        clerk = tokens.headers("clerk", [CENTRE], department="JS")
        assert (await m.client.get(f"/sanctions/{s[first.case_no]['id']}.pdf", headers=clerk)).status_code == 403

        # the second and third of the same department and year: 通报批评
        second = Case("320102-20251226-000002", "JS", days_ago(29), 20, imported=True)
        third = Case("320102-20251229-000003", "JS", days_ago(28), 20, imported=True)
        for case in (second, third):
            f = await overdue(m, case)
            assert (await m.client.post(f"/findings/{f['id']}/confirm", json={}, headers=office)).status_code == 200
        s = await sanctions(m, office)
        assert [(s[c.case_no]["level"], s[c.case_no]["ordinal"]) for c in (first, second, third)] == [
            ("warning", 1), ("criticism", 2), ("criticism", 3)]
        assert "通报批评" in s[second.case_no]["notice_text"] and "第2次" in s[second.case_no]["notice_text"]

        # another department starts at 警告; the same department's overdue of an earlier year too
        other = Case("320102-20251230-000004", "SC", days_ago(27), 20, imported=True)
        last_year = Case("320102-20251001-000005", "JS", days_ago(60), 20, imported=True)
        assert clock.local_date(last_year.due_at).year == 2025 and clock.local_date(first.due_at).year == 2026
        for case in (other, last_year):
            f = await overdue(m, case)
            assert (await m.client.post(f"/findings/{f['id']}/confirm", json={}, headers=office)).status_code == 200
        s = await sanctions(m, office)
        assert (s[other.case_no]["level"], s[other.case_no]["ordinal"]) == ("warning", 1)
        assert (s[last_year.case_no]["level"], s[last_year.case_no]["year"]) == ("warning", 2025)
        assert s[first.case_no]["level"] == "warning"  # 2026's ladder did not move

        # excusing the first finding revokes its 警告 and reissues the second as the 警告
        r = await m.client.post(f"/findings/{f1['id']}/excuse", json={"reason": "系统故障，非单位责任"},
                                headers=office)
        assert r.status_code == 200 and r.json()["status"] == "excused", r.text
        s = await sanctions(m, office)
        assert s[first.case_no]["status"] == "revoked"
        assert [(s[c.case_no]["level"], s[c.case_no]["ordinal"]) for c in (second, third)] == [
            ("warning", 1), ("criticism", 2)]
        assert "（更正）" in s[second.case_no]["notice_text"] and "予以警告" in s[second.case_no]["notice_text"]
        assert s[second.case_no]["reissues"] == 1
        # this year's sanctions as the worker's gauge counts them: the revoked one and 2025's do not count
        async with m.client.app.state.sessionmaker() as session:
            await count_open_alerts(session, clock.now())
        assert {level: REGISTRY.get_sample_value("hall_monitor_sanctions_this_year", {"center": CENTRE, "level": level})
                for level in ("warning", "criticism")} == {"warning": 2, "criticism": 1}
        events = await m.db.fetch("SELECT type FROM outbox WHERE type LIKE 'sanction.%' ORDER BY sequence")
        assert [e["type"] for e in events].count("sanction.reclassified") == 1
        assert [e["type"] for e in events].count("sanction.issued") == 5
        audit = await m.db.fetch("SELECT action FROM audit_log WHERE entity = 'sanction' ORDER BY id")
        assert [a["action"] for a in audit].count("reclassify") >= 2  # the second to 警告, the third to 2nd place

        # a finding decided is not decided again; a sanction revoked is not rectified
        again = await m.client.post(f"/findings/{f1['id']}/confirm", json={}, headers=office)
        assert again.status_code == 409 and again.json()["code"] == "finding_excused"
        r = await m.client.post(f"/sanctions/{s[first.case_no]['id']}/rectified", json={"note": "已整改"},
                                headers=office)
        assert r.status_code == 409


async def test_a_manual_spot_check_takes_its_place_on_the_ladder(service_client, kafka, tokens, fixed_clock):
    office = tokens.headers("supervisor", [CENTRE], subject="office-1")
    async with monitor(service_client, kafka) as m:
        m.supervisor = office  # type: ignore[attr-defined]
        await m.send(department("JS", "区住房和城乡建设局"), key="departments")
        late = Case("320102-20251225-000001", "JS", days_ago(30), 20, imported=True)
        f = await overdue(m, late)
        assert (await m.client.post(f"/findings/{f['id']}/confirm", json={}, headers=office)).status_code == 200

        # seen at the window before the case ran late: it goes first on the ladder
        seen = local(clock.local_date(late.due_at)) - timedelta(days=3)
        r = await m.client.post("/findings", headers=office, json={
            "center": CENTRE, "source": "spot_check", "department": "JS", "window": "3",
            "occurred_at": seen.isoformat(), "text": "工作时间窗口无人，未放置去向牌"})
        assert r.status_code == 201, r.text
        spot = r.json()
        assert spot["status"] == "pending" and spot["recorded_by"] == "office-1"
        photo = await m.client.post(f"/findings/{spot['id']}/attachments", params={"name": "现场照片.png"},
                                    content=b"\x89PNG\r\n\x1a\n" + b"0" * 100,
                                    headers={**office, "content-type": "image/png"})
        assert photo.status_code == 201, photo.text
        bad = await m.client.post(f"/findings/{spot['id']}/attachments", params={"name": "x.exe"}, content=b"MZ",
                                  headers={**office, "content-type": "application/octet-stream"})
        assert bad.status_code == 415 and bad.json()["field"] == "content-type"

        r = await m.client.post(f"/findings/{spot['id']}/confirm", json={}, headers=office)
        assert r.status_code == 200, r.text
        s = await sanctions(m, office)
        assert (s[f"finding:{spot['id']}"]["level"], s[f"finding:{spot['id']}"]["ordinal"]) == ("warning", 1)
        assert "现场抽查" in s[f"finding:{spot['id']}"]["notice_text"]
        assert (s[late.case_no]["level"], s[late.case_no]["ordinal"]) == ("criticism", 2)  # reissued

        # the form's mistakes name the field
        r = await m.client.post("/findings", headers=office, json={
            "center": CENTRE, "source": "rumour", "department": "JS", "text": "x"})
        assert r.status_code == 422 and "source" in r.text
        r = await m.client.post("/findings", headers=office, json={
            "center": CENTRE, "source": "media", "department": "NOPE", "text": "报道"})
        assert r.status_code == 404 and r.json()["field"] == "department"
        clerk = tokens.headers("clerk", [CENTRE], department="JS")
        assert (await m.client.post("/findings", headers=clerk, json={
            "center": CENTRE, "source": "media", "department": "JS", "text": "报道"})).status_code == 403


async def test_auto_mode_confirms_at_once_except_a_case_imported_already_overdue(
        service_client, kafka, tokens, fixed_clock):
    office = tokens.headers("supervisor", [CENTRE], subject="office-1")
    admin = tokens.headers("center_admin", [CENTRE])
    async with monitor(service_client, kafka) as m:
        m.supervisor = office  # type: ignore[attr-defined]
        r = await m.client.put(f"/centers/{CENTRE}/settings", headers=admin,
                               json={"verification": "auto", "rectification_days": 3})
        assert r.status_code == 200 and r.json()["verification"] == "auto", r.text
        assert (await m.client.put(f"/centers/{CENTRE}/settings", headers=office,
                                   json={"verification": "auto", "rectification_days": 3})).status_code == 403
        bad = await m.client.put(f"/centers/{CENTRE}/settings", headers=admin,
                                 json={"verification": "sometimes", "rectification_days": 3})
        assert bad.status_code == 422 and "verification" in bad.text

        await m.send(department("JS", "区住房和城乡建设局"), key="departments")
        before = Case("320102-20251225-000001", "JS", days_ago(30), 20, imported=True)
        pending = await overdue(m, before)
        assert pending["status"] == "pending"  # imported already overdue: a person decides

        # imported on time, then runs late after go-live
        later = Case("320102-20260210-000002", "JS", clock.today_local(), 2, imported=True)
        await m.send(accepted(later))
        await m.at(later.due_at - timedelta(seconds=1))
        assert later.case_no not in {f["case_no"] for f in await findings(m, office)}
        await m.at(later.due_at + timedelta(seconds=1))
        found = {f["case_no"]: f for f in await findings(m, office)}
        assert found[later.case_no]["status"] == "confirmed"
        assert found[later.case_no]["decided_by"] == "system"
        s = await sanctions(m, office)
        assert s[later.case_no]["level"] == "warning"
        assert clock.local_date(datetime.fromisoformat(
            s[later.case_no]["rectification_due_at"])) == CALENDAR.add_working_days(clock.today_local(), 3, CENTRE)
        assert before.case_no not in s
