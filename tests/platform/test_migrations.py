"""Every service's Alembic tree (its own revisions plus the shared `platform` and `center_copy` branches):
upgrade head, downgrade base, upgrade head, and `alembic check` (models and migrations agree); ten
processes migrating one fresh database at once do not race. A database migrated by the trees before
issue 17 (frozen in old_migrations/) upgrades to the new layout with every row kept, to the same schema
and revisions as a fresh one."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config

from shared import migrate
from shared.db import asyncpg_dsn, ensure_database
from tests.conftest import RUN_ID, database_url, drop_database, in_thread

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.pg

OLD_TREES = Path(__file__).resolve().parent / "old_migrations"
# the copied revisions of every tree as of commit c6049d7 (checked identical to it, but for "Create Date",
# when frozen): the layout that deployed databases were migrated with
OLD_LOCATIONS = {"queue": ("all", "queue"), "cases": ("all", "read_copies"),
                 "monitor": ("all", "read_copies"), "notify": ("all", "read_copies")}
OLD_HEADS = {"queue": "0003", "cases": "0004", "monitor": "0004", "notify": "0004"}


def _fresh(pg_server: str, name: str) -> str:
    url = database_url(pg_server, f"t{RUN_ID}_{name}")

    def make() -> None:
        asyncio.run(drop_database(url))
        asyncio.run(ensure_database(url))

    in_thread(make)
    return url


def _drop(url: str) -> None:
    in_thread(lambda: asyncio.run(drop_database(url)))


def _fetch(url: str, sql: str, *args: object) -> list[tuple]:
    import asyncpg

    async def fetch() -> list[tuple]:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            return [tuple(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return in_thread(lambda: asyncio.run(fetch()))


def _execute(url: str, sql: str) -> None:
    import asyncpg

    async def execute() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    in_thread(lambda: asyncio.run(execute()))


def _tables(url: str) -> set[str]:
    return {name for (name,) in _fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def _versions(url: str) -> list[str]:
    return [v for (v,) in _fetch(url, "SELECT version_num FROM alembic_version ORDER BY 1")]


def _schema(url: str) -> dict[str, list[tuple]]:
    """Everything `alembic check` and the services see: relations and their comments, columns (type,
    nullability, default, identity, comment), constraints and indexes with their definitions."""
    return {
        "relations": _fetch(url, """
            SELECT c.relname, c.relkind::text, obj_description(c.oid, 'pg_class') FROM pg_class c
            WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1"""),
        "columns": _fetch(url, """
            SELECT table_name, column_name, ordinal_position, data_type, character_maximum_length,
                   is_nullable, column_default, is_identity, identity_generation,
                   col_description(format('%I.%I', table_schema, table_name)::regclass, ordinal_position)
            FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 3"""),
        "constraints": _fetch(url, """
            SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"""),
        "indexes": _fetch(url, """
            SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2"""),
    }


def _columns(url: str) -> dict[str, list[str]]:
    return {t: [c for (c,) in _fetch(url, "SELECT column_name FROM information_schema.columns WHERE "
                                          "table_schema = 'public' AND table_name = $1 ORDER BY 1", t)]
            for t in sorted(_tables(url) - {"alembic_version"})}


def _rows(url: str, columns: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Every row of every table (as JSON text), and where each identity sequence stands; with `columns`
    (another database's `_columns`), only those tables and columns and the sequences of those tables, so
    that what a later revision adds (a column with its default, a new table) is not counted as a change."""
    columns = columns or _columns(url)
    rows = {}
    for table, names in columns.items():
        listed = ", ".join(f'"{n}"' for n in names)
        rows[table] = [r for (r,) in _fetch(
            url, f'SELECT to_jsonb(t)::text FROM (SELECT {listed} FROM "{table}") t ORDER BY 1')]
    rows["(sequences)"] = [f"{name}={value}" for name, value in _fetch(
        url, "SELECT s.sequencename, s.last_value FROM pg_sequences s WHERE s.schemaname = 'public' AND EXISTS "
             "(SELECT 1 FROM pg_depend d JOIN pg_class c ON c.oid = d.objid JOIN pg_class t ON t.oid = d.refobjid "
             "WHERE c.relname = s.sequencename AND t.relname = ANY($1::text[])) ORDER BY 1", list(columns))]
    return rows


# one row or more in every table of the old schema: platform tables first, then the service's centres
PLATFORM_ROWS = """
INSERT INTO daily_counters VALUES ('ticket:C1', '2026-02-12', 41);
INSERT INTO idempotency_keys VALUES ('admin POST /centers', 'key-1', decode(repeat('ab', 32), 'hex'), 201,
    '{"id": "C1"}', '2026-02-12T01:00:00Z');
INSERT INTO outbox (id, type, topic, key, reference_key, envelope, created_at, sent_at) VALUES
    ('7c0a6c4e-0000-4000-8000-000000000001', 'center.upserted', 'hall.queue.v1', 'C1', 'center:C1',
     '{"type": "center.upserted", "payload": {"id": "C1"}}', '2026-02-12T01:00:00Z', '2026-02-12T01:00:01Z'),
    ('7c0a6c4e-0000-4000-8000-000000000002', 'calendar.changed', 'hall.cases.v1', 'year:2027', NULL,
     '{"type": "calendar.changed"}', '2026-02-12T01:00:02Z', NULL);
INSERT INTO inbox VALUES ('centers', '7c0a6c4e-0000-4000-8000-000000000001', '2026-02-12T01:00:03Z');
INSERT INTO dead_letters (consumer, key, event_id, kind, envelope, error, created_at) VALUES
    ('centers', 'C2', '7c0a6c4e-0000-4000-8000-000000000003', 'poison', '{"type": "center.upserted"}',
     'ValueError: no sequence', '2026-02-12T01:00:04Z');
INSERT INTO timers (kind, key, due_at, payload, created_at, attempts) VALUES
    ('case.warning', 'case-1', '2026-02-20T01:00:00Z', '{"case": "case-1"}', '2026-02-12T01:00:00Z', 2);
INSERT INTO periodic_jobs VALUES ('outbox.cleanup', '2026-02-12T00:00:00Z', '2026-02-12T00:00:05Z');
INSERT INTO platform_state VALUES ('relay.cluster_id', '"cluster-a"', '2026-02-12T01:00:00Z');
INSERT INTO calendar_scopes VALUES ('center:C1', 3, NULL, '2026-02-12T01:00:00Z');
INSERT INTO calendar_overrides VALUES ('C1', '2026-02-13', false, '台风停工');
INSERT INTO calendar_years VALUES (2027, '[{"date": "2027-01-01", "kind": "holiday", "name": "元旦"}]',
    '2026-02-12T01:00:00Z');
INSERT INTO audit_log (at, actor, action, entity, entity_id, center_id, before, after, reason) VALUES
    ('2026-02-12T01:00:00Z', 'center_admin:u1', 'calendar.override', 'calendar', 'C1', 'C1', NULL,
     '{"day": "2026-02-13", "working": false}', '台风');
"""
CENTER_ROWS = {
    "queue": "INSERT INTO centers VALUES ('C1', '县行政服务中心', '人民路 1 号', '2026-02-01T01:00:00Z', "
             "'2026-02-12T01:00:00Z');",
    "read copy": "INSERT INTO centers VALUES ('C1', '县行政服务中心', NULL, '2026-02-12T01:00:00Z', 1);",
}


def _old_config(service: str, url: str) -> Config:
    """The service's tree as it was before issue 17."""
    cfg = Config()
    cfg.set_main_option("script_location", str(OLD_TREES))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(str(OLD_TREES / d) for d in OLD_LOCATIONS[service]))
    cfg.attributes["url"] = url
    cfg.attributes["service"] = service
    return cfg


def _old_database(pg_server: str, service: str, name: str, revision: str | None = None) -> str:
    """A database migrated by the service's old tree (to its head, then holding rows in every table)."""
    url = _fresh(pg_server, name)
    in_thread(command.upgrade, _old_config(service, url), revision or OLD_HEADS[service])
    if revision is None:
        _execute(url, PLATFORM_ROWS + CENTER_ROWS["queue" if service == "queue" else "read copy"])
    return url


def _upgrade_in_processes(service: str, url: str, count: int) -> None:
    code = f"from shared.migrate import upgrade; upgrade({service!r}, {url!r})"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
             for _ in range(count)]
    outputs = [p.communicate(timeout=240)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * count, "\n".join(outputs)


old_columns: dict[str, dict[str, list[str]]] = {}  # url -> the tables and columns before its upgrade


@pytest.fixture(scope="module")
def upgraded_old(pg_server):
    """`upgraded_old("cases")`: (url, rows before) of an old-layout database with rows, upgraded once."""
    made: dict[str, tuple[str, dict[str, list[str]]]] = {}

    def get(service: str) -> tuple[str, dict[str, list[str]]]:
        if service not in made:
            url = _old_database(pg_server, service, f"mig_old_{service}")
            before = _rows(url)
            assert all(before.values()), f"a table of the old {service} schema holds no row: {before}"
            old_columns[url] = _columns(url)
            in_thread(migrate.upgrade, service, url)
            made[service] = url, before
        return made[service]

    yield get
    for url, _ in made.values():
        _drop(url)


@pytest.mark.parametrize("service", migrate.SERVICES_WITH_DB)
def test_upgrade_downgrade_upgrade_and_check(pg_server, service):
    url = _fresh(pg_server, f"mig_{service}")
    try:
        in_thread(migrate.upgrade, service, url)
        owned = {"identity": {"users", "device_keys"}}.get(service, {"centers"})
        assert {"outbox", "inbox", "daily_counters"} | owned <= _tables(url)
        in_thread(migrate.check, service, url)
        in_thread(migrate.downgrade, service, url)
        assert _tables(url) <= {"alembic_version"}
        in_thread(migrate.upgrade, service, url)
        in_thread(migrate.check, service, url)
    finally:
        _drop(url)


def test_check_fails_when_a_model_has_no_migration(pg_server):
    from sqlalchemy import Column, Integer, Table

    from shared import tables

    url = _fresh(pg_server, "mig_drift")
    extra = Table("not_migrated", tables.metadata, Column("id", Integer, primary_key=True))
    try:
        in_thread(migrate.upgrade, "monitor", url)
        with pytest.raises(Exception, match="not_migrated|New upgrade operations"):
            in_thread(migrate.check, "monitor", url)
    finally:
        tables.metadata.remove(extra)
        _drop(url)


def test_ten_processes_migrating_at_once_do_not_race(pg_server):
    url = _fresh(pg_server, "mig_race")
    try:
        _upgrade_in_processes("queue", url, 10)
        assert {"centers", "outbox"} <= _tables(url)
    finally:
        _drop(url)


@pytest.mark.parametrize("service", OLD_HEADS)  # the services deployed before issue 17
def test_an_old_database_keeps_every_row_through_the_upgrade(upgraded_old, service):
    url, before = upgraded_old(service)
    assert _rows(url, old_columns[url]) == before


@pytest.mark.parametrize("service", OLD_HEADS)  # the services deployed before issue 17
def test_an_upgraded_old_database_has_the_schema_and_revisions_of_a_fresh_one(upgraded_old, service_databases,
                                                                              service):
    url, _ = upgraded_old(service)
    fresh = service_databases(service).url
    assert _versions(url) == _versions(fresh)
    assert _schema(url) == _schema(fresh)


@pytest.mark.parametrize("service", OLD_HEADS)  # the services deployed before issue 17
def test_alembic_check_finds_no_drift_in_an_upgraded_old_database(upgraded_old, service):
    url, _ = upgraded_old(service)
    in_thread(migrate.check, service, url)


@pytest.mark.parametrize("service", OLD_HEADS)  # the services deployed before issue 17
def test_upgrading_an_upgraded_old_database_again_changes_nothing(upgraded_old, service):
    url, _ = upgraded_old(service)
    before = _versions(url), _schema(url), _rows(url)
    in_thread(migrate.upgrade, service, url)
    assert (_versions(url), _schema(url), _rows(url)) == before


@pytest.mark.parametrize("service", OLD_HEADS)  # the services deployed before issue 17
def test_an_upgraded_old_database_downgrades_to_base(pg_server, service):
    url = _old_database(pg_server, service, f"mig_old_down_{service}")
    try:
        in_thread(migrate.upgrade, service, url)
        in_thread(migrate.downgrade, service, url)
        assert _tables(url) <= {"alembic_version"}
        assert _versions(url) == []
    finally:
        _drop(url)


@pytest.mark.parametrize(("service", "old_revision"), [
    (service, revision) for service, revisions in migrate.LEGACY_REVISIONS.items()
    for revision in revisions if revision != OLD_HEADS[service]])
def test_an_old_database_below_its_old_head_upgrades_like_a_fresh_one(pg_server, service_databases, service,
                                                                      old_revision):
    url = _old_database(pg_server, service, f"mig_old_{service}_{old_revision}", old_revision)
    try:
        in_thread(migrate.upgrade, service, url)
        fresh = service_databases(service).url
        assert (_versions(url), _schema(url)) == (_versions(fresh), _schema(fresh))
    finally:
        _drop(url)


def test_processes_upgrading_an_old_database_at_once_do_not_race(pg_server, service_databases):
    url = _old_database(pg_server, "queue", "mig_old_race")
    try:
        before, columns = _rows(url), _columns(url)
        _upgrade_in_processes("queue", url, 5)
        assert _versions(url) == _versions(service_databases("queue").url)
        assert _rows(url, columns) == before
    finally:
        _drop(url)


def test_the_migrate_command_needs_only_the_database_urls(pg_server):
    """What compose's `migrate` container and Kubernetes' `hall-migrate` Job hold: five URLs, no key."""
    urls = {service: database_url(pg_server, f"t{RUN_ID}_cli_{service}") for service in migrate.SERVICES_WITH_DB}
    in_thread(lambda: [asyncio.run(drop_database(u)) for u in urls.values()])
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
           **{f"{service.upper()}_DATABASE_URL": url for service, url in urls.items()}}
    ran = subprocess.run([sys.executable, "-m", "shared.migrate", "upgrade"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.splitlines() == [f"{service}: upgrade ok" for service in migrate.SERVICES_WITH_DB]
    for url in urls.values():
        assert _tables(url) >= {"outbox", "inbox", "alembic_version"}
    in_thread(lambda: [asyncio.run(drop_database(u)) for u in urls.values()])
