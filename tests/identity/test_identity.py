"""The identity service: sign-in, refresh rotation and reuse, logout, lockout with one argon2 verification
on every path, device keys shown once and revocable, the admin API and its events."""

from __future__ import annotations

import json
import time

import argon2._password_hasher
import jwt
import pytest

from services.identity import credentials
from shared.auth import Role, TokenVerifier
from shared.pii import unseal

A, B = "320102", "320104"
PASSWORD = "correct horse battery"


def _user(username: str = "zhangsan", role: str = "clerk", centers: list[str] | None = None, **extra) -> dict:
    body = {"username": username, "password": PASSWORD, "display_name": "张三", "post_title": "综合受理窗口",
            "role": role, "centers": centers or [A]}
    if role in ("clerk", "chief_rep"):
        body["department"] = "D01"
    return body | extra


async def _create_user(client, tokens, **kw) -> dict:
    r = await client.post("/users", json=_user(**kw), headers=tokens.headers("system_admin", ["*"]))
    assert r.status_code == 201, r.text
    return r.json()


async def _login(client, username="zhangsan", password=PASSWORD):
    return await client.post("/login", json={"username": username, "password": password})


@pytest.fixture
def verifications(monkeypatch):
    """How many argon2 verifications ran (counted where argon2-cffi calls its C verifier)."""
    count = [0]
    real = argon2._password_hasher.verify_secret

    def counting(*args, **kwargs):
        count[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(argon2._password_hasher, "verify_secret", counting)
    return count


def _verifier(secrets) -> TokenVerifier:
    return TokenVerifier(secrets["HALL_JWT_PUBLIC_KEY"], "hall-gateway", "hall")


async def test_login_returns_a_verifiable_short_lived_token_in_wall_time(service_client, tokens, secrets):
    async with service_client("identity") as client:
        user = await _create_user(client, tokens)
        r = await _login(client)
    assert r.status_code == 200, r.text
    body = r.json()
    principal = _verifier(secrets).verify(body["access_token"])
    assert (principal.subject, principal.role, principal.centers, principal.department) == (
        user["id"], Role.CLERK, (A,), "D01")
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert abs(claims["iat"] - credentials.wall_now().timestamp()) < 60  # wall time, not the fixed clock (February)
    assert claims["exp"] - claims["iat"] == 15 * 60 == body["expires_in"]
    assert body["refresh_token"] and r.headers["cache-control"] == "no-store"


async def test_refresh_rotates_and_reusing_a_spent_token_revokes_the_family(service_client, tokens):
    async with service_client("identity") as client:
        await _create_user(client, tokens)
        first = (await _login(client)).json()["refresh_token"]
        r = await client.post("/refresh", json={"refresh_token": first})
        assert r.status_code == 200, r.text
        second = r.json()["refresh_token"]
        assert second != first
        reused = await client.post("/refresh", json={"refresh_token": first})
        assert reused.status_code == 401 and reused.json()["code"] == "invalid_refresh_token"
        # the thief's reuse ended the rightful holder's session too
        assert (await client.post("/refresh", json={"refresh_token": second})).status_code == 401


async def test_logout_ends_the_session(service_client, tokens):
    async with service_client("identity") as client:
        await _create_user(client, tokens)
        refresh = (await _login(client)).json()["refresh_token"]
        assert (await client.post("/logout", json={"refresh_token": refresh})).status_code == 204
        assert (await client.post("/refresh", json={"refresh_token": refresh})).status_code == 401


async def test_refresh_tokens_are_stored_hashed(service_client, tokens):
    async with service_client("identity") as client:
        await _create_user(client, tokens)
        refresh = (await _login(client)).json()["refresh_token"]
        rows = await client.db.fetch("SELECT * FROM refresh_tokens")
    assert len(rows) == 1 and refresh not in json.dumps([dict(r) for r in rows], default=str)


async def test_wrong_password_unknown_user_and_locked_user_get_the_same_401_after_one_verification(
        service_client, tokens, verifications):
    async with service_client("identity") as client:
        await _create_user(client, tokens)
        answers = []
        for username, password in (("zhangsan", "wrong password"), ("nobody", PASSWORD)):
            verifications[0] = 0
            r = await _login(client, username, password)
            assert verifications[0] == 1
            answers.append(r)
        for _ in range(9):  # ten failures in all
            await _login(client, "zhangsan", "wrong again")
        verifications[0] = 0
        locked = await _login(client)  # the right password, but locked
        assert verifications[0] == 1
        answers.append(locked)
    assert {r.status_code for r in answers} == {401}
    assert len({(r.json()["code"], r.json()["detail"]) for r in answers}) == 1


async def test_a_success_verifies_once_and_clears_earlier_failures(service_client, tokens, verifications):
    async with service_client("identity") as client:
        await _create_user(client, tokens)
        for _ in range(9):
            await _login(client, "zhangsan", "wrong")
        verifications[0] = 0
        assert (await _login(client)).status_code == 200
        assert verifications[0] == 1
        assert await client.db.fetch("SELECT * FROM login_failures") == []


async def test_the_lock_ends_fifteen_minutes_after_the_failures(service_client, tokens):
    async with service_client("identity") as client:
        user = await _create_user(client, tokens)
        for _ in range(10):
            await _login(client, "zhangsan", "wrong")
        assert (await _login(client)).status_code == 401
        await client.db.fetch("UPDATE login_failures SET failed_at = failed_at - interval '16 minutes' "
                              "WHERE user_id = $1", user["id"])
        assert (await _login(client)).status_code == 200


async def test_one_verification_takes_at_most_50_ms():
    password_hash = credentials.hash_password(PASSWORD)
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        assert credentials.verify_password(password_hash, PASSWORD)
        timings.append(time.perf_counter() - start)
    assert sorted(timings)[2] <= 0.05


async def test_no_password_or_token_in_any_log_line(service_client, tokens, capfd):
    async with service_client("identity") as client:
        await _create_user(client, tokens)
        body = (await _login(client)).json()
        await _login(client, "zhangsan", "a wrong secret pw")
        refreshed = (await client.post("/refresh", json={"refresh_token": body["refresh_token"]})).json()
        key = (await client.post("/device-keys", json={"role": "kiosk", "center_id": A, "label": "取号机 1"},
                                 headers=tokens.headers("system_admin", ["*"]))).json()["key"]
        await client.post("/token", json={"key": key})
    out, err = capfd.readouterr()
    text = out + err
    assert '"msg": "started"' in text  # the service's JSON log lines were captured
    for secret in (PASSWORD, "a wrong secret pw", body["access_token"], body["refresh_token"],
                   refreshed["refresh_token"], key):
        assert secret not in text


# --- device keys -----------------------------------------------------------------------------------------

async def _create_key(client, tokens, **body) -> dict:
    r = await client.post("/device-keys", json={"role": "kiosk", "center_id": A, "label": "取号机 1"} | body,
                          headers=tokens.headers("center_admin", [A]))
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_key_is_shown_once_stored_hashed_and_exchanged_for_a_device_token(service_client, tokens, secrets):
    async with service_client("identity") as client:
        created = await _create_key(client, tokens, role="evaluator", window="W03")
        listed = (await client.get("/device-keys", headers=tokens.headers("center_admin", [A]))).json()
        rows = await client.db.fetch("SELECT * FROM device_keys")
        r = await client.post("/token", json={"key": created["key"]})
    assert "key" not in listed[0] and created["key"] not in json.dumps([dict(x) for x in rows], default=str)
    assert r.status_code == 200, r.text
    principal = _verifier(secrets).verify(r.json()["access_token"])
    assert (principal.role, principal.centers, principal.window, principal.device) == (
        Role.EVALUATOR, (A,), "W03", created["id"])
    assert r.json()["refresh_token"] is None


async def test_a_revoked_key_is_refused_at_once(service_client, tokens):
    async with service_client("identity") as client:
        created = await _create_key(client, tokens)
        assert (await client.post("/token", json={"key": created["key"]})).status_code == 200
        r = await client.post(f"/device-keys/{created['id']}/revoke", headers=tokens.headers("center_admin", [A]))
        assert r.status_code == 200 and r.json()["revoked_at"]
        refused = await client.post("/token", json={"key": created["key"]})
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_key"


async def test_window_bound_devices_need_a_window_and_centre_bound_ones_refuse_one(service_client, tokens):
    async with service_client("identity") as client:
        headers = tokens.headers("center_admin", [A])
        no_window = await client.post("/device-keys", json={"role": "evaluator", "center_id": A, "label": "x"},
                                      headers=headers)
        kiosk_window = await client.post("/device-keys", json={"role": "kiosk", "center_id": A, "label": "x",
                                                              "window": "W1"}, headers=headers)
    assert no_window.status_code == 422 and kiosk_window.status_code == 422


async def test_a_centre_admin_manages_keys_of_their_own_centre_only(service_client, tokens):
    async with service_client("identity") as client:
        theirs = await client.post("/device-keys", json={"role": "display", "center_id": B, "label": "x"},
                                   headers=tokens.headers("center_admin", [A]))
        other = (await client.post("/device-keys", json={"role": "display", "center_id": B, "label": "x"},
                                   headers=tokens.headers("system_admin", ["*"]))).json()
        revoke = await client.post(f"/device-keys/{other['id']}/revoke", headers=tokens.headers("center_admin", [A]))
        clerk = await client.post("/device-keys", json={"role": "display", "center_id": A, "label": "x"},
                                  headers=tokens.headers("clerk", [A], department="D01"))
    assert theirs.status_code == 403 and revoke.status_code == 403 and clerk.status_code == 403


async def test_a_terminal_key_gives_a_window_bound_terminal_token(service_client, tokens, secrets):
    async with service_client("identity") as client:
        created = await _create_key(client, tokens, role="terminal", window="W05")
        r = await client.post("/token", json={"key": created["key"]})
    principal = _verifier(secrets).verify(r.json()["access_token"])
    assert (principal.role, principal.window) == ("terminal", "W05")


# --- admin API and events ----------------------------------------------------------------------------------

async def _outbox(client) -> list[dict]:
    rows = await client.db.fetch("SELECT envelope FROM outbox ORDER BY sequence")
    return [json.loads(r["envelope"]) for r in rows]


async def test_creating_a_user_publishes_user_upserted_with_contacts_masked_and_sealed(service_client, tokens,
                                                                                      secrets):
    async with service_client("identity") as client:
        user = await _create_user(client, tokens, email="zhang.san@example.cn", phone="13812345678")
        events = await _outbox(client)
    assert user["email_masked"] == "z***@example.cn" and user["phone_masked"] == "138****5678"
    (event,) = events
    data = event["data"]
    assert event["type"] == "user.upserted" and event["subject"] == user["id"]
    assert {k: data[k] for k in ("id", "display_name", "post_title", "role", "centers", "department", "active",
                                 "email_masked", "phone_masked")} == {
        "id": user["id"], "display_name": "张三", "post_title": "综合受理窗口", "role": "clerk", "centers": [A],
        "department": "D01", "active": True, "email_masked": "z***@example.cn", "phone_masked": "138****5678"}
    assert unseal(secrets["NOTIFY_SEAL_PRIVATE_KEY"], data["phone_sealed"]) == "13812345678"
    assert unseal(secrets["NOTIFY_SEAL_PRIVATE_KEY"], data["email_sealed"]) == "zhang.san@example.cn"
    assert "13812345678" not in json.dumps(event) and "zhang.san@" not in json.dumps(event)


async def test_deactivating_a_user_ends_sign_in_and_publishes_user_deactivated(service_client, tokens):
    async with service_client("identity") as client:
        user = await _create_user(client, tokens, phone="13812345678")
        refresh = (await _login(client)).json()["refresh_token"]
        r = await client.post(f"/users/{user['id']}/deactivate", headers=tokens.headers("center_admin", [A]))
        assert r.status_code == 200 and r.json()["active"] is False
        assert (await _login(client)).status_code == 401
        assert (await client.post("/refresh", json={"refresh_token": refresh})).status_code == 401
        events = await _outbox(client)
    assert [e["type"] for e in events] == ["user.upserted", "user.upserted", "user.deactivated"]
    assert events[1]["data"]["active"] is False and events[1]["data"]["phone_masked"] == "138****5678"
    assert events[2]["data"]["id"] == user["id"]


async def test_a_centre_admin_manages_users_of_their_own_centre_only(service_client, tokens):
    async with service_client("identity") as client:
        admin = tokens.headers("center_admin", [A])
        own = await client.post("/users", json=_user("lisi"), headers=admin)
        foreign = await client.post("/users", json=_user("wangwu", centers=[B]), headers=admin)
        sysadmin = await client.post("/users", json=_user("root", role="system_admin", centers=["*"]), headers=admin)
        other = await _create_user(client, tokens, username="zhao", centers=[B])
        read_other = await client.get(f"/users/{other['id']}", headers=admin)
        listed = (await client.get("/users", headers=admin)).json()
    assert own.status_code == 201 and foreign.status_code == 403 and sysadmin.status_code in (403, 422)
    assert read_other.status_code == 403 and [u["username"] for u in listed] == ["lisi"]


async def test_clerks_need_a_department_and_only_system_admins_span_every_centre(service_client, tokens):
    async with service_client("identity") as client:
        headers = tokens.headers("system_admin", ["*"])
        no_department = await client.post("/users", json=_user() | {"department": None}, headers=headers)
        manager_everywhere = await client.post("/users", json=_user(role="hall_manager", centers=["*"]),
                                               headers=headers)
    assert no_department.status_code == 422 and manager_everywhere.status_code == 422


async def test_a_new_password_ends_every_session(service_client, tokens):
    async with service_client("identity") as client:
        user = await _create_user(client, tokens)
        refresh = (await _login(client)).json()["refresh_token"]
        r = await client.put(f"/users/{user['id']}/password", json={"password": "another long password"},
                             headers=tokens.headers("system_admin", ["*"]))
        assert r.status_code == 204
        assert (await client.post("/refresh", json={"refresh_token": refresh})).status_code == 401
        assert (await _login(client, password="another long password")).status_code == 200


async def test_an_expired_refresh_token_is_refused(service_client, tokens):
    async with service_client("identity") as client:
        await _create_user(client, tokens)
        refresh = (await _login(client)).json()["refresh_token"]
        await client.db.fetch("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'")
        assert (await client.post("/refresh", json={"refresh_token": refresh})).status_code == 401
