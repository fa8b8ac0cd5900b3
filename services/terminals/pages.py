"""The pages: each is a template with the few values it needs to start (where the APIs are, the centre or
window it shows); everything else the page's script asks the APIs for with its own token."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import segno
from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from services.terminals.config import Settings

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(tags=["pages"])

Center = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9]{2,32}$", description="the centre (public pages)")]
WINDOW = r"^[A-Za-z0-9-]{1,16}$"
LOOKUP_CODE = r"^[A-Za-z0-9]{4,16}$"
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$")


ASSET = r"^[a-z0-9][a-z0-9.-]{0,60}\.(js|css|svg|png)$"


@router.get("/static/{name}", include_in_schema=False)
async def asset(request: Request, name: Annotated[str, PathParam(pattern=ASSET)]) -> Response:
    """The pages' scripts and style sheet, from this package only, revalidated by ETag after an hour (a screen
    runs all day and picks up a new release)."""
    path = STATIC_DIR / name
    if not path.is_file():
        return Response(status_code=404)
    stat = path.stat()
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    headers = {"Cache-Control": "public, max-age=3600", "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, headers=headers, stat_result=stat)


def _page(request: Request, template: str, title: str, **values: Any) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    prefix = request.scope.get("root_path", "")
    response = templates.TemplateResponse(request, template, {
        "title": title, "ui": prefix, "api": settings.api_prefix, "settings": settings, **values})
    # the pages hold no personal data themselves but are the frame for it: never cached by a proxy; and
    # nothing from another origin, ever (the browser test records every request as well)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
        "media-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.get("/kiosk", response_class=HTMLResponse)
async def kiosk(request: Request) -> HTMLResponse:
    """取号机: a button per open service, the green channel, appointment check-in, the printed ticket (kiosk
    device key, kept by the browser once given as `#key=`)."""
    return _page(request, "kiosk.html", "自助取号")


@router.get("/display", response_class=HTMLResponse)
async def display(request: Request) -> HTMLResponse:
    """综合屏: last calls per window (the newest highlighted), waiting counts, away messages, scrolling
    notices; speaks each call (display device key)."""
    return _page(request, "display.html", "叫号显示")


@router.get("/window-screen/{window}", response_class=HTMLResponse)
async def window_screen(request: Request, window: Annotated[str, PathParam(pattern=WINDOW)]) -> HTMLResponse:
    """窗口屏: the window's department, clerk (name, photo, post), the number served, its items, away or
    closed (display device key)."""
    return _page(request, "window_screen.html", f"{window} 号窗口", window=window)


@router.get("/window", response_class=HTMLResponse)
async def window_terminal(request: Request) -> HTMLResponse:
    """窗口工作台: the clerk's day at the window terminal (terminal device key, then the clerk's sign-in, which
    takes the window from the device): calling, the current ticket, accepting a case, the open cases by due
    date, the chief representative's approvals, inquiries, the window's messages."""
    return _page(request, "window_terminal.html", "窗口工作台")


@router.get("/supervision", response_class=HTMLResponse)
async def supervision(request: Request) -> HTMLResponse:
    """电子监察: the supervision office's board (supervisor sign-in): live alerts, findings to confirm or excuse,
    spot checks, sanctions and rectifications, complaints and follow-ups, KPIs and window scores with charts."""
    return _page(request, "supervision.html", "电子监察")


@router.get("/ticket/{ticket_id}", response_class=HTMLResponse)
async def ticket(request: Request, ticket_id: Annotated[int, PathParam(ge=1)],
                 code: Annotated[str, Query(pattern=LOOKUP_CODE, description="the slip's lookup code")]
                 ) -> HTMLResponse:
    """号票查询 on a phone: position, estimated wait, the window once called; rate the service afterwards."""
    return _page(request, "ticket.html", "我的排队", ticket_id=ticket_id, code=code)


@router.get("/qr/ticket/{ticket_id}.svg")
async def ticket_qr(request: Request, ticket_id: Annotated[int, PathParam(ge=1)],
                    code: Annotated[str, Query(pattern=LOOKUP_CODE)]) -> Response:
    """The QR code printed on a ticket: the ticket's public page (only that: no open QR generator)."""
    url = f"{_public_base(request)}/ticket/{ticket_id}?code={quote(code)}"
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=4, border=2, dark="#000", light="#fff", xmldecl=False)
    return Response(out.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


def _public_base(request: Request) -> str:
    """Where a phone reaches the pages: the configured public address, else the host the page came from."""
    settings: Settings = request.app.state.settings
    prefix = request.scope.get("root_path", "")
    if settings.public_url:
        return settings.public_url.rstrip("/") + prefix
    host = request.headers.get("host", "")
    scheme = request.headers.get("x-forwarded-proto", request.url.scheme)
    if not _HOST.match(host) or scheme not in ("http", "https"):
        host, scheme = request.url.netloc, request.url.scheme
    return f"{scheme}://{host}{prefix}"


# the public pages (no token; phones first): each calls only the services' public routes

ITEM = r"^[A-Za-z0-9_.-]{1,32}$"  # an item's code, as the catalogue has it
CASE_NO = r"^[A-Za-z0-9-]{1,48}$"  # 320102-20261208-000001
CASE_CODE = r"^[A-Za-z0-9]{1,32}$"  # the receipt's lookup code
CenterPath = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9]{2,32}$")]


@router.get("/appointments", response_class=HTMLResponse)
async def appointments(request: Request, center: Center = None) -> HTMLResponse:
    """网上预约: the open services' free places per slot for 7 days, booking (phone required) and cancelling."""
    return _page(request, "appointments.html", "网上预约", center=center)


@router.get("/lookup", response_class=HTMLResponse)
async def lookup(request: Request, center: Center = None,
                 no: Annotated[str | None, Query(pattern=CASE_NO, description="the case number, filled in")] = None,
                 code: Annotated[str | None, Query(pattern=CASE_CODE, description="its lookup code")] = None
                 ) -> HTMLResponse:
    """办件查询: a case's state, stage and due date by its number and lookup code (nothing personal); given both
    (the receipt's QR code), it asks at once."""
    return _page(request, "lookup.html", "办件查询", center=center, case_no=no, code=code)


@router.get("/case", response_class=HTMLResponse, include_in_schema=False)
async def case_receipt(request: Request,
                       no: Annotated[str | None, Query(pattern=CASE_NO)] = None,
                       code: Annotated[str | None, Query(pattern=CASE_CODE)] = None) -> HTMLResponse:
    """The address the printed receipts' QR codes carry (/ui/case?no=&code=): the lookup page, filled in."""
    return _page(request, "lookup.html", "办件查询", center=None, case_no=no, code=code)


@router.get("/board", response_class=HTMLResponse)
async def board(request: Request, center: Center = None) -> HTMLResponse:
    """办件公示: the centre's latest cases accepted, completed or delivered (names masked), every minute."""
    return _page(request, "board.html", "办件公示", center=center)


@router.get("/guide", response_class=HTMLResponse)
async def guide(request: Request, center: Center = None,
                item: Annotated[str | None, Query(pattern=ITEM, description="the item to open")] = None,
                code: Annotated[str | None, Query(pattern=ITEM, description="the same, as the printed guides' and "
                                                   "notices' QR codes name it")] = None
                ) -> HTMLResponse:
    """办事指南: the centre's items (limits, fees, materials, conditions), each with its QR code and PDF."""
    return _page(request, "guide.html", "办事指南", center=center, item=item or code)


@router.get("/qr/guide/{center_id}/{code}.svg")
async def guide_qr(request: Request, center_id: CenterPath, code: Annotated[str, PathParam(pattern=ITEM)]
                   ) -> Response:
    """An item's QR code: its own guide page (only that: no open QR generator)."""
    url = f"{_public_base(request)}/guide?center={quote(center_id)}&item={quote(code)}"
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=4, border=2, dark="#000", light="#fff", xmldecl=False)
    return Response(out.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/complaints", response_class=HTMLResponse)
async def complaints(request: Request, center: Center = None) -> HTMLResponse:
    """投诉: a complaint about a window, a department or a case; its number and answer-by moment shown back."""
    return _page(request, "complaints.html", "投诉建议", center=center)
