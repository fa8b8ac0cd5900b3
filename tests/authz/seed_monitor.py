"""The monitor's seed for the policy test: the centre and a department as the consumers copy them, and
alerts, findings, sanctions and an attachment made by the monitor's own rules (no API raises an alert or
writes a sanction directly); fresh ones for the routes that change them once."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from services.monitor import alerts, ladder
from services.monitor.alerts import NewAlert
from services.monitor.complaints import followups as complaint_followups
from services.monitor.complaints import register as complaint_register
from services.monitor.complaints.schemas import SubjectIn
from services.monitor.consumers import copy_department
from services.monitor.models import FindingAttachment
from shared import clock
from shared.auth import Principal, Role
from shared.events.catalog import DepartmentUpserted, EvaluationSubmitted
from shared.events.envelope import Envelope

_numbers = itertools.count(1)


async def seed_monitor(client: httpx.AsyncClient, center: str, department: str) -> tuple[dict[str, Any], dict]:
    """(values, fresh) for Seeds: {alert, finding, attachment, sanction} and fresh_{alert, finding, sanction}."""
    maker = client.app.state.sessionmaker  # type: ignore[attr-defined]
    office = Principal(subject="policy-office", role=Role.SUPERVISOR, centers=(center,))
    envelope = Envelope.wrap("cases", DepartmentUpserted(center_id=center, code=department, name="住建局"),
                             subject=f"department:{center}:{department}", center_id=center
                             ).model_copy(update={"sequence": 1})
    async with maker() as session, session.begin():
        await copy_department(session, envelope)

    async def alert() -> int:
        async with maker() as session, session.begin():
            made = await alerts.raise_alert(session, NewAlert(
                cause_key=f"policy:{next(_numbers)}", kind="follow_up", center_id=center, text="跟踪提醒"))
            assert made is not None
            return made.id

    async def finding() -> int:
        async with maker() as session, session.begin():
            made = await ladder.record(session, office, center_id=center, source="spot_check",
                                       department=department, window=None, occurred_at=None, text_="窗口无人",
                                       case_no=None)
            return made.id

    async def sanction() -> int:
        finding_id = await finding()
        async with maker() as session, session.begin():
            await ladder.confirm(session, await ladder.get_finding(session, finding_id), "policy-office", None)
        rows = await client.db.fetch("SELECT id FROM sanctions WHERE finding_id = $1", finding_id)  # type: ignore[attr-defined]
        return int(rows[0]["id"])

    seeded_finding = await finding()
    async with maker() as session, session.begin():
        attachment = FindingAttachment(finding_id=seeded_finding, name="photo.png", content_type="image/png",
                                       size=3, data=b"PNG")
        session.add(attachment)
        await session.flush()
        attachment_id = attachment.id

    async def complaint() -> int:  # issue 24: a complaint as staff record it
        async with maker() as session, session.begin():
            made, _ = await complaint_register.receive(
                session, client.app.state.pii, center_id=center, channel="phone",  # type: ignore[attr-defined]
                category="服务态度", severity="general", subject=SubjectIn(window="1"), text_="态度生硬",
                contact=None, by=office)
            return made.id

    async def followup() -> int:  # issue 24: a bad rating's follow-up, as the hall consumer opens it
        n = next(_numbers)
        rated = EvaluationSubmitted(evaluation_id=900000 + n, center_id=center, ticket_id=900000 + n,
                                    service_code="HJ", rating=1, channel="evaluator", submitted_at=clock.now())
        async with maker() as session, session.begin():
            await complaint_followups.on_evaluation(session, Envelope.wrap(
                "queue", rated, subject=center, center_id=center).model_copy(update={"sequence": 1}))
        rows = await client.db.fetch("SELECT id FROM followups WHERE evaluation_id = $1", 900000 + n)  # type: ignore[attr-defined]
        return int(rows[0]["id"])

    values = {"alert": await alert(), "finding": seeded_finding, "attachment": attachment_id,
              "sanction": await sanction(), "complaint": await complaint()}
    return values, {"fresh_alert": alert, "fresh_finding": finding, "fresh_sanction": sanction,
                    "fresh_complaint": complaint, "fresh_followup": followup}
