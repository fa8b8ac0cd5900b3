"""Who notify reaches (issue 25): the staff and department-head copies kept from identity's and the registry's
events, in outbox order; the recipients an admin adds (addresses and secrets sealed at rest, masked in answers,
a generated webhook secret shown once, every bad value a 422 naming its field, scoped to a centre) and their
subscriptions, with the planner's `subscribers()` look-up."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from services.notify import contacts
from services.notify.recipients import subscribers
from shared.events.catalog import DepartmentUpserted, UserDeactivated, UserUpserted
from shared.events.envelope import Envelope, EventData
from shared.pii import assert_no_personal_data, seal, unseal
from tests.plugins.secret_scan import remember

A, B = "320102", "320104"


def public_key() -> str:
    return os.environ["HALL_NOTIFY_SEAL_PUBLIC_KEY"]


def private_key() -> str:
    return os.environ["NOTIFY_SEAL_PRIVATE_KEY"]


def envelope(producer: str, payload: EventData, sequence: int, subject: str, center: str | None = None) -> Envelope:
    return Envelope.wrap(producer, payload, subject=subject, center_id=center).model_copy(
        update={"sequence": sequence})


def user(sequence: int, user_id: str = "u1", **fields: Any) -> Envelope:
    payload = UserUpserted(id=user_id, **{"display_name": "王芳", "role": "clerk", "centers": [A], **fields})
    return envelope("identity", payload, sequence, user_id)


async def apply(client: httpx.AsyncClient, *envelopes: Envelope) -> None:
    """Each event through its handler, one transaction each, as the consumer applies them."""
    handlers = {**contacts.IDENTITY_HANDLERS, **contacts.CASES_HANDLERS}
    for each in envelopes:
        async with client.app.state.sessionmaker() as session, session.begin():  # type: ignore[attr-defined]
            await handlers[each.type](session, each)


@asynccontextmanager
async def notify(service_client: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with service_client("notify") as client:
        yield client


def as_(tokens: Any, role: str, *centers: str, **claims: Any) -> dict[str, str]:
    return tokens.headers(role, list(centers) or ["*"], **claims)


# --- the read copies -----------------------------------------------------------------------------------------

async def test_user_upserted_is_copied_whole_and_a_late_or_repeated_event_changes_nothing(service_client):
    email_sealed, phone_sealed = seal(public_key(), "wang.fang@example.cn"), seal(public_key(), "13912345678")
    async with notify(service_client) as client:
        await apply(client, user(5, role="hall_manager", centers=[A, B], department=None,
                                 email_masked="w***@example.cn", email_sealed=email_sealed,
                                 phone_masked="139****5678", phone_sealed=phone_sealed))
        await apply(client, user(3, display_name="旧名字", role="clerk"), user(5, display_name="重发"))
        rows = await client.db.fetch("SELECT * FROM contacts")  # type: ignore[attr-defined]
        async with client.app.state.sessionmaker() as session:  # type: ignore[attr-defined]
            found = await contacts.staff_of(session, "u1")
            unknown = await contacts.staff_of(session, "nobody")
    assert len(rows) == 1
    row = dict(rows[0])
    assert {k: row[k] for k in ("id", "display_name", "role", "centers", "department", "email_masked",
                                "phone_masked", "active", "last_event_sequence")} == {
        "id": "u1", "display_name": "王芳", "role": "hall_manager", "centers": [A, B], "department": None,
        "email_masked": "w***@example.cn", "phone_masked": "139****5678", "active": True, "last_event_sequence": 5}
    assert row["email_sealed"] == email_sealed and row["phone_sealed"] == phone_sealed
    assert unseal(private_key(), row["phone_sealed"]) == "13912345678"
    assert found is not None and found.display_name == "王芳" and unknown is None


async def test_user_deactivated_turns_the_contact_off_and_an_older_upsert_does_not_turn_it_back_on(service_client):
    async with notify(service_client) as client:
        await apply(client, user(4), envelope("identity", UserDeactivated(id="u1"), 9, "u1"), user(7, active=True))
        rows = await client.db.fetch("SELECT active, last_event_sequence FROM contacts")  # type: ignore[attr-defined]
        async with client.app.state.sessionmaker() as session:  # type: ignore[attr-defined]
            gone = await contacts.staff_of(session, "u1")
        await apply(client, user(12, active=True))  # identity re-activates the account later
        async with client.app.state.sessionmaker() as session:  # type: ignore[attr-defined]
            back = await contacts.staff_of(session, "u1")
    assert [dict(r) for r in rows] == [{"active": False, "last_event_sequence": 9}]
    assert gone is None and back is not None and back.active


async def test_hall_managers_are_the_active_ones_of_the_centre(service_client):
    async with notify(service_client) as client:
        await apply(client,
                    user(1, "m1", role="hall_manager", centers=[A]),
                    user(2, "m2", role="hall_manager", centers=[B, A]),
                    user(3, "m3", role="hall_manager", centers=[B]),
                    user(4, "m4", role="hall_manager", centers=[A], active=False),
                    user(5, "c1", role="clerk", centers=[A]),
                    user(6, "s1", role="supervisor", centers=[A]))
        async with client.app.state.sessionmaker() as session:  # type: ignore[attr-defined]
            of_a = [c.id for c in await contacts.hall_managers(session, A)]
            of_b = [c.id for c in await contacts.hall_managers(session, B)]
    assert of_a == ["m1", "m2"] and of_b == ["m2", "m3"]


async def test_department_upserted_is_copied_whole_and_a_late_event_changes_nothing(service_client):
    head_phone = seal(public_key(), "13712345678")

    def department(sequence: int, **fields: Any) -> Envelope:
        payload = DepartmentUpserted(**{"center_id": A, "code": "D01", "name": "区市场监督管理局", **fields})
        return envelope("cases", payload, sequence, f"department:{A}:D01", A)

    async with notify(service_client) as client:
        await apply(client, department(6, head_name="李主任", head_phone_masked="137****5678",
                                       head_phone_sealed=head_phone, head_email_masked="l***@example.cn",
                                       head_email_sealed=seal(public_key(), "li@example.cn"), chief_rep="u9"))
        await apply(client, department(2, name="旧名称", head_name=None))
        async with client.app.state.sessionmaker() as session:  # type: ignore[attr-defined]
            found = await contacts.department(session, A, "D01")
            other = await contacts.department(session, B, "D01")
        await apply(client, department(8, active=False))
        async with client.app.state.sessionmaker() as session:  # type: ignore[attr-defined]
            closed = await contacts.department(session, A, "D01")
    assert found is not None and other is None and closed is None
    assert (found.name, found.head_name, found.head_phone_masked, found.head_email_masked, found.chief_rep,
            found.last_event_sequence) == ("区市场监督管理局", "李主任", "137****5678", "l***@example.cn", "u9", 6)
    assert found.head_phone_sealed is not None and unseal(private_key(), found.head_phone_sealed) == "13712345678"
    assert found.head_email_sealed is not None and unseal(private_key(), found.head_email_sealed) == "li@example.cn"


# --- recipients ----------------------------------------------------------------------------------------------

async def test_a_webhook_is_sealed_at_rest_masked_in_answers_and_its_generated_secret_shown_once(
        service_client, tokens):
    url = "https://hooks.example.cn/hall/notify?token=q7Rk2mZp9Lx"
    admin = as_(tokens, "center_admin", A)
    async with notify(service_client) as client:
        r = await client.post("/recipients", headers=admin, json={
            "kind": "webhook", "name": "督办系统", "center_id": A, "address": url})
        assert r.status_code == 201, r.text
        created = r.json()
        secret = created["secret"]
        remember(secret, "webhook secret")  # the suite's secret scan fails the run if a log line holds it
        shown = [await client.get(f"/recipients/{created['id']}", headers=admin),
                 await client.get("/recipients", headers=admin, params={"center_id": A})]
        rows = await client.db.fetch("SELECT * FROM recipients")  # type: ignore[attr-defined]
    assert isinstance(secret, str) and len(secret) >= 43  # token_urlsafe(32)
    assert created["address_masked"] == "https://hooks.example.cn/hall/notify" and created["has_secret"]
    for answer in shown:
        assert answer.status_code == 200, answer.text
        assert secret not in answer.text and "q7Rk2mZp9Lx" not in answer.text
    assert shown[0].json()["address_masked"] == "https://hooks.example.cn/hall/notify"
    assert "secret" not in shown[0].json() and all("secret" not in x for x in shown[1].json())
    assert [x["id"] for x in shown[1].json()] == [created["id"]]
    row = dict(rows[0])
    assert url not in str(row) and "q7Rk2mZp9Lx" not in str(row) and secret not in str(row)
    assert unseal(private_key(), row["address_sealed"]) == url
    assert unseal(private_key(), row["secret_sealed"]) == secret


async def test_a_webhook_given_its_secret_keeps_it_and_the_answer_does_not_echo_it(service_client, tokens):
    async with notify(service_client) as client:
        r = await client.post("/recipients", headers=as_(tokens, "center_admin", A), json={
            "kind": "webhook", "name": "大屏", "center_id": A, "address": "http://10.0.0.7:8080/hook",
            "secret": "s3cr3t-chosen-by-admin"})
        rows = await client.db.fetch("SELECT secret_sealed FROM recipients")  # type: ignore[attr-defined]
    assert r.status_code == 201, r.text
    assert r.json()["secret"] is None and "s3cr3t-chosen-by-admin" not in r.text
    assert r.json()["address_masked"] == "http://10.0.0.7:8080/hook"
    assert unseal(private_key(), rows[0]["secret_sealed"]) == "s3cr3t-chosen-by-admin"


@pytest.mark.parametrize(("kind", "given", "normalized", "masked"), [
    ("sms", "+86 139-1234-5678", "13912345678", "139****5678"),
    ("email", "  JianCha.Shi@Example.CN ", "jiancha.shi@example.cn", "j***@example.cn"),
])
async def test_an_extra_address_is_normalized_sealed_and_masked(service_client, tokens, kind, given, normalized,
                                                                masked):
    async with notify(service_client) as client:
        r = await client.post("/recipients", headers=as_(tokens, "center_admin", A), json={
            "kind": kind, "name": "监察室", "center_id": A, "address": given})
        listed = await client.get("/recipients", headers=as_(tokens, "supervisor", A), params={"kind": kind})
        rows = await client.db.fetch("SELECT * FROM recipients")  # type: ignore[attr-defined]
    assert r.status_code == 201, r.text
    assert r.json()["address_masked"] == masked and r.json()["secret"] is None and not r.json()["has_secret"]
    assert [x["address_masked"] for x in listed.json()] == [masked]
    for text in (r.text, listed.text, str(dict(rows[0]))):
        assert_no_personal_data(text, normalized)
    assert unseal(private_key(), rows[0]["address_sealed"]) == normalized


@pytest.mark.parametrize(("body", "field", "hidden"), [
    ({"kind": "webhook", "address": "ftp://hooks.example.cn/x"}, "address", None),
    ({"kind": "webhook", "address": "https://ops:hunter22@hooks.example.cn/x"}, "address", "hunter22"),
    ({"kind": "webhook", "address": "https:///only-a-path"}, "address", None),
    ({"kind": "webhook", "address": "https://hooks.example.cn:99999/x"}, "address", None),
    ({"kind": "webhook", "address": "https://hooks.example.cn/a b"}, "address", None),
    ({"kind": "email", "address": "jianchashi.example.cn"}, "address", "jianchashi"),
    ({"kind": "sms", "address": "1391234567"}, "address", "1391234567"),
    ({"kind": "sms", "address": "13912345678", "name": "   "}, "name", None),
    ({"kind": "sms", "address": "13912345678", "name": "名" * 101}, "name", None),
    ({"kind": "email", "address": "a@example.cn", "secret": "a-secret-for-mail-0"}, "secret", "a-secret-for-mail-0"),
    ({"kind": "webhook", "address": "https://hooks.example.cn/x", "secret": "short"}, "secret", None),
    ({"kind": "fax", "address": "025-84000000"}, "kind", None),
    ({"kind": "sms", "address": "13912345678", "center_id": "3201/02"}, "center_id", None),
])
async def test_a_bad_recipient_is_a_422_naming_its_field_and_never_echoing_the_value(service_client, tokens, body,
                                                                                    field, hidden):
    async with notify(service_client) as client:
        r = await client.post("/recipients", headers=as_(tokens, "center_admin", A),
                              json={"name": "监察室", "center_id": A, **body})
        rows = await client.db.fetch("SELECT count(*) AS n FROM recipients")  # type: ignore[attr-defined]
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == field
    assert hidden is None or hidden not in r.text
    assert rows[0]["n"] == 0


async def test_patch_renames_moves_rotates_and_switches_off(service_client, tokens):
    admin = as_(tokens, "center_admin", A)
    async with notify(service_client) as client:
        r = await client.post("/recipients", headers=admin, json={
            "kind": "webhook", "name": "督办系统", "center_id": A, "address": "https://a.example.cn/hook"})
        rid = r.json()["id"]
        before = (await client.db.fetch("SELECT * FROM recipients"))[0]  # type: ignore[attr-defined]
        bad = await client.patch(f"/recipients/{rid}", headers=admin, json={"address": "mailto:x@example.cn"})
        unchanged = (await client.db.fetch("SELECT * FROM recipients"))[0]  # type: ignore[attr-defined]
        r = await client.patch(f"/recipients/{rid}", headers=admin, json={
            "name": "督办系统（新）", "address": "https://b.example.cn/v2/hook?k=zz", "secret": "rotated-secret-0001",
            "active": False})
        after = (await client.db.fetch("SELECT * FROM recipients"))[0]  # type: ignore[attr-defined]
        shown = await client.get(f"/recipients/{rid}", headers=admin)
    assert bad.status_code == 422 and bad.json()["field"] == "address"
    assert dict(unchanged) == dict(before)
    assert r.status_code == 200, r.text
    assert shown.json() == r.json()
    assert {k: r.json()[k] for k in ("name", "address_masked", "active", "has_secret")} == {
        "name": "督办系统（新）", "address_masked": "https://b.example.cn/v2/hook", "active": False, "has_secret": True}
    assert unseal(private_key(), after["address_sealed"]) == "https://b.example.cn/v2/hook?k=zz"
    assert unseal(private_key(), after["secret_sealed"]) == "rotated-secret-0001"
    assert "rotated-secret-0001" not in r.text


async def test_recipients_are_scoped_to_their_centre_and_every_centre_is_the_system_admins(service_client, tokens):
    def body(center: str | None, n: int) -> dict[str, Any]:
        return {"kind": "email", "name": f"邮箱{n}", "center_id": center, "address": f"box{n}@example.cn"}

    async with notify(service_client) as client:
        ours = await client.post("/recipients", headers=as_(tokens, "center_admin", A), json=body(A, 1))
        theirs = await client.post("/recipients", headers=as_(tokens, "center_admin", A), json=body(B, 2))
        everywhere = await client.post("/recipients", headers=as_(tokens, "center_admin", A), json=body(None, 3))
        by_manager = await client.post("/recipients", headers=as_(tokens, "hall_manager", A), json=body(A, 4))
        system = await client.post("/recipients", headers=as_(tokens, "system_admin"), json=body(None, 5))
        other = await client.post("/recipients", headers=as_(tokens, "system_admin"), json=body(B, 6))
        listed_a = await client.get("/recipients", headers=as_(tokens, "supervisor", A))
        listed_all = await client.get("/recipients", headers=as_(tokens, "system_admin"))
        peek = await client.get(f"/recipients/{ours.json()['id']}", headers=as_(tokens, "hall_manager", B))
        peek_all = await client.get(f"/recipients/{system.json()['id']}", headers=as_(tokens, "supervisor", A))
        change_all = await client.patch(f"/recipients/{system.json()['id']}", headers=as_(tokens, "center_admin", A),
                                        json={"active": False})
        change_other = await client.patch(f"/recipients/{other.json()['id']}",
                                          headers=as_(tokens, "center_admin", A), json={"name": "x"})
        missing = await client.get("/recipients/999999", headers=as_(tokens, "system_admin"))
    assert ours.status_code == 201 and system.status_code == 201 and other.status_code == 201
    assert (theirs.status_code, theirs.json()["code"]) == (403, "wrong_center")
    assert (everywhere.status_code, everywhere.json()["field"]) == (403, "center_id")
    assert (by_manager.status_code, by_manager.json()["code"]) == (403, "wrong_role")
    assert [x["id"] for x in listed_a.json()] == [ours.json()["id"]]
    assert [x["id"] for x in listed_all.json()] == [ours.json()["id"], system.json()["id"], other.json()["id"]]
    assert peek.status_code == 403 and peek_all.status_code == 403
    assert change_all.status_code == 403 and change_other.status_code == 403
    assert (missing.status_code, missing.json()["field"]) == (404, "recipient_id")


# --- subscriptions -------------------------------------------------------------------------------------------

async def recipient(client: httpx.AsyncClient, headers: dict[str, str], kind: str, center: str | None,
                    n: int, *, active: bool = True) -> int:
    address = {"email": f"box{n}@example.cn", "sms": f"139{n:08d}", "webhook": f"https://h{n}.example.cn/hook"}[kind]
    r = await client.post("/recipients", headers=headers, json={
        "kind": kind, "name": f"接收方{n}", "center_id": center, "address": address})
    assert r.status_code == 201, r.text
    if not active:
        r = await client.patch(f"/recipients/{r.json()['id']}", headers=headers, json={"active": False})
        assert r.status_code == 200, r.text
    return int(r.json()["id"])


async def subscribe(client: httpx.AsyncClient, headers: dict[str, str], rid: int, types: list[str],
                    center: str | None, channel: str) -> httpx.Response:
    return await client.post("/subscriptions", headers=headers, json={
        "recipient_id": rid, "event_types": types, "center_id": center, "channel": channel})


async def test_a_subscription_must_fit_its_recipient_and_name_event_types_of_the_catalog(service_client, tokens):
    admin, system = as_(tokens, "center_admin", A), as_(tokens, "system_admin")
    async with notify(service_client) as client:
        mailbox = await recipient(client, admin, "email", A, 1)
        everywhere = await recipient(client, system, "webhook", None, 2)
        answers = {
            "kind": await subscribe(client, admin, mailbox, ["sanction.issued"], A, "sms"),
            "unknown": await subscribe(client, admin, mailbox, ["sanction.approved"], A, "email"),
            "prefix": await subscribe(client, admin, mailbox, ["sanctions.*"], A, "email"),
            "star": await subscribe(client, admin, mailbox, [".*"], A, "email"),
            "no_centre": await subscribe(client, admin, mailbox, ["sanction.issued"], None, "email"),
            "other_centre": await subscribe(client, system, mailbox, ["sanction.issued"], B, "email"),
            "empty": await subscribe(client, admin, mailbox, [], A, "email"),
            "missing": await subscribe(client, system, 999999, ["sanction.issued"], A, "email"),
            "not_theirs": await subscribe(client, admin, everywhere, ["case.*"], A, "webhook"),
        }
        ok = await subscribe(client, admin, mailbox, ["sanction.*", "alert.raised", "sanction.*"], A, "email")
        again = await subscribe(client, admin, mailbox, ["case.accepted"], A, "email")
        everywhere_all = await subscribe(client, system, everywhere, ["case.*"], None, "webhook")
        everywhere_all_again = await subscribe(client, system, everywhere, ["ticket.*"], None, "webhook")
        everywhere_a = await subscribe(client, system, everywhere, ["case.accepted"], A, "webhook")
    expected = {"kind": (422, "channel"), "unknown": (422, "event_types"), "prefix": (422, "event_types"),
                "star": (422, "event_types"), "no_centre": (422, "center_id"), "other_centre": (422, "center_id"),
                "empty": (422, "event_types"), "missing": (404, "recipient_id"), "not_theirs": (403, "center_id")}
    assert {k: (r.status_code, r.json().get("field")) for k, r in answers.items()} == expected
    assert answers["kind"].json()["code"] == "channel_mismatch"
    assert ok.status_code == 201, ok.text
    assert {k: ok.json()[k] for k in ("recipient_id", "event_types", "center_id", "channel")} == {
        "recipient_id": mailbox, "event_types": ["sanction.*", "alert.raised"], "center_id": A, "channel": "email"}
    assert (again.status_code, again.json()["code"]) == (409, "subscription_exists")
    assert everywhere_all.status_code == 201 and everywhere_a.status_code == 201
    assert everywhere_all_again.status_code == 409  # every centre's scope, once, though NULLs are distinct in SQL


async def test_subscriptions_are_listed_for_their_centre_and_deleted_by_its_admin(service_client, tokens):
    admin = as_(tokens, "center_admin", A)
    async with notify(service_client) as client:
        ours = await recipient(client, admin, "email", A, 1)
        theirs = await recipient(client, as_(tokens, "center_admin", B), "sms", B, 2)
        sub_a = (await subscribe(client, admin, ours, ["case.*"], A, "email")).json()["id"]
        sub_b = (await subscribe(client, as_(tokens, "center_admin", B), theirs, ["case.*"], B, "sms")).json()["id"]
        listed = await client.get("/subscriptions", headers=as_(tokens, "hall_manager", A))
        by_recipient = await client.get("/subscriptions", headers=as_(tokens, "system_admin"),
                                        params={"recipient_id": theirs})
        peek = await client.get("/subscriptions", headers=as_(tokens, "supervisor", A),
                                params={"recipient_id": theirs})
        foreign = await client.delete(f"/subscriptions/{sub_b}", headers=admin)
        by_supervisor = await client.delete(f"/subscriptions/{sub_a}", headers=as_(tokens, "supervisor", A))
        deleted = await client.delete(f"/subscriptions/{sub_a}", headers=admin)
        gone = await client.delete(f"/subscriptions/{sub_a}", headers=admin)
        left = await client.get("/subscriptions", headers=as_(tokens, "system_admin"))
    assert [x["id"] for x in listed.json()] == [sub_a]
    assert [x["id"] for x in by_recipient.json()] == [sub_b]
    assert peek.status_code == 403 and foreign.status_code == 403 and by_supervisor.status_code == 403
    assert deleted.status_code == 204 and gone.status_code == 404
    assert [x["id"] for x in left.json()] == [sub_b]


@contextmanager
def counting_statements(client: httpx.AsyncClient) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = client.app.state.engine.sync_engine  # type: ignore[attr-defined]

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_subscribers_match_exact_types_and_prefixes_for_the_centre_or_every_centre_in_one_query(
        service_client, tokens):
    admin_a, admin_b, system = as_(tokens, "center_admin", A), as_(tokens, "center_admin", B), as_(tokens, "system_admin")
    async with notify(service_client) as client:
        cases_a = await recipient(client, admin_a, "email", A, 1)
        await subscribe(client, admin_a, cases_a, ["case.*"], A, "email")
        accepted_all = await recipient(client, system, "webhook", None, 2)
        await subscribe(client, system, accepted_all, ["case.accepted"], None, "webhook")
        accepted_b = await recipient(client, admin_b, "sms", B, 3)
        await subscribe(client, admin_b, accepted_b, ["case.accepted", "ticket.turn_near"], B, "sms")
        switched_off = await recipient(client, admin_a, "email", A, 4, active=False)
        await subscribe(client, admin_a, switched_off, ["case.accepted"], A, "email")
        alerts = await recipient(client, system, "email", None, 5)  # every centre's, and A's once more
        await subscribe(client, system, alerts, ["alert.raised"], None, "email")
        await subscribe(client, system, alerts, ["alert.*"], A, "email")

        async def ask(event_type: str, center: str | None) -> list[tuple[int, str]]:
            async with client.app.state.sessionmaker() as session:  # type: ignore[attr-defined]
                await session.connection()  # the transaction's BEGIN, outside the count
                with counting_statements(client) as statements:
                    found = await subscribers(session, event_type, center)
            assert len(statements) == 1, statements
            return [(r.id, channel) for r, channel in found]

        answers = {
            ("case.accepted", A): await ask("case.accepted", A),
            ("case.completed", A): await ask("case.completed", A),
            ("case.accepted", B): await ask("case.accepted", B),
            ("case.accepted", None): await ask("case.accepted", None),
            ("alert.raised", A): await ask("alert.raised", A),
            ("alert.resolved", A): await ask("alert.resolved", A),
            ("alert.resolved", B): await ask("alert.resolved", B),
            ("ticket.turn_near", B): await ask("ticket.turn_near", B),
            ("ticket.called", A): await ask("ticket.called", A),
        }
    assert answers == {
        ("case.accepted", A): [(cases_a, "email"), (accepted_all, "webhook")],
        ("case.completed", A): [(cases_a, "email")],
        ("case.accepted", B): [(accepted_all, "webhook"), (accepted_b, "sms")],
        ("case.accepted", None): [(accepted_all, "webhook")],
        ("alert.raised", A): [(alerts, "email")],  # both of its scopes match: once
        ("alert.resolved", A): [(alerts, "email")],
        ("alert.resolved", B): [],
        ("ticket.turn_near", B): [(accepted_b, "sms")],
        ("ticket.called", A): [],
    }
