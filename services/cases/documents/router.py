"""HTTP endpoints of the printable notices (PDF): a case's notices, the one-time notice, the public guide."""

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from services.cases.cases_router import CaseToRead, Reader
from services.cases.catalogue import repository as catalogue_repository
from services.cases.catalogue import service as catalogue_service
from services.cases.documents import builders, service
from services.cases.registers.models import Notice
from shared import clock
from shared.calendar.store import CalendarDep
from shared.db import SessionDep
from shared.documents import render
from shared.errors import NotFound

router = APIRouter(tags=["documents"])

PDF: dict[int | str, dict[str, Any]] = {200: {"content": {"application/pdf": {}}, "description": "the notice, A4, Chinese glyphs embedded"}}
LookupCode = Annotated[str | None, Query(min_length=4, max_length=32, description=(
    "the lookup code given at acceptance: printed with its QR code when it matches the case's (it is not stored "
    "in clear, so it cannot be printed without it)"))]


async def _pdf(printed: service.Printed) -> Response:
    # a page takes a few hundred milliseconds of CPU (the font): off the event loop
    body = await run_in_threadpool(render, printed.document)
    disposition = (f"inline; filename=\"{printed.filename}\"; "
                   f"filename*=UTF-8''{quote(printed.title)}-{quote(printed.filename)}")
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": disposition, "Cache-Control": "no-store"})


@router.get("/cases/{case_no}/documents/{kind}.pdf", response_class=Response,
            responses={**PDF, 404: {"description": "no such case or document kind"},
                       409: {"description": "the case has no such notice (yet)"},
                       403: {"description": "another centre or department"}})
async def case_document(kind: str, case: CaseToRead, session: SessionDep, request: Request,
                        code: LookupCode = None) -> Response:
    """A case's notice as PDF: receipt (承诺件告知单), supplement, extension, refusal or agency (代办承办单)."""
    app = request.app.state
    return await _pdf(await service.case_document(session, app.pii, app.settings, case, kind, code))


@router.get("/notices/{notice_no}.pdf", response_class=Response,
            responses={**PDF, 404: {"description": "no such notice"}, 403: {"description": "another centre"}})
async def notice_document(notice_no: str, session: SessionDep, user: Reader, request: Request) -> Response:
    """The one-time notice (一次性告知书) as PDF."""
    notice = await session.get(Notice, notice_no)
    if notice is None:
        raise NotFound(f"no notice {notice_no}", field="notice_no")
    user.check_center(notice.center_id)
    app = request.app.state
    return await _pdf(await service.notice_document(session, app.pii, app.settings, notice))


@router.get("/public/items/{center_id}/{code}/guide.pdf", tags=["public"], response_class=Response,
            responses={**PDF, 404: {"description": "no such item in the centre's guide"}})
async def guide_document(center_id: str, code: str, session: SessionDep, calendar: CalendarDep,
                         request: Request) -> Response:
    """The printable service guide (办事指南) of an item, with a QR code of its page (no token)."""
    found = await catalogue_repository.public_items(session, center_id, code)
    if not found:
        raise NotFound(f"centre {center_id} has no item {code} in its guide", field="code")
    (item, department_name), = found
    files = (await catalogue_repository.item_files(session, center_id, [code])).get(code, [])
    public = catalogue_service.public_item(calendar, item, department_name, clock.today_local(), files)
    head = await service.letterhead(session, request.app.state.settings, center_id, None)
    head = builders.Letterhead(center_id=head.center_id, center_name=head.center_name,
                               department_name=department_name, phone=head.phone,
                               public_base_url=head.public_base_url)
    return await _pdf(service.Printed(builders.guide(public, head), f"guide-{center_id}-{code}.pdf", "办事指南"))
