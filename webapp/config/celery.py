"""The Celery application. The web process uses it only to enqueue tasks by name; `workers/` registers them."""

import logging
import os

from celery import Celery
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


def send(task_name: str, args: list, **options) -> str:
    """Send a job by name; its id. Every job leaves through here."""
    sent = app.send_task(
        task_name, args=args, ignore_result=True, result_cls=_Sent, add_to_parent=False, **options
    )
    return sent.id


def send_quietly(task_name: str, *args, queue: str) -> bool:
    """Enqueue a job whose row is already committed; False (logged) when the broker is unreachable,
    for the reconciler to send later. Never raises for a broker outage: the caller's work is saved."""
    try:
        send(task_name, list(args), queue=queue)
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


def send_or_refuse(task_name: str, *args, queue: str) -> None:
    """Enqueue a job that no row tracks (nothing would send it later): with the broker down, the
    request is refused with 503 and nothing was started."""
    if not send_quietly(task_name, *args, queue=queue):
        raise Unavailable(
            "The job queue cannot be reached, so nothing was started; try again soon."
        )
