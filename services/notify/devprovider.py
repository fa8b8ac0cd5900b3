"""The local development provider `make run` starts: a fake SMS provider (the generic JSON format) and an SMTP
server with STARTTLS, whose messages can be listed. Nothing leaves the machine.

    python -m services.notify.devprovider --http-port 8025 --smtp-port 8026 [--host 127.0.0.1] [--cert-dir DIR]

- `POST /sms` takes the generic format (`services.notify.channels.sms`) and answers `{"id": "dev-sms-1"}`; a
  repeated idempotency key gets the first message's id back and stores nothing new.
- `GET /sms` lists the messages: id, to_masked, text, template_key, received_at (the number only masked).
- SMTP on --smtp-port offers STARTTLS with a self-signed certificate made at start (written to --cert-dir,
  a temporary directory by default, as `smtp-cert.pem`: notify validates it with NOTIFY_SMTP__CA_FILE; one
  already in --cert-dir that still covers the hosts is kept across restarts) and
  takes any AUTH login once TLS is up; a repeated Message-ID is stored once.
- `GET /mail` lists the mails: id, to_masked, subject, body, message_id, received_at.

One log line per message, without its address or text. SIGTERM or SIGINT stops it cleanly."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import ipaddress
import itertools
import logging
import signal
import socket
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import uvicorn
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.clock import wall_now
from shared.logging import configure_logging
from shared.pii import PersonalDataError, mask_email, mask_phone, normalize_phone

log = logging.getLogger("services.notify.devprovider")
CERT_NAME, KEY_NAME = "smtp-cert.pem", "smtp-key.pem"
PROBLEM_JSON = "application/problem+json"


# --- TLS ------------------------------------------------------------------------------------------------

def self_signed_certificate(directory: Path, hosts: Sequence[str] = ("localhost", "127.0.0.1"),
                            *, days: int = 30) -> tuple[Path, Path]:
    """A fresh self-signed certificate (its own CA) for `hosts` (names or IP addresses) and its key, written
    to `directory`; returns (certificate, key) paths. A client trusts it with the certificate as its CA file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    alt_names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    now = wall_now()
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / CERT_NAME, directory / KEY_NAME
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def kept_certificate(directory: Path, hosts: Sequence[str]) -> tuple[Path, Path]:
    """The certificate already in `directory` when it still serves: it matches its key, covers every one of
    `hosts` and has more than a day to run; otherwise a new one. So a restarted `make run` keeps the CA file
    notify (or a mail client told to trust it) already holds."""
    cert_path, key_path = directory / CERT_NAME, directory / KEY_NAME
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        covered = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
        covered |= set(names.get_values_for_type(x509.DNSName))
        wanted = {str(ipaddress.ip_address(h)) if _is_ip(h) else h for h in hosts}
        fresh = certificate.not_valid_after_utc - wall_now() > timedelta(days=1)
        same_key = key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo) == \
            certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        if wanted <= covered and fresh and same_key:
            return cert_path, key_path
    except (OSError, ValueError, TypeError, x509.ExtensionNotFound):
        pass  # missing, unreadable or not ours: made again
    return self_signed_certificate(directory, hosts)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def _not_login_data_deprecation(record: logging.LogRecord) -> bool:
    # aiosmtpd warns on every successful AUTH that it sets its own deprecated Session.login_data
    return "login_data is deprecated" not in record.getMessage()


def quiet_smtp_logs() -> None:
    """aiosmtpd logs every command line at INFO, RCPT TO and its address included: keep it to warnings."""
    logger = logging.getLogger("mail.log")
    logger.setLevel(logging.WARNING)
    if _not_login_data_deprecation not in logger.filters:
        logger.addFilter(_not_login_data_deprecation)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 picks a free one), so a taken port fails the start with a clear OSError.

    Created with proto IPPROTO_TCP: asyncio sets TCP_NODELAY only on connections whose socket says so (the
    accepted ones take the listener's proto), and without it each answer written in two parts (uvicorn writes
    the headers, then the body) waits ~40 ms for the client's delayed ACK (Nagle)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock


def plain_body(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    if part is None:
        return ""
    content = part.get_content()
    return content if isinstance(content, str) else ""


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: whoever runs it owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


# --- what was received ----------------------------------------------------------------------------------

@dataclass
class DevSms:
    id: str
    to_masked: str
    text: str
    template_key: str | None
    received_at: str


@dataclass
class DevMail:
    id: str
    to_masked: str
    subject: str
    body: str
    message_id: str | None
    received_at: str


class DevOutbox:
    """The messages the development provider received, in memory; the numbers and addresses only masked."""

    def __init__(self) -> None:
        self.sms: list[DevSms] = []
        self.mail: list[DevMail] = []
        self._sms_by_key: dict[str, str] = {}
        self._mail_by_message_id: dict[str, str] = {}
        self._sms_ids = itertools.count(1)
        self._mail_ids = itertools.count(1)

    def add_sms(self, phone: str, text: str, template_key: str | None, key: str | None) -> tuple[str, bool]:
        """The message's id, and whether it is new (False: its idempotency key was seen, nothing stored)."""
        if key and key in self._sms_by_key:
            return self._sms_by_key[key], False
        sms = DevSms(f"dev-sms-{next(self._sms_ids)}", mask_phone(phone), text, template_key, wall_now().isoformat())
        self.sms.append(sms)
        if key:
            self._sms_by_key[key] = sms.id
        return sms.id, True

    def add_mail(self, recipients: Sequence[str], mail: EmailMessage) -> tuple[str, bool]:
        message_id = str(mail["Message-ID"]).strip() if mail["Message-ID"] else None
        if message_id and message_id in self._mail_by_message_id:
            return self._mail_by_message_id[message_id], False
        stored = DevMail(f"dev-mail-{next(self._mail_ids)}", ", ".join(mask_email(r.lower()) for r in recipients),
                         str(mail["Subject"] or ""), plain_body(mail), message_id, wall_now().isoformat())
        self.mail.append(stored)
        if message_id:
            self._mail_by_message_id[message_id] = stored.id
        return stored.id, True


# --- HTTP -----------------------------------------------------------------------------------------------

def problem(status: int, field: str, detail: str) -> JSONResponse:
    return JSONResponse({"type": "about:blank", "title": "Bad Request", "status": status,
                         "detail": f"{field}: {detail}", "field": field}, status_code=status, media_type=PROBLEM_JSON)


def create_app(outbox: DevOutbox) -> Starlette:
    async def post_sms(request: Request) -> JSONResponse:
        try:
            document: Any = await request.json()
        except ValueError:
            return problem(400, "body", "must be a JSON object")
        if not isinstance(document, dict):
            return problem(400, "body", "must be a JSON object")
        to, text = document.get("to"), document.get("text")
        if not isinstance(to, str):
            return problem(400, "to", "required, a mobile number")
        try:
            phone = normalize_phone(to)
        except PersonalDataError as exc:
            return problem(400, "to", exc.reason)
        if not isinstance(text, str) or not text:
            return problem(400, "text", "required, the message text")
        template_key = document.get("template_key")
        key = document.get("idempotency_key") or request.headers.get("idempotency-key")
        sms_id, new = outbox.add_sms(phone, text, template_key if isinstance(template_key, str) else None,
                                     str(key) if key else None)
        log.info("dev sms received" if new else "dev sms repeated; not stored again",
                 extra={"event": "dev_sms", "sms_id": sms_id, "template_key": template_key, "chars": len(text)})
        return JSONResponse({"id": sms_id})

    async def list_sms(request: Request) -> JSONResponse:
        return JSONResponse([asdict(sms) for sms in outbox.sms])

    async def list_mail(request: Request) -> JSONResponse:
        return JSONResponse([asdict(mail) for mail in outbox.mail])

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "service": "notify-devprovider"})

    return Starlette(routes=[
        Route("/sms", post_sms, methods=["POST"]), Route("/sms", list_sms, methods=["GET"]),
        Route("/mail", list_mail, methods=["GET"]), Route("/healthz", healthz, methods=["GET"]),
    ])


# --- SMTP -----------------------------------------------------------------------------------------------

class DevMailHandler:
    def __init__(self, outbox: DevOutbox) -> None:
        self.outbox = outbox

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        # the wire's CRLF line ends as the parser's policy writes them (\n), so a text part reads as it was sent
        data = (raw if isinstance(raw, bytes) else raw.encode("utf-8")).replace(b"\r\n", b"\n")
        mail = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(mail, EmailMessage)
        mail_id, new = self.outbox.add_mail([str(r) for r in envelope.rcpt_tos], mail)
        log.info("dev mail received" if new else "dev mail repeated; not stored again",
                 extra={"event": "dev_mail", "mail_id": mail_id, "tls": session.ssl is not None})
        return f"250 2.0.0 Ok: queued as {mail_id}"


def accept_any_login(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    return AuthResult(success=True)


class DevProvider:
    """The HTTP app and the SMTP server, in the running event loop."""

    def __init__(self, host: str = "127.0.0.1", http_port: int = 8025, smtp_port: int = 8026,
                 cert_dir: Path | None = None) -> None:
        self.host = host
        self.requested = (http_port, smtp_port)
        self.outbox = DevOutbox()
        self.cert_dir = cert_dir
        self.ca_file: Path | None = None
        self.http_port = 0
        self.smtp_port = 0
        self._temp: tempfile.TemporaryDirectory[str] | None = None
        self._smtp: asyncio.Server | None = None
        self._http: QuietServer | None = None
        self._http_task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    async def start(self) -> None:
        quiet_smtp_logs()
        directory = self.cert_dir
        if directory is None:
            self._temp = tempfile.TemporaryDirectory(prefix="hall-devprovider-")
            directory = Path(self._temp.name)
        hosts = ("localhost", "127.0.0.1", self.host)
        cert, key = kept_certificate(directory, hosts) if self.cert_dir is not None else \
            self_signed_certificate(directory, hosts)
        self.ca_file = cert
        tls = server_tls_context(cert, key)
        outbox, handler = self.outbox, DevMailHandler(self.outbox)

        def smtp_session() -> SMTP:
            return SMTP(handler, hostname="hall-devprovider", ident="hall notify devprovider", tls_context=tls,
                        authenticator=accept_any_login, auth_require_tls=True, enable_SMTPUTF8=True)

        smtp_sock = bind(self.host, self.requested[1])
        self.smtp_port = smtp_sock.getsockname()[1]
        self._smtp = await asyncio.get_running_loop().create_server(smtp_session, sock=smtp_sock)
        http_sock = bind(self.host, self.requested[0])
        self.http_port = http_sock.getsockname()[1]
        config = uvicorn.Config(create_app(outbox), log_config=None, access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2)
        self._http = QuietServer(config)
        self._http_task = asyncio.create_task(self._http.serve(sockets=[http_sock]), name="devprovider-http")
        while not self._http.started:
            if self._http_task.done():
                await self._http_task
                raise RuntimeError("the development provider's HTTP server did not start")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            await self._http_task
        if self._smtp is not None:
            self._smtp.close()
            close_clients = getattr(self._smtp, "close_clients", None)  # Python 3.12+: wait_closed waits for them
            if close_clients is not None:
                close_clients()
            await self._smtp.wait_closed()
        if self._temp is not None:
            self._temp.cleanup()
            self._temp = None


async def serve(host: str, http_port: int, smtp_port: int, cert_dir: Path | None) -> int:
    provider = DevProvider(host, http_port, smtp_port, cert_dir)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await provider.start()
    log.info("development provider listening", extra={
        "event": "devprovider_started", "http": provider.url, "smtp_port": provider.smtp_port,
        "ca_file": str(provider.ca_file)})
    try:
        await stopping.wait()
    finally:
        await provider.stop()
        log.info("development provider stopped", extra={"event": "devprovider_stopped"})
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.notify.devprovider", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=8025)
    parser.add_argument("--smtp-port", type=int, default=8026)
    parser.add_argument("--cert-dir", type=Path, default=None,
                        help="where to write the SMTP certificate (smtp-cert.pem); a temporary directory if unset")
    args = parser.parse_args(argv)
    configure_logging("notify-devprovider")
    return asyncio.run(serve(args.host, args.http_port, args.smtp_port, args.cert_dir))


if __name__ == "__main__":
    raise SystemExit(main())
