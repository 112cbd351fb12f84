"""Hosts made on this machine: Linux network namespaces joined by a switch of their own.

Each host is a network namespace with one link (``eth0``) to a bridge that lives in a namespace of its
own, so hosts reach each other only over that switch, and never the machine's own network or another
host's loopback. Each host's processes also get a mount namespace in which ``/tmp`` is private and
holds only the host's own folder: no host sees another's files. Cutting a host downs its link, as
pulling its cable would. Needs root and iproute2 (``ip``), util-linux (``unshare``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Mount the host's own folder at the same path over a fresh, private /tmp, then run the command.
# Its hostname is its own too (a UTS namespace): Celery names its workers after it.
_PRIVATE_TMP = (
    'hostname "$SKINSIGHT_HOST_NAME" && mkdir -p "$SKINSIGHT_HOST_DIR"'
    ' && mount --bind "$SKINSIGHT_HOST_DIR" /mnt'
    ' && mount -t tmpfs -o mode=1777 tmpfs /tmp && mkdir -p "$SKINSIGHT_HOST_DIR"'
    ' && mount --move /mnt "$SKINSIGHT_HOST_DIR" && exec "$@"'
)


CLONE_NEWNET = 0x40000000


class NetnsError(RuntimeError):
    pass


def available() -> str | None:
    """Why hosts cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "unshare", "mount"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"`ip netns` does not work here: {probe.stderr.strip()}"
    return None


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass(frozen=True)
class Host:
    name: str
    namespace: str
    address: str
    folder: Path  # its own files; the only part of /tmp its processes see

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run on this host: its network, its hostname, its own files only."""
        return ["ip", "netns", "exec", self.namespace,
                "unshare", "--mount", "--uts", "--propagation", "private",
                "sh", "-c", _PRIVATE_TMP, "sh", *argv]  # fmt: skip

    def _env(self, env: dict[str, str]) -> dict[str, str]:
        (self.folder / "tmp").mkdir(parents=True, exist_ok=True)
        return {**env, "SKINSIGHT_HOST_DIR": str(self.folder), "SKINSIGHT_HOST_NAME": self.name,
                "TMPDIR": str(self.folder / "tmp")}  # fmt: skip

    def spawn(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        """Start ``argv`` on this host, its output in ``log``, in a session of its own."""
        env = self._env(env)
        with log.open("ab") as out:
            return subprocess.Popen(
                self.command(argv), env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def run(self, argv: list[str], env: dict[str, str], timeout: float = 300) -> str:
        """Run ``argv`` on this host to its end; what it printed. Raises with its output if it failed."""
        done = subprocess.run(
            self.command(argv), env=self._env(env), capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise NetnsError(
                f"on {self.name}: {shlex.join(argv)} exited {done.returncode}\n"
                f"{(done.stdout + done.stderr)[-3000:]}"
            )
        return done.stdout

    def cut(self) -> None:
        """Down this host's link: it can reach no one, and no one it."""
        _ip("-n", self.namespace, "link", "set", "eth0", "down")

    def reconnect(self) -> None:
        _ip("-n", self.namespace, "link", "set", "eth0", "up")


def enter(namespace: str) -> None:
    """Move the calling thread (and the threads it starts after) onto a host's network: the
    operator's console of a run sits on a host of the network like any client."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    with open(f"/var/run/netns/{namespace}") as handle:
        if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
            raise NetnsError(f"setns({namespace}): {os.strerror(ctypes.get_errno())}")


class Network:
    """``with Network(tag, folder) as net``: hosts on 10.<n>.0.0/24, removed with everything in them
    on exit (a namespace's processes are killed before it is deleted)."""

    def __init__(self, tag: str, folder: Path, subnet: str = "10.77.0") -> None:
        self.tag = tag
        self.folder = folder
        self.subnet = subnet
        self.switch = f"{tag}-switch"
        self.hosts: dict[str, Host] = {}

    @property
    def cidr(self) -> str:
        return f"{self.subnet}.0/24"

    def __enter__(self) -> Network:
        self.remove_leftovers()
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "add", "switch", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "switch", "up")
        return self

    def add_host(self, name: str) -> Host:
        number = len(self.hosts) + 2
        host = Host(name, f"{self.tag}-{name}", f"{self.subnet}.{number}", self.folder / name)
        host.folder.mkdir(parents=True, exist_ok=True)
        _ip("netns", "add", host.namespace)
        _ip("link", "add", "eth0", "netns", host.namespace, "type", "veth",
            "peer", "name", name, "netns", self.switch)  # fmt: skip
        _ip("-n", self.switch, "link", "set", name, "master", "switch", "up")
        _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _ip("-n", host.namespace, "link", "set", "eth0", "up")
        _ip("-n", host.namespace, "link", "set", "lo", "up")
        self.hosts[name] = host
        return host

    def _namespaces(self) -> list[str]:
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        return [line.split()[0] for line in listed.splitlines() if line.startswith(f"{self.tag}-")]

    def remove_leftovers(self) -> None:
        """Kill what runs in, and delete, every namespace of this tag (an earlier run's too)."""
        for namespace in self._namespaces():
            pids = subprocess.run(
                ["ip", "netns", "pids", namespace], capture_output=True, text=True
            ).stdout.split()
            for pid in pids:
                if pid == str(os.getpid()):
                    continue  # the operator's console, when it sits on a host it is removing
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), 9)
            subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)

    def __exit__(self, *exc) -> None:
        self.remove_leftovers()
