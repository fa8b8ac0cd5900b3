"""notify's templates (issue 25): every Chinese default checks and renders against its sample; edits are
refused on save (422 naming the field and the reason, nothing saved) for an unknown variable, bad syntax or a
sandbox escape; a saved edit is what `render` uses, from any session; previews; the per-centre switches."""

from __future__ import annotations

import types
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Literal, Union, get_args, get_origin

import httpx
import pytest
from pydantic import BaseModel

from services.notify import rules
from services.notify.consumers import CONSUMERS
from services.notify.templating import samples, store
from services.notify.templating.defaults import DEFAULTS
from services.notify.templating.validate import SMS_MAX, InvalidTemplate, validate
from shared.db import make_engine, make_sessionmaker
from shared.events.catalog import CaseAccepted, CenterUpserted, EvaluationSubmitted, QueueSettings
from shared.events.envelope import Envelope, registry

CENTRE, OTHER = "320102", "320104"
ALL_KEYS = [rule.key for rule in rules.RULES] + list(rules.GENERIC_KEYS)


@asynccontextmanager
async def notify(service_client: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The notify service with the centre copied, as its centres consumer would."""
    async with service_client("notify") as client:
        spec = next(c for c in CONSUMERS if c.name == "centers")
        envelope = Envelope.wrap("queue", CenterUpserted(id=CENTRE, name="玄武区政务服务中心"), subject=CENTRE,
                                 center_id=CENTRE).model_copy(update={"sequence": 1})
        async with client.app.state.sessionmaker() as session, session.begin():
            await spec.handlers["center.upserted"](session, envelope)
        yield client


async def render(client: httpx.AsyncClient, key: str, context: dict[str, Any]) -> store.Rendered:
    async with client.app.state.sessionmaker() as session:  # type: ignore[attr-defined]
        return await store.render(session, key, context)


# --- the defaults and the samples ------------------------------------------------------------------------

def test_there_is_a_default_for_every_rule_and_generic_key() -> None:
    assert set(DEFAULTS) == set(ALL_KEYS)


@pytest.mark.parametrize("key", ALL_KEYS)
def test_every_default_passes_the_checks_and_renders_against_its_sample(key: str, fixed_clock) -> None:
    subject, body = DEFAULTS[key]
    assert validate(key, subject, body) == (subject, body)
    rendered = store.render_source(subject, body, samples.sample_context(key))
    channel = rules.GENERIC_KEYS.get(key) or rules.BY_KEY[key].channel
    assert (rendered.subject is not None) == (channel == "email")
    assert rendered.body and "None" not in rendered.body and not rendered.body.startswith("【")
    if channel == "sms":
        assert len(rendered.body) <= SMS_MAX


def test_the_defaults_say_what_the_issue_asks(fixed_clock) -> None:
    def body(key: str, **changes: Any) -> str:
        context = samples.sample_context(key)
        context.update(changes)
        return store.render_source(*DEFAULTS[key], context).body

    accepted = samples.sample_context("case_accepted_sms")
    text = body("case_accepted_sms", lookup_code="ZX81QK")
    assert "ZX81QK" in text and accepted["case"].case_no in text and "2026年2月19日" in text  # due 7 days later

    missing = ["营业执照副本", "身份证复印件", "场所平面图"]
    text = body("case_supplement_sms", missing_materials=missing)
    assert "1. 营业执照副本\n2. 身份证复印件\n3. 场所平面图" in text and "一次性告知" in text

    refused = body("case_refused_sms", reason="不符合准入条件。", legal_basis="《食品经营许可管理办法》第十条")
    assert "理由：不符合准入条件。" in refused and "第十条" in refused

    turn = samples.sample_context("ticket_turn_near_sms")
    text = body("ticket_turn_near_sms", people_ahead=2, estimated_wait_s=310)
    assert turn["ticket"].number in text and "前面还有2人" in text and "约6分钟" in text

    sanction = samples.sample_context("sanction_issued_email")["sanction"]
    assert body("sanction_issued_email") == sanction.notice_text  # as is
    subject = store.render_source(*DEFAULTS["sanction_issued_email"],
                                  samples.sample_context("sanction_issued_email")).subject
    assert subject is not None and subject.startswith("警告通知")
    corrected = body("sanction_reclassified_department")
    assert corrected.startswith("更正通知") and sanction.notice_text in corrected


def _fields_filled(instance: BaseModel) -> None:
    for name, field in type(instance).model_fields.items():
        value = getattr(instance, name)
        assert value is not None, f"{type(instance).__name__}.{name} is not filled"
        bare = field.annotation
        if get_origin(bare) in (Union, types.UnionType):
            bare = next(a for a in get_args(bare) if a is not type(None))
        if get_origin(bare) is list:
            assert len(value) == 2, f"{type(instance).__name__}.{name} has {len(value)} items"
        if get_origin(bare) is Literal:
            assert value in get_args(bare)
        if isinstance(value, BaseModel):
            _fields_filled(value)


@pytest.mark.parametrize("event", sorted(registry), ids=lambda e: f"{e[0]}-v{e[1]}")
def test_a_sample_of_every_payload_model_is_valid_and_complete(event: tuple[str, int], fixed_clock) -> None:
    model = registry[event]
    instance = samples.sample(model)
    assert isinstance(instance, model)
    _fields_filled(instance)
    sparse = samples.sample(model, sparse=True)
    assert isinstance(sparse, model)


def test_samples_meet_the_fields_constraints(fixed_clock) -> None:
    evaluation = samples.sample(EvaluationSubmitted)
    assert isinstance(evaluation, EvaluationSubmitted) and 1 <= evaluation.rating <= 5
    settings = samples.sample(QueueSettings)
    assert isinstance(settings, QueueSettings) and settings.complaint_hotline is not None  # its pattern met
    for name in ("created_at", "slot_start", "due_at"):
        instant = samples.value_for(datetime, name)
        assert instant.tzinfo is not None


def test_the_context_holds_the_payload_models_and_no_sealed_contact(fixed_clock) -> None:
    payload = samples.sample(CaseAccepted)
    assert isinstance(payload, CaseAccepted)
    context = store.context_for("case_accepted_sms", payload, lookup_code="K7Q2M9", center_name="玄武区政务服务中心",
                                unused="dropped")
    assert context["case"].item.name == payload.case.item.name and context["lookup_code"] == "K7Q2M9"
    assert context["recipient_name"] == "" and "unused" not in context
    assert not any(name.endswith(("_sealed", "_hash")) for name in context)
    with pytest.raises(TypeError, match="lookup_code"):
        store.context_for("case_accepted_sms", payload)
    generic = store.context_for("generic_feed", payload, envelope_fields={"event_type": "case.accepted"})
    assert generic["data"]["case"]["item"]["name"] == payload.case.item.name
    assert "lookup_code_sealed" not in generic["data"] and "applicant_hash" not in generic["data"]["case"]
    text = store.render_source(None, "{{ data.nothing.here }}|{{ data.case.case_no }}", generic).body
    assert text == f"|{payload.case.case_no}"  # anything under data may be asked for


# --- refused on save --------------------------------------------------------------------------------------

REFUSED = [
    pytest.param("case_accepted_sms", None, "受理编号{{ case.no_such_field }}", "body", "no field no_such_field",
                 id="unknown-attribute"),
    pytest.param("case_accepted_sms", None, "{{ nothing }}", "body", "nothing: no such variable",
                 id="unknown-variable"),
    pytest.param("case_supplement_sms", None, "{% for m in case.item.materials %}{{ m }}{% endfor %}", "body",
                 "ItemRef has no field materials", id="unknown-loop-source"),
    pytest.param("notice_issued_sms", None, "{% for m in missing %}{{ m.code }}{% endfor %}", "body",
                 "m.code: str has no field code", id="loop-variable-typed-by-its-list"),
    pytest.param("case_accepted_sms", None, "第一行\n受理编号{{ case.case_no }\n", "body", "line 2",
                 id="bad-syntax"),
    pytest.param("case_accepted_sms", None, "{% if case.kind %}即办{% endfor %}", "body", "line 1",
                 id="unbalanced-tags"),
    pytest.param("case_accepted_sms", None, "{{ case.case_no|no_such_filter }}", "body", "no_such_filter",
                 id="unknown-filter"),
    pytest.param("case_accepted_sms", None, "{{ ''.__class__.__mro__[1].__subclasses__() }}", "body",
                 "names starting with _ are not allowed", id="escape-mro"),
    pytest.param("case_accepted_sms", None, "{{ cycler.__init__.__globals__ }}", "body", "cycler",
                 id="escape-cycler-globals"),
    pytest.param("case_accepted_sms", None, "{{ case|attr('__class__') }}", "body", "names starting with _",
                 id="escape-attr-filter"),
    pytest.param("case_accepted_sms", None, "{{ case['__cla' ~ 'ss__'] }}", "body", "names starting with _",
                 id="escape-getitem"),
    pytest.param("case_accepted_sms", None, "{{ '{0.__class__}'.format(case) }}", "body", "sandbox",
                 id="escape-format-string"),
    pytest.param("case_accepted_sms", None, "{{ self._TemplateReference__context }}", "body", "self",
                 id="escape-self"),
    pytest.param("case_accepted_sms", None, "{% include '/etc/passwd' %}", "body", "include",
                 id="include"),
    pytest.param("case_accepted_sms", None, "{{ phone_sealed }}", "body", "sealed", id="sealed-contact"),
    pytest.param("case_accepted_sms", None, "{{ case.applicant_hash }}", "body", "hashes", id="hash"),
    pytest.param("case_accepted_sms", None, "{{ agent.display_name }}", "body", "optional fields empty",
                 id="unguarded-optional"),
    pytest.param("case_accepted_sms", "受理通知", "{{ case.case_no }}", "subject", "has no subject",
                 id="subject-on-an-sms"),
    pytest.param("complaint_acknowledged_email", None, "{{ text }}", "subject", "needs a subject",
                 id="email-without-subject"),
    pytest.param("complaint_acknowledged_email", "{{ complaint.nope }}", "{{ text }}", "subject", "no field nope",
                 id="bad-subject"),
    pytest.param("case_accepted_sms", None, "{% for n in range(60) %}受理编号{{ case.case_no }}{% endfor %}",
                 "body", "at most 500", id="sms-too-long"),
    pytest.param("generic_sms", None, "{{ data.__class__ }}", "body", "names starting with _",
                 id="generic-escape"),
    pytest.param("generic_sms", None, "{{ payload.case }}", "body", "no such variable", id="generic-unknown"),
]


@pytest.mark.parametrize(("key", "subject", "body", "field", "reason"), REFUSED)
def test_validate_refuses_with_the_field_and_the_reason(key: str, subject: str | None, body: str, field: str,
                                                       reason: str, fixed_clock) -> None:
    with pytest.raises(InvalidTemplate) as refused:
        validate(key, subject, body)
    assert refused.value.status == 422 and refused.value.field == field
    assert reason in refused.value.detail


async def test_refused_edits_are_422_problems_naming_the_field_and_nothing_is_saved(service_client, tokens):
    admin = tokens.headers("system_admin", ["*"])
    async with notify(service_client) as client:
        for param in REFUSED:
            key, subject, body, field, reason = param.values
            r = await client.put(f"/templates/{key}", json={"subject": subject, "body": body}, headers=admin)
            assert r.status_code == 422, (param.id, r.text)
            problem = r.json()
            assert r.headers["content-type"].startswith("application/problem+json")
            assert problem["code"] == "invalid_template" and problem["field"] == field, param.id
            assert problem["errors"][0]["field"] == field and reason in problem["errors"][0]["reason"], param.id
        assert await client.db.fetch("SELECT key FROM templates") == []
        listed = (await client.get("/templates", headers=admin)).json()
        assert {t["key"] for t in listed} == set(ALL_KEYS) and not any(t["edited"] for t in listed)
        r = await client.put("/templates/no_such_key", json={"body": "x"}, headers=admin)
        assert r.status_code == 404 and r.json()["field"] == "key"


# --- saved edits and rendering ---------------------------------------------------------------------------

async def test_a_saved_edit_bumps_the_version_and_render_uses_it_from_any_session(service_client, tokens,
                                                                                   fixed_clock):
    admin = tokens.headers("system_admin", ["*"])
    key = "ticket_turn_near_sms"
    context = samples.sample_context(key)
    number = context["ticket"].number
    async with notify(service_client) as client:
        default = await render(client, key, context)
        assert default.body == store.render_source(*DEFAULTS[key], context).body

        # another engine (as the worker has) whose snapshot was read before the save
        engine = make_engine(client.db.url, application_name="test-notify-templates")
        try:
            other = make_sessionmaker(engine)
            async with other() as session:
                assert (await store.render(session, key, context)).body == default.body

            r = await client.put(f"/templates/{key}", headers=admin,
                                 json={"subject": None, "body": "{{ ticket.number }}号快到了，前面{{ people_ahead }}人。"})
            assert r.status_code == 200, r.text
            saved = r.json()
            assert saved["version"] == 1 and saved["edited"] is True and saved["default_body"] == DEFAULTS[key][1]
            assert saved["updated_by"] == "test-system_admin"
            assert (await render(client, key, context)).body == f"{number}号快到了，前面{context['people_ahead']}人。"

            r = await client.put(f"/templates/{key}", headers=admin,
                                 json={"subject": None, "body": "  第二版：{{ ticket.number }}  \n"})
            assert r.status_code == 200 and r.json()["version"] == 2
            async with other() as session:  # a second session, of the other engine: follows the new version
                assert (await store.render(session, key, context)).body == f"第二版：{number}"

            # back to the default, then edited again: version 1 again, and not the first edit's compiled text
            assert (await client.delete(f"/templates/{key}", headers=admin)).status_code == 204
            got = (await client.get(f"/templates/{key}", headers=admin)).json()
            assert got["edited"] is False and got["version"] == 0 and got["body"] == DEFAULTS[key][1]
            async with other() as session:
                assert (await store.render(session, key, context)).body == default.body
            r = await client.put(f"/templates/{key}", headers=admin,
                                 json={"subject": None, "body": "第三版：{{ ticket.number }}"})
            assert r.json()["version"] == 1
            async with other() as session:
                assert (await store.render(session, key, context)).body == f"第三版：{number}"
        finally:
            await engine.dispose()


async def test_an_edit_saved_by_another_process_is_seen_once_the_snapshot_expires(service_client, fixed_clock,
                                                                                   monkeypatch):
    key = "case_extended_sms"
    context = samples.sample_context(key)
    async with notify(service_client) as client:
        assert (await render(client, key, context)).body == store.render_source(*DEFAULTS[key], context).body
        # another process's save: straight into the table, nothing in this process told of it
        await client.db.fetch("INSERT INTO templates (key, subject, body, version, updated_at, updated_by) "
                              "VALUES ($1, NULL, '延期{{ days }}个工作日', 1, now(), 'elsewhere')", key)
        monkeypatch.setattr(store, "SNAPSHOT_TTL", 0.0)
        assert (await render(client, key, context)).body == f"延期{context['days']}个工作日"


async def test_email_templates_render_a_one_line_subject(service_client, tokens, fixed_clock):
    admin = tokens.headers("system_admin", ["*"])
    key = "complaint_resolved_email"
    context = samples.sample_context(key)
    async with notify(service_client) as client:
        r = await client.put(f"/templates/{key}", headers=admin,
                             json={"subject": "处理结果 {{ complaint.number }}  {{ outcome|cn }}",
                                   "body": "{{ text }}\n\n{{ center_name }}"})
        assert r.status_code == 200, r.text
        rendered = await render(client, key, context)
        assert rendered.subject == f"处理结果 {context['complaint'].number} 已处理"
        assert rendered.body == f"{context['text']}\n\n{context['center_name']}"


# --- previews -------------------------------------------------------------------------------------------

async def test_preview_against_sample_data_and_against_given_data(service_client, tokens, fixed_clock):
    office = tokens.headers("supervisor", [CENTRE])
    key = "ticket_turn_near_sms"
    async with notify(service_client) as client:
        r = await client.post(f"/templates/{key}/preview", json={}, headers=office)
        assert r.status_code == 200, r.text
        expected = store.render_source(*DEFAULTS[key], samples.sample_context(key)).body
        assert r.json() == {"subject": None, "body": expected, "length": len(expected), "sms_parts": 1}

        ticket = samples.sample_context(key)["ticket"].model_dump(mode="json") | {"number": "B007"}
        data = {"ticket": ticket, "people_ahead": 4, "estimated_wait_s": 1500, "phone_sealed": "sealed",
                "center_name": "鼓楼区政务服务中心"}
        r = await client.post(f"/templates/{key}/preview", json={"data": data}, headers=office)
        assert r.status_code == 200, r.text
        body = r.json()["body"]
        assert "鼓楼区政务服务中心" in body and "B007号" in body and "前面还有4人" in body and "约25分钟" in body

        r = await client.post(f"/templates/{key}/preview", headers=office,
                              json={"body": "{{ ticket.number }}/{{ center_name }}", "data": data})
        assert r.json()["body"] == "B007/鼓楼区政务服务中心" and r.json()["length"] == len("B007/鼓楼区政务服务中心")

        r = await client.post(f"/templates/{key}/preview", headers=office,
                              json={"data": {**data, "people_ahead": "many"}})
        assert r.status_code == 422 and r.json()["field"] == "data.people_ahead", r.text
        r = await client.post(f"/templates/{key}/preview", headers=office,
                              json={"data": {k: v for k, v in data.items() if k != "ticket"}})
        assert r.status_code == 422 and r.json()["field"] == "data.ticket", r.text
        r = await client.post(f"/templates/{key}/preview", headers=office, json={"body": "{{ ticket.nope }}"})
        assert r.status_code == 422 and r.json()["field"] == "body" and "nope" in r.json()["detail"]
        assert await client.db.fetch("SELECT key FROM templates") == []  # a preview saves nothing


async def test_preview_of_the_saved_template_and_of_a_generic_one(service_client, tokens, fixed_clock):
    admin, manager = tokens.headers("system_admin", ["*"]), tokens.headers("hall_manager", [CENTRE])
    async with notify(service_client) as client:
        r = await client.put("/templates/alert_long_wait_sms", headers=admin,
                             json={"subject": None, "body": "等候超时：{{ alert.text }}"})
        assert r.status_code == 200, r.text
        r = await client.post("/templates/alert_long_wait_sms/preview", headers=manager,
                              json={"data": {"alert": {**samples.sample_context("alert_long_wait_sms")["alert"]
                                                       .model_dump(mode="json"), "text": "A012号已等候40分钟"}}})
        assert r.status_code == 200 and r.json()["body"] == "等候超时：A012号已等候40分钟", r.text
        r = await client.post("/templates/generic_feed/preview", headers=manager,
                              json={"body": "{{ data.window }}号窗口：{{ data.message }}{{ data.missing.deep }}",
                                    "data": {"window": "12", "message": "暂离"}})
        assert r.status_code == 200 and r.json()["body"] == "12号窗口：暂离", r.text


# --- reading and the per-centre switches -------------------------------------------------------------------

async def test_a_template_shows_its_default_and_the_variables_it_may_use(service_client, tokens, fixed_clock):
    async with notify(service_client) as client:
        r = await client.get("/templates/case_supplement_sms", headers=tokens.headers("center_admin", [CENTRE]))
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["event_type"] == "case.paused" and got["audience"] == "applicant" and got["channel"] == "sms"
        assert got["body"] == got["default_body"] == DEFAULTS["case_supplement_sms"][1] and got["subject"] is None
        assert {"case.item.name", "case.case_no", "missing_materials[]", "center_name"} <= set(got["variables"])
        assert not any(v.endswith(("_sealed", "_hash")) for v in got["variables"])
        assert {"local_time", "local_date", "clock", "numbered"} <= set(got["filters"])
        r = await client.get("/templates/case_supplement_sms", headers=tokens.headers("clerk", [CENTRE]))
        assert r.status_code == 403
        r = await client.put("/templates/case_supplement_sms", json={"body": "x"},
                             headers=tokens.headers("center_admin", [CENTRE]))
        assert r.status_code == 403


async def test_a_rule_switched_off_for_a_centre_is_off_there_only(service_client, tokens, fixed_clock):
    admin = tokens.headers("center_admin", [CENTRE])
    key = "appointment_reminder_sms"
    async with notify(service_client) as client:
        async with client.app.state.sessionmaker() as session:
            assert await store.enabled(session, CENTRE, key)
        r = await client.put(f"/templates/{key}/centers/{CENTRE}", json={"enabled": False}, headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["enabled"] is False and r.json()["updated_by"] == "test-center_admin"
        async with client.app.state.sessionmaker() as session:
            assert not await store.enabled(session, CENTRE, key)
            assert await store.enabled(session, OTHER, key)
            assert await store.enabled(session, None, key)  # a message of no centre
            assert await store.enabled(session, CENTRE, "appointment_confirmed_sms")
        listed = {t["key"]: t for t in (await client.get("/templates", headers=admin)).json()}
        assert listed[key]["disabled_centers"] == [CENTRE] and listed["appointment_confirmed_sms"]["disabled_centers"] == []
        other = tokens.headers("center_admin", [OTHER])
        seen_by_other = {t["key"]: t for t in (await client.get("/templates", headers=other)).json()}
        assert seen_by_other[key]["disabled_centers"] == []  # another centre's switches are not its business

        r = await client.put(f"/templates/{key}/centers/{CENTRE}", json={"enabled": True}, headers=admin)
        assert r.status_code == 200
        async with client.app.state.sessionmaker() as session:
            assert await store.enabled(session, CENTRE, key)

        r = await client.put(f"/templates/{key}/centers/{CENTRE}", json={"enabled": False}, headers=other)
        assert r.status_code == 403
        r = await client.put(f"/templates/generic_sms/centers/{CENTRE}", json={"enabled": False}, headers=admin)
        assert r.status_code == 409 and r.json()["field"] == "key"
        r = await client.put(f"/templates/{key}/centers/{OTHER}", json={"enabled": False},
                             headers=tokens.headers("system_admin", ["*"]))
        assert r.status_code == 404 and r.json()["field"] == "center_id"
