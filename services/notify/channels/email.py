"""E-mail over SMTP (aiosmtplib): STARTTLS, then login when a user is set, one text/plain UTF-8 message.

Settings: NOTIFY_SMTP__HOST, __PORT, __USER, __PASSWORD, __STARTTLS (default true), __VALIDATE_CERTS,
__CA_FILE, __SENDER, __TIMEOUT_SECONDS.

Each message carries `Message-ID: <idempotency key@hall>`: the same on every retry, so a receiving system
can drop a repeat (a send whose 250 answer was lost is retried with the same id).

With STARTTLS required and a server that does not offer it, nothing is sent and the failure is transient:
the relay is the hall's own infrastructure, a missing STARTTLS is its misconfiguration (or someone stripping
it on the way), not a fault of the message, so the message waits with backoff for the relay to be fixed
instead of going to the dead letters at once. A certificate that does not verify is treated the same way.
SMTP replies: 4xx transient, 5xx permanent; no connection, a timeout or a dropped one: transient."""

from __future__ import annotations

import re
import ssl
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from services.notify.channels.base import Accepted, Message, PermanentFailure, SendFailure, TransientFailure
from services.notify.config import SmtpSettings
from shared.clock import wall_now
from shared.pii import PersonalDataError, normalize_email

WHO = "smtp"
_QUEUE_ID_RE = re.compile(r"queued as ([A-Za-z0-9._-]{1,100})", re.IGNORECASE)
_NOT_ATEXT_RE = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")


def message_id(idempotency_key: str) -> str:
    return f"<{_NOT_ATEXT_RE.sub('-', idempotency_key)}@hall>"


def reply_failure(stage: str, code: int) -> SendFailure:
    """An SMTP reply that refused: 4xx (try later) is transient, 5xx (and anything else) permanent. The
    server's text is not repeated: it often echoes the address."""
    reason = f"{WHO}: the server answered {code} to {stage}"
    return TransientFailure(reason) if 400 <= code < 500 else PermanentFailure(reason)


class SmtpEmail:
    name = "email"

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.tls_context = self._tls_context()

    def _tls_context(self) -> ssl.SSLContext:
        if not self.settings.validate_certs:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        return ssl.create_default_context(cafile=self.settings.ca_file)

    def compose(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.settings.sender
        mail["To"] = message.address
        mail["Subject"] = message.subject or ""
        mail["Date"] = format_datetime(wall_now())
        mail["Message-ID"] = message_id(message.idempotency_key)
        mail.set_content(message.body, subtype="plain", charset="utf-8")
        return mail

    async def send(self, message: Message) -> Accepted:
        try:
            normalize_email(message.address)
            mail = self.compose(message)
        except PersonalDataError:
            raise PermanentFailure(f"{WHO}: the address is not an e-mail address") from None
        except ValueError:  # a line break in the subject or the address: it would forge headers
            raise PermanentFailure(f"{WHO}: the subject or the address cannot go in a header") from None
        settings = self.settings
        smtp = aiosmtplib.SMTP(hostname=settings.host, port=settings.port, timeout=settings.timeout_seconds,
                               start_tls=False, tls_context=self.tls_context)
        stage = "the connection"
        try:
            await smtp.connect()
            stage = "EHLO"
            await smtp.ehlo()
            if settings.starttls:
                if not smtp.supports_extension("starttls"):
                    raise TransientFailure(f"{WHO}: the server does not offer STARTTLS; not sending in clear")
                stage = "STARTTLS"
                await smtp.starttls(tls_context=self.tls_context, server_hostname=settings.host)
            if settings.user:
                stage = "AUTH"
                password = settings.password.get_secret_value() if settings.password else ""
                await smtp.login(settings.user, password)
            stage = "the message"
            _, reply = await smtp.send_message(mail, sender=settings.sender, recipients=[message.address])
        except SendFailure:
            raise
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refused.code for refused in exc.recipients] or [550]
            raise reply_failure("RCPT", min(codes)) from None
        except aiosmtplib.SMTPSenderRefused as exc:
            raise reply_failure("MAIL", exc.code) from None
        except aiosmtplib.SMTPDataError as exc:
            raise reply_failure("DATA", exc.code) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise reply_failure(stage, exc.code) from None
        except ssl.SSLError as exc:
            raise TransientFailure(f"{WHO}: TLS failed at {stage} ({type(exc).__name__})") from None
        except aiosmtplib.SMTPNotSupported:
            raise TransientFailure(f"{WHO}: the server does not support {stage}") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TransientFailure(f"{WHO}: no answer at {stage} ({type(exc).__name__})") from None
        finally:
            if smtp.is_connected:
                try:
                    await smtp.quit()
                except (aiosmtplib.SMTPException, OSError):
                    smtp.close()
        queued = _QUEUE_ID_RE.search(reply or "")
        return Accepted(provider_id=queued.group(1) if queued else str(mail["Message-ID"]))

    async def aclose(self) -> None:
        """Nothing to close: each message has its own connection."""
