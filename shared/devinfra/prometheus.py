"""Prometheus for `make run` and the observability tests: Debian's binary unpacked into .tools/ (`make
prometheus`), run on the scrape jobs of deploy/prometheus/prometheus.yml with the loopback ports put in for
the compose hosts, and the same alerting rules. One file describes what is scraped; here and in compose it
cannot differ but in addresses.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from shared.devinfra.processes import terminate, wait_http_ready

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
BINARY = ROOT / ".tools" / "prometheus" / "usr" / "bin" / "prometheus"
PROMTOOL = BINARY.with_name("promtool")

# the compose hosts in the order `make run` gives them ports: APIs from the first service port, workers from
# the worker health port base (shared.worker.SERVICE_ORDER)
API_HOSTS = ("queue", "cases", "monitor", "notify", "identity", "terminals")
WORKER_HOSTS = ("queue-worker", "cases-worker", "monitor-worker", "notify-worker", "identity-worker")


def loopback_targets(host: str, first_service_port: int, worker_port_base: int,
                     envoy_stats_port: int) -> dict[str, str]:
    """Each compose target (`queue:8000`, `queue-worker:9101`, `gateway:9902`) → its address under make run."""
    targets = {f"{name}:8000": f"{host}:{first_service_port + i}" for i, name in enumerate(API_HOSTS)}
    targets |= {f"{name}:{9101 + i}": f"{host}:{worker_port_base + i}" for i, name in enumerate(WORKER_HOSTS)}
    targets["gateway:9902"] = f"{host}:{envoy_stats_port}"
    return targets


def local_config(targets: Mapping[str, str], scrape_interval: str = "15s") -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with `targets` put in (every target must be mapped: a job added there
    and not here is an error, not a silent gap) and the rules file by its absolute path."""
    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    config["global"] = {**config.get("global", {}), "scrape_interval": scrape_interval,
                        "evaluation_interval": scrape_interval}
    config["rule_files"] = [str(PROMETHEUS_DIR / name) for name in config.get("rule_files", [])]
    for job in config["scrape_configs"]:
        job["scrape_timeout"] = scrape_interval
        for static in job["static_configs"]:
            missing = [t for t in static["targets"] if t not in targets]
            if missing:
                raise KeyError(f"no local address for {missing} (job {job['job_name']})")
            static["targets"] = [targets[t] for t in static["targets"]]
    return config


class EmbeddedPrometheus:
    """A Prometheus process on `config`, its data under `data_dir`; ready once /-/ready answers."""

    def __init__(self, config: dict[str, Any], data_dir: Path, host: str, port: int,
                 log_path: Path | None = None) -> None:
        self.config = config
        self.data_dir = data_dir
        self.host, self.port = host, port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60) -> None:
        if not BINARY.exists():
            raise FileNotFoundError(f"{BINARY} is missing: run `make prometheus`")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.data_dir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - the child's
        self.process = subprocess.Popen(
            [str(BINARY), f"--config.file={config_path}", f"--storage.tsdb.path={self.data_dir / 'data'}",
             f"--web.listen-address={self.host}:{self.port}", "--storage.tsdb.retention.time=15d",
             "--web.enable-lifecycle"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_http_ready(f"{self.url}/-/ready", self.process, "prometheus", timeout, interval=0.1)

    def stop(self) -> None:
        terminate(self.process, 20)
        self.process = None
