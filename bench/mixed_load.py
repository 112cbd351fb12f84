"""Mixed load on the whole portal: uploads, result pages, API reads and live pushes at once.

    make load                                    # or: .venv/bin/python -m bench.mixed_load
    .venv/bin/python -m bench.mixed_load --seconds 300 --users 12

Each simulated patient has an account of their own (the per-user upload quota is lifted: a
patient here uploads every few seconds, and the quota has tests of its own) and loops: upload a photo through the API,
wait for its result on the case's WebSocket (as the results page does), open the results page,
list their cases and read the case through the API, then pause. Meanwhile a clinic imports a
backlog of photos as fast as they are accepted (`--backlog`), which the patients' uploads queue
behind, and the inference queue's depth is sampled every second. At the end: uploads per second, p50/p95 time to accept and to a
pushed result, every answer by status (5xx counted), the deepest queue, and the memory (RSS) of
each process of the portal. Results go to docs/benchmarks/load.json; `python -m bench.reliability`
puts them into docs/reliability.md. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import shlex
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import redis
import requests
from websockets.sync.client import connect

from bench.bundles import PHOTOS, best_available_bundle
from bench.portal import ROOT, Portal, children
from bench.serving.load import run_load
from tests.images import jpeg_bytes

RESULTS = ROOT / "docs" / "benchmarks" / "load.json"
FINISHED = ("done", "failed", "rejected")


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answers: collections.Counter[str] = collections.Counter()
        self.accept_ms: list[float] = []
        self.result_ms: list[float] = []
        self.uploads = 0
        self.unfinished = 0

    def answer(self, kind: str, status: int | str) -> None:
        with self.lock:
            self.answers[f"{kind} {status}"] += 1


def _percentile(values: list[float], percent: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, round(percent / 100 * len(ordered)) - 1)], 1)


class Patient(threading.Thread):
    def __init__(self, portal: Portal, name: str, photos: list[bytes], tally: Tally):
        super().__init__(daemon=True)
        self.portal, self.name, self.photos, self.tally = portal, name, photos, tally
        self.until = 0.0  # set when the run starts
        self.token = portal.add_user(name)
        self.cookie = portal.session_cookie(name)

    def run(self) -> None:
        api = {"Authorization": f"Token {self.token}"}
        page = {"Cookie": self.cookie}
        index = 0
        with requests.Session() as session:
            while time.monotonic() < self.until:
                index += 1
                case_id = self._upload(session, api, index)
                if case_id:
                    self._get(session, "page", f"/cases/{case_id}/", page)
                    self._get(session, "api-list", "/api/cases/", api)
                    self._get(session, "api-detail", f"/api/cases/{case_id}/", api)
                time.sleep(0.5)

    def _get(self, session: requests.Session, kind: str, path: str, headers: dict) -> None:
        try:
            status = session.get(self.portal.base + path, headers=headers, timeout=30).status_code
        except requests.RequestException as exc:
            status = type(exc).__name__
        self.tally.answer(kind, status)

    def _upload(self, session: requests.Session, headers: dict, index: int) -> str | None:
        photo = self.photos[index % len(self.photos)]
        started = time.perf_counter()
        try:
            response = session.post(
                self.portal.base + "/api/cases/",
                files={"image": ("photo.jpg", photo, "image/jpeg")},
                headers=headers,
                timeout=30,
            )
        except requests.RequestException as exc:
            self.tally.answer("upload", type(exc).__name__)
            return None
        accepted = time.perf_counter()
        self.tally.answer("upload", response.status_code)
        if response.status_code != 201:
            return None
        case_id = response.json()["id"]
        finished = self._pushed_result(case_id)
        with self.tally.lock:
            self.tally.uploads += 1
            self.tally.accept_ms.append((accepted - started) * 1000)
            if finished is None:
                self.tally.unfinished += 1
            else:
                self.tally.result_ms.append((finished - started) * 1000)
        return case_id

    def _pushed_result(self, case_id: str, timeout: float = 120) -> float | None:
        url = f"{self.portal.live_base}/ws/cases/{case_id}/"
        headers = {"Cookie": self.cookie, "Origin": self.portal.base}
        deadline = time.monotonic() + timeout
        try:
            with connect(url, additional_headers=headers, open_timeout=30) as socket:
                self.tally.answer("websocket", "open")
                while time.monotonic() < deadline:
                    state = json.loads(socket.recv(timeout=deadline - time.monotonic()))
                    if state.get("status") in FINISHED:
                        return time.perf_counter()
        except Exception as exc:
            self.tally.answer("websocket", type(exc).__name__)
        return None


def _process_memory_mb(portal: Portal) -> dict[str, float]:
    """RSS of every process the portal started, children included, by role."""
    memory = {}
    for name, pid in portal.process_roots().items():
        pids = [pid, *_descendants(pid)]
        for number, each in enumerate(pids):
            label = name if number == 0 else f"{name} child {number}"
            rss = _rss_mb(each)
            if rss is not None:
                memory[label] = rss
    return memory


def _descendants(pid: int) -> list[int]:
    return [each for child in children(pid) for each in (child, *_descendants(child))]


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _backlog(portal: Portal, photos: list[bytes], total: int, out: dict) -> None:
    """A clinic importing ``total`` photos at once (4 connections, as fast as they are accepted):
    the queue the patients' uploads then wait behind."""
    if total:
        out.update(
            run_load(lambda session, i: portal.upload(session, photos[i % len(photos)]), total, 4)
        )


def _backlog_finished(portal: Portal) -> tuple[int, int]:
    """(cases of the import finished, all of them)."""
    return portal.sql(
        "SELECT count(*) FILTER (WHERE c.finished_at IS NOT NULL), count(*) FROM cases_case c "
        "JOIN accounts_user u ON u.id = c.uploaded_by_id WHERE u.username = 'bench'"
    )[0]


def run(
    seconds: float, users: int, backlog: int, bundle: Path, model: str, worker_concurrency: int
) -> dict:
    photos = (
        [p.read_bytes() for p in sorted(PHOTOS.iterdir())[:16]]
        if PHOTOS.is_dir()
        else [jpeg_bytes(600, 450, seed=s) for s in range(16)]
    )
    with Portal(
        bundle,
        var_dir=ROOT / "var" / "load",
        database="skinsight_load",
        worker_concurrency=worker_concurrency,
        scheduler=True,
    ) as portal:
        tally = Tally()
        depth = [0]
        broker = redis.Redis.from_url(os.environ["REDIS_URL"])
        patients = [Patient(portal, f"patient{n}", photos, tally) for n in range(users)]
        print(f"{users} patients for {seconds:.0f} s and {backlog} imported photos on {model}…")
        started = time.monotonic()
        imported: dict = {}
        importer = threading.Thread(target=_backlog, args=(portal, photos, backlog, imported))
        importer.start()
        for patient in patients:
            patient.until = started + seconds
            patient.start()
        while any(p.is_alive() for p in [*patients, importer]):
            depth[0] = max(depth[0], broker.llen("inference"))
            elapsed = time.monotonic() - started
            if int(elapsed) % 15 == 0:
                print(f"  {elapsed:4.0f} s: {tally.uploads} results, queue {depth[0]}", flush=True)
            time.sleep(1)
        wall = time.monotonic() - started
        deadline = time.monotonic() + 1800
        finished, imported_total = _backlog_finished(portal)
        while finished < imported_total and time.monotonic() < deadline:
            time.sleep(1)
            finished, imported_total = _backlog_finished(portal)
        drained = time.monotonic() - started
        memory = _process_memory_mb(portal)
    server_errors = sum(n for key, n in tally.answers.items() if key.split()[-1].startswith("5"))
    return {
        "seconds": round(wall, 1),
        "patients": users,
        "model": model,
        "worker_concurrency": worker_concurrency,
        "uploads_with_result": tally.uploads,
        "uploads_per_second": round(tally.uploads / wall, 2),
        "accept_p50_ms": _percentile(tally.accept_ms, 50),
        "accept_p95_ms": _percentile(tally.accept_ms, 95),
        "result_p50_ms": _percentile(tally.result_ms, 50),
        "result_p95_ms": _percentile(tally.result_ms, 95),
        "no_result_pushed": tally.unfinished,
        "answers": dict(sorted(tally.answers.items())),
        "server_errors_5xx": server_errors,
        "deepest_inference_queue": depth[0],
        "backlog_uploads": backlog,
        "backlog_accepted_per_second": round(imported.get("per_second", 0), 2),
        "backlog_accept_errors": imported.get("errors", 0),
        "backlog_not_finished": imported_total - finished,
        # Patients' uploads and the import's, over the time until the last of them finished.
        "all_uploads_per_second": round((tally.uploads + finished) / drained, 2),
        "all_finished_after_s": round(drained, 1),
        "memory_rss_mb": memory,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.mixed_load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--users", type=int, default=8, help="simulated patients")
    parser.add_argument(
        "--backlog", type=int, default=1000, help="photos a clinic imports at once meanwhile"
    )
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument(
        "--bundle", type=Path, help="a model bundle (default: MobileNetV2 if ../shared)"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    bundle, model = (args.bundle, str(args.bundle)) if args.bundle else best_available_bundle()
    outcome = run(args.seconds, args.users, args.backlog, bundle, model, args.worker_concurrency)
    outcome.update(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        machine=f"{platform.machine()}, {os.cpu_count()} cores",
        command="python -m bench.mixed_load " + shlex.join(sys.argv[1:] if argv is None else argv),
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(outcome, indent=2) + "\n")
    print(json.dumps({k: v for k, v in outcome.items() if k != "memory_rss_mb"}, indent=2))
    print(f"results: {RESULTS.relative_to(ROOT)}")
    return 1 if outcome["server_errors_5xx"] else 0


if __name__ == "__main__":
    sys.exit(main())
