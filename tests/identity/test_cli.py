"""The installation CLI: the first system admin, centre admins and device keys on a fresh database."""

import asyncio
import json

import pytest
from click.testing import CliRunner

from services.identity import cli, config
from shared import clock


@pytest.fixture
def identity_env(service_databases, monkeypatch):
    db = service_databases("identity")
    asyncio.run(db.reset())
    monkeypatch.setenv("IDENTITY_DATABASE_URL", db.url)
    config.get_settings.cache_clear()
    previous = clock.get_clock()
    yield db
    clock.set_clock(previous)
    config.get_settings.cache_clear()


def _invoke(*args: str, input: str | None = None):
    result = CliRunner().invoke(cli.cli, list(args), input=input, catch_exceptions=False)
    return result


def test_create_system_admin_asks_for_the_password_and_publishes_the_user(identity_env):
    result = _invoke("create-system-admin", "--username", "root", input="a long password\na long password\n")
    assert result.exit_code == 0, result.output
    rows = asyncio.run(identity_env.fetch("SELECT username, role, centers, password_hash FROM users"))
    assert [(r["username"], r["role"], r["centers"]) for r in rows] == [("root", "system_admin", ["*"])]
    assert rows[0]["password_hash"].startswith("$argon2id$") and "a long password" not in result.output
    events = asyncio.run(identity_env.fetch("SELECT type FROM outbox"))
    assert [e["type"] for e in events] == ["user.upserted"]


def test_create_center_admin_and_a_duplicate_is_an_error(identity_env):
    args = ("create-center-admin", "--username", "admin1", "--center", "320102", "--password", "a long password")
    assert _invoke(*args).exit_code == 0
    again = _invoke(*args)
    assert again.exit_code == 1 and "already exists" in again.output


def test_create_device_key_prints_the_key_once_and_stores_its_hash(identity_env):
    result = _invoke("create-device-key", "--role", "evaluator", "--center", "320102", "--window", "W03",
                     "--label", "3号窗口评价器")
    assert result.exit_code == 0, result.output
    key = next(line for line in result.output.splitlines() if line.startswith("hk_"))
    rows = asyncio.run(identity_env.fetch("SELECT * FROM device_keys"))
    assert len(rows) == 1 and key not in json.dumps([dict(r) for r in rows], default=str)


def test_a_window_bound_device_without_a_window_is_refused(identity_env):
    result = _invoke("create-device-key", "--role", "terminal", "--center", "320102", "--label", "x")
    assert result.exit_code == 1 and "window" in result.output
