"""What the multi-host run does, step by step, from the client host, and the counts it keeps.

1. one inference host: uploads, each result watched over the live-push WebSocket;
2. a second inference host joins while uploads arrive, and takes jobs;
3. the first inference host is cut off (its link downed) while it holds jobs: every job it held is
   delivered again and finished elsewhere, none lost, none twice;
4. heat maps are made on the training host; an admin trains a model there on a dataset in the bucket,
   promotes it, and the next uploads are classified with it.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import psycopg
import redis
import requests
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from bench.multihost import data_host
from bench.multihost.lab import ADMIN, ADMIN_PASSWORD, Lab, wait_for
from bench.portal import login_cookie
from webapp.config.broker import first_argument
from webapp.config.celery import CLASSIFY_TASK, queue_of
from webapp.metrics import JOBS
from workers.outcomes import Outcome

PATIENT, PATIENT_PASSWORD = "lab-patient", "lab-patient-password-2026"
TINY_TRAINING = {"image_size": 32, "head_epochs": 2, "batch_size": 8, "learning_rate": 0.01}


@dataclass
class Counts:
    uploads: int = 0  # accepted (201)
    refused: int = 0  # answered 4xx/5xx after every try
    done: int = 0
    lost: int = 0  # accepted, never finished
    duplicated: int = 0  # a case with two predictions, or a key that made two cases
    pushed: int = 0  # results that reached a WebSocket
    taken_by_second_host: int = 0
    hosts_seeing_only_their_own_files: int = 0
    held_at_cut: int = 0  # jobs the cut host had taken and not finished
    redelivered_after_cut: int = 0  # of those, finished elsewhere
    heat_maps_done: int = 0
    training_run: str = ""
    promoted: str = ""
    served_by_promoted: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def say(message: str) -> None:
    print(f"[multihost] {message}", flush=True)


class Client:
    """The patient's and the admin's API, from the client host."""

    def __init__(self, lab: Lab, photos: list[bytes]) -> None:
        self.lab = lab
        self.base = lab.web_url
        self.photos = itertools.cycle(photos)
        self.cases: dict[str, str] = {}  # idempotency key -> case id
        self.refused = 0
        self.lock = threading.Lock()
        self.patient = self._token(PATIENT, PATIENT_PASSWORD)
        self.admin = self._token(ADMIN, ADMIN_PASSWORD)

    def _token(self, username: str, password: str) -> str:
        answer = requests.post(f"{self.base}/api/auth/token/",
                               json={"username": username, "password": password}, timeout=30)  # fmt: skip
        answer.raise_for_status()
        return answer.json()["token"]

    def api(self, method: str, path: str, *, admin: bool = False, **kwargs) -> requests.Response:
        token = self.admin if admin else self.patient
        headers = {"Authorization": f"Token {token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.base}{path}", headers=headers, timeout=60, **kwargs)

    def upload(self) -> str | None:
        """One photo, sent again with the same key after a dropped connection or a 503."""
        key, photo = secrets.token_hex(8), next(self.photos)
        for attempt in range(5):
            try:
                answer = self.api("POST", "/api/cases/", headers={"Idempotency-Key": key},
                                  files={"image": ("photo.jpg", photo, "image/jpeg")})  # fmt: skip
            except requests.RequestException:
                time.sleep(1 + attempt)
                continue
            if answer.status_code in (200, 201):
                with self.lock:
                    self.cases[key] = answer.json()["id"]
                return answer.json()["id"]
            if answer.status_code != 503:
                break
            time.sleep(1 + attempt)
        with self.lock:
            self.refused += 1
        return None

    def upload_until(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.upload()

    def upload_many(self, count: int) -> list[str]:
        return [case for case in (self.upload() for _ in range(count)) if case]

    def session_cookie(self) -> str:
        return login_cookie(self.base, PATIENT, PATIENT_PASSWORD)

    def watch(self, case_id: str, cookie: str, timeout: float = 120) -> bool:
        """Whether the case's finished state is pushed to its results page's WebSocket."""
        url = f"{self.lab.live_url}/ws/cases/{case_id}/"
        deadline = time.monotonic() + timeout
        with connect(url, additional_headers={"Cookie": cookie, "Origin": self.base}) as socket:
            while time.monotonic() < deadline:
                try:
                    message = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
                except TimeoutError:
                    return False
                if message.get("status") == "done" and message.get("prediction"):
                    return True
        return False


class Database:
    """The operator's read-only view of the rows, straight from the database host."""

    def __init__(self, lab: Lab) -> None:
        self.url = lab.env(lab.hosts["client"])["DATABASE_URL"]

    def rows(self, query: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def statuses(self, ids: list[str]) -> dict[str, str]:
        found = self.rows("SELECT public_id::text, status FROM cases_case WHERE public_id::text = ANY(%s)",
                          (ids,))  # fmt: skip
        return dict(found)

    def all_done(self, ids: list[str]) -> bool:
        statuses = self.statuses(ids)
        return len(statuses) == len(ids) and all(s == "done" for s in statuses.values())

    def duplicated(self) -> int:
        return len(
            self.rows("SELECT case_id FROM cases_prediction GROUP BY case_id HAVING COUNT(*) > 1")
        )

    def model_of(self, case_id: str) -> str | None:
        found = self.rows(
            "SELECT v.name FROM cases_prediction p JOIN cases_case c ON c.id = p.case_id "
            "JOIN modelops_modelversion v ON v.id = p.model_version_id WHERE c.public_id::text = %s",
            (case_id,),
        )
        return found[0][0] if found else None


def jobs_taken_by(metrics: str) -> int:
    """Jobs a worker finished with a result, from its /metrics."""
    return int(sum(
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == f"{JOBS.describe()[0].name}_total" and sample.labels.get("outcome") == Outcome.DONE
    ))  # fmt: skip


def sees_only_its_own(lab: Lab, name: str) -> bool:
    """Whether a host's processes see, of the run's folder, only their own host's part."""
    host = lab.hosts[name]
    listed = host.run(["ls", "-A", str(host.folder.parent)], lab.env(host)).split()
    return listed == [name]


def control(lab: Lab) -> Celery:
    """Celery's remote control, through the broker, from the client host (no Django needed)."""
    return Celery(broker=lab.env(lab.hosts["client"])["REDIS_URL"]).control


def waiting_in_queue(lab: Lab) -> set[int]:
    """The case ids whose classification message waits in the broker's queue (taken by no one)."""
    broker = redis.Redis.from_url(lab.env(lab.hosts["client"])["REDIS_URL"])
    found = (
        first_argument(raw, CLASSIFY_TASK) for raw in broker.lrange(queue_of(CLASSIFY_TASK), 0, -1)
    )
    return {int(case_id) for case_id in found if case_id is not None}


class Run:
    """The four steps, in order, each filling its part of the counts."""

    def __init__(self, lab: Lab, photos: list[bytes], uploads: int) -> None:
        self.lab, self.photos, self.uploads = lab, photos, uploads
        self.counts, self.started = Counts(), time.monotonic()

    def lap(self, name: str) -> None:
        self.counts.seconds[name] = round(time.monotonic() - self.started, 1)

    def wait_done(self, ids: list[str], what: str, host: str, process=None) -> None:
        log = self.lab.log(self.lab.hosts[host], "inference")
        wait_for(lambda: self.db.all_done(ids), 300, what, log, process)

    def start(self, bundle: Path) -> None:
        lab = self.lab
        say(f"hosts: {lab.describe()}")
        lab.start_services()
        self.lap("services up")
        lab.start_web(bundle)
        code = ("from webapp.accounts.services import user_create; "
                f"user_create(username={PATIENT!r}, password={PATIENT_PASSWORD!r}, role='patient')")  # fmt: skip
        lab.manage(lab.hosts["web"], "shell", "-c", code)
        lab.start_inference("infer1")
        lab.start_training_host()
        self.counts.hosts_seeing_only_their_own_files = sum(
            sees_only_its_own(lab, name) for name in lab.hosts if name != "client"
        )
        self.client, self.db = Client(lab, self.photos), Database(lab)
        self.lap("portal up")

    def one_host(self) -> None:
        say("1. one inference host, results pushed live")
        cookie = self.client.session_cookie()
        first = self.client.upload_many(max(2, self.uploads // 4))
        self.counts.pushed = sum(self.client.watch(case, cookie) for case in first[:2])
        self.wait_done(first, "the first uploads", "infer1")
        self.lap("one host")

    def second_host_joins(self) -> None:
        say("2. a second inference host joins under load")
        stop = threading.Event()
        flows = [threading.Thread(target=self.client.upload_until, args=(stop,)) for _ in range(2)]
        for flow in flows:
            flow.start()
        try:
            second = self.lab.start_inference("infer2")
            wait_for(lambda: jobs_taken_by(self.lab.inference_metrics("infer2")) > 0, 120,
                     "the second host taking jobs", self.lab.log(self.lab.hosts["infer2"], "inference"),
                     second)  # fmt: skip
        finally:
            stop.set()
            for flow in flows:
                flow.join()
        self.wait_done(list(self.client.cases.values()), "the uploads under load", "infer2", second)
        self.counts.taken_by_second_host = jobs_taken_by(self.lab.inference_metrics("infer2"))
        self.lap("second host")

    def first_host_cut_off(self) -> None:
        """The backlog gathers while no host takes jobs; then the first host alone starts on it,
        and is cut off as soon as it has taken some."""
        say("3. the first inference host is cut off while it holds jobs")
        lab, db, remote = self.lab, self.db, control(self.lab)
        for host in ("infer1", "infer2"):
            remote.cancel_consumer(
                "inference", destination=[f"inference@{host}"], reply=True, timeout=10
            )
        before = set(self.client.cases.values())
        self.client.upload_many(self.uploads)
        backlog = [c for c in self.client.cases.values() if c not in before]
        broker = redis.Redis.from_url(lab.env(lab.hosts["client"])["REDIS_URL"])
        remote.add_consumer("inference", destination=["inference@infer1"], reply=True, timeout=10)
        deadline = time.monotonic() + 60
        while broker.llen("inference") >= len(backlog) and time.monotonic() < deadline:
            time.sleep(0.005)
        lab.hosts["infer1"].cut()
        unfinished = dict(db.rows("SELECT id, public_id::text FROM cases_case WHERE status <> 'done' "
                                  "AND public_id::text = ANY(%s)", (backlog,)))  # fmt: skip
        waiting = waiting_in_queue(lab)
        held = [public for pk, public in unfinished.items() if pk not in waiting]
        self.counts.held_at_cut = len(held)
        say(f"   cut infer1 holding {len(held)} unfinished job(s); {len(waiting)} still queued")
        remote.add_consumer("inference", destination=["inference@infer2"], reply=True, timeout=10)
        self.wait_done(list(self.client.cases.values()), "every job after the cut", "infer2")
        self.counts.redelivered_after_cut = sum(db.statuses(held)[c] == "done" for c in held)
        self.lap("after the cut")

    def heat_maps_training_promotion(self, dataset: Path) -> None:
        say("4. heat maps, a training run on the training host, a promotion")
        lab, counts = self.lab, self.counts
        heat = lambda: self.db.rows("SELECT status, COUNT(*) FROM cases_heatmap GROUP BY status")  # noqa: E731
        wait_for(lambda: all(s in ("done", "failed") for s, _ in heat()), 300, "the heat maps",
                 lab.log(lab.hosts["train"], "explain"))  # fmt: skip
        counts.heat_maps_done = dict(heat()).get("done", 0)
        counts.training_run, counts.promoted = train_and_promote(lab, self.client, dataset)

        def promoted_warm() -> bool:
            health = lab.inference_health("infer2")
            return health.get("active_version") == counts.promoted and health.get("healthy")

        wait_for(
            promoted_warm, 180, "the promoted model warm", lab.log(lab.hosts["infer2"], "inference")
        )
        after = self.client.upload_many(3)
        self.wait_done(after, "uploads after the promotion", "infer2")
        counts.served_by_promoted = sum(self.db.model_of(case) == counts.promoted for case in after)
        self.lap("trained and promoted")

    def tally(self) -> Counts:
        """The cut host comes back first: whatever it still held must not be recorded twice."""
        self.lab.hosts["infer1"].reconnect()
        time.sleep(10)
        counts, ids = self.counts, list(self.client.cases.values())
        statuses = self.db.statuses(ids)
        counts.uploads, counts.refused = len(ids), self.client.refused
        counts.done = sum(s == "done" for s in statuses.values())
        counts.lost = len(ids) - counts.done
        counts.duplicated = self.db.duplicated() + (len(ids) - len(set(ids)))
        self.lap("total")
        return counts


def run(lab: Lab, bundle: Path, photos: list[bytes], dataset: Path, uploads: int) -> Counts:
    steps = Run(lab, photos, uploads)
    steps.start(bundle)
    steps.one_host()
    steps.second_host_joins()
    steps.first_host_cut_off()
    steps.heat_maps_training_promotion(dataset)
    return steps.tally()


def train_and_promote(lab: Lab, client: Client, dataset: Path) -> tuple[str, str]:
    """Upload a HAM10000-layout folder to the bucket, register it, train on it, promote the result."""
    env = lab.env(lab.hosts["client"])
    s3 = boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], aws_access_key_id=env["S3_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["S3_SECRET_ACCESS_KEY"], region_name="us-east-1")  # fmt: skip
    for path in sorted(p for p in dataset.rglob("*") if p.is_file()):
        s3.upload_file(
            str(path), data_host.BUCKET, f"datasets/lab/{path.relative_to(dataset).as_posix()}"
        )
    answer = client.api("POST", "/api/datasets/", admin=True,
                        json={"name": "lab-ham", "location_kind": "s3", "location": "datasets/lab"})  # fmt: skip
    assert answer.status_code == 201, answer.text
    answer = client.api("POST", "/api/training-runs/", admin=True,
                        json={"dataset": "lab-ham", "preset": "", "architecture": "basic_cnn",
                              "options": TINY_TRAINING})  # fmt: skip
    assert answer.status_code == 201, answer.text
    run_id = answer.json()["id"]
    state = {}

    def finished() -> bool:
        state.update(client.api("GET", f"/api/training-runs/{run_id}/", admin=True).json())
        return bool(state.get("finished"))

    wait_for(finished, 600, "the training run", lab.log(lab.hosts["train"], "training"))
    if state["status"] != "succeeded":
        raise RuntimeError(f"the training run {state['status']}: {state.get('reason')}")
    name = state["model_version"]
    answer = client.api("POST", f"/api/models/{name}/promote/", admin=True,
                        json={"reason": "multi-host run: tiny model"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return run_id, name
