"""A small stand-in service for the gateway tests: slow answers, streamed frames, upload counting, echo."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import ClientDisconnect

from shared.clock import monotonic

# set on the echo answer so the tests can see the gateway drop them on the way back
HOP_BY_HOP_OUT = {"Keep-Alive": "timeout=5", "Proxy-Authenticate": "Basic realm=upstream",
                  "Connection": "x-upstream-private", "X-Upstream-Private": "1", "X-Upstream-Kept": "1"}

NOTICE_DISPOSITION = 'attachment; filename="受理通知书.pdf"'
GZIPPED = gzip.compress("受理通知 ".encode() * 100)


async def _sleep_unless_disconnected(request: Request, seconds: float) -> bool:
    """Sleep, waking early (False) when the caller hangs up, so a stopping server is not held up."""
    deadline = monotonic() + seconds
    while monotonic() < deadline:
        if await request.is_disconnected():
            return False
        await asyncio.sleep(0.05)
    return True


def reset(app: FastAPI) -> None:
    """Fresh per-test records: `frames` (frame number, monotonic time) as /stream produces each frame,
    `upload_started` when an upload's first bytes arrive, `uploads` how /cut uploads ended,
    `quiet_ended` when /quiet's stream ends."""
    app.state.frames = []
    app.state.upload_started = asyncio.Event()
    app.state.uploads = []
    app.state.upload_ended = asyncio.Event()
    app.state.quiet_ended = asyncio.Event()


def create_upstream_app() -> FastAPI:
    app = FastAPI(title="gateway test upstream")
    reset(app)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok", "service": "upstream"}

    @app.get("/slow")
    async def slow(request: Request, seconds: float = 5.0) -> dict[str, bool]:
        """Answer only after `seconds`."""
        return {"finished": await _sleep_unless_disconnected(request, seconds)}

    @app.get("/stream")
    async def stream(frames: int = 5, interval: float = 0.2) -> StreamingResponse:
        """Server-sent-event frames, one every `interval` seconds."""

        async def produce() -> AsyncIterator[bytes]:
            for n in range(frames):
                if n:
                    await asyncio.sleep(interval)
                app.state.frames.append((n, monotonic()))
                yield f"id: {n}\ndata: frame {n}\n\n".encode()

        return StreamingResponse(produce(), media_type="text/event-stream")

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, Any]:
        """Count and hash a request body as it streams in."""
        size, digest = 0, hashlib.sha256()
        async for chunk in request.stream():
            if chunk:
                app.state.upload_started.set()
            size += len(chunk)
            digest.update(chunk)
        return {"bytes": size, "sha256": digest.hexdigest(),
                "transfer_encoding": request.headers.get("transfer-encoding")}

    @app.get("/login")
    async def login() -> Response:
        """Set a session cookie, meant for the one caller who logged in."""
        response = Response(status_code=204)
        response.set_cookie("session", "alice-secret")
        return response

    @app.get("/notice")
    async def notice() -> Response:
        """A download named in UTF-8, as browsers accept (受理通知书: notice of acceptance)."""
        response = Response(b"%PDF-1.7", media_type="application/pdf")
        response.raw_headers.append((b"content-disposition", NOTICE_DISPOSITION.encode()))
        return response

    @app.api_route("/echo/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    @app.get("/feeds/{rest:path}")
    async def echo(request: Request, rest: str) -> JSONResponse:
        """What arrived: method, raw path, query, headers (in order, repeats kept), body size."""
        body = await request.body()
        return JSONResponse(
            {"method": request.method, "raw_path": request.scope["raw_path"].decode("latin-1"),
             "query": request.url.query, "headers": [[k, v] for k, v in request.headers.items()],
             "body_bytes": len(body)},
            headers=HOP_BY_HOP_OUT,
        )

    @app.post("/cut")
    async def cut(request: Request) -> dict[str, int]:
        """Record whether an upload arrived whole or was cut short."""
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if chunk:
                    app.state.upload_started.set()
        except ClientDisconnect:
            app.state.uploads.append(("cut", size))
            raise
        finally:
            app.state.upload_ended.set()
        app.state.uploads.append(("complete", size))
        return {"bytes": size}

    @app.get("/gzip")
    async def compressed() -> Response:
        """Compressed bytes, as a service may send them."""
        return Response(GZIPPED, media_type="text/plain", headers={"Content-Encoding": "gzip"})

    @app.get("/quiet")
    async def quiet() -> StreamingResponse:
        """An event stream that has nothing to say for a long while."""

        async def produce() -> AsyncIterator[bytes]:
            try:
                await asyncio.sleep(30)
                yield b"data: late\n\n"
            finally:
                app.state.quiet_ended.set()

        return StreamingResponse(produce(), media_type="text/event-stream")

    @app.api_route("/both", methods=["GET", "HEAD"])
    async def both() -> Response:
        """GET and HEAD."""
        return Response(b"twelve bytes", media_type="text/plain")

    return app
