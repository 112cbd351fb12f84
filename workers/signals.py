"""Worker life-cycle hooks: model warm-up in inference children, and noticing dead training runs."""

import logging

from billiard.exceptions import WorkerLostError
from celery.signals import task_failure, worker_process_init, worker_ready
from django.conf import settings
from django.db import connections

from ml.heatmaps import GradCamError
from webapp.config.celery import TRAIN_TASK, app
from webapp.modelops.selectors import model_version_get_active
from webapp.modelops.services.runs import training_runs_reap_stale
from workers.health import serve
from workers.model_cache import ModelUnavailable, get_explainer, get_predictor, keep_active_warm
from workers.training import fail_run_of_lost_worker, fail_runs_of_dead_processes

logger = logging.getLogger(__name__)


def _consumes(queue: str) -> bool:
    return queue in app.amqp.queues.consume_from


@worker_process_init.connect
def warm_up_active_model(**kwargs):
    """Load and warm up the active model in each inference (or heat-map) child before it takes a job,
    and each model activated later before a job needs it."""
    # A connection inherited across fork must not be shared with the parent.
    for conn in connections.all(initialized_only=True):
        conn.close()
    load = (
        get_predictor if _consumes("inference") else get_explainer if _consumes("explain") else None
    )
    if load is None:
        return
    try:
        version = model_version_get_active()
        if version is not None:
            load(version)
    except ModelUnavailable as exc:
        logger.error("active model refused at start-up: %s", exc)
    except GradCamError as exc:
        logger.error("the active model gives no heat maps: %s", exc)
    except Exception:
        logger.exception("model warm-up failed; it will be retried on the first job")
    finally:
        for conn in connections.all(initialized_only=True):
            conn.close()
    if settings.MODEL_WATCH_SECONDS > 0:
        # Promotions later in this child's life are loaded ahead of their jobs.
        keep_active_warm(load, settings.MODEL_WATCH_SECONDS)


@worker_ready.connect
def serve_metrics_and_health(sender=None, **kwargs):
    """An inference worker answers /metrics and /healthz on WORKER_METRICS_PORT, if set."""
    if _consumes("inference") and settings.WORKER_METRICS_PORT:
        serve(settings.WORKER_METRICS_PORT, children=int(sender.pool.limit or 1))


@worker_ready.connect
def reap_runs_left_by_a_dead_worker(**kwargs):
    """A training worker that starts fails the runs its dead predecessors on this host left running."""
    if not _consumes("training"):
        return
    try:
        dead = fail_runs_of_dead_processes()
        reaped = training_runs_reap_stale()
        if dead or reaped["failed"]:
            logger.warning(
                "failed %s run(s) left by dead training processes", dead + reaped["failed"]
            )
    except Exception:
        logger.exception("could not check for runs left by dead training processes")


@task_failure.connect
def training_process_lost(sender=None, exception=None, args=None, **kwargs):
    """Runs in the worker's main process when the child running a training task dies (SIGKILL, out
    of memory): the run is failed at once with the reason, and never started again."""
    if getattr(sender, "name", None) != TRAIN_TASK or not isinstance(exception, WorkerLostError):
        return
    try:
        fail_run_of_lost_worker(run_id=int(args[0]), reason=str(exception))
    except Exception:
        logger.exception("could not record the loss of training run %s", args)
