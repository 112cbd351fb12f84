"""Run one training job: the service the `modelops.train` task calls.

The run is claimed once in the database (a second delivery of its message finds it taken and returns), a
heartbeat thread keeps it marked alive and notices a cancel request, and progress (stage, phase, epoch,
batch, running loss and metrics, ETA, curves) is stored on the row and pushed to its page. Nothing is
registered until the candidate has been trained and judged; a run that ends any other way leaves no model.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connections

from ml.bundle import BundleError
from ml.datasets import DatasetError, DatasetProblems
from ml.devices import training_device
from ml.pretrained import PretrainedWeightsUnavailable
from ml.progress import TrainingCancelled, TrainingObserver
from ml.train import train
from ml.training_config import ConfigError, TrainConfig
from webapp.cases.selectors import confirmed_case_items
from webapp.errors import NotPermitted
from webapp.modelops.bundles import ModelUnavailable
from webapp.modelops.judging import metric_summary
from webapp.modelops.models import RUN_IN_PROGRESS, RunStatus, TrainingRun
from webapp.modelops.selectors import model_version_get_active
from webapp.modelops.services.common import require_admin
from webapp.modelops.services.registry import model_version_register
from webapp.modelops.services.runs import (
    training_run_add_artefacts,
    training_run_advance,
    training_run_claim,
    training_run_clean_up,
    training_run_finish,
    training_run_heartbeat,
    training_run_progress,
    training_run_record,
    training_run_version_name,
)
from webapp.modelops.snapshots import data_freeze
from webapp.storage import store
from workers.evaluation import evaluate_bundle_on_set, evaluate_version
from workers.outcomes import Outcome

logger = logging.getLogger(__name__)


# Progress is written to the row (and pushed) at most this often between epochs.
PROGRESS_INTERVAL_SECONDS = 1.0
# Batch-loss points kept for the live curve; older ones are thinned, never the latest.
MAX_BATCH_POINTS = 400
MAX_MESSAGES = 30
EXPECTED_FAILURES = (
    DatasetError,
    BundleError,
    PretrainedWeightsUnavailable,
    ConfigError,
    store.StorageUnavailable,
    ModelUnavailable,
)


class Heartbeat(threading.Thread):
    """Marks the run alive every few seconds and notices when someone asks it to stop."""

    def __init__(self, run_id: int) -> None:
        super().__init__(name=f"heartbeat-run-{run_id}", daemon=True)
        self.run_id = run_id
        self.cancel_requested = threading.Event()
        self._stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self._stopped.wait(settings.TRAINING_HEARTBEAT_SECONDS):
                try:
                    if training_run_heartbeat(run_id=self.run_id):
                        self.cancel_requested.set()
                except Exception:
                    logger.warning("heartbeat of run %s failed", self.run_id, exc_info=True)
                    close_old_connections()
        finally:
            connections.close_all()

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=30)


class RunLog:
    """Timestamped lines of what the run did; kept in S3 with the run."""

    def __init__(self, run: TrainingRun) -> None:
        self.key = store.training_run_key(run.public_id, "log.txt")
        self.lines: list[str] = []

    def add(self, message: str) -> str:
        line = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} {message}"
        self.lines.append(line)
        logger.info("training run: %s", message)
        return line

    def upload(self) -> None:
        try:
            store.put(self.key, ("\n".join(self.lines) + "\n").encode(), what="the training log")
        except store.StorageUnavailable:
            logger.warning("could not store the training log %s", self.key, exc_info=True)


class RunObserver(TrainingObserver):
    """Turns ml.train's hooks into the run's stored and pushed progress."""

    def __init__(self, run: TrainingRun, heartbeat: Heartbeat, log: RunLog) -> None:
        self.run_id = run.pk
        self.heartbeat = heartbeat
        self.log = log
        self.started = time.monotonic()
        self.progress: dict = {
            "stage": "",
            "messages": [],
            "phases": [],
            "phase": None,
            "epoch": 0,
            "epochs": 0,
            "batch": 0,
            "steps": 0,
            "logs": {},
            "history": {
                "step": [],
                "phase": [],
                "loss": [],
                "accuracy": [],
                "val_loss": [],
                "val_accuracy": [],
            },
            "batches": [],
            "eta_seconds": None,
            "elapsed_seconds": 0,
        }
        self._done_batches = 0
        self._total_batches = 0
        self._training_started: float | None = None
        self._last_flush = 0.0

    # -- writing
    def flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_flush < PROGRESS_INTERVAL_SECONDS:
            return
        self._last_flush = now
        self.progress["elapsed_seconds"] = round(now - self.started)
        training_run_progress(run_id=self.run_id, progress=self.progress)

    # -- ml.train hooks
    def stage(self, message: str) -> None:
        line = self.log.add(message)
        self.progress["stage"] = message
        self.progress["messages"] = [*self.progress["messages"], line][-MAX_MESSAGES:]
        self.flush(force=True)

    def plan(self, phases: list[dict]) -> None:
        self.progress["phases"] = phases
        self._total_batches = sum(p["epochs"] * p["steps_per_epoch"] for p in phases)
        self._training_started = time.monotonic()

    def batch_end(self, phase: str, epoch: int, batch: int, logs: dict[str, float]) -> None:
        self._done_batches += 1
        plan = next((p for p in self.progress["phases"] if p["name"] == phase), None)
        self.progress.update(
            phase=phase,
            epoch=epoch,
            epochs=plan["epochs"] if plan else 0,
            batch=batch,
            steps=plan["steps_per_epoch"] if plan else 0,
            logs=logs,
            eta_seconds=self._eta(),
        )
        if "loss" in logs:
            points = self.progress["batches"]
            points.append([self._done_batches, round(logs["loss"], 5)])
            if len(points) > MAX_BATCH_POINTS:
                self.progress["batches"] = points[:-1:2] + points[-1:]
        self.flush()

    def epoch_end(self, phase: str, epoch: int, logs: dict[str, float]) -> None:
        history = self.progress["history"]
        history["step"].append(self._done_batches)
        history["phase"].append(phase)
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            history[key].append(logs.get(key))
        self.progress["logs"] = logs
        summary = ", ".join(f"{k} {v:.4f}" for k, v in sorted(logs.items()) if k != "learning_rate")
        self.stage(f"{phase} epoch {epoch}: {summary}")
        self.log.upload()

    def should_stop(self) -> bool:
        return self.heartbeat.cancel_requested.is_set()

    def _eta(self) -> int | None:
        if not self._training_started or not self._done_batches or not self._total_batches:
            return None
        elapsed = time.monotonic() - self._training_started
        remaining = max(self._total_batches - self._done_batches, 0)
        return round(elapsed / self._done_batches * remaining)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _upload_report(run: TrainingRun, report_dir: Path) -> dict:
    artefacts = {}
    for path in sorted(report_dir.glob("*.png")):
        key = store.training_run_key(run.public_id, path.name)
        store.put(key, path.read_bytes(), what=f"the training plot {path.name}")
        artefacts[path.stem] = key
    return artefacts


def train_run(*, run_id: int) -> str:
    """Claim and execute a queued training run; returns how it ended."""
    run = training_run_claim(run_id=run_id, worker=_worker_name())
    if run is None:
        logger.info(
            "training run %s is not queued (taken, cancelled or gone); nothing to do", run_id
        )
        return Outcome.NOT_QUEUED
    try:
        # Asked again here, with the stored user: the web request may be days old.
        require_admin(run.requested_by)
    except NotPermitted:
        training_run_finish(
            run_id=run_id,
            status=RunStatus.FAILED,
            reason=f"Refused: {run.requested_by.username}, who asked for this run, is not (or no "
            "longer) an active administrator.",
        )
        return Outcome.FAILED
    log = RunLog(run)
    heartbeat = Heartbeat(run_id)
    heartbeat.start()
    observer = RunObserver(run, heartbeat, log)
    scratch = Path(settings.TRAINING_WORK_DIR) / "runs" / str(run.public_id)
    outcome = Outcome.FAILED
    try:
        outcome = _execute(run, observer, scratch)
    except TrainingCancelled as exc:
        run.refresh_from_db(fields=["cancel_requested_by"])
        who = run.cancel_requested_by.username if run.cancel_requested_by else "an administrator"
        observer.stage(f"cancelled: {exc}")
        training_run_finish(
            run_id=run_id,
            status=RunStatus.CANCELLED,
            reason=f"Cancelled by {who}: the run {exc}. Nothing was registered.",
        )
        outcome = Outcome.CANCELLED
    except DatasetProblems as exc:
        observer.stage(f"the data has {len(exc.problems)} problem(s); nothing was trained")
        training_run_finish(
            run_id=run_id,
            status=RunStatus.FAILED,
            reason=f"{exc.source} has {len(exc.problems)} problem(s); nothing was trained. "
            "Fix them (listed below) and start a new run.",
            problems=[problem.as_json() for problem in exc.problems],
        )
    except EXPECTED_FAILURES as exc:
        observer.stage(f"failed: {exc}")
        training_run_finish(run_id=run_id, status=RunStatus.FAILED, reason=str(exc))
    except Exception as exc:
        logger.exception("training run %s failed unexpectedly", run_id)
        observer.stage(f"failed: {type(exc).__name__}: {exc}")
        training_run_finish(
            run_id=run_id,
            status=RunStatus.FAILED,
            reason=f"Unexpected error: {type(exc).__name__}: {exc}. The worker log has the details.",
        )
    finally:
        heartbeat.stop()
        log.upload()
        training_run_add_artefacts(run_id=run_id, artefacts={"log": log.key})
        shutil.rmtree(scratch, ignore_errors=True)
        if outcome != Outcome.SUCCEEDED:
            training_run_clean_up(run=run)
    return outcome


def _execute(run: TrainingRun, observer: RunObserver, scratch: Path) -> str:
    device = training_device()
    training_run_record(run_id=run.pk, device=device["description"])
    observer.stage(f"device: {device['description']}")
    frozen = data_freeze(
        run,
        say=observer.stage,
        check_stop=lambda: observer.check_stop("while preparing data"),
        confirmed_cases=confirmed_case_items() if run.include_confirmed_cases else None,
    )
    training_run_advance(run_id=run.pk, status=RunStatus.TRAINING, snapshot=frozen.snapshot)

    active = model_version_get_active()
    config = TrainConfig.from_options(
        run.options,
        data_dir=frozen.train_dir,
        out_dir=scratch,
        weights_dir=settings.PRETRAINED_WEIGHTS_DIR,
        parent=active.name if active else None,
        mixed_precision=device["mixed_precision"],
        # The frozen evaluation set is the held-out judge; no second test split is carved out.
        test_fraction=0.0,
        # Photos from other sources, if registered: the referral threshold must hold there too.
        external_dir=frozen.external_dir,
    )
    bundle_dir = train(config, progress=False, observer=observer)

    training_run_advance(run_id=run.pk, status=RunStatus.EVALUATING)
    name = training_run_version_name(run)
    judged_on = [s for s in (frozen.external_set, frozen.evaluation_set) if s is not None]
    evaluations = []
    for evaluation_set in judged_on:
        observer.stage(f"evaluating {name} on {evaluation_set}")
        evaluations.append(
            evaluate_bundle_on_set(
                bundle_dir=bundle_dir, evaluation_set=evaluation_set, version_name=name
            )
        )
    training_run_add_artefacts(run_id=run.pk, artefacts=_upload_report(run, scratch / "report"))
    observer.check_stop("before registering the candidate")
    version = model_version_register(
        bundle_dir=bundle_dir,
        name=name,
        created_by=run.requested_by,
        parent=active,
        training_run=run,
        snapshot=frozen.snapshot,
        evaluations=evaluations,
    )
    if active is not None:
        observer.stage(f"evaluating the active model {active.name} on the same sets")
        for evaluation_set in judged_on:
            try:
                evaluate_version(active, evaluation_set)
            except EXPECTED_FAILURES as exc:
                # The candidate stands; the comparison page says the active model has no numbers.
                observer.stage(f"could not evaluate the active model on {evaluation_set}: {exc}")
    summary = f"Candidate {version.name} registered. " + " ".join(
        _numbers_line(evaluation) for evaluation in evaluations
    )
    observer.stage(summary)
    training_run_finish(run_id=run.pk, status=RunStatus.SUCCEEDED, reason=summary)
    return Outcome.SUCCEEDED


def _numbers_line(evaluation: dict) -> str:
    numbers = metric_summary(evaluation["metrics"])
    evaluation_set = evaluation["evaluation_set"]
    where = (
        f"On the photos from other sources ({evaluation_set.image_count} images)"
        if evaluation_set.is_external
        else f"On the evaluation set ({evaluation_set.image_count} images)"
    )
    return (
        f"{where}: balanced accuracy {numbers['balanced_accuracy']:.3f}, accuracy "
        f"{numbers['accuracy']:.3f}, melanoma sensitivity {_fmt(numbers['melanoma_sensitivity'])}."
    )


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _process_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (killed, not yet reaped by an orphaned parent) is dead."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            # The state follows the parenthesised command name, which may itself hold spaces.
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def fail_runs_of_dead_processes() -> int:
    """Fail runs claimed by a process of this host that no longer exists (killed, out of memory).

    Faster than the heartbeat timeout, and exact: only this host's processes can be checked.
    """
    host = socket.gethostname()
    failed = 0
    for run in TrainingRun.objects.filter(
        status__in=RUN_IN_PROGRESS, worker__startswith=f"{host}:"
    ):
        pid = run.worker.rsplit(":", 1)[1]
        if (
            pid.isdigit()
            and not _process_alive(int(pid))
            and training_run_finish(
                run_id=run.pk,
                status=RunStatus.FAILED,
                reason=f"The training process ({run.worker}) is gone: it was killed or ran out of "
                "memory. The run was not restarted; nothing was registered.",
            )
        ):
            training_run_clean_up(run=run)
            failed += 1
    return failed


def fail_run_of_lost_worker(*, run_id: int, reason: str) -> None:
    """Celery saw the process running ``run_id`` die; record it now, not at the heartbeat timeout."""
    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is not None and training_run_finish(
        run_id=run_id,
        status=RunStatus.FAILED,
        reason=f"The training process died ({reason}). The run was not restarted; nothing was "
        "registered.",
    ):
        training_run_clean_up(run=run)
