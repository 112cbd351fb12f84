"""The whole portal, started as `make run` starts it, for one benchmark, fault or load run.

Same process command lines as `make run` (`deploy/commands.py`), on a PostgreSQL database of its
own (dropped and made again each run, on `BENCH_POSTGRES_URL`), a fresh Valkey and SeaweedFS under
`var_dir`, the given bundle registered and activated, one API user with a token. The inference
worker is kept apart from the supervisor's list, so a run may kill it and start another.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import psycopg
import requests

from deploy import commands, run_local
from deploy.local_services import free_port, stop_process

ROOT = Path(__file__).resolve().parents[1]
# A server where this user may create databases (the development machine's PostgreSQL trusts it).
PG = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
PASSWORD = "bench-password-not-secret"  # noqa: S105  (a throw-away local account)


def fresh_database(name: str) -> str:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return f"{PG}/{name}"


def manage(*args: str) -> str:
    """Run ``manage.py`` with this process's environment (the portal's); what it printed."""
    return run_local.manage(*args, quiet=True).stdout


def children(pid: int) -> list[int]:
    """The pids of a process's direct children."""
    try:
        return [int(n) for n in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def login_cookie(base: str, username: str, password: str) -> str:
    """Sign in through the login form, as the results page's user would: the Cookie header."""
    login = f"{base}/accounts/login/"
    with requests.Session() as session:
        session.get(login, timeout=10)
        session.post(
            login,
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": login},
            timeout=10,
        )
        return "; ".join(f"{k}={v}" for k, v in session.cookies.items())


class Portal:
    """Start with ``with Portal(...) as portal``; everything it started stops on exit."""

    def __init__(
        self,
        bundle_dir: Path,
        *,
        var_dir: Path,
        database: str,
        worker_concurrency: int = 2,
        settings: dict[str, str] | None = None,
        scheduler: bool = False,
        database_url: str | None = None,
        worker_app: str | None = None,
    ) -> None:
        """``database_url``: where the portal's processes reach the database (a proxy in front
        of it, say); the database itself is made on ``BENCH_POSTGRES_URL``. ``worker_app``: a
        Celery app module to run the inference worker with instead of ``workers.app``."""
        self.bundle_dir = bundle_dir
        self.var_dir = var_dir
        self.database = database
        self.worker_concurrency = worker_concurrency
        self.settings = settings or {}
        self.scheduler = scheduler
        self.database_url = database_url
        self.worker_app = worker_app
        self.worker: subprocess.Popen | None = None
        self.workers_started = 0

    def __enter__(self) -> Portal:
        # Put back on exit: a later portal in this process must start its own services.
        self._environ = dict(os.environ)
        shutil.rmtree(self.var_dir, ignore_errors=True)
        made = fresh_database(self.database)
        self.direct_database_url = made
        os.environ.update(
            {
                "SKINSIGHT_VAR_DIR": str(self.var_dir),
                "DATABASE_URL": made,
                "WORKER_CONCURRENCY": str(self.worker_concurrency),
                # One API user uploads everything here; the per-user limit is not what is measured.
                "UPLOAD_RATE": "1000000/hour",
                "DATABASE_POOL_SIZE": "8",
                "PORT": str(free_port()),
                "LIVE_PORT": str(free_port()),
                "WORKER_METRICS_PORT": str(free_port()),
                **self.settings,
            }
        )
        self.supervisor = run_local.Supervisor(var=self.var_dir, log_dir=self.var_dir)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.supervisor.start_services()
        self.supervisor.prepare_database()
        manage("import_model", str(self.bundle_dir), "--activate", "--name", "bench")
        self.token = self.add_user("bench")
        if self.database_url:
            os.environ["DATABASE_URL"] = self.database_url  # what the processes below use
        self.start_worker()
        if self.scheduler:
            self.supervisor.spawn(
                "scheduler", commands.beat(str(self.var_dir / "celerybeat-schedule"))
            )
        # The web server at PORT and the live pages' socket server at LIVE_PORT, as `make run` starts them.
        self.base = self.supervisor.start_web().rstrip("/")
        self.live_base = f"ws://127.0.0.1:{os.environ['LIVE_PORT']}"
        self.wait_warm()

    @property
    def log(self) -> Path:
        return self.var_dir / "worker.log"

    def start_worker(self) -> subprocess.Popen:
        """An inference worker (a new one each call: a new host, as far as the broker knows)."""
        self.workers_started += 1
        command = commands.inference_worker(f"bench{self.workers_started}", self.worker_concurrency)
        if self.worker_app:
            command[command.index("workers.app")] = self.worker_app
        # Not in the supervisor's list: a run may kill it and start another.
        self.worker = run_local.launch(command, log=self.log)
        return self.worker

    def process_roots(self) -> dict[str, int]:
        """The pid of each process the portal started, by role; their children are theirs."""
        roots = {name: process.pid for name, process in self.supervisor.processes}
        if self.worker:
            roots["inference worker"] = self.worker.pid
        for service in self.supervisor.services:
            roots[service.name] = service.process.pid
        return roots

    def worker_children(self) -> list[int]:
        """The pids of the inference worker's pool processes."""
        return children(self.worker.pid) if self.worker else []

    def wait_warm(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        health = f"http://127.0.0.1:{os.environ['WORKER_METRICS_PORT']}/healthz"
        while time.monotonic() < deadline:
            try:
                if requests.get(health, timeout=3).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise RuntimeError(f"the inference worker did not warm up; see {self.log}")

    def stop(self) -> None:
        stop_process(self.worker)
        self.supervisor.stop()
        os.environ.clear()
        os.environ.update(self._environ)

    def __exit__(self, *exc) -> None:
        self.stop()

    def add_user(self, username: str) -> str:
        """A patient account; its API token."""
        code = (
            "from webapp.accounts.models import User; from rest_framework.authtoken.models import Token;"
            f"u = User.objects.create_user({username!r}, password={PASSWORD!r});"
            "print('TOKEN', Token.objects.create(user=u).key)"
        )
        return re.search(r"TOKEN (\w+)", manage("shell", "-c", code)).group(1)

    def session_cookie(self, username: str = "bench") -> str:
        return login_cookie(self.base, username, PASSWORD)

    def upload(
        self, session: requests.Session, photo: bytes, *, key: str = "", timeout: float = 60
    ) -> requests.Response:
        headers = {"Authorization": f"Token {self.token}"}
        if key:
            headers["Idempotency-Key"] = key
        return session.post(
            f"{self.base}/api/cases/",
            files={"image": ("photo.jpg", photo, "image/jpeg")},
            headers=headers,
            timeout=timeout,
        )

    def metrics(self) -> str:
        port = os.environ["WORKER_METRICS_PORT"]
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        """Read the portal's database directly (not through the proxy, if any)."""
        with psycopg.connect(self.direct_database_url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()
