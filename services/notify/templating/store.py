"""What the delivery planner calls: a template rendered (the saved edit, else the Chinese default), the context
a template sees, and whether a rule is switched on for a centre.

The planner renders thousands of messages a second, so neither the templates nor the switches are read per
call: each process keeps a snapshot of both tables (a few dozen rows) for at most `SNAPSHOT_TTL` seconds, per
database engine, and compiles each template once per (key, version). A save or a switch in this process drops
the snapshots at once (and again when its transaction ends); one in another process is seen within the TTL.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, Template
from pydantic import BaseModel
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import rules
from services.notify.models import RuleSwitch
from services.notify.models import Template as TemplateRow
from services.notify.templating import samples
from services.notify.templating.defaults import DEFAULTS
from services.notify.templating.env import ENV
from shared import clock
from shared.events.envelope import EventData

SNAPSHOT_TTL = 1.0
"""Seconds a process trusts its copy of the templates and switches tables."""

PRIVATE_SUFFIXES = samples.PRIVATE_SUFFIXES


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    body: str


@dataclass(frozen=True)
class Saved:
    version: int
    subject: str | None
    body: str


@dataclass(frozen=True)
class _Snapshot:
    loaded_at: float
    templates: dict[str, Saved]
    switched_off: frozenset[tuple[str, str]]  # (center_id, key)


@dataclass(frozen=True)
class _Compiled:
    subject_source: str | None
    body_source: str
    subject: Template | None
    body: Template


_snapshots: weakref.WeakKeyDictionary[Engine, _Snapshot] = weakref.WeakKeyDictionary()
_generation = 0  # bumped by every invalidation: a snapshot read while one happened is not kept
_compiled: dict[tuple[str, int], _Compiled] = {}


def invalidate(session: AsyncSession | None = None) -> None:
    """Drop every snapshot of this process now and, given the session of the change, when its transaction
    ends too (a reader between the change and its commit would otherwise keep the old state a whole TTL)."""
    global _generation
    _generation += 1
    _snapshots.clear()
    if session is not None:
        for name in ("after_commit", "after_rollback"):
            event.listen(session.sync_session, name, _on_end, once=True)


def _on_end(_session: Any) -> None:
    invalidate()


async def _snapshot(session: AsyncSession) -> _Snapshot:
    engine = session.sync_session.get_bind()
    assert isinstance(engine, Engine)
    now = clock.monotonic()
    snap = _snapshots.get(engine)
    if snap is not None and now - snap.loaded_at < SNAPSHOT_TTL:
        return snap
    generation = _generation
    saved = (await session.execute(select(TemplateRow.key, TemplateRow.version, TemplateRow.subject,
                                          TemplateRow.body))).all()
    off = (await session.execute(select(RuleSwitch.center_id, RuleSwitch.key)
                                 .where(RuleSwitch.enabled.is_(False)))).all()
    snap = _Snapshot(now, {key: Saved(version, subject, body) for key, version, subject, body in saved},
                     frozenset((center, key) for center, key in off))
    if generation == _generation:
        _snapshots[engine] = snap
    return snap


def _compile(key: str, saved: Saved | None) -> _Compiled:
    version, subject, body = ((saved.version, saved.subject, saved.body) if saved is not None
                              else (0, *DEFAULTS[key]))
    found = _compiled.get((key, version))
    # a template reset to its default and saved again restarts at version 1: the sources tell them apart
    if found is not None and found.body_source == body and found.subject_source == subject:
        return found
    compiled = _Compiled(subject, body, ENV.from_string(subject) if subject is not None else None,
                         ENV.from_string(body))
    _compiled[(key, version)] = compiled
    return compiled


async def render(session: AsyncSession, key: str, context: Mapping[str, Any]) -> Rendered:
    """The message of template `key` for `context` (see `context_for`): the saved edit if any, else the
    default; the body stripped, the subject on one line. A KeyError for an unknown key; a template that
    passed the checks on save does not fail here on a context built by `context_for`."""
    if key not in DEFAULTS:
        raise KeyError(f"no template {key}")
    snap = await _snapshot(session)
    return render_compiled(_compile(key, snap.templates.get(key)), context)


def render_source(subject: str | None, body: str, context: Mapping[str, Any]) -> Rendered:
    """A template not saved (yet): the checks on save and previews."""
    compiled = _Compiled(subject, body, ENV.from_string(subject) if subject is not None else None,
                         ENV.from_string(body))
    return render_compiled(compiled, context)


def render_compiled(compiled: _Compiled, context: Mapping[str, Any]) -> Rendered:
    subject = None
    if compiled.subject is not None:
        subject = " ".join(compiled.subject.render(context).split())  # a mail header is one line
    return Rendered(subject, compiled.body.render(context).strip())


async def enabled(session: AsyncSession, center_id: str | None, key: str) -> bool:
    """Whether the rule `key` notifies for `center_id`: yes unless that centre switched it off; a message of
    no centre (a system alert) always."""
    if center_id is None:
        return True
    snap = await _snapshot(session)
    return (center_id, key) not in snap.switched_off


async def saved(session: AsyncSession) -> dict[str, Saved]:
    """Every saved edit, by key (through the snapshot)."""
    return dict((await _snapshot(session)).templates)


class EnvelopeData(dict[str, Any]):
    """A generic template's `data`: the payload as a mapping in which a missing key is empty, however deep
    it is followed (`data.case.item.name` of an event without a case prints nothing)."""

    def __missing__(self, key: str) -> Any:
        return ChainableUndefined(name=key)


def _mapping(value: Any) -> Any:
    if isinstance(value, Mapping):
        return EnvelopeData({k: _mapping(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return [_mapping(v) for v in value]
    return value


def context_for(key: str, payload: EventData | None, *, envelope_fields: Mapping[str, Any] | None = None,
                **extras: Any) -> dict[str, Any]:
    """The variables template `key` sees.

    A rule's template: the payload's top-level fields as they are (models stay models, so `case.item.name`
    works), without its sealed contacts and hashes, plus the extras. A generic_* template: `event_type`,
    `occurred_at`, `center_id` from `envelope_fields` and `data`, the payload as a mapping (or
    `envelope_fields["data"]` when there is no payload model), plus the extras.

    Extras: `center_name` and `recipient_name` (empty when not given: an applicant has no name here) and the
    rule's own (services.notify.rules, e.g. case_accepted_sms's `lookup_code`), which must be given; others
    are dropped, since the checks on save did not let templates use them."""
    if key not in DEFAULTS:
        raise KeyError(f"no template {key}")
    wanted = samples.extras_of(key)
    missing = sorted(set(wanted) - set(extras) - set(rules.COMMON_EXTRAS))
    if missing:
        raise TypeError(f"template {key} needs the extras {', '.join(missing)}")
    context: dict[str, Any] = {name: "" for name in rules.COMMON_EXTRAS}
    context.update({name: value for name, value in extras.items() if name in wanted})
    if key in rules.GENERIC_KEYS:
        envelope = dict(envelope_fields or {})
        data = (payload.model_dump(exclude={"type"}) if payload is not None else envelope.get("data") or {})
        context.update({"event_type": envelope.get("event_type", payload.type if payload else ""),
                        "occurred_at": envelope.get("occurred_at"), "center_id": envelope.get("center_id"),
                        "data": as_data(data)})
        return context
    if payload is None:
        raise TypeError(f"template {key} renders a {rules.BY_KEY[key].event_type} payload: none given")
    for name in type(payload).model_fields:
        if not name.endswith(PRIVATE_SUFFIXES):
            context[name] = getattr(payload, name)
    return context


def as_data(value: Mapping[str, Any]) -> EnvelopeData:
    """A payload mapping as a generic template's `data`: without sealed contacts and hashes, lenient."""
    data = _mapping(_public(value))
    assert isinstance(data, EnvelopeData)
    return data


def _public(value: Any) -> Any:
    """A payload mapping without its sealed contacts and hashes, at any depth."""
    if isinstance(value, Mapping):
        return {k: _public(v) for k, v in value.items() if not str(k).endswith(PRIVATE_SUFFIXES)}
    if isinstance(value, list | tuple):
        return [_public(v) for v in value]
    if isinstance(value, BaseModel):
        return _public(value.model_dump())
    return value
