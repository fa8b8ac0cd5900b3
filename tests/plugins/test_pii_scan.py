"""The personal-data scan of notify's rows: what it flags in a row and what it leaves alone (sealed values,
keyed hashes, masked forms), how it masks its report, how it counts what it read against what the planner
produced, and that a run fails on a number in clear or on rows emptied unscanned.

The scanners here are their own (`Scanner()`), and the numbers planted go to a scratch database or to a
pytester run, never to the session's notify database: the session's own scan must not see them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from prometheus_client import CollectorRegistry, Counter

from shared import pii
from shared.db import asyncpg_dsn, ensure_database
from shared.migrate import upgrade
from tests.conftest import RUN_ID, database_url, drop_database, in_thread
from tests.plugins import pii_scan
from tests.plugins.pii_scan import Produced, Scanner, produced_here

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
PHONE = "13812345678"
ID_NUMBER = "11010519491231002X"
HASH_KEY = b"a deployment hash key of 32 byte"
WHEN = datetime(2026, 2, 12, 1, 0, tzinfo=UTC)
MASKED_PHONE = "[masked mobile number 138…, 11 chars]"
MASKED_ID = "[masked ID card number 110…, 18 chars]"


def delivery(**changes: Any) -> dict[str, Any]:
    """A delivery row as `to_jsonb` gives it."""
    return {"id": 7, "key": str(uuid.uuid4()), "event_id": str(uuid.uuid4()), "event_type": "case.accepted",
            "occurred_at": WHEN.isoformat(), "center_id": "320102", "recipient_key": "applicant:case:C1",
            "channel": "sms", "template_key": "case.accepted", "address_masked": pii.mask_phone(PHONE),
            "address_sealed": None, "address_hash": None, "subject": None, "body": "您的申请已受理", "params": {},
            "status": "pending", "attempts": 0, "last_error": None, **changes}


def feed_event(text: str, sequence: int = 3) -> dict[str, Any]:
    """An outbox row of a `delivery.feed_posted` event, as `to_jsonb` gives it."""
    data = {"delivery_id": 1, "feed": "supervision:320102", "center_id": "320102", "text": text,
            "refs": {"event_id": str(uuid.uuid4()), "event_type": "alert.raised"}}
    return {"sequence": sequence, "id": str(uuid.uuid4()), "type": pii_scan.FEED_EVENT, "topic": "hall.notify.v1",
            "key": "supervision:320102", "envelope": {"type": pii_scan.FEED_EVENT, "version": 1, "data": data,
                                                      "subject": "supervision:320102", "producer": "notify"}}


def report(scanner: Scanner, produced: Produced = Produced()) -> str:
    return "\n".join(scanner.report(produced))


# --- one row -------------------------------------------------------------------------------------------------


def test_a_phone_in_a_delivery_body_is_found_and_reported_by_table_row_and_column_masked():
    scanner = Scanner()
    assert scanner.scan_row("deliveries", delivery(body=f"请致电 {PHONE} 咨询")) == 1
    [finding] = scanner.findings
    assert (finding.table, finding.row, finding.column, finding.kinds) == ("deliveries", "id=7", "body",
                                                                          ["mobile number"])
    assert finding.value == f"请致电 {MASKED_PHONE} 咨询"
    text = report(scanner)
    assert "deliveries id=7, column body: mobile number" in text and "the run fails" in text
    assert PHONE not in text and scanner.failed(Produced())


def test_an_id_number_in_a_feed_events_text_is_found_at_its_path_in_the_envelope():
    scanner = Scanner()
    assert scanner.scan_row("outbox", feed_event(f"申请人{ID_NUMBER}逾期"), ["sequence"]) == 1
    [finding] = scanner.findings
    assert (finding.row, finding.column, finding.kinds) == ("sequence=3", "envelope.data.text", ["ID card number"])
    assert finding.value == f"申请人{MASKED_ID}逾期" and ID_NUMBER not in report(scanner)
    assert scanner.feed_events == 1 and scanner.rows["outbox"] == 1


@pytest.mark.parametrize(("changes", "column"), [
    ({"params": {"document": {"data": {"phone": int(PHONE)}}}}, "params.document.data.phone"),
    ({"params": {"refs": [{"case_no": "C1"}, {"note": f"+86 {PHONE}"}]}}, "params.refs[1].note"),
    ({"last_error": f"provider refused {PHONE}: blacklisted"}, "last_error"),
    ({"subject": f"ID {ID_NUMBER.lower()}"}, "subject"),
])
def test_a_number_inside_json_or_in_any_text_column_is_found(changes, column):
    scanner = Scanner()
    assert scanner.scan_row("deliveries", delivery(**changes)) == 1
    assert scanner.findings[0].column == column


def test_a_number_in_a_json_key_or_a_primary_key_is_masked_in_the_report_too():
    scanner = Scanner()
    scanner.scan_row("contacts", {"id": PHONE, "display_name": "张三", "extra": {PHONE: "x"}})
    assert scanner.leaks == 2 and {f.row for f in scanner.findings} == {f"id={MASKED_PHONE}"}
    assert {f.column for f in scanner.findings} == {"id", "extra"}
    assert all(f"extra.{PHONE}" != f.column for f in scanner.findings) and PHONE not in report(scanner)


def test_sealed_encrypted_hashed_and_masked_forms_are_not_findings():
    private, public = pii.new_seal_keypair()
    forms = pii.PersonalData(HASH_KEY, b"an encryption key of 32 bytes!!!", public)
    scanner = Scanner()
    for n in range(300):
        phone, stored = f"13{n % 7 + 3}{n:08d}", {}
        for kind, value in (("phone", phone), ("id", ID_NUMBER)):
            made = forms.phone(value) if kind == "phone" else forms.id_card(value)
            stored |= {f"{kind}_{form}": made[form] for form in made}
        assert pii.unseal(private, stored["phone_sealed_for_notify"]) == phone
        scanner.scan_row("contacts", {"id": f"u{n}", **stored, "params": {"address_hash": stored["phone_hash"]}})
    assert scanner.leaks == 0 and scanner.rows["contacts"] == 300


def test_a_digit_run_inside_a_hex_digest_or_a_uuid_is_not_a_finding():
    # a keyed hash is hex: 11 digits in a row inside one happen (about one hash in 300); shared.pii's own
    # find_personal_data flags them, which is why the scan uses the log scan's stand-alone patterns
    digest = "ab" + PHONE + "cd" + "0" * 51
    scanner = Scanner()
    scanner.scan_row("deliveries", delivery(address_hash=digest, key=f"{PHONE[:8]}-1381-4234-8567-{PHONE}0"))
    assert pii.find_personal_data(digest) == [PHONE]
    assert scanner.leaks == 0


# --- what was read against what was produced ----------------------------------------------------------------


def test_fewer_delivery_rows_or_feed_events_scanned_than_produced_fail_naming_the_missing_hook():
    scanner = Scanner()
    for n in range(2):
        scanner.scan_row("deliveries", delivery(id=n))
    scanner.scan_row("outbox", feed_event("窗口 3 空岗"), ["sequence"])
    assert scanner.shortfalls(Produced(deliveries=2, feed_events=1)) == []
    assert scanner.shortfalls(Produced(deliveries=1, feed_events=0)) == []  # a worker process added rows
    problems = scanner.shortfalls(Produced(deliveries=3, feed_events=2))
    assert len(problems) == 2
    assert "inserted 3 delivery rows in this process but the scan read 2" in problems[0]
    assert "posted 2 feed events" in problems[1] and "read 1" in problems[1]
    assert all("ServiceDatabase.before_emptied" in p for p in problems)
    assert scanner.failed(Produced(3, 2)) and not scanner.failed(Produced(2, 1))


def test_the_produced_counts_are_the_planners_counter_summed_over_its_labels_and_its_feed_channel():
    registry = CollectorRegistry()
    assert produced_here(registry) == Produced(0, 0)  # notify never loaded: nothing produced
    planned = Counter("hall_notify_deliveries_planned_total", "planned", ["channel", "template"], registry=registry)
    planned.labels("sms", "case.accepted").inc(3)
    planned.labels("feed", "alert.raised").inc(2)
    planned.labels("feed", "sanction.issued").inc()
    assert produced_here(registry) == Produced(deliveries=6, feed_events=3)


def test_a_database_that_cannot_be_read_fails_the_run():
    class Unreachable:
        service, dsn = "notify", "postgresql://nobody@127.0.0.1:1/nothing"

    scanner = Scanner()
    asyncio.run(scanner.before_emptied(Unreachable()))
    assert scanner.failed(Produced()) and "could not be scanned" in report(scanner)


# --- a real database -----------------------------------------------------------------------------------------


@pytest.fixture
async def scratch_notify(pg_server: str) -> AsyncIterator[str]:
    """A migrated notify database of this test's own (not the session's), its asyncpg DSN."""
    url = database_url(pg_server, f"t{RUN_ID}_pii_scan")

    def create() -> None:
        asyncio.run(drop_database(url))
        asyncio.run(ensure_database(url))
        upgrade("notify", url)

    in_thread(create)
    try:
        yield asyncpg_dsn(url)
    finally:
        await drop_database(url)


_DELIVERY = """
    INSERT INTO deliveries (key, event_id, event_type, occurred_at, recipient_key, channel, template_key,
                            address_masked, address_sealed, address_hash, body, params, status, next_attempt_at,
                            created_at, last_error)
    VALUES ($1, $2, 'case.accepted', $3, 'applicant:case:C1', $4, 'case.accepted', $5, $6, $7, $8, $9::jsonb,
            'pending', $3, $3, $10)
    RETURNING id
"""
_OUTBOX = """
    INSERT INTO outbox (id, type, topic, key, envelope, created_at)
    VALUES ($1, $2, 'hall.notify.v1', 'supervision:320102', $3::jsonb, $4) RETURNING sequence
"""


async def plant_delivery(conn: asyncpg.Connection, body: str, *, channel: str = "sms", sealed: str | None = None,
                         hashed: str | None = None, params: Any = None, error: str | None = None) -> int:
    return int(await conn.fetchval(_DELIVERY, uuid.uuid4(), uuid.uuid4(), WHEN, channel, pii.mask_phone(PHONE),
                                   sealed, hashed, body, json.dumps(params or {}), error))


async def plant_feed_event(conn: asyncpg.Connection, text: str) -> int:
    row = feed_event(text)
    return int(await conn.fetchval(_OUTBOX, uuid.uuid4(), row["type"], json.dumps(row["envelope"]), WHEN))


async def test_every_table_of_a_notify_database_is_read_and_its_numbers_in_clear_found(scratch_notify):
    _, public = pii.new_seal_keypair()
    conn = await asyncpg.connect(scratch_notify)
    try:
        clean = await plant_delivery(conn, "您的申请已受理", sealed=pii.seal(public, PHONE),
                                     hashed=pii.keyed_hash(HASH_KEY, "phone", PHONE))
        leaky = await plant_delivery(conn, "材料已备齐", channel="webhook", params={"document": {"phone": PHONE}})
        await conn.execute("INSERT INTO delivery_attempts (delivery_id, number, started_at, error) "
                           "VALUES ($1, 1, $2, $3)", clean, WHEN, f"HTTP 400: bad number {PHONE}")
        feed = await plant_feed_event(conn, f"监察室: 申请人 {ID_NUMBER} 投诉")
        await plant_feed_event(conn, "窗口 3 空岗")
        await conn.execute("INSERT INTO case_contacts (case_no, center_id, phone_masked, phone_sealed, "
                           "lookup_code_sealed, accepted_at) VALUES ('C1', '320102', $1, $2, $3, $4)",
                           pii.mask_phone(PHONE), pii.seal(public, PHONE), pii.seal(public, "483920"), WHEN)
    finally:
        await conn.close()

    scanner = Scanner()
    await scanner.scan_database(scratch_notify)
    assert (scanner.deliveries, scanner.rows["delivery_attempts"], scanner.rows["outbox"], scanner.feed_events,
            scanner.rows["case_contacts"]) == (2, 1, 2, 2, 1)
    assert {(f.table, f.row, f.column, tuple(f.kinds)) for f in scanner.findings} == {
        ("deliveries", f"id={leaky}", "params.document.phone", ("mobile number",)),
        ("delivery_attempts", "id=1", "error", ("mobile number",)),
        ("outbox", f"sequence={feed}", "envelope.data.text", ("ID card number",)),
    }
    text = report(scanner, Produced(deliveries=2, feed_events=2))
    assert MASKED_PHONE in text and MASKED_ID in text and PHONE not in text and ID_NUMBER not in text


async def test_a_reset_of_the_sessions_notify_database_scans_its_rows_before_truncating_them(service_databases):
    db = service_databases("notify")
    await db.reset()
    conn = await asyncpg.connect(db.dsn)
    try:
        await plant_delivery(conn, "您的号码即将叫到")
        await plant_feed_event(conn, "窗口 3 空岗")
    finally:
        await conn.close()
    before = (pii_scan.SCANNER.deliveries, pii_scan.SCANNER.feed_events, pii_scan.SCANNER.leaks)
    await db.reset()
    after = (pii_scan.SCANNER.deliveries, pii_scan.SCANNER.feed_events, pii_scan.SCANNER.leaks)
    assert after == (before[0] + 1, before[1] + 1, before[2])
    assert await db.fetch("SELECT id FROM deliveries") == []


# --- whole runs ----------------------------------------------------------------------------------------------


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *plugins: str) -> pytest.RunResult:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = session\n"
                     "asyncio_default_test_loop_scope = session\n")
    options = [arg for plugin in plugins for arg in ("-p", plugin)]
    return pytester.runpytest_subprocess(*options, "-p", "no:cacheprovider")


def test_a_run_whose_deliveries_were_never_scanned_fails_and_one_without_notify_passes(pytester, monkeypatch):
    pytester.makepyfile(test_counted="""
        import os

        def test_planned_elsewhere():
            if os.environ.get("PLAN"):
                from services.notify import metrics
                metrics.PLANNED.labels("feed", "alert.raised").inc(2)
    """)
    result = _run(pytester, monkeypatch, "tests.plugins.pii_scan")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["pii scan: 0 delivery rows (≥ 0 planned here)*no phone or ID number in clear"])

    monkeypatch.setenv("PLAN", "1")
    result = _run(pytester, monkeypatch, "tests.plugins.pii_scan")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*= pii scan =*", "*the run fails:",
                                 "*inserted 2 delivery rows in this process but the scan read 0*",
                                 "*posted 2 feed events*", "*1 passed*"])


def test_a_run_that_leaves_a_phone_in_a_delivery_fails_at_the_session_end_scan_masked(pytester, monkeypatch):
    # the suite's conftest as the run's plugin: its own PostgreSQL, notify database and both scans
    pytester.makepyfile(test_leak=f"""
        import asyncpg
        from tests.plugins.test_pii_scan import plant_delivery

        async def test_leaves_a_phone_for_the_last_scan(service_databases):
            db = service_databases("notify")
            await db.reset()
            conn = await asyncpg.connect(db.dsn)
            try:
                await plant_delivery(conn, "回电 {PHONE}")
            finally:
                await conn.close()
    """)
    result = _run(pytester, monkeypatch, "tests.conftest")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*= pii scan =*", "1 delivery row (≥ 0 planned here)*; the run fails:",
                                 "1 value with a phone or ID number in clear:",
                                 "- deliveries id=1, column body: mobile number (written since the reset at "
                                 "test_leak.py::test_leaves_a_phone_for_the_last_scan, read at the session's end)",
                                 f"    回电 {MASKED_PHONE}", "*1 passed*"])
    assert PHONE not in result.stdout.str() + result.stderr.str()
