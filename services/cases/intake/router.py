"""HTTP endpoints of intake: the import of open cases from a previous system, a centre's settings (the
compression target), and the service guide's downloadable forms and samples."""

from __future__ import annotations

from typing import Annotated, Literal, cast
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from services.cases.cases_router import ContextDep
from services.cases.catalogue import repository
from services.cases.catalogue.router import CenterEditor, StaffReader
from services.cases.catalogue.router import ContextDep as CatalogueContextDep
from services.cases.catalogue.schemas import CENTER, CODE, ItemFileRef
from services.cases.intake import guide, importer
from services.cases.intake.schemas import (
    CenterSettingsIn,
    CenterSettingsOut,
    ImportedOut,
    ImportIn,
    ImportOut,
)
from services.cases.models import Item
from shared.db import SessionDep
from shared.errors import AppError, NotFound, problem
from shared.events.catalog import CaseStatus

router = APIRouter()

CenterId = Annotated[str, Path(pattern=CENTER)]
ItemCode = Annotated[str, Path(pattern=CODE)]
# a file name as downloaded: letters (汉字 too), digits, spaces, . _ - ( ) （ ）, not starting with a dot
FileName = Annotated[str, Path(pattern=r"^[\w（）()·-][\w .()（）·-]{0,99}$")]


# the import of open cases (a centre going live)

_IMPORT_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": ImportIn.model_json_schema(ref_template="#/components/schemas/{model}")},
    "text/csv": {"schema": {"type": "string"}, "example": (
        "legacy_no,item_code,accepted_at,stage,handler,applicant_name,id_number,phone,pauses,extension_days,"
        "extension_approved\nXZ-2026-0001,SC-001,2026-02-10 10:00,审查,u-clerk-1,张三,11010519491231002X,"
        "13800138000,supplement:2026-02-11..2026-02-13,3,true\n")}}}}


@router.post("/import", tags=["cases"], status_code=201, response_model=ImportOut, openapi_extra=_IMPORT_BODY,
             responses={422: {"description": "the rows' problems, every one (row, field, reason): nothing imported"},
                        415: {"description": "neither text/csv nor application/json"}})
async def import_cases(request: Request, user: CenterEditor, session: SessionDep, ctx: ContextDep,
                       center: Annotated[str, Query(pattern=CENTER, description="the centre going live")]) -> Response:
    """Import open cases from a previous system (centre admin; CSV or JSON): all rows or none."""
    user.check_center(center)
    content_type = request.headers.get("content-type", "")
    media, _, params = content_type.partition(";")
    fmt: Literal["csv", "json"]
    if media.strip().lower() == "text/csv":
        fmt = "csv"
    elif media.strip().lower() == "application/json":
        fmt = "json"
    else:
        raise AppError(f"an import is text/csv or application/json, not {media or 'untyped'}",
                       field="content-type", status=415, code="unsupported_media_type")
    charset = "utf-8"
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    settings = request.app.state.settings
    try:
        import_id, done = await importer.import_cases(
            session, ctx, importer.Actor(user.subject, str(user.role)), center, await request.body(), fmt,
            via="api", charset=charset, max_rows=settings.import_max_rows)
    except importer.ImportRejected as rejected:
        first = rejected.errors[0]
        return problem(422, "import_invalid", rejected.detail, instance=request.url.path,
                       errors=[e.as_dict() for e in rejected.errors], field=first.field, row=first.row)
    out = ImportOut(import_id=import_id, center_id=center, rows=len(done),
                    overdue=sum(p.case.overdue_at_import for p in done),
                    cases=[ImportedOut(row=p.row, legacy_no=p.legacy_no, case_no=p.case.case_no,
                                       status=cast(CaseStatus, p.case.status),
                                       due_at=p.case.due_at, legal_due_at=p.case.legal_due_at,
                                       overdue_at_import=p.case.overdue_at_import) for p in done])
    return Response(out.model_dump_json(), status_code=201, media_type="application/json")


# the centre's settings

@router.get("/centers/{center_id}/settings", tags=["centers"], response_model=CenterSettingsOut)
async def get_center_settings(center_id: CenterId, user: StaffReader, session: SessionDep,
                              ctx: CatalogueContextDep) -> CenterSettingsOut:
    """The centre's settings in the cases service: its compression target (staff of the centre)."""
    user.check_center(center_id)
    return await guide.center_settings(session, ctx, center_id)


@router.put("/centers/{center_id}/settings", tags=["centers"], response_model=CenterSettingsOut)
async def put_center_settings(center_id: CenterId, body: CenterSettingsIn, user: CenterEditor, session: SessionDep,
                              ctx: CatalogueContextDep) -> CenterSettingsOut:
    """Set the centre's compression target (30 or 50 %, centre admin); the items it re-flags publish
    item.upserted."""
    user.check_center(center_id)
    if not await repository.center_known(session, center_id):
        raise NotFound(f"centre {center_id} is not known here", field="center_id", code="unknown_center")
    return await guide.set_compression_target(session, ctx, user, center_id, body.compression_target)


# the guide's downloadable forms and samples

async def _item_to_change(center_id: CenterId, code: ItemCode, user: CenterEditor, session: SessionDep) -> Item:
    user.check_center(center_id)
    item = await repository.get_item(session, center_id, code, for_update=True)
    if item is None:
        raise NotFound(f"centre {center_id} has no item {code}", field="code")
    return item


ItemToChange = Annotated[Item, Depends(_item_to_change)]


async def _body_within(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise AppError(f"a guide file is at most {limit} bytes", field="body", status=413, code="file_too_large")
    content = bytearray()
    async for chunk in request.stream():
        content.extend(chunk)
        if len(content) > limit:
            raise AppError(f"a guide file is at most {limit} bytes", field="body", status=413, code="file_too_large")
    return bytes(content)


@router.put("/items/{center_id}/{code}/files/{name}", tags=["catalogue"], response_model=ItemFileRef,
            responses={201: {"model": ItemFileRef, "description": "a new file"}, 413: {"description": "too large"},
                       415: {"description": "not a type the guide offers"}},
            openapi_extra={"requestBody": {"required": True, "content": {
                media: {"schema": {"type": "string", "format": "binary"}} for media in guide.CONTENT_TYPES}}})
async def put_item_file(name: FileName, request: Request, item: ItemToChange, user: CenterEditor,
                        session: SessionDep,
                        kind: Annotated[Literal["form", "sample"], Query(
                            description="form: the blank 申请表; sample: a filled-in 示范文本")] = "form") -> Response:
    """Upload a form or sample of the item's guide (centre admin): the raw file with its content type."""
    content = await _body_within(request, request.app.state.settings.guide_file_max_bytes)
    ref, created = await guide.put_file(session, user, item, name, kind, request.headers.get("content-type", ""),
                                        content)
    return JSONResponse(ref.model_dump(mode="json"), status_code=201 if created else 200)


@router.delete("/items/{center_id}/{code}/files/{name}", tags=["catalogue"], status_code=204)
async def delete_item_file(name: FileName, item: ItemToChange, session: SessionDep) -> Response:
    """Remove a file from the item's guide (centre admin)."""
    await guide.delete_file(session, item, name)
    return Response(status_code=204)


@router.get("/public/items/{center_id}/{code}/files/{name}", tags=["public"],
            responses={200: {"content": {m: {} for m in guide.CONTENT_TYPES}, "description": "the file"},
                       304: {"description": "If-None-Match matched"}, 404: {"description": "no such file"}})
async def public_item_file(center_id: CenterId, code: ItemCode, name: FileName, request: Request,
                           session: SessionDep) -> Response:
    """Download a form or sample of an item's guide (no token)."""
    row = await guide.public_file(session, center_id, code, name)
    etag = f'"{row.sha256}"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff",
               "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row.name)}"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(row.content, media_type=row.content_type, headers=headers)
