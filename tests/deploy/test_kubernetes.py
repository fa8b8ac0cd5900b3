"""deploy/k8s, the kustomize base: every file it lists exists and every object validates strictly against the
Kubernetes schemas kubernetes-validate bundles (and the Secret template too); the manifests agree with the
code: the image, each process's command, port and probes on paths it serves, every environment variable a
setting the process reads and every required one given, Services, autoscalers and disruption budgets on pods
that exist, the migration Job from the database URLs alone, the topics Job with every topic; secrets come
only from Secrets whose template holds placeholders, private keys only where they belong; every container is
non-root, read-only, without privilege escalation or capabilities, and has requests and limits."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from shared.app import platform_router
from shared.events.topics import TOPICS
from shared.migrate import SERVICES_WITH_DB
from shared.settings import HallSettings, KafkaSettings, database_url_of
from shared.worker import HealthServer, WorkerOptions
from tests.deploy.support import env_names, process_of

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())
TEMPLATE = K8S / "secrets.template.yaml"
PLACEHOLDER = "REPLACE-ME"
IMAGE = "hall-platform"
ENVOY_IMAGE = "envoyproxy/envoy:"
APIS = (*SERVICES_WITH_DB, "terminals")
PRIVATE_KEYS = {"NOTIFY_SEAL_PRIVATE_KEY": "notify", "IDENTITY_JWT_PRIVATE_KEY": "identity"}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


OBJECTS = [doc for name in KUSTOMIZATION["resources"] if (K8S / name).is_file() for doc in _documents(K8S / name)]
SECRETS = {doc["metadata"]["name"]: doc for doc in _documents(TEMPLATE)}


def _of_kind(kind: str) -> dict[str, dict[str, Any]]:
    found = [doc for doc in OBJECTS if doc["kind"] == kind]
    names = [doc["metadata"]["name"] for doc in found]
    assert len(names) == len(set(names)), (kind, names)
    return {doc["metadata"]["name"]: doc for doc in found}


DEPLOYMENTS, JOBS, CONFIGMAPS = _of_kind("Deployment"), _of_kind("Job"), _of_kind("ConfigMap")


def _pod(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def _process(container: dict[str, Any]) -> tuple[str, str] | None:
    return process_of(container.get("command", []))


PROCESSES = {(name, c["name"]): (_process(c), c, _pod(d)) for name, d in DEPLOYMENTS.items()
             for c in _pod(d)["containers"] if _process(c)}


def _environment(container: dict[str, Any]) -> dict[str, str]:
    """The variables a container gets, with their values (the template's placeholders for secrets); every
    ConfigMap, Secret and key it names must exist."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            values = CONFIGMAPS[source["configMapRef"]["name"]]["data"]
        else:
            values = SECRETS[source["secretRef"]["name"]]["stringData"]
        env |= {source.get("prefix", "") + key: str(value) for key, value in values.items()}
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
            continue
        ref = entry["valueFrom"]
        if "configMapKeyRef" in ref:
            env[entry["name"]] = str(CONFIGMAPS[ref["configMapKeyRef"]["name"]]["data"][ref["configMapKeyRef"]["key"]])
        else:
            env[entry["name"]] = SECRETS[ref["secretKeyRef"]["name"]]["stringData"][ref["secretKeyRef"]["key"]]
    return env


def _port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port, by number or by the container port's name."""
    if isinstance(port, int):
        assert port in {p["containerPort"] for p in container["ports"]}, (container["name"], port)
        return port
    return next(p["containerPort"] for p in container["ports"] if p["name"] == port)


def _selects(selector: dict[str, str], workload: dict[str, Any]) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in selector.items())


def test_every_listed_file_exists_and_every_object_validates_strictly() -> None:
    assert KUSTOMIZATION["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and KUSTOMIZATION["kind"] == "Kustomization"
    assert KUSTOMIZATION["namespace"] == "hall"
    assert {"app.kubernetes.io/part-of": "hall-platform"} in [entry["pairs"] for entry in KUSTOMIZATION["labels"]]
    assert [image["name"] for image in KUSTOMIZATION["images"]] == [IMAGE]  # the release is set in one place
    listed = KUSTOMIZATION["resources"]
    assert all((K8S / name).is_file() for name in listed), [n for n in listed if not (K8S / n).is_file()]
    stray = {p.name for p in K8S.glob("*.yaml")} - set(listed) - {"kustomization.yaml", TEMPLATE.name}
    assert not stray, f"manifests the kustomization does not apply: {stray}"
    assert TEMPLATE.name not in listed  # `kubectl apply -k` must never put placeholders over the real Secrets
    assert {"Namespace", "ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "Job"} == {doc["kind"] for doc in OBJECTS}
    version = kubernetes_validate.latest_version()  # the CLI's default
    for doc in [*OBJECTS, *SECRETS.values()]:
        kubernetes_validate.validate(doc, version, strict=True)


def test_each_process_runs_our_image_with_its_command_and_probes_on_paths_it_serves() -> None:
    assert sorted(p for p, _, _ in PROCESSES.values()) == sorted(  # type: ignore[type-var]
        [("api", s) for s in APIS] + [("worker", s) for s in SERVICES_WITH_DB])
    api_paths = {route.path for route in platform_router("probe").routes}  # type: ignore[attr-defined]
    worker_paths = {route.path for route in HealthServer("probe", None, "").app.routes}  # type: ignore[arg-type, attr-defined]
    assert {"/healthz", "/readyz", "/metrics"} <= api_paths & worker_paths
    for workload in [*DEPLOYMENTS.values(), *JOBS.values()]:
        for container in _pod(workload)["containers"]:
            image = container["image"]
            assert image == f"{IMAGE}:latest" or image.startswith(ENVOY_IMAGE), (workload["metadata"]["name"], image)
    for (name, _), (process, container, pod) in PROCESSES.items():
        kind, service = process  # type: ignore[misc]
        env = _environment(container)
        if kind == "api":
            assert callable(importlib.import_module(f"services.{service}.main").create_app)
            assert container["command"] == ["uvicorn", "--factory", f"services.{service}.main:create_app",
                                            "--host", "0.0.0.0", "--port", "8000"], name
            assert container["ports"] == [{"name": "http", "containerPort": 8000}], name
            port, paths = 8000, api_paths
            assert name == f"hall-{service}" and "replicas" not in DEPLOYMENTS[name]["spec"], name  # the HPA's
        else:
            assert container["command"] == ["python", "-m", f"services.{service}.worker"], name
            port = int(env.get("WORKER_HEALTH_PORT", importlib.import_module(f"services.{service}.worker").HEALTH_PORT))
            assert [p["containerPort"] for p in container["ports"]] == [port], name
            paths = worker_paths
            assert name == f"hall-{service}-worker" and DEPLOYMENTS[name]["spec"]["replicas"] == 2, name
        probes = {k: container[f"{k}Probe"]["httpGet"] for k in ("startup", "liveness", "readiness")}
        assert {k: _port(container, p["port"]) for k, p in probes.items()} == dict.fromkeys(probes, port), name
        assert (probes["liveness"]["path"], probes["readiness"]["path"]) == ("/healthz", "/readyz"), name
        assert {p["path"] for p in probes.values()} <= paths
        annotations = DEPLOYMENTS[name]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] in paths
        assert int(annotations["prometheus.io/port"]) == port, name
        assert pod.get("enableServiceLinks") is False, name  # no HALL_<SERVICE>_PORT=tcp://... beside the settings


def test_services_autoscalers_and_budgets_point_at_pods_that_exist() -> None:
    services = _of_kind("Service")
    for name, service in services.items():
        targets = [d for d in DEPLOYMENTS.values() if _selects(service["spec"]["selector"], d)]
        assert len(targets) == 1, (name, [t["metadata"]["name"] for t in targets])
        ports = {p["name"]: p["containerPort"] for c in _pod(targets[0])["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            target = ports.get(port["targetPort"], port["targetPort"])
            assert target in ports.values(), (name, port)
            if service["spec"].get("clusterIP") == "None":  # no proxy: a client connects to the pod's own port
                assert port["port"] == target, (name, port)
    # the gateway's Envoy resolves each service by its Service's name: headless, so that it sees every pod
    from shared.devinfra import envoy

    upstreams = {up.name: up for up in envoy.profile_values("kubernetes").upstreams}
    assert set(upstreams) == set(APIS)
    for api, upstream in upstreams.items():
        assert upstream.host == f"hall-{api}" and services[upstream.host]["spec"]["clusterIP"] == "None", api
    hpas = _of_kind("HorizontalPodAutoscaler")
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()} == {f"hall-{api}" for api in APIS}
    for name, hpa in hpas.items():
        spec = hpa["spec"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert name in DEPLOYMENTS and 2 <= spec["minReplicas"] < spec["maxReplicas"] <= 10, name
        assert spec["metrics"] == [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}], name
        assert "cpu" in _pod(DEPLOYMENTS[name])["containers"][0]["resources"]["requests"]  # what 70% is of
    budgets = _of_kind("PodDisruptionBudget")
    for name, budget in budgets.items():
        assert budget["spec"]["minAvailable"] == 1, name
        assert [d for d in DEPLOYMENTS.values() if _selects(budget["spec"]["selector"]["matchLabels"], d)], name
    assert {f"hall-{api}" for api in APIS} | {"hall-gateway"} <= set(budgets)


def test_the_gateway_connects_to_the_port_the_pods_listen_on() -> None:
    from shared.devinfra import envoy

    for upstream in envoy.profile_values("kubernetes").upstreams:
        container = _pod(DEPLOYMENTS[upstream.host])["containers"][0]
        assert upstream.port in {p["containerPort"] for p in container["ports"]}, (upstream.name, upstream.port)


def test_every_variable_is_a_setting_the_process_reads_and_every_required_one_is_given() -> None:
    hall, hall_required = env_names(HallSettings)
    worker_options, _ = env_names(WorkerOptions)
    for (name, _), (process, container, _pod_spec) in PROCESSES.items():
        kind, service = process  # type: ignore[misc]
        own, own_required = env_names(importlib.import_module(f"services.{service}.config").Settings)
        env = _environment(container)
        unknown = set(env) - hall - own - (worker_options if kind == "worker" else set())
        assert not unknown, (name, unknown)
        missing = (hall_required | own_required) - set(env)
        assert not missing, (name, missing)
        if service != "terminals":  # hall-migrate migrates; the terminals have no database
            assert env[f"{service.upper()}_MIGRATE_ON_START"] == "false", name
        for key in env:
            if key.endswith("_DATABASE_URL"):
                assert key == f"{service.upper()}_DATABASE_URL", (name, key)
        assert {k for k in env if k in PRIVATE_KEYS} == {k for k, owner in PRIVATE_KEYS.items() if owner == service}
        secret_keys = {k for s in SECRETS.values() for k in s["stringData"]}
        literal = {e["name"] for e in container.get("env", []) if "value" in e}
        assert not literal & secret_keys, (name, literal & secret_keys)  # secrets only from the Secrets


def test_the_migration_job_migrates_every_database_from_its_url_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    job = JOBS["hall-migrate"]
    assert job["spec"]["backoffLimit"] >= 1 and job["spec"]["ttlSecondsAfterFinished"] > 0
    assert _pod(job)["restartPolicy"] == "Never"
    (container,) = _pod(job)["containers"]
    env = _environment(container)
    assert set(env) == {f"{s.upper()}_DATABASE_URL" for s in SERVICES_WITH_DB}  # no keys, private or shared
    assert not container.get("envFrom") and all("secretKeyRef" in e["valueFrom"] for e in container["env"])
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # the command reads each URL alone (tests/platform/test_migrations.py runs it with nothing else set)
    assert container["command"] == ["python", "-m", "shared.migrate", "upgrade"], container["command"]
    for service in SERVICES_WITH_DB:
        settings = importlib.import_module(f"services.{service}.config").Settings
        assert database_url_of(settings) == env[f"{service.upper()}_DATABASE_URL"]


def test_the_topics_job_creates_every_topic_with_its_partitions() -> None:
    job = JOBS["hall-topics"]
    (container,) = _pod(job)["containers"]
    assert container["command"] == ["python", "-m", "shared.events.kafka", "ensure-topics"]  # every topic in TOPICS
    kafka, _ = env_names(KafkaSettings)
    assert set(_environment(container)) <= kafka
    listed = dict(entry.split("=") for entry in job["metadata"]["annotations"]["hall-platform/topics"].split())
    assert {name: int(n) for name, n in listed.items()} == {t.name: t.partitions for t in TOPICS.values()}
    assert job["spec"]["backoffLimit"] >= 1 and job["spec"]["ttlSecondsAfterFinished"] > 0
    setup = {(d["kind"], d["metadata"]["name"]) for d in OBJECTS
             if d["metadata"].get("labels", {}).get("hall-platform/stage") == "setup"}
    # `kubectl apply -k deploy/k8s -l hall-platform/stage=setup` applies what the Jobs need, and them
    assert setup == {("Namespace", "hall"), ("ConfigMap", "hall-config"), ("Job", "hall-migrate"), ("Job", "hall-topics")}


def test_the_secret_template_holds_placeholders_only_and_what_the_pods_read() -> None:
    referenced: set[tuple[str, str]] = set()
    for workload in [*DEPLOYMENTS.values(), *JOBS.values()]:
        pod = _pod(workload)
        for container in pod["containers"]:
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    secret = source["secretRef"]["name"]
                    referenced |= {(secret, key) for key in SECRETS[secret]["stringData"]}
            for entry in container.get("env", []):
                if ref := entry.get("valueFrom", {}).get("secretKeyRef"):
                    referenced.add((ref["name"], ref["key"]))
        for volume in pod.get("volumes", []):
            if secret := volume.get("secret"):
                referenced |= {(secret["secretName"], item["key"]) for item in secret["items"]}
    template = {(name, key) for name, s in SECRETS.items() for key in s["stringData"]}
    assert referenced == template, (referenced ^ template)
    for name, secret in SECRETS.items():
        assert "data" not in secret and secret["metadata"]["namespace"] == "hall", name
        assert all(PLACEHOLDER in value for value in secret["stringData"].values()), name
    assert not [d for d in OBJECTS if d["kind"] == "Secret"]
    text = "".join((K8S / name).read_text() for name in KUSTOMIZATION["resources"]) + TEMPLATE.read_text()
    assert "PRIVATE KEY-----" not in text


def _quantity(value: str | int) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    text = str(value)
    for unit, factor in units.items():
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def test_every_container_is_non_root_read_only_unprivileged_and_bounded() -> None:
    assert "USER nobody" in (ROOT / "deploy" / "Dockerfile").read_text()  # uid 65534
    for workload in [*DEPLOYMENTS.values(), *JOBS.values()]:
        pod = _pod(workload)
        name = workload["metadata"]["name"]
        assert pod.get("automountServiceAccountToken") is False, name
        for container in pod["containers"]:
            context = pod.get("securityContext", {}) | container.get("securityContext", {})
            assert context["runAsNonRoot"] is True and context["runAsUser"] != 0, name
            assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"] and "add" not in context["capabilities"], name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
            if container["image"].startswith(IMAGE):
                assert context["runAsUser"] == 65534, name  # the image's nobody
                mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
                assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == mounts["/tmp"]), name
            resources = container["resources"]
            for kind in ("cpu", "memory"):
                request, limit = resources["requests"][kind], resources["limits"][kind]
                assert 0 < _quantity(request) <= _quantity(limit), (name, kind, request, limit)
