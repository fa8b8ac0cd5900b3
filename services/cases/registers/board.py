"""The public board (办件公示): the latest cases of a centre accepted, completed or delivered, with the item,
status, stage, date and the applicant's masked name; never a lookup code, an ID or a phone number."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.cases import registry
from services.cases.models import Case, CaseHistory, CenterCopy, Department
from services.cases.registers import schemas
from shared import clock
from shared.errors import NotFound
from shared.events.catalog import CaseStatus

BoardEvent = Literal["accepted", "completed", "delivered"]
EVENT_OF: dict[str, BoardEvent] = {
    "accept": "accepted", "import": "accepted",
    "complete": "completed", "approve-refusal": "completed", "record-forward-result": "completed",
    "deliver": "delivered",
}
#: a case leaves at most this many of the actions above, so N cases need at most this many times N rows
ROWS_PER_CASE = 4


async def board(session: AsyncSession, center_id: str, limit: int) -> schemas.Board:
    """Newest first: each case once, at its latest change of those shown (a withdrawn case is not shown)."""
    if await session.get(CenterCopy, center_id) is None:
        raise NotFound(f"no centre {center_id}", field="center", code="unknown_center")
    # the audit trail in id order is the order things happened; walking it newest first stops early
    rows = (await session.execute(
        select(CaseHistory.case_no, CaseHistory.action, CaseHistory.at)
        .join(Case, Case.case_no == CaseHistory.case_no)
        .where(Case.center_id == center_id, CaseHistory.action.in_(EVENT_OF), Case.status != "withdrawn")
        .order_by(CaseHistory.id.desc()).limit(limit * ROWS_PER_CASE))).all()
    latest: dict[str, tuple[str, datetime]] = {}
    for case_no, action, at in rows:
        if case_no not in latest and len(latest) < limit:
            latest[case_no] = (action, at)
    if not latest:
        return schemas.Board(center=center_id, entries=[])
    cases = {c.case_no: c for c in (await session.scalars(select(Case).where(Case.case_no.in_(latest)))).all()}
    names = {code: name for code, name in (await session.execute(
        select(Department.code, Department.name).where(Department.center_id == center_id))).all()}
    entries = []
    for case_no, (action, at) in latest.items():
        case = cases[case_no]
        entries.append(schemas.BoardEntry(
            case_no=case.case_no, item_name=case.item_name, department=names.get(case.department, case.department),
            status=cast(CaseStatus, case.status), stage=registry.stage_name(case), event=EVENT_OF[action],
            on=clock.local_date(at),
            applicant=case.applicant_name_masked))
    return schemas.Board(center=center_id, entries=entries)
