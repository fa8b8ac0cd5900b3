"""The compose stack is observed whole: Prometheus scrapes every API and worker container there is (and only
those), each on the port its process serves /metrics on; Grafana gets the provisioned data source, which
points at that Prometheus, and the dashboards; the loopback mapping of `make run` covers every target."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

from shared.devinfra.prometheus import CONFIG, local_config, loopback_targets

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())


def _targets() -> dict[str, tuple[str, str]]:
    """host:port → (job, process label) of deploy/prometheus/prometheus.yml."""
    config = yaml.safe_load(CONFIG.read_text())
    return {target: (job["job_name"], static["labels"]["process"])
            for job in config["scrape_configs"] for static in job["static_configs"] for target in static["targets"]}


def test_prometheus_scrapes_every_api_and_worker_container_on_its_metrics_port() -> None:
    targets = _targets()
    services = COMPOSE["services"]
    for target, (_job, process) in targets.items():
        host, port = target.rsplit(":", 1)
        assert host in services, f"{target}: no such container"
        if process == "worker":
            worker = importlib.import_module(f"services.{host.removesuffix('-worker')}.worker")
            assert int(port) == worker.HEALTH_PORT, target
    commands = {name: " ".join(spec.get("command", [])) for name, spec in services.items()}
    apis = {name for name, command in commands.items() if "uvicorn" in command}
    workers = {name for name, command in commands.items() if ".worker" in command}
    assert apis and workers
    assert {t.split(":")[0] for t, (_, p) in targets.items() if p == "api"} == apis
    assert {t.split(":")[0] for t, (_, p) in targets.items() if p == "worker"} == workers
    assert all("--port 8000" in commands[a] for a in apis)


def test_grafana_is_provisioned_with_the_data_source_and_the_dashboards() -> None:
    grafana = COMPOSE["services"]["grafana"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in grafana["volumes"]}
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"
    assert mounts["/var/lib/grafana/dashboards"] == "./grafana/dashboards"
    source = yaml.safe_load((ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yaml")
                            .read_text())["datasources"][0]
    assert source["url"] == "http://prometheus:9090" and "prometheus" in COMPOSE["services"]
    assert "9090:9090" in COMPOSE["services"]["prometheus"]["ports"]


def test_make_run_maps_every_target_and_refuses_an_unmapped_one() -> None:
    mapped = loopback_targets("127.0.0.1", 8001, 9101, 9902)
    config = local_config(mapped, "1s")
    local = [t for job in config["scrape_configs"] for s in job["static_configs"] for t in s["targets"]]
    assert sorted(local) == sorted(mapped[t] for t in _targets())
    assert mapped["terminals:8000"] == "127.0.0.1:8006" and mapped["identity-worker:9105"] == "127.0.0.1:9105"
    del mapped["notify-worker:9104"]
    try:
        local_config(mapped)
    except KeyError as refused:
        assert "notify-worker:9104" in str(refused)
    else:
        raise AssertionError("a target with no local address was accepted")
