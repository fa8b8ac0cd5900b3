"""The notify service under test: its app on a fresh database, events applied by the consumers' own handler
(services.notify.consumers, in a transaction as the consumer runs it), and a dispatcher whose channels talk to
real servers on loopback (tests/notify/receivers.py). Rounds are run by the test, after it moves the fixed
clock, never by sleeping."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from services.notify import consumers, planner
from services.notify.channels.base import Channel
from services.notify.channels.email import SmtpEmail
from services.notify.channels.sms import GenericSms
from services.notify.channels.webhook import Webhook
from services.notify.config import Settings
from services.notify.dispatcher import Dispatcher
from services.notify.templating.samples import sample
from shared import clock, pii
from shared.events.envelope import Envelope, EventData
from shared.timers import TimerRunner
from tests.notify.receivers import HttpReceiver, SmtpReceiver

CENTRE = "320102"
PHONE = "13812345678"  # never logged: the suite's secret scan fails the run on a mobile number in a log line
EMAIL = "handler@example.cn"
_sequence = itertools.count(1)
PRODUCERS = {"user.": "identity", "department.": "cases", "case.": "cases", "notice.": "cases",
             "ticket.": "queue", "appointment.": "queue", "center.": "queue"}


def sealed(value: str) -> str:
    return pii.seal(os.environ["HALL_NOTIFY_SEAL_PUBLIC_KEY"], value)


def envelope(payload: EventData, *, center_id: str | None = CENTRE, subject: str | None = None) -> Envelope:
    producer = next((p for prefix, p in PRODUCERS.items() if payload.type.startswith(prefix)), "monitor")
    return Envelope.wrap(producer, payload, subject=subject or payload.type, center_id=center_id).model_copy(
        update={"sequence": next(_sequence)})


def build(model: type[EventData], **changes: Any) -> Any:
    """A valid payload of `model` (sample data) with `changes`, nested ones as dicts (`alert={"kind": ...}`)."""
    def merge(base: Any, change: Any) -> Any:
        if isinstance(base, dict) and isinstance(change, dict):
            return {**base, **{k: merge(base.get(k), v) for k, v in change.items()}}
        return change

    return model.model_validate(merge(sample(model).model_dump(), changes))


@dataclass
class Notify:
    client: httpx.AsyncClient
    settings: Settings
    dispatcher: Dispatcher
    timers: TimerRunner
    sms: HttpReceiver
    mail: SmtpReceiver
    webhook: HttpReceiver

    @property
    def db(self) -> Any:
        return self.client.db  # type: ignore[attr-defined]

    async def apply(self, env: Envelope) -> None:
        """Apply one event as the consumer of its topic would (its handler, in one transaction)."""
        handlers = {spec.name: spec.handlers for spec in consumers.CONSUMERS}
        topic = {"identity": "identity", "cases": "cases", "queue": "queue", "monitor": "monitor"}[env.producer]
        handler = handlers[topic][env.type]
        async with self.client.app.state.sessionmaker() as session, session.begin():  # type: ignore[attr-defined]
            await handler(session, env)

    async def dispatch(self) -> int:
        """Dispatch rounds until nothing is due now."""
        total = 0
        while (n := await self.dispatcher.dispatch_once()) > 0:
            total += n
        return total

    async def at(self, moment: datetime) -> None:
        """Move the fixed clock, fire the timers due and dispatch."""
        clock.get_clock().set(moment)  # type: ignore[attr-defined]
        while await self.timers.fire_due():
            pass
        await self.dispatch()

    async def deliveries(self, **query: Any) -> list[dict[str, Any]]:
        rows = await self.db.fetch("SELECT * FROM deliveries ORDER BY id")
        return [dict(r) for r in rows if all(r[k] == v for k, v in query.items())]


@asynccontextmanager
async def notify(service_client: Any, *, webhook_secret: str | None = None, **overrides: Any
                 ) -> AsyncIterator[Notify]:
    async with HttpReceiver(id_prefix="sms") as sms, SmtpReceiver() as mail, \
            HttpReceiver(webhook_secret=webhook_secret, id_prefix="hook") as hook:
        settings_overrides = {"retry_base_seconds": 1.0, "retry_cap_seconds": 60.0, **overrides}
        async with service_client("notify", **settings_overrides) as client:
            settings: Settings = client.app.state.settings
            settings = settings.model_copy(update={
                "sms": settings.sms.model_copy(update={"provider": "generic", "url": f"{sms.url}/sms"}),
                "smtp": settings.smtp.model_copy(update={"port": mail.port, "ca_file": mail.ca_file})})
            planner.configure(settings)
            channels: dict[str, Channel] = {"sms": GenericSms(settings.sms), "email": SmtpEmail(settings.smtp),
                        "webhook": Webhook(timeout_seconds=settings.webhook_timeout_seconds)}
            engine = client.app.state.engine
            try:
                yield Notify(client, settings, Dispatcher(engine, settings, channels),
                             TimerRunner(engine, planner.TIMER_HANDLERS), sms, mail, hook)
            finally:
                for channel in channels.values():
                    await channel.aclose()
                planner.configure(None)
