"""The secret scan: what it flags in a formatted log record or a log file, what it leaves alone, how it masks
its report, and that a run with a secret in a log line fails.

Each test scans with a Scanner of its own and builds records by hand, never through a logger, and writes
no `*.log` file: the session's own scan must not see the secrets planted here."""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from pathlib import Path

import jwt
import pytest

from services.identity import credentials
from shared import devsecrets
from tests.plugins import secret_scan
from tests.plugins.secret_scan import Scanner

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = jwt.encode({"sub": "clerk-1", "role": "clerk"}, "a test signing key of 32 bytes or more", algorithm="HS256")
DEVICE_KEY = "hk_" + secrets.token_urlsafe(32)
ID_NUMBER = "11010519491231002X"
PHONE = "13812345678"


def record(msg: str = "request handled", *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("services.identity", logging.INFO, __file__, 1, msg, args, None)
    made.__dict__.update(extra)
    return made


def kinds(scanner: Scanner) -> set[str]:
    return {kind for finding in scanner.findings.values() for kind in finding.kinds}


def test_a_jwt_in_an_extra_field_is_found():
    scanner = Scanner()
    assert scanner.scan_record(record("login", headers={"authorization": f"Bearer {TOKEN}"}))
    assert kinds(scanner) == {"jwt"}


def test_a_registered_password_is_found_in_the_message_and_in_a_nested_extra():
    scanner = Scanner()
    scanner.remember("correct horse battery", "password")
    assert scanner.scan_record(record("login failed for %s", "correct horse battery"))
    assert scanner.scan_record(record("login failed", body={"username": "zhangsan", "password": "correct horse battery"}))
    assert kinds(scanner) == {"password"} and scanner.leaks == 2


def test_a_registered_value_with_characters_json_escapes_is_found_in_the_formatted_line():
    scanner = Scanner()
    scanner.remember('pass"word\\1', "password")
    assert scanner.scan_record(record("login", password='pass"word\\1'))


@pytest.mark.parametrize(("value", "kind"), [
    (DEVICE_KEY, "device key"),
    (ID_NUMBER, "ID card number"),
    ("320102199001011234", "ID card number"),
    (PHONE, "mobile number"),
    ("+86 13812345678", "mobile number"),
    (credentials.HASHER.hash("x"), "argon2 hash"),
])
def test_a_device_key_an_id_number_a_phone_number_and_a_hash_are_found(value, kind):
    scanner = Scanner()
    assert scanner.scan_record(record("device registered", value=value))
    assert kinds(scanner) == {kind}


def test_a_number_after_a_json_escaped_newline_is_found():
    scanner = Scanner()
    assert scanner.scan_record(record(f"applicant:\n{PHONE}"))
    assert '\\n[masked mobile number 138…' in next(iter(scanner.findings))


def test_a_private_key_is_found_whole_in_a_json_line_and_by_its_lines_in_a_raw_file():
    values = devsecrets.generate()
    scanner = Scanner()
    assert scanner.scan_record(record("settings", key=values["IDENTITY_JWT_PRIVATE_KEY"]))
    assert kinds(scanner) == {"private key"}
    assert "MC4C" not in next(iter(scanner.findings))  # the body is masked with its markers
    # the session registered the generated secrets: a key's body line alone, as a raw log splits it
    body = values["IDENTITY_JWT_PRIVATE_KEY"].splitlines()[1]
    assert secret_scan.SCANNER.matches(f"key {body}")
    assert secret_scan.SCANNER.matches(f"key {values['HALL_PII_HASH_KEY']}")
    assert not secret_scan.SCANNER.matches(values["HALL_JWT_PUBLIC_KEY"].splitlines()[1])


def test_passwords_refresh_tokens_and_device_keys_the_credentials_module_handles_are_registered():
    credentials.hash_password("a password only this test uses")
    credentials.verify_password(credentials.dummy_hash(), "a wrong password this test tries")
    refresh = credentials.new_refresh_token()
    for secret in ("a password only this test uses", "a wrong password this test tries", refresh):
        assert secret_scan.SCANNER.matches(f"login {{'value': '{secret}'}}")


@pytest.mark.parametrize("line", [
    "request 9f1c2a7e-4b3d-4e8a-9c1d-2f3e4a5b6c7d handled",
    "request_id=4e8a9c1d2f3e4a5b6c7d13812345678e",
    "ts=2026-02-12T09:00:00.123Z took 0.13812345678 s",
    "ticket issued to 138****5678, id 3201**********1234",
    "offset 1739347200123 partition 3 ns 1739347200123456789",
    "digest e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "key prefix hk_AbC, alg EdDSA, sub eyJ",
])
def test_ordinary_lines_are_not_flagged(line):
    scanner = Scanner()
    assert not scanner.scan_record(record(line))


def test_no_uuid_hex_id_or_digest_is_flagged():
    scanner = Scanner()
    for _ in range(2000):
        ids = [str(uuid.uuid4()), uuid.uuid4().hex, secrets.token_hex(16),
               hashlib.sha256(secrets.token_bytes(8)).hexdigest()]
        assert not scanner.matches(" ".join(ids)), ids


def test_a_short_value_is_not_registered():
    scanner = Scanner()
    scanner.remember("admin", "password")
    assert not scanner.matches("user admin logged in")


def test_the_report_masks_every_secret_of_a_line_and_names_its_source():
    scanner = Scanner()
    scanner.remember("correct horse battery", "password")
    scanner.context = "tests/identity/test_identity.py::test_login"
    scanner.scan_record(record("login", password="correct horse battery", token=TOKEN, phone=PHONE, key=DEVICE_KEY))
    report = "\n".join(scanner.report())
    for secret in ("correct horse battery", TOKEN, TOKEN.split(".")[1], PHONE, DEVICE_KEY, DEVICE_KEY[3:]):
        assert secret not in report
    assert "1 log line with a secret in clear" in report
    assert "log record of 'services.identity' during tests/identity/test_identity.py::test_login" in report
    assert f"[masked password …, {len('correct horse battery')} chars]" in report
    assert f"[masked jwt eyJ…, {len(TOKEN)} chars]" in report
    assert "[masked mobile number 138…, 11 chars]" in report and "[masked device key hk_…, 46 chars]" in report


def test_a_log_file_is_scanned_once_line_by_line_and_a_partial_line_waits(tmp_path):
    scanner = Scanner()
    path = tmp_path / "gateway.out"  # not *.log: the session scans those under tmp_path
    path.write_text('{"path": "/api/queue/tickets"}\n{"token": "' + TOKEN[:20])
    scanner.scan_file(path)
    assert scanner.file_lines == 1 and not scanner.leaks
    with path.open("a") as file:
        file.write(TOKEN[20:] + '"}\n{"status": 200}\n')
    scanner.scan_file(path)
    scanner.scan_file(path)
    assert scanner.file_lines == 3 and scanner.leaks == 1
    assert [f.source for f in scanner.findings.values()] == [f"{path}:2"]


def test_only_records_that_reach_the_root_logger_are_log_lines():
    quiet = logging.getLogger("tests.plugins.own-handler")
    quiet.propagate = False
    try:
        assert secret_scan.reaches_root(logging.getLogger("services.identity.router"))
        assert not secret_scan.reaches_root(logging.getLogger("tests.plugins.own-handler.child"))
    finally:
        quiet.propagate = True


def test_a_run_with_a_secret_in_a_log_line_fails_and_reports_it_masked(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_leak=f"""
        import logging

        def test_clean():
            logging.getLogger("services.queue").warning("ticket A001 called")

        def test_leaky():
            logging.getLogger("services.identity").warning("login", extra={{"token": "{TOKEN}"}})
    """)
    result = pytester.runpytest_subprocess("-p", "tests.plugins.secret_scan", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*2 passed*"])
    output = result.stdout.str()
    assert "1 log line with a secret in clear" in output and "test_leak.py::test_leaky: jwt" in output
    assert f"[masked jwt eyJ…, {len(TOKEN)} chars]" in output and TOKEN not in output
