"""Real servers on loopback, in the test's event loop, that notify's channels send to: an HTTP receiver (a
webhook endpoint, the generic SMS provider, or any provider API a responder plays) and an SMTP server with
STARTTLS.

    async with HttpReceiver(webhook_secret="s3cret-for-tests") as hooks:
        hooks.fail_first(2)                    # the next two requests get 503
        ... send to hooks.url + "/hook" ...
        assert len(hooks.accepted) == 1 and len(hooks.requests) == 3

    async with SmtpReceiver(auth=("notify", "pw")) as smtp:
        settings = SmtpSettings(port=smtp.port, ca_file=smtp.ca_file, user="notify", password="pw")
        ...
        assert smtp.messages[0]["Subject"] == "..."
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import itertools
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.notify.channels.webhook import verify_signature
from services.notify.devprovider import bind, quiet_smtp_logs, self_signed_certificate, server_tls_context
from shared.clock import wall_now


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    json: Any  # the parsed body, or None when it is not JSON

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass(frozen=True)
class AcceptedMessage:
    id: str
    key: str | None
    request: ReceivedRequest


# what the receiver answers an accepted request with: (status, JSON document), given it and its id
Responder = Callable[[ReceivedRequest, str], tuple[int, Any]]


def answer_id(request: ReceivedRequest, message_id: str) -> tuple[int, Any]:
    """The generic SMS provider's and a webhook receiver's answer: 200 {"id": ...}."""
    return 200, {"id": message_id}


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpReceiver:
    """Records every request to any path and answers like a provider would: an accepted message gets an id,
    and a repeated `Idempotency-Key` gets the first message's id back without being counted again.

    Behaviour: `fail_first(n, status)` (the next n requests fail), `always_fail(status)` until `recover()`,
    `delay` seconds before each answer, `respond` to play another provider's API (see `answer_id`), and
    `webhook_secret` to verify X-Hall-Signature (401 and `bad_signatures` += 1 when it does not verify)."""

    def __init__(self, *, webhook_secret: str | None = None, delay: float = 0.0, respond: Responder = answer_id,
                 tolerance_seconds: float = 300, id_prefix: str = "msg") -> None:
        self.webhook_secret = webhook_secret
        self.delay = delay
        self.respond = respond
        self.tolerance_seconds = tolerance_seconds
        self.requests: list[ReceivedRequest] = []
        self.accepted: list[AcceptedMessage] = []
        self.bad_signatures = 0
        self.failed = 0  # requests answered with a failure status
        self.port = 0
        self._by_key: dict[str, AcceptedMessage] = {}
        self._ids = (f"{id_prefix}-{n}" for n in itertools.count(1))
        self._fail_next = 0
        self._fail_status = 503
        self._failing: int | None = None
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_first(self, n: int, status: int = 503) -> None:
        self._fail_next, self._fail_status = n, status

    def always_fail(self, status: int = 503) -> None:
        self._failing = status

    def recover(self) -> None:
        self._failing, self._fail_next = None, 0

    def _failure(self) -> int | None:
        if self._failing is not None:
            return self._failing
        if self._fail_next > 0:
            self._fail_next -= 1
            return self._fail_status
        return None

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Any], send: Callable[[Any], Any]) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        received = ReceivedRequest(request.method, request.url.path,
                                   {k.lower(): v for k, v in request.headers.items()}, body, parsed)
        self.requests.append(received)
        response = await self._answer(received)
        await response(scope, receive, send)

    async def _answer(self, received: ReceivedRequest) -> Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.webhook_secret is not None and not verify_signature(
                self.webhook_secret, received.headers.get("x-hall-timestamp", ""), received.body,
                received.headers.get("x-hall-signature"), now=wall_now(), tolerance_seconds=self.tolerance_seconds):
            self.bad_signatures += 1
            return JSONResponse({"error": "signature"}, status_code=401)
        failure = self._failure()
        if failure is not None:
            self.failed += 1
            return JSONResponse({"error": "failing on purpose"}, status_code=failure)
        key = received.idempotency_key
        if key is not None and key in self._by_key:
            first = self._by_key[key]
        else:
            first = AcceptedMessage(next(self._ids), key, received)
            self.accepted.append(first)
            if key is not None:
                self._by_key[key] = first
        status, document = self.respond(received, first.id)
        return JSONResponse(document, status_code=status)

    async def __aenter__(self) -> HttpReceiver:
        sock = bind("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=1)
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name=f"http-receiver-{self.port}")
        while not self._server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("the HTTP receiver did not start")
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool  # whether it came over a TLS-protected session (after STARTTLS)
    login: str | None  # the AUTH login it came under


@dataclass
class _SmtpState:
    mails: list[ReceivedMail] = field(default_factory=list)
    fail_next: int = 0
    fail_code: int = 451
    failing: int | None = None


class _Handler:
    def __init__(self, state: _SmtpState) -> None:
        self.state = state

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        state = self.state
        code = state.failing
        if code is None and state.fail_next > 0:
            state.fail_next -= 1
            code = state.fail_code
        if code is not None:
            return f"{code} {'4.3.0 try again later' if code < 500 else '5.7.1 refused'}"
        raw = envelope.original_content or envelope.content or b""
        # the wire's CRLF line ends as the parser's policy writes them (\n), so a text part reads as it was sent
        data = (raw if isinstance(raw, bytes) else raw.encode("utf-8")).replace(b"\r\n", b"\n")
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        state.mails.append(ReceivedMail(str(envelope.mail_from), [str(r) for r in envelope.rcpt_tos], message,
                                        session.ssl is not None, login))
        return f"250 2.0.0 Ok: queued as Q{len(state.mails)}"


class SmtpReceiver:
    """An SMTP server on loopback: STARTTLS with a fresh self-signed certificate (`ca_file` validates it),
    required before MAIL when `starttls`; AUTH when `auth` = (user, password) is given (only over TLS).
    `fail_first(n, code)` / `always_fail(code)` / `recover()` refuse DATA (451 by default)."""

    def __init__(self, *, starttls: bool = True, auth: tuple[str, str] | None = None) -> None:
        self.starttls = starttls
        self.auth = auth
        self.port = 0
        self.ca_file: str | None = None
        self.failed_logins = 0
        self._state = _SmtpState()
        self._temp: tempfile.TemporaryDirectory[str] | None = None
        self._server: asyncio.Server | None = None

    @property
    def mails(self) -> list[ReceivedMail]:
        return self._state.mails

    @property
    def messages(self) -> list[EmailMessage]:
        return [mail.message for mail in self._state.mails]

    @property
    def distinct_messages(self) -> list[EmailMessage]:
        """One per Message-ID: what a receiving system that drops repeats by it keeps."""
        seen: dict[str, EmailMessage] = {}
        for message in self.messages:
            seen.setdefault(str(message["Message-ID"]), message)
        return list(seen.values())

    def fail_first(self, n: int, code: int = 451) -> None:
        self._state.fail_next, self._state.fail_code = n, code

    def always_fail(self, code: int = 451) -> None:
        self._state.failing = code

    def recover(self) -> None:
        self._state.failing, self._state.fail_next = None, 0

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        if (self.auth is not None and isinstance(auth_data, LoginPassword)
                and (auth_data.login.decode(), auth_data.password.decode()) == self.auth):
            return AuthResult(success=True, auth_data=auth_data)
        self.failed_logins += 1
        return AuthResult(success=False, handled=False)

    async def __aenter__(self) -> SmtpReceiver:
        quiet_smtp_logs()
        tls = None
        if self.starttls:
            self._temp = tempfile.TemporaryDirectory(prefix="hall-smtp-receiver-")
            cert, key = self_signed_certificate(Path(self._temp.name))
            self.ca_file = str(cert)
            tls = server_tls_context(cert, key)
        handler = _Handler(self._state)
        auth_kwargs: dict[str, Any] = (
            {"authenticator": self._authenticate, "auth_required": True, "auth_require_tls": True}
            if self.auth is not None else {})

        def session() -> SMTP:
            return SMTP(handler, hostname="receiver.test", tls_context=tls, require_starttls=self.starttls,
                        enable_SMTPUTF8=True, **auth_kwargs)

        sock = bind("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        self._server = await asyncio.get_running_loop().create_server(session, sock=sock)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.close()
            close_clients = getattr(self._server, "close_clients", None)  # Python 3.12+: wait_closed waits for them
            if close_clients is not None:
                close_clients()
            await self._server.wait_closed()
        if self._temp is not None:
            self._temp.cleanup()
