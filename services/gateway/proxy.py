"""Reverse proxy to the services: pooled, streaming both ways (server-sent events pass unbuffered)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterable
from urllib.parse import quote_from_bytes, unquote

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse

from shared.errors import AppError, NotFound
from shared.logging import correlation_id
from shared.metrics import CORRELATION_HEADER

# Headers are handled as the bytes that came in: a value in UTF-8 (a Chinese file name in
# Content-Disposition, a name in a custom header) is passed on as it is, never decoded and re-encoded.
# hop-by-hop headers (RFC 9110 7.6.1) are the connection's own, never forwarded
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
                        b"trailer", b"transfer-encoding", b"upgrade", b"host"})
_CORRELATION = CORRELATION_HEADER.lower().encode()
_FORWARDED_FOR = b"x-forwarded-for"
# the gateway's own server and middleware write these on every answer; the service's copies would repeat them
SET_BY_GATEWAY = frozenset({b"date", b"server", _CORRELATION})
# RFC 3986 reserved and unreserved characters, and "%" so the client's own escapes pass unchanged
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


class BadGateway(AppError):
    status, code = 502, "upstream_unavailable"


class GatewayTimeout(AppError):
    status, code = 504, "upstream_timeout"


class UpstreamPool(httpx.AsyncBaseTransport):
    """The gateway's connections to the services: small httpx pools, each request to the least busy one.

    One httpcore 1.0 pool re-examines every connection for each idle one on every request and release
    (O(connections²), encode/httpcore#1035): with a few hundred open connections a request costs
    milliseconds of CPU and throughput collapses. Pools of a few connections keep that bookkeeping
    negligible; sending to the least busy keeps the whole `max_connections` usable, long streams included.
    """

    def __init__(self, limits: httpx.Limits, connections_per_pool: int = 4) -> None:
        total = limits.max_connections or 100
        keepalive = total if limits.max_keepalive_connections is None else limits.max_keepalive_connections
        count = max(1, math.ceil(total / connections_per_pool))
        each = httpx.Limits(max_connections=math.ceil(total / count),
                            max_keepalive_connections=math.ceil(keepalive / count),
                            keepalive_expiry=limits.keepalive_expiry)
        tls = httpx.create_ssl_context()  # one for all: each would load the CA bundle again (~20 ms)
        self._pools = [httpx.AsyncHTTPTransport(verify=tls, limits=each) for _ in range(count)]
        self._busy = [0] * count

    @property
    def in_flight(self) -> int:
        """Requests sent whose response is not closed yet."""
        return sum(self._busy)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._busy)), key=self._busy.__getitem__)
        self._busy[index] += 1
        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            self._busy[index] -= 1
            raise
        response.stream = _Release(response.stream, self._busy, index)
        return response

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


class _Release(httpx.AsyncByteStream):
    """A response body that frees its place in `UpstreamPool` once closed."""

    def __init__(self, stream: httpx.AsyncByteStream, busy: list[int], index: int) -> None:
        self._stream, self._busy, self._index = stream, busy, index
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            self._busy[self._index] -= 1
        await self._stream.aclose()


def _end_to_end(headers: Iterable[tuple[bytes, bytes]],
                also_drop: frozenset[bytes] = frozenset()) -> list[tuple[bytes, bytes]]:
    """The headers meant for the other end, names in lower case: hop-by-hop ones, those the Connection
    header names and `also_drop` left out."""
    headers = [(name.lower(), value) for name, value in headers]
    named = {token.strip() for name, value in headers if name == b"connection"
             for token in value.lower().split(b",")}
    drop = HOP_BY_HOP | named | also_drop
    return [(name, value) for name, value in headers if name not in drop]


def _forward_headers(request: Request) -> list[tuple[bytes, bytes]]:
    headers = _end_to_end(request.scope["headers"], frozenset({_CORRELATION, _FORWARDED_FOR}))
    headers.append((_CORRELATION, (correlation_id.get() or "").encode()))  # validated: ASCII
    # one header carrying the chain; when uvicorn trusted the sender's X-Forwarded-For (forwarded_allow_ips)
    # the client address is already its last entry and is not repeated
    chain = [hop.strip() for name, value in request.scope["headers"] if name == _FORWARDED_FOR
             for hop in value.split(b",")]
    client = (request.client.host if request.client else "").encode()
    if client and (not chain or chain[-1] != client):
        chain.append(client)
    headers.append((_FORWARDED_FOR, b", ".join(chain)))
    return headers


def _raw_rest(request: Request, service: str, path: str) -> str:
    """The path after /api/<service>/ as the client wrote it.

    The route's `path` is percent-decoded: "a%2Fb%3Fc" would reach the service as "a/b?c", another
    resource with a query. The raw path keeps the client's escapes.
    """
    raw: bytes = request.scope.get("raw_path") or b""
    parts = raw.split(b"/", 3)  # b"", b"api", b"<service>", the rest
    if len(parts) == 4 and unquote(parts[1].decode("latin-1")) == "api" \
            and unquote(parts[2].decode("latin-1")) == service:
        return quote_from_bytes(parts[3], safe=_PATH_SAFE)
    return quote_from_bytes(path.encode(), safe="/")


async def forward(request: Request, pool: httpx.AsyncBaseTransport, upstreams: dict[str, str], service: str,
                  path: str, header_timeout: float, io_timeouts: httpx.Timeout) -> StreamingResponse:
    """Send the request to the service through the shared connection pool; stream its answer back.

    The pool is used directly, not through `httpx.AsyncClient.send`: a client keeps one cookie jar for
    every caller (a Set-Cookie for one user would ride along on the next user's requests), adds its
    own default headers (Accept-Encoding: gzip would get compressed bytes to a caller that never asked
    for them) and logs each request; a proxy wants none of it.
    """
    base = upstreams.get(service)
    if base is None:
        raise NotFound(f"no service named {service!r}", field="service", code="unknown_service")
    # an empty query would leave a bare "?" on the target
    url = httpx.URL(f"{base}/{_raw_rest(request, service, path)}", query=request.url.query.encode() or None)
    # RFC 9112 6.3: a request has a body exactly when it says so, whatever its method
    has_body = "content-length" in request.headers or "transfer-encoding" in request.headers
    upstream_request = httpx.Request(request.method, url, headers=_forward_headers(request),
                                     content=request.stream() if has_body else None,
                                     extensions={"timeout": io_timeouts.as_dict()})
    try:
        async with asyncio.timeout(header_timeout):
            response = await pool.handle_async_request(upstream_request)
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

    streamed = StreamingResponse(body(), status_code=response.status_code,
                                 background=BackgroundTask(response.aclose))
    streamed.raw_headers = _end_to_end(response.headers.raw, SET_BY_GATEWAY)
    return streamed
