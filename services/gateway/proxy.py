"""Reverse proxy to the services: pooled, streaming both ways (server-sent events pass unbuffered)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse

from shared.errors import AppError, NotFound
from shared.logging import correlation_id
from shared.metrics import CORRELATION_HEADER

# hop-by-hop headers (RFC 9110 7.6.1) are the connection's own, never forwarded
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host"}


class BadGateway(AppError):
    status, code = 502, "upstream_unavailable"


class GatewayTimeout(AppError):
    status, code = 504, "upstream_timeout"


def _forward_headers(request: Request) -> list[tuple[str, str]]:
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP
               and k.lower() != CORRELATION_HEADER.lower()]
    headers.append((CORRELATION_HEADER, correlation_id.get() or ""))
    client = request.client.host if request.client else ""
    prior = request.headers.get("x-forwarded-for")
    headers.append(("X-Forwarded-For", f"{prior}, {client}" if prior else client))
    return headers


async def forward(request: Request, client: httpx.AsyncClient, upstreams: dict[str, str], service: str,
                  path: str, header_timeout: float) -> StreamingResponse:
    base = upstreams.get(service)
    if base is None:
        raise NotFound(f"no service named {service!r}", field="service", code="unknown_service")
    url = httpx.URL(f"{base}/{path}", query=request.url.query.encode())
    has_body = request.method not in ("GET", "HEAD", "OPTIONS", "DELETE") or "content-length" in request.headers
    upstream_request = client.build_request(request.method, url, headers=_forward_headers(request),
                                            content=request.stream() if has_body else None)
    try:
        response = await asyncio.wait_for(client.send(upstream_request, stream=True), header_timeout)
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise GatewayTimeout(f"service {service} did not answer within {header_timeout:g} s",
                             service=service) from exc
    except httpx.TransportError as exc:
        raise BadGateway(f"service {service} is unreachable ({type(exc).__name__})", service=service) from exc

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        except httpx.TransportError:
            # the service went away mid-stream: end the stream; the client sees a truncated body
            return

    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in HOP_BY_HOP]
    streamed = StreamingResponse(body(), status_code=response.status_code,
                                 background=BackgroundTask(response.aclose))
    streamed.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    return streamed
