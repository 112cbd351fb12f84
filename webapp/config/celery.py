"""The Celery application. The web process uses it only to enqueue tasks by name; `workers/` registers them."""

import logging
import os
from fnmatch import fnmatchcase

from celery import Celery
from django.conf import settings
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from webapp.errors import Unavailable

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.config.settings")

app = Celery("skinsight")
app.config_from_object("django.conf:settings", namespace="CELERY")

CLASSIFY_TASK = "cases.classify"
RERUN_TASK = "cases.rerun"
TRAIN_TASK = "modelops.train"
EVALUATE_TASK = "modelops.evaluate"
REAP_TASK = "modelops.reap_stale_runs"
IMPORT_TASK = "modelops.import_model"
EXPLAIN_TASK = "cases.explain"
RECONCILE_TASK = "cases.reconcile"

logger = logging.getLogger(__name__)


class _Sent:
    """What a send returns here: the job's id. Celery's AsyncResult would look up the result
    backend, and Celery looks it up again in every thread it has not seen, scanning every installed
    package's entry points; under ASGI each request runs on such a thread (3 ms of every upload's
    CPU). Nothing reads job results: there is no result backend."""

    def __init__(self, task_id: str) -> None:
        self.id = task_id


def queue_of(task_name: str) -> str:
    """The queue ``CELERY_TASK_ROUTES`` names for a task, as Celery reads the table: an exact name
    first, then the patterns in their order."""
    routes = settings.CELERY_TASK_ROUTES
    if task_name in routes:
        return routes[task_name]["queue"]
    for pattern, route in routes.items():
        if fnmatchcase(task_name, pattern):
            return route["queue"]
    raise LookupError(f"no queue in CELERY_TASK_ROUTES for {task_name!r}")


def enqueue(task_name: str, *args, **options) -> str:
    """Send a job by name to the queue the routing table gives it; its id. Every job leaves
    through here (a retry passes ``countdown`` and ``retries``)."""
    sent = app.send_task(
        task_name,
        args=list(args),
        queue=queue_of(task_name),
        ignore_result=True,
        result_cls=_Sent,
        add_to_parent=False,
        **options,
    )
    return sent.id


def enqueue_quietly(task_name: str, *args) -> bool:
    """Enqueue a job whose row is already committed; False (logged) when the broker is unreachable,
    for the reconciler to send later. Never raises for a broker outage: the caller's work is saved."""
    try:
        enqueue(task_name, *args)
    except (OperationalError, RedisError, OSError) as exc:
        logger.warning("broker unreachable, %s%s not sent now: %s", task_name, list(args), exc)
        return False
    return True


def resend_missing(ids, in_broker: set, send) -> int:
    """The reconciler's step: ``send(id)`` for each of ``ids`` the broker does not hold; how many."""
    lost = [pk for pk in ids if pk not in in_broker]
    for pk in lost:
        logger.warning("%s for %s had no job in the broker: sending it again", send.__name__, pk)
        send(pk)
    return len(lost)


def enqueue_or_refuse(task_name: str, *args) -> None:
    """Enqueue a job that no row tracks (nothing would send it later): with the broker down, the
    request is refused with 503 and nothing was started."""
    if not enqueue_quietly(task_name, *args):
        raise Unavailable(
            "The job queue cannot be reached, so nothing was started; try again soon."
        )
