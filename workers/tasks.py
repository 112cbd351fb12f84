"""Thin Celery tasks: take an id, call a service, return. Time limits and retries live here."""

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError

from webapp.cases.heatmaps import heatmap_fail
from webapp.cases.models import CaseStatus
from webapp.cases.services.jobs import case_mark_finished_without_result, case_release_claim
from webapp.config.broker import waiting_first_arguments
from webapp.config.celery import (
    CLASSIFY_TASK,
    EVALUATE_TASK,
    EXPLAIN_TASK,
    IMPORT_TASK,
    REAP_TASK,
    RECONCILE_TASK,
    RERUN_TASK,
    TRAIN_TASK,
    app,
)
from webapp.metrics import JOBS
from webapp.modelops.models import ModelVersion
from webapp.modelops.services.runs import training_runs_reap_stale
from webapp.reconcile.reconciler import reconcile_jobs
from webapp.reruns.services import rerun_record
from workers.batching import Job, MicroBatchTask
from workers.evaluation import evaluate_version
from workers.explain import explain_heatmap
from workers.imports import import_upload
from workers.inference import classify_cases, rerun_case
from workers.model_cache import ModelUnavailable
from workers.outcomes import JobOutcome, Outcome
from workers.retries import POLICY, RETRIED
from workers.training import fail_runs_of_dead_processes, train_run

logger = logging.getLogger(__name__)


class Classify(MicroBatchTask):
    """`cases.classify`: one message per case, run in micro-batches (`workers.batching`).

    Every job of a batch ends with its own outcome: done, rejected, failed, waiting for a model,
    or a retry of that job alone with back-off on a transient fault.
    """

    name = CLASSIFY_TASK
    acks_late = True
    soft_time_limit = settings.CLASSIFY_SOFT_TIME_LIMIT
    time_limit = settings.CLASSIFY_TIME_LIMIT
    flush_every = settings.INFERENCE_BATCH_SIZE
    flush_interval = settings.INFERENCE_BATCH_WAIT_MS / 1000

    def run_batch(self, jobs: list[Job]) -> list[str]:
        case_ids = [int(job.args[0]) for job in jobs]
        try:
            outcomes = classify_cases(case_ids)
        except RETRIED as exc:
            outcomes = dict.fromkeys(case_ids, JobOutcome.of(exc))
        finished = [
            self._finish(job, outcomes[case_id])
            for job, case_id in zip(jobs, case_ids, strict=True)
        ]
        for outcome in finished:
            JOBS.labels(outcome).inc()
        return finished

    def _finish(self, job: Job, ended: JobOutcome) -> str:
        case_id = int(job.args[0])
        if ended.fault is None:
            logger.info("case %s: %s", case_id, ended.outcome)
            return ended.outcome
        return POLICY.after_fault(
            task_name=self.name,
            args=job.args,
            kwargs=job.kwargs,
            retries=job.retries,
            error=ended.fault,
            give_up=lambda error: _classify_give_up(case_id, job.retries, error),
            before_retry=lambda: _release_quietly(case_id),
        )


def _classify_give_up(case_id: int, retries: int, error: Exception) -> str:
    if isinstance(error, ModelUnavailable):
        # The model, not the photo, is at fault: the case stays queued, never run by another
        # model; a good bundle's activation or the reconciler hands it out again.
        logger.error("case %s waits: the active model is unusable: %s", case_id, error)
        return Outcome.WAITING_FOR_MODEL
    logger.error("case %s failed after %s retries: %s", case_id, retries, error)
    case_mark_finished_without_result(
        case_id=case_id,
        status=CaseStatus.FAILED,
        reason="The classification service was unavailable for too long; "
        "please upload the photo again or contact your clinician.",
    )
    return Outcome.FAILED


classify = app.register_task(Classify())


def _release_quietly(case_id: int) -> None:
    """Release the case's claim before its retry; if the database is what failed, the claim stays
    counted (the retry still comes)."""
    try:
        case_release_claim(case_id=case_id)
    except (OperationalError, InterfaceError) as exc:
        logger.warning("case %s: claim not released (%s)", case_id, type(exc).__name__)


# Follow-up jobs, never on a patient's latency path: re-runs (admins' comparisons) and heat maps (Keras
# gradients, on their own queue so classification never waits for them). One job per message, acknowledged
# late (a dead worker's job is redelivered), time-limited, retried with back-off on a transient fault.
ONE_JOB = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "soft_time_limit": settings.CLASSIFY_SOFT_TIME_LIMIT,
    "time_limit": settings.CLASSIFY_TIME_LIMIT,
}


def _retrying(task, work: Callable[[], str], give_up: Callable[[str], object]) -> str:
    """``work()``; on a transient fault, the job is sent again by the retry policy, and after the
    last retry ``give_up(reason)`` is recorded and the answer is "failed"."""
    try:
        return work()
    except RETRIED as exc:
        request = task.request

        def failed(error: Exception) -> str:
            give_up(f"gave up after retries: {error}")
            return Outcome.FAILED

        return POLICY.after_fault(
            task_name=task.name,
            args=request.args,
            kwargs=request.kwargs,
            retries=request.retries,
            error=exc,
            give_up=failed,
        )


@app.task(name=RERUN_TASK, **ONE_JOB)
def rerun(self, result_id: int) -> str:
    return _retrying(
        self,
        lambda: rerun_case(result_id=result_id),
        lambda reason: rerun_record(result_id=result_id, error=reason),
    )


@app.task(name=EXPLAIN_TASK, **ONE_JOB)
def explain(self, heatmap_id: int) -> str:
    return _retrying(
        self,
        lambda: explain_heatmap(heatmap_id=heatmap_id),
        lambda reason: heatmap_fail(heatmap_id=heatmap_id, error=reason),
    )


@app.task(
    name=TRAIN_TASK,
    # Acknowledged when it starts: a run is never redelivered (it could take hours twice). Its row
    # guards it instead: claimed once, kept alive by a heartbeat, failed by the reaper when its worker
    # dies (see workers/signals.py and `modelops.reap_stale_runs`).
    acks_late=False,
    soft_time_limit=settings.TRAINING_TIME_LIMIT,
    time_limit=settings.TRAINING_TIME_LIMIT + 300,
)
def train(run_id: int) -> str:
    return train_run(run_id=run_id)


@app.task(name=EVALUATE_TASK, acks_late=False, time_limit=settings.TRAINING_TIME_LIMIT)
def evaluate(version_id: int) -> str:
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        return Outcome.GONE
    evaluate_version(version)
    return Outcome.DONE


@app.task(name=IMPORT_TASK, acks_late=False, time_limit=settings.TRAINING_TIME_LIMIT)
def import_model(import_id: int) -> str:
    return import_upload(import_id=import_id)


@app.task(name=RECONCILE_TASK, acks_late=True, time_limit=120)
def reconcile() -> dict:
    """Send again the jobs of cases and heat maps that wait with no message in the broker (beat runs
    it every REAPER_INTERVAL_SECONDS): after a Redis loss, nothing waits for a human."""
    return reconcile_jobs()


@app.task(name=REAP_TASK, acks_late=True, time_limit=120)
def reap_stale_runs() -> dict:
    found = fail_runs_of_dead_processes()
    waiting = waiting_first_arguments(TRAIN_TASK)
    return {**training_runs_reap_stale(waiting=waiting), "dead_processes": found}
