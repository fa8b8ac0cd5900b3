"""The identity service: sign-in, refresh rotation and reuse, logout, lockout with one argon2 verification
on every path, device keys shown once and revocable, the admin API and its events, sign-in at a window
terminal, users' photos and the public routes of the window screens."""

from __future__ import annotations

import json
from datetime import timedelta

import argon2._password_hasher
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.identity import credentials
from shared import clock
from shared.auth import Role, TokenVerifier, mint_token
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
    assert abs(claims["iat"] - clock.wall_now().timestamp()) < 60  # wall time, not the fixed clock (February)
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


def test_passwords_are_argon2id_with_the_parameters_the_benchmark_measures():
    # the time one login costs is bench/identity_bench.py's figure (target <= 50 ms), not a timed test
    password_hash = credentials.hash_password(PASSWORD)
    assert password_hash.startswith("$argon2id$v=19$m=12288,t=3,p=1$")
    assert credentials.verify_password(password_hash, PASSWORD)
    assert not credentials.verify_password(password_hash, PASSWORD + " ")
    assert not credentials.needs_rehash(password_hash)


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


# --- sign-in at a window terminal ----------------------------------------------------------------------------

async def _terminal(client, tokens, center: str = A, window: str = "W05") -> tuple[dict, str]:
    """A terminal key of `center` and `window`, and the device token it is exchanged for."""
    r = await client.post("/device-keys", json={"role": "terminal", "center_id": center, "window": window,
                                                "label": "3号窗口终端"}, headers=tokens.headers("system_admin", ["*"]))
    assert r.status_code == 201, r.text
    exchanged = await client.post("/token", json={"key": r.json()["key"]})
    return r.json(), exchanged.json()["access_token"]


async def _login_at(client, terminal_token: str, username="zhangsan", password=PASSWORD, **body):
    return await client.post("/login", json={"username": username, "password": password} | body,
                             headers={"Authorization": f"Bearer {terminal_token}"})


async def test_a_clerk_at_a_terminal_gets_its_window_device_and_centre_in_the_token(service_client, tokens,
                                                                                     secrets):
    async with service_client("identity") as client:
        user = await _create_user(client, tokens, centers=[A, B])
        key, terminal = await _terminal(client, tokens)
        r = await _login_at(client, terminal)
    assert r.status_code == 200, r.text
    principal = _verifier(secrets).verify(r.json()["access_token"])
    assert (principal.subject, principal.role, principal.department) == (user["id"], Role.CLERK, "D01")
    # narrowed to the terminal's centre: a window name is only unique within its centre
    assert (principal.window, principal.device, principal.centers) == ("W05", key["id"], (A,))
    assert r.json()["refresh_token"]


async def test_a_plain_sign_in_carries_no_window(service_client, tokens, secrets):
    async with service_client("identity") as client:
        await _create_user(client, tokens, centers=[A, B])
        r = await _login(client)
    principal = _verifier(secrets).verify(r.json()["access_token"])
    assert (principal.window, principal.device, principal.centers) == (None, None, (A, B))


async def test_refreshing_a_sign_in_at_a_terminal_keeps_its_window(service_client, tokens, secrets):
    async with service_client("identity") as client:
        await _create_user(client, tokens)
        key, terminal = await _terminal(client, tokens)
        first = (await _login_at(client, terminal)).json()["refresh_token"]
        r = await client.post("/refresh", json={"refresh_token": first})
        again = await client.post("/refresh", json={"refresh_token": r.json()["refresh_token"]})
    assert r.status_code == 200 and again.status_code == 200, again.text
    principal = _verifier(secrets).verify(again.json()["access_token"])
    assert (principal.window, principal.device, principal.centers) == ("W05", key["id"], (A,))


async def test_a_window_in_the_login_body_is_refused_naming_it(service_client, tokens):
    async with service_client("identity") as client:
        await _create_user(client, tokens)
        _, terminal = await _terminal(client, tokens)
        plain = await client.post("/login", json={"username": "zhangsan", "password": PASSWORD, "window": "W01"})
        at_terminal = await _login_at(client, terminal, window="W01")
        rows = await client.db.fetch("SELECT * FROM refresh_tokens")
    assert (plain.status_code, at_terminal.status_code) == (422, 422)
    assert plain.json()["field"] == at_terminal.json()["field"] == "window"
    assert rows == []


async def test_only_clerks_and_chief_representatives_sign_in_at_a_terminal(service_client, tokens):
    async with service_client("identity") as client:
        await _create_user(client, tokens, username="rep", role="chief_rep")
        await _create_user(client, tokens, username="manager", role="hall_manager")
        await _create_user(client, tokens, username="admin", role="center_admin")
        _, terminal = await _terminal(client, tokens)
        rep = await _login_at(client, terminal, "rep")
        manager = await _login_at(client, terminal, "manager")
        admin = await _login_at(client, terminal, "admin")
    assert rep.status_code == 200, rep.text
    assert (manager.status_code, admin.status_code) == (403, 403)
    assert manager.json()["code"] == admin.json()["code"] == "wrong_role"
    assert manager.headers["content-type"] == "application/problem+json"


async def test_a_terminal_of_another_centre_is_refused(service_client, tokens):
    async with service_client("identity") as client:
        await _create_user(client, tokens, centers=[A])
        _, terminal = await _terminal(client, tokens, center=B)
        r = await _login_at(client, terminal)
    assert r.status_code == 403 and r.json()["code"] == "wrong_center"


async def test_a_wrong_password_at_a_terminal_gets_the_same_401_whoever_the_user_is(service_client, tokens,
                                                                                    verifications):
    async with service_client("identity") as client:
        manager = await _create_user(client, tokens, username="manager", role="hall_manager")
        _, terminal = await _terminal(client, tokens)
        verifications[0] = 0
        r = await _login_at(client, terminal, "manager", "wrong password")
        failures = await client.db.fetch("SELECT * FROM login_failures WHERE user_id = $1", manager["id"])
    # the rules of the terminal come after the password: a 403 never tells a guess was right
    assert r.status_code == 401 and r.json()["code"] == "invalid_credentials"
    assert verifications[0] == 1 and len(failures) == 1


async def test_an_invalid_expired_or_foreign_terminal_token_is_401(service_client, tokens, verifications):
    foreign_key = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    async with service_client("identity") as client:
        await _create_user(client, tokens)
        key, _ = await _terminal(client, tokens)
        claims = {"window": "W05", "device": key["id"], "subject": f"device:{key['id']}"}
        bad = {
            "garbage": "not-a-token",
            "expired": tokens.mint("terminal", [A], ttl=timedelta(minutes=-1), **claims),
            "foreign": mint_token(foreign_key, subject=claims["subject"], role="terminal", centers=[A],
                                  window="W05", device=key["id"]),
            "no key": tokens.mint("terminal", [A], window="W05"),  # a development token: no terminal key of ours
        }
        verifications[0] = 0
        answers = {name: await _login_at(client, token) for name, token in bad.items()}
    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(bad, 401)
    assert answers["no key"].json()["code"] == "invalid_terminal"
    assert all(r.headers["www-authenticate"] == "Bearer" for r in answers.values())
    assert verifications[0] == 0  # refused before any password is looked at


async def test_a_token_that_is_not_a_terminals_is_forbidden(service_client, tokens):
    async with service_client("identity") as client:
        await _create_user(client, tokens)
        evaluator = await _create_key(client, tokens, role="evaluator", window="W05")
        evaluator_token = (await client.post("/token", json={"key": evaluator["key"]})).json()["access_token"]
        clerk_token = (await _login(client)).json()["access_token"]
        answers = [await _login_at(client, token) for token in (evaluator_token, clerk_token)]
    assert [(r.status_code, r.json()["code"]) for r in answers] == [(403, "not_a_terminal")] * 2


async def test_a_revoked_terminal_starts_no_sign_in_and_ends_those_made_at_it(service_client, tokens):
    async with service_client("identity") as client:
        await _create_user(client, tokens)
        key, terminal = await _terminal(client, tokens)
        refresh = (await _login_at(client, terminal)).json()["refresh_token"]
        revoked = await client.post(f"/device-keys/{key['id']}/revoke", headers=tokens.headers("center_admin", [A]))
        assert revoked.status_code == 200
        login = await _login_at(client, terminal)  # the terminal's token itself lives on to its expiry
        refreshed = await client.post("/refresh", json={"refresh_token": refresh})
        family = await client.db.fetch("SELECT revoked_at FROM refresh_tokens")
    assert login.status_code == 401 and login.json()["code"] == "invalid_terminal"
    assert refreshed.status_code == 401
    assert all(row["revoked_at"] is not None for row in family)


async def test_a_sign_in_at_a_terminal_ends_when_the_user_leaves_its_centre(service_client, tokens):
    async with service_client("identity") as client:
        user = await _create_user(client, tokens, centers=[A, B])
        _, terminal = await _terminal(client, tokens)
        refresh = (await _login_at(client, terminal)).json()["refresh_token"]
        moved = await client.put(f"/users/{user['id']}", json={"display_name": "张三", "centers": [B],
                                                                "department": "D01"},
                                 headers=tokens.headers("system_admin", ["*"]))
        assert moved.status_code == 200, moved.text
        r = await client.post("/refresh", json={"refresh_token": refresh})
    assert r.status_code == 401


# --- photos and the public routes of the window screens ---------------------------------------------------------

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(200)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200)


async def _put_photo(client, tokens, user_id: str, content: bytes = JPEG, content_type: str | None = "image/jpeg",
                     headers: dict | None = None):
    headers = dict(headers if headers is not None else tokens.headers("center_admin", [A]))
    if content_type:
        headers["Content-Type"] = content_type
    return await client.put(f"/users/{user_id}/photo", content=content, headers=headers)


async def test_an_admin_uploads_a_photo_and_the_window_screen_gets_it_without_a_token(service_client, tokens):
    async with service_client("identity") as client:
        user = await _create_user(client, tokens)
        put = await _put_photo(client, tokens, user["id"])
        got = await client.get(f"/public/users/{user['id']}/photo")
    assert put.status_code == 200, put.text
    assert put.json()["etag"] == got.headers["etag"] == put.headers["etag"]
    assert put.json()["photo_url"].startswith(f"/api/auth/public/users/{user['id']}/photo")
    assert (got.status_code, got.content, got.headers["content-type"]) == (200, JPEG, "image/jpeg")
    assert got.headers["cache-control"] == "public, max-age=300"


async def test_an_unchanged_photo_answers_304(service_client, tokens):
    async with service_client("identity") as client:
        user = await _create_user(client, tokens)
        etag = (await _put_photo(client, tokens, user["id"])).json()["etag"]
        same = await client.get(f"/public/users/{user['id']}/photo", headers={"If-None-Match": etag})
        other = await client.get(f"/public/users/{user['id']}/photo", headers={"If-None-Match": '"stale"'})
    assert (same.status_code, same.content, same.headers["etag"]) == (304, b"", etag)
    assert (other.status_code, other.content) == (200, JPEG)


async def test_a_new_photo_publishes_user_upserted_with_a_new_url(service_client, tokens):
    async with service_client("identity") as client:
        user = await _create_user(client, tokens)
        first = (await _put_photo(client, tokens, user["id"])).json()
        await _put_photo(client, tokens, user["id"])  # the same image again: nothing changes
        second = (await _put_photo(client, tokens, user["id"], PNG, "image/png")).json()
        listed = (await client.get(f"/users/{user['id']}", headers=tokens.headers("center_admin", [A]))).json()
        events = await _outbox(client)
    assert [e["type"] for e in events] == ["user.upserted"] * 3
    assert [e["data"]["photo_url"] for e in events] == [None, first["photo_url"], second["photo_url"]]
    assert first["photo_url"] != second["photo_url"] and listed["photo_url"] == second["photo_url"]


async def test_a_photo_is_a_jpeg_or_a_png(service_client, tokens):
    async with service_client("identity") as client:
        user = await _create_user(client, tokens)
        gif = await _put_photo(client, tokens, user["id"], b"GIF89a" + bytes(50), "image/gif")
        untyped = await _put_photo(client, tokens, user["id"], JPEG, None)
    assert (gif.status_code, untyped.status_code) == (415, 415)
    assert gif.json()["code"] == "unsupported_photo_type" and gif.json()["field"] == "Content-Type"


async def test_a_photo_over_2_mib_is_refused_with_413(service_client, tokens):
    limit = 2 * 1024 * 1024

    async def chunked():  # no Content-Length: the size is counted as the body arrives
        yield JPEG
        for _ in range(limit // 65536 + 1):
            yield bytes(65536)

    async with service_client("identity") as client:
        user = await _create_user(client, tokens)
        at_limit = await _put_photo(client, tokens, user["id"], JPEG + bytes(limit - len(JPEG)))
        declared = await _put_photo(client, tokens, user["id"], JPEG + bytes(limit - len(JPEG) + 1))
        streamed = await client.put(f"/users/{user['id']}/photo", content=chunked(),
                                    headers=tokens.headers("center_admin", [A]) | {"Content-Type": "image/jpeg"})
        stored = await client.db.fetch("SELECT size FROM user_photos")
    assert at_limit.status_code == 200, at_limit.text
    assert (declared.status_code, streamed.status_code) == (413, 413)
    assert declared.json()["code"] == streamed.json()["code"] == "photo_too_large"
    assert [row["size"] for row in stored] == [limit]


async def test_a_body_that_is_not_the_image_its_type_says_is_422(service_client, tokens):
    async with service_client("identity") as client:
        user = await _create_user(client, tokens)
        png_as_jpeg = await _put_photo(client, tokens, user["id"], PNG, "image/jpeg")
        empty = await _put_photo(client, tokens, user["id"], b"", "image/png")
        text = await _put_photo(client, tokens, user["id"], b"<svg onload=alert(1)>", "image/png")
    assert [r.status_code for r in (png_as_jpeg, empty, text)] == [422] * 3
    assert png_as_jpeg.json()["code"] == "invalid_photo" and png_as_jpeg.json()["field"] == "body"
    assert "JPEG" in png_as_jpeg.json()["detail"]


async def test_photos_are_managed_as_the_user_is(service_client, tokens):
    async with service_client("identity") as client:
        user = await _create_user(client, tokens)
        answers = {
            "no token": await _put_photo(client, tokens, user["id"], headers={}),
            "the clerk": await _put_photo(client, tokens, user["id"],
                                          headers=tokens.headers("clerk", [A], department="D01")),
            "another centre's admin": await _put_photo(client, tokens, user["id"],
                                                       headers=tokens.headers("center_admin", [B])),
            "a system admin": await _put_photo(client, tokens, user["id"],
                                               headers=tokens.headers("system_admin", ["*"])),
        }
        delete_elsewhere = await client.delete(f"/users/{user['id']}/photo", headers=tokens.headers("center_admin", [B]))
        unknown = await _put_photo(client, tokens, "0" * 32)
    assert {who: r.status_code for who, r in answers.items()} == {
        "no token": 401, "the clerk": 403, "another centre's admin": 403, "a system admin": 200}
    assert delete_elsewhere.status_code == 403 and unknown.status_code == 404


async def test_deleting_a_photo_removes_it_and_publishes_once(service_client, tokens):
    async with service_client("identity") as client:
        user = await _create_user(client, tokens)
        await _put_photo(client, tokens, user["id"])
        first = await client.delete(f"/users/{user['id']}/photo", headers=tokens.headers("center_admin", [A]))
        again = await client.delete(f"/users/{user['id']}/photo", headers=tokens.headers("center_admin", [A]))
        got = await client.get(f"/public/users/{user['id']}/photo")
        profile = (await client.get(f"/public/users/{user['id']}")).json()
        events = await _outbox(client)
    assert (first.status_code, again.status_code, got.status_code) == (204, 204, 404)
    assert profile["photo_url"] is None
    assert [e["data"]["photo_url"] is None for e in events] == [True, False, True]


async def test_the_public_profile_holds_only_what_a_window_screen_shows(service_client, tokens):
    async with service_client("identity") as client:
        user = await _create_user(client, tokens, email="zhang.san@example.cn", phone="13812345678")
        photo_url = (await _put_photo(client, tokens, user["id"])).json()["photo_url"]
        r = await client.get(f"/public/users/{user['id']}")
    assert r.status_code == 200, r.text
    assert r.json() == {"id": user["id"], "display_name": "张三", "post_title": "综合受理窗口",
                        "photo_url": photo_url, "active": True}
    assert "zhangsan" not in r.text and "138" not in r.text and "example.cn" not in r.text


async def test_an_inactive_user_shows_as_inactive_without_a_photo(service_client, tokens):
    async with service_client("identity") as client:
        user = await _create_user(client, tokens)
        await _put_photo(client, tokens, user["id"])
        await client.post(f"/users/{user['id']}/deactivate", headers=tokens.headers("center_admin", [A]))
        got = await client.get(f"/public/users/{user['id']}/photo")
        profile = (await client.get(f"/public/users/{user['id']}")).json()
    assert got.status_code == 404
    assert (profile["active"], profile["photo_url"]) == (False, None)


async def test_only_the_staff_at_the_windows_are_public(service_client, tokens):
    async with service_client("identity") as client:
        manager = await _create_user(client, tokens, username="manager", role="hall_manager")
        await _put_photo(client, tokens, manager["id"])
        profile = await client.get(f"/public/users/{manager['id']}")
        photo = await client.get(f"/public/users/{manager['id']}/photo")
        unknown = await client.get(f"/public/users/{'0' * 32}")
    assert (profile.status_code, photo.status_code, unknown.status_code) == (404, 404, 404)


async def test_a_photo_url_in_a_user_body_is_refused(service_client, tokens):
    async with service_client("identity") as client:
        headers = tokens.headers("system_admin", ["*"])
        created = await client.post("/users", json=_user() | {"photo_url": "https://elsewhere/x.jpg"}, headers=headers)
        user = await _create_user(client, tokens, username="lisi")
        changed = await client.put(f"/users/{user['id']}", json={"display_name": "李四", "centers": [A],
                                                                  "department": "D01", "photo_url": None},
                                   headers=headers)
    assert (created.status_code, changed.status_code) == (422, 422)
    assert created.json()["field"] == changed.json()["field"] == "photo_url"
