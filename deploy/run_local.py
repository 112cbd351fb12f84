"""`make run`: the whole portal on one machine.

Starts what is not configured (SQLite is Django's; Valkey for Redis; SeaweedFS for S3), migrates, creates the
admin account once, starts the Celery workers (inference, heat maps, training) and scheduler and the ASGI web server,
trains and activates a first model through the training queue when DATASET_DIR is set and no model is active,
writes the services' addresses to var/run.env for manage.py in another terminal,
and stops everything cleanly on Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from deploy import commands
from deploy.local_services import (
    RedisServer,
    S3Server,
    free_port,
    stop_processes,
    wait_for_port,
)
from deploy.run_env import remove_run_env, write_run_env

ROOT = Path(__file__).resolve().parents[1]
VAR = Path(os.environ.get("SKINSIGHT_VAR_DIR", ROOT / "var"))
PY = sys.executable


def say(message: str) -> None:
    print(f"[skinsight] {message}", flush=True)


def manage(*args: str, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, check=check, text=True, capture_output=quiet
    )


def launch(command: list[str], log: Path | None = None) -> subprocess.Popen:
    """A process in its own session (Ctrl-C reaches only the supervisor, which stops it in order);
    its output goes to ``log`` when given, else to this terminal."""
    if log is None:
        return subprocess.Popen(command, cwd=ROOT, start_new_session=True)
    with open(log, "ab") as output:
        return subprocess.Popen(
            command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


class Supervisor:
    def __init__(self, var: Path = VAR, log_dir: Path | None = None) -> None:
        self.var = var  # its services' data, SQLite, metrics and the scheduler's state
        # Each process's output in log_dir/<name>.log (benchmarks); None: this terminal.
        self.log_dir = log_dir
        self.services: list = []
        self.processes: list[tuple[str, subprocess.Popen]] = []
        # One-shot commands (training the first model): their end is reported, not fatal.
        self.jobs: list[tuple[str, subprocess.Popen]] = []
        self.stopping = False

    def start_services(self) -> None:
        self.var.mkdir(parents=True, exist_ok=True)
        # Every process of this portal sums its metrics in one folder: the web app's /metrics
        # shows the workers' too.
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(self.var / "metrics"))
        commands.fresh_metrics_dir()
        if "REDIS_URL" not in os.environ:
            port = int(os.environ.get("SKINSIGHT_REDIS_PORT", "0")) or free_port()
            redis = RedisServer(self.var / "valkey", port=port).start()
            self.services.append(redis)
            os.environ["REDIS_URL"] = redis.url
            say(f"started local Valkey (Redis protocol) on {redis.url}")
        else:
            say("using REDIS_URL from the environment")
        access = os.environ.setdefault("S3_ACCESS_KEY_ID", "skinsight")
        secret = os.environ.setdefault("S3_SECRET_ACCESS_KEY", "skinsight-local-secret")
        bucket = os.environ.setdefault("S3_BUCKET", "skinsight")
        if "S3_ENDPOINT_URL" not in os.environ:
            port = int(os.environ.get("SKINSIGHT_S3_PORT", "0")) or free_port()
            say("starting local SeaweedFS S3 server (first start takes a few seconds)…")
            s3 = S3Server(self.var / "seaweedfs", access, secret, bucket, s3_port=port).start()
            self.services.append(s3)
            os.environ["S3_ENDPOINT_URL"] = s3.endpoint_url
            say(f"started local S3 on {s3.endpoint_url} (bucket {bucket})")
        else:
            manage("ensure_bucket")
            say(f"using S3 at {os.environ['S3_ENDPOINT_URL']} (bucket {bucket})")
        if "DATABASE_URL" not in os.environ:
            say(f"using SQLite at {self.var / 'skinsight.sqlite3'}")

    def prepare_database(self) -> None:
        manage("migrate", "--noinput", "-v", "0")
        manage("collectstatic", "--noinput", "-v", "0")
        manage("ensure_admin")

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        """Start a process the supervisor watches and stops with the rest."""
        log = self.log_dir / f"{name.replace(' ', '-')}.log" if self.log_dir else None
        process = launch(command, log)
        self.processes.append((name, process))
        return process

    def start_workers(self) -> None:
        suffix = secrets.token_hex(3)
        concurrency = int(os.environ.get("WORKER_CONCURRENCY", "1"))
        health_port = int(os.environ.setdefault("WORKER_METRICS_PORT", str(free_port())))
        self.spawn("worker", commands.inference_worker(f"inference-{suffix}", concurrency))
        say(f"inference worker health: http://127.0.0.1:{health_port}/healthz")
        self.spawn("heat-map worker", commands.explain_worker(f"explain-{suffix}"))
        self.spawn("training worker", commands.training_worker(f"training-{suffix}"))
        self.spawn("scheduler", commands.beat(str(self.var / "celerybeat-schedule")))

    def start_web(self) -> str:
        """The web server and, on the next port (``LIVE_PORT``), the live pages' socket server."""
        host = os.environ.get("HOST", "127.0.0.1")
        port = int(os.environ.get("PORT", "8000"))
        live_port = int(os.environ.setdefault("LIVE_PORT", str(port + 1)))
        web = self.spawn("web", commands.web(host, port))
        live = self.spawn("live pages", commands.live(host, live_port))
        wait_for_port(port, 60, web)
        wait_for_port(live_port, 60, live)
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"  # noqa: S104

    def maybe_train_first_model(self) -> None:
        # The exit status answers, not the text: `manage.py shell` prints banners of its own.
        if manage("active_model", "--check", check=False, quiet=True).returncode == 0:
            say("keeping the active model; train, judge and promote others on the Models page")
            return
        dataset = os.environ.get("DATASET_DIR")
        if not dataset:
            say("no model is active yet: uploads will wait in the queue.")
            say("  get one: DATASET_DIR=/path/to/HAM10000 make run   (trains and activates)")
            say("  or:      the Models page (register a dataset, start a run, promote it)")
            say("  or:      .venv/bin/python manage.py import_model BUNDLE_DIR --activate")
            return
        extra = shlex.split(os.environ.get("TRAIN_ARGS", ""))
        say(f"no model is active: the training worker trains one from {dataset}")
        say("  (progress below and on the Models page; the portal is usable meanwhile)")
        # Options given later win, so TRAIN_ARGS may replace the preset.
        command = [PY, "manage.py", "train_model", "--dataset-dir", dataset, "--preset", "standard",
                   *extra, "--wait", "--promote-if-none-active"]  # fmt: skip
        self.jobs.append(
            ("first model", subprocess.Popen(command, cwd=ROOT, start_new_session=True))
        )

    def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        say("stopping…")
        # In order: the web and live servers (no new work, no socket left open), then every worker
        # and job together (they wait for their running tasks), then the services they were using.
        started = time.monotonic()
        front = ("web", "live pages")
        web = [(n, p) for n, p in self.processes if n in front]
        rest = [*self.jobs, *((n, p) for n, p in self.processes if n not in front)]
        for group in (web, rest):
            stop_processes([process for _, process in group])
            say(f"stopped {', '.join(name for name, _ in group)}")
        for service in reversed(self.services):
            service.stop()
            say(f"stopped {service.name}")
        say(f"stopped everything in {time.monotonic() - started:.1f} s")

    def watch(self) -> int:
        while not self.stopping:
            for service in self.services:
                if not service.alive():
                    say(f"{service.name} stopped unexpectedly; shutting everything down")
                    return 1
            for name, process in self.processes:
                if process.poll() is not None:
                    say(f"{name} exited with code {process.returncode}; shutting down")
                    return 1
            for job in list(self.jobs):
                name, process = job
                if process.poll() is not None:
                    self.jobs.remove(job)
                    outcome = "done" if process.returncode == 0 else "failed (see above)"
                    say(f"{name}: {outcome}; the portal keeps running")
            time.sleep(1)
        return 0


def main() -> int:
    supervisor = Supervisor()

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    # SIGTERM (a service manager) and SIGHUP (the terminal closed) stop everything like Ctrl-C.
    # SIGINT is set too: a shell that starts us in the background would otherwise leave it ignored.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        supervisor.start_services()
        write_run_env()
        supervisor.prepare_database()
        supervisor.start_workers()
        url = supervisor.start_web()
        say(f"SkinSight is running at {url}   (Ctrl-C stops everything)")
        supervisor.maybe_train_first_model()
        return supervisor.watch()
    except KeyboardInterrupt:
        return 0
    finally:
        supervisor.stop()
        remove_run_env()


if __name__ == "__main__":
    sys.exit(main())
