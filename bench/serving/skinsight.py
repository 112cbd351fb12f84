"""(d) SkinSight end to end: API upload → S3 → queue → worker → S3 + database → WebSocket push.

The whole portal runs as `make run` runs it (same process command lines, `deploy/commands.py`),
on a PostgreSQL database of its own (`skinsight_bench` on `BENCH_POSTGRES_URL`, dropped and made
again each run), a fresh
Valkey and SeaweedFS under `var/bench/portal`, the given bundle registered and activated.

Two measurements:
* idle: one upload at a time; from sending the request to the "done" state pushed over the
  case's WebSocket (the results page's channel);
* backlog: `total` uploads from `clients` threads as fast as they are accepted; accept latency
  from the client, throughput and created → finished from the rows' own timestamps.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import requests
import websockets

from bench.serving.load import run_load
from deploy import commands
from deploy.local_services import free_port

ROOT = Path(__file__).resolve().parents[2]
PORTAL_DIR = ROOT / "var" / "bench" / "portal"
DATABASE = "skinsight_bench"
# A server where this user may create databases (the development machine's PostgreSQL trusts it).
PG = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
PASSWORD = "bench-password-not-secret"  # noqa: S105  (a throw-away local account)


def _fresh_database() -> str:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    return f"{PG}/{DATABASE}"


def _manage(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return done.stdout


def _user_and_token() -> str:
    code = (
        "from webapp.accounts.models import User; from rest_framework.authtoken.models import Token;"
        "u = User.objects.create_user('bench', password='" + PASSWORD + "');"
        "print('TOKEN', Token.objects.create(user=u).key)"
    )
    return re.search(r"TOKEN (\w+)", _manage("shell", "-c", code)).group(1)


def _session_cookie(base: str) -> str:
    """Sign in through the login form, as the results page's user would."""
    with requests.Session() as session:
        session.get(f"{base}/accounts/login/", timeout=10)
        session.post(
            f"{base}/accounts/login/",
            data={
                "username": "bench",
                "password": PASSWORD,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": f"{base}/accounts/login/"},
            timeout=10,
        )
        return "; ".join(f"{k}={v}" for k, v in session.cookies.items())


class Portal:
    """The portal's processes, started like `make run` starts them, for one benchmark run."""

    def __init__(self, bundle_dir: Path, *, worker_concurrency: int) -> None:
        self.bundle_dir = bundle_dir
        self.worker_concurrency = worker_concurrency

    def __enter__(self) -> Portal:
        shutil.rmtree(PORTAL_DIR, ignore_errors=True)
        os.environ.update(
            {
                "SKINSIGHT_VAR_DIR": str(PORTAL_DIR),
                "DATABASE_URL": _fresh_database(),
                "WORKER_CONCURRENCY": str(self.worker_concurrency),
                # One API user uploads everything here; the per-user limit is not what is measured.
                "UPLOAD_RATE": "1000000/hour",
                "DATABASE_POOL_SIZE": "8",
                "PORT": str(free_port()),
                "WORKER_METRICS_PORT": str(free_port()),
            }
        )
        from deploy import run_local  # reads SKINSIGHT_VAR_DIR when imported

        self.supervisor = run_local.Supervisor()
        try:
            self._start()
        except BaseException:
            self.supervisor.stop()
            raise
        return self

    def _start(self) -> None:
        self.supervisor.start_services()
        self.supervisor.prepare_database()
        _manage("import_model", str(self.bundle_dir), "--activate", "--name", "bench")
        self.token = _user_and_token()
        self.log = PORTAL_DIR / "worker.log"
        with open(self.log, "wb") as output:
            worker = subprocess.Popen(
                commands.inference_worker("bench", self.worker_concurrency),
                cwd=ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.supervisor.processes.append(("worker", worker))
        self.base = self.supervisor.start_web().rstrip("/")
        self._wait_warm()
        self.cookie = _session_cookie(self.base)

    def _wait_warm(self, timeout: float = 180) -> None:
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

    def __exit__(self, *exc) -> None:
        self.supervisor.stop()

    def upload(self, session: requests.Session, photo: bytes) -> requests.Response:
        return session.post(
            f"{self.base}/api/cases/",
            files={"image": ("photo.jpg", photo, "image/jpeg")},
            headers={"Authorization": f"Token {self.token}"},
            timeout=60,
        )

    async def _pushed_done(self, case_id: str) -> None:
        url = f"{self.base.replace('http', 'ws', 1)}/ws/cases/{case_id}/"
        headers = {"Cookie": self.cookie, "Origin": self.base}
        async with websockets.connect(url, additional_headers=headers) as socket:
            while True:
                state = json.loads(await asyncio.wait_for(socket.recv(), 60))
                if state.get("status") in ("done", "failed", "rejected"):
                    return

    def idle_round_trip_ms(self, photos: list[bytes], count: int) -> list[float]:
        """Upload → pushed result, one at a time; each measured from before the request."""
        times = []
        with requests.Session() as session:
            for index in range(count):
                started = time.perf_counter()
                response = self.upload(session, photos[index % len(photos)])
                response.raise_for_status()
                asyncio.run(self._pushed_done(response.json()["id"]))
                times.append((time.perf_counter() - started) * 1000)
                time.sleep(0.2)  # idle means idle: nothing else in flight
        return times

    def finished_rows(self, since: float, expected: int, timeout: float = 1800) -> list[tuple]:
        """(created_at, finished_at, status) of the cases made after ``since``, once all are done."""
        deadline = time.monotonic() + timeout
        query = (
            "SELECT created_at, finished_at, status FROM cases_case "
            "WHERE created_at >= to_timestamp(%s) ORDER BY created_at"
        )
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            while True:
                rows = conn.execute(query, (since,)).fetchall()
                if len(rows) >= expected and all(r[1] is not None for r in rows):
                    return rows
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {len(rows)} of {expected} cases finished in time")
                time.sleep(1)

    def metrics(self) -> str:
        port = os.environ["WORKER_METRICS_PORT"]
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text


def _percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(percent / 100 * len(ordered)) - 1)]


def stage_means_ms(metrics_text: str) -> dict[str, float]:
    """Mean milliseconds per stage, from the histograms' _sum and _count samples."""
    sums, counts = {}, {}
    pattern = re.compile(r'^(skinsight_\w+_stage_seconds)_(sum|count)\{stage="(\w+)"\} (\S+)$')
    for line in metrics_text.splitlines():
        match = pattern.match(line)
        if match:
            name, kind, stage, value = match.groups()
            key = f"{name.split('_')[1]}.{stage}"
            (sums if kind == "sum" else counts)[key] = float(value)
    return {k: round(sums[k] / counts[k] * 1000, 1) for k in sums if counts.get(k)}


def measure_skinsight(
    bundle_dir: Path,
    photo_paths: list[Path],
    *,
    total: int = 500,
    clients: int = 8,
    idle_uploads: int = 20,
    worker_concurrency: int = 2,
) -> dict:
    photos = [path.read_bytes() for path in photo_paths]
    with Portal(bundle_dir, worker_concurrency=worker_concurrency) as portal:
        portal.idle_round_trip_ms(photos, 3)  # first requests of each web process
        idle = portal.idle_round_trip_ms(photos, idle_uploads)
        since = time.time() - 1

        def send(session: requests.Session, index: int) -> requests.Response:
            return portal.upload(session, photos[index % len(photos)])

        accepted = run_load(send, total, clients)
        rows = portal.finished_rows(since, total)
        metrics = portal.metrics()
    latencies = [(finished - created).total_seconds() * 1000 for created, finished, _ in rows]
    span = (max(r[1] for r in rows) - min(r[0] for r in rows)).total_seconds()
    batch_sum = float(re.search(r"^skinsight_batch_jobs_sum (\S+)$", metrics, re.M).group(1))
    batch_count = float(re.search(r"^skinsight_batch_jobs_count (\S+)$", metrics, re.M).group(1))
    return {
        "idle_upload_to_push_p50_ms": statistics.median(idle),
        "idle_upload_to_push_p95_ms": _percentile(idle, 95),
        "backlog_uploads": total,
        "clients": clients,
        "accepted_per_second": accepted["per_second"],
        "accept_p50_ms": accepted["p50_ms"],
        "accept_p95_ms": accepted["p95_ms"],
        "accept_errors": accepted["errors"],
        "classified_per_second": total / span,
        "created_to_finished_p50_ms": statistics.median(latencies),
        "created_to_finished_p95_ms": _percentile(latencies, 95),
        "not_done": sum(1 for r in rows if r[2] != "done"),
        "mean_batch_jobs": batch_sum / batch_count if batch_count else None,
        "worker_stage_means_ms": stage_means_ms(metrics),
        "worker_concurrency": worker_concurrency,
    }
