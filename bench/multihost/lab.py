"""The hosts of the multi-host run and what each starts: the same command lines as `make run`
(`deploy.commands`), each process with only its own host's folder and the services' addresses."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests

from bench.multihost import data_host
from deploy import commands
from deploy.local_services import stop_processes
from deploy.netns import Host, Network

ROOT = Path(__file__).resolve().parents[2]
HOSTS = ("data", "web", "infer1", "infer2", "train", "client")
WEB_PORT, LIVE_PORT, HEALTH_PORT = 8000, 8001, 9100
ADMIN, ADMIN_PASSWORD = "lab-admin", "lab-admin-password-2026"


class Lab:
    """The hosts of one run, and every process started on them."""

    def __init__(self, network: Network, settings: dict[str, str]) -> None:
        self.network = network
        self.hosts = network.hosts
        self.settings = settings
        self.processes: list[subprocess.Popen] = []

    @property
    def data(self) -> Host:
        return self.hosts["data"]

    @property
    def web_url(self) -> str:
        return f"http://{self.hosts['web'].address}:{WEB_PORT}"

    @property
    def live_url(self) -> str:
        """Where the results pages' sockets connect: no proxy is in front of the web host."""
        return f"ws://{self.hosts['web'].address}:{LIVE_PORT}"

    def log(self, host: Host, name: str) -> Path:
        return host.folder / f"{name}.log"

    def env(self, host: Host, **extra: str) -> dict[str, str]:
        """A role's whole environment, made from nothing: the services by address on the data host,
        this host's own folders; nothing inherited that could point at this machine's loopback."""
        data = self.data.address
        (host.folder / "metrics").mkdir(parents=True, exist_ok=True)
        return {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": str(host.folder),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "DJANGO_SETTINGS_MODULE": "webapp.config.settings",
            "SKINSIGHT_VAR_DIR": str(host.folder / "var"),
            "PROMETHEUS_MULTIPROC_DIR": str(host.folder / "metrics"),
            "DATABASE_URL": f"postgres://skinsight@{data}:{data_host.POSTGRES_PORT}/skinsight",
            "REDIS_URL": f"redis://:{data_host.REDIS_PASSWORD}@{data}:{data_host.REDIS_PORT}/0",
            "S3_ENDPOINT_URL": f"http://{data}:{data_host.S3_PORT}",
            "S3_BUCKET": data_host.BUCKET,
            "S3_ACCESS_KEY_ID": data_host.S3_ACCESS_KEY,
            "S3_SECRET_ACCESS_KEY": data_host.S3_SECRET_KEY,
            "DJANGO_ALLOWED_HOSTS": self.hosts["web"].address,
            "ADMIN_USERNAME": ADMIN,
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            **self.settings,
            **extra,
        }

    def spawn(self, host: Host, name: str, argv: list[str], **extra: str) -> subprocess.Popen:
        process = host.spawn(argv, self.env(host, **extra), self.log(host, name))
        self.processes.append(process)
        return process

    def manage(self, host: Host, *args: str, timeout: float = 300) -> str:
        return host.run([sys.executable, str(ROOT / "manage.py"), *args], self.env(host), timeout)

    # --- roles ------------------------------------------------------------------------------------

    def start_services(self, timeout: float = 120) -> None:
        host = self.data
        argv = [sys.executable, "-m", "bench.multihost.data_host", host.address,
                self.network.cidr, str(host.folder)]  # fmt: skip
        process = self.spawn(host, "services", argv)
        wait_for(lambda: "READY" in self.log(host, "services").read_text(), timeout,
                 "the services host", self.log(host, "services"), process)  # fmt: skip

    def start_web(self, bundle: Path) -> None:
        host = self.hosts["web"]
        self.manage(host, "migrate", "--noinput", "-v", "0")
        self.manage(host, "collectstatic", "--noinput", "-v", "0")
        self.manage(host, "ensure_admin")
        # The bundle is the web host's own file, as an operator's upload would be.
        copy = host.folder / "bundle"
        shutil.copytree(bundle, copy, dirs_exist_ok=True)
        self.manage(host, "import_model", str(copy), "--activate", "--name", "lab-first")
        process = self.spawn(host, "web", commands.ROLES["web"](), PORT=str(WEB_PORT),
                             LIVE_PORT=str(LIVE_PORT))  # fmt: skip
        wait_for(lambda: _answers(f"{self.web_url}/healthz"), 90, "the web host",
                 self.log(host, "web"), process)  # fmt: skip
        live = self.spawn(host, "live", commands.ROLES["live"](), PORT=str(LIVE_PORT))
        live_health = self.live_url.replace("ws://", "http://", 1) + "/healthz"
        wait_for(lambda: _answers(live_health), 90, "the web host's live server",
                 self.log(host, "live"), live)  # fmt: skip

    def start_inference(self, name: str) -> subprocess.Popen:
        host = self.hosts[name]
        process = self.spawn(host, "inference", commands.inference_worker("inference", 1),
                             WORKER_METRICS_PORT=str(HEALTH_PORT))  # fmt: skip
        self.wait_inference_warm(name, process)
        return process

    def wait_inference_warm(self, name: str, process=None, timeout: float = 180) -> None:
        host = self.hosts[name]
        url = f"http://{host.address}:{HEALTH_PORT}/healthz"
        wait_for(lambda: _answers(url), timeout, f"the inference worker on {name}",
                 self.log(host, "inference"), process)  # fmt: skip

    def inference_health(self, name: str) -> dict:
        host = self.hosts[name]
        return requests.get(f"http://{host.address}:{HEALTH_PORT}/healthz", timeout=5).json()

    def inference_metrics(self, name: str) -> str:
        host = self.hosts[name]
        return requests.get(f"http://{host.address}:{HEALTH_PORT}/metrics", timeout=5).text

    def start_training_host(self) -> None:
        """The training worker, the heat-map worker and the scheduler."""
        host = self.hosts["train"]
        self.spawn(host, "training", commands.training_worker("training"),
                   TRAINING_WORK_DIR=str(host.folder / "training"))  # fmt: skip
        self.spawn(host, "explain", commands.explain_worker("explain"))
        self.spawn(host, "scheduler", commands.beat(str(host.folder / "celerybeat-schedule")))

    def stop(self) -> None:
        """Each process with its children (worker pools), as `make run` stops them."""
        stop_processes(self.processes)

    def describe(self) -> dict:
        return {name: host.address for name, host in self.hosts.items()}


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=3).ok
    except requests.RequestException:
        return False


def wait_for(ready, timeout: float, what: str, log: Path, process=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
    state = "exited" if process is not None and process.poll() is not None else "not ready"
    raise RuntimeError(f"{what}: {state} after {timeout:.0f} s; its log ends:\n{tail}")
