"""One-time notices of missing materials (一次性告知书): issued at a window when materials are incomplete, with
no case and no clock; numbered per centre and local day without gaps. An acceptance refers to one through
registers/acceptance.py."""

from __future__ import annotations

from datetime import date
from typing import Any

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from services.cases.models import Item, Staff
from services.cases.registers import schemas
from services.cases.registers.models import Notice
from services.cases.registry import _person as applicant_forms  # the acceptance's own checks of the person
from shared import clock
from shared.auth import Principal
from shared.counters import next_number
from shared.errors import BadRequest, NotFound
from shared.events.catalog import Handler, ItemRef, Material, NoticeIssued
from shared.events.outbox import publish
from shared.metrics import at_commit
from shared.pii import PersonalData, mask_name

PRODUCER = "cases"
NUMBER_INFIX = "YC"  # 一次性告知 (yí cì): set apart from case numbers, <center>-<yyyymmdd>-<6 digits>

NOTICES = Counter("hall_notices_total", "One-time notices of missing materials (一次性告知书) issued", ["center"])


def notice_no(center_id: str, day: date, sequence: int) -> str:
    """`320102-YC-20260212-0001`: four digits, more only past 9,999 notices in a day."""
    return f"{center_id}-{NUMBER_INFIX}-{day:%Y%m%d}-{sequence:04d}"


def _missing(item: Item, given: list[str]) -> list[dict[str, Any]]:
    """The item's materials named by code or name. An item that lists its materials admits only those (the
    notice says exactly what the guide asks for); one that lists none takes the names as written."""
    materials = [Material.model_validate(m) for m in item.materials]
    by_key = {m.code: m for m in materials} | {m.name: m for m in materials}
    found: list[dict[str, Any]] = []
    for i, raw in enumerate(given):
        entry = raw.strip()
        if not entry:
            raise BadRequest(f"missing[{i}] is empty", field=f"missing[{i}]", code="empty_material")
        material = by_key.get(entry)
        if material is None and materials:
            raise BadRequest(f"item {item.code} lists no material {entry!r} (give its code or name)",
                             field=f"missing[{i}]", code="unknown_material")
        row = {"code": material.code, "name": material.name} if material else {"code": None, "name": entry}
        if row in found:
            raise BadRequest(f"missing[{i}] repeats {row['name']}", field=f"missing[{i}]", code="repeated_material")
        found.append(row)
    return found


async def issue(session: AsyncSession, pii: PersonalData, principal: Principal, body: schemas.NoticeIn) -> Notice:
    """Issue a 一次性告知书 for the item: its number, the missing materials, the applicant in stored forms."""
    principal.check_center(body.center)
    item = await session.get(Item, (body.center, body.item_code))
    if item is None or not item.active:
        raise NotFound(f"centre {body.center} has no active item {body.item_code}", field="item_code",
                       code="unknown_item")
    principal.check_department(item.department)
    missing = _missing(item, body.missing)
    ident, tel = applicant_forms(pii, body.applicant)
    issuer = await session.get(Staff, principal.subject)
    now = clock.now()
    today = clock.local_date(now)
    notice = Notice(
        center_id=body.center, item_code=item.code, item_name=item.name, department=item.department,
        missing=missing, issued_at=now, issued_on=today, issued_by=principal.subject,
        issued_by_name=issuer.display_name if issuer else principal.subject, window=principal.window,
        applicant_name_masked=mask_name(body.applicant.name),
        applicant_name_encrypted=pii.encrypt(body.applicant.name.strip()).encode(),
        applicant_hash=ident["hash"], id_number_masked=ident["masked"], id_number_encrypted=ident["encrypted"].encode(),
        phone_masked=tel["masked"] if tel else None, phone_encrypted=tel["encrypted"].encode() if tel else None)
    # the day's counter row stays locked until commit (gap-free): taken last, just before the outbox row
    notice.notice_no = notice_no(body.center, today, await next_number(session, f"notice:{body.center}", today))
    session.add(notice)
    await session.flush()
    await publish(session, PRODUCER, NoticeIssued(
        notice_no=notice.notice_no, center_id=notice.center_id,
        item=ItemRef(code=item.code, name=item.name, promised_limit_days=item.promised_limit_days,
                     legal_limit_days=item.legal_limit_days),
        department=item.department, missing=[m["name"] for m in missing], applicant_hash=ident["hash"],
        applicant_masked=notice.applicant_name_masked, phone_masked=notice.phone_masked,
        phone_sealed=tel["sealed_for_notify"] if tel else None,
        issued_by=Handler(id=principal.subject, display_name=notice.issued_by_name), issued_at=now,
        window=notice.window), subject=notice.notice_no, center_id=notice.center_id)
    at_commit(session, NOTICES.labels(body.center).inc)
    return notice
