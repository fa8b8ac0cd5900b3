"""Reverse proxy to the services: one shared aiohttp session, streaming both ways (server-sent events pass
unbuffered), as a pure ASGI app.

Every public call crosses this code, so it stays off FastAPI's per-request machinery (its middleware
layers, route matching, dependency resolution, Starlette's StreamingResponse and its task group): the
gateway app (services.gateway.main) hands a request for a service to `Proxy` through only its error page
and `RequestContextMiddleware` (correlation id, metrics).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import quote_from_bytes, unquote

import aiohttp
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send
from yarl import URL

from services.gateway.config import Settings
from shared.errors import AppError, NotFound
from shared.logging import correlation_id
from shared.metrics import CORRELATION_HEADER

PROXY_PATH = "/api/{service}/{path:path}"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_PROXIED_METHODS = frozenset(METHODS)

# Headers are handled as the bytes that came in: a value in UTF-8 (a Chinese file name in
# Content-Disposition, a name in a custom header) is passed on as it is, never decoded and re-encoded.
# aiohttp takes request headers as str and writes them in UTF-8, so a request header is decoded as
# UTF-8 (giving back the same bytes on the wire); one that is not UTF-8 cannot be forwarded unchanged and
# is refused (400) rather than altered. Response headers stay bytes all the way.
# hop-by-hop headers (RFC 9110 7.6.1) are the connection's own, never forwarded
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
                        b"trailer", b"transfer-encoding", b"upgrade", b"host"})
_CORRELATION = CORRELATION_HEADER.lower().encode()
_FORWARDED_FOR = b"x-forwarded-for"
_NOT_FROM_CLIENT = HOP_BY_HOP | {_CORRELATION, _FORWARDED_FOR, b"x-forwarded-prefix"}
# the gateway's own server and middleware write these on every answer; the service's copies would repeat them
SET_BY_GATEWAY = frozenset({b"date", b"server", _CORRELATION})
# RFC 3986 reserved and unreserved characters, and "%" so the client's own escapes pass unchanged
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
# what aiohttp would add on its own: the gateway adds nothing the caller did not send (an Accept-Encoding:
# gzip added here would get compressed bytes to a caller that never asked for them)
_NOT_ADDED = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
# seconds after which an answer still coming is taken for a stream (see Proxy._relay)
_WATCH_AFTER = 0.05


class BadGateway(AppError):
    status, code = 502, "upstream_unavailable"


class GatewayTimeout(AppError):
    status, code = 504, "upstream_timeout"


class UnforwardableHeader(AppError):
    status, code = 400, "invalid_header"


class Upstream:
    """The gateway's connections to the services: one `aiohttp.ClientSession` per process, opened and
    closed with the app (`async with`), shared by the proxy and the health probes.

    The session keeps no cookies (`DummyCookieJar`: a Set-Cookie for one user must never ride along on
    the next user's requests), passes bodies as the service sent them (no decompression), adds no
    headers of its own and never raises for a status: a proxy wants none of it.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self.in_flight = 0  # answers being relayed whose upstream response is not released yet

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the gateway's upstream session is not open (outside the app's lifespan)")
        return self._session

    async def __aenter__(self) -> Upstream:
        s = self.settings
        connector = aiohttp.TCPConnector(
            limit=s.max_connections, limit_per_host=s.max_connections_per_service,
            # under the services' keep-alive (see Settings.keepalive_expiry)
            keepalive_timeout=s.keepalive_expiry, ttl_dns_cache=s.dns_cache_seconds)
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
            skip_auto_headers=_NOT_ADDED, raise_for_status=False, trust_env=False,
            # no total and no pool-wait limit: `upstream_timeout` bounds the wait for the answer's head,
            # sock_read the silence of a streamed body
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=s.connect_timeout,
                                          sock_read=s.stream_idle_timeout))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _end_to_end(headers: Iterable[tuple[bytes, bytes]],
                also_drop: frozenset[bytes] = frozenset()) -> list[tuple[bytes, bytes]]:
    """The headers meant for the other end, names in lower case: hop-by-hop ones, those the Connection
    header names and `also_drop` left out."""
    headers = [(name.lower(), value) for name, value in headers]
    named = {token.strip() for name, value in headers if name == b"connection"
             for token in value.lower().split(b",")}
    drop = HOP_BY_HOP | named | also_drop
    return [(name, value) for name, value in headers if name not in drop]


def _forward_headers(scope: Scope, prefix: str = "") -> tuple[list[tuple[str, str]], bool]:
    """The request headers for the service, as aiohttp takes them, and whether the request has a body.

    `X-Forwarded-Prefix` tells the service where the gateway mounts it (its docs and links then work)."""
    raw: list[tuple[bytes, bytes]] = scope["headers"]
    headers: list[tuple[str, str]] = []
    named: set[bytes] = set()
    chain: list[bytes] = []
    has_body = False
    for name, value in raw:
        name = name.lower()
        if name == b"connection":
            named.update(token.strip() for token in value.lower().split(b","))
        elif name == _FORWARDED_FOR:
            chain.extend(hop.strip() for hop in value.split(b","))
        elif name == b"content-length":
            has_body = has_body or value.strip() != b"0"
        elif name == b"transfer-encoding":
            has_body = True
    for name, value in raw:
        name = name.lower()
        if name in _NOT_FROM_CLIENT or name in named:
            continue
        try:
            headers.append((name.decode("latin-1"), value.decode()))
        except UnicodeDecodeError as exc:
            raise UnforwardableHeader(f"the value of header {name.decode('latin-1')} is not UTF-8",
                                      field=name.decode("latin-1")) from exc
    headers.append((CORRELATION_HEADER, correlation_id.get() or ""))  # validated: ASCII
    # one header carrying the chain; when uvicorn trusted the sender's X-Forwarded-For (forwarded_allow_ips)
    # the client address is already its last entry and is not repeated
    client = scope.get("client")
    host = client[0].encode() if client else b""
    if host and (not chain or chain[-1] != host):
        chain.append(host)
    headers.append(("X-Forwarded-For", b", ".join(chain).decode("latin-1")))
    if prefix:
        headers.append(("X-Forwarded-Prefix", prefix))
    return headers, has_body


def _raw_rest(scope: Scope, service: str, rest: str) -> str:
    """The path after /api/<service>/ as the client wrote it.

    The scope's `path` is percent-decoded: "a%2Fb%3Fc" would reach the service as "a/b?c", another
    resource with a query. The raw path keeps the client's escapes.
    """
    raw: bytes = scope.get("raw_path") or b""
    parts = raw.split(b"/", 3)  # b"", b"api", b"<service>", the rest
    if len(parts) == 4 and (parts[1] == b"api" or unquote(parts[1].decode("latin-1")) == "api") and (
            parts[2] == service.encode() or unquote(parts[2].decode("latin-1")) == service):
        return quote_from_bytes(parts[3], safe=_PATH_SAFE)
    return quote_from_bytes(rest.encode(), safe="/")


class _Inbound:
    """The request body on its way to the service, read from the client as the service takes it.

    While it streams, the wait for the service's answer (`deadline`, `upstream_timeout`) counts from the
    last piece received, not from the start: a large upload on a slow link is not a 504.
    """

    __slots__ = ("receive", "first", "read", "disconnected", "deadline", "wait")

    def __init__(self, receive: Receive, first: bytes, wait: float) -> None:
        self.receive, self.first, self.wait = receive, first, wait
        self.read = asyncio.Event()  # set once the client's body is all read (or the client is gone)
        self.disconnected = False
        self.deadline: asyncio.Timeout | None = None  # while the answer's head is awaited

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            if self.first:
                yield self.first
            while True:
                message = await self.receive()
                if self.deadline is not None:
                    self.deadline.reschedule(asyncio.get_running_loop().time() + self.wait)
                if message["type"] == "http.disconnect":
                    self.disconnected = True
                    # raised, not returned: aiohttp then cuts the upload, and the service never takes a
                    # truncated body for a complete one
                    raise ClientDisconnect()
                if chunk := message.get("body", b""):
                    yield chunk
                if not message.get("more_body", False):
                    return
        finally:
            self.read.set()


async def _close_when_gone(receive: Receive, inbound: _Inbound | None, response: aiohttp.ClientResponse) -> None:
    """Close the upstream response once the client has disconnected."""
    if inbound is not None:  # the body may still be streaming to the service: its reader has `receive`
        await inbound.read.wait()
    if inbound is None or not inbound.disconnected:
        while (await receive())["type"] != "http.disconnect":
            pass
    response.close()


def proxied(scope: Scope) -> tuple[str, str] | None:
    """(service, the rest of the path) when `scope` is a request for a service, matched as the route
    PROXY_PATH would: /api/, a service name without "/", "/", any rest; and one of METHODS."""
    if scope["type"] != "http" or scope["method"] not in _PROXIED_METHODS:
        return None
    path: str = scope["path"]
    if not path.startswith("/api/"):
        return None
    service, slash, rest = path[5:].partition("/")
    return (service, rest) if service and slash else None


class Proxy:
    """Pure ASGI: a request for a service (see `proxied`) to the service, its answer streamed back.

    Its errors are rendered by the app's own `AppError` handler (problem+json); `route` (the app's
    documented route for PROXY_PATH) goes in the scope for `RequestContextMiddleware`'s metrics label.
    """

    def __init__(self, upstream: Upstream, route: Any) -> None:
        self.upstream = upstream
        self.route = route
        settings = upstream.settings
        self.upstreams = settings.upstreams()
        self.header_timeout = settings.upstream_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = proxied(scope)
        if target is None:
            raise RuntimeError(f"not a request for a service: {scope['method']} {scope['path']}")
        scope["route"] = self.route
        try:
            await self.forward(scope, receive, send, *target)
        except AppError as exc:  # raised before the answer started
            await self._render(exc, scope, receive, send)

    async def forward(self, scope: Scope, receive: Receive, send: Send, service: str, rest: str) -> None:
        """Send the request to the service through the shared session; stream its answer back."""
        base = self.upstreams.get(service)
        if base is None:
            raise NotFound(f"no service named {service!r}", field="service", code="unknown_service")
        headers, has_body = _forward_headers(scope, f"/api/{service}")
        target = f"{base}/{_raw_rest(scope, service, rest)}"
        if query := scope.get("query_string"):  # an empty query would leave a bare "?" on the target
            target += "?" + quote_from_bytes(query, safe=_QUERY_SAFE)
        # RFC 9112 6.3: a request has a body exactly when it says so, whatever its method. A body that
        # came whole in one piece (most JSON) is sent as bytes, in one write with the head; a longer one
        # streams to the service as it arrives.
        inbound: _Inbound | None = None
        data: bytes | AsyncIterator[bytes] | None = None
        if has_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # gone before sending its body: nothing to forward, no one to answer
            if message.get("more_body", False):
                inbound = _Inbound(receive, message.get("body", b""), self.header_timeout)
                data = inbound.chunks()
            else:
                data = message.get("body", b"")
        try:
            async with asyncio.timeout(self.header_timeout) as deadline:
                if inbound is not None:
                    inbound.deadline = deadline
                try:
                    response = await self.upstream.session.request(
                        scope["method"], URL(target, encoded=True), headers=headers, data=data,
                        allow_redirects=False)
                finally:
                    if inbound is not None:
                        inbound.deadline = None  # the body may stream on after the answer's head
        except TimeoutError as exc:  # also aiohttp's connect and read timeouts
            raise GatewayTimeout(f"service {service} did not answer within {self.header_timeout:g} s",
                                 service=service) from exc
        except aiohttp.ClientError as exc:
            raise BadGateway(f"service {service} is unreachable ({type(exc).__name__})",
                             service=service) from exc
        self.upstream.in_flight += 1
        try:
            await self._relay(response, receive, send, inbound)
        finally:
            self.upstream.in_flight -= 1
            # back to the pool when read to the end; otherwise (the client left, the stream was cut) closed
            response.release()

    @staticmethod
    async def _relay(response: aiohttp.ClientResponse, receive: Receive, send: Send,
                     inbound: _Inbound | None) -> None:
        """The service's answer to the client, each piece as it comes (server-sent events unbuffered)."""
        await send({"type": "http.response.start", "status": response.status,
                    "headers": _end_to_end(response.raw_headers, SET_BY_GATEWAY)})
        # uvicorn drops what is sent to a client that has gone, silently: an answer still coming after
        # _WATCH_AFTER is a stream, and from then on a task watches for the client leaving, which closes
        # the upstream response and so ends the relay. A JSON answer is done long before: no task.
        loop = asyncio.get_running_loop()
        watching: list[asyncio.Task[None]] = []
        later = loop.call_later(_WATCH_AFTER, lambda: watching.append(
            loop.create_task(_close_when_gone(receive, inbound, response))))
        content = response.content
        try:
            while True:
                try:
                    chunk = await content.readany()
                except (aiohttp.ClientError, TimeoutError):
                    # the service went away, the stream stayed silent past stream_idle_timeout, or the
                    # client left: end the answer (a client still there sees a truncated body)
                    chunk = b""
                done = not chunk or content.at_eof()
                await send({"type": "http.response.body", "body": chunk, "more_body": not done})
                if done:
                    return
        finally:
            later.cancel()
            for task in watching:
                task.cancel()

    @staticmethod
    async def _render(exc: AppError, scope: Scope, receive: Receive, send: Send) -> None:
        """The app's own AppError handler writes the problem+json answer, as for any other route."""
        handlers = scope["app"].exception_handlers
        handler = next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)
        if handler is None:
            raise exc
        response = await handler(Request(scope, receive), exc)
        await response(scope, receive, send)
